//! One legacy row → the row we store, or the reason it cannot be taken. Pure: no I/O.
//!
//! The Python service wrote `data` as pydantic dumps of `openai-chatkit` types: in the current
//! layout wrapped (`{"thread": ThreadMetadata}`, `{"item": ThreadItem}`), in the older one bare
//! (the item itself; the thread's fields but `id` and `title`). The wrapper is recognised per
//! row, so a table that holds both is read too. The columns win over `data` for what the old
//! service queried by (`id`, `thread_id`, `user_id`, `created_at`, `title`, `lesson_path`).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::chatkit::ids::wire_time;
use crate::chatkit::trigger::is_start_trigger;
use crate::chatkit::types::{ItemKind, ThreadItem};

/// Longest imported title; the old service had no limit, the history pane shows one line.
pub const TITLE_CHARS: usize = 100;

/// A legacy `threads` row as read.
#[derive(Debug, Clone)]
pub struct LegacyThread {
    pub id: String,
    pub user_id: Option<String>,
    pub organization_id: Option<String>,
    pub lesson_path: Option<String>,
    pub title: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub data: Option<String>,
}

/// A legacy `items` row as read.
#[derive(Debug, Clone)]
pub struct LegacyItem {
    pub id: String,
    pub thread_id: Option<String>,
    pub user_id: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub data: Option<String>,
}

/// A thread as our store keeps it (`study_mode.threads`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewThread {
    pub id: String,
    pub user_id: String,
    pub organization_id: Option<String>,
    pub lesson_path: Option<String>,
    pub title: Option<String>,
    pub status: Value,
    pub metadata: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An item as our store keeps it (`study_mode.items`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewItem {
    pub user_id: String,
    pub updated_at: DateTime<Utc>,
    pub item: ThreadItem,
}

/// Parses `data` as a JSON object, unwrapping `{"<key>": {…}}`.
fn object(data: Option<&str>, key: &str) -> Result<Map<String, Value>, String> {
    let data = data.ok_or("data is NULL")?;
    let value: Value = serde_json::from_str(data).map_err(|e| format!("data is not JSON: {e}"))?;
    let Value::Object(mut outer) = value else {
        return Err("data is not a JSON object".into());
    };
    match outer.remove(key) {
        Some(Value::Object(inner)) => Ok(inner),
        Some(other) if !outer.contains_key("type") => {
            Err(format!("data.{key} is not an object: {}", kind(&other)))
        }
        Some(other) => {
            outer.insert(key.to_owned(), other);
            Ok(outer)
        }
        None => Ok(outer),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Trimmed, blank = absent.
fn text(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Ids are kept exactly as stored (the user id is the SSO's `sub`, compared as is); only an
/// empty one is refused.
fn id(value: Option<String>, column: &str) -> Result<String, String> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("{column} is empty"))
}

/// A title as we keep it: control characters become spaces, trimmed, at most
/// [`TITLE_CHARS`] characters ("…" when cut), blank = none.
pub fn clean_title(title: &str) -> Option<String> {
    let spaced: String = title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = spaced.trim();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.chars().count() <= TITLE_CHARS {
        return Some(trimmed.to_owned());
    }
    let cut: String = trimmed.chars().take(TITLE_CHARS - 1).collect();
    Some(format!("{}…", cut.trim_end()))
}

/// The thread we store for `row`.
pub fn thread(row: LegacyThread) -> Result<NewThread, String> {
    let user_id = id(row.user_id, "user_id")?;
    let created_at = row.created_at.ok_or("created_at is NULL")?;
    let meta = object(row.data.as_deref(), "thread")?;
    let status = match meta.get("status") {
        None | Some(Value::Null) => json!({"type": "active"}),
        Some(s @ Value::Object(o))
            if matches!(
                o.get("type").and_then(Value::as_str),
                Some("active" | "locked" | "closed")
            ) =>
        {
            s.clone()
        }
        Some(other) => return Err(format!("data.status is not a thread status: {other}")),
    };
    let metadata = match meta.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(format!("data.metadata is not an object: {}", kind(other)));
        }
    };
    let data_title = meta.get("title").and_then(Value::as_str).map(str::to_owned);
    let title = row.title.or(data_title).as_deref().and_then(clean_title);
    let data_lesson = metadata
        .get("lesson_path")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(NewThread {
        id: row.id,
        user_id,
        organization_id: text(row.organization_id),
        lesson_path: text(row.lesson_path.or(data_lesson)),
        title,
        status,
        metadata,
        created_at,
        updated_at: row.updated_at.unwrap_or(created_at),
    })
}

/// The item we store for `row`.
pub fn item(row: LegacyItem) -> Result<NewItem, String> {
    let user_id = id(row.user_id, "user_id")?;
    let thread_id = id(row.thread_id, "thread_id")?;
    let created_at = row.created_at.ok_or("created_at is NULL")?;
    let mut fields = object(row.data.as_deref(), "item")?;
    fields.insert("id".into(), Value::String(row.id));
    fields.insert("thread_id".into(), Value::String(thread_id));
    fields.insert(
        "created_at".into(),
        Value::String(wire_time::format(&created_at)),
    );
    let item: ThreadItem = serde_path_to_error::deserialize(Value::Object(fields))
        .map_err(|e| format!("data is not a ChatKit item: {}: {}", e.path(), e.inner()))?;
    if let ItemKind::UserMessage(message) = &item.kind {
        let words: Vec<&str> = message.content.iter().map(|c| c.text()).collect();
        if message.attachments.is_empty() && is_start_trigger(&words.join(" ")) {
            return Err(
                "a start trigger the old service left behind (never shown; not imported)".into(),
            );
        }
    }
    Ok(NewItem {
        user_id,
        updated_at: row.updated_at.unwrap_or(created_at),
        item,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_760_000_000, 0).expect("time")
    }

    fn thread_row(data: &str) -> LegacyThread {
        LegacyThread {
            id: "thr_1".into(),
            user_id: Some("u1".into()),
            organization_id: Some("panaversity-default-org-id".into()),
            lesson_path: Some("".into()),
            title: Some("Study Session".into()),
            created_at: Some(at()),
            updated_at: None,
            data: Some(data.into()),
        }
    }

    fn item_row(data: &str) -> LegacyItem {
        LegacyItem {
            id: "msg_1".into(),
            thread_id: Some("thr_1".into()),
            user_id: Some("u1".into()),
            created_at: Some(at()),
            updated_at: None,
            data: Some(data.into()),
        }
    }

    #[test]
    fn both_thread_layouts_read_the_same() {
        let wrapped = thread(thread_row(
            r#"{"thread":{"id":"thr_1","title":"x","created_at":"2025-10-09T08:53:20Z","status":{"type":"locked","reason":null},"allowed_image_domains":null,"metadata":{"k":1}}}"#,
        ))
        .expect("current layout");
        let bare = thread(thread_row(
            r#"{"created_at":"2025-10-09T08:53:20Z","status":{"type":"locked","reason":null},"metadata":{"k":1}}"#,
        ))
        .expect("older layout");
        assert_eq!(wrapped, bare);
        assert_eq!(
            wrapped.title.as_deref(),
            Some("Study Session"),
            "the column wins"
        );
        assert_eq!(wrapped.lesson_path, None, "'' is no lesson");
        assert_eq!(wrapped.status["type"], "locked");
        assert_eq!(wrapped.updated_at, at());
    }

    #[test]
    fn bad_thread_rows_say_why() {
        for (data, why) in [
            ("not json", "not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"thread": 3}"#, "data.thread is not an object"),
            (r#"{"status": "open"}"#, "not a thread status"),
            (r#"{"metadata": []}"#, "data.metadata is not an object"),
        ] {
            let e = thread(thread_row(data)).expect_err(data);
            assert!(e.contains(why), "{data}: {e}");
        }
        let mut row = thread_row("{}");
        row.user_id = Some(" ".into());
        assert!(thread(row).expect_err("no user").contains("user_id"));
    }

    #[test]
    fn titles_are_cleaned_and_capped() {
        assert_eq!(clean_title("  \n "), None);
        assert_eq!(clean_title("a\tb\n").as_deref(), Some("a b"));
        let long = "é".repeat(300);
        let t = clean_title(&long).expect("title");
        assert_eq!(t.chars().count(), TITLE_CHARS);
        assert!(t.ends_with('…'));
    }

    #[test]
    fn both_item_layouts_read_the_same_and_the_columns_win() {
        let body = r#"{"id":"other","thread_id":"other","created_at":"2020-01-01T00:00:00Z","type":"user_message","content":[{"type":"input_text","text":"Hi \"there\" ü"}],"attachments":[],"quoted_text":null,"inference_options":{"model":"teach","tool_choice":null}}"#;
        let wrapped = item(item_row(&format!(r#"{{"item":{body}}}"#))).expect("current");
        let bare = item(item_row(body)).expect("older");
        assert_eq!(wrapped, bare);
        assert_eq!(wrapped.item.id, "msg_1");
        assert_eq!(wrapped.item.thread_id, "thr_1");
        assert_eq!(wrapped.item.created_at, at());
    }

    #[test]
    fn bad_items_and_left_over_triggers_are_skipped_with_a_reason() {
        let e = item(item_row(
            r#"{"item":{"type":"user_message","content":"x"}}"#,
        ))
        .expect_err("bad content");
        assert!(
            e.contains("not a ChatKit item") && e.contains("sequence"),
            "{e}"
        );
        let e = item(item_row(r#"{"item":{"type":"nonsense"}}"#)).expect_err("bad type");
        assert!(e.contains("not a ChatKit item"), "{e}");
        let trigger = r#"{"item":{"type":"user_message","content":[{"type":"input_text","text":"\u200b"}],"attachments":[],"inference_options":{}}}"#;
        assert!(
            item(item_row(trigger))
                .expect_err("trigger")
                .contains("start trigger")
        );
    }
}
