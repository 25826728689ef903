//! Per-request HTTP middleware: the access log line and the request series.
//!
//! Owns: what is recorded of every request. Knows no route and no feature: it is given the
//! [`Metrics`] of the process as its state.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::metrics::Metrics;

/// Records `http_requests_total`, the latency histogram and in-flight gauge; logs one line.
pub async fn observe(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let http = &metrics.http;
    let in_flight = InFlight::enter(&http.in_flight);
    let response = next.run(req).await;
    drop(in_flight);
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    http.record(method_label(&method), &route, status, elapsed);
    if method != Method::OPTIONS || status >= 400 {
        tracing::info!(
            method = method_label(&method),
            route = %route,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    }
    response
}

/// The method as a label from a closed set: any other method (`M123 /health` is answered 405
/// but still recorded) is `other`, so clients cannot add series to the registry.
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .into_iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, label)| label)
}

/// Keeps the in-flight gauge right even when the request future is dropped mid-way
/// (client gone, timeout).
struct InFlight<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let random = Method::from_bytes(b"M1234").expect("a token");
        assert_eq!(method_label(&random), "other");
    }
}
