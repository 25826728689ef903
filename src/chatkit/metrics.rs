//! Series of the ChatKit server: open streams, stream duration, events sent by type, replies'
//! token usage and feedback. (Store latency is recorded by the store, per operation.)

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

/// ChatKit metrics of one process.
#[derive(Debug, Clone)]
pub struct ChatKitMetrics {
    pub active_streams: Gauge,
    pub stream_duration: Histogram,
    pub events_sent: Family<EventLabels, Counter>,
    pub reply_tokens: Family<KindLabels, Counter>,
    pub feedback: Family<KindLabels, Counter>,
}

impl ChatKitMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            active_streams: Gauge::default(),
            // 10 ms … ~5.5 min: a stream lasts as long as a reply.
            stream_duration: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            events_sent: Family::default(),
            reply_tokens: Family::default(),
            feedback: Family::default(),
        };
        registry.register(
            "chatkit_active_streams",
            "ChatKit event streams open now",
            m.active_streams.clone(),
        );
        registry.register(
            "chatkit_stream_duration_seconds",
            "Duration of ChatKit event streams",
            m.stream_duration.clone(),
        );
        registry.register(
            "chatkit_events_sent",
            "ChatKit events sent, by event type",
            m.events_sent.clone(),
        );
        registry.register(
            "chatkit_reply_tokens",
            "Tokens used by replies, by kind (input, output)",
            m.reply_tokens.clone(),
        );
        registry.register(
            "chatkit_feedback",
            "items.feedback requests by kind",
            m.feedback.clone(),
        );
        m
    }
}
