//! The one registry `/metrics` encodes: every part's metrics (HTTP, cluster, webhooks) and the
//! database's counts as a collector. Apart from the handler, which reaches it through the
//! [`Context`](super::context::Context) that holds it.

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::database_metrics::DatabaseMetrics;
use super::request_metrics::HttpMetrics;
use crate::cluster::Clusters;
use crate::cluster::metrics::ClusterName;
use crate::webhooks::metrics::WebhookMetrics;

/// Every metric of the service, each name prefixed `submission_helper_`.
#[derive(Debug)]
pub struct Metrics {
    pub(super) registry: Registry,
    pub(super) database: DatabaseMetrics,
    /// 1 while a cluster answers, 0 once it has not for `--cluster-unreachable-after`; set at
    /// each scrape.
    pub(super) reachable: Family<ClusterName, Gauge>,
}

impl Metrics {
    /// One registry of every part's metrics; the parts keep counting into them. With several
    /// clusters, each cluster's series carry its name (`cluster="onsite"`).
    pub fn new(
        database: DatabaseMetrics,
        http: &HttpMetrics,
        clusters: &Clusters,
        webhooks: &WebhookMetrics,
    ) -> Self {
        let mut registry = Registry::with_prefix("submission_helper");
        http.register(&mut registry);
        match clusters.len() {
            1 => clusters.first().metrics().register(&mut registry),
            _ => {
                for cluster in clusters.iter() {
                    let label = ("cluster".into(), cluster.name().to_owned().into());
                    cluster
                        .metrics()
                        .register(registry.sub_registry_with_label(label));
                }
            }
        }
        let reachable = Family::<ClusterName, Gauge>::default();
        registry.register(
            "cluster_reachable",
            "1 while the cluster answers, 0 once its watches have failed for --cluster-unreachable-after",
            reachable.clone(),
        );
        webhooks.register(&mut registry);
        registry.register_collector(Box::new(database.clone()));
        Metrics {
            registry,
            database,
            reachable,
        }
    }

    /// Keeps the database's counts ready for the first scrape after the next start (see
    /// [`DatabaseMetrics::keep_final_counts_saved`]). Runs until dropped.
    pub fn keep_counts_saved(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.database.clone().keep_final_counts_saved()
    }
}
