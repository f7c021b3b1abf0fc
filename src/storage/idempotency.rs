//! The `idempotency_keys` table: an `Idempotency-Key`, the fingerprint of the body it first came
//! with and the submissions that request stored, so a retry gets the same answer and never stores
//! twice, even when retries race each other.

use std::str::FromStr;

use jiff::Timestamp;
use sqlx::Row;

use super::error::{Result, StorageError};
use super::store::Store;
use crate::domain::{Submission, SubmissionId};

/// An `Idempotency-Key` and the fingerprint of the request body it came with.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub fingerprint: String,
}

/// What an idempotent insert did.
#[derive(Debug)]
pub enum Stored {
    /// Stored now, as these submissions.
    New(Vec<Submission>),
    /// The key was used before with the same body: these are that request's submissions.
    Replayed(Vec<Submission>),
    /// The key was used before with another body.
    KeyReused,
}

impl Store {
    /// Stores new submissions under an idempotency key, unless the key was used before: then
    /// nothing is stored and the earlier request's submissions are returned (same body) or the
    /// reuse is reported (another body). Concurrent requests with one key store once.
    pub async fn insert_idempotent(
        &self,
        key: &IdempotencyKey,
        mut submissions: Vec<Submission>,
    ) -> Result<Stored> {
        let ids: Vec<String> = submissions.iter().map(|s| s.id.to_string()).collect();
        let ids = serde_json::to_string(&ids).map_err(|error| StorageError::Corrupt {
            id: "new".into(),
            reason: error.to_string(),
        })?;
        let turn = self.turn_to_write().await;
        let mut tx = self.begin_write().await?;
        if claim_key(&mut tx, key, ids).await? {
            let recorded = self.insert_rows(&mut tx, &mut submissions).await?;
            tx.commit().await?;
            self.wal.wrote(submissions.len());
            self.dispatchable(&submissions);
            self.events_committed(recorded);
            return Ok(Stored::New(submissions));
        }
        tx.rollback().await?;
        // The replay only reads: this process's other writers need not wait for it.
        drop(turn);

        let Some(ids_text) = self.stored_under(key).await? else {
            return Ok(Stored::KeyReused);
        };
        let corrupt = |reason: String| StorageError::Corrupt {
            id: key.key.clone(),
            reason,
        };
        let ids: Vec<String> =
            serde_json::from_str(&ids_text).map_err(|error| corrupt(error.to_string()))?;
        let mut earlier = Vec::with_capacity(ids.len());
        for id in ids {
            let id = SubmissionId::from_str(&id).map_err(|error| corrupt(error.to_string()))?;
            let submission = self
                .get(id)
                .await?
                .ok_or_else(|| corrupt(format!("submission {id} is missing")))?;
            earlier.push(submission);
        }
        Ok(Stored::Replayed(earlier))
    }
}

impl Store {
    /// What the request that first used `key` recorded, if it was the same request; `None`
    /// if it was another.
    pub(super) async fn stored_under(&self, key: &IdempotencyKey) -> Result<Option<String>> {
        let row =
            sqlx::query("SELECT request_hash, submission_ids FROM idempotency_keys WHERE key = $1")
                .bind(key.key.clone())
                .fetch_one(&self.pool)
                .await?;
        let hash: String = row.try_get("request_hash")?;
        if hash != key.fingerprint {
            return Ok(None);
        }
        Ok(Some(row.try_get("submission_ids")?))
    }
}

/// Claims `key` inside `tx` for a request that records `answer`; `false` if it was used
/// before (concurrent requests with one key claim it once).
pub(super) async fn claim_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key: &IdempotencyKey,
    answer: String,
) -> Result<bool> {
    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (key, request_hash, submission_ids, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING",
    )
    .bind(key.key.clone())
    .bind(key.fingerprint.clone())
    .bind(answer)
    .bind(Timestamp::now().to_string())
    .execute(&mut **tx)
    .await?;
    Ok(claimed.rows_affected() == 1)
}
