//! Metric labels come from closed sets: a client cannot add series to the registry.

use crate::support::app::{Backend, spawn_echo_app};

#[tokio::test]
async fn random_http_methods_add_no_metric_series() {
    let app = spawn_echo_app(Backend::Embedded).await;
    for i in 0..50 {
        let method = reqwest::Method::from_bytes(format!("M{i}X").as_bytes()).expect("token");
        let res = app
            .client
            .request(method, app.url("/health"))
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 405);
    }
    let text = app.get("/metrics").await.text().await.expect("text");
    assert!(!text.contains("M1X"), "a client-chosen label: {text}");
    assert!(
        text.contains(r#"method="other",route="/health",status="405"} 50"#),
        "{text}"
    );
}
