//! The model API's HTTP clients: as many as the replies in flight need, each call on the one
//! with the fewest in flight.
//!
//! Over HTTPS reqwest negotiates HTTP/2 (ALPN) and multiplexes every request to one host over
//! **one** connection per client; a request beyond the server's `MAX_CONCURRENT_STREAMS`
//! waits in hyper for a free stream instead of opening a second connection. So a call goes to
//! the client with the fewest calls in flight, and when every client already carries
//! `MODEL_STREAMS_PER_CONNECTION` another client (another connection) is made. Clients are
//! kept for the life of the process (reqwest closes their idle connections after 90 s; an idle
//! client costs only its TLS configuration). Over HTTP/1.1 each call has its own pooled
//! connection anyway, so the pool changes nothing there.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::outbound::Outbound;

/// HTTP/2 pings on an idle or busy model connection: a dead connection would otherwise hold
/// every reply on it until their idle timeouts.
const KEEPALIVE: Duration = Duration::from_secs(20);

/// One client (one HTTP/2 connection per host) and its calls in flight.
#[derive(Debug)]
struct Slot {
    http: reqwest::Client,
    in_flight: Arc<AtomicUsize>,
}

/// The clients of one model endpoint.
#[derive(Debug)]
pub(super) struct Pool {
    outbound: Outbound,
    connect_timeout: Duration,
    per_connection: usize,
    slots: Mutex<Vec<Slot>>,
}

/// One call in flight on a client; dropping it (with the response body) ends the call.
#[derive(Debug)]
pub(super) struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pool {
    pub(super) fn new(
        outbound: &Outbound,
        connect_timeout: Duration,
        per_connection: usize,
    ) -> Self {
        let pool = Self {
            outbound: outbound.clone(),
            connect_timeout,
            per_connection: per_connection.max(1),
            slots: Mutex::new(Vec::new()),
        };
        let first = pool.slot();
        pool.lock().push(first);
        pool
    }

    /// The client for the next call, counted in flight until the returned guard is dropped.
    pub(super) fn pick(&self) -> (reqwest::Client, InFlight) {
        let mut slots = self.lock();
        let least = slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.in_flight.load(Ordering::Relaxed), i))
            .min()
            .filter(|(n, _)| *n < self.per_connection);
        let index = match least {
            Some((_, i)) => i,
            None => {
                slots.push(self.slot());
                tracing::debug!(clients = slots.len(), "model: another connection");
                slots.len() - 1
            }
        };
        let slot = &slots[index];
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        (slot.http.clone(), InFlight(slot.in_flight.clone()))
    }

    /// How many clients (HTTP/2 connections per host) there are.
    #[cfg(test)]
    fn clients(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        // A panic while holding it cannot leave the list inconsistent (push is atomic).
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn slot(&self) -> Slot {
        let http = self
            .outbound
            .client_builder()
            .connect_timeout(self.connect_timeout)
            .http2_keep_alive_interval(KEEPALIVE)
            .http2_keep_alive_timeout(KEEPALIVE)
            .build()
            .unwrap_or_else(|e| {
                // Only a broken TLS setup fails here (the extra roots were checked at start).
                tracing::error!(error = %e, "model client builder failed; using defaults");
                reqwest::Client::new()
            });
        Slot {
            http,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_go_to_the_least_busy_client_and_a_full_pool_grows() {
        let pool = Pool::new(&Outbound::default(), Duration::from_secs(1), 2);
        let a = pool.pick();
        let b = pool.pick();
        assert_eq!(pool.clients(), 1, "two calls fit one connection");
        let c = pool.pick();
        assert_eq!(pool.clients(), 2, "the third call opens another");
        drop(a);
        drop(b);
        // The first client is idle again: the next two calls go there, not to a third.
        let d = pool.pick();
        let e = pool.pick();
        let f = pool.pick();
        assert_eq!(pool.clients(), 2, "the freed room is used first");
        let g = pool.pick();
        assert_eq!(pool.clients(), 3, "both full: a third connection");
        drop((c, d, e, f));
        drop(g);
    }
}
