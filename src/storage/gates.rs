//! Kueue's admission gates on the Jobs of submissions under a limit of concurrent Jobs
//! ([`Claiming::ThroughKueue`](super::dispatch::Claiming)): which gates may be lifted now.
//!
//! A gated Job waits in its Kueue queue, where Kueue will not admit it, and counts against no
//! limit. The gates are lifted oldest first, under the same lock row as the claims, while its
//! user's and batch group's Jobs without a gate (admitted, or free to be) leave room: a limit
//! counts only what Kueue may run, and holds across replicas.

use std::collections::HashMap;

use jiff::Timestamp;
use sqlx::{QueryBuilder, Row};

use super::dispatch::{Queued, lease_millis, take_turn};
use super::error::Result;
use super::limits::take_place;
use super::store::Store;
use super::submissions::row::{columns, from_row};

/// Gated submissions looked at per call, oldest first.
const LOOKED_AT: i64 = 256;

/// What counts against a limit where the limits are at the gate: the live Jobs whose gate is
/// off (a claim's Job is gated or not by the time it counts).
const UNGATED: [&str; 1] = ["state IN ('pending', 'running') AND gated = 0"];

impl Store {
    /// Marks the gated submissions of `namespace` whose limits have room (a user's limit the
    /// token's, or `user_default`) as no longer gated, oldest first, and returns them: their
    /// Jobs' gates are to be lifted. Clears the mark of gated submissions that ended.
    pub async fn open_gates(
        &self,
        namespace: &str,
        now: Timestamp,
        user_default: Option<i64>,
    ) -> Result<Vec<Queued>> {
        // Nothing marked (the usual case without limits): no turn taken, nothing written.
        let marked = sqlx::query(
            "SELECT 1 AS marked FROM submissions WHERE gated = 1 AND namespace = $1 LIMIT 1",
        )
        .bind(namespace.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        if marked.is_none() {
            return Ok(Vec::new());
        }
        let _turn = self.turn_to_write().await;
        let mut tx = self.begin_write().await?;
        take_turn(&mut tx, namespace, now).await?;
        sqlx::query(
            "UPDATE submissions SET gated = 0 WHERE gated = 1 AND namespace = $1 \
             AND state NOT IN ('queued', 'pending', 'running')",
        )
        .bind(namespace.to_owned())
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            ", dispatch_attempts FROM submissions WHERE gated = 1 AND namespace = $1 \
             AND state IN ('pending', 'running') ORDER BY id LIMIT $2"
        ))
        .bind(namespace.to_owned())
        .bind(LOOKED_AT)
        .fetch_all(&mut *tx)
        .await?;
        let gated = rows
            .iter()
            .map(|row| {
                Ok(Queued {
                    submission: from_row(row)?.0,
                    attempts: row.try_get("dispatch_attempts")?,
                    // Their Jobs exist: no create follows.
                    withdrawals: 0,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (mut users, mut groups) = (HashMap::new(), HashMap::new());
        self.count_in(
            &mut tx,
            &gated,
            user_default,
            &UNGATED,
            now.as_millisecond() - lease_millis(),
            &mut users,
            &mut groups,
        )
        .await?;
        let opened: Vec<Queued> = gated
            .into_iter()
            .filter(|queued| {
                take_place(&queued.submission, user_default, &mut users, &mut groups).is_ok()
            })
            .collect();
        for chunk in opened.chunks(500) {
            let mut builder = QueryBuilder::new("UPDATE submissions SET gated = 0 WHERE id IN (");
            let mut separated = builder.separated(", ");
            for queued in chunk {
                separated.push_bind(queued.submission.id.to_string());
            }
            builder.push(")");
            self.built(&mut builder)?.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(opened)
    }

    /// Puts a gate back in the books: its Job's gate could not be lifted (the API server did
    /// not answer); the next round tries again.
    pub async fn close_gate(&self, queued: &Queued) -> Result<()> {
        let _turn = self.turn_to_write().await;
        sqlx::query(
            "UPDATE submissions SET gated = 1 WHERE id = $1 AND job_name = $2 \
             AND state IN ('pending', 'running')",
        )
        .bind(queued.submission.id.to_string())
        .bind(queued.submission.job_name.clone())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
