//! Level-triggered reconciles of one submission, retried until its state is recorded.
//!
//! The watchers record each change as it arrives; when the database cannot take one (it is
//! down, locked, restarting), the change is not dropped: its submission is queued here and
//! reconciled from the cluster's current state (its Job and pods, read again) with backoff
//! until the store takes it. The queue holds each submission once, so a submission that keeps
//! failing is retried at its own pace and never twice at once.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::time::{DelayQueue, delay_queue};

use super::watch::{progress_after_job_deleted, progress_from_job, progress_from_pod};
use super::{Cluster, ClusterError, logs};
use crate::domain::{State, SubmissionId};
use crate::storage::{StorageError, Store};

/// Why a reconcile did not get through; it is tried again later.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// The first retry comes soon; later ones back off up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The delay before retry number `attempt` (from 0): doubling, capped.
pub fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(MAX_BACKOFF)
}

/// Where the watchers hand the submissions whose change they could not record.
#[derive(Debug, Clone)]
pub struct Retries(mpsc::UnboundedSender<SubmissionId>);

impl Retries {
    /// A queue and the receiving end its [`run`] task drains.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<SubmissionId>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Retries(sender), receiver)
    }

    /// Reconciles `id` again soon, and until it is recorded.
    pub fn push(&self, id: SubmissionId) {
        // Fails only once the run task is gone, when the service is stopping anyway.
        let _ = self.0.send(id);
    }
}

/// Brings the stored submission in line with its Job and pods as the API server has them now.
pub async fn reconcile(
    cluster: &Cluster,
    store: &Store,
    id: SubmissionId,
) -> Result<(), ReconcileError> {
    let Some(submission) = store.get(id).await? else {
        return Ok(());
    };
    if submission.progress.state.is_final()
        || submission.progress.state == State::Queued
        || submission.namespace != cluster.namespace()
    {
        // Final states never change; a queued one is the dispatcher's; another namespace's is
        // for a service that follows that namespace.
        return Ok(());
    }
    for pod in cluster.pods_of(id).await? {
        store
            .update(id, |submission| progress_from_pod(submission, &pod))
            .await?;
    }
    match cluster.get_job(&submission.job_name).await {
        Ok(Some(job)) => {
            if super::watch::has_ended(&job) {
                logs::archive(cluster, store, id, false).await;
            }
            store
                .update(id, |submission| progress_from_job(submission, &job))
                .await?;
        }
        Ok(None) => {
            store
                .update(id, |submission| {
                    progress_after_job_deleted(submission, None)
                })
                .await?;
        }
        Err(error) => return Err(error.into()),
    }
    Ok(())
}

/// Drains the queue until the service stops: each submission is reconciled once its delay is
/// over, and queued again with a longer one while it fails.
pub async fn run(
    cluster: Cluster,
    store: Store,
    mut incoming: mpsc::UnboundedReceiver<SubmissionId>,
) {
    let mut due: DelayQueue<SubmissionId> = DelayQueue::new();
    let mut queued: HashMap<SubmissionId, (delay_queue::Key, u32)> = HashMap::new();
    loop {
        tokio::select! {
            id = incoming.recv() => {
                let Some(id) = id else { return };
                queued
                    .entry(id)
                    .or_insert_with(|| (due.insert(id, backoff(0)), 0));
            }
            Some(expired) = due.next(), if !due.is_empty() => {
                let id = expired.into_inner();
                let attempt = queued.remove(&id).map_or(0, |(_, attempt)| attempt);
                match reconcile(&cluster, &store, id).await {
                    Ok(()) => tracing::info!(submission_id = %id, attempt, "reconciled after a failed update"),
                    Err(error) => {
                        let delay = backoff(attempt + 1);
                        tracing::warn!(submission_id = %id, %error, ?delay, "reconcile failed; retrying");
                        queued.insert(id, (due.insert(id, delay), attempt + 1));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_half_a_second_to_thirty() {
        let delays: Vec<u64> = (0..8).map(|n| backoff(n).as_millis() as u64).collect();

        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
