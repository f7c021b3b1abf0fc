//! Recording the Jobs the dispatcher created: every creation answered at about the same time in
//! one transaction, as one statement, rather than a read and a write of each row.

use std::collections::HashSet;

use jiff::Timestamp;
use sqlx::{QueryBuilder, Row};

use super::error::{Result, StorageError};
use super::events::StateChange;
use super::store::Store;
use crate::domain::{State, Submission, SubmissionId};

/// Rows per statement: two arguments each, far below either database's limit.
const CHUNK: usize = 256;

impl Store {
    /// Marks `created` (submissions whose Jobs the API server just created) `pending`, with
    /// their events, in one transaction: each only if it is still queued for that Job. Returns
    /// the ids it marked; one left out changed meanwhile (cancelled, rerun, or recorded by the
    /// controller first), and its caller reads it again to see what to do.
    pub async fn record_created(&self, created: &[&Submission]) -> Result<HashSet<SubmissionId>> {
        let mut marked = HashSet::with_capacity(created.len());
        if created.is_empty() {
            return Ok(marked);
        }
        let now = Timestamp::now().to_string();
        let turn = self.turn_to_write().await;
        let mut tx = self.begin_write().await?;
        for chunk in created.chunks(CHUNK) {
            // A Job name is its submission's id and run (`sh-ID`, `sh-ID-rN`), so the pairs of
            // id and name match as the two lists do, and the id's index finds the rows.
            let mut builder = QueryBuilder::new(
                "UPDATE submissions SET state = 'pending', message = NULL, updated_at = ",
            );
            builder
                .push_bind(now.clone())
                .push(", version = version + 1 WHERE state = 'queued' AND id IN (");
            let mut ids = builder.separated(", ");
            for submission in chunk {
                ids.push_bind(submission.id.to_string());
            }
            builder.push(") AND job_name IN (");
            let mut names = builder.separated(", ");
            for submission in chunk {
                names.push_bind(submission.job_name.clone());
            }
            builder.push(") RETURNING id");
            for row in self.built(&mut builder)?.fetch_all(&mut *tx).await? {
                let id: String = row.try_get("id")?;
                let id = id.parse().map_err(|_| StorageError::Corrupt {
                    id: id.clone(),
                    reason: "not a submission id".into(),
                })?;
                marked.insert(id);
            }
        }
        let changes: Vec<StateChange> = created
            .iter()
            .filter(|submission| marked.contains(&submission.id))
            .map(|submission| StateChange {
                id: submission.id,
                owner: submission.owner.clone(),
                previous: Some(State::Queued),
                state: State::Pending,
                message: None,
                notifies: submission.spec.notify.is_some(),
            })
            .collect();
        let recorded = self.record_events(&mut tx, &changes).await?;
        tx.commit().await?;
        drop(turn);
        self.events_committed(recorded);
        Ok(marked)
    }
}
