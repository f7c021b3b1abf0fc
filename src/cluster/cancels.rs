//! Deleting the Jobs of cancelled submissions, in the background.
//!
//! A cancel is recorded in one statement and answered at once; the Jobs go afterwards, here:
//! each pod's log is archived first (bounded in time), then the Job is deleted with background
//! propagation, so its pods go too. A client that hangs up changes nothing, and a bulk cancel of
//! thousands answers in the time of one UPDATE. What is not deleted yet when the service stops
//! (or fails here) is deleted by the controller, which removes any Job of a cancelled
//! submission it sees, at every (re)list included.

use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Cluster, logs};
use crate::domain::SubmissionId;
use crate::storage::Store;

/// Jobs deleted at the same time.
const CONCURRENCY: usize = 16;
/// How long a cancel waits for the logs of its pods to be archived before deleting them.
const ARCHIVE_BEFORE_DELETE: Duration = Duration::from_secs(10);

/// A Job to delete: its submission and name.
type Doomed = (SubmissionId, String);

/// Where cancels leave the Jobs to delete. Cheap to clone.
#[derive(Clone)]
pub struct Cancels {
    queue: Option<mpsc::UnboundedSender<Doomed>>,
}

impl Cancels {
    /// Nothing is deleted (no cluster): the Jobs, if any, are the watcher's once there is one.
    pub fn none() -> Self {
        Cancels { queue: None }
    }

    /// The queue, and the task that works it until `stop`.
    pub fn start(
        cluster: Cluster,
        store: Store,
        stop: CancellationToken,
    ) -> (Self, impl Future<Output = ()>) {
        let (queue, doomed) = mpsc::unbounded_channel();
        let worker = async move {
            stream_of(doomed)
                .take_until(stop.cancelled_owned())
                .for_each_concurrent(CONCURRENCY, |(id, job_name)| {
                    delete(&cluster, &store, id, job_name)
                })
                .await;
        };
        (Cancels { queue: Some(queue) }, worker)
    }

    /// Hands the Jobs of these cancelled submissions to the background.
    pub fn delete_jobs(&self, jobs: impl IntoIterator<Item = Doomed>) {
        if let Some(queue) = &self.queue {
            for job in jobs {
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

async fn delete(cluster: &Cluster, store: &Store, id: SubmissionId, job_name: String) {
    let archived = logs::archive(cluster, store, id, true);
    if tokio::time::timeout(ARCHIVE_BEFORE_DELETE, archived)
        .await
        .is_err()
    {
        tracing::warn!(submission_id = %id, "archiving logs before a cancel's delete took too long");
    }
    if let Err(error) = cluster.delete_job(&job_name).await {
        tracing::warn!(submission_id = %id, %error, "could not delete a cancelled submission's Job yet; the controller will");
    }
}
