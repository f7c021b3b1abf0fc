//! The `final_state_counts` table: how many submissions ended in each final state, as of an
//! event revision, so `/metrics` never counts the whole table while a scraper waits.
//!
//! Every change of state is an event (see `events`), so the counts at revision R plus the
//! events after R are the counts now: an event into a final state adds one, an event out of
//! one (a rerun) takes one away. The service keeps the counts in memory, brings them forward
//! at each scrape, and saves them every few seconds, so a start reads a few rows and a few
//! seconds of events however many submissions are stored. Only when events past the saved
//! revision were pruned (the service was stopped for longer than the event retention) is the
//! table counted again.

use std::collections::HashMap;
use std::str::FromStr;

use sqlx::Row;

use super::error::{Result, StorageError};
use super::events::Revisions;
use super::store::Store;
use crate::domain::State;

/// Submissions in each final state as of an event revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinalCounts {
    /// Every event up to this revision is counted, none after it.
    pub revision: i64,
    pub counts: HashMap<State, i64>,
}

impl FinalCounts {
    /// The counts in [`State::FINAL`]'s order, zeros included.
    pub fn by_state(&self) -> Vec<(State, i64)> {
        State::FINAL
            .iter()
            .map(|state| (*state, self.counts.get(state).copied().unwrap_or(0)))
            .collect()
    }

    /// Counts `changes` events from `previous` (none for a submission just stored) to `state`.
    fn apply(&mut self, previous: Option<State>, state: State, changes: i64) {
        if let Some(previous) = previous.filter(|previous| previous.is_final()) {
            *self.counts.entry(previous).or_insert(0) -= changes;
        }
        if state.is_final() {
            *self.counts.entry(state).or_insert(0) += changes;
        }
    }
}

impl Store {
    /// The counts now: `known` (or, without it, the saved ones) brought forward by the events
    /// committed since. Counts the table when those events are no longer all kept.
    pub async fn final_counts(&self, known: Option<FinalCounts>) -> Result<FinalCounts> {
        let mut counts = match known {
            Some(known) => known,
            None => self.saved_final_counts().await?,
        };
        // The counter first: every revision up to it is committed (see `events`).
        let Revisions { latest, pruned } = self.revisions().await?;
        if counts.revision < pruned {
            return self.count_final_states().await;
        }
        if latest <= counts.revision {
            return Ok(counts);
        }
        let rows = sqlx::query(
            "SELECT previous_state, state, COUNT(*) AS changes FROM submission_events \
             WHERE revision > $1 AND revision <= $2 GROUP BY previous_state, state",
        )
        .bind(counts.revision)
        .bind(latest)
        .fetch_all(&self.pool)
        .await?;
        // A prune that ran meanwhile may have taken some of them.
        if self.revisions().await?.pruned > counts.revision {
            return self.count_final_states().await;
        }
        for row in &rows {
            let previous: Option<String> = row.try_get("previous_state")?;
            let state: String = row.try_get("state")?;
            let changes: i64 = row.try_get("changes")?;
            let previous = previous.as_deref().map(state_named).transpose()?;
            counts.apply(previous, state_named(&state)?, changes);
        }
        counts.revision = latest;
        Ok(counts)
    }

    /// Saves `counts` unless newer ones are saved (another replica's). Returns whether it did.
    pub async fn save_final_counts(&self, counts: &FinalCounts) -> Result<bool> {
        let _turn = self.turn_to_write().await;
        let mut tx = self.begin_write().await?;
        let moved = sqlx::query(
            "UPDATE event_revisions SET revision = $1 WHERE name = 'counted' AND revision < $1",
        )
        .bind(counts.revision)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        for (state, count) in counts.by_state() {
            sqlx::query(
                "INSERT INTO final_state_counts (state, count) VALUES ($1, $2) \
                 ON CONFLICT (state) DO UPDATE SET count = excluded.count",
            )
            .bind(state.as_str())
            .bind(count)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The saved counts and their revision, read by one statement (one snapshot).
    async fn saved_final_counts(&self) -> Result<FinalCounts> {
        let rows = sqlx::query(
            "SELECT r.revision, c.state, c.count FROM event_revisions r \
             LEFT JOIN final_state_counts c ON 1 = 1 WHERE r.name = 'counted'",
        )
        .fetch_all(&self.pool)
        .await?;
        collect(&rows)
    }

    /// Counts the table, with the revision it was counted at, in one statement (one snapshot:
    /// the counter and the rows agree).
    async fn count_final_states(&self) -> Result<FinalCounts> {
        let rows = sqlx::query(
            "SELECT r.revision, c.state, c.count FROM event_revisions r LEFT JOIN \
             (SELECT state, COUNT(*) AS count FROM submissions \
              WHERE state IN ('succeeded', 'failed', 'cancelled') GROUP BY state) c ON 1 = 1 \
             WHERE r.name = 'allocated'",
        )
        .fetch_all(&self.pool)
        .await?;
        collect(&rows)
    }
}

/// Rows of `revision, state, count` (state and count null when no row matched) as counts.
fn collect(rows: &[sqlx::any::AnyRow]) -> Result<FinalCounts> {
    let mut counts = FinalCounts::default();
    for row in rows {
        counts.revision = row.try_get("revision")?;
        let state: Option<String> = row.try_get("state")?;
        let count: Option<i64> = row.try_get("count")?;
        if let (Some(state), Some(count)) = (state, count) {
            counts.counts.insert(state_named(&state)?, count);
        }
    }
    Ok(counts)
}

fn state_named(name: &str) -> Result<State> {
    State::from_str(name).map_err(|error| StorageError::Corrupt {
        id: "final state counts".into(),
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_into_and_out_of_final_states_move_the_counts() {
        let mut counts = FinalCounts::default();
        counts.apply(None, State::Queued, 5);
        counts.apply(Some(State::Running), State::Succeeded, 3);
        counts.apply(Some(State::Running), State::Failed, 2);
        counts.apply(Some(State::Queued), State::Cancelled, 1);
        // Two failed ones rerun, one of them failing again.
        counts.apply(Some(State::Failed), State::Queued, 2);
        counts.apply(Some(State::Running), State::Failed, 1);
        // Stored already ended (an import).
        counts.apply(None, State::Succeeded, 4);
        assert_eq!(
            counts.by_state(),
            [
                (State::Succeeded, 7),
                (State::Failed, 1),
                (State::Cancelled, 1)
            ]
        );
    }
}
