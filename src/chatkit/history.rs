//! The conversation a responder sees: the thread's last items (as many as the responder asks
//! for, [`crate::turn::Responder::history_items`]), oldest first, as [`Turn`]s. Hidden-context items are included (as `Role::Hidden`); items that are neither
//! text nor hidden context (widgets, tool calls, workflows) are left out.

use serde_json::Value;

use super::error::Stop;
use super::request::Order;
use super::store::{Hidden, PageQuery, ThreadStore};
use super::types::{ItemKind, ThreadItem, UserContent};
use crate::turn::{Role, Turn};

/// The last `limit` items of the thread, oldest first, without `exclude` (the message being
/// answered, when it is already stored).
pub async fn load(
    store: &ThreadStore,
    owner: &str,
    thread_id: &str,
    limit: usize,
    exclude: Option<&str>,
) -> Result<Vec<Turn>, Stop> {
    let fetch = u32::try_from(limit).unwrap_or(u32::MAX).saturating_add(1);
    let page = PageQuery::first(fetch, Order::Desc);
    let newest_first = store
        .load_items(owner, thread_id, &page, Hidden::Include)
        .await?;
    let mut turns: Vec<Turn> = newest_first
        .data
        .iter()
        .filter(|i| Some(i.id.as_str()) != exclude)
        .take(limit)
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
