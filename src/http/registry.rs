//! The one registry `/metrics` encodes: every part's metrics (HTTP, cluster, webhooks) and the
//! database's counts as a collector. Apart from the handler, which reaches it through the
//! [`Context`](super::context::Context) that holds it.

use prometheus_client::registry::Registry;

use super::database_metrics::DatabaseMetrics;
use super::request_metrics::HttpMetrics;
use crate::cluster::metrics::ClusterMetrics;
use crate::webhooks::metrics::WebhookMetrics;

/// Every metric of the service, each name prefixed `submission_helper_`.
#[derive(Debug)]
pub struct Metrics {
    pub(super) registry: Registry,
    pub(super) database: DatabaseMetrics,
}

impl Metrics {
    /// One registry of every part's metrics; the parts keep counting into them.
    pub fn new(
        database: DatabaseMetrics,
        http: &HttpMetrics,
        cluster: &ClusterMetrics,
        webhooks: &WebhookMetrics,
    ) -> Self {
        let mut registry = Registry::with_prefix("submission_helper");
        http.register(&mut registry);
        cluster.register(&mut registry);
        webhooks.register(&mut registry);
        registry.register_collector(Box::new(database.clone()));
        Metrics { registry, database }
    }

    /// Keeps the database's counts ready for the first scrape after the next start (see
    /// [`DatabaseMetrics::keep_final_counts_saved`]). Runs until dropped.
    pub fn keep_counts_saved(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.database.clone().keep_final_counts_saved()
    }
}
