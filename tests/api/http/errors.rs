//! The one error shape, request ids and CORS, as a client sees them.

use crate::support::app::{Backend, spawn_echo_app, spawn_echo_app_with};
use serde_json::Value;

async fn error_body(res: reqwest::Response) -> (u16, String, Value) {
    let status = res.status().as_u16();
    let request_id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("every response carries x-request-id")
        .to_owned();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let body: Value = res.json().await.expect("json error body");
    (status, request_id, body)
}

fn assert_shape(body: &Value, code: &str, request_id: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert_eq!(body["error"]["request_id"], request_id);
}

#[tokio::test]
async fn unknown_route_is_404_in_the_json_error_shape() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let (status, id, body) = error_body(app.get("/nope").await).await;
    assert_eq!(status, 404);
    assert_shape(&body, "not_found", &id);
}

#[tokio::test]
async fn wrong_method_is_405_in_the_json_error_shape() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let res = app
        .client
        .delete(app.url("/health"))
        .send()
        .await
        .expect("send");
    let (status, id, body) = error_body(res).await;
    assert_eq!(status, 405);
    assert_shape(&body, "method_not_allowed", &id);
}

#[tokio::test]
async fn oversized_body_is_413_in_the_json_error_shape() {
    let app = spawn_echo_app_with(Backend::Embedded, &[("MAX_BODY_BYTES", "1024")]).await;
    let res = app
        .client
        .post(app.url("/health"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .expect("send");
    let (status, id, body) = error_body(res).await;
    assert_eq!(status, 413);
    assert_shape(&body, "payload_too_large", &id);
}

#[tokio::test]
async fn a_well_formed_request_id_is_echoed_and_a_bad_one_replaced() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let res = app
        .client
        .get(app.url("/nope"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("send");
    let (_, id, body) = error_body(res).await;
    assert_eq!(id, "abc-123");
    assert_eq!(body["error"]["request_id"], "abc-123");

    let too_long = "x".repeat(500);
    let res = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", too_long.as_str())
        .send()
        .await
        .expect("send");
    let minted = res.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_ne!(minted, too_long);
    assert_eq!(minted.len(), 32);
}

#[tokio::test]
async fn cors_allows_exactly_the_configured_origins_with_credentials() {
    let app = spawn_echo_app_with(
        Backend::Embedded,
        &[(
            "ALLOWED_ORIGINS",
            "https://book.example.com,http://localhost:3000",
        )],
    )
    .await;
    let allowed = app
        .client
        .get(app.url("/health"))
        .header("origin", "https://book.example.com")
        .send()
        .await
        .expect("send");
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://book.example.com"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );

    for foreign in [
        "https://evil.example.com",
        "null",
        "https://book.example.com.evil.com",
        "https://evilbook.example.com",
        "http://book.example.com",
    ] {
        let res = app
            .client
            .get(app.url("/health"))
            .header("origin", foreign)
            .send()
            .await
            .expect("send");
        assert!(
            res.headers().get("access-control-allow-origin").is_none(),
            "{foreign} must not be allowed"
        );
    }
}

#[tokio::test]
async fn cors_preflight_answers_only_for_a_listed_origin() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/health"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let ok = preflight("http://localhost:3000").await.expect("send");
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let allow_headers = ok.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii");
    assert!(allow_headers.contains("authorization"));
    let foreign = preflight("http://localhost:3001").await.expect("send");
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
