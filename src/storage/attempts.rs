//! The `pod_attempts` table: each pod of a submission as it ended, in the order the pods were
//! made.

use jiff::Timestamp;
use sqlx::Row;

use super::error::{Result, StorageError};
use super::store::Store;
use crate::domain::{PodEnd, SubmissionId};

impl Store {
    /// Keeps how a pod ended (replacing an earlier record of the same pod).
    pub async fn record_pod_end(
        &self,
        id: SubmissionId,
        pod_created_at: Timestamp,
        attempt: &PodEnd,
    ) -> Result<()> {
        let time = |at: Option<Timestamp>| at.map(|at| at.to_string());
        let _turn = self.turn_to_write().await;
        sqlx::query(
            "INSERT INTO pod_attempts (submission_id, pod_name, pod_created_at, started_at, \
             finished_at, exit_code, reason, memory, disrupted) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (submission_id, pod_name) DO UPDATE SET started_at = $4, \
             finished_at = $5, exit_code = $6, reason = $7, memory = $8, disrupted = $9",
        )
        .bind(id.to_string())
        .bind(attempt.pod.clone())
        .bind(pod_created_at.to_string())
        .bind(time(attempt.started_at))
        .bind(time(attempt.finished_at))
        .bind(attempt.exit_code.map(i64::from))
        .bind(attempt.reason.clone())
        .bind(attempt.memory.clone())
        .bind(i64::from(attempt.disrupted))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A submission's pods as they ended, oldest first.
    pub async fn pod_ends(&self, id: SubmissionId) -> Result<Vec<PodEnd>> {
        let rows = sqlx::query(
            "SELECT pod_name, started_at, finished_at, exit_code, reason, memory, disrupted \
             FROM pod_attempts WHERE submission_id = $1 ORDER BY pod_created_at, pod_name",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let corrupt = |reason: String| StorageError::Corrupt {
            id: id.to_string(),
            reason,
        };
        let time = |row: &sqlx::any::AnyRow, column: &str| -> Result<Option<Timestamp>> {
            let text: Option<String> = row.try_get(column)?;
            text.map(|text| {
                text.parse()
                    .map_err(|error| corrupt(format!("{column}: {error}")))
            })
            .transpose()
        };
        rows.iter()
            .map(|row| {
                let exit_code: Option<i64> = row.try_get("exit_code")?;
                let disrupted: i64 = row.try_get("disrupted")?;
                Ok(PodEnd {
                    pod: row.try_get("pod_name")?,
                    started_at: time(row, "started_at")?,
                    finished_at: time(row, "finished_at")?,
                    exit_code: exit_code
                        .map(i32::try_from)
                        .transpose()
                        .map_err(|error| corrupt(format!("exit_code: {error}")))?,
                    reason: row.try_get("reason")?,
                    memory: row.try_get("memory")?,
                    disrupted: disrupted != 0,
                })
            })
            .collect()
    }
}
