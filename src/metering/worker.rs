//! The outbox's delivery: the worker that sends due rows ([`Metering::run_worker`]), records
//! each outcome, and the last pass at shutdown ([`Metering::drain`]).

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::client::SendError;
use super::metrics::OutcomeLabels;
use super::outbox::Row;
use super::{BATCH, CONCURRENT_DELIVERIES, Metering, POLL_INTERVAL};

impl Metering {
    /// Delivers due outbox rows until stopped: at once when woken by a settlement, else every
    /// [`POLL_INTERVAL`] (so rows left by an earlier process or a failed attempt go out, the
    /// first pass at start).
    pub async fn run_worker(self, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.deliver_due() => {}
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }

    /// One pass over the due rows.
    pub async fn deliver_due(&self) {
        let inner = &self.inner;
        let lease = inner.settings.timeout + Duration::from_secs(5);
        for _ in 0..8 {
            let rows = match inner.outbox.due(BATCH).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "metering outbox unreadable; retrying later");
                    return;
                }
            };
            let n = rows.len();
            futures::stream::iter(rows)
                .for_each_concurrent(CONCURRENT_DELIVERIES, |row| async move {
                    if matches!(inner.outbox.claim(&row, lease).await, Ok(true)) {
                        self.deliver(&row).await;
                    }
                })
                .await;
            if n < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                break;
            }
        }
        if let Ok(pending) = inner.outbox.pending().await {
            inner.metrics.outbox_pending.set(pending);
        }
    }

    /// Sends one row and records the outcome in the outbox.
    pub(super) async fn deliver(&self, row: &Row) {
        let inner = &self.inner;
        let call = row.call();
        let sent = inner
            .client
            .send(call, &row.user_id, row.bearer.as_deref(), &row.body)
            .await;
        let outbox = &inner.outbox;
        let result = match sent {
            Ok(answer) => {
                self.acknowledged(row, &answer);
                outbox.done(row).await
            }
            Err(e) => {
                let (why, permanent) = match &e {
                    SendError::Retry(w) => (w.as_str(), false),
                    SendError::Permanent(w) => (w.as_str(), true),
                };
                if call == "deduct" {
                    inner.metrics.deduct_failures.inc();
                } else {
                    inner.metrics.release_failures.inc();
                }
                tracing::warn!(metering_request_id = %row.request_id, call, attempts = row.attempts + 1, permanent, error = %why, "metering delivery failed");
                outbox.failed(row, why, permanent).await
            }
        };
        if let Err(e) = result {
            tracing::warn!(metering_request_id = %row.request_id, error = %e, "metering outbox update failed (the row is delivered again; the API is idempotent)");
        }
    }

    fn acknowledged(&self, row: &Row, answer: &Value) {
        let m = &self.inner.metrics;
        if row.call() == "release" {
            m.releases.inc();
            tracing::info!(metering_request_id = %row.request_id, "metering: released");
            return;
        }
        let status = answer["status"].as_str().unwrap_or("finalized");
        m.deducts
            .get_or_create(&OutcomeLabels {
                outcome: status.to_owned(),
            })
            .inc();
        let credits = answer["credits_deducted"].as_f64().unwrap_or(0.0);
        if status != "already_processed" && credits > 0.0 {
            m.credits_deducted.inc_by(credits);
        }
        tracing::info!(metering_request_id = %row.request_id, status, credits_deducted = credits, "metering: deducted");
    }

    /// At shutdown: waits for settlements of dropped tickets, then delivers what is due, all
    /// within `within`. What is left stays in the outbox for the next start.
    pub async fn drain(&self, within: Duration) {
        let work = async {
            self.inner.tasks.close();
            self.inner.tasks.wait().await;
            self.deliver_due().await;
        };
        if tokio::time::timeout(within, work).await.is_err() {
            tracing::warn!("metering: deliveries still pending at exit; the outbox keeps them");
        }
    }
}
