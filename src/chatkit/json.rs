//! The ten requests answered with one JSON body.

use bytes::Bytes;
use serde::Serialize;

use super::context::RequestContext;
use super::error::ChatKitError;
use super::request::{FeedbackKind, FeedbackParams, ListParams, Order, Request};
use super::store::{Hidden, PageQuery};
use super::types::{ItemKind, Page};
use super::{ChatKit, ids, metrics::KindLabels};

/// Page size when the request names none (the reference's `DEFAULT_PAGE_SIZE`).
const DEFAULT_LIMIT: u32 = 20;
/// Largest page served.
const MAX_LIMIT: i64 = 100;

/// The answer to a non-streaming request.
pub async fn answer(
    chatkit: &ChatKit,
    ctx: &RequestContext,
    request: Request,
) -> Result<Bytes, ChatKitError> {
    let owner = ctx.owner();
    let store = &chatkit.store;
    match request {
        Request::GetById(p) => {
            let thread = chatkit.thread(ctx, &p.thread_id).await?;
            let first = PageQuery::first(DEFAULT_LIMIT, Order::Asc);
            let items = store
                .load_items(owner, &thread.id, &first, Hidden::Exclude)
                .await?;
            body(&thread.to_wire(items))
        }
        Request::ListThreads(p) => {
            let page = store.load_threads(owner, &page_query(&p)?).await?;
            body(&page.map(|t| t.to_wire(Page::empty())))
        }
        Request::UpdateThread(p) => {
            let mut thread = chatkit.thread(ctx, &p.thread_id).await?;
            thread.title = Some(p.title);
            thread.updated_at = ids::now();
            store.save_thread(owner, &thread).await?;
            body(&thread.to_wire(Page::empty()))
        }
        Request::DeleteThread(p) => match store.delete_thread(owner, &p.thread_id).await? {
            true => {
                // A reply still streaming in the thread (here or elsewhere) stops now.
                chatkit.locks.deleted(&p.thread_id).await;
                Ok(Bytes::from_static(b"{}"))
            }
            false => Err(ChatKitError::NotFound(format!(
                "params.thread_id: no thread {:?}",
                p.thread_id
            ))),
        },
        Request::ListItems(p) => {
            chatkit.thread(ctx, &p.thread_id).await?;
            let query = page_query(&p.page)?;
            body(
                &store
                    .load_items(owner, &p.thread_id, &query, Hidden::Exclude)
                    .await?,
            )
        }
        Request::Feedback(p) => feedback(chatkit, ctx, p).await,
        Request::SyncCustomAction(p) => {
            chatkit.thread(ctx, &p.thread_id).await?;
            if let Some(id) = &p.item_id {
                let sender = chatkit.item(ctx, &p.thread_id, id).await?;
                if !matches!(sender.kind, ItemKind::Widget { .. }) {
                    return Err(ChatKitError::BadRequest(
                        "params.item_id: the sender of an action must be a widget".into(),
                    ));
                }
            }
            Err(ChatKitError::Unsupported(format!(
                "params.action.type: the action {:?} is not supported by this tutor",
                p.action.kind
            )))
        }
        Request::CreateAttachment(_) | Request::DeleteAttachment(_) => {
            Err(ChatKitError::Unsupported(
                "attachments are not supported (no upload store is configured)".into(),
            ))
        }
        Request::Transcribe(_) => Err(ChatKitError::Unsupported(
            "input.transcribe: dictation is not supported".into(),
        )),
        streaming => Err(ChatKitError::Internal(format!(
            "streaming request answered as JSON: {streaming:?}"
        ))),
    }
}

/// Most distinct items one feedback request may name (the panel sends one).
pub const MAX_FEEDBACK_ITEMS: usize = 100;

/// Checks the thread and every item (deduplicated, in one query), then records the feedback
/// (log and metric): the reference's default `add_feedback` stores nothing either.
async fn feedback(
    chatkit: &ChatKit,
    ctx: &RequestContext,
    p: FeedbackParams,
) -> Result<Bytes, ChatKitError> {
    let mut ids = p.item_ids;
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > MAX_FEEDBACK_ITEMS {
        return Err(ChatKitError::BadRequest(format!(
            "params.item_ids: at most {MAX_FEEDBACK_ITEMS} distinct items, got {}",
            ids.len()
        )));
    }
    chatkit.thread(ctx, &p.thread_id).await?;
    let found = chatkit
        .store
        .visible_item_ids(ctx.owner(), &p.thread_id, &ids)
        .await?;
    if let Some(missing) = ids.iter().find(|id| !found.contains(id)) {
        return Err(ChatKitError::NotFound(format!(
            "params.item_id: no item {missing:?} in this thread"
        )));
    }
    let kind = match p.kind {
        FeedbackKind::Positive => "positive",
        FeedbackKind::Negative => "negative",
    };
    tracing::info!(thread_id = ?p.thread_id, items = ids.len(), kind, "feedback");
    chatkit
        .metrics
        .feedback
        .get_or_create(&KindLabels { kind })
        .inc();
    Ok(Bytes::from_static(b"{}"))
}

fn page_query(p: &ListParams) -> Result<PageQuery, ChatKitError> {
    let limit = match p.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n as u32,
        Some(n) => {
            return Err(ChatKitError::BadRequest(format!(
                "params.limit: must be between 1 and {MAX_LIMIT}, got {n}"
            )));
        }
    };
    Ok(PageQuery {
        after: p.after.clone(),
        limit,
        order: p.order,
    })
}

fn body<T: Serialize>(value: &T) -> Result<Bytes, ChatKitError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| ChatKitError::Internal(format!("encoding a chatkit body: {e}")))
}
