//! What came of each create the dispatcher sent, and how it is recorded: a Job created moves
//! its submission on (many in one transaction), one refused for now waits its own backoff, one
//! refused as invalid or too often fails with the API server's message, and an API server that
//! could not be reached leaves the submission queued, saying why.

use std::time::Duration;

use jiff::Timestamp;

use super::client::{Cluster, Created};
use super::error::ClusterError;
use crate::backoff::Backoff;
use crate::domain::{Progress, State, Submission};
use crate::storage::Store;

/// How long to wait before retrying, at most.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Refused creates of one submission before it fails: after 1, 2, 4, 8 and 16 s of backoff,
/// about half a minute after the first.
pub(super) const MAX_ATTEMPTS: i64 = 6;
const REFUSED: Backoff = Backoff::doubling(Duration::from_secs(1), MAX_BACKOFF);

/// How long a submission waits after its `attempts`-th refused create.
pub(super) fn retry_delay(attempts: i64) -> Duration {
    REFUSED.after(u32::try_from(attempts.max(0)).unwrap_or(u32::MAX))
}

/// Records the outcomes of creates answered together: the Jobs created, in one transaction
/// ([`Store::record_created`]); the rest, and a created one whose submission changed meanwhile
/// (which may mean its Job must go), one at a time. Returns false if the cluster or the
/// database could not be reached.
pub(super) async fn record_all(store: &Store, answered: Vec<(Cluster, Attempt)>) -> bool {
    let (created, others): (Vec<_>, Vec<_>) = answered.into_iter().partition(|(_, attempt)| {
        matches!(attempt, Attempt::Sent(sent) if Outcome::of(&sent.created, sent.attempts) == Outcome::Created)
    });
    let submissions: Vec<&Submission> = created
        .iter()
        .filter_map(|(_, attempt)| match attempt {
            Attempt::Sent(sent) => Some(&sent.submission),
            _ => None,
        })
        .collect();
    let mut reached = true;
    let marked = match store.record_created(&submissions).await {
        Ok(marked) => Some(marked),
        Err(error) => {
            // Recorded one by one, each would wait for the database in turn and hold up the
            // creates. The controller records them from its watch of their Jobs once the
            // database answers (and deletes a cancelled one's), and their claims lapse.
            tracing::error!(%error, jobs = submissions.len(), "could not record the Jobs created; the controller will");
            reached = false;
            None
        }
    };
    drop(submissions);
    for (cluster, attempt) in created {
        if let Attempt::Sent(sent) = &attempt
            && marked
                .as_ref()
                .is_some_and(|marked| !marked.contains(&sent.submission.id))
        {
            reached &= record(&cluster, store, attempt).await;
        }
    }
    for (cluster, attempt) in others {
        reached &= record(&cluster, store, attempt).await;
    }
    reached
}

/// A create, before it is recorded.
pub(super) enum Attempt {
    /// The submission is no longer queued (cancelled since it was claimed): no Job.
    Skipped,
    /// The submission could not be read again before its create.
    Unread,
    /// The API server answered (or could not be reached).
    Sent(Box<Sent>),
}

/// A create that was sent, and its answer.
pub(super) struct Sent {
    pub(super) submission: Submission,
    pub(super) attempts: i64,
    pub(super) created: Result<Created, ClusterError>,
}

/// Records what came of a create. Returns false if the cluster or the database could not be
/// reached (the submission stays queued).
async fn record(cluster: &Cluster, store: &Store, attempt: Attempt) -> bool {
    match attempt {
        Attempt::Skipped => true,
        Attempt::Unread => false,
        Attempt::Sent(sent) => record_sent(cluster, store, *sent).await,
    }
}

#[tracing::instrument(skip_all, fields(submission_id = %sent.submission.id))]
async fn record_sent(cluster: &Cluster, store: &Store, sent: Sent) -> bool {
    let Sent {
        submission,
        attempts,
        created,
    } = sent;
    let outcome = Outcome::of(&created, attempts);
    if let Err(error) = &created {
        match outcome {
            Outcome::Deferred => {
                defer(store, &submission, attempts + 1, error).await;
                return true;
            }
            Outcome::Refused(_) => tracing::warn!(%error, attempts, "the API server refused a Job"),
            _ => {
                tracing::warn!(%error, "could not create a Job; will retry");
                if let Err(error) = store
                    .release_claim(submission.id, &submission.job_name)
                    .await
                {
                    tracing::warn!(%error, "could not give up a claim; it lapses by itself");
                }
            }
        }
    }
    match store
        .update(submission.id, |stored| {
            outcome.progress(stored, &submission.job_name)
        })
        .await
    {
        // Cancelled (or cancelled and rerun) while this call created its Job: the Job must not
        // stay. (Any other state than `queued` is fine: the controller may have recorded the
        // new Job first.)
        Ok(Some(updated))
            if matches!(created, Ok(Created::Now))
                && (updated.submission.progress.state == State::Cancelled
                    || updated.submission.job_name != submission.job_name) =>
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

/// Records a refused create that is to be tried again: the submission stays queued, says why,
/// and is not due again until its backoff is over.
async fn defer(store: &Store, submission: &Submission, attempts: i64, error: &ClusterError) {
    tracing::warn!(%error, attempts, "the API server refused a create");
    let wait = retry_delay(attempts);
    let message = format!(
        "the API server refused the Job (attempt {attempts} of {MAX_ATTEMPTS}, next in {} s): {error}",
        wait.as_secs()
    );
    let next = Timestamp::now()
        .checked_add(wait)
        .unwrap_or_else(|_| Timestamp::now());
    if let Err(error) = store
        .defer_dispatch(
            submission.id,
            &submission.job_name,
            attempts,
            next,
            &message,
        )
        .await
    {
        tracing::error!(%error, "could not record a refused create");
    }
}

/// What became of one create.
#[derive(Debug, PartialEq)]
pub(super) enum Outcome {
    /// Created now, or found created before (409).
    Created,
    /// Refused as invalid (retrying cannot help), or refused for the last time.
    Refused(String),
    /// Refused for now (a quota, a webhook): tried again after a backoff.
    Deferred,
    /// The API server could not be reached or failed; the submission stays queued, saying why
    /// in short (the error itself is logged: it names hosts and the client library's errors).
    Unreached(String),
}

impl Outcome {
    /// What the answer to a create calls for, after `attempts` refused ones before it.
    fn of(created: &Result<Created, ClusterError>, attempts: i64) -> Outcome {
        match created {
            Ok(_) => Outcome::Created,
            Err(error) if error.is_invalid() => {
                Outcome::Refused(format!("the API server refused the Job: {error}"))
            }
            Err(error) if error.is_refused() && attempts + 1 < MAX_ATTEMPTS => Outcome::Deferred,
            Err(error) if error.is_refused() => Outcome::Refused(format!(
                "the API server refused the Job {} times: {error}",
                attempts + 1
            )),
            Err(error) => Outcome::Unreached(format!(
                "waiting to create the Job: {}",
                error.short_cause()
            )),
        }
    }

    /// The submission's next progress, if its run's Job is `job_name`; only a still-queued
    /// submission is touched, so a cancel (or a cancel and a rerun) that raced with the create
    /// is never overwritten.
    fn progress(&self, submission: &Submission, job_name: &str) -> Option<Progress> {
        if submission.progress.state != State::Queued || submission.job_name != job_name {
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
            Outcome::Deferred => return None,
        })
    }
}
