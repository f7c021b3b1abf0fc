//! The service's handle on the cluster: the API server calls it makes (each bounded in time),
//! the caches the controller's watches fill, and the metrics of both.
//!
//! Everything goes through the service's own credentials (`kube::Config::infer()`: the
//! kubeconfig in the standard place, or the pod's service account in a cluster) and stays in one
//! namespace.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::client::ClientBuilder;
use kube::core::Selector;
use kube::{Client, Config};
use parking_lot::Mutex;

use super::cache::{Caches, Writers};
use super::cached_pod::Pod;
use super::error::{ClusterError, Result};
use super::kueue_settings::KueueSettings;
use super::metrics::{self, ClusterMetrics};
use super::reachability::Reachability;
use super::shared_logs::SharedLogs;
use crate::domain::{ADMISSION_GATE_ANNOTATION, APP_LABEL, APP_LABEL_VALUE, SubmissionId};

pub use crate::domain::DEFAULT_CLUSTER;

/// The label selector every object of ours carries (`app=submission-helper`).
pub fn app_selector() -> String {
    format!("{APP_LABEL}={APP_LABEL_VALUE}")
}

/// Whether the first create of a Job happened now or before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Now,
    /// The Job already existed (409): an earlier attempt reached the API server.
    Before,
}

/// The service's handle on the cluster: a client (if one could be configured), the namespace,
/// the caches the controller's watches fill, and the metrics of what it does.
#[derive(Clone)]
pub struct Cluster {
    client: std::result::Result<Client, String>,
    namespace: String,
    caches: Caches,
    /// The caches' writing ends, until the controller takes them.
    writers: Arc<Mutex<Option<Writers>>>,
    metrics: Arc<ClusterMetrics>,
    /// The log streams followers share, one per followed pod.
    shared_logs: SharedLogs,
    /// How the client was configured, for clients of other servers with the same credentials.
    config: Option<Config>,
    /// Kueue, when Jobs are submitted through it.
    kueue: Option<Arc<Kueue>>,
    /// The cluster's name in the service's answers and metrics.
    name: String,
    /// Whether the cluster answers, as its watches find.
    reachability: Arc<Reachability>,
    /// At most this many active Jobs here (`--cluster-capacity`); `None` for no cap.
    capacity: Option<i64>,
}

/// Kueue, when the service submits through it: its settings, and a client for its visibility
/// API (the API server's own, through its aggregation, unless `visibility_url` names another).
pub struct Kueue {
    pub settings: KueueSettings,
    pub visibility: Option<Client>,
}

impl Cluster {
    /// Connects the way kubectl does: kubeconfig, or the in-cluster service account.
    ///
    /// A missing configuration is not fatal: the service still accepts and stores submissions,
    /// `/readyz` says why the cluster is unavailable, and Jobs are created once it is configured.
    pub async fn infer(namespace: Option<String>) -> Self {
        match Config::infer().await {
            Ok(config) => {
                let namespace = namespace.unwrap_or_else(|| config.default_namespace.clone());
                Cluster::from_config(config, namespace)
            }
            Err(error) => Cluster::unconfigured(
                error.to_string(),
                namespace.unwrap_or_else(|| "default".into()),
            ),
        }
    }

    /// A client for `config` whose requests `/metrics` counts.
    pub fn from_config(config: Config, namespace: String) -> Self {
        let metrics = Arc::new(ClusterMetrics::default());
        match ClientBuilder::try_from(config.clone()) {
            Ok(builder) => {
                let client = builder
                    .with_layer(&metrics::CountingLayer(metrics.clone()))
                    .build();
                let mut cluster = Cluster::with_metrics(Ok(client), namespace, metrics);
                cluster.config = Some(config);
                cluster
            }
            Err(error) => Cluster::unconfigured(error.to_string(), namespace),
        }
    }

    pub fn new(client: Client, namespace: String) -> Self {
        Cluster::with_metrics(Ok(client), namespace, Arc::default())
    }

    pub fn unconfigured(reason: String, namespace: String) -> Self {
        Cluster::with_metrics(Err(reason), namespace, Arc::default())
    }

    fn with_metrics(
        client: std::result::Result<Client, String>,
        namespace: String,
        metrics: Arc<ClusterMetrics>,
    ) -> Self {
        let (caches, writers) = Caches::new(&namespace);
        Cluster {
            client,
            namespace,
            caches,
            writers: Arc::new(Mutex::new(Some(writers))),
            metrics,
            shared_logs: Default::default(),
            config: None,
            kueue: None,
            name: DEFAULT_CLUSTER.into(),
            reachability: Arc::default(),
            capacity: None,
        }
    }

    /// The same cluster under another name (`--cluster NAME=...`).
    pub fn named(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// The same cluster with at most `capacity` active Jobs.
    pub fn with_capacity(mut self, capacity: Option<i64>) -> Self {
        self.capacity = capacity;
        self
    }

    pub fn capacity(&self) -> Option<i64> {
        self.capacity
    }

    /// Whether new Jobs may be created here now: configured, and answering (not unreachable
    /// for `--cluster-unreachable-after`).
    pub fn takes_jobs(&self) -> bool {
        self.is_configured()
            && self
                .reachability
                .unreachable_since(jiff::Timestamp::now())
                .is_none()
    }

    /// The same cluster, unreachable once it has not answered for `unreachable_after`, and lost
    /// (its live submissions run again elsewhere) after `lost_after`.
    pub fn with_reachability(
        mut self,
        unreachable_after: std::time::Duration,
        lost_after: std::time::Duration,
    ) -> Self {
        self.reachability = Arc::new(Reachability::new(unreachable_after).lost_after(lost_after));
        self
    }

    /// The same cluster seen in `namespace`, for following the Jobs created there before the
    /// service was restarted with another `--namespace`: the same client and settings, its own
    /// caches and metrics (the requests still count in this cluster's), and its own
    /// reachability, failing at the first failed watch: a namespace the service may no longer
    /// read fails alone, and says so at once.
    pub fn in_namespace(&self, namespace: &str) -> Self {
        let (caches, writers) = Caches::new(namespace);
        Cluster {
            namespace: namespace.to_owned(),
            caches,
            writers: Arc::new(Mutex::new(Some(writers))),
            metrics: Arc::default(),
            shared_logs: SharedLogs::default(),
            reachability: Arc::new(Reachability::new(Duration::ZERO)),
            capacity: None,
            ..self.clone()
        }
    }

    /// The cluster's name (`default` when the service has one cluster from its environment).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn reachability(&self) -> &Arc<Reachability> {
        &self.reachability
    }

    /// The same cluster, its Jobs submitted through Kueue.
    pub fn with_kueue(mut self, settings: KueueSettings) -> Self {
        let visibility = match (&settings.visibility_url, &self.config) {
            (None, _) => self.client.clone().ok(),
            (Some(url), Some(config)) => {
                let mut config = config.clone();
                config.cluster_url = url.clone();
                ClientBuilder::try_from(config)
                    .map(|builder| builder.build())
                    .map_err(|error| {
                        tracing::warn!(%error, "no client for Kueue's visibility API");
                    })
                    .ok()
            }
            (Some(_), None) => None,
        };
        self.kueue = Some(Arc::new(Kueue {
            settings,
            visibility,
        }));
        self
    }

    /// Kueue, if Jobs are submitted through it.
    pub fn kueue(&self) -> Option<&Kueue> {
        self.kueue.as_deref()
    }

    /// The caches' writing ends, once: for the controller that runs the watches.
    pub(crate) fn take_writers(&self) -> Option<Writers> {
        self.writers.lock().take()
    }

    pub fn caches(&self) -> &Caches {
        &self.caches
    }

    pub fn metrics(&self) -> &Arc<ClusterMetrics> {
        &self.metrics
    }

    pub fn shared_logs(&self) -> &SharedLogs {
        &self.shared_logs
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn is_configured(&self) -> bool {
        self.client.is_ok()
    }

    pub(crate) fn client(&self) -> Result<Client> {
        self.client.clone().map_err(ClusterError::NotConfigured)
    }

    pub fn jobs(&self) -> Result<Api<Job>> {
        Ok(Api::namespaced(self.client()?, &self.namespace))
    }

    /// The pods, whole (their logs are read through these).
    pub fn pods(&self) -> Result<Api<k8s_openapi::api::core::v1::Pod>> {
        Ok(Api::namespaced(self.client()?, &self.namespace))
    }

    /// The pods as the caches keep them, for the watch.
    pub fn cached_pods(&self) -> Result<Api<Pod>> {
        Ok(Api::namespaced(self.client()?, &self.namespace))
    }

    /// Checks the API server answers and lets us list Jobs (for `/readyz`).
    pub async fn probe(&self) -> Result<()> {
        bounded(
            self.jobs()?
                .list_metadata(&ListParams::default().labels(&app_selector()).limit(1)),
        )
        .await??;
        Ok(())
    }

    /// Creates a Job. The answer, the Job as stored (a few KiB with its template and its
    /// managed fields), is skipped rather than decoded: the dispatcher needs its status code
    /// only, and the watch brings the Job to the caches anyway.
    pub async fn create_job(&self, job: &Job) -> Result<Created> {
        let body = serde_json::to_vec(job).map_err(kube::Error::SerdeError)?;
        let mut request = kube::core::Request::new(self.jobs()?.resource_url())
            .create(&PostParams::default(), body)
            .map_err(kube::Error::BuildRequest)?;
        request.extensions_mut().insert("create");
        let client = self.client()?;
        match bounded(client.request::<serde::de::IgnoredAny>(request)).await? {
            Ok(_) => Ok(Created::Now),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Created::Before),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes a Job and, through background propagation, its pods (as `kubectl delete job`).
    /// A Job that is already gone counts as deleted.
    pub async fn delete_job(&self, name: &str) -> Result<()> {
        gone_is_done(bounded(self.jobs()?.delete(name, &DeleteParams::background())).await?)
    }

    /// Lifts our admission gate from a Job (Kueue may then admit it), leaving any other
    /// controller's; a Job that is gone, or has no gate of ours, counts as lifted.
    pub async fn lift_gate(&self, job: &Job) -> Result<()> {
        let Some(name) = job.metadata.name.as_deref() else {
            return Ok(());
        };
        let others = super::manifest::other_gates(job);
        let patch =
            serde_json::json!({"metadata": {"annotations": {ADMISSION_GATE_ANNOTATION: others}}});
        let (jobs, params, patch) = (self.jobs()?, PatchParams::default(), Patch::Merge(patch));
        gone_is_done(bounded(jobs.patch(name, &params, &patch)).await?)
    }

    /// A Job of ours by name, if it exists.
    pub async fn get_job(&self, name: &str) -> Result<Option<Job>> {
        Ok(bounded(self.jobs()?.get_opt(name)).await??)
    }

    /// A submission's pods, oldest first, as the pod watch knows them.
    pub async fn pods_of(&self, id: SubmissionId) -> Result<Vec<Arc<Pod>>> {
        self.ready().await?;
        Ok(self.caches.pods_of(id))
    }

    /// The Events about the named objects (a Job of ours and its pods): one list per object,
    /// filtered by the API server on `involvedObject.name`, however many the namespace holds.
    pub async fn events_about(&self, names: &[String]) -> Result<Vec<Event>> {
        let api: Api<Event> = Api::namespaced(self.client()?, &self.namespace);
        let lists = names.iter().map(|name| {
            let api = api.clone();
            let params = ListParams::default().fields(&format!("involvedObject.name={name}"));
            async move { Ok::<_, ClusterError>(bounded(api.list(&params)).await??) }
        });
        let lists = futures::future::try_join_all(lists).await?;
        Ok(lists.into_iter().flat_map(|list| list.items).collect())
    }

    /// A pod of ours by name, as the pod watch knows it.
    pub async fn pod(&self, name: &str) -> Result<Option<Arc<Pod>>> {
        self.ready().await?;
        Ok(self.caches.pod(name))
    }

    /// Our Jobs that `selector` selects, as the Job watch knows them.
    pub async fn list_jobs(&self, selector: &Selector) -> Result<Vec<Arc<Job>>> {
        self.ready().await?;
        Ok(self.caches.jobs_matching(selector))
    }

    /// Our pods that `selector` selects, as the pod watch knows them.
    pub async fn list_pods(&self, selector: &Selector) -> Result<Vec<Arc<Pod>>> {
        self.ready().await?;
        Ok(self.caches.pods_matching(selector))
    }

    /// Waits (briefly) for the watches' first list; without a cluster, says so.
    async fn ready(&self) -> Result<()> {
        self.client()?;
        self.caches.ready().await
    }
}

/// A call's answer, a Job that is already gone counting as done.
fn gone_is_done<T>(answer: std::result::Result<T, kube::Error>) -> Result<()> {
    match answer.map_err(ClusterError::from) {
        Ok(_) => Ok(()),
        Err(error) if error.is_not_found() => Ok(()),
        Err(error) => Err(error),
    }
}

/// How long one call to the API server may take. A log stream is long by nature: its opening
/// is bounded, its body is not; watches are kube's watcher's, which restarts them itself.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// `call`, or an [`ClusterError::Unreachable`] if the API server has not answered within
/// [`CALL_TIMEOUT`]: a hung connection must not hold up a request, a dispatch or a reconcile
/// for as long as TCP keeps it open.
pub async fn bounded<T>(
    call: impl Future<Output = std::result::Result<T, kube::Error>>,
) -> Result<std::result::Result<T, kube::Error>> {
    tokio::time::timeout(CALL_TIMEOUT, call).await.map_err(|_| {
        ClusterError::Unreachable(format!(
            "no answer within {} seconds",
            CALL_TIMEOUT.as_secs()
        ))
    })
}

/// Time limits on API server calls, against a fake API server that never answers (kube's
/// `tower_test` mock: a real one cannot be made to hang on demand) and paused time.
#[cfg(test)]
mod tests {
    use std::pin::pin;

    use http::{Request, Response};
    use kube::client::Body;
    use tower_test::mock;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_call_never_answered_ends_after_the_call_timeout() {
        let started = tokio::time::Instant::now();

        let result = bounded(std::future::pending::<std::result::Result<(), kube::Error>>()).await;

        assert!(
            matches!(&result, Err(ClusterError::Unreachable(message)) if message.contains("20 seconds")),
            "{result:?}"
        );
        assert_eq!(started.elapsed(), CALL_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_create_the_api_server_never_answers_is_unreachable_not_hung() {
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let cluster = Cluster::new(Client::new(service, "default"), "default".into());
        let silent = tokio::spawn(async move {
            let mut handle = pin!(handle);
            let received = handle.next_request().await;
            std::future::pending::<()>().await;
            drop(received);
        });
        let job: Job = serde_json::from_value(serde_json::json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "sh-x"}
        }))
        .expect("job");

        let created = cluster.create_job(&job).await;

        assert!(
            matches!(created, Err(ClusterError::Unreachable(_))),
            "{created:?}"
        );
        silent.abort();
    }
}
