//! The dispatcher: creates the Jobs of stored submissions.
//!
//! A submission is committed to the database before anything touches the cluster; this task then
//! creates its Job, a few at a time. The Job name comes from the submission id, so a create the
//! API server already saw answers 409 and counts as done: a retry never runs a payload twice.
//! When the API server cannot be reached, submissions stay `queued` and are created once it is
//! back; when it refuses a Job as invalid, the submission fails with the API server's message.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use tokio::sync::Notify;

use super::{Cluster, manifest};
use crate::domain::{Progress, State, Submission};
use crate::storage::Store;

/// Jobs created at the same time; the API server's own rate limits make more pointless.
const CONCURRENCY: usize = 8;
/// Submissions taken from the database per round.
const BATCH: u32 = 256;
/// How long to wait before retrying when the cluster is unavailable, at most.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often to look for queued submissions even without a wake-up (e.g. after a restart).
const IDLE_POLL: Duration = Duration::from_secs(5);

/// Runs until the task is aborted. `wake` is notified after new submissions are stored.
pub async fn run(cluster: Cluster, store: Store, wake: Arc<Notify>) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let outcome = dispatch_queued(&cluster, &store).await;
        let pause = match outcome {
            Round::MoreWaiting => continue,
            Round::Idle => {
                backoff = Duration::from_millis(250);
                IDLE_POLL
            }
            Round::ClusterUnavailable => {
                backoff = (backoff * 2).min(MAX_BACKOFF);
                backoff
            }
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

enum Round {
    /// A full batch was handled; there may be more.
    MoreWaiting,
    /// Everything queued was handled.
    Idle,
    /// The cluster could not be reached; try again later.
    ClusterUnavailable,
}

async fn dispatch_queued(cluster: &Cluster, store: &Store) -> Round {
    if !cluster.is_configured() {
        return Round::ClusterUnavailable;
    }
    let queued = match store.queued(BATCH).await {
        Ok(queued) => queued,
        Err(error) => {
            tracing::error!(%error, "could not read queued submissions");
            return Round::ClusterUnavailable;
        }
    };
    let full = queued.len() == BATCH as usize;
    let results: Vec<bool> = futures::stream::iter(queued)
        .map(|submission| dispatch_one(cluster, store, submission))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    if results.iter().any(|reached| !reached) {
        Round::ClusterUnavailable
    } else if full {
        Round::MoreWaiting
    } else {
        Round::Idle
    }
}

/// Creates one submission's Job and records the outcome. Returns false if the cluster could
/// not be reached (the submission stays queued).
#[tracing::instrument(skip_all, fields(submission_id = %submission.id))]
async fn dispatch_one(cluster: &Cluster, store: &Store, submission: Submission) -> bool {
    let outcome = match cluster.create_job(&manifest::job(&submission)).await {
        Ok(_) => Outcome::Created,
        Err(error) if error.is_invalid() => {
            tracing::warn!(%error, "the API server refused a Job");
            Outcome::Refused(format!("the API server refused the Job: {error}"))
        }
        Err(error) => {
            tracing::warn!(%error, "could not create a Job; will retry");
            Outcome::Unreached(format!("waiting to create the Job: {error}"))
        }
    };
    match store
        .update(submission.id, |stored| outcome.progress(stored))
        .await
    {
        // Cancelled while we were creating its Job: the Job must not stay.
        Ok(Some(updated))
            if outcome == Outcome::Created
                && updated.submission.progress.state == State::Cancelled =>
        {
            if let Err(error) = cluster.delete_job(&submission.job_name).await {
                tracing::warn!(%error, "could not delete the Job of a cancelled submission");
            }
        }
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "could not record a Job's creation"),
    }
    !matches!(outcome, Outcome::Unreached(_))
}

/// What became of one create.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Created now, or found created before (409).
    Created,
    /// Refused as invalid: retrying cannot help.
    Refused(String),
    /// The API server could not be reached or failed; the submission stays queued.
    Unreached(String),
}

impl Outcome {
    /// The submission's next progress; only a still-queued submission is touched, so a cancel
    /// that raced with the create is never overwritten.
    fn progress(&self, submission: &Submission) -> Option<Progress> {
        if submission.progress.state != State::Queued {
            return None;
        }
        let current = submission.progress.clone();
        Some(match self {
            Outcome::Created => Progress {
                state: State::Pending,
                message: None,
                ..current
            },
            Outcome::Refused(message) => Progress {
                state: State::Failed,
                message: Some(message.clone()),
                finished_at: Some(Timestamp::now()),
                ..current
            },
            Outcome::Unreached(message) => Progress {
                message: Some(message.clone()),
                ..current
            },
        })
    }
}
