//! Authentication against a real local SSO (JWKS + userinfo) with real RSA, EC P-256 and
//! Ed25519 keys: what is accepted, each rejection and its reason, key rotation, the JWKS cache
//! when the SSO fails, opaque tokens, and dev mode.

use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use study_mode_api::auth::CurrentUser;
use study_mode_api::error::ApiError;

use crate::support::app::{Backend, TestApp, spawn_echo_app_with, unique};
use crate::support::sso::{FakeSso, Key, b64, claims, fixture, now, sign_raw};

fn rsa() -> Key {
    Key::rsa("rsa-1", "rsa.pem")
}
fn ec() -> Key {
    Key::ec("ec-1", "ec.pem")
}
fn ed() -> Key {
    Key::ed("ed-1", "ed25519.pem")
}

fn parts(headers: &[(&str, &str)], uri: &str) -> Parts {
    let mut builder = Request::builder().uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(()).expect("request").into_parts().0
}

fn bearer(token: &str) -> Parts {
    parts(&[("authorization", &format!("Bearer {token}"))], "/chatkit")
}

async fn app_for(sso: &FakeSso, extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![("SSO_URL", sso.url.as_str()), ("DEV_MODE", "false")];
    vars.extend_from_slice(extra);
    spawn_echo_app_with(Backend::Embedded, &vars).await
}

async fn auth(app: &TestApp, token: &str) -> Result<CurrentUser, ApiError> {
    app.state
        .auth
        .authenticate(&bearer(token))
        .await
        .map_err(ApiError::from)
}

/// Asserts a 401 whose message contains `reason`, with `WWW-Authenticate: Bearer` and without
/// the token in the body.
async fn assert_rejected(result: Result<CurrentUser, ApiError>, reason: &str, token: &str) {
    let err = result.expect_err("must be rejected");
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED, "{err}");
    assert!(
        err.message().contains(reason),
        "`{}` lacks `{reason}`",
        err.message()
    );
    let response = err.into_response();
    assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let body = String::from_utf8_lossy(&body);
    assert!(
        !token.is_empty() && !body.contains(token),
        "the token leaked into {body}"
    );
}

#[tokio::test]
async fn tokens_signed_by_rsa_ec_and_ed25519_keys_are_accepted_and_mapped_to_the_user() {
    let (rsa, ec, ed) = (rsa(), ec(), ed());
    let sso = FakeSso::start(&[&rsa, &ec, &ed]).await;
    let app = app_for(&sso, &[]).await;
    for key in [&rsa, &ec, &ed] {
        let sub = unique("user-");
        let mut c = claims(&sub);
        c["role"] = json!("admin");
        c["tenant_id"] = json!("tenant-9");
        c["client_id"] = json!("book");
        let user = auth(&app, &key.sign(&c))
            .await
            .unwrap_or_else(|e| panic!("{:?}: {e}", key.alg));
        assert_eq!(user.id, sub);
        assert_eq!(user.email, Some(format!("{sub}@example.com")));
        assert_eq!(user.name.as_deref(), Some("Ann Example"));
        assert_eq!(user.role, "admin");
        assert_eq!(user.tenant_id.as_deref(), Some("tenant-9"));
        assert_eq!(user.organization_ids, ["org-1"]);
        assert_eq!(user.client_id.as_deref(), Some("book"));
    }
    assert_eq!(sso.jwks_hits(), 1, "the key set is fetched once and cached");
}

#[tokio::test]
async fn every_kind_of_bad_jwt_gets_401_with_its_reason() {
    let (rsa, ec) = (rsa(), ec());
    let sso = FakeSso::start(&[&rsa, &ec]).await;
    let app = app_for(
        &sso,
        &[
            ("JWT_ISSUER", "https://sso.example"),
            ("JWT_AUDIENCE", "study-mode"),
        ],
    )
    .await;
    let good = || {
        let mut c = claims("u1");
        c["iss"] = json!("https://sso.example");
        c["aud"] = json!("study-mode");
        c
    };
    assert!(
        auth(&app, &rsa.sign(&good())).await.is_ok(),
        "the baseline token is valid"
    );

    let none = format!(
        "{}.{}.",
        b64(&json!({"alg":"none","kid":"rsa-1"})),
        b64(&good())
    );
    let rsa_public_as_secret = EncodingKey::from_secret(&fixture("rsa.pub.pem"));
    let hs256 = sign_raw(
        &json!({"alg":"HS256","kid":"rsa-1"}),
        &good(),
        &rsa_public_as_secret,
        Algorithm::HS256,
    );
    let unknown_kid = rsa.sign_with_header(&json!({"alg":"RS256","kid":"nobody"}), &good());
    let expired = rsa.sign(
        &json!({"sub":"u1","iss":"https://sso.example","aud":"study-mode","exp": now() - 120}),
    );
    let not_yet = rsa.sign(&json!({"sub":"u1","iss":"https://sso.example","aud":"study-mode","exp": now() + 600, "nbf": now() + 120}));
    let mut wrong_iss = good();
    wrong_iss["iss"] = json!("https://evil.example");
    let mut wrong_aud = good();
    wrong_aud["aud"] = json!("another-app");
    let valid = rsa.sign(&good());
    let mut segments: Vec<&str> = valid.split('.').collect();
    let mut tampered_claims = good();
    tampered_claims["sub"] = json!("admin");
    let tampered_payload = b64(&tampered_claims);
    segments[1] = &tampered_payload;
    let tampered = segments.join(".");
    let impostor = Key::rsa("rsa-1", "rsa_other.pem").sign(&good());
    let ec_header_on_rsa_key = ec.sign_with_header(&json!({"alg":"ES256","kid":"rsa-1"}), &good());
    let no_sub =
        rsa.sign(&json!({"iss":"https://sso.example","aud":"study-mode","exp": now() + 600}));

    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", none, "none"),
        ("HS256 signed with the RSA public key", hs256, "HMAC"),
        ("unknown kid", unknown_kid, "unknown key"),
        ("expired", expired, "expired"),
        ("not yet valid", not_yet, "not yet valid"),
        ("wrong issuer", rsa.sign(&wrong_iss), "wrong issuer"),
        ("wrong audience", rsa.sign(&wrong_aud), "wrong audience"),
        ("tampered payload", tampered, "bad token signature"),
        (
            "another key under the same kid",
            impostor,
            "bad token signature",
        ),
        (
            "algorithm not the key's",
            ec_header_on_rsa_key,
            "does not match its key",
        ),
        ("no subject", no_sub, "sub"),
        ("garbage segments", "abc.def!.ghi".into(), "malformed"),
        (
            "non-JSON header",
            format!("{}.{}.c2ln", "bm90LWpzb24", b64(&good())),
            "malformed",
        ),
        (
            "oversized",
            format!(
                "{}.{}.sig",
                b64(&json!({"alg":"RS256","kid":"rsa-1"})),
                "A".repeat(9000)
            ),
            "too large",
        ),
    ];
    for (what, token, reason) in cases {
        let result = auth(&app, &token).await;
        assert!(result.is_err(), "{what} was accepted");
        assert_rejected(result, reason, &token).await;
    }
}

#[tokio::test]
async fn leeway_admits_a_token_that_expired_seconds_ago_but_not_minutes_ago() {
    let rsa = rsa();
    let sso = FakeSso::start(&[&rsa]).await;
    let app = app_for(&sso, &[("JWT_LEEWAY_SECS", "30")]).await;
    let at = |exp: i64| rsa.sign(&json!({"sub":"u","exp": now() + exp}));
    assert!(auth(&app, &at(-10)).await.is_ok());
    let late = at(-45);
    assert_rejected(auth(&app, &late).await, "expired", &late).await;
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.contains(r#"study_mode_auth_requests_total{method="jwt",outcome="expired"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"study_mode_auth_requests_total{method="jwt",outcome="ok"} 1"#),
        "{metrics}"
    );
    let signature = late.rsplit('.').next().expect("signature");
    assert!(
        !metrics.contains(signature),
        "no part of a token reaches the metrics"
    );
}

#[tokio::test]
async fn jku_x5u_and_embedded_jwk_headers_are_ignored_and_never_fetched() {
    let rsa = rsa();
    let attacker = Key::rsa("rsa-1", "rsa_other.pem");
    let sso = FakeSso::start(&[&rsa]).await;
    let app = app_for(&sso, &[]).await;
    let header = |kid: &str| {
        json!({"alg":"RS256","kid":kid,
               "jku": format!("{}/attacker/jwks.json", sso.url),
               "x5u": format!("{}/attacker/cert.pem", sso.url),
               "jwk": attacker.jwk})
    };
    let forged = attacker.sign_with_header(&header("rsa-1"), &claims("victim"));
    assert_rejected(auth(&app, &forged).await, "bad token signature", &forged).await;
    let unknown = attacker.sign_with_header(&header("attacker-kid"), &claims("victim"));
    assert_rejected(auth(&app, &unknown).await, "unknown key", &unknown).await;
    assert_eq!(
        sso.other_hits(),
        0,
        "no URL from a token header was fetched"
    );
    // The legitimate key with the same decorations still verifies: the headers are inert.
    let decorated = rsa.sign_with_header(&header("rsa-1"), &claims("u"));
    assert!(auth(&app, &decorated).await.is_ok());
    assert_eq!(sso.other_hits(), 0);
}

#[tokio::test]
async fn a_key_published_under_a_new_kid_is_accepted_without_restart_and_unknown_kids_refresh_at_most_once_a_minute()
 {
    let (rsa, rotated) = (rsa(), Key::ed("ed-2", "ed25519_rotated.pem"));
    let sso = FakeSso::start(&[&rsa]).await;
    let app = app_for(&sso, &[]).await;
    assert!(auth(&app, &rsa.sign(&claims("u"))).await.is_ok());
    assert_eq!(sso.jwks_hits(), 1);
    sso.publish(&[&rsa, &rotated]);
    let user = auth(&app, &rotated.sign(&claims("rotated")))
        .await
        .expect("new kid accepted");
    assert_eq!(user.id, "rotated");
    assert_eq!(sso.jwks_hits(), 2, "one refresh for the unknown kid");
    for _ in 0..3 {
        let t = rsa.sign_with_header(
            &json!({"alg":"RS256","kid":"never-published"}),
            &claims("u"),
        );
        assert_rejected(auth(&app, &t).await, "unknown key", &t).await;
    }
    assert_eq!(
        sso.jwks_hits(),
        2,
        "unknown kids do not refresh again within 60 s"
    );
}

#[tokio::test]
async fn concurrent_first_requests_share_one_jwks_fetch() {
    let ec = ec();
    let sso = FakeSso::start(&[&ec]).await;
    let app = app_for(&sso, &[]).await;
    let token = ec.sign(&claims("u"));
    let results = futures::future::join_all((0..20).map(|_| auth(&app, &token))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(sso.jwks_hits(), 1);
}

#[tokio::test]
async fn when_the_sso_fails_after_the_keys_expire_the_cached_keys_keep_working() {
    let rsa = rsa();
    let sso = FakeSso::start(&[&rsa]).await;
    let app = app_for(&sso, &[("JWKS_CACHE_TTL_SECS", "1")]).await;
    let token = rsa.sign(&claims("u"));
    assert!(auth(&app, &token).await.is_ok());
    sso.set_down(true);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert!(
        auth(&app, &token).await.is_ok(),
        "stale keys are used when the refresh fails"
    );
    assert_eq!(sso.jwks_hits(), 2, "the refresh was attempted");
    assert!(auth(&app, &token).await.is_ok());
    assert_eq!(
        sso.jwks_hits(),
        2,
        "a failed refresh is not retried on every request"
    );
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.contains(r#"study_mode_auth_jwks_fetches_total{outcome="error"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn with_no_keys_and_the_sso_unreachable_the_answer_is_503_naming_the_cause() {
    let rsa = rsa();
    let app = spawn_echo_app_with(
        Backend::Embedded,
        &[("SSO_URL", "http://127.0.0.1:1"), ("DEV_MODE", "false")],
    )
    .await;
    let err = auth(&app, &rsa.sign(&claims("u")))
        .await
        .expect_err("no keys");
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(err.message().contains("JWKS"), "{}", err.message());
    let err = auth(&app, "opaque-token-123")
        .await
        .expect_err("no userinfo");
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn opaque_tokens_are_verified_at_userinfo_and_cached_and_invalid_ones_get_401_once() {
    let sso = FakeSso::start(&[]).await;
    let app = app_for(&sso, &[]).await;
    let token = unique("opaque_");
    sso.accept_opaque(
        &token,
        json!({"sub":"op-user","email":"op@example.com","organization_id":"org-7"}),
    );
    let user = auth(&app, &token).await.expect("accepted");
    assert_eq!(user.id, "op-user");
    assert_eq!(user.tenant_id.as_deref(), Some("org-7"));
    assert_eq!(sso.userinfo_hits(), 1);
    assert_eq!(auth(&app, &token).await.expect("cached"), user);
    assert_eq!(
        sso.userinfo_hits(),
        1,
        "the second call is answered from the cache"
    );
    let bad = unique("unknown_");
    assert_rejected(auth(&app, &bad).await, "invalid or revoked", &bad).await;
    assert_rejected(auth(&app, &bad).await, "invalid or revoked", &bad).await;
    assert_eq!(
        sso.userinfo_hits(),
        2,
        "a rejection is remembered (for 60 s)"
    );
}

#[tokio::test]
async fn without_dev_mode_a_token_is_required_and_x_user_id_is_ignored() {
    let sso = FakeSso::start(&[&rsa()]).await;
    let app = app_for(&sso, &[]).await;
    let cases = [
        parts(&[("x-user-id", "mallory")], "/chatkit?user_id=mallory"),
        parts(&[("authorization", "Bearer ")], "/chatkit"),
    ];
    for p in cases {
        let err = ApiError::from(app.state.auth.authenticate(&p).await.expect_err("no token"));
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
        assert!(err.message().contains("missing"), "{}", err.message());
    }
    let basic = parts(&[("authorization", "Basic dXNlcjpwYXNz")], "/");
    let err = ApiError::from(
        app.state
            .auth
            .authenticate(&basic)
            .await
            .expect_err("basic"),
    );
    assert!(err.message().contains("Bearer scheme"), "{}", err.message());
}

#[tokio::test]
async fn dev_mode_takes_the_user_from_x_user_id_or_the_configured_dev_user() {
    let app = spawn_echo_app_with(
        Backend::Embedded,
        &[("DEV_MODE", "true"), ("DEV_USER_ID", "dev-7")],
    )
    .await;
    let user = app
        .state
        .auth
        .authenticate(&parts(&[], "/"))
        .await
        .expect("dev user");
    assert_eq!(user.id, "dev-7");
    assert_eq!(user.email.as_deref(), Some("dev@localhost"));
    assert_eq!(user.name.as_deref(), Some("Dev User"));
    let p = parts(&[("x-user-id", "alice"), ("x-user-name", "Alice")], "/");
    let user = app.state.auth.authenticate(&p).await.expect("header user");
    assert_eq!(
        (user.id.as_str(), user.name.as_deref()),
        ("alice", Some("Alice"))
    );
    let user = app
        .state
        .auth
        .authenticate(&parts(&[], "/chatkit?user_id=bob"))
        .await
        .expect("query");
    assert_eq!(user.id, "bob");
    // No SSO configured: a token is not verifiable, so dev mode ignores it.
    let user = app
        .state
        .auth
        .authenticate(&bearer("whatever"))
        .await
        .expect("ignored");
    assert_eq!(user.id, "dev-7");
}

#[tokio::test]
async fn dev_mode_with_an_sso_still_verifies_tokens_that_are_sent() {
    let rsa = rsa();
    let sso = FakeSso::start(&[&rsa]).await;
    let app = spawn_echo_app_with(
        Backend::Embedded,
        &[("SSO_URL", &sso.url), ("DEV_MODE", "true")],
    )
    .await;
    assert_eq!(
        auth(&app, &rsa.sign(&claims("real")))
            .await
            .expect("valid")
            .id,
        "real"
    );
    let expired = rsa.sign(&json!({"sub":"u","exp": now() - 3600}));
    assert_rejected(auth(&app, &expired).await, "expired", &expired).await;
    let user = app
        .state
        .auth
        .authenticate(&parts(&[], "/"))
        .await
        .expect("no token: dev user");
    assert_eq!(user.id, "dev-user-123");
}

/// Through HTTP: the extractor answers the JSON error shape with `WWW-Authenticate`.
#[tokio::test]
async fn the_current_user_extractor_answers_401_json_over_http() {
    let rsa = rsa();
    let sso = FakeSso::start(&[&rsa]).await;
    let app = app_for(&sso, &[]).await;
    let router = axum::Router::new()
        .route(
            "/me",
            axum::routing::get(|user: CurrentUser| async move { axum::Json(user) }),
        )
        .with_state(app.state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/me", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::new();
    let response = client.get(&url).send().await.expect("request");
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()[WWW_AUTHENTICATE.as_str()], "Bearer");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unauthorized");
    let token = rsa.sign(&claims("http-user"));
    let response = client
        .get(&url)
        .header(AUTHORIZATION.as_str(), format!("Bearer {token}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["id"], "http-user");
}

#[tokio::test]
async fn an_sso_that_publishes_no_keys_is_asked_again_at_most_once_a_minute() {
    let sso = FakeSso::start(&[]).await;
    let app = app_for(&sso, &[]).await;
    for _ in 0..4 {
        let t = rsa().sign(&claims("u"));
        assert_rejected(auth(&app, &t).await, "unknown key", &t).await;
    }
    assert_eq!(
        sso.jwks_hits(),
        2,
        "the first fetch plus one unknown-kid refresh"
    );
}

#[tokio::test]
async fn concurrent_requests_with_one_opaque_token_share_one_userinfo_call() {
    let sso = FakeSso::start(&[]).await;
    let app = app_for(&sso, &[]).await;
    let token = unique("opaque_");
    sso.accept_opaque(&token, json!({"sub":"op"}));
    let results = futures::future::join_all((0..10).map(|_| auth(&app, &token))).await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|u| u.id == "op"))
    );
    assert_eq!(sso.userinfo_hits(), 1);
}

/// Collects log output in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn tokens_never_reach_the_logs_even_when_the_sso_fails() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let rsa = rsa();
    let sso = FakeSso::start(&[&rsa]).await;
    let app = app_for(&sso, &[]).await;
    sso.set_down(true);
    let opaque = unique("secret_opaque_");
    let jwt = rsa.sign(&claims("u"));
    assert!(auth(&app, &opaque).await.is_err());
    assert!(auth(&app, &jwt).await.is_err());
    let logs = String::from_utf8_lossy(&captured.0.lock().expect("lock")).into_owned();
    assert!(
        logs.contains("userinfo call failed"),
        "the failure was logged: {logs}"
    );
    assert!(
        logs.contains("JWKS refresh failed"),
        "the failure was logged: {logs}"
    );
    assert!(!logs.contains(&opaque), "opaque token in the logs");
    for segment in jwt.split('.') {
        assert!(!logs.contains(segment), "a JWT segment in the logs");
    }
}
