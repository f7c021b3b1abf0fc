//! Pod logs, as `kubectl logs [-f]` shows them.
//!
//! Right after a submit no pod may have started yet; a user who follows the logs expects to see
//! them once the payload runs, not an error. So a follow first waits (bounded) for a pod of the
//! submission whose container has started, watching rather than polling.

use std::time::Duration;

use futures::{AsyncBufRead, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;

use super::{Cluster, ClusterError, manifest, submission_selector};
use crate::domain::{SUBMISSION_ID_LABEL, SubmissionId};

/// Why no log can be shown.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("submission {0} has no pod named {1}")]
    NoSuchPod(SubmissionId, String),
    #[error("no pod of this submission has started yet")]
    NotStarted,
    #[error("no pod of this submission started within {0} seconds")]
    Timeout(u64),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct LogRequest {
    pub pod: Option<String>,
    pub follow: bool,
    pub tail_lines: Option<i64>,
    pub timestamps: bool,
}

/// Whether the payload container of `pod` has started (is running or has run).
fn has_started(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter(|container| container.name == manifest::CONTAINER_NAME)
        .filter_map(|container| container.state.as_ref())
        .any(|state| state.running.is_some() || state.terminated.is_some())
}

/// The newest pod, which is the one `kubectl logs job/NAME` would choose to show.
fn newest(pods: Vec<Pod>) -> Option<Pod> {
    pods.into_iter().max_by(|a, b| {
        let key = |pod: &Pod| {
            (
                pod.metadata.creation_timestamp.clone(),
                pod.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    })
}

/// Finds the pod whose log to show, waiting up to `wait` for one to start when following.
pub async fn choose_pod(
    cluster: &Cluster,
    id: SubmissionId,
    request: &LogRequest,
    wait: Duration,
) -> Result<String, LogError> {
    if let Some(name) = &request.pod {
        let pod = cluster
            .pods()?
            .get_opt(name)
            .await
            .map_err(ClusterError::from)?;
        let belongs = pod
            .as_ref()
            .and_then(|pod| pod.metadata.labels.as_ref())
            .and_then(|labels| labels.get(SUBMISSION_ID_LABEL))
            .is_some_and(|label| *label == id.to_string());
        if !belongs {
            return Err(LogError::NoSuchPod(id, name.clone()));
        }
        if request.follow {
            wait_for_start(cluster, id, Some(name), wait).await?;
        }
        return Ok(name.clone());
    }
    let pods = cluster.pods_of(id).await?;
    let started = newest(pods.into_iter().filter(has_started).collect());
    if let Some(name) = started.and_then(|pod| pod.metadata.name) {
        return Ok(name);
    }
    if !request.follow {
        return Err(LogError::NotStarted);
    }
    wait_for_start(cluster, id, None, wait).await
}

async fn wait_for_start(
    cluster: &Cluster,
    id: SubmissionId,
    name: Option<&str>,
    wait: Duration,
) -> Result<String, LogError> {
    let config = watcher::Config::default().labels(&submission_selector(id));
    let mut pods = watcher::watcher(cluster.pods()?, config)
        .applied_objects()
        .boxed();
    let started = async {
        while let Some(pod) = pods.next().await {
            let pod = match pod {
                Ok(pod) => pod,
                Err(
                    watcher::Error::InitialListFailed(error)
                    | watcher::Error::WatchStartFailed(error),
                ) => {
                    return Err(LogError::Cluster(error.into()));
                }
                Err(_) => continue,
            };
            let matches = name.is_none_or(|name| pod.metadata.name.as_deref() == Some(name));
            if matches
                && has_started(&pod)
                && let Some(name) = pod.metadata.name
            {
                return Ok(name);
            }
        }
        Err(LogError::NotStarted)
    };
    tokio::time::timeout(wait, started)
        .await
        .unwrap_or(Err(LogError::Timeout(wait.as_secs())))
}

/// The log of the payload container of `pod`, as a byte stream.
pub async fn stream(
    cluster: &Cluster,
    pod: &str,
    request: &LogRequest,
) -> Result<impl AsyncBufRead + use<>, ClusterError> {
    let params = LogParams {
        container: Some(manifest::CONTAINER_NAME.into()),
        follow: request.follow,
        tail_lines: request.tail_lines,
        timestamps: request.timestamps,
        ..LogParams::default()
    };
    Ok(cluster.pods()?.log_stream(pod, &params).await?)
}
