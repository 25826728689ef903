//! The study page (`GET /study`) and the documentation UI (`GET /docs`): browser assets under
//! `static/`, compiled into the binary so the page works offline and needs no CDN.
//!
//! Owns: serving those files with their content types and security headers. Must not know
//! ChatKit: the page itself speaks the protocol to `POST /chatkit`.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/study", get(study_index))
        .route("/study/{file}", get(study_asset))
        .route("/docs", get(docs_index))
        .route("/docs/{file}", get(docs_asset))
}

/// One embedded file: its name under its folder, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

const STUDY_ASSETS: &[Asset] = &[
    asset(
        "index.html",
        HTML,
        include_str!("../../static/study/index.html"),
    ),
    asset(
        "study.css",
        CSS,
        include_str!("../../static/study/study.css"),
    ),
    asset("study.js", JS, include_str!("../../static/study/study.js")),
    asset(
        "markdown.js",
        JS,
        include_str!("../../static/study/markdown.js"),
    ),
    asset("sse.js", JS, include_str!("../../static/study/sse.js")),
];

const DOCS_ASSETS: &[Asset] = &[
    asset(
        "index.html",
        HTML,
        include_str!("../../static/docs/index.html"),
    ),
    asset("docs.css", CSS, include_str!("../../static/docs/docs.css")),
    asset("docs.js", JS, include_str!("../../static/docs/docs.js")),
];

const fn asset(name: &'static str, content_type: &'static str, body: &'static str) -> Asset {
    Asset {
        name,
        content_type,
        body,
    }
}

/// Everything is same-origin: no inline script, no third-party host, no framing by others.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'";

#[utoipa::path(get, path = "/study", tag = "pages", operation_id = "study",
    summary = "The study page: lesson tree, lesson and a ChatKit chat panel (embedded, works offline)",
    responses((status = 200, description = "HTML page", content((String = "text/html"))), (status = 500, description = "Internal error: an opaque message and the request id; details only in the log.", body = ErrorBody)))]
async fn study_index() -> Response {
    serve(STUDY_ASSETS, "index.html")
}

#[utoipa::path(get, path = "/study/{file}", tag = "pages", operation_id = "studyAsset",
    summary = "An embedded asset of the study page",
    params(("file" = String, Path, description = "`study.js`, `markdown.js`, `sse.js` or `study.css`")),
    responses(
        (status = 200, description = "The asset", content((String = "text/javascript"), (String = "text/css"))),
        (status = 404, description = "No such file.", body = ErrorBody),
        (status = 500, description = "Internal error: an opaque message and the request id; details only in the log.", body = ErrorBody)))]
async fn study_asset(Path(file): Path<String>) -> Response {
    serve(STUDY_ASSETS, &file)
}

#[utoipa::path(get, path = "/docs", tag = "pages", operation_id = "docs",
    summary = "API documentation page (embedded, renders /openapi.json)",
    responses((status = 200, description = "HTML page", content((String = "text/html"))), (status = 500, description = "Internal error: an opaque message and the request id; details only in the log.", body = ErrorBody)))]
async fn docs_index() -> Response {
    serve(DOCS_ASSETS, "index.html")
}

#[utoipa::path(get, path = "/docs/{file}", tag = "pages", operation_id = "docsAsset",
    summary = "An embedded asset of the documentation page",
    params(("file" = String, Path, description = "`docs.js` or `docs.css`")),
    responses(
        (status = 200, description = "The asset", content((String = "text/javascript"), (String = "text/css"))),
        (status = 404, description = "No such file.", body = ErrorBody),
        (status = 500, description = "Internal error: an opaque message and the request id; details only in the log.", body = ErrorBody)))]
async fn docs_asset(Path(file): Path<String>) -> Response {
    serve(DOCS_ASSETS, &file)
}

fn serve(assets: &[Asset], name: &str) -> Response {
    let Some(asset) = assets.iter().find(|a| a.name == name) else {
        return ApiError::not_found(format!("no such file `{name}`")).into_response();
    };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // The assets change with the binary only; revalidating keeps an upgrade visible at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_asset_is_found_by_name_and_unknown_names_are_404() {
        for asset in STUDY_ASSETS {
            assert_eq!(serve(STUDY_ASSETS, asset.name).status(), 200);
        }
        assert_eq!(serve(DOCS_ASSETS, "../Cargo.toml").status(), 404);
    }
}
