//! The lesson loader: L1 (in-process moka, bounded in bytes) → L2 (Redis, shared by every
//! instance; only when `REDIS_URL` is set) → origin.
//!
//! Single-flight: the L1 miss path goes through moka's `try_get_with`, which runs one init
//! future per key and makes every concurrent caller for that key wait for its result — so any
//! number of concurrent first requests cause one L2 read and at most one origin fetch chain.
//! moka is already our cache, so this needs no second map of shared futures.
//!
//! An invalidation that lands while a load of the same lesson is in flight may be overtaken by
//! that load's (older) result; the next push or TTL expiry corrects it.
//!
//! Stale-on-error: moka has no stale-while-revalidate, so every good copy is also kept in a
//! "last good" tier (in-process, and in Redis for 30 days) that TTL expiry and invalidation do
//! not touch; when the origin fails, that copy is served, counted, and retried after 30 s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use super::lesson::{Lesson, LessonPath};
use super::markdown::parse_lesson;
use super::metrics::ContentMetrics;
use super::source::Source;
use super::{ContentError, ContentSettings};
use crate::outbound::Outbound;
use crate::redis::RedisCache;

/// How long in-process copies live when Redis is shared: other instances see an invalidation
/// (admin or webhook, which reach one instance) within this time.
const L1_TTL_WITH_SHARED_CACHE: Duration = Duration::from_secs(300);
/// How long the last good copy of a lesson is kept in Redis for stale serving.
const LAST_GOOD_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// After serving a stale copy, how long before the origin is tried again.
const STALE_RETRY: Duration = Duration::from_secs(30);
/// Bump when the stored format changes: old entries are then simply never read.
const KEY_VERSION: &str = "v1";

/// What a cache tier knows about one path.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Stored {
    Found { lesson: Arc<Lesson> },
    Missing,
}

#[derive(Clone)]
struct Entry {
    value: Stored,
    ttl: Duration,
}

struct EntryTtl;

impl Expiry<String, Entry> for EntryTtl {
    fn expire_after_create(&self, _k: &String, e: &Entry, _now: Instant) -> Option<Duration> {
        Some(e.ttl)
    }
}

fn weight(key: &str, value: &Stored) -> u32 {
    let size = match value {
        Stored::Found { lesson } => lesson.weight(),
        Stored::Missing => 16,
    };
    u32::try_from(key.len() + size).unwrap_or(u32::MAX)
}

/// What an invalidation removed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Invalidated {
    /// The lesson paths named (empty when everything was invalidated).
    pub paths: Vec<String>,
    /// True when the whole content cache was cleared.
    pub all: bool,
    /// Entries removed from the in-process tier.
    pub l1: u64,
    /// Keys removed from Redis (0 without Redis).
    pub l2: u64,
}

/// The lesson loader of one process: sources behind the two-tier cache. Cheap to clone.
#[derive(Clone)]
pub struct Content {
    inner: Arc<Inner>,
}

struct Inner {
    source: Source,
    source_id: String,
    l1: moka::future::Cache<String, Entry>,
    last_good: moka::future::Cache<String, Arc<Lesson>>,
    l2: Option<RedisCache>,
    /// Every lesson path of the book (one git-trees call on GitHub), for `l1_ttl`.
    listing: moka::future::Cache<(), Arc<Vec<LessonPath>>>,
    ttl: Duration,
    l1_ttl: Duration,
    negative_ttl: Duration,
    /// The branch and docs folder whose pushes invalidate lessons (`GITHUB_BRANCH`,
    /// `GITHUB_DOCS_PATH`; also checked with a local source, so a webhook can be tested).
    push_branch: String,
    push_docs_path: String,
    metrics: ContentMetrics,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Content")
            .field("source", &self.inner.source_id)
            .field("l1_entries", &self.inner.l1.entry_count())
            .field("l2", &self.inner.l2.is_some())
            .finish()
    }
}

impl Content {
    /// The loader for `settings`; `l2` is the shared Redis tier when there is one.
    pub async fn new(
        settings: &ContentSettings,
        outbound: &Outbound,
        l2: Option<RedisCache>,
        registry: &mut Registry,
    ) -> Self {
        let l1_ttl = if l2.is_some() {
            settings.cache_ttl.min(L1_TTL_WITH_SHARED_CACHE)
        } else {
            settings.cache_ttl
        };
        let source = Source::from_settings(settings, outbound);
        let l1 = moka::future::Cache::builder()
            .max_capacity(settings.l1_max_bytes)
            .weigher(|k: &String, e: &Entry| weight(k, &e.value))
            .expire_after(EntryTtl)
            .build();
        let last_good = moka::future::Cache::builder()
            .max_capacity(settings.l1_max_bytes)
            .weigher(|k: &String, l: &Arc<Lesson>| {
                u32::try_from(k.len() + l.weight()).unwrap_or(u32::MAX)
            })
            .build();
        let inner = Inner {
            source_id: source.id(),
            source,
            l1,
            last_good,
            l2,
            listing: moka::future::Cache::builder()
                .max_capacity(1)
                .time_to_live(l1_ttl)
                .build(),
            ttl: settings.cache_ttl,
            l1_ttl,
            negative_ttl: settings.negative_ttl,
            push_branch: settings.github_branch.clone(),
            push_docs_path: settings.github_docs_path.clone(),
            metrics: ContentMetrics::register(registry),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The origin (for listing lessons and webhook path mapping).
    pub fn source(&self) -> &Source {
        &self.inner.source
    }

    /// Every lesson path of the book, cached in process (concurrent callers share one origin
    /// call); a push or a full invalidation drops it. `warm-cache` lists the source directly.
    pub async fn lesson_paths(&self) -> Result<Arc<Vec<LessonPath>>, ContentError> {
        let list = async { self.inner.source.list().await.map(Arc::new) };
        self.inner
            .listing
            .try_get_with((), list)
            .await
            .map_err(|e: Arc<ContentError>| (*e).clone())
    }

    /// Drops the cached lesson listing (a push may have added or removed lessons).
    pub(super) async fn forget_listing(&self) {
        self.inner.listing.invalidate_all();
        self.inner.listing.run_pending_tasks().await;
    }

    /// The branch and docs folder a push webhook is matched against.
    pub(super) fn push_target(&self) -> (&str, &str) {
        (&self.inner.push_branch, &self.inner.push_docs_path)
    }

    /// The lesson at `path`, from cache or origin; `Ok(None)` when it does not exist.
    pub async fn lesson(&self, path: &LessonPath) -> Result<Option<Arc<Lesson>>, ContentError> {
        let key = path.as_str().to_owned();
        if let Some(entry) = self.inner.l1.get(&key).await {
            return Ok(self.l1_hit(entry.value));
        }
        self.inner.metrics.lookup("l1", "miss");
        let ran = AtomicBool::new(false);
        let entry = self
            .inner
            .l1
            .try_get_with(key, async {
                ran.store(true, Ordering::Relaxed);
                self.inner.load(path).await
            })
            .await
            .map_err(|e| (*e).clone())?;
        if !ran.load(Ordering::Relaxed) {
            self.inner.metrics.singleflight_waiters.inc();
        }
        Ok(found(entry.value))
    }

    fn l1_hit(&self, value: Stored) -> Option<Arc<Lesson>> {
        let outcome = match value {
            Stored::Found { .. } => "hit",
            Stored::Missing => "negative_hit",
        };
        self.inner.metrics.lookup("l1", outcome);
        found(value)
    }

    /// Forgets `paths` in both tiers (their last good copies stay, for stale serving).
    pub async fn invalidate(&self, paths: &[LessonPath]) -> Invalidated {
        let mut l1 = 0;
        for p in paths {
            if self.inner.l1.remove(p.as_str()).await.is_some() {
                l1 += 1;
            }
        }
        let keys: Vec<String> = paths.iter().map(|p| self.inner.key(p.as_str())).collect();
        let l2 = match &self.inner.l2 {
            Some(cache) => cache.delete(&keys).await,
            None => 0,
        };
        Invalidated {
            paths: paths.iter().map(|p| p.as_str().to_owned()).collect(),
            all: false,
            l1,
            l2,
        }
    }

    /// Forgets every lesson of this source in both tiers.
    pub async fn invalidate_all(&self) -> Invalidated {
        self.forget_listing().await;
        self.inner.l1.run_pending_tasks().await;
        let l1 = self.inner.l1.entry_count();
        self.inner.l1.invalidate_all();
        self.inner.l1.run_pending_tasks().await;
        let l2 = match &self.inner.l2 {
            Some(cache) => cache.delete_prefix(&self.inner.key("")).await,
            None => 0,
        };
        Invalidated {
            paths: Vec::new(),
            all: true,
            l1,
            l2,
        }
    }
}

fn found(value: Stored) -> Option<Arc<Lesson>> {
    match value {
        Stored::Found { lesson } => Some(lesson),
        Stored::Missing => None,
    }
}

impl Inner {
    /// `content:v1:{repo}@{branch}:{path}`.
    fn key(&self, path: &str) -> String {
        format!("content:{KEY_VERSION}:{}:{path}", self.source_id)
    }

    /// Outside the `content:` prefix so that invalidating everything keeps it.
    fn last_good_key(&self, path: &str) -> String {
        format!("content-last-good:{KEY_VERSION}:{}:{path}", self.source_id)
    }

    /// The single-flight body: L2, then the origin.
    async fn load(&self, path: &LessonPath) -> Result<Entry, ContentError> {
        if let Some(value) = self.l2_get(path).await {
            return Ok(Entry {
                value,
                ttl: self.l1_ttl,
            });
        }
        let started = Instant::now();
        let fetched = self.source.fetch(path).await;
        let kind = self.source.kind();
        match fetched {
            Ok(Some(raw)) => {
                self.metrics.origin(kind, "found", started.elapsed());
                Ok(self.store_found(path, &raw).await)
            }
            Ok(None) => {
                self.metrics.origin(kind, "not_found", started.elapsed());
                Ok(self.store_missing(path).await)
            }
            Err(e) => {
                self.metrics.origin(kind, "error", started.elapsed());
                self.stale_or(path, e).await
            }
        }
    }

    async fn l2_get(&self, path: &LessonPath) -> Option<Stored> {
        let cache = self.l2.as_ref()?;
        let stored = cache
            .get(&self.key(path.as_str()))
            .await
            .and_then(|bytes| serde_json::from_slice::<Stored>(&bytes).ok());
        let outcome = match &stored {
            Some(Stored::Found { .. }) => "hit",
            Some(Stored::Missing) => "negative_hit",
            None => "miss",
        };
        self.metrics.lookup("l2", outcome);
        stored
    }

    async fn store_found(&self, path: &LessonPath, raw: &str) -> Entry {
        let lesson = Arc::new(parse_lesson(path, raw));
        self.last_good
            .insert(path.as_str().to_owned(), lesson.clone())
            .await;
        let value = Stored::Found { lesson };
        if let Some(cache) = &self.l2 {
            let bytes = to_bytes(&value);
            cache
                .set(&self.key(path.as_str()), bytes.clone(), self.ttl)
                .await;
            cache
                .set(&self.last_good_key(path.as_str()), bytes, LAST_GOOD_TTL)
                .await;
        }
        Entry {
            value,
            ttl: self.l1_ttl,
        }
    }

    async fn store_missing(&self, path: &LessonPath) -> Entry {
        let value = Stored::Missing;
        if let Some(cache) = &self.l2 {
            let key = self.key(path.as_str());
            cache.set(&key, to_bytes(&value), self.negative_ttl).await;
        }
        Entry {
            value,
            ttl: self.negative_ttl,
        }
    }

    /// The last good copy (in-process, then Redis) when there is one, else the origin error.
    async fn stale_or(
        &self,
        path: &LessonPath,
        error: ContentError,
    ) -> Result<Entry, ContentError> {
        let lesson = match self.last_good.get(path.as_str()).await {
            Some(l) => Some(l),
            None => self.l2_last_good(path).await,
        };
        let Some(lesson) = lesson else {
            tracing::warn!(path = %path, error = %error, "lesson origin failed; no copy to serve");
            return Err(error);
        };
        tracing::warn!(path = %path, error = %error, "lesson origin failed; serving the last good copy");
        self.metrics.stale_serves.inc();
        Ok(Entry {
            value: Stored::Found { lesson },
            ttl: STALE_RETRY.min(self.l1_ttl),
        })
    }

    async fn l2_last_good(&self, path: &LessonPath) -> Option<Arc<Lesson>> {
        let bytes = self
            .l2
            .as_ref()?
            .get(&self.last_good_key(path.as_str()))
            .await?;
        match serde_json::from_slice::<Stored>(&bytes).ok()? {
            Stored::Found { lesson } => Some(lesson),
            Stored::Missing => None,
        }
    }
}

fn to_bytes(value: &Stored) -> Bytes {
    // Serialising plain strings and vectors cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}
