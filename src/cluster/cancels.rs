//! Deleting the Jobs of cancelled submissions, in the background.
//!
//! A cancel is recorded in one statement and answered at once; the Jobs go afterwards, here:
//! each pod's log is archived first (bounded in time), then the Job is deleted with background
//! propagation, so its pods go too. A client that hangs up changes nothing, and a bulk cancel of
//! thousands answers in the time of one UPDATE. What is not deleted yet when the service stops
//! (or fails here) is deleted by the controller, which removes any Job of a cancelled
//! submission it sees, at every (re)list included.
//!
//! A Job is queued once: while its delete is queued or under way, the controller's reconciles
//! of that submission (every event of its pods while they stop) ask again and are ignored, so
//! a campaign's cancel reads each log and deletes each Job once, not once per event.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::client::Cluster;
use super::clusters::Clusters;
use super::logs;
use crate::domain::{JobRef, SubmissionId};
use crate::storage::Store;

/// Jobs deleted at the same time.
const CONCURRENCY: usize = 16;
/// How long a cancel waits for the logs of its pods to be archived before deleting them.
const ARCHIVE_BEFORE_DELETE: Duration = Duration::from_secs(10);

/// A Job to delete.
type Doomed = JobRef;
/// Where a Job is: its cluster, namespace and name.
type Place = (String, String, String);

/// Where cancels leave the Jobs to delete. Cheap to clone.
#[derive(Clone)]
pub struct Cancels {
    queue: Option<mpsc::UnboundedSender<Doomed>>,
    /// Where the Jobs queued or being deleted are.
    pending: Arc<Mutex<HashSet<Place>>>,
}

impl Cancels {
    /// Nothing is deleted (no cluster): the Jobs, if any, are the watcher's once there is one.
    pub fn none() -> Self {
        Cancels {
            queue: None,
            pending: Arc::default(),
        }
    }

    /// The queue, and the task that works it until `stop`.
    pub fn start(
        clusters: Clusters,
        store: Store,
        stop: CancellationToken,
    ) -> (Self, impl Future<Output = ()>) {
        let (queue, doomed) = mpsc::unbounded_channel();
        let pending: Arc<Mutex<HashSet<Place>>> = Arc::default();
        let done = pending.clone();
        let worker = async move {
            let (clusters, store, done) = (&clusters, &store, &done);
            stream_of(doomed)
                .take_until(stop.cancelled_owned())
                .for_each_concurrent(CONCURRENCY, |job: Doomed| {
                    async move {
                        let JobRef { id, job_name, cluster, namespace } = job;
                        let cluster = cluster.unwrap_or_default();
                        match clusters.following(&cluster, &namespace) {
                            Some(handle) => delete(handle, store, id, &job_name).await,
                            None => tracing::warn!(submission_id = %id, cluster, namespace, "the Job of a cancelled submission is where this service no longer follows; it is left there"),
                        }
                        // Asked again after this (the delete failed, or a relist still shows
                        // the Job), it is queued again.
                        done.lock().remove(&(cluster, namespace, job_name));
                    }
                })
                .await;
        };
        let cancels = Cancels {
            queue: Some(queue),
            pending,
        };
        (cancels, worker)
    }

    /// Hands the Jobs of these cancelled submissions to the background, each unless it is
    /// already queued or being deleted. A Job never placed in a cluster was never created.
    pub fn delete_jobs(&self, jobs: impl IntoIterator<Item = JobRef>) {
        let Some(queue) = &self.queue else {
            return;
        };
        let mut pending = self.pending.lock();
        for job in jobs {
            let Some(cluster) = &job.cluster else {
                continue;
            };
            let place = (cluster.clone(), job.namespace.clone(), job.job_name.clone());
            if pending.insert(place) {
                // The worker stopped only when the service is stopping; the watcher finishes.
                let _ = queue.send(job);
            }
        }
    }
}

/// The receiver as a stream (what `tokio-stream`'s wrapper does, without the dependency).
fn stream_of<T>(mut receiver: mpsc::UnboundedReceiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |context| receiver.poll_recv(context))
}

async fn delete(cluster: &Cluster, store: &Store, id: SubmissionId, job_name: &str) {
    let archived = logs::archive(cluster, store, id);
    if tokio::time::timeout(ARCHIVE_BEFORE_DELETE, archived)
        .await
        .is_err()
    {
        tracing::warn!(submission_id = %id, "archiving logs before a cancel's delete took too long");
    }
    if let Err(error) = cluster.delete_job(job_name).await {
        tracing::warn!(submission_id = %id, %error, "could not delete a cancelled submission's Job yet; the controller will");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The queue alone, without a worker (a cluster cannot be faked here): what is sent to it.
    fn queue_only() -> (Cancels, mpsc::UnboundedReceiver<Doomed>) {
        let (queue, doomed) = mpsc::unbounded_channel();
        let cancels = Cancels {
            queue: Some(queue),
            pending: Arc::default(),
        };
        (cancels, doomed)
    }

    fn job(id: SubmissionId, name: &str) -> JobRef {
        JobRef {
            id,
            job_name: name.to_owned(),
            cluster: Some("default".to_owned()),
            namespace: "jobs".to_owned(),
        }
    }

    #[test]
    fn a_job_asked_for_again_while_queued_is_queued_once() {
        let (cancels, mut doomed) = queue_only();
        let id = SubmissionId::new();

        cancels.delete_jobs([job(id, "sh-a")]);
        cancels.delete_jobs([job(id, "sh-a"), job(id, "sh-b")]);
        cancels.delete_jobs([job(id, "sh-a")]);

        let mut queued = Vec::new();
        while let Ok(job) = doomed.try_recv() {
            queued.push(job.job_name);
        }
        assert_eq!(queued, ["sh-a", "sh-b"]);
    }

    #[test]
    fn a_job_is_queued_again_once_its_delete_is_done() {
        let (cancels, mut doomed) = queue_only();
        let id = SubmissionId::new();
        cancels.delete_jobs([job(id, "sh-a")]);
        assert!(doomed.try_recv().is_ok());

        cancels.pending.lock().remove(&(
            "default".to_owned(),
            "jobs".to_owned(),
            "sh-a".to_owned(),
        ));
        cancels.delete_jobs([job(id, "sh-a")]);

        assert!(doomed.try_recv().is_ok(), "queued again");
    }
}
