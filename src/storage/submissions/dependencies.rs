//! The `submission_dependencies` table: which submissions wait for which, and what becomes of
//! the waiting ones when a dependency ends. Each waiting row counts the dependencies it still
//! needs (`waiting_on`), so a dependency's success is one decrement per dependent, and the
//! widest fan-in costs one update per edge over the whole campaign.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use jiff::Timestamp;
use sqlx::{Any, QueryBuilder, Row};

use super::row::{columns, from_row};
use crate::domain::campaign::{self, Dependency};
use crate::domain::{State, Submission, SubmissionId};
use crate::storage::error::{Result, StorageError};
use crate::storage::events::StateChange;
use crate::storage::store::Store;

/// Ids per statement that names many (well under either database's limit of parameters).
pub(super) const IDS_PER_STATEMENT: usize = 500;
/// Edges per multi-row INSERT (2 values each).
const EDGE_CHUNK: usize = 5000;

type Tx<'t> = sqlx::Transaction<'t, Any>;

impl Store {
    /// The owners of the stored submissions among `ids` (those that exist), for checking that
    /// a new submission depends only on its own user's.
    pub async fn owners_of(&self, ids: &[SubmissionId]) -> Result<HashMap<SubmissionId, String>> {
        let mut owners = HashMap::new();
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let mut builder = QueryBuilder::new("SELECT id, owner FROM submissions WHERE id IN (");
            push_ids(&mut builder, chunk);
            builder.push(")");
            for row in self.built(&mut builder)?.fetch_all(&self.pool).await? {
                let id: String = row.try_get("id")?;
                owners.insert(parse_id(&id)?, row.try_get("owner")?);
            }
        }
        Ok(owners)
    }

    /// Sets the state each new submission starts in from its dependencies, and returns how
    /// many of them each still waits on. The stored dependencies are locked first (a no-op
    /// update), so on Postgres one that ends meanwhile either is seen ended here, or sees
    /// these new dependents when it ends: none is left waiting for an end already recorded.
    pub(super) async fn starting_states(
        &self,
        tx: &mut Tx<'_>,
        submissions: &mut [Submission],
    ) -> Result<Vec<i64>> {
        if submissions.iter().all(|s| s.spec.depends_on.is_empty()) {
            return Ok(vec![0; submissions.len()]);
        }
        let position: HashMap<SubmissionId, usize> = submissions
            .iter()
            .enumerate()
            .map(|(index, submission)| (submission.id, index))
            .collect();
        let dependencies: Vec<Vec<Dependency>> = submissions
            .iter()
            .map(|submission| {
                submission
                    .spec
                    .depends_on
                    .iter()
                    .map(|id| match position.get(id) {
                        Some(index) => Dependency::Sent(*index),
                        None => Dependency::Stored(*id),
                    })
                    .collect()
            })
            .collect();
        let stored: BTreeSet<SubmissionId> = dependencies
            .iter()
            .flatten()
            .filter_map(|dependency| match dependency {
                Dependency::Stored(id) => Some(*id),
                Dependency::Sent(_) => None,
            })
            .collect();
        let stored: Vec<SubmissionId> = stored.into_iter().collect();
        let states = self.locked_states(tx, &stored).await?;
        let ids: Vec<SubmissionId> = submissions.iter().map(|submission| submission.id).collect();
        let starts = campaign::starts(&ids, &dependencies, &states);
        let now = Timestamp::now();
        let mut waiting_on = Vec::with_capacity(starts.len());
        for (submission, start) in submissions.iter_mut().zip(starts) {
            submission.progress.state = start.state;
            submission.progress.message = start.message;
            if start.state.is_final() {
                submission.progress.finished_at = Some(now);
            }
            waiting_on.push(start.waiting_on);
        }
        Ok(waiting_on)
    }

    /// The states of `ids`, each row locked (a no-op update), so on Postgres one that ends
    /// meanwhile either is seen ended here, or sees what the caller makes wait for it when it
    /// ends: none is left waiting for an end already recorded.
    pub(super) async fn locked_states(
        &self,
        tx: &mut Tx<'_>,
        ids: &[SubmissionId],
    ) -> Result<HashMap<SubmissionId, State>> {
        let mut states = HashMap::new();
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let mut builder =
                QueryBuilder::new("UPDATE submissions SET version = version WHERE id IN (");
            push_ids(&mut builder, chunk);
            builder.push(") RETURNING id, state");
            for row in self.built(&mut builder)?.fetch_all(&mut **tx).await? {
                let id: String = row.try_get("id")?;
                let state: String = row.try_get("state")?;
                let state = State::from_str(&state).map_err(|error| StorageError::Corrupt {
                    id: id.clone(),
                    reason: error.to_string(),
                })?;
                states.insert(parse_id(&id)?, state);
            }
        }
        Ok(states)
    }

    /// Records each new submission's dependencies.
    pub(super) async fn insert_dependencies(
        &self,
        tx: &mut Tx<'_>,
        submissions: &[Submission],
    ) -> Result<()> {
        let edges: Vec<(SubmissionId, SubmissionId)> = submissions
            .iter()
            .flat_map(|submission| {
                submission
                    .spec
                    .depends_on
                    .iter()
                    .map(move |dependency| (submission.id, *dependency))
            })
            .collect();
        for chunk in edges.chunks(EDGE_CHUNK) {
            let mut builder = QueryBuilder::new(
                "INSERT INTO submission_dependencies (submission_id, depends_on) ",
            );
            builder.push_values(chunk, |mut row, (id, dependency)| {
                row.push_bind(id.to_string())
                    .push_bind(dependency.to_string());
            });
            self.built(&mut builder)?.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Moves on what waited for `id`, which just ended in `state`: on success each dependent
    /// needs one dependency fewer, and those that need none are queued; otherwise every
    /// submission waiting on it, and on those, cannot run and ends too. Returns the state
    /// changes of the dependents, for the caller to record with its own.
    pub(super) async fn dependency_ended(
        &self,
        tx: &mut Tx<'_>,
        id: SubmissionId,
        state: State,
    ) -> Result<Vec<StateChange>> {
        if state != State::Succeeded {
            let ended = self.end_dependents(tx, &[id], state).await?;
            return Ok(ended_waiting(&ended));
        }
        let now = Timestamp::now().to_string();
        let counted = sqlx::query(
            "UPDATE submissions SET waiting_on = waiting_on - 1, updated_at = $1, \
             version = version + 1 WHERE state = 'waiting' AND id IN \
             (SELECT submission_id FROM submission_dependencies WHERE depends_on = $2)",
        )
        .bind(now.clone())
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
        if counted.rows_affected() == 0 {
            return Ok(Vec::new());
        }
        let queued = sqlx::query(
            "UPDATE submissions SET state = 'queued', message = NULL, updated_at = $1, \
             version = version + 1 WHERE state = 'waiting' AND waiting_on <= 0 AND id IN \
             (SELECT submission_id FROM submission_dependencies WHERE depends_on = $2) \
             RETURNING id, owner, notify_url",
        )
        .bind(now)
        .bind(id.to_string())
        .fetch_all(&mut **tx)
        .await?;
        queued
            .iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                Ok(StateChange {
                    id: parse_id(&id)?,
                    owner: row.try_get("owner")?,
                    previous: Some(State::Waiting),
                    state: State::Queued,
                    message: None,
                    notifies: row.try_get::<Option<String>, _>("notify_url")?.is_some(),
                })
            })
            .collect()
    }

    /// Ends every submission waiting on one of `ended` (which ended in `state`, failed or
    /// cancelled), then those waiting on these, and so on; each says which dependency it
    /// waited for. Returns them all.
    pub(super) async fn end_dependents(
        &self,
        tx: &mut Tx<'_>,
        ended: &[SubmissionId],
        state: State,
    ) -> Result<Vec<Submission>> {
        let (next_state, because) = match state {
            State::Cancelled => (State::Cancelled, " was cancelled"),
            _ => (State::Failed, " failed"),
        };
        let now = Timestamp::now().to_string();
        let mut all = Vec::new();
        let mut frontier: Vec<SubmissionId> = ended.to_vec();
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for chunk in frontier.chunks(IDS_PER_STATEMENT) {
                let mut builder = QueryBuilder::new("UPDATE submissions SET state = ");
                builder
                    .push_bind(next_state.as_str())
                    .push(", message = 'dependency ' || d.dependency || ")
                    .push_bind(because)
                    .push(", finished_at = ")
                    .push_bind(now.clone())
                    .push(", updated_at = ")
                    .push_bind(now.clone())
                    .push(
                        ", cascaded = 1, version = version + 1 FROM (SELECT submission_id, \
                         MIN(depends_on) AS dependency FROM submission_dependencies \
                         WHERE depends_on IN (",
                    );
                push_ids(&mut builder, chunk);
                builder.push(concat!(
                    ") GROUP BY submission_id) AS d WHERE submissions.id = d.submission_id \
                     AND submissions.state = 'waiting' RETURNING ",
                    columns!()
                ));
                for row in self.built(&mut builder)?.fetch_all(&mut **tx).await? {
                    let (submission, _) = from_row(&row)?;
                    next.push(submission.id);
                    all.push(submission);
                }
            }
            frontier = next;
        }
        Ok(all)
    }
}

/// The state changes of dependents that [`Store::end_dependents`] ended (all were waiting).
pub(super) fn ended_waiting(ended: &[Submission]) -> Vec<StateChange> {
    ended
        .iter()
        .map(|submission| StateChange {
            id: submission.id,
            owner: submission.owner.clone(),
            previous: Some(State::Waiting),
            state: submission.progress.state,
            message: submission.progress.message.clone(),
            notifies: submission.spec.notify.is_some(),
        })
        .collect()
}

pub(super) fn push_ids(builder: &mut QueryBuilder<Any>, ids: &[SubmissionId]) {
    let mut separated = builder.separated(", ");
    for id in ids {
        separated.push_bind(id.to_string());
    }
}

pub(super) fn parse_id(text: &str) -> Result<SubmissionId> {
    SubmissionId::from_str(text).map_err(|error| StorageError::Corrupt {
        id: text.to_owned(),
        reason: error.to_string(),
    })
}
