//! Parsing of `POST /chatkit` bodies into [`Request`]: the `type` discriminator first, then its
//! `params` with `serde_path_to_error`, so that a 400 names the offending field path exactly
//! (e.g. `params.input.content[0].text`). Unknown fields are ignored, as pydantic does.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::ChatKitError;
use super::strict::Strict;
use super::types::{InferenceOptions, UserContent};

/// One request, by `type`. It serialises back to its wire body (`{"type":…,"params":…}`), which
/// the fuzz target `chatkit_request` uses to check that what parses re-parses to the same request.
/// It is also the request body of `POST /chatkit` in the OpenAPI document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(
    as = ChatKitRequest,
    description = "Every request is `{type, params, metadata?}`; `params` is required on every type. Streaming types (`threads.create`, `threads.add_user_message`, `threads.add_client_tool_output`, `threads.add_structured_input`, `threads.retry_after_item`, `threads.custom_action`) are answered with Server-Sent Events (`ThreadStreamEvent`), the others with JSON."
)]
#[serde(tag = "type", content = "params")]
pub enum Request {
    /// `threads.create`: answered with Server-Sent Events (`ThreadStreamEvent`).
    #[serde(rename = "threads.create")]
    ThreadsCreate(InputParams),
    /// `threads.add_user_message`: answered with Server-Sent Events (`ThreadStreamEvent`).
    #[serde(rename = "threads.add_user_message")]
    AddUserMessage(ThreadInputParams),
    /// `threads.add_client_tool_output`: answered with Server-Sent Events (`ThreadStreamEvent`).
    #[serde(rename = "threads.add_client_tool_output")]
    AddClientToolOutput(ToolOutputParams),
    /// `threads.add_structured_input`: answered with Server-Sent Events (`ThreadStreamEvent`).
    #[serde(rename = "threads.add_structured_input")]
    AddStructuredInput(StructuredInputParams),
    /// `threads.retry_after_item`: answered with Server-Sent Events (`ThreadStreamEvent`).
    #[serde(rename = "threads.retry_after_item")]
    RetryAfterItem(ThreadItemParams),
    /// `threads.custom_action`: answered with Server-Sent Events (`ThreadStreamEvent`).
    #[serde(rename = "threads.custom_action")]
    CustomAction(ActionParams),
    /// `threads.sync_custom_action`: answered with 400 `unsupported` (this tutor has no synchronous actions).
    #[serde(rename = "threads.sync_custom_action")]
    SyncCustomAction(ActionParams),
    /// `threads.get_by_id`: answered with a `Thread` (first 20 items, ascending).
    #[serde(rename = "threads.get_by_id")]
    GetById(ThreadParams),
    /// `threads.list`: answered with a page of `Thread`s (each with an empty items page).
    #[serde(rename = "threads.list")]
    ListThreads(ListParams),
    /// `threads.update`: answered with the `Thread` with an empty items page.
    #[serde(rename = "threads.update")]
    UpdateThread(UpdateParams),
    /// `threads.delete`: answered with `{}`.
    #[serde(rename = "threads.delete")]
    DeleteThread(ThreadParams),
    /// `items.list`: answered with a page of `ThreadItem`s.
    #[serde(rename = "items.list")]
    ListItems(ListItemsParams),
    /// `items.feedback`: answered with `{}`.
    #[serde(rename = "items.feedback")]
    Feedback(FeedbackParams),
    /// `attachments.create`: answered with 400 `unsupported` (attachments are not supported).
    #[serde(rename = "attachments.create")]
    CreateAttachment(AttachmentCreateParams),
    /// `attachments.delete`: answered with 400 `unsupported`.
    #[serde(rename = "attachments.delete")]
    DeleteAttachment(AttachmentDeleteParams),
    /// `input.transcribe`: answered with 400 `unsupported` (no transcription).
    #[serde(rename = "input.transcribe")]
    Transcribe(TranscribeParams),
}

impl Request {
    /// Requests answered with Server-Sent Events (`is_streaming_req` in the reference).
    pub fn is_streaming(&self) -> bool {
        matches!(
            self,
            Request::ThreadsCreate(_)
                | Request::AddUserMessage(_)
                | Request::AddClientToolOutput(_)
                | Request::AddStructuredInput(_)
                | Request::RetryAfterItem(_)
                | Request::CustomAction(_)
        )
    }

    /// The thread a streaming request continues (`None` for `threads.create` and the
    /// non-streaming requests).
    pub fn thread_id(&self) -> Option<&str> {
        match self {
            Request::AddUserMessage(p) => Some(&p.thread_id),
            Request::AddClientToolOutput(p) => Some(&p.thread_id),
            Request::AddStructuredInput(p) => Some(&p.thread_id),
            Request::RetryAfterItem(p) => Some(&p.thread_id),
            Request::CustomAction(p) => Some(&p.thread_id),
            _ => None,
        }
    }

    /// Requests counted against the chat rate limit (a custom action may be an answer
    /// button, which is a chat turn).
    pub fn is_rate_limited(&self) -> bool {
        matches!(
            self,
            Request::ThreadsCreate(_)
                | Request::AddUserMessage(_)
                | Request::RetryAfterItem(_)
                | Request::CustomAction(_)
        )
    }
}

/// `UserMessageInput`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = UserMessageInput)]
pub struct UserInput {
    pub content: Vec<UserContent>,
    pub attachments: Vec<String>,
    #[serde(default)]
    pub quoted_text: Option<String>,
    pub inference_options: InferenceOptions,
}

impl UserInput {
    /// The text of the message (tags contribute their text).
    pub fn text(&self) -> String {
        self.content
            .iter()
            .map(UserContent::text)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InputParams {
    pub input: UserInput,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ThreadInputParams {
    pub thread_id: String,
    pub input: UserInput,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ToolOutputParams {
    pub thread_id: String,
    /// Any JSON, `null` included; the key itself is required.
    pub result: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StructuredInputParams {
    pub thread_id: String,
    pub item_id: String,
    pub input: StructuredSubmission,
}

/// `StructuredInputSubmission`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StructuredSubmission {
    #[serde(default = "answered")]
    #[schema(default = "answered")]
    pub status: SubmissionStatus,
    #[serde(default)]
    pub answers: std::collections::BTreeMap<String, AnswerSubmission>,
}

fn answered() -> SubmissionStatus {
    SubmissionStatus::Answered
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionStatus {
    Answered,
    Skipped,
}

impl SubmissionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionStatus::Answered => "answered",
            SubmissionStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnswerSubmission {
    #[serde(default)]
    #[schema(default = json!([]))]
    pub values: Vec<String>,
    #[serde(default)]
    #[schema(default = false)]
    pub skipped: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ThreadItemParams {
    pub thread_id: String,
    pub item_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActionParams {
    pub thread_id: String,
    #[serde(default)]
    pub item_id: Option<String>,
    pub action: Action,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Action {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub payload: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ThreadParams {
    pub thread_id: String,
}

/// `asc` or `desc` (the default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    Asc,
    #[default]
    Desc,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ListParams {
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    #[schema(default = "desc")]
    pub order: Order,
    #[serde(default)]
    pub after: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ListItemsParams {
    pub thread_id: String,
    #[serde(flatten)]
    pub page: ListParams,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UpdateParams {
    pub thread_id: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedbackParams {
    pub thread_id: String,
    pub item_ids: Vec<String>,
    pub kind: FeedbackKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    Positive,
    Negative,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttachmentCreateParams {
    pub name: String,
    pub size: i64,
    pub mime_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttachmentDeleteParams {
    pub attachment_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TranscribeParams {
    pub audio_base64: String,
    pub mime_type: String,
}

/// Every request `type`, for the error message of an unknown one.
const TYPES: &[&str] = &[
    "threads.create",
    "threads.add_user_message",
    "threads.add_client_tool_output",
    "threads.add_structured_input",
    "threads.retry_after_item",
    "threads.custom_action",
    "threads.sync_custom_action",
    "threads.get_by_id",
    "threads.list",
    "threads.update",
    "threads.delete",
    "items.list",
    "items.feedback",
    "attachments.create",
    "attachments.delete",
    "input.transcribe",
];

/// Parses a request body; every failure is a 400 naming the field path.
pub fn parse(body: &[u8]) -> Result<Request, ChatKitError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ChatKitError::BadRequest(format!("body is not valid JSON: {e}")))?;
    // PostgreSQL refuses U+0000 in text and JSONB: refused here, on both backends alike,
    // before anything is written (a NUL once lost a message behind a retryable error).
    if let Some(field) = nul_field(&value, String::new()) {
        return Err(ChatKitError::BadRequest(format!(
            "{field}: must not contain U+0000 (NUL)"
        )));
    }
    let Value::Object(mut object) = value else {
        return Err(ChatKitError::BadRequest(
            "body: expected a JSON object".into(),
        ));
    };
    let kind = match object.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ChatKitError::BadRequest("type: expected a string".into())),
        None => return Err(ChatKitError::BadRequest("type: field required".into())),
    };
    let params = object
        .remove("params")
        .ok_or_else(|| ChatKitError::BadRequest("params: field required".into()))?;
    // `metadata` is free-form but, as the reference's `dict[str, Any]`, must be an object when
    // sent (schemathesis found an array accepted and silently ignored).
    if object.get("metadata").is_some_and(|m| !m.is_object()) {
        return Err(ChatKitError::BadRequest(
            "metadata: expected an object".into(),
        ));
    }
    by_type(&kind, params)
}

/// The path (`params.input.content[0].text`) of the first string or key holding U+0000.
fn nul_field(value: &Value, path: String) -> Option<String> {
    let field = |key: &str| match path.is_empty() {
        true => key.to_owned(),
        false => format!("{path}.{key}"),
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(if path.is_empty() {
            "body".to_owned()
        } else {
            path
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_field(v, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some(field(&k.replace('\0', "\\u0000")))
            } else {
                nul_field(v, field(k))
            }
        }),
        _ => None,
    }
}

fn by_type(kind: &str, params: Value) -> Result<Request, ChatKitError> {
    Ok(match kind {
        "threads.create" => Request::ThreadsCreate(params_of(params)?),
        "threads.add_user_message" => Request::AddUserMessage(params_of(params)?),
        "threads.add_client_tool_output" => Request::AddClientToolOutput(tool_output(params)?),
        "threads.add_structured_input" => Request::AddStructuredInput(params_of(params)?),
        "threads.retry_after_item" => Request::RetryAfterItem(params_of(params)?),
        "threads.custom_action" => Request::CustomAction(params_of(params)?),
        "threads.sync_custom_action" => Request::SyncCustomAction(params_of(params)?),
        "threads.get_by_id" => Request::GetById(params_of(params)?),
        "threads.list" => Request::ListThreads(params_of(params)?),
        "threads.update" => Request::UpdateThread(params_of(params)?),
        "threads.delete" => Request::DeleteThread(params_of(params)?),
        "items.list" => Request::ListItems(params_of(params)?),
        "items.feedback" => Request::Feedback(params_of(params)?),
        "attachments.create" => Request::CreateAttachment(params_of(params)?),
        "attachments.delete" => Request::DeleteAttachment(params_of(params)?),
        "input.transcribe" => Request::Transcribe(params_of(params)?),
        other => {
            return Err(ChatKitError::BadRequest(format!(
                "type: unknown request type {other:?}; expected one of {}",
                TYPES.join(", ")
            )));
        }
    })
}

/// `result` must be present even when it is `null`, which serde alone cannot tell apart.
fn tool_output(params: Value) -> Result<ToolOutputParams, ChatKitError> {
    if params.is_object() && params.get("result").is_none() {
        return Err(ChatKitError::BadRequest(
            "params.result: field required".into(),
        ));
    }
    params_of(params)
}

fn params_of<T: DeserializeOwned>(params: Value) -> Result<T, ChatKitError> {
    serde_path_to_error::deserialize(Strict(params)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // Missing fields are reported on the parent; name the field itself.
        let field = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let full = match (path.as_str(), field) {
            (".", Some(f)) => format!("params.{f}"),
            (p, Some(f)) => format!("params.{p}.{f}"),
            (".", None) => "params".to_owned(),
            (p, None) => format!("params.{p}"),
        };
        ChatKitError::BadRequest(format!("{full}: {message}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        match parse(body.as_bytes()) {
            Err(e) => e.to_string(),
            Ok(r) => panic!("accepted {body}: {r:?}"),
        }
    }

    #[test]
    fn a_nul_anywhere_is_refused_naming_its_field() {
        let text = r#"{"type":"threads.create","params":{"input":{"content":[{"type":"input_text","text":"a\u0000b"}],"attachments":[],"inference_options":{}}}}"#;
        assert_eq!(
            err(text),
            "params.input.content[0].text: must not contain U+0000 (NUL)"
        );
        let title = r#"{"type":"threads.update","params":{"thread_id":"thr_1","title":"\u0000"}}"#;
        assert!(err(title).starts_with("params.title:"), "{}", err(title));
        let id = r#"{"type":"threads.get_by_id","params":{"thread_id":"thr\u0000"}}"#;
        assert!(err(id).starts_with("params.thread_id:"), "{}", err(id));
    }

    #[test]
    fn errors_name_the_offending_field_path() {
        assert!(err(r#"{"type":"threads.list"}"#).starts_with("params: field required"));
        assert!(err(r#"{"type":"threads.nope","params":{}}"#).starts_with("type: unknown"));
        assert!(
            err(r#"{"type":"threads.create","params":{"input":{"content":[],"inference_options":{}}}}"#)
                .starts_with("params.input.attachments:")
        );
        assert!(
            err(r#"{"type":"threads.create","params":{"input":{"content":[{"type":"input_text"}],"attachments":[],"inference_options":{}}}}"#)
                .starts_with("params.input.content[0].text:")
        );
        assert!(
            err(r#"{"type":"threads.list","params":{"order":"up"}}"#).starts_with("params.order:")
        );
        assert!(
            err(r#"{"type":"threads.add_client_tool_output","params":{"thread_id":"t"}}"#)
                .starts_with("params.result:")
        );
        assert!(
            err(r#"{"type":"threads.list","params":{},"metadata":[]}"#).starts_with("metadata:")
        );
        assert!(
            err(r#"{"type":"threads.list","params":{},"metadata":null}"#).starts_with("metadata:")
        );
        // Found by schemathesis: serde reads a struct or a tagged enum from a positional array.
        assert!(
            err(r#"{"type":"threads.get_by_id","params":["thr_1"]}"#)
                .starts_with("params: invalid type: sequence")
        );
        assert!(
            err(r#"{"type":"threads.create","params":{"input":{"content":[],"attachments":[],"inference_options":[null,null]}}}"#)
                .starts_with("params.input.inference_options: invalid type: sequence")
        );
        assert!(
            err(r#"{"type":"threads.create","params":{"input":{"content":[["input_text","hi"]],"attachments":[],"inference_options":{}}}}"#)
                .starts_with("params.input.content[0]: invalid type: sequence")
        );
        assert!(
            err(r#"{"type":"threads.create","params":{"input":{"content":[{"type":0,"text":"hi"}],"attachments":[],"inference_options":{}}}}"#)
                .starts_with("params.input.content[0]: type:")
        );
        assert!(err("[1]").starts_with("body:"));
        assert!(err("{").starts_with("body is not valid JSON"));
    }

    #[test]
    fn unknown_fields_are_ignored_and_defaults_apply() {
        let r = parse(br#"{"type":"threads.list","params":{"extra":1},"metadata":{"a":1},"x":2}"#)
            .expect("valid");
        let Request::ListThreads(p) = r else {
            panic!("{r:?}")
        };
        assert_eq!(p.order, Order::Desc);
        assert_eq!(p.limit, None);
        let r = parse(br#"{"type":"threads.add_client_tool_output","params":{"thread_id":"t","result":null}}"#)
            .expect("null result is allowed");
        assert!(r.is_streaming());
    }

    #[test]
    fn a_request_of_every_type_re_serialises_to_a_body_that_parses_to_it() {
        let input = r#"{"content":[{"type":"input_text","text":"hi"},{"type":"input_tag","id":"t","text":"tag","data":{"k":[1,2.5]},"interactive":true}],"attachments":["a"],"quoted_text":"q","inference_options":{"tool_choice":{"id":"x"},"model":"ask"}}"#;
        let params = [
            ("threads.create", format!(r#"{{"input":{input}}}"#)),
            ("threads.add_user_message", format!(r#"{{"thread_id":"t","input":{input}}}"#)),
            ("threads.add_client_tool_output", r#"{"thread_id":"t","result":null}"#.into()),
            ("threads.add_structured_input", r#"{"thread_id":"t","item_id":"i","input":{"status":"skipped","answers":{"q":{"values":["a"]}}}}"#.into()),
            ("threads.retry_after_item", r#"{"thread_id":"t","item_id":"i"}"#.into()),
            ("threads.custom_action", r#"{"thread_id":"t","action":{"type":"go"}}"#.into()),
            ("threads.sync_custom_action", r#"{"thread_id":"t","item_id":"i","action":{"type":"go","payload":{"n":-1}}}"#.into()),
            ("threads.get_by_id", r#"{"thread_id":"t"}"#.into()),
            ("threads.list", r#"{"limit":3,"order":"asc","after":"x"}"#.into()),
            ("threads.update", r#"{"thread_id":"t","title":"T"}"#.into()),
            ("threads.delete", r#"{"thread_id":"t"}"#.into()),
            ("items.list", r#"{"thread_id":"t","limit":2}"#.into()),
            ("items.feedback", r#"{"thread_id":"t","item_ids":["i"],"kind":"negative"}"#.into()),
            ("attachments.create", r#"{"name":"a.png","size":10,"mime_type":"image/png"}"#.into()),
            ("attachments.delete", r#"{"attachment_id":"a"}"#.into()),
            ("input.transcribe", r#"{"audio_base64":"AAAA","mime_type":"audio/webm"}"#.into()),
        ];
        assert_eq!(params.len(), TYPES.len());
        for (ty, params) in params {
            let body = format!(r#"{{"type":"{ty}","params":{params}}}"#);
            let request = parse(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
            let again = serde_json::to_value(&request).expect("serialisable");
            assert_eq!(again["type"], ty);
            let reparsed = parse(again.to_string().as_bytes()).expect("re-parses");
            assert_eq!(format!("{reparsed:?}"), format!("{request:?}"), "{body}");
        }
    }

    mod fuzz {
        //! Property tests standing in for a fuzz target: whatever bytes arrive, the parser
        //! answers a request or a client error, never a panic or a server error.
        use super::*;
        use proptest::prelude::*;
        use serde_json::Value;

        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                "[a-z_ .]{0,12}".prop_map(Value::from),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                    proptest::collection::btree_map(
                        prop_oneof![
                            Just("input".to_owned()),
                            Just("thread_id".to_owned()),
                            Just("content".to_owned()),
                            Just("attachments".to_owned()),
                            Just("inference_options".to_owned()),
                            Just("type".to_owned()),
                            Just("text".to_owned()),
                            "[a-z_]{1,10}",
                        ],
                        inner,
                        0..6
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// A client error, or a request that re-serialises to a body parsing to the same
        /// request (compared by `Debug`: the params types have no `PartialEq`).
        fn client_error_or_ok(body: &[u8]) -> Result<(), TestCaseError> {
            match parse(body) {
                Err(e) => prop_assert!(
                    matches!(
                        e,
                        ChatKitError::BadRequest(_) | ChatKitError::Unsupported(_)
                    ),
                    "{e}"
                ),
                Ok(request) => {
                    let again = serde_json::to_vec(&request).expect("serialisable");
                    let reparsed = parse(&again).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(format!("{reparsed:?}"), format!("{request:?}"));
                }
            }
            Ok(())
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_are_a_request_or_a_client_error(
                body in proptest::collection::vec(any::<u8>(), 0..256)
            ) {
                client_error_or_ok(&body)?;
            }

            #[test]
            fn any_type_with_any_params_is_a_request_or_a_client_error(
                ty in proptest::sample::select(
                    TYPES.iter().copied().chain(["threads.nope"]).collect::<Vec<_>>()
                ),
                params in json(),
            ) {
                let body = serde_json::json!({"type": ty, "params": params}).to_string();
                client_error_or_ok(body.as_bytes())?;
            }

            #[test]
            fn deeply_nested_json_is_a_client_error_not_a_crash(depth in 1usize..5000) {
                let body = format!(
                    r#"{{"type":"threads.list","params":{{"x":{}{}}}}}"#,
                    "[".repeat(depth),
                    "]".repeat(depth)
                );
                client_error_or_ok(body.as_bytes())?;
            }
        }
    }
}
