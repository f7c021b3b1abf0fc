//! Storing new submissions, all or none: their rows, labels and dependencies in multi-row
//! statements, and the events of their first states, in one transaction. One submission is
//! stored in the next group commit (`commits`), with those of other requests.

use jiff::Timestamp;
use sqlx::{Any, QueryBuilder};

use crate::domain::Submission;
use crate::storage::error::{Result, StorageError};
use crate::storage::events::{Recorded, StateChange};
use crate::storage::store::Store;

/// Rows per multi-row INSERT: 19 values a row stays well under SQLite's limit of 32766 bound
/// parameters (and PostgreSQL's 65535).
const INSERT_CHUNK: usize = 500;

/// Label rows per multi-row INSERT (3 values a row).
const LABEL_CHUNK: usize = 2000;

impl Store {
    /// Stores new submissions, all or none, in one transaction, and returns them as stored:
    /// `queued`, or `waiting` for their dependencies (`failed` if one already failed). One
    /// submission is stored in the next group commit, with those of other requests arriving
    /// at the same time.
    pub async fn insert(&self, mut submissions: Vec<Submission>) -> Result<Vec<Submission>> {
        match &self.commits {
            Some(commits) if submissions.len() == 1 => commits.send(submissions).await,
            _ => {
                self.insert_unless(&mut submissions, || false).await?;
                Ok(submissions)
            }
        }
    }

    /// Stores `submissions` in one transaction, rolled back if `abandoned()` says so just
    /// before the commit (a group commit leaves out requests whose client went away).
    pub(in crate::storage) async fn insert_unless(
        &self,
        submissions: &mut [Submission],
        abandoned: impl Fn() -> bool,
    ) -> Result<()> {
        let _turn = self.turn_to_write().await;
        let mut tx = self.begin_write().await?;
        let recorded = self.insert_rows(&mut tx, submissions).await?;
        if abandoned() {
            tx.rollback().await?;
            return Err(StorageError::Abandoned);
        }
        tx.commit().await?;
        self.wal.wrote(submissions.len());
        self.dispatchable(submissions);
        self.events_committed(recorded);
        Ok(())
    }

    /// Inserts submissions, their labels and their dependencies inside `tx`, in multi-row
    /// statements; each starts `queued`, or `waiting` on its dependencies, or `failed` if one
    /// already failed or was cancelled (see [`campaign::starts`]).
    pub(in crate::storage) async fn insert_rows(
        &self,
        tx: &mut sqlx::Transaction<'_, Any>,
        submissions: &mut [Submission],
    ) -> Result<Recorded> {
        let waiting_on = self.starting_states(tx, submissions).await?;
        let now = Timestamp::now();
        for (chunk, waiting_on) in submissions
            .chunks(INSERT_CHUNK)
            .zip(waiting_on.chunks(INSERT_CHUNK))
        {
            let rows = chunk
                .iter()
                .zip(waiting_on)
                .map(|(submission, waiting_on)| {
                    let spec = serde_json::to_string(&submission.spec).map_err(|error| {
                        StorageError::Corrupt {
                            id: submission.id.to_string(),
                            reason: error.to_string(),
                        }
                    })?;
                    Ok((submission, spec, *waiting_on))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut builder = QueryBuilder::new(
                "INSERT INTO submissions (id, name, spec, namespace, job_name, state, message, \
                 finished_at, created_at, updated_at, owner, submitted_by, waiting_on, \
                 user_limit, group_id, group_limit, notify_url, notify, notify_token, \
                 cascaded, pin) ",
            );
            builder.push_values(rows, |mut row, (submission, spec, waiting_on)| {
                let created_at = submission.created_at.to_string();
                let progress = &submission.progress;
                let notify = submission.spec.notify.as_ref();
                let (group_id, group_limit) = match &submission.limits.group {
                    Some((id, limit)) => (Some(id.clone()), Some(*limit)),
                    None => (None, None),
                };
                row.push_bind(submission.id.to_string())
                    .push_bind(submission.spec.name.clone())
                    .push_bind(spec)
                    .push_bind(submission.namespace.clone())
                    .push_bind(submission.job_name.clone())
                    .push_bind(progress.state.as_str())
                    .push_bind(progress.message.clone())
                    .push_bind(progress.finished_at.map(|at| at.to_string()))
                    .push_bind(created_at)
                    .push_bind(now.to_string())
                    .push_bind(submission.owner.clone())
                    .push_bind(submission.submitted_by.clone())
                    .push_bind(waiting_on)
                    .push_bind(submission.limits.user)
                    .push_bind(group_id)
                    .push_bind(group_limit)
                    .push_bind(notify.map(|notify| notify.url.clone()))
                    .push_bind(notify.map(|notify| notify.scope.as_str()))
                    .push_bind(submission.notify_token.clone())
                    // Only a dependency that failed or was cancelled already ends a new one.
                    .push_bind(i64::from(progress.state.is_final()))
                    .push_bind(submission.spec.cluster.clone());
            });
            self.built(&mut builder)?.execute(&mut **tx).await?;

            let labels: Vec<_> = chunk
                .iter()
                .flat_map(|submission| {
                    submission
                        .spec
                        .labels
                        .iter()
                        .map(move |(key, value)| (submission.id, key, value))
                })
                .collect();
            for labels in labels.chunks(LABEL_CHUNK) {
                let mut builder =
                    QueryBuilder::new("INSERT INTO submission_labels (submission_id, key, value) ");
                builder.push_values(labels, |mut row, (id, key, value)| {
                    row.push_bind(id.to_string())
                        .push_bind(key.to_string())
                        .push_bind(value.to_string());
                });
                self.built(&mut builder)?.execute(&mut **tx).await?;
            }
        }
        // After every row: an edge may point at any submission of the request.
        self.insert_dependencies(tx, submissions).await?;
        let stored: Vec<StateChange> = submissions
            .iter()
            .map(|submission| StateChange {
                id: submission.id,
                owner: submission.owner.clone(),
                previous: None,
                state: submission.progress.state,
                message: submission.progress.message.clone(),
                notifies: submission.spec.notify.is_some(),
            })
            .collect();
        // Last: from here until the commit, other writers of events wait (see `events`).
        self.record_events(tx, &stored).await
    }
}
