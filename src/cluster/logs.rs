//! Pod logs, as `kubectl logs [-f]` shows them, and the archive that keeps them once the pods
//! are gone.
//!
//! Right after a submit no pod may have started yet; a user who follows the logs expects to see
//! them once the payload runs, not an error. So a follow first waits (bounded) for a pod of the
//! submission whose container has started, watching rather than polling. When a pod ends (or is
//! about to be deleted by a cancel) its log is copied into the database, so TTL deletion, cancels
//! and lost nodes do not take the log with them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{AsyncBufRead, StreamExt as _};
use kube::api::LogParams;
use tokio_util::compat::FuturesAsyncReadCompatExt as _;
use tokio_util::io::ReaderStream;

use super::cached_pod::{ContainerStatus, Pod};
use super::client::{Cluster, bounded};
use super::error::ClusterError;
use crate::domain::{SUBMISSION_ID_LABEL, SubmissionId};
use crate::storage::{ArchivedLog, Store};

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

/// The name of `pod`'s payload container: its one container (named after the submission's
/// tool; `payload` for submissions stored before containers were named so).
pub fn payload_container(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|spec| spec.containers.first())
        .map(|container| container.name.as_str())
}

/// The container whose log the pod's log is: the last one, in the order they run (init
/// containers first), that has started. A submission's pod has one container; a TES task's
/// runs its executors in turn, and one that failed leaves those after it unstarted.
pub fn logged_container(pod: &Pod) -> Option<&str> {
    statuses_in_order(pod)
        .rfind(|container| {
            container
                .state
                .as_ref()
                .is_some_and(|state| state.running.is_some() || state.terminated.is_some())
        })
        .map(|container| container.name.as_str())
}

/// The statuses of `pod`'s containers in the order they run: init containers first.
pub fn statuses_in_order(pod: &Pod) -> impl DoubleEndedIterator<Item = &ContainerStatus> {
    let status = pod.status.as_ref();
    let init = status.and_then(|status| status.init_container_statuses.as_ref());
    let main = status.and_then(|status| status.container_statuses.as_ref());
    init.into_iter().flatten().chain(main.into_iter().flatten())
}

/// Whether a container of `pod` has started (is running or has run).
pub fn has_started(pod: &Pod) -> bool {
    logged_container(pod).is_some()
}

/// The newest pod, which is the one `kubectl logs job/NAME` would choose to show.
fn newest(pods: Vec<Arc<Pod>>) -> Option<Arc<Pod>> {
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

/// Finds the pod whose log to show, waiting up to `wait` for one to start when following:
/// the one named, else the newest started pod of the submission's current run (its Job
/// `job_name`; an earlier run's pods are asked for by name).
pub async fn choose_pod(
    cluster: &Cluster,
    id: SubmissionId,
    job_name: &str,
    request: &LogRequest,
    wait: Duration,
) -> Result<String, LogError> {
    if let Some(name) = &request.pod {
        let belongs = cluster
            .pod(name)
            .await?
            .as_ref()
            .and_then(|pod| pod.metadata.labels.as_ref())
            .and_then(|labels| labels.get(SUBMISSION_ID_LABEL))
            .is_some_and(|label| *label == id.to_string());
        if !belongs {
            return Err(LogError::NoSuchPod(id, name.clone()));
        }
        if request.follow {
            wait_for_start(
                cluster,
                id,
                |pod| pod.metadata.name.as_ref() == Some(name),
                wait,
            )
            .await?;
        }
        return Ok(name.clone());
    }
    let pods = cluster.pods_of(id).await?;
    let started = newest(
        pods.into_iter()
            .filter(|pod| has_started(pod) && of_job(pod, job_name))
            .collect(),
    );
    if let Some(name) = started.and_then(|pod| pod.metadata.name.clone()) {
        return Ok(name);
    }
    if !request.follow {
        return Err(LogError::NotStarted);
    }
    wait_for_start(cluster, id, |pod| of_job(pod, job_name), wait).await
}

/// What the names of the pods of the Job `job_name` start with (all that is known of a pod
/// whose watch saw it go, or whose log was archived).
pub fn run_prefix(job_name: &str) -> String {
    format!("{job_name}-")
}

/// Whether `pod` belongs to the Job named `job_name` (the job controller labels its pods).
pub fn of_job(pod: &Pod, job_name: &str) -> bool {
    let labels = pod.metadata.labels.as_ref();
    let job = labels.and_then(|labels| {
        labels
            .get("batch.kubernetes.io/job-name")
            .or_else(|| labels.get("job-name"))
    });
    job.is_none_or(|job| job == job_name)
}

/// Waits for a pod of the submission that is `wanted` to start, as the pod cache sees it: no
/// watch of its own, however many followers wait.
async fn wait_for_start(
    cluster: &Cluster,
    id: SubmissionId,
    wanted: impl Fn(&Pod) -> bool,
    wait: Duration,
) -> Result<String, LogError> {
    let caches = cluster.caches();
    let started = async {
        loop {
            let changed = caches.pod_changed();
            let pods = cluster.pods_of(id).await?;
            let found = pods.iter().find(|pod| wanted(pod) && has_started(pod));
            if let Some(name) = found.and_then(|pod| pod.metadata.name.clone()) {
                return Ok(name);
            }
            changed.await;
        }
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
    // Without a cached pod to name its container, the API server picks its only one.
    let container = cluster.caches().pod(pod).and_then(|pod| {
        logged_container(&pod)
            .or_else(|| payload_container(&pod))
            .map(str::to_owned)
    });
    let params = LogParams {
        container,
        follow: request.follow,
        tail_lines: request.tail_lines,
        timestamps: request.timestamps,
        ..LogParams::default()
    };
    Ok(bounded(cluster.pods()?.log_stream(pod, &params)).await??)
}

/// A pod's log as `request` asks: a follow shares the pod's one upstream stream with every
/// other follower (see [`super::shared_logs`]); a read, or a follow that wants more than the
/// shared history holds, gets a stream of its own.
pub async fn open(
    cluster: &Cluster,
    pod: &str,
    request: &LogRequest,
) -> Result<BoxStream<'static, std::io::Result<Bytes>>, ClusterError> {
    if request.follow {
        let whole = LogRequest {
            follow: true,
            timestamps: true,
            ..LogRequest::default()
        };
        let shared = cluster
            .shared_logs()
            .follow(
                pod,
                request.tail_lines,
                request.timestamps,
                stream(cluster, pod, &whole),
            )
            .await?;
        if let Some(shared) = shared {
            return Ok(shared);
        }
    }
    let reader = stream(cluster, pod, request).await?;
    Ok(ReaderStream::new(reader.compat()).boxed())
}

/// The most of one pod's log the archive keeps: its last 4 MiB.
pub const ARCHIVE_LIMIT: usize = 4 * 1024 * 1024;

/// Archives the log of every pod of a submission that has started, as it is now, before a
/// cancel deletes them, so the logs outlive the pods. Failures are logged: a missing archive
/// must never stop a cancel.
pub async fn archive(cluster: &Cluster, store: &Store, id: SubmissionId) {
    let pods = match cluster.pods_of(id).await {
        Ok(pods) => pods,
        Err(error) => {
            tracing::warn!(submission_id = %id, %error, "cannot list pods to archive their logs");
            return;
        }
    };
    for pod in pods.iter().filter(|pod| has_started(pod)) {
        archive_pod(cluster, store, id, pod).await;
    }
}

/// Whether the pod ran to its end.
pub fn has_ended(pod: &Pod) -> bool {
    matches!(
        pod.status
            .as_ref()
            .and_then(|status| status.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Archives one pod's log as it is now.
pub async fn archive_pod(cluster: &Cluster, store: &Store, id: SubmissionId, pod: &Pod) {
    let Some(name) = pod.metadata.name.as_deref() else {
        return;
    };
    let read = tokio::time::timeout(ARCHIVE_TIME_LIMIT, read_tail(cluster, name)).await;
    let log = match read {
        Ok(Ok(log)) => log,
        failed => {
            let why = match failed {
                Ok(Err(error)) => {
                    tracing::warn!(submission_id = %id, pod = %name, %error, "cannot read a log to archive");
                    error.short_cause().to_owned()
                }
                _ => {
                    let why = format!(
                        "reading it took longer than {} seconds",
                        ARCHIVE_TIME_LIMIT.as_secs()
                    );
                    tracing::warn!(submission_id = %id, pod = %name, %why, "cannot read a log to archive");
                    why
                }
            };
            // Said in the archive itself, so whoever asks for the log once the pod is gone
            // learns why there is none, unless an earlier copy exists. If the database cannot
            // say, no note is written over what may be there; for a pod that ended, the
            // reconcile that follows finds its log unarchived and has it read again.
            match store.archived_pods(id).await {
                Ok(archived) if archived.iter().any(|done| done == name) => return,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(submission_id = %id, pod = %name, %error, "cannot tell whether a log was archived before; no note written");
                    return;
                }
            }
            ArchivedLog {
                pod_name: name.to_owned(),
                content: not_archived_note(&why).into_bytes(),
                truncated_bytes: 0,
            }
        }
    };
    let created = pod
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or_else(jiff::Timestamp::now, |at| at.0);
    match store.archive_log(id, created, &log).await {
        Ok(()) => {
            tracing::info!(submission_id = %id, pod = %name, bytes = log.content.len(), "log archived")
        }
        Err(error) => {
            tracing::warn!(submission_id = %id, pod = %name, %error, "cannot archive a log")
        }
    }
}

/// How long reading one pod's log for the archive may take.
pub const ARCHIVE_TIME_LIMIT: Duration = Duration::from_secs(20);

/// What the archive holds for a pod whose log could not be read.
pub fn not_archived_note(why: &str) -> String {
    format!("[submission-helper: this pod's log could not be archived: {why}]\n")
}

/// A pod's whole log, keeping only its last [`ARCHIVE_LIMIT`] bytes in memory.
async fn read_tail(cluster: &Cluster, pod: &str) -> Result<ArchivedLog, ClusterError> {
    let reader = stream(cluster, pod, &LogRequest::default()).await?;
    let (content, truncated_bytes) = keep_tail(reader, ARCHIVE_LIMIT).await?;
    Ok(ArchivedLog {
        pod_name: pod.to_owned(),
        content,
        truncated_bytes,
    })
}

/// The whole log of one named container of `pod`, keeping only its last `limit` bytes: the
/// kept bytes, and how many were dropped before them.
pub async fn container_tail(
    cluster: &Cluster,
    pod: &str,
    container: &str,
    limit: usize,
) -> Result<(Vec<u8>, u64), ClusterError> {
    let params = LogParams {
        container: Some(container.to_owned()),
        ..LogParams::default()
    };
    let reader = bounded(cluster.pods()?.log_stream(pod, &params)).await??;
    keep_tail(reader, limit).await
}

/// Reads `reader` to its end, keeping at most twice `limit` bytes in memory.
async fn keep_tail(
    reader: impl AsyncBufRead,
    limit: usize,
) -> Result<(Vec<u8>, u64), ClusterError> {
    use futures::AsyncReadExt;
    let mut reader = std::pin::pin!(reader);
    let mut content = Vec::new();
    let mut dropped = 0u64;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = reader
            .read(&mut chunk)
            .await
            .map_err(|error| ClusterError::Unreachable(error.to_string()))?;
        if read == 0 {
            break;
        }
        content.extend_from_slice(&chunk[..read]);
        if content.len() > 2 * limit {
            let excess = content.len() - limit;
            content.drain(..excess);
            dropped += excess as u64;
        }
    }
    if content.len() > limit {
        let excess = content.len() - limit;
        content.drain(..excess);
        dropped += excess as u64;
    }
    Ok((content, dropped))
}

/// What the archive serves: the kept bytes, after a visible marker if the start was dropped,
/// or only the last `tail_lines` lines if asked.
pub fn archived_view(log: &ArchivedLog, tail_lines: Option<i64>) -> Vec<u8> {
    if let Some(tail) = tail_lines.and_then(|tail| usize::try_from(tail).ok()) {
        let kept = last_lines(&log.content, tail);
        if kept.len() < log.content.len() {
            return kept.to_vec();
        }
    }
    let mut view = Vec::with_capacity(log.content.len() + 100);
    if log.truncated_bytes > 0 {
        let marker = format!(
            "[submission-helper: log truncated, the first {} bytes were dropped; the last {} bytes follow]\n",
            log.truncated_bytes,
            log.content.len()
        );
        view.extend_from_slice(marker.as_bytes());
    }
    view.extend_from_slice(&log.content);
    view
}

/// The last `count` lines of `content` (a final line without a newline counts as a line).
fn last_lines(content: &[u8], count: usize) -> &[u8] {
    if count == 0 {
        return &[];
    }
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    let mut seen = 0;
    for (at, byte) in body.iter().enumerate().rev() {
        if *byte == b'\n' {
            seen += 1;
            if seen == count {
                return &content[at + 1..];
            }
        }
    }
    content
}

#[cfg(test)]
mod tests {
    use super::*;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use crate::domain::{Caller, Submission, SubmissionRequest, SubmissionSpec, SubmitDefaults};

    fn log(content: &str, truncated_bytes: u64) -> ArchivedLog {
        ArchivedLog {
            pod_name: "p".into(),
            content: content.as_bytes().to_vec(),
            truncated_bytes,
        }
    }

    #[test]
    fn an_archive_is_served_byte_for_byte() {
        assert_eq!(archived_view(&log("a\nb\n", 0), None), b"a\nb\n");
    }

    #[test]
    fn a_truncated_archive_says_so_first() {
        let view = String::from_utf8(archived_view(&log("end\n", 10), None)).expect("text");

        assert!(
            view.starts_with("[submission-helper: log truncated, the first 10 bytes"),
            "{view}"
        );
        assert!(view.ends_with("\nend\n"));
    }

    #[test]
    fn tail_lines_keeps_the_last_lines_of_an_archive() {
        let archive = log("one\ntwo\nthree\n", 0);

        assert_eq!(archived_view(&archive, Some(2)), b"two\nthree\n");
        assert_eq!(archived_view(&archive, Some(1)), b"three\n");
        assert_eq!(archived_view(&archive, Some(5)), b"one\ntwo\nthree\n");
        assert_eq!(archived_view(&archive, Some(0)), b"");
    }

    /// A stored submission (in a real SQLite file), one pod of it, and a cluster whose API
    /// server is a closed port on loopback.
    async fn a_pod_of_an_unreachable_cluster()
    -> (Cluster, Store, SubmissionId, Pod, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let store = Store::connect(&url).await.expect("store");
        let request = SubmissionRequest {
            image: Some("busybox".into()),
            command: Some("true".into()),
            ..SubmissionRequest::default()
        };
        let spec = SubmissionSpec::parse(request, &SubmitDefaults::default()).expect("valid");
        let submission = Submission::new(spec, "default", &Caller::user("alice"));
        store
            .insert(vec![submission.clone()])
            .await
            .expect("insert");
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("address").port();
        drop(closed);
        let server = format!("https://127.0.0.1:{port}").parse().expect("url");
        let cluster = Cluster::from_config(kube::Config::new(server), "default".into());
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some(format!("{}-abcde", submission.job_name)),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        };
        (cluster, store, submission.id, pod, dir)
    }

    #[tokio::test]
    async fn a_log_that_cannot_be_read_is_archived_as_a_note_with_the_short_cause() {
        let (cluster, store, id, pod, _dir) = a_pod_of_an_unreachable_cluster().await;

        archive_pod(&cluster, &store, id, &pod).await;

        let archived = store
            .archived_log(id, pod.metadata.name.as_deref(), "")
            .await
            .expect("read")
            .expect("a note");
        assert_eq!(
            String::from_utf8(archived.content).expect("text"),
            "[submission-helper: this pod's log could not be archived: the API server could not \
             be reached]\n"
        );
    }

    #[tokio::test]
    async fn a_log_archived_before_is_kept_when_it_cannot_be_read_again() {
        let (cluster, store, id, pod, _dir) = a_pod_of_an_unreachable_cluster().await;
        let earlier = ArchivedLog {
            pod_name: pod.metadata.name.clone().expect("name"),
            content: b"the payload's output\n".to_vec(),
            truncated_bytes: 0,
        };
        store
            .archive_log(id, jiff::Timestamp::now(), &earlier)
            .await
            .expect("archive");

        archive_pod(&cluster, &store, id, &pod).await;

        let archived = store
            .archived_log(id, pod.metadata.name.as_deref(), "")
            .await
            .expect("read")
            .expect("the log");
        assert_eq!(archived.content, earlier.content);
    }
}
