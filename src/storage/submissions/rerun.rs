//! Running final submissions again under their ids: each gets a new Job name (`...-r1`), its
//! progress starts over, and its history (`attempts`, logs, events) stays. A rerun of what a
//! filter matches brings back, in the same transaction, the submissions that failed or were
//! cancelled only because one of them did (a campaign's merge), waiting for them again.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use sqlx::{Any, QueryBuilder, Row};

use super::dependencies::{IDS_PER_STATEMENT, parse_id, push_ids};
use super::filter::{Conditions, Filter, push_states};
use super::row::{columns, from_row};
use crate::domain::{
    Held, JobRef, RerunPlan, State, Submission, SubmissionId, SubmissionSpec, not_rerunnable,
    plan_rerun, rerun_job_name,
};
use crate::storage::error::{Result, StorageError};
use crate::storage::events::{Recorded, StateChange};
use crate::storage::idempotency::{IdempotencyKey, claim_key};
use crate::storage::store::Store;

type Tx<'t> = sqlx::Transaction<'t, Any>;

/// The states a rerun starts from.
const RERUNNABLE: [State; 2] = [State::Failed, State::Cancelled];
/// Tries of a bulk rerun whose rows another writer changed meanwhile.
const RERUN_ATTEMPTS: usize = 5;

/// A submission's row as a rerun writes it.
pub(super) struct RerunRow {
    spec: SubmissionSpec,
    job_name: String,
    state: State,
    message: Option<String>,
    waiting_on: i64,
    reruns: i64,
    oom_reruns: i64,
}

impl RerunRow {
    /// The next run of `submission` under `spec`, starting in `state` (`queued`, or `waiting`
    /// on `waiting_on` dependencies that run again too).
    pub(super) fn new(
        submission: &Submission,
        spec: SubmissionSpec,
        state: State,
        message: Option<String>,
        waiting_on: i64,
    ) -> Self {
        let reruns = submission.reruns + 1;
        RerunRow {
            spec,
            job_name: rerun_job_name(submission.id, reruns),
            state,
            message,
            waiting_on,
            reruns,
            oom_reruns: 0,
        }
    }

    /// The same, as one more rerun for memory after `previous` of them.
    pub(super) fn for_memory(mut self, previous: i64) -> Self {
        self.oom_reruns = previous + 1;
        self
    }

    /// The same, keeping the count of reruns for memory (`previous`): a run moved to another
    /// cluster is not a rerun for memory, nor does it start their count over.
    pub(super) fn keeping_memory_reruns(mut self, previous: i64) -> Self {
        self.oom_reruns = previous;
        self
    }

    /// The event of `previous` becoming this.
    pub(super) fn change(&self, previous: &Submission) -> StateChange {
        StateChange {
            id: previous.id,
            owner: previous.owner.clone(),
            previous: Some(previous.progress.state),
            state: self.state,
            message: self.message.clone(),
            notifies: previous.spec.notify.is_some(),
        }
    }

    /// `previous` as this row holds it now.
    pub(super) fn into_submission(self, previous: &Submission) -> Submission {
        let mut submission = previous.clone();
        let mut progress = crate::domain::Progress::queued();
        progress.state = self.state;
        progress.message = self.message;
        progress.evictions = previous.progress.evictions;
        submission.progress = progress;
        submission.spec = self.spec;
        submission.job_name = self.job_name;
        submission.reruns = self.reruns;
        submission.oom_reruns = self.oom_reruns;
        submission
    }
}

/// Writes `row` over the submission's row if it is still at `version`; whether it was.
pub(super) async fn write_rerun(
    tx: &mut Tx<'_>,
    row: &RerunRow,
    id: SubmissionId,
    version: i64,
) -> Result<bool> {
    let spec = serde_json::to_string(&row.spec).map_err(|error| StorageError::Corrupt {
        id: id.to_string(),
        reason: error.to_string(),
    })?;
    let written = sqlx::query(
        "UPDATE submissions SET spec = $1, job_name = $2, state = $3, message = $4, active = 0, \
         succeeded = 0, failed = 0, started_at = NULL, finished_at = NULL, updated_at = $5, \
         admitted = 0, gated = 0, waiting_on = $6, reruns = $7, oom_reruns = $8, cascaded = 0, \
         claimed_at = NULL, dispatch_attempts = 0, next_dispatch_at = NULL, \
         version = version + 1 WHERE id = $9 AND version = $10",
    )
    .bind(spec)
    .bind(row.job_name.clone())
    .bind(row.state.as_str())
    .bind(row.message.clone())
    .bind(Timestamp::now().to_string())
    .bind(row.waiting_on)
    .bind(row.reruns)
    .bind(row.oom_reruns)
    .bind(id.to_string())
    .bind(version)
    .execute(&mut **tx)
    .await?;
    Ok(written.rows_affected() == 1)
}

/// What a rerun did.
#[derive(Debug, Clone, Default)]
pub struct Reran {
    /// The final submissions the request named or matched, running again.
    pub matched: Vec<Submission>,
    /// Submissions that had ended only because a dependency did, waiting for it again (with
    /// the spec they had, whether the request matched them or not).
    pub dependents: Vec<Submission>,
    /// Submissions the request matched that were not rerun, and why.
    pub left: Vec<(Submission, String)>,
    /// The Jobs of earlier runs that were cancelled, which must go if a delete after the
    /// cancel did not get through (the controller only follows a submission's current Job).
    pub superseded: Vec<JobRef>,
}

/// What a rerun under an idempotency key did.
#[derive(Debug)]
pub enum RerunStored {
    New(Reran),
    /// The key was used before with the same request: the submissions it reran, as they are
    /// now (`left` is empty).
    Replayed(Reran),
    /// The key was used before with another request.
    KeyReused,
}

/// The ids a rerun under an idempotency key stored, for its replay.
#[derive(serde::Serialize, serde::Deserialize)]
struct RerunIds {
    rerun: Vec<String>,
    also_rerun: Vec<String>,
}

impl Store {
    /// Runs again every failed or cancelled submission that matches `filter` (with `spec_of`
    /// its spec for the new run, or why it is not rerun), and every submission that ended
    /// only because one of those did, all in one transaction. A submission whose dependency
    /// failed and is not rerun with it stays as it is, saying why.
    pub async fn rerun_matching(
        &self,
        filter: &Filter,
        spec_of: impl Fn(&Submission) -> std::result::Result<SubmissionSpec, String>,
        key: Option<&IdempotencyKey>,
    ) -> Result<RerunStored> {
        for _ in 0..RERUN_ATTEMPTS {
            let turn = self.turn_to_write().await;
            let mut tx = self.begin_write().await?;
            if let Some(key) = key
                && !claim_key(&mut tx, key, r#"{"rerun":[],"also_rerun":[]}"#.into()).await?
            {
                tx.rollback().await?;
                drop(turn);
                return self.replay(key).await;
            }
            let Some((reran, recorded)) = self.rerun_in(&mut tx, filter, &spec_of).await? else {
                tx.rollback().await?;
                continue;
            };
            if reran.matched.is_empty() && reran.dependents.is_empty() {
                // Nothing to rerun: nothing is written, and a key stays free for a retry that
                // may find something to rerun.
                tx.rollback().await?;
                return Ok(RerunStored::New(reran));
            }
            if let Some(key) = key {
                let ids = RerunIds {
                    rerun: reran.matched.iter().map(|s| s.id.to_string()).collect(),
                    also_rerun: reran.dependents.iter().map(|s| s.id.to_string()).collect(),
                };
                let ids = serde_json::to_string(&ids).map_err(|error| StorageError::Corrupt {
                    id: key.key.clone(),
                    reason: error.to_string(),
                })?;
                sqlx::query("UPDATE idempotency_keys SET submission_ids = $1 WHERE key = $2")
                    .bind(ids)
                    .bind(key.key.clone())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            drop(turn);
            self.events_committed(recorded);
            self.wake_dispatcher();
            return Ok(RerunStored::New(reran));
        }
        Err(StorageError::Contended(
            filter.ids.first().copied().unwrap_or_default(),
        ))
    }

    /// One try of [`Store::rerun_matching`] inside `tx`, and the events it recorded; `None` if
    /// a row changed meanwhile.
    async fn rerun_in(
        &self,
        tx: &mut Tx<'_>,
        filter: &Filter,
        spec_of: &impl Fn(&Submission) -> std::result::Result<SubmissionSpec, String>,
    ) -> Result<Option<(Reran, Recorded)>> {
        let mut builder = QueryBuilder::new(concat!(
            "SELECT s.cascaded AS ended_by_dependency, ",
            columns!(),
            " FROM submissions s"
        ));
        let mut conditions = Conditions::new();
        conditions.filter(&mut builder, filter);
        conditions.next(&mut builder);
        push_states(&mut builder, "s.state", &RERUNNABLE);
        let mut found: BTreeMap<SubmissionId, (Submission, i64)> = BTreeMap::new();
        let mut left = Vec::new();
        let mut specs = HashMap::new();
        // A match that ended only because a dependency did comes back as a dependent (as it
        // was), if that dependency runs again too or already does.
        let mut cascaded = BTreeSet::new();
        for row in self.built(&mut builder)?.fetch_all(&mut **tx).await? {
            let (submission, version) = from_row(&row)?;
            if row.try_get::<i64, _>("ended_by_dependency")? != 0 {
                cascaded.insert(submission.id);
            }
            found.insert(submission.id, (submission, version));
        }
        let matched: BTreeSet<SubmissionId> = found.keys().copied().collect();
        for id in &matched {
            let submission = &found[id].0;
            let spec = match not_rerunnable(submission) {
                Some(why) => Err(why),
                None => spec_of(submission),
            };
            match spec {
                Ok(spec) => {
                    specs.insert(*id, spec);
                }
                Err(why) => left.push((submission.clone(), why)),
            }
        }

        // What ended only because a rerun one did, and what ended because of those.
        let mut frontier: Vec<SubmissionId> = specs.keys().copied().collect();
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for chunk in frontier.chunks(IDS_PER_STATEMENT) {
                let mut builder = QueryBuilder::new(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM submissions s WHERE s.cascaded = 1 AND "
                ));
                push_states(&mut builder, "s.state", &RERUNNABLE);
                builder.push(
                    " AND s.id IN (SELECT submission_id FROM submission_dependencies \
                     WHERE depends_on IN (",
                );
                push_ids(&mut builder, chunk);
                builder.push("))");
                for row in self.built(&mut builder)?.fetch_all(&mut **tx).await? {
                    let (submission, version) = from_row(&row)?;
                    if let std::collections::btree_map::Entry::Vacant(entry) =
                        found.entry(submission.id)
                    {
                        next.push(submission.id);
                        specs.insert(submission.id, submission.spec.clone());
                        entry.insert((submission, version));
                    }
                }
            }
            frontier = next;
        }

        // Each runs again only if every dependency it has succeeded or runs again too.
        let candidates: Vec<SubmissionId> = specs.keys().copied().collect();
        let dependencies = self.dependencies_of(tx, &candidates).await?;
        let outside: Vec<SubmissionId> = dependencies
            .values()
            .flatten()
            .filter(|id| !specs.contains_key(id))
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let states = self.locked_states(tx, &outside).await?;
        let candidates = specs
            .keys()
            .map(|id| (*id, found[id].0.progress.state))
            .collect();
        let RerunPlan { runs, held } = plan_rerun(&candidates, &dependencies, &states);
        for Held { id, by, state } in held {
            if matched.contains(&id) {
                let state = state.map_or("gone".to_owned(), |state| state.to_string());
                left.push((
                    found[&id].0.clone(),
                    format!(
                        "its dependency {by} is {state} and is not rerun with it; \
                         rerun that one and this one comes back with it"
                    ),
                ));
            }
        }

        let mut reran = Reran {
            left,
            ..Reran::default()
        };
        let mut changes = Vec::with_capacity(runs.len());
        for (id, waiting_on) in runs {
            let Some(spec) = specs.remove(&id) else {
                continue;
            };
            let (submission, version) = &found[&id];
            let (state, message) = if waiting_on > 0 {
                (State::Waiting, None)
            } else {
                (State::Queued, Some("rerun by request".to_owned()))
            };
            let row = RerunRow::new(submission, spec, state, message, waiting_on);
            if !write_rerun(tx, &row, id, *version).await? {
                return Ok(None);
            }
            if submission.progress.state == State::Cancelled {
                reran.superseded.push(submission.job());
            }
            changes.push(row.change(submission));
            let submission = row.into_submission(submission);
            if matched.contains(&id) && !cascaded.contains(&id) {
                reran.matched.push(submission);
            } else {
                reran.dependents.push(submission);
            }
        }
        let recorded = self.record_events(tx, &changes).await?;
        reran
            .matched
            .sort_by_key(|submission| std::cmp::Reverse(submission.id));
        reran
            .dependents
            .sort_by_key(|submission| std::cmp::Reverse(submission.id));
        Ok(Some((reran, recorded)))
    }

    /// The dependencies of each of `ids` that has any.
    async fn dependencies_of(
        &self,
        tx: &mut Tx<'_>,
        ids: &[SubmissionId],
    ) -> Result<HashMap<SubmissionId, Vec<SubmissionId>>> {
        let mut dependencies: HashMap<SubmissionId, Vec<SubmissionId>> = HashMap::new();
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let mut builder = QueryBuilder::new(
                "SELECT submission_id, depends_on FROM submission_dependencies \
                 WHERE submission_id IN (",
            );
            push_ids(&mut builder, chunk);
            builder.push(")");
            for row in self.built(&mut builder)?.fetch_all(&mut **tx).await? {
                let id: String = row.try_get("submission_id")?;
                let dependency: String = row.try_get("depends_on")?;
                dependencies
                    .entry(parse_id(&id)?)
                    .or_default()
                    .push(parse_id(&dependency)?);
            }
        }
        Ok(dependencies)
    }

    /// The answer of the rerun that first used `key`, or that it was another request.
    async fn replay(&self, key: &IdempotencyKey) -> Result<RerunStored> {
        let Some(ids) = self.stored_under(key).await? else {
            return Ok(RerunStored::KeyReused);
        };
        let corrupt = |reason: String| StorageError::Corrupt {
            id: key.key.clone(),
            reason,
        };
        let ids: RerunIds =
            serde_json::from_str(&ids).map_err(|error| corrupt(error.to_string()))?;
        let mut reran = Reran::default();
        for (ids, into) in [
            (ids.rerun, &mut reran.matched),
            (ids.also_rerun, &mut reran.dependents),
        ] {
            for id in ids {
                let id = parse_id(&id)?;
                let submission = self
                    .get(id)
                    .await?
                    .ok_or_else(|| corrupt(format!("submission {id} is missing")))?;
                into.push(submission);
            }
        }
        Ok(RerunStored::Replayed(reran))
    }
}
