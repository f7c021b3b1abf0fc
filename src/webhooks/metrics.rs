//! What the webhook sender does, for `/metrics`: attempts by what became of them, and the
//! notifications still to be sent.
//!
//! Outcomes are counted by the process that made the attempt; the outbox is counted in the
//! database at each scrape, so every replica shows the same figure.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::storage::Attempt;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    /// `delivered`, `retried` or `given_up`.
    outcome: &'static str,
}

/// The sender's metrics, shared by the sender that counts and `/metrics`.
pub struct WebhookMetrics {
    registry: Registry,
    deliveries: Family<OutcomeLabels, Counter>,
    pending: Gauge,
}

impl Default for WebhookMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("submission_helper");
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        // Every outcome shown from the start, so a rate over it is never missing a series.
        for outcome in ["delivered", "retried", "given_up"] {
            drop(deliveries.get_or_create(&OutcomeLabels { outcome }));
        }
        registry.register(
            "webhook_deliveries",
            "Webhook attempts by outcome: delivered, retried (failed, tried again later) or \
             given_up (failed for the last time)",
            deliveries.clone(),
        );
        let pending = Gauge::default();
        registry.register(
            "webhook_outbox_pending",
            "Webhook notifications still to be sent (of every replica)",
            pending.clone(),
        );
        WebhookMetrics {
            registry,
            deliveries,
            pending,
        }
    }
}

impl WebhookMetrics {
    /// Counts what became of one attempt.
    pub fn count(&self, attempt: &Attempt) {
        let outcome = match attempt {
            Attempt::Delivered => "delivered",
            Attempt::Retry { .. } => "retried",
            Attempt::GiveUp { .. } => "given_up",
        };
        self.deliveries
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Appends the metrics in the Prometheus text format, with `pending` notifications in
    /// the outbox.
    pub fn encode(&self, out: &mut String, pending: i64) {
        self.pending.set(pending);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(out, &self.registry);
    }
}
