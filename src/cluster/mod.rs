//! The cluster side: the Job manifest, the calls the service makes to the API server, the
//! dispatcher that creates Jobs for stored submissions, the watchers that keep their status
//! current, and the kubectl-like views of Jobs and pods.
//!
//! Everything goes through the service's own credentials (`kube::Config::infer()`: the
//! kubeconfig in the standard place, or the pod's service account in a cluster) and stays in one
//! namespace.

pub mod archiver;
pub mod cache;
pub mod cancels;
pub mod controller;
pub mod dispatch;
pub mod events;
pub mod logs;
pub mod manifest;
pub mod metrics;
pub mod progress;
pub mod reconcile;
pub mod selector;
pub mod shared_logs;
pub mod tes_pod;
pub mod views;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::client::ClientBuilder;
use kube::core::Selector;
use kube::{Client, Config};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache::{Caches, Writers};
use metrics::ClusterMetrics;

use crate::domain::{APP_LABEL, APP_LABEL_VALUE, SubmissionId};

/// What can go wrong talking to the cluster.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    #[error("no cluster is configured: {0}")]
    NotConfigured(String),
    /// The API server answered with an error status.
    #[error("the API server answered {code} {reason}: {message}")]
    Api {
        code: u16,
        reason: String,
        message: String,
    },
    #[error("the API server could not be reached: {0}")]
    Unreachable(String),
}

impl ClusterError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClusterError::Api { code: 404, .. })
    }

    /// What is wrong in a few words, for anyone who asks (`/readyz` needs no token): never the
    /// API server's own text, which names hosts, users and resources; that goes to the log.
    pub fn short_cause(&self) -> &'static str {
        match self {
            ClusterError::NotConfigured(_) => "no cluster is configured",
            ClusterError::Unreachable(_) => "the API server could not be reached",
            ClusterError::Api {
                code: 401 | 403, ..
            } => "the API server refuses the service's credentials",
            ClusterError::Api { .. } => "the API server answers with errors",
        }
    }

    /// The API server refused this create for a reason that may pass (RBAC, a quota, an
    /// admission policy, a missing namespace): worth a few more tries, not for ever. Not an
    /// invalid object, a conflict, or the API server's own trouble (429, 5xx).
    pub fn is_refused(&self) -> bool {
        matches!(self, ClusterError::Api { code, .. }
            if (400..500).contains(code) && !matches!(code, 400 | 409 | 422 | 429))
    }

    /// The API server refused the object itself; sending it again cannot succeed.
    pub fn is_invalid(&self) -> bool {
        matches!(
            self,
            ClusterError::Api {
                code: 400 | 422,
                ..
            }
        )
    }
}

impl From<kube::Error> for ClusterError {
    fn from(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => ClusterError::Api {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            other => ClusterError::Unreachable(other.to_string()),
        }
    }
}

pub type Result<T, E = ClusterError> = std::result::Result<T, E>;

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
    shared_logs: shared_logs::SharedLogs,
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
        match ClientBuilder::try_from(config) {
            Ok(builder) => {
                let client = builder
                    .with_layer(&metrics::CountingLayer(metrics.clone()))
                    .build();
                Cluster::with_metrics(Ok(client), namespace, metrics)
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
        }
    }

    /// The caches' writing ends, once: for the controller that runs the watches.
    pub(crate) fn take_writers(&self) -> Option<Writers> {
        lock(&self.writers).take()
    }

    pub fn caches(&self) -> &Caches {
        &self.caches
    }

    pub fn metrics(&self) -> &Arc<ClusterMetrics> {
        &self.metrics
    }

    pub fn shared_logs(&self) -> &shared_logs::SharedLogs {
        &self.shared_logs
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn is_configured(&self) -> bool {
        self.client.is_ok()
    }

    fn client(&self) -> Result<Client> {
        self.client.clone().map_err(ClusterError::NotConfigured)
    }

    pub fn jobs(&self) -> Result<Api<Job>> {
        Ok(Api::namespaced(self.client()?, &self.namespace))
    }

    pub fn pods(&self) -> Result<Api<Pod>> {
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

    pub async fn create_job(&self, job: &Job) -> Result<Created> {
        match bounded(self.jobs()?.create(&PostParams::default(), job)).await? {
            Ok(_) => Ok(Created::Now),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Created::Before),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes a Job and, through background propagation, its pods (as `kubectl delete job`).
    /// A Job that is already gone counts as deleted.
    pub async fn delete_job(&self, name: &str) -> Result<()> {
        match bounded(self.jobs()?.delete(name, &DeleteParams::background())).await? {
            Ok(_) => Ok(()),
            Err(error) => {
                let error = ClusterError::from(error);
                if error.is_not_found() {
                    Ok(())
                } else {
                    Err(error)
                }
            }
        }
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

/// The data behind a lock, even if a thread panicked while holding it: what the cluster side
/// keeps under locks (caches, queues, notes) stays usable, never poisons the service.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
