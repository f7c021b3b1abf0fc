//! Reading submissions back: one at a time, as filtered newest-first pages (and how the
//! database runs them), counts by state, and those whose Job is live.

use std::str::FromStr;

use sqlx::{Any, QueryBuilder, Row};

use super::filter::{Conditions, Filter, push_states};
use super::row::{columns, from_row};
use super::update::Read;
use crate::domain::{State, Submission, SubmissionId};
use crate::storage::error::{Result, StorageError};
use crate::storage::store::{Backend, Store};

/// A page of a newest-first listing: at most `limit` rows older than `before`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: u32,
    pub before: Option<SubmissionId>,
}

impl Store {
    pub async fn get(&self, id: SubmissionId) -> Result<Option<Submission>> {
        Ok(self.read(id).await?.map(|read| read.submission))
    }

    /// One submission, with its version for [`Store::advance_read`].
    pub async fn read(&self, id: SubmissionId) -> Result<Option<Read>> {
        match &self.reads {
            Some(reads) => reads.send(id).await,
            None => self.read_one(id).await,
        }
    }

    /// [`Store::read`] in a statement of its own.
    pub(in crate::storage) async fn read_one(&self, id: SubmissionId) -> Result<Option<Read>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM submissions WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let (submission, version) = from_row(&row)?;
        Ok(Some(Read {
            submission,
            version,
        }))
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

    /// The clusters and namespaces other than `namespace` with live Jobs: where a service
    /// restarted with another `--namespace` created Jobs before, and must still follow them.
    pub async fn live_elsewhere(&self, namespace: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT cluster, namespace FROM submissions \
             WHERE state IN ('pending', 'running') AND namespace <> $1 AND cluster IS NOT NULL \
             ORDER BY cluster, namespace",
        )
        .bind(namespace.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("cluster")?, row.try_get("namespace")?)))
            .collect()
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
