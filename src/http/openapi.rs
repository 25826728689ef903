//! `GET /openapi.json`: the OpenAPI 3.1 document of every route, generated from the code with
//! utoipa.
//!
//! Owns: the [`ApiDoc`] that collects every handler's `#[utoipa::path]` (route, parameters,
//! body, answers) and, through them, the `ToSchema` types of their bodies (the ChatKit request
//! union is `chatkit::request::Request` itself); the few schemas that describe bytes no Rust
//! type holds (the SSE frame, the JSON answers of the ten non-streaming ChatKit requests);
//! serving the document. A snapshot test (tests/api/http/openapi.rs) compares the generated
//! document with the committed `openapi/openapi.json`; `UPDATE_OPENAPI=1` rewrites it.

use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Server};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::chatkit::types::{Page, Thread, ThreadItem};
use crate::error::ErrorBody;
use crate::state::AppState;

/// Every route of the service, collected from the handlers' `#[utoipa::path]` attributes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "study-mode-api",
        description = "Backend of the study-mode AI tutor: the ChatKit protocol at POST /chatkit, lesson content, suggestions, a study page and operations endpoints. Every error has the shape `Error`; every response carries `X-Request-ID`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        super::root::index,
        super::health::live,
        super::health::ready,
        super::root::metrics,
        document,
        super::static_files::docs_index,
        super::static_files::docs_asset,
        super::static_files::study_index,
        super::static_files::study_asset,
        super::content::lessons,
        super::content::lesson,
        super::suggestions::suggest,
        super::chatkit::chatkit,
        super::admin::invalidate_cache,
        super::webhook::github_webhook,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Bearer, &Served, &Metadata, &EmptyValues),
    tags(
        (name = "chatkit"),
        (name = "content"),
        (name = "pages"),
        (name = "service"),
        (name = "admin"),
    )
)]
pub struct ApiDoc;

/// The `bearer` scheme `POST /chatkit` names (utoipa has no attribute for a security scheme).
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT or opaque SSO token")
            .build();
        scheme.description = Some(
            "Required outside development mode. In development mode send `X-User-ID` instead."
                .to_owned(),
        );
        if let Some(components) = openapi.components.as_mut() {
            components
                .security_schemes
                .insert("bearer".to_owned(), SecurityScheme::Http(scheme));
        }
    }
}

/// `metadata`, free-form but an object when sent, on every member of the ChatKit union: the
/// parser checks it beside `type` and `params` (chatkit::request::parse), but no variant of
/// `Request` holds it, so the derive cannot name it.
struct Metadata;

impl Modify for Metadata {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let union = openapi
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut("ChatKitRequest"));
        let Some(RefOr::T(Schema::OneOf(union))) = union else {
            return;
        };
        for member in &mut union.items {
            if let RefOr::T(Schema::Object(object)) = member {
                let metadata = ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(Some("Free-form; ignored by this server."));
                object
                    .properties
                    .insert("metadata".to_owned(), metadata.into());
            }
        }
    }
}

/// Query parameters whose empty value (`?mode=`) means "absent" (`query::empty_as_none`):
/// `allowEmptyValue`, which utoipa's `Parameter` does not model (it is deprecated in OpenAPI
/// 3.1), written as an extension. schemathesis reads it: without it an empty `mode` is
/// schema-violating, and the server rightly accepts it.
const EMPTY_AS_NONE: [(&str, &str); 3] = [
    ("/chatkit", "lesson_path"),
    ("/chatkit/suggestions", "lesson_path"),
    ("/chatkit/suggestions", "mode"),
];

struct EmptyValues;

impl Modify for EmptyValues {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, name) in EMPTY_AS_NONE {
            let Some(item) = openapi.paths.paths.get_mut(path) else {
                continue;
            };
            let operations = [item.get.as_mut(), item.post.as_mut()];
            let parameters = operations
                .into_iter()
                .flatten()
                .filter_map(|op| op.parameters.as_mut())
                .flatten();
            for parameter in parameters.filter(|p| p.name == name) {
                let flag = Extensions::from_iter([("allowEmptyValue", serde_json::json!(true))]);
                parameter
                    .extensions
                    .get_or_insert_with(Extensions::default)
                    .merge(flag);
            }
        }
    }
}

/// Relative to wherever the service is served.
struct Served;

impl Modify for Served {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.servers = Some(vec![Server::new("/")]);
    }
}

/// The document as JSON, pretty-printed as committed.
pub fn document_json() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    json.push('\n');
    json
}

/// Generated once per process.
static DOCUMENT: LazyLock<String> = LazyLock::new(document_json);

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(document))
}

#[utoipa::path(get, path = "/openapi.json", tag = "service", operation_id = "openapi",
    summary = "This OpenAPI 3.1 document",
    responses(
        (status = 200, description = "The document.", content((Object = "application/json"))),
        (status = 500, description = "Internal error: an opaque message and the request id; details only in the log.", body = ErrorBody)))]
async fn document() -> Response {
    let mut response = DOCUMENT.as_str().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// One Server-Sent Event of a ChatKit stream, as an SSE parser reads it (OpenAPI 3.2 reads a
/// `text/event-stream` schema this way, one event at a time): the frame is `data: {json}\n\n`
/// with no `event:`, `id:` or `retry:` line, so `event` is the default `message`, and `data` is
/// the JSON text of one `ThreadStreamEvent`. No Rust type holds a frame (chatkit::sse writes
/// the bytes). utoipa has no `contentSchema` keyword, so it is written as an extension (which
/// utoipa serialises under any name): schemathesis validates each event's JSON with it.
pub struct ThreadStreamFrame;

impl PartialSchema for ThreadStreamFrame {
    fn schema() -> RefOr<Schema> {
        let event = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["message"]));
        let event_schema = serde_json::json!({ "$ref": "#/components/schemas/ThreadStreamEvent" });
        let data = ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type("application/json")
            .extensions(Some(Extensions::from_iter([(
                "contentSchema",
                event_schema,
            )])));
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Object))
            .description(Some(
                "One Server-Sent Event of a ChatKit stream, as an SSE parser reads it (OpenAPI 3.2 reads a `text/event-stream` schema this way, one event at a time): the frame is `data: {json}\\n\\n` with no `event:`, `id:` or `retry:` line, so `event` is the default `message`, and `data` is the JSON text of one `ThreadStreamEvent`.",
            ))
            .property("event", event)
            .property("data", data)
            .required("data")
            .into()
    }
}

impl ToSchema for ThreadStreamFrame {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            crate::chatkit::types::Event::name().into_owned(),
            <crate::chatkit::types::Event as PartialSchema>::schema(),
        ));
        <crate::chatkit::types::Event as ToSchema>::schemas(schemas);
    }
}

/// The JSON answer of a non-streaming ChatKit request, by request type: a `Thread`
/// (`threads.get_by_id`, `threads.update`), a page of threads (`threads.list`) or of items
/// (`items.list`), or `{}` (`threads.delete`, `items.feedback`). chatkit::json writes the bytes;
/// this is `anyOf` because an empty page is both kinds of page, which utoipa's derive (only
/// `oneOf` for an untagged enum) cannot say.
pub struct ChatKitJsonResponse;

impl PartialSchema for ChatKitJsonResponse {
    fn schema() -> RefOr<Schema> {
        let empty = ObjectBuilder::new()
            .schema_type(Type::Object)
            .max_properties(Some(0))
            .description(Some("The literal `{}`."));
        AnyOfBuilder::new()
            .description(Some(
                "The JSON answer of a non-streaming request, by request type (see each request type).",
            ))
            .item(Ref::from_schema_name(Thread::name()))
            .item(<Page<Thread> as PartialSchema>::schema())
            .item(<Page<ThreadItem> as PartialSchema>::schema())
            .item(empty)
            .into()
    }
}

impl ToSchema for ChatKitJsonResponse {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Thread::name().into_owned(), Thread::schema()));
        <Thread as ToSchema>::schemas(schemas);
        <Page<ThreadItem> as ToSchema>::schemas(schemas);
        <Page<Thread> as ToSchema>::schemas(schemas);
    }
}
