//! One reconcile: brings a stored submission in line with its Job and pods as the caches have
//! them now. Level-triggered and idempotent: it reads the row, the Job and the pods afresh, so
//! a missed, repeated or reordered event changes nothing, and running it again after an error
//! is always safe. States only move forward (see [`crate::domain::State::can_become`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use parking_lot::Mutex;

use super::archiver::Archiver;
use super::cached_pod::Pod;
use super::cancels::Cancels;
use super::client::Cluster;
use super::error::ClusterError;
use super::kueue_progress;
use super::logs;
use super::oom;
use super::progress::{self, Deadline, JobSeen};
use crate::backoff::Backoff;
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

/// How a reconcile that did not get through is tried again: soon at first, then doubling up
/// to 30 seconds.
pub const RETRY: Backoff = Backoff::doubling(Duration::from_millis(500), Duration::from_secs(30));

/// What came of a reconcile that got through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Whether the row changed.
    pub changed: bool,
    /// When to look again although nothing may happen meanwhile (a stuck pod's time is up).
    pub again_after: Option<Duration>,
}

/// What a reconcile needs, and what the watches saw that the caches no longer hold.
pub struct Reconciler {
    pub cluster: Cluster,
    pub store: Store,
    pub archiver: Archiver,
    pub cancels: Cancels,
    /// How long a pod may be stuck before its start (an image that cannot be pulled, an
    /// unschedulable pod) before its submission fails and its Job is deleted.
    pub pending_timeout: Duration,
    /// The last state of Jobs deleted since their submission was last reconciled: a Job
    /// deleted after it ended keeps its outcome.
    deleted_jobs: Mutex<HashMap<SubmissionId, Vec<Job>>>,
    /// Pods that vanished before they ended, by submission.
    lost_pods: Mutex<HashMap<SubmissionId, BTreeSet<String>>>,
    /// Pods deleted after they ended, by submission, until their submission ends.
    ended_pods: Mutex<HashMap<SubmissionId, Vec<Arc<Pod>>>>,
}

impl Reconciler {
    pub fn new(
        cluster: Cluster,
        store: Store,
        archiver: Archiver,
        cancels: Cancels,
        pending_timeout: Duration,
    ) -> Self {
        Reconciler {
            cluster,
            store,
            archiver,
            cancels,
            pending_timeout,
            deleted_jobs: Mutex::default(),
            lost_pods: Mutex::default(),
            ended_pods: Mutex::default(),
        }
    }

    /// Keeps the last state of a deleted Job for the next reconcile of its submission.
    pub fn job_deleted(&self, id: SubmissionId, job: Job) {
        let mut deleted = self.deleted_jobs.lock();
        let jobs = deleted.entry(id).or_default();
        // One per name: each of a submission's runs has its own Job.
        jobs.retain(|kept| kept.metadata.name != job.metadata.name);
        jobs.push(job);
    }

    /// Keeps a pod deleted after it ended for the next reconcile of its submission, which
    /// records how it ended even if it never saw it in the cache.
    pub fn pod_deleted_after_end(&self, id: SubmissionId, pod: Arc<Pod>) {
        self.ended_pods.lock().entry(id).or_default().push(pod);
    }

    /// Notes a pod that was deleted before it ended (its node lost, deleted by hand).
    pub fn pod_lost(&self, id: SubmissionId, name: String) {
        self.lost_pods.lock().entry(id).or_default().insert(name);
    }

    /// Reconciles one submission: records what its Job and pods say, fails it if a pod of it
    /// has been stuck before its start for longer than the pending timeout.
    pub async fn reconcile(&self, id: SubmissionId) -> Result<Reconciled, ReconcileError> {
        let Some(read) = self.store.read(id).await? else {
            // A Job of ours with no row (another database's service shares the namespace).
            self.forget(id);
            return Ok(Reconciled::default());
        };
        // The row is written (below) as read here, unless it changed meanwhile: one read.
        let submission = &read.submission;
        if submission.namespace != self.cluster.namespace()
            || submission
                .cluster
                .as_deref()
                .is_some_and(|cluster| cluster != self.cluster.name())
        {
            // Another namespace's submission is for a service that follows that namespace;
            // another cluster's, for that cluster's controller.
            self.forget(id);
            return Ok(Reconciled::default());
        }
        let caches = self.cluster.caches();
        let job = caches.job(&submission.job_name);
        match submission.progress.state {
            State::Cancelled => {
                // The background delete after the cancel did not get through (or the service
                // stopped first): the Job must still go.
                if job.is_some_and(|job| job.metadata.deletion_timestamp.is_none()) {
                    self.cancels.delete_jobs([submission.job()]);
                }
                self.forget(id);
                return Ok(Reconciled::default());
            }
            state if state.is_final() => {
                self.forget(id);
                return Ok(Reconciled::default());
            }
            // Not created yet: the dispatcher's (or waiting for others to succeed).
            State::Waiting | State::Queued if job.is_none() => {
                return Ok(Reconciled::default());
            }
            _ => {}
        }
        if let Some(job) = &job
            && !submission.gated
            && super::manifest::is_gated(job)
            && job.metadata.deletion_timestamp.is_none()
        {
            // Its limit let it through, but the gate was not lifted (the API server did not
            // answer, or the service stopped in between): lift it now.
            self.cluster.lift_gate(job).await?;
        }

        // Earlier runs' pods (a rerun's Job is another) are history: their attempts are kept.
        let of_this_run = |pod: &Arc<Pod>| logs::of_job(pod, &submission.job_name);
        let pods: Vec<Arc<Pod>> = caches.pods_of(id).into_iter().filter(of_this_run).collect();
        // Pods that ended and were deleted before a reconcile saw them (a suspended Job's,
        // deleted by the job controller at once) are still recorded.
        let deleted_after_end: Vec<Arc<Pod>> = self
            .ended_pods
            .lock()
            .get(&id)
            .into_iter()
            .flatten()
            .filter(|pod| of_this_run(pod))
            .cloned()
            .collect();
        let mut ended: Vec<Arc<Pod>> = pods
            .iter()
            .filter(|pod| logs::has_started(pod) && logs::has_ended(pod))
            .cloned()
            .collect();
        for pod in &deleted_after_end {
            if !ended
                .iter()
                .any(|seen| seen.metadata.name == pod.metadata.name)
            {
                ended.push(Arc::clone(pod));
            }
        }
        let archived = if ended.is_empty() {
            Vec::new()
        } else {
            self.store.archived_pods(id).await?
        };
        let mut archiving = false;
        let suspended = job.as_ref().is_some_and(|job| progress::is_suspended(job));
        for pod in ended {
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            if !archived.iter().any(|done| done == name) {
                self.archiver.archive_pod(id, pod, suspended);
                archiving = true;
            }
        }
        // A pod's name starts with its Job's, and the current Job is the newest.
        let own = logs::run_prefix(&submission.job_name);
        let lost: Vec<String> = self
            .lost_pods
            .lock()
            .get(&id)
            .map(|names| {
                names
                    .iter()
                    .filter(|name| name.starts_with(&own))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for name in &lost {
            self.note_lost_pod(id, name).await?;
        }

        let fetched = match &job {
            Some(_) => None,
            None => Some(self.job_not_cached(id, &submission.job_name).await?),
        };
        let seen = match (&job, &fetched) {
            (Some(job), _) => JobSeen::Present(job),
            (None, Some(Uncached::Exists(job))) => JobSeen::Present(job),
            (None, Some(Uncached::Deleted(last))) => JobSeen::Deleted(last.as_ref()),
            (None, None) => JobSeen::Deleted(None),
        };
        let job_ended = match &seen {
            JobSeen::Present(job) => progress::has_ended(job),
            JobSeen::Deleted(_) => true,
        };
        // The Job's watch can tell of its end before the pods' watch tells of theirs: a pod
        // that started and is neither ended nor being deleted is waited for, so its log (and a
        // TES task's exit codes) are kept before the end is recorded.
        if matches!(seen, JobSeen::Present(_)) && job_ended {
            archiving |= pods.iter().any(|pod| {
                logs::has_started(pod)
                    && !logs::has_ended(pod)
                    && pod.metadata.deletion_timestamp.is_none()
            });
        }
        let deadline = if job_ended {
            Deadline::None
        } else {
            progress::pending_deadline(&pods, jiff::Timestamp::now(), self.pending_timeout)
        };
        let workload = caches.workload_of(&submission.job_name);
        let oom_killed = pods
            .iter()
            .chain(&deleted_after_end)
            .any(|pod| oom::killed_for_memory(pod));
        // What is still needed of the read once the write has taken it.
        let (run, was) = (submission.job(), submission.progress.state);
        let updated = self
            .store
            .advance_read(read, |current| {
                // Rerun since it was read: what was seen is of the earlier run's Job.
                if current.job_name != run.job_name {
                    return None;
                }
                let next = match &deadline {
                    Deadline::Passed(stuck) => {
                        progress::failed_stuck(current, stuck, self.pending_timeout)
                    }
                    _ => progress::next_progress(current, &seen, &pods, &lost, archiving).map(
                        |next| match &seen {
                            JobSeen::Present(job) => {
                                kueue_progress::with_kueue(current, next, job, workload.as_deref())
                            }
                            JobSeen::Deleted(_) => next,
                        },
                    ),
                }?;
                Some(oom::after_oom(current, next, oom_killed))
            })
            .await?;
        let changed = updated.as_ref().is_some_and(|updated| updated.changed);
        if let Some(updated) = updated {
            let state = updated.submission.progress.state;
            if changed {
                tracing::info!(submission_id = %id, %state, "submission progressed");
            }
            if updated.submission.job_name != run.job_name {
                tracing::info!(submission_id = %id, job = %updated.submission.job_name, "rerun for memory");
                self.cluster
                    .metrics()
                    .reruns
                    .get_or_create(&super::metrics::RerunCause { cause: "memory" })
                    .inc();
            }
            if changed && state == State::Running && was != State::Running {
                self.note_running(&seen);
            }
            if let (Deadline::Passed(stuck), true, State::Failed) = (&deadline, changed, state) {
                tracing::warn!(submission_id = %id, pod = %stuck.pod, why = %stuck.why, "a pod could not start in time; deleting its Job");
                self.cancels.delete_jobs([run]);
            }
            if state.is_final() {
                self.forget(id);
            }
        }
        let again_after = match deadline {
            Deadline::At(due) => Some(
                Duration::try_from(due.duration_since(jiff::Timestamp::now()))
                    .unwrap_or(Duration::ZERO),
            ),
            Deadline::None | Deadline::Passed(_) => None,
        };
        Ok(Reconciled {
            changed,
            again_after,
        })
    }

    /// Counts how long the Job of a submission just recorded running took to get there.
    fn note_running(&self, seen: &JobSeen<'_>) {
        let JobSeen::Present(job) = seen else { return };
        if let Some(created) = &job.metadata.creation_timestamp {
            let waited = jiff::Timestamp::now().duration_since(created.0);
            self.cluster
                .metrics()
                .job_created_to_running
                .observe(waited.as_secs_f64().max(0.0));
        }
    }

    /// A Job the cache does not hold: deleted (with its last state, if its delete event was
    /// seen), or, when no delete was seen (it may just have been created, or deleted while
    /// nobody watched), whatever the API server says of it.
    async fn job_not_cached(
        &self,
        id: SubmissionId,
        name: &str,
    ) -> Result<Uncached, ReconcileError> {
        // An earlier run's Job deleted (by its time to live) says nothing of this run's.
        let deleted = self.deleted_jobs.lock().get(&id).and_then(|jobs| {
            jobs.iter()
                .find(|job| job.metadata.name.as_deref() == Some(name))
                .cloned()
        });
        if let Some(last) = deleted {
            return Ok(Uncached::Deleted(Some(last)));
        }
        Ok(match self.cluster.get_job(name).await? {
            Some(job) => Uncached::Exists(job),
            None => Uncached::Deleted(None),
        })
    }

    /// Says in the archive why a lost pod's log is missing, unless some of it was kept.
    async fn note_lost_pod(&self, id: SubmissionId, name: &str) -> Result<(), StorageError> {
        let archived = self.store.archived_pods(id).await?;
        if archived.iter().any(|done| done == name) {
            return Ok(());
        }
        let log = crate::storage::ArchivedLog {
            pod_name: name.to_owned(),
            content: logs::not_archived_note(progress::POD_LOST).into_bytes(),
            truncated_bytes: 0,
        };
        self.store
            .archive_log(id, jiff::Timestamp::now(), &log)
            .await
    }

    fn forget(&self, id: SubmissionId) {
        self.deleted_jobs.lock().remove(&id);
        self.lost_pods.lock().remove(&id);
        self.ended_pods.lock().remove(&id);
    }
}

/// A Job the cache does not hold.
enum Uncached {
    Exists(Job),
    Deleted(Option<Job>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_half_a_second_to_thirty() {
        let delays: Vec<u64> = (1..=8).map(|n| RETRY.after(n).as_millis() as u64).collect();

        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(RETRY.after(u32::MAX), Duration::from_secs(30));
    }
}
