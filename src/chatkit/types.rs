//! Serde twins of the `openai-chatkit` 1.6.5 wire types (`chatkit/types.py`) that this server
//! reads or writes. Serialised as the reference does (`exclude_none`): `None` is omitted,
//! non-null defaults (`[]`, `{}`, `false`) are written. Unknown request fields are ignored.
//! Widgets, structured-input questions, workflows and tasks are kept as opaque JSON: the
//! server stores and relays them but never builds them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::ids::wire_time;

/// `Page[T]`: one page of a list, `after` = id of its last element when more follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl<T> Page<T> {
    /// The empty page (`{"data":[],"has_more":false}`).
    pub fn empty() -> Self {
        Self {
            data: Vec::new(),
            has_more: false,
            after: None,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            data: self.data.into_iter().map(f).collect(),
            has_more: self.has_more,
            after: self.after,
        }
    }
}

/// `Thread`: metadata plus one page of items. `metadata` is always `{}` on the wire, as the
/// reference never exposes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Thread {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub id: String,
    #[serde(with = "wire_time")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(schema_with = thread_status)]
    pub status: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_image_domains: Option<Vec<String>>,
    pub metadata: Map<String, Value>,
    pub items: Page<ThreadItem>,
}

/// `ThreadStatus` (`{"type":"active"}`, or `locked`/`closed` with an optional `reason`): kept as
/// JSON here, as stored, so its schema is written out for the OpenAPI document.
fn thread_status() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
    let status = |kind: &str, reason: bool| {
        let tag = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([kind.to_owned()]));
        let object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("type", tag)
            .required("type");
        match reason {
            true => object.property(
                "reason",
                ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null])),
            ),
            false => object,
        }
    };
    OneOfBuilder::new()
        .item(status("active", false))
        .item(status("locked", true))
        .item(status("closed", true))
        .build()
        .into()
}

/// One item of a thread: the fields every variant shares plus the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ThreadItem {
    pub id: String,
    pub thread_id: String,
    #[serde(with = "wire_time")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: ItemKind,
}

/// The `type`-tagged variants of `ThreadItem`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ItemKind {
    UserMessage(UserMessage),
    AssistantMessage {
        content: Vec<AssistantContent>,
    },
    ClientToolCall {
        status: String,
        call_id: String,
        name: String,
        arguments: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
    },
    Widget {
        widget: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        copy_text: Option<String>,
    },
    GeneratedImage {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<Value>,
    },
    StructuredInput {
        status: String,
        inputs: Vec<Value>,
    },
    Workflow {
        workflow: Value,
    },
    Task {
        task: Value,
    },
    HiddenContextItem {
        content: Value,
    },
    SdkHiddenContext {
        content: String,
    },
    EndOfTurn,
}

impl ItemKind {
    /// The wire `type` of this variant (also the store's `item_type` column).
    pub fn type_name(&self) -> &'static str {
        match self {
            ItemKind::UserMessage(_) => "user_message",
            ItemKind::AssistantMessage { .. } => "assistant_message",
            ItemKind::ClientToolCall { .. } => "client_tool_call",
            ItemKind::Widget { .. } => "widget",
            ItemKind::GeneratedImage { .. } => "generated_image",
            ItemKind::StructuredInput { .. } => "structured_input",
            ItemKind::Workflow { .. } => "workflow",
            ItemKind::Task { .. } => "task",
            ItemKind::HiddenContextItem { .. } => "hidden_context_item",
            ItemKind::SdkHiddenContext { .. } => "sdk_hidden_context",
            ItemKind::EndOfTurn => "end_of_turn",
        }
    }
}

/// Item types the client never sees (stored, used as model context, filtered from every page).
pub const HIDDEN_TYPES: [&str; 2] = ["hidden_context_item", "sdk_hidden_context"];

impl ThreadItem {
    pub fn is_hidden(&self) -> bool {
        HIDDEN_TYPES.contains(&self.kind.type_name())
    }
}

/// `UserMessageItem` without the shared fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserMessage {
    pub content: Vec<UserContent>,
    #[serde(default)]
    pub attachments: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_text: Option<String>,
    pub inference_options: InferenceOptions,
}

/// `UserMessageContent`: typed text or a tag. Read only from a JSON object (see
/// [`UserContentWire`]).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = UserMessageContent, description = "`UserMessageContent`: typed text or a tag.")]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UserContent {
    InputText {
        text: String,
    },
    InputTag {
        id: String,
        text: String,
        data: Map<String, Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
        #[serde(default)]
        #[schema(default = false)]
        interactive: bool,
    },
}

/// How [`UserContent`] is read. serde's internally tagged enums also accept a positional array
/// (`["input_text", "hi"]`) and a variant's index as its tag (`"type": 0`), which pydantic and
/// the OpenAPI document refuse (schemathesis found both accepted), so the content is read as a
/// JSON object whose `type` is a string, then as this enum.
#[derive(Deserialize)]
#[serde(remote = "UserContent", tag = "type", rename_all = "snake_case")]
enum UserContentWire {
    InputText {
        text: String,
    },
    InputTag {
        id: String,
        text: String,
        data: Map<String, Value>,
        #[serde(default)]
        group: Option<String>,
        #[serde(default)]
        interactive: bool,
    },
}

impl<'de> Deserialize<'de> for UserContent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly;
        impl<'de> serde::de::Visitor<'de> for ObjectOnly {
            type Value = UserContent;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a content object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<UserContent, A::Error> {
                use serde::de::Error;
                let object = Map::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                if object.get("type").is_some_and(|t| !t.is_string()) {
                    return Err(A::Error::custom(
                        "type: expected `input_text` or `input_tag`",
                    ));
                }
                UserContentWire::deserialize(Value::Object(object)).map_err(A::Error::custom)
            }
        }
        deserializer.deserialize_map(ObjectOnly)
    }
}

impl UserContent {
    pub fn text(&self) -> &str {
        match self {
            UserContent::InputText { text } | UserContent::InputTag { text, .. } => text,
        }
    }
}

/// `InferenceOptions`: the composer's tool and model pickers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InferenceOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ToolChoice {
    pub id: String,
}

/// `AssistantMessageContent` (`type` is always `output_text`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AssistantMessageContent)]
pub struct AssistantContent {
    #[serde(default)]
    #[schema(default = json!([]))]
    pub annotations: Vec<Value>,
    pub text: String,
    #[serde(rename = "type")]
    pub kind: OutputText,
}

impl AssistantContent {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            annotations: Vec::new(),
            text: text.into(),
            kind: OutputText::OutputText,
        }
    }
}

/// The one-value `type` of [`AssistantContent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(description = "Always `output_text`.")]
#[serde(rename_all = "snake_case")]
pub enum OutputText {
    OutputText,
}

/// `ThreadStreamEvent`: one SSE frame.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = ThreadStreamEvent)]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "thread.created")]
    ThreadCreated { thread: Thread },
    #[serde(rename = "thread.updated")]
    ThreadUpdated { thread: Thread },
    #[serde(rename = "thread.item.added")]
    ItemAdded { item: ThreadItem },
    #[serde(rename = "thread.item.updated")]
    ItemUpdated { item_id: String, update: ItemUpdate },
    #[serde(rename = "thread.item.done")]
    ItemDone { item: ThreadItem },
    #[serde(rename = "thread.item.removed")]
    ItemRemoved { item_id: String },
    #[serde(rename = "thread.item.replaced")]
    ItemReplaced { item: ThreadItem },
    #[serde(rename = "stream_options")]
    StreamOptions { stream_options: StreamOptions },
    /// `ProgressUpdateEvent`: a transient status line while the reply is prepared.
    #[serde(rename = "progress_update")]
    ProgressUpdate {
        #[serde(skip_serializing_if = "Option::is_none")]
        icon: Option<String>,
        text: String,
    },
    #[serde(rename = "error")]
    Error {
        code: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        allow_retry: bool,
    },
}

impl Event {
    /// The `type` of the event (metrics label).
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::ThreadCreated { .. } => "thread.created",
            Event::ThreadUpdated { .. } => "thread.updated",
            Event::ItemAdded { .. } => "thread.item.added",
            Event::ItemUpdated { .. } => "thread.item.updated",
            Event::ItemDone { .. } => "thread.item.done",
            Event::ItemRemoved { .. } => "thread.item.removed",
            Event::ItemReplaced { .. } => "thread.item.replaced",
            Event::StreamOptions { .. } => "stream_options",
            Event::ProgressUpdate { .. } => "progress_update",
            Event::Error { .. } => "error",
        }
    }

    /// A `custom` error event with a message for the student.
    pub fn error(message: impl Into<String>, allow_retry: bool) -> Self {
        Event::Error {
            code: "custom".into(),
            message: Some(message.into()),
            allow_retry,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StreamOptions {
    pub allow_cancel: bool,
}

/// `ThreadItemUpdate` members this server emits.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = ThreadItemUpdate)]
#[serde(tag = "type")]
pub enum ItemUpdate {
    #[serde(rename = "assistant_message.content_part.added")]
    PartAdded {
        content_index: usize,
        content: AssistantContent,
    },
    #[serde(rename = "assistant_message.content_part.text_delta")]
    TextDelta { content_index: usize, delta: String },
    #[serde(rename = "assistant_message.content_part.done")]
    PartDone {
        content_index: usize,
        content: AssistantContent,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_message_serialises_like_the_reference() {
        let item = ThreadItem {
            id: "msg_1".into(),
            thread_id: "thr_1".into(),
            created_at: DateTime::from_timestamp_micros(1_700_000_000_000_000).expect("t"),
            kind: ItemKind::UserMessage(UserMessage {
                content: vec![UserContent::InputText { text: "hi".into() }],
                attachments: vec![],
                quoted_text: None,
                inference_options: InferenceOptions::default(),
            }),
        };
        let json = serde_json::to_value(&item).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"id":"msg_1","thread_id":"thr_1","created_at":"2023-11-14T22:13:20Z",
                "type":"user_message","content":[{"type":"input_text","text":"hi"}],
                "attachments":[],"inference_options":{}})
        );
        let back: ThreadItem = serde_json::from_value(json).expect("back");
        assert_eq!(back, item);
    }

    #[test]
    fn an_error_event_omits_a_missing_message() {
        let e = Event::Error {
            code: "stream.error".into(),
            message: None,
            allow_retry: true,
        };
        assert_eq!(
            serde_json::to_string(&e).expect("json"),
            r#"{"type":"error","code":"stream.error","allow_retry":true}"#
        );
    }
}
