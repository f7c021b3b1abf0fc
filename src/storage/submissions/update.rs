//! Moving a submission's progress forward with optimistic locking (its `version`), and with
//! it what waited for it, in one transaction.

use jiff::Timestamp;

use super::rerun::{RerunRow, write_rerun};
use crate::domain::{Progress, State, Submission, SubmissionId, SubmissionSpec};
use crate::storage::error::{Result, StorageError};
use crate::storage::events::StateChange;
use crate::storage::progress_write::{ProgressWrite, Written};
use crate::storage::store::Store;

/// The result of asking for an update: whether the row changed, and the row as it is now.
#[derive(Debug, Clone)]
pub struct Updated {
    pub changed: bool,
    pub submission: Submission,
}

pub use crate::storage::progress_write::Read;

/// Retries of an optimistic update before giving up; contention on one row is brief.
const UPDATE_ATTEMPTS: usize = 20;

/// What becomes of a submission: its next progress, or a new run of it.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Progress(Progress),
    /// Its Job ended for a kill for memory: it runs again under `spec` (more memory), queued
    /// for a new Job, `message` saying why.
    RerunForMemory {
        spec: Box<SubmissionSpec>,
        message: String,
    },
}

impl Store {
    /// Reads a submission, lets `decide` compute its next progress, and writes it if it is
    /// still the version that was read; retries when another writer got there first.
    ///
    /// `decide` returns `None` to leave the row alone. Returns `None` if there is no such row.
    pub async fn update(
        &self,
        id: SubmissionId,
        mut decide: impl FnMut(&Submission) -> Option<Progress>,
    ) -> Result<Option<Updated>> {
        self.advance(id, |submission| decide(submission).map(Next::Progress))
            .await
    }

    /// As [`Store::update`], where `decide` may also run the submission again.
    pub async fn advance(
        &self,
        id: SubmissionId,
        decide: impl FnMut(&Submission) -> Option<Next>,
    ) -> Result<Option<Updated>> {
        self.advance_from(id, None, decide).await
    }

    /// As [`Store::advance`], deciding first on a row the caller has just read
    /// ([`Store::read`]) instead of reading it again: a reconcile reads its submission before it
    /// looks at the cluster. If the row changed since, the write finds another version and the
    /// row is read again, as after any other writer.
    pub async fn advance_read(
        &self,
        read: Read,
        decide: impl FnMut(&Submission) -> Option<Next>,
    ) -> Result<Option<Updated>> {
        let id = read.submission.id;
        self.advance_from(id, Some(read), decide).await
    }

    async fn advance_from(
        &self,
        id: SubmissionId,
        mut read: Option<Read>,
        mut decide: impl FnMut(&Submission) -> Option<Next>,
    ) -> Result<Option<Updated>> {
        for _ in 0..UPDATE_ATTEMPTS {
            let read = match read.take() {
                Some(read) => read,
                None => match self.read(id).await? {
                    Some(read) => read,
                    None => return Ok(None),
                },
            };
            let Read {
                submission,
                version,
            } = read;
            let progress = match decide(&submission) {
                Some(Next::Progress(progress)) => Some(progress),
                Some(Next::RerunForMemory { spec, message }) => {
                    match self
                        .rerun_for_memory(&submission, version, *spec, message)
                        .await?
                    {
                        Some(rerun) => {
                            return Ok(Some(Updated {
                                changed: true,
                                submission: rerun,
                            }));
                        }
                        None => continue,
                    }
                }
                None => None,
            };
            let Some(progress) = progress else {
                return Ok(Some(Updated {
                    changed: false,
                    submission,
                }));
            };
            if progress == submission.progress {
                return Ok(Some(Updated {
                    changed: false,
                    submission,
                }));
            }
            let write = ProgressWrite {
                submission,
                version,
                progress,
            };
            let outcome = match &self.progress_commits {
                Some(queue) => queue.send(write).await?,
                None => self.write_one(write).await?,
            };
            if outcome.written {
                return Ok(Some(Updated {
                    changed: true,
                    submission: outcome.submission,
                }));
            }
        }
        Err(StorageError::Contended(id))
    }

    /// [`Store::write_progress`] of a single write, in a transaction of its own.
    pub(in crate::storage) async fn write_one(&self, write: ProgressWrite) -> Result<Written> {
        let written = self.write_progress(&[&write]).await?;
        Ok(write.outcome(written.first().copied().unwrap_or(false)))
    }

    /// Writes each of `writes` whose row is still at the version it was read at, in one
    /// transaction; says for each whether it was written. What waited for a submission that
    /// ends moves on in the same transaction: a dependency's end and its dependents' next step
    /// are recorded together or not at all.
    pub(in crate::storage) async fn write_progress(
        &self,
        writes: &[&ProgressWrite],
    ) -> Result<Vec<bool>> {
        let turn = self.turn_to_write().await;
        let mut tx = self.begin_write().await?;
        let mut written = Vec::with_capacity(writes.len());
        let mut changes = Vec::new();
        let mut wake = false;
        let now = Timestamp::now().to_string();
        for write in writes {
            let (submission, progress) = (&write.submission, &write.progress);
            let id = submission.id;
            let result = sqlx::query(
                "UPDATE submissions SET state = $1, message = $2, active = $3, succeeded = $4, \
                 failed = $5, started_at = $6, finished_at = $7, updated_at = $8, \
                 admitted = $9, evictions = $10, version = version + 1 \
                 WHERE id = $11 AND version = $12",
            )
            .bind(progress.state.as_str())
            .bind(progress.message.clone())
            .bind(progress.active)
            .bind(progress.succeeded)
            .bind(progress.failed)
            .bind(progress.started_at.map(|at| at.to_string()))
            .bind(progress.finished_at.map(|at| at.to_string()))
            .bind(now.clone())
            .bind(i64::from(progress.admitted))
            .bind(progress.evictions)
            .bind(id.to_string())
            .bind(write.version)
            .execute(&mut *tx)
            .await?;
            if result.rows_affected() != 1 {
                // Changed since it was read: its caller decides again.
                written.push(false);
                continue;
            }
            written.push(true);
            let ends = progress.state.is_final();
            let dependents = if ends {
                self.dependency_ended(&mut tx, id, progress.state).await?
            } else {
                Vec::new()
            };
            if progress.state != submission.progress.state {
                changes.push(StateChange {
                    id,
                    owner: submission.owner.clone(),
                    previous: Some(submission.progress.state),
                    state: progress.state,
                    message: progress.message.clone(),
                    notifies: submission.spec.notify.is_some(),
                });
            }
            let queued = dependents
                .iter()
                .any(|change| change.state == State::Queued);
            changes.extend(dependents);
            // A slot under a limit is free, or dependents are queued, or Kueue admitted a Job
            // (one fewer waits suspended).
            wake |= ends || queued || (progress.admitted && !submission.progress.admitted);
        }
        let recorded = self.record_events(&mut tx, &changes).await?;
        tx.commit().await?;
        drop(turn);
        self.events_committed(recorded);
        if wake {
            self.wake_dispatcher();
        }
        Ok(written)
    }

    /// Queues `submission` (read at `version`) for a new run under `spec`; `None` if another
    /// writer changed it first.
    async fn rerun_for_memory(
        &self,
        submission: &Submission,
        version: i64,
        spec: SubmissionSpec,
        message: String,
    ) -> Result<Option<Submission>> {
        let row = RerunRow::new(submission, spec, State::Queued, Some(message), 0)
            .for_memory(submission.oom_reruns);
        let turn = self.turn_to_write().await;
        let mut tx = self.begin_write().await?;
        if !write_rerun(&mut tx, &row, submission.id, version).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        let recorded = self
            .record_events(&mut tx, &[row.change(submission)])
            .await?;
        tx.commit().await?;
        drop(turn);
        self.events_committed(recorded);
        self.wake_dispatcher();
        Ok(Some(row.into_submission(submission)))
    }
}
