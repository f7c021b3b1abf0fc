//! The `submissions` and `submission_labels` tables: storing new submissions (all or none),
//! reading them back one at a time or as filtered, newest-first pages, moving their progress
//! forward with optimistic locking, and cancelling every active one a filter matches.

use std::str::FromStr;

use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{Any, QueryBuilder, Row};

use super::dependencies::ended_waiting;
use super::error::{Result, StorageError};
use super::events::StateChange;
use super::store::{Backend, Store};
use crate::domain::{Progress, State, Submission, SubmissionId, SubmissionSpec, WorkLimits};

/// Which submissions a list or bulk cancel is about. Empty criteria match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this user's submissions.
    pub owner: Option<String>,
    /// Any of these submissions.
    pub ids: Vec<SubmissionId>,
    /// In any of these states.
    pub states: Vec<State>,
    pub name: Option<String>,
    /// Carrying every one of these labels.
    pub labels: Vec<(String, String)>,
}

/// A page of a newest-first listing: at most `limit` rows older than `before`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: u32,
    pub before: Option<SubmissionId>,
}

/// What a cancel did.
#[derive(Debug, Clone, Default)]
pub struct Cancelled {
    /// The active submissions the request named or matched.
    pub matched: Vec<Submission>,
    /// The submissions that were waiting on those (or on these, and so on), cancelled too.
    pub dependents: Vec<Submission>,
}

/// The result of asking for an update: whether the row changed, and the row as it is now.
#[derive(Debug, Clone)]
pub struct Updated {
    pub changed: bool,
    pub submission: Submission,
}

/// The columns [`from_row`] reads. A macro, so fixed statements stay `&'static str` literals.
macro_rules! columns {
    () => {
        "id, spec, namespace, job_name, state, message, active, succeeded, failed, created_at, \
         started_at, finished_at, version, owner, submitted_by, user_limit, group_id, group_limit, \
         notify_token"
    };
}
pub(super) use columns;

/// Rows per multi-row INSERT: 19 values a row stays well under SQLite's limit of 32766 bound
/// parameters (and PostgreSQL's 65535).
const INSERT_CHUNK: usize = 500;

/// Label rows per multi-row INSERT (3 values a row).
const LABEL_CHUNK: usize = 2000;

/// Retries of an optimistic update before giving up; contention on one row is brief.
const UPDATE_ATTEMPTS: usize = 20;

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
    pub(super) async fn insert_unless(
        &self,
        submissions: &mut [Submission],
        abandoned: impl Fn() -> bool,
    ) -> Result<()> {
        let _turn = self.turn_to_write().await;
        let mut tx = self.pool.begin().await?;
        self.insert_rows(&mut tx, submissions).await?;
        if abandoned() {
            tx.rollback().await?;
            return Err(StorageError::Abandoned);
        }
        tx.commit().await?;
        self.wal.wrote(submissions.len());
        self.dispatchable(submissions);
        self.events_committed();
        Ok(())
    }

    pub async fn get(&self, id: SubmissionId) -> Result<Option<Submission>> {
        Ok(self
            .get_versioned(id)
            .await?
            .map(|(submission, _)| submission))
    }

    async fn get_versioned(&self, id: SubmissionId) -> Result<Option<(Submission, i64)>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM submissions WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| from_row(&row)).transpose()
    }

    /// Newest first, filtered, one page.
    pub async fn list(&self, filter: &Filter, page: Page) -> Result<Vec<Submission>> {
        let mut builder = list_statement(self.backend, "", filter, page);
        let rows = self.built(&mut builder)?.fetch_all(&self.pool).await?;
        rows.iter().map(|row| Ok(from_row(row)?.0)).collect()
    }

    /// How the database runs [`Store::list`] for `filter` and `page`, one line per step (for
    /// the benchmark, and for tests that keep every list query on an index).
    pub async fn list_plan(&self, filter: &Filter, page: Page) -> Result<Vec<String>> {
        let (explain, column) = match self.backend {
            Backend::Sqlite => ("EXPLAIN QUERY PLAN ", 3),
            Backend::Postgres => ("EXPLAIN ", 0),
        };
        let mut builder = list_statement(self.backend, explain, filter, page);
        let rows = self.built(&mut builder)?.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>(column)?))
            .collect()
    }

    /// How many submissions are in each of `states` (for `/metrics`); states with none are
    /// left out. One walk of the state index per state asked for: cheap for the active states,
    /// which are few, and a scan of most of the table for the final ones.
    pub async fn count_by_state(&self, states: &[State]) -> Result<Vec<(State, i64)>> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let mut builder =
            QueryBuilder::new("SELECT state, COUNT(*) AS count FROM submissions WHERE ");
        push_states(&mut builder, "state", states);
        builder.push(" GROUP BY state");
        let rows = self.built(&mut builder)?.fetch_all(&self.pool).await?;
        let mut counts = Vec::new();
        for row in &rows {
            let state: String = row.try_get("state")?;
            let count: i64 = row.try_get("count")?;
            let state = State::from_str(&state).map_err(|error| StorageError::Corrupt {
                id: "state count".into(),
                reason: error.to_string(),
            })?;
            counts.push((state, count));
        }
        Ok(counts)
    }

    /// Submissions of `namespace` whose Job has been created and has not ended, for reconciling
    /// with that namespace's Jobs (a service following another namespace leaves them alone).
    pub async fn with_live_jobs(&self, namespace: &str) -> Result<Vec<Submission>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM submissions WHERE state IN ('pending', 'running') AND namespace = $1 ORDER BY id"
        ))
        .bind(namespace.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok(from_row(row)?.0)).collect()
    }

    /// Reads a submission, lets `decide` compute its next progress, and writes it if it is
    /// still the version that was read; retries when another writer got there first.
    ///
    /// `decide` returns `None` to leave the row alone. Returns `None` if there is no such row.
    pub async fn update(
        &self,
        id: SubmissionId,
        mut decide: impl FnMut(&Submission) -> Option<Progress>,
    ) -> Result<Option<Updated>> {
        for _ in 0..UPDATE_ATTEMPTS {
            let Some((mut submission, version)) = self.get_versioned(id).await? else {
                return Ok(None);
            };
            let Some(progress) = decide(&submission) else {
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
            let ends = progress.state.is_final();
            let turn = self.turn_to_write().await;
            let mut tx = self.pool.begin().await?;
            let result = sqlx::query(
                "UPDATE submissions SET state = $1, message = $2, active = $3, succeeded = $4, \
                 failed = $5, started_at = $6, finished_at = $7, updated_at = $8, \
                 version = version + 1 WHERE id = $9 AND version = $10",
            )
            .bind(progress.state.as_str())
            .bind(progress.message.clone())
            .bind(progress.active)
            .bind(progress.succeeded)
            .bind(progress.failed)
            .bind(progress.started_at.map(|at| at.to_string()))
            .bind(progress.finished_at.map(|at| at.to_string()))
            .bind(Timestamp::now().to_string())
            .bind(id.to_string())
            .bind(version)
            .execute(&mut *tx)
            .await?;
            if result.rows_affected() != 1 {
                tx.rollback().await?;
                drop(turn);
                continue;
            }
            // What waited for it moves on in the same transaction: a dependency's end and its
            // dependents' next step are recorded together or not at all.
            let dependents = if ends {
                self.dependency_ended(&mut tx, id, progress.state).await?
            } else {
                Vec::new()
            };
            let mut changes = Vec::with_capacity(dependents.len() + 1);
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
            self.record_events(&mut tx, &changes).await?;
            tx.commit().await?;
            drop(turn);
            if !changes.is_empty() {
                self.events_committed();
            }
            if ends || queued {
                // A slot under a limit is free, or dependents are queued.
                self.wake_dispatcher();
            }
            submission.progress = progress;
            return Ok(Some(Updated {
                changed: true,
                submission,
            }));
        }
        Err(StorageError::Contended(id))
    }

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
        let mut tx = self.pool.begin().await?;
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
        self.record_events(&mut tx, &changes).await?;
        tx.commit().await?;
        drop(turn);
        if !changes.is_empty() {
            self.events_committed();
        }
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

    /// Inserts submissions, their labels and their dependencies inside `tx`, in multi-row
    /// statements; each starts `queued`, or `waiting` on its dependencies, or `failed` if one
    /// already failed or was cancelled (see [`campaign::starts`]).
    pub(super) async fn insert_rows(
        &self,
        tx: &mut sqlx::Transaction<'_, Any>,
        submissions: &mut [Submission],
    ) -> Result<()> {
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
                 user_limit, group_id, group_limit, notify_url, notify, notify_token) ",
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
                    .push_bind(submission.notify_token.clone());
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

/// The statement of [`Store::list`], after `prefix` (empty, or the database's EXPLAIN).
///
/// Shaped so that every list walks an index in id order and stops after a page, however many
/// rows the table holds (BENCHMARKS.md has the plans):
/// - with labels, the walk is over the first label's index entries, newest first, joined to
///   the submission (`CROSS JOIN` keeps SQLite from walking every newer submission instead);
/// - with several states and no label, each state is its own index walk of at most a page,
///   and the pages are merged (an `IN` would read every row of those states and sort them);
/// - otherwise one walk of the owner, state, name or primary-key index.
fn list_statement(
    backend: Backend,
    prefix: &str,
    filter: &Filter,
    page: Page,
) -> QueryBuilder<Any> {
    let mut builder = QueryBuilder::new(prefix);
    if filter.labels.is_empty() && filter.states.len() > 1 {
        for (n, state) in filter.states.iter().enumerate() {
            if n > 0 {
                builder.push(" UNION ALL ");
            }
            builder.push("SELECT * FROM (");
            let one_state = Filter {
                states: vec![*state],
                ..filter.clone()
            };
            push_page(&mut builder, backend, &one_state, page);
            builder.push(format!(") AS state_{n}"));
        }
        builder
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(page.limit));
    } else {
        push_page(&mut builder, backend, filter, page);
    }
    builder
}

/// One newest-first walk: a SELECT of at most a page of `filter`'s submissions.
fn push_page(builder: &mut QueryBuilder<Any>, backend: Backend, filter: &Filter, page: Page) {
    let mut conditions = Conditions::new();
    let order = match filter.labels.split_first() {
        Some(((key, value), other_labels)) => {
            builder
                .push(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM submission_labels l CROSS JOIN submissions s WHERE l.key = "
                ))
                .push_bind(key.clone())
                .push(" AND l.value = ")
                .push_bind(value.clone())
                .push(" AND s.id = l.submission_id");
            conditions.any = true;
            conditions.filter(
                builder,
                &Filter {
                    labels: other_labels.to_vec(),
                    ..filter.clone()
                },
            );
            "l.submission_id"
        }
        None => match one_state_walk(backend, filter) {
            Some(state) => {
                // Postgres reads `state = $1 ORDER BY id` as ordered by id alone, and for a
                // state of many rows walks the primary key backwards, filtering: behind the
                // newest rows of other states (a campaign still queued) that read 15,000 rows
                // for a page (16 ms at 1M rows). A range of one state, ordered by state then
                // id, is a walk of the state index only.
                builder.push(concat!("SELECT ", columns!(), " FROM submissions s"));
                conditions.filter(
                    builder,
                    &Filter {
                        states: Vec::new(),
                        ..filter.clone()
                    },
                );
                conditions.next(builder);
                builder
                    .push("s.state >= ")
                    .push_bind(state.as_str())
                    .push(" AND s.state <= ")
                    .push_bind(state.as_str());
                "s.id"
            }
            None => {
                builder.push(concat!("SELECT ", columns!(), " FROM submissions s"));
                conditions.filter(builder, filter);
                "s.id"
            }
        },
    };
    if let Some(before) = page.before {
        conditions.next(builder);
        builder
            .push(order)
            .push(" < ")
            .push_bind(before.to_string());
    }
    builder.push(" ORDER BY ");
    if one_state_walk(backend, filter).is_some() {
        builder.push("s.state DESC, ");
    }
    builder
        .push(order)
        .push(" DESC LIMIT ")
        .push_bind(i64::from(page.limit));
}

/// The state of a list that is a walk of one state's index entries, written for Postgres as
/// a range (see [`push_page`]); SQLite's planner walks the same index for `state = ?`, with
/// the cursor in the index search, which the range would lose.
fn one_state_walk(backend: Backend, filter: &Filter) -> Option<State> {
    match (backend, filter.states.as_slice()) {
        (Backend::Postgres, [state])
            if filter.labels.is_empty() && filter.name.is_none() && filter.ids.is_empty() =>
        {
            Some(*state)
        }
        _ => None,
    }
}

/// Joins the conditions of a WHERE clause: `WHERE` before the first, `AND` before the others.
///
/// (`QueryBuilder::separated` cannot be used here: each condition is several pushes, some bound.)
struct Conditions {
    any: bool,
}

impl Conditions {
    fn new() -> Self {
        Conditions { any: false }
    }

    /// Starts the next condition.
    fn next(&mut self, builder: &mut QueryBuilder<Any>) {
        builder.push(if self.any { " AND " } else { " WHERE " });
        self.any = true;
    }

    /// The conditions of `filter` on the submissions aliased `s`.
    fn filter(&mut self, builder: &mut QueryBuilder<Any>, filter: &Filter) {
        if !filter.ids.is_empty() {
            self.next(builder);
            builder.push("s.id IN (");
            let mut ids = builder.separated(", ");
            for id in &filter.ids {
                ids.push_bind(id.to_string());
            }
            builder.push(")");
        }
        if let Some(owner) = &filter.owner {
            self.next(builder);
            builder.push("s.owner = ").push_bind(owner.clone());
        }
        if !filter.states.is_empty() {
            self.next(builder);
            push_states(builder, "s.state", &filter.states);
        }
        if let Some(name) = &filter.name {
            self.next(builder);
            builder.push("s.name = ").push_bind(name.clone());
        }
        for (key, value) in &filter.labels {
            self.next(builder);
            builder
                .push(
                    "EXISTS (SELECT 1 FROM submission_labels l WHERE l.submission_id = s.id \
                     AND l.key = ",
                )
                .push_bind(key.clone())
                .push(" AND l.value = ")
                .push_bind(value.clone())
                .push(")");
        }
    }
}

/// `column IN (states...)`, the states bound; `states` must not be empty. One state is
/// written `column = state`, the plainest form of the same condition.
fn push_states(builder: &mut QueryBuilder<Any>, column: &str, states: &[State]) {
    if let [state] = states {
        builder.push(column).push(" = ").push_bind(state.as_str());
        return;
    }
    builder.push(column).push(" IN (");
    let mut separated = builder.separated(", ");
    for state in states {
        separated.push_bind(state.as_str());
    }
    builder.push(")");
}

pub(super) fn from_row(row: &AnyRow) -> Result<(Submission, i64)> {
    let id_text: String = row.try_get("id")?;
    let corrupt = |reason: String| StorageError::Corrupt {
        id: id_text.clone(),
        reason,
    };
    let timestamp = |column: &str| -> Result<Option<Timestamp>> {
        let text: Option<String> = row.try_get(column)?;
        text.map(|text| {
            Timestamp::from_str(&text).map_err(|error| corrupt(format!("{column}: {error}")))
        })
        .transpose()
    };
    let id = SubmissionId::from_str(&id_text).map_err(|error| corrupt(error.to_string()))?;
    let spec_text: String = row.try_get("spec")?;
    let spec: SubmissionSpec =
        serde_json::from_str(&spec_text).map_err(|error| corrupt(format!("spec: {error}")))?;
    let state_text: String = row.try_get("state")?;
    let state = State::from_str(&state_text).map_err(|error| corrupt(error.to_string()))?;
    let submission = Submission {
        id,
        spec,
        owner: row.try_get("owner")?,
        submitted_by: row.try_get("submitted_by")?,
        namespace: row.try_get("namespace")?,
        job_name: row.try_get("job_name")?,
        created_at: timestamp("created_at")?.ok_or_else(|| corrupt("created_at is null".into()))?,
        progress: Progress {
            state,
            message: row.try_get("message")?,
            active: row.try_get("active")?,
            succeeded: row.try_get("succeeded")?,
            failed: row.try_get("failed")?,
            started_at: timestamp("started_at")?,
            finished_at: timestamp("finished_at")?,
        },
        limits: WorkLimits {
            user: row.try_get("user_limit")?,
            group: match (
                row.try_get::<Option<String>, _>("group_id")?,
                row.try_get::<Option<i64>, _>("group_limit")?,
            ) {
                (Some(id), Some(limit)) => Some((id, limit)),
                _ => None,
            },
        },
        notify_token: row.try_get("notify_token")?,
    };
    Ok((submission, row.try_get("version")?))
}
