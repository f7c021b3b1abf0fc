//! What the webhook sender does, for `/metrics`: attempts by what became of them.
//!
//! Outcomes are counted by the process that made the attempt. (The notifications still to be
//! sent are counted in the database at each scrape, so every replica shows the same figure:
//! see `http::database_metrics`.)

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::storage::Attempt;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    /// `delivered`, `retried` or `given_up`.
    outcome: &'static str,
}

/// The sender's metrics, shared by the sender that counts and `/metrics`.
#[derive(Debug)]
pub struct WebhookMetrics {
    deliveries: Family<OutcomeLabels, Counter>,
}

impl Default for WebhookMetrics {
    fn default() -> Self {
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        // Every outcome shown from the start, so a rate over it is never missing a series.
        for outcome in ["delivered", "retried", "given_up"] {
            drop(deliveries.get_or_create(&OutcomeLabels { outcome }));
        }
        WebhookMetrics { deliveries }
    }
}

impl WebhookMetrics {
    /// Adds these metrics to the registry `/metrics` encodes.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "webhook_deliveries",
            "Webhook attempts by outcome: delivered, retried (failed, tried again later) or \
             given_up (failed for the last time)",
            self.deliveries.clone(),
        );
    }

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
}
