//! The `submission_events` table: every change of a submission's state, each under a durable,
//! increasing revision, for the event stream (`GET /v1/events`) and the clients that resume it.
//!
//! Every statement that changes a state records its events through [`Store::record_events`], in
//! the same transaction, so an event exists exactly when its change was committed. Revisions
//! come from one counter row (`event_revisions`) advanced once per transaction, by as many
//! events as it records, as the transaction's last statement; its row lock is held until the
//! commit, so transactions commit in revision order (on Postgres too, where a sequence would
//! not: see `migrations/0008_events.sql`). A reader that first reads the counter and then the
//! events up to it therefore sees every revision up to it, and never skips one.
//!
//! After a commit with events, this process's reader of new events (the event feed) is woken at
//! once ([`Store::event_wakes`]), and its webhook sender too if the commit queued notifications
//! ([`Store::delivery_wakes`]); another replica's within a second, by their own process's one
//! reader of the counter ([`Store::watch_other_replicas`]).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use jiff::Timestamp;
use sqlx::{Any, QueryBuilder, Row};

use super::error::{Result, StorageError};
use super::store::Store;
use crate::domain::{State, StateEvent, SubmissionId};

/// Events per multi-row INSERT (7 values each).
const EVENT_CHUNK: usize = 1000;

/// Revisions one read looks through at most, however few of them match its filter, so a
/// selective stream far behind costs the database a bounded walk per read.
const SCAN_WINDOW: i64 = 10_000;

/// Rows deleted per statement when pruning (events, given-up deliveries), so SQLite's writer
/// is never held long.
const PRUNE_CHUNK: i64 = 10_000;

type Tx<'t> = sqlx::Transaction<'t, Any>;

/// What a transaction recorded, for [`Store::events_committed`] once it has committed.
#[must_use = "pass it to `events_committed` after the commit"]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Recorded {
    /// The last revision recorded, if any event was.
    through: Option<i64>,
    /// Whether notifications were queued with them.
    notifies: bool,
}

/// A change of one submission's state, to be recorded.
#[derive(Debug, Clone)]
pub(super) struct StateChange {
    pub id: SubmissionId,
    pub owner: String,
    /// `None` when the submission was just stored in `state`.
    pub previous: Option<State>,
    pub state: State,
    pub message: Option<String>,
    /// Whether the submission names a `notify_url`: only then may the change need a
    /// notification written with it.
    pub notifies: bool,
}

impl StateChange {
    /// Whether the change took a submission out of the queue for another reason than its Job
    /// (a cancel, a failure): see [`Store::withdrawals`].
    fn withdraws(&self) -> bool {
        self.previous == Some(State::Queued)
            && !matches!(self.state, State::Pending | State::Running)
    }
}

/// A recorded state change, as a stream delivers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub revision: i64,
    pub id: SubmissionId,
    /// The user whose submission it is.
    pub owner: String,
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub previous: Option<State>,
    pub state: State,
    pub message: Option<String>,
    pub at: Timestamp,
}

/// What the event stream and webhooks send of a recorded change (everything but its owner).
impl From<Event> for StateEvent {
    fn from(event: Event) -> Self {
        StateEvent {
            revision: event.revision,
            id: event.id.to_string(),
            name: event.name,
            labels: event.labels,
            previous_state: event.previous,
            state: event.state,
            message: event.message,
            time: event.at,
        }
    }
}

/// Which events a stream wants. Empty criteria match everything.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events of this user's submissions.
    pub owner: Option<String>,
    /// Only of these submissions.
    pub ids: Vec<SubmissionId>,
    /// Only changes into these states.
    pub states: Vec<State>,
    /// Only of submissions carrying every one of these labels.
    pub labels: Vec<(String, String)>,
}

impl EventFilter {
    /// Whether `event` is one the filter lets through: the same test as a read's `WHERE`.
    pub fn matches(&self, event: &Event) -> bool {
        self.owner
            .as_ref()
            .is_none_or(|owner| *owner == event.owner)
            && (self.ids.is_empty() || self.ids.contains(&event.id))
            && (self.states.is_empty() || self.states.contains(&event.state))
            && self
                .labels
                .iter()
                .all(|(key, value)| event.labels.get(key) == Some(value))
    }
}

/// The revisions that exist: every one in `pruned..=latest` after `pruned` is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revisions {
    /// The newest committed revision (0 before the first event).
    pub latest: i64,
    /// The newest revision deleted by retention (0 if none was).
    pub pruned: i64,
}

/// What one read found after a revision.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The matching events, oldest first.
    pub events: Vec<Event>,
    /// Every revision up to this one was looked at: the next read starts after it.
    pub through: i64,
    /// Whether revisions past `through` were committed already (read again at once).
    pub more: bool,
    /// Whether events after the revision asked for were pruned: this page has a hole in it.
    pub pruned: bool,
}

impl Store {
    /// Records `changes` inside `tx`, under the next revisions, in their order. Call it as the
    /// transaction's last statement before the commit: from here the counter row is locked
    /// until the commit, and every other transaction that records events waits for it.
    pub(super) async fn record_events(
        &self,
        tx: &mut Tx<'_>,
        changes: &[StateChange],
    ) -> Result<Recorded> {
        if changes.is_empty() {
            return Ok(Recorded::default());
        }
        // Before the commit, so a dispatcher that reads the count after it sees it.
        if changes.iter().any(StateChange::withdraws) {
            self.withdrawals
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let count = i64::try_from(changes.len()).unwrap_or(i64::MAX);
        let row = sqlx::query(
            "UPDATE event_revisions SET revision = revision + $1 WHERE name = 'allocated' \
             RETURNING revision",
        )
        .bind(count)
        .fetch_one(&mut **tx)
        .await?;
        let last: i64 = row.try_get("revision")?;
        let at = Timestamp::now().as_millisecond();
        let mut revision = last - count;
        for chunk in changes.chunks(EVENT_CHUNK) {
            let mut builder = QueryBuilder::new(
                "INSERT INTO submission_events (revision, submission_id, owner, previous_state, \
                 state, message, at_ms) ",
            );
            builder.push_values(chunk, |mut row, change| {
                revision += 1;
                row.push_bind(revision)
                    .push_bind(change.id.to_string())
                    .push_bind(change.owner.clone())
                    .push_bind(change.previous.map(State::as_str))
                    .push_bind(change.state.as_str())
                    .push_bind(change.message.clone())
                    .push_bind(at);
            });
            self.built(&mut builder)?.execute(&mut **tx).await?;
        }
        // The notifications of these events, in the same transaction (see `webhooks`); most
        // changes are of submissions that notify nobody, and skip the statement.
        let notifies = changes.iter().any(|change| change.notifies);
        if notifies {
            self.record_deliveries(tx, last - count, last).await?;
        }
        Ok(Recorded {
            through: Some(last),
            notifies,
        })
    }

    /// Wakes this process's event feed after a commit that recorded events, and its webhook
    /// sender if the commit queued notifications: most commits queue none, and under a burst of
    /// submissions waking the sender for each was a statement per commit that found nothing.
    pub(super) fn events_committed(&self, recorded: Recorded) {
        if let Some(through) = recorded.through {
            // Transactions commit in revision order, so every revision up to the newest one
            // reported is committed, whichever commit reports first.
            self.events.send_if_modified(|newest| {
                let newer = through > *newest;
                *newest = (*newest).max(through);
                newer
            });
        }
        if recorded.notifies {
            self.deliveries
                .send_modify(|generation| *generation = generation.wrapping_add(1));
        }
    }

    /// The newest revision, and the newest one pruned.
    pub async fn revisions(&self) -> Result<Revisions> {
        let rows = sqlx::query("SELECT name, revision FROM event_revisions")
            .fetch_all(&self.pool)
            .await?;
        let mut revisions = Revisions {
            latest: 0,
            pruned: 0,
        };
        for row in rows {
            let name: String = row.try_get("name")?;
            let revision: i64 = row.try_get("revision")?;
            match name.as_str() {
                "allocated" => revisions.latest = revision,
                "pruned" => revisions.pruned = revision,
                _ => {}
            }
        }
        Ok(revisions)
    }

    /// Up to `limit` events after revision `after` that match `filter`, oldest first, looking
    /// through at most a window of revisions committed by now.
    pub async fn events_after(
        &self,
        after: i64,
        filter: &EventFilter,
        limit: u32,
    ) -> Result<EventPage> {
        // The counter first: every revision up to it is committed, so visible to the next
        // statement (see the module's doc).
        let Revisions { latest, pruned } = self.revisions().await?;
        let until = latest.min(after.saturating_add(SCAN_WINDOW));
        if until <= after {
            return Ok(EventPage {
                events: Vec::new(),
                through: after.max(0),
                more: false,
                pruned: after < pruned,
            });
        }
        let mut builder = QueryBuilder::new(
            "SELECT e.revision, e.submission_id, e.owner, e.previous_state, e.state, e.message, e.at_ms, \
             s.name FROM submission_events e JOIN submissions s ON s.id = e.submission_id \
             WHERE e.revision > ",
        );
        builder
            .push_bind(after)
            .push(" AND e.revision <= ")
            .push_bind(until);
        if let Some(owner) = &filter.owner {
            builder.push(" AND e.owner = ").push_bind(owner.clone());
        }
        if !filter.ids.is_empty() {
            builder.push(" AND e.submission_id IN (");
            let mut ids = builder.separated(", ");
            for id in &filter.ids {
                ids.push_bind(id.to_string());
            }
            builder.push(")");
        }
        if !filter.states.is_empty() {
            builder.push(" AND e.state IN (");
            let mut states = builder.separated(", ");
            for state in &filter.states {
                states.push_bind(state.as_str());
            }
            builder.push(")");
        }
        for (key, value) in &filter.labels {
            push_event_label(&mut builder, key, value);
        }
        builder
            .push(" ORDER BY e.revision LIMIT ")
            .push_bind(i64::from(limit));
        let rows = self.built(&mut builder)?.fetch_all(&self.pool).await?;
        let mut events = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>>>()?;
        self.attach_labels(&mut events).await?;
        let full = events.len() == limit as usize;
        // A full page stops at its last event; otherwise the whole window was looked at.
        let through = match events.last() {
            Some(last) if full => last.revision,
            _ => until,
        };
        Ok(EventPage {
            events,
            through,
            more: through < latest,
            pruned: after < pruned,
        })
    }

    /// Fills in each event's labels (a submission's labels never change).
    pub(super) async fn attach_labels(&self, events: &mut [Event]) -> Result<()> {
        let mut ids: Vec<SubmissionId> = events.iter().map(|event| event.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut labels: HashMap<String, BTreeMap<String, String>> = HashMap::new();
        for chunk in ids.chunks(500) {
            let mut builder = QueryBuilder::new(
                "SELECT submission_id, key, value FROM submission_labels WHERE submission_id IN (",
            );
            let mut separated = builder.separated(", ");
            for id in chunk {
                separated.push_bind(id.to_string());
            }
            builder.push(")");
            for row in self.built(&mut builder)?.fetch_all(&self.pool).await? {
                let id: String = row.try_get("submission_id")?;
                labels
                    .entry(id)
                    .or_default()
                    .insert(row.try_get("key")?, row.try_get("value")?);
            }
        }
        for event in events {
            if let Some(found) = labels.get(&event.id.to_string()) {
                event.labels = found.clone();
            }
        }
        Ok(())
    }

    /// Deletes the events recorded before `before`, and marks the newest of them pruned, so a
    /// client resuming before it is told its events are gone. Returns how many were deleted.
    pub async fn prune_events(&self, before: Timestamp) -> Result<u64> {
        let row =
            sqlx::query("SELECT MAX(revision) AS newest FROM submission_events WHERE at_ms < $1")
                .bind(before.as_millisecond())
                .fetch_one(&self.pool)
                .await?;
        let Some(newest) = row.try_get::<Option<i64>, _>("newest")? else {
            return Ok(0);
        };
        // Marked first: a client asking for what is about to go is refused, never served a
        // stream with a hole in it.
        {
            let _turn = self.turn_to_write().await;
            sqlx::query(
                "UPDATE event_revisions SET revision = $1 WHERE name = 'pruned' AND revision < $1",
            )
            .bind(newest)
            .execute(&self.pool)
            .await?;
        }
        self.delete_in_chunks(
            "DELETE FROM submission_events WHERE revision IN (SELECT revision FROM \
             submission_events WHERE revision <= $1 ORDER BY revision LIMIT $2)",
            newest,
        )
        .await
    }

    /// Runs `statement`, a DELETE of at most `$2` rows bounded by `$1`, until it deletes
    /// fewer than a chunk: a prune of many rows never holds the writer's turn for long.
    /// Returns how many rows were deleted.
    pub(super) async fn delete_in_chunks(
        &self,
        statement: &'static str,
        bound: i64,
    ) -> Result<u64> {
        let mut deleted = 0;
        loop {
            let _turn = self.turn_to_write().await;
            let result = sqlx::query(statement)
                .bind(bound)
                .bind(PRUNE_CHUNK)
                .execute(&self.pool)
                .await?;
            deleted += result.rows_affected();
            if result.rows_affected() < u64::try_from(PRUNE_CHUNK).unwrap_or(u64::MAX) {
                return Ok(deleted);
            }
        }
    }

    /// Wakes this process's event feed when another replica committed events: one read of the
    /// counter every `every` for the whole process, however many streams are open (a stream
    /// that read on its own would cost the database a statement a second each, idle or not).
    /// Runs until dropped.
    pub async fn watch_other_replicas(self, every: std::time::Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut known = None;
        loop {
            tick.tick().await;
            match self.revisions().await {
                Ok(Revisions { latest, .. }) => {
                    if known != Some(latest) {
                        known = Some(latest);
                        // Another replica's commits may have queued notifications too.
                        self.events_committed(Recorded {
                            through: Some(latest),
                            notifies: true,
                        });
                    }
                }
                Err(error) => tracing::debug!(%error, "could not read the newest event revision"),
            }
        }
    }

    /// Prunes the events older than `retention` now and every hour, and the webhook deliveries
    /// given up longer ago than that; runs until dropped.
    pub async fn keep_events_pruned(self, retention: std::time::Duration) {
        let mut hourly = tokio::time::interval(std::time::Duration::from_secs(3600));
        hourly.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            hourly.tick().await;
            let Ok(cutoff) = Timestamp::now().checked_sub(
                jiff::SignedDuration::try_from(retention).unwrap_or(jiff::SignedDuration::MAX),
            ) else {
                continue;
            };
            match self.prune_events(cutoff).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "pruned old submission events"),
                Err(error) => tracing::warn!(%error, "could not prune old submission events"),
            }
            match self.prune_deliveries(cutoff).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "pruned given-up webhook deliveries"),
                Err(error) => tracing::warn!(%error, "could not prune given-up webhook deliveries"),
            }
        }
    }
}

/// The event of a row with the columns `revision, submission_id, owner, previous_state, state,
/// message, at_ms, name`; its labels are left for [`Store::attach_labels`].
/// ` AND` the submission of event `e` carries label `key=value`.
pub(super) fn push_event_label(builder: &mut QueryBuilder<Any>, key: &str, value: &str) {
    builder
        .push(
            " AND EXISTS (SELECT 1 FROM submission_labels l \
             WHERE l.submission_id = e.submission_id AND l.key = ",
        )
        .push_bind(key.to_owned())
        .push(" AND l.value = ")
        .push_bind(value.to_owned())
        .push(")");
}

pub(super) fn event_from_row(row: &sqlx::any::AnyRow) -> Result<Event> {
    let revision: i64 = row.try_get("revision")?;
    let corrupt = |reason: String| StorageError::Corrupt {
        id: format!("event {revision}"),
        reason,
    };
    let id: String = row.try_get("submission_id")?;
    let state = |text: String| State::from_str(&text).map_err(|error| corrupt(error.to_string()));
    let at: i64 = row.try_get("at_ms")?;
    Ok(Event {
        revision,
        id: SubmissionId::from_str(&id).map_err(|error| corrupt(error.to_string()))?,
        owner: row.try_get("owner")?,
        name: row.try_get("name")?,
        labels: BTreeMap::new(),
        previous: row
            .try_get::<Option<String>, _>("previous_state")?
            .map(state)
            .transpose()?,
        state: state(row.try_get("state")?)?,
        message: row.try_get("message")?,
        at: Timestamp::from_millisecond(at).map_err(|error| corrupt(error.to_string()))?,
    })
}
