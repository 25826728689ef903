//! The conversation a responder sees: the thread's last 30 items, oldest first, as
//! [`Turn`]s. Hidden-context items are included (as `Role::Hidden`); items that are neither
//! text nor hidden context (widgets, tool calls, workflows) are left out.

use serde_json::Value;

use super::request::Order;
use super::sse::Stop;
use super::store::{Hidden, PageQuery, ThreadStore};
use super::types::{ItemKind, ThreadItem, UserContent};
use crate::tutor::turn::{Role, Turn};

/// How many items of the thread the responder sees.
pub const HISTORY_ITEMS: u32 = 30;

/// The last [`HISTORY_ITEMS`] items of the thread, oldest first, without `exclude` (the
/// message being answered, when it is already stored).
pub async fn load(
    store: &ThreadStore,
    owner: &str,
    thread_id: &str,
    exclude: Option<&str>,
) -> Result<Vec<Turn>, Stop> {
    let page = PageQuery::first(HISTORY_ITEMS + 1, Order::Desc);
    let newest_first = store
        .load_items(owner, thread_id, &page, Hidden::Include)
        .await?;
    let mut turns: Vec<Turn> = newest_first
        .data
        .iter()
        .filter(|i| Some(i.id.as_str()) != exclude)
        .take(HISTORY_ITEMS as usize)
        .filter_map(turn_of)
        .collect();
    turns.reverse();
    Ok(turns)
}

fn turn_of(item: &ThreadItem) -> Option<Turn> {
    let (role, text) = match &item.kind {
        ItemKind::UserMessage(m) => (
            Role::User,
            m.content
                .iter()
                .map(UserContent::text)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        ItemKind::AssistantMessage { content } => (
            Role::Assistant,
            content
                .iter()
                .map(|c| c.text.as_str())
                .collect::<Vec<_>>()
                .join("\n\n"),
        ),
        ItemKind::SdkHiddenContext { content } => (Role::Hidden, content.clone()),
        ItemKind::HiddenContextItem { content } => (Role::Hidden, text_of(content)),
        _ => return None,
    };
    Some(Turn { role, text })
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
