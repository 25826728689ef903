//! `GET /openapi.json` and `/docs`: the document is generated from the code (utoipa) and is
//! the committed snapshot `openapi/openapi.json` (`UPDATE_OPENAPI=1` rewrites it); it names
//! every route the router serves (read from the route declarations in src/http) and every
//! request type the ChatKit parser knows, and every path it documents is really served.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::app::{Backend, spawn_echo_app, spawn_echo_app_with};

const COMMITTED: &str = include_str!("../../../openapi/openapi.json");

fn committed() -> Value {
    serde_json::from_str(COMMITTED).expect("openapi/openapi.json is JSON")
}

/// Every `(path, method)` declared with `.route("…", get(…))` in src/http (rustfmt may break
/// the call over lines; a route's method calls end at the next route, `;` or closing brace).
fn declared_routes() -> BTreeSet<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("src/http") {
        let source = std::fs::read_to_string(entry.expect("entry").path()).expect("source");
        for chunk in source.split(".route(").skip(1) {
            let Some(rest) = chunk.trim_start().strip_prefix('"') else {
                continue;
            };
            let end = rest.find('"').expect("closing quote");
            let path = rest[..end].to_owned();
            let after = rest[end + 1..].trim_start_matches([',', ' ', '\n']);
            let stop = [";", "\n}"]
                .iter()
                .filter_map(|s| after.find(s))
                .min()
                .unwrap_or(after.len());
            let call = &after[..stop];
            for method in ["get", "post", "put", "patch", "delete"] {
                if call.starts_with(&format!("{method}(")) || call.contains(&format!(".{method}("))
                {
                    routes.insert((path.clone(), method.to_owned()));
                }
            }
        }
    }
    routes
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            out.insert((path.clone(), method.clone()));
        }
    }
    out
}

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");

#[test]
fn the_generated_document_is_the_committed_snapshot() {
    let generated = study_mode_api::http::openapi::document_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(SNAPSHOT, &generated).expect("write openapi/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(SNAPSHOT).expect("openapi/openapi.json");
    assert!(
        generated == committed,
        "the generated OpenAPI document differs from openapi/openapi.json; review the change \
         and rerun with UPDATE_OPENAPI=1 to accept it:\n{}",
        first_difference(&committed, &generated)
    );
}

/// The first differing line of two texts, with its number, for a readable failure.
fn first_difference(committed: &str, generated: &str) -> String {
    let mut old = committed.lines();
    let mut new = generated.lines();
    for number in 1.. {
        match (old.next(), new.next()) {
            (None, None) => break,
            (a, b) if a == b => continue,
            (a, b) => {
                return format!(
                    "line {number}:\n  committed: {}\n  generated: {}",
                    a.unwrap_or("<end>"),
                    b.unwrap_or("<end>")
                );
            }
        }
    }
    "only the line endings differ".to_owned()
}

#[tokio::test]
async fn the_served_document_is_the_committed_openapi_file() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), 200);
    let ctype = res.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let served: Value = res.json().await.expect("json");
    assert_eq!(
        served,
        committed(),
        "GET /openapi.json differs from openapi/openapi.json"
    );
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(served["info"]["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn every_route_of_the_router_is_in_the_document() {
    let routes = declared_routes();
    assert!(routes.len() >= 10, "found too few routes: {routes:?}");
    let doc = documented(&committed());
    let missing: Vec<_> = routes.difference(&doc).collect();
    assert!(
        missing.is_empty(),
        "routes missing from openapi/openapi.json: {missing:?}"
    );
    let extra: Vec<_> = doc.difference(&routes).collect();
    assert!(
        extra.is_empty(),
        "documented but not declared in src/http: {extra:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_is_served_by_the_router() {
    let app = spawn_echo_app_with(
        Backend::Embedded,
        &[
            ("ADMIN_SECRET", "s3cret"),
            ("GITHUB_WEBHOOK_SECRET", "hook"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    for (path, method) in documented(&committed()) {
        let url = app.url(&path.replace("{file}", "no-such-file"));
        let req = match method.as_str() {
            "get" => client.get(&url),
            "post" => client.post(&url).json(&json!({})),
            other => panic!("unexpected method {other}"),
        };
        let res = req
            .header("x-user-id", "openapi")
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let fallback = status == 405 || body["error"]["message"] == "no such route";
        assert!(
            !fallback,
            "{method} {path} is documented but not routed ({status} {body})"
        );
    }
}

#[tokio::test]
async fn the_chatkit_union_names_exactly_the_request_types_the_server_parses() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let res = reqwest::Client::new()
        .post(app.url("/chatkit"))
        .header("x-user-id", "openapi")
        .json(&json!({"type": "threads.nope", "params": {}}))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("json");
    let message = body["error"]["message"].as_str().expect("message");
    let listed = message.split("expected one of").nth(1).expect("type list");
    let server: BTreeSet<String> = listed
        .split(',')
        .map(|t| t.trim().trim_matches(['`', '"', ' ']).to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(server.len(), 16, "{server:?}");

    let doc = committed();
    let members = doc["components"]["schemas"]["ChatKitRequest"]["oneOf"]
        .as_array()
        .expect("oneOf");
    assert_eq!(members.len(), 16);
    let mut documented = BTreeSet::new();
    for member in members {
        let kinds = member["properties"]["type"]["enum"]
            .as_array()
            .expect("type enum");
        assert_eq!(kinds.len(), 1, "{member}");
        let kind = kinds[0].as_str().expect("type name").to_owned();
        let required = member["required"].as_array().expect("required");
        for field in ["type", "params"] {
            assert!(
                required.contains(&json!(field)),
                "{kind}: {field} must be required"
            );
        }
        assert_eq!(member["properties"]["metadata"]["type"], "object", "{kind}");
        resolve(
            &doc,
            member["properties"]["params"]["$ref"]
                .as_str()
                .expect("params $ref"),
        );
        documented.insert(kind);
    }
    assert_eq!(documented, server);
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference.strip_prefix('#').expect("local ref");
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("unresolved $ref {reference}"))
}

fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_reference_in_the_document_resolves() {
    let doc = committed();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 50, "suspiciously few $refs: {}", all.len());
    for r in all {
        resolve(&doc, &r);
    }
}

#[test]
fn every_error_response_uses_the_one_error_shape() {
    let doc = committed();
    for (path, method) in documented(&doc) {
        let responses = &doc["paths"][&path][&method]["responses"];
        assert!(responses.get("500").is_some(), "{method} {path} has no 500");
        for (status, response) in responses.as_object().expect("responses") {
            let code: u16 = status.parse().expect("numeric status");
            // Readiness answers its own report with 503, not an error (documented as such).
            let report = path == "/health/ready" && code == 503;
            if code < 400 || report || response.get("content").is_none() {
                continue;
            }
            let schema = &response["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(
                schema, "#/components/schemas/Error",
                "{method} {path} {status}"
            );
        }
    }
}

#[tokio::test]
async fn the_docs_page_and_its_assets_are_served_from_the_binary() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let page = app.get("/docs").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("text");
    assert!(html.contains("/docs/docs.js") && html.contains("/docs/docs.css"));
    for (asset, ctype) in [
        ("/docs/docs.js", "text/javascript"),
        ("/docs/docs.css", "text/css"),
    ] {
        let res = app.get(asset).await;
        assert_eq!(res.status(), 200, "{asset}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with(ctype)
        );
        assert!(
            res.text().await.expect("text").len() > 100,
            "{asset} is empty"
        );
    }
}
