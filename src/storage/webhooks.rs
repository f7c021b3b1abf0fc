//! The `webhook_deliveries` table: the outbox of notifications still to be sent to the
//! `notify_url` of submissions that named one.
//!
//! A row is written for each event of such a submission (all of them, or only those into a
//! final state) by the statement that records the event, in its transaction
//! ([`Store::record_events`] calls [`Store::record_deliveries`]): a notification exists exactly
//! when its change was committed, and a restart finds every one not yet sent in the table. An
//! outbox rather than a cursor over the events table, because each delivery has its own
//! attempts and backoff, and one receiver that is down must not hold back the others.
//!
//! Senders take rows with a claim ([`Store::claim_deliveries`]): a random lease id and a time
//! it lapses, written by a conditional update that only one replica's statement can win, so two
//! replicas on one Postgres never both send a delivery; a claim whose sender died lapses and the
//! row is taken again (the one duplicate at-least-once delivery allows). A row is only taken
//! when no earlier row of its submission is pending, so each submission's notifications are
//! sent in revision order, each after the one before it was delivered or given up.
//!
//! A delivered row is deleted at once; a given-up row is kept, for an operator to look into,
//! as long as events are (`--event-retention`), then pruned with them
//! ([`Store::prune_deliveries`]).

use std::sync::LazyLock;

use jiff::Timestamp;
use sqlx::{Any, Row};

use super::error::Result;
use super::events::Event;
use super::events::event_from_row;
use super::store::Store;
use crate::domain::State;

type Tx<'t> = sqlx::Transaction<'t, Any>;

/// The statement that writes the deliveries of a run of events, built once: the final states
/// are our own text.
static RECORD_DELIVERIES: LazyLock<String> = LazyLock::new(|| {
    let finals: Vec<String> = State::FINAL
        .iter()
        .map(|state| format!("'{}'", state.as_str()))
        .collect();
    format!(
        "INSERT INTO webhook_deliveries (revision, submission_id, next_attempt_at) \
         SELECT e.revision, e.submission_id, $1 FROM submission_events e \
         JOIN submissions s ON s.id = e.submission_id \
         WHERE e.revision > $2 AND e.revision <= $3 AND s.notify_url IS NOT NULL \
         AND (s.notify = 'all' OR e.state IN ({}))",
        finals.join(", ")
    )
});

/// A notification a sender claimed, ready to send.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub revision: i64,
    /// The claim's id: only its holder may record the outcome.
    pub lease: String,
    /// Failed attempts before this one.
    pub attempts: i64,
    pub url: String,
    /// The signing secret of the submission's token (`None`: it has none, so cannot be sent).
    pub secret: Option<String>,
    /// The event to send; `None` if retention deleted it before it could be sent.
    pub event: Option<Event>,
}

/// What became of one attempt.
#[derive(Debug, Clone)]
pub enum Attempt {
    Delivered,
    /// Failed; try again at this time.
    Retry {
        at: Timestamp,
        error: String,
    },
    /// Failed for the last time.
    GiveUp {
        error: String,
    },
}

impl Store {
    /// Writes the deliveries of the events `after + 1 ..= through` just recorded in `tx`, for
    /// the submissions that asked to be notified of them.
    pub(super) async fn record_deliveries(
        &self,
        tx: &mut Tx<'_>,
        after: i64,
        through: i64,
    ) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(RECORD_DELIVERIES.as_str()))
            .bind(Timestamp::now().as_millisecond())
            .bind(after)
            .bind(through)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Claims up to `limit` deliveries due at `now`, oldest first, each the earliest pending one
    /// of its submission and not claimed by a live sender; each claim lapses after `lease`.
    pub async fn claim_deliveries(
        &self,
        now: Timestamp,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<Delivery>> {
        let now_ms = now.as_millisecond();
        let until = now_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let rows = sqlx::query(
            "SELECT d.revision, d.attempts, s.notify_url, t.webhook_secret, e.submission_id, \
             e.owner, e.previous_state, e.state, e.message, e.at_ms, s.name \
             FROM webhook_deliveries d \
             JOIN submissions s ON s.id = d.submission_id \
             LEFT JOIN tokens t ON t.id = s.notify_token \
             LEFT JOIN submission_events e ON e.revision = d.revision \
             WHERE d.failed_at IS NULL AND d.next_attempt_at <= $1 \
             AND (d.leased_until IS NULL OR d.leased_until <= $1) \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p \
                 WHERE p.submission_id = d.submission_id AND p.failed_at IS NULL \
                 AND p.revision < d.revision) \
             ORDER BY d.revision LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let revision: i64 = row.try_get("revision")?;
            let lease = uuid::Uuid::new_v4().to_string();
            let won = {
                let _turn = self.turn_to_write().await;
                // Only one statement can move a lapsed (or never taken) claim forward: on
                // Postgres a second one waits for the first's commit and then finds the row
                // claimed.
                sqlx::query(
                    "UPDATE webhook_deliveries SET lease = $1, leased_until = $2 \
                     WHERE revision = $3 AND failed_at IS NULL \
                     AND (leased_until IS NULL OR leased_until <= $4)",
                )
                .bind(lease.clone())
                .bind(until)
                .bind(revision)
                .bind(now_ms)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1
            };
            if !won {
                continue;
            }
            let has_event = row.try_get::<Option<String>, _>("submission_id")?.is_some();
            claimed.push(Delivery {
                revision,
                lease,
                attempts: row.try_get("attempts")?,
                url: row.try_get("notify_url")?,
                secret: row.try_get("webhook_secret")?,
                event: if has_event {
                    Some(event_from_row(&row)?)
                } else {
                    None
                },
            });
        }
        let mut events: Vec<Event> = claimed
            .iter()
            .filter_map(|delivery| delivery.event.clone())
            .collect();
        self.attach_labels(&mut events).await?;
        for delivery in &mut claimed {
            if let Some(event) = &mut delivery.event
                && let Some(labelled) = events.iter().find(|found| found.revision == event.revision)
            {
                event.labels = labelled.labels.clone();
            }
        }
        Ok(claimed)
    }

    /// Records what became of an attempt at a delivery this sender claimed with `lease`. False
    /// if the claim had lapsed and another sender took the row meanwhile.
    pub async fn record_attempt(&self, delivery: &Delivery, attempt: &Attempt) -> Result<bool> {
        let _turn = self.turn_to_write().await;
        let now = Timestamp::now().as_millisecond();
        let query = match attempt {
            Attempt::Delivered => {
                sqlx::query("DELETE FROM webhook_deliveries WHERE revision = $1 AND lease = $2")
                    .bind(delivery.revision)
                    .bind(delivery.lease.clone())
            }
            Attempt::Retry { at, error } => sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $3, \
                 last_error = $4, lease = NULL, leased_until = NULL \
                 WHERE revision = $1 AND lease = $2",
            )
            .bind(delivery.revision)
            .bind(delivery.lease.clone())
            .bind(at.as_millisecond())
            .bind(error.clone()),
            Attempt::GiveUp { error } => sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, failed_at = $3, \
                 last_error = $4, lease = NULL, leased_until = NULL \
                 WHERE revision = $1 AND lease = $2",
            )
            .bind(delivery.revision)
            .bind(delivery.lease.clone())
            .bind(now)
            .bind(error.clone()),
        };
        Ok(query.execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Deletes the deliveries given up before `before`. Returns how many were deleted.
    pub async fn prune_deliveries(&self, before: Timestamp) -> Result<u64> {
        self.delete_in_chunks(
            "DELETE FROM webhook_deliveries WHERE revision IN (SELECT revision FROM \
             webhook_deliveries WHERE failed_at < $1 ORDER BY revision LIMIT $2)",
            before.as_millisecond(),
        )
        .await
    }

    /// How many deliveries are still to be sent, and how many were given up.
    pub async fn delivery_counts(&self) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, COUNT(failed_at) AS failed FROM webhook_deliveries",
        )
        .fetch_one(&self.pool)
        .await?;
        let total: i64 = row.try_get("total")?;
        let failed: i64 = row.try_get("failed")?;
        Ok((total - failed, failed))
    }
}
