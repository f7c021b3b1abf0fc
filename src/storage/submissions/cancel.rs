//! Cancelling every active submission a filter matches, in one statement, and with them
//! every submission waiting on one of them.

use std::str::FromStr;

use jiff::Timestamp;
use sqlx::{QueryBuilder, Row};

use super::dependencies::ended_waiting;
use super::filter::{Conditions, Filter, push_states};
use super::row::{columns, from_row};
use crate::domain::{State, Submission, SubmissionId};
use crate::storage::error::{Result, StorageError};
use crate::storage::events::StateChange;
use crate::storage::store::Store;

/// What a cancel did.
#[derive(Debug, Clone, Default)]
pub struct Cancelled {
    /// The active submissions the request named or matched.
    pub matched: Vec<Submission>,
    /// The submissions that were waiting on those (or on these, and so on), cancelled too.
    pub dependents: Vec<Submission>,
}

impl Store {
    /// Marks every active submission that matches `filter` as cancelled, in one statement,
    /// and with them every submission waiting on one of them; returns both, newest first.
    pub async fn cancel_matching(&self, filter: &Filter, message: &str) -> Result<Cancelled> {
        let now = Timestamp::now().to_string();
        let mut builder = QueryBuilder::new("UPDATE submissions SET state = ");
        // `cancelled_from = state` keeps the state the row had when this statement wrote it
        // (the right side reads the row before the update), for the event of its change.
        builder
            .push_bind(State::Cancelled.as_str())
            .push(", cancelled_from = state, message = ")
            .push_bind(message.to_owned())
            .push(", finished_at = ")
            .push_bind(now.clone())
            .push(", updated_at = ")
            .push_bind(now)
            .push(", version = version + 1 WHERE id IN (SELECT s.id FROM submissions s");
        let mut conditions = Conditions::new();
        conditions.filter(&mut builder, filter);
        conditions.next(&mut builder);
        push_states(&mut builder, "s.state", &State::ACTIVE);
        // Checked again on the row being written: on Postgres a row that changed after the
        // subquery chose it (a submission that just succeeded) is re-evaluated against this
        // condition, not against the subquery's snapshot.
        builder.push(") AND ");
        push_states(&mut builder, "state", &State::ACTIVE);
        builder.push(concat!(" RETURNING cancelled_from, ", columns!()));
        let turn = self.turn_to_write().await;
        let mut tx = self.begin_write().await?;
        let rows = self.built(&mut builder)?.fetch_all(&mut *tx).await?;
        let mut changes = Vec::with_capacity(rows.len());
        let mut matched = Vec::with_capacity(rows.len());
        for row in &rows {
            let (submission, _) = from_row(row)?;
            let previous: String = row.try_get("cancelled_from")?;
            let previous = State::from_str(&previous).map_err(|error| StorageError::Corrupt {
                id: submission.id.to_string(),
                reason: error.to_string(),
            })?;
            changes.push(StateChange {
                id: submission.id,
                owner: submission.owner.clone(),
                previous: Some(previous),
                state: submission.progress.state,
                message: submission.progress.message.clone(),
                notifies: submission.spec.notify.is_some(),
            });
            matched.push(submission);
        }
        let ended: Vec<SubmissionId> = matched.iter().map(|submission| submission.id).collect();
        let mut dependents = self
            .end_dependents(&mut tx, &ended, State::Cancelled)
            .await?;
        changes.extend(ended_waiting(&dependents));
        let recorded = self.record_events(&mut tx, &changes).await?;
        tx.commit().await?;
        drop(turn);
        self.events_committed(recorded);
        if !matched.is_empty() {
            self.wake_dispatcher();
        }
        matched.sort_by_key(|submission| std::cmp::Reverse(submission.id));
        dependents.sort_by_key(|submission| std::cmp::Reverse(submission.id));
        Ok(Cancelled {
            matched,
            dependents,
        })
    }
}
