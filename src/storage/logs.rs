//! The `pod_logs` table: the log of each finished pod, archived (as base64 text, so both
//! databases keep the exact bytes) so that it can still be served once Kubernetes has deleted
//! the pod.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::Timestamp;
use sqlx::Row;

use super::error::{Result, StorageError};
use super::store::Store;
use crate::domain::SubmissionId;

/// A pod's log as archived when the pod finished.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedLog {
    pub pod_name: String,
    pub content: Vec<u8>,
    /// Bytes dropped from the start because the log was larger than the archive keeps.
    pub truncated_bytes: u64,
}

impl Store {
    /// Keeps a pod's log (replacing an earlier copy of the same pod's log).
    pub async fn archive_log(
        &self,
        id: SubmissionId,
        pod_created_at: Timestamp,
        log: &ArchivedLog,
    ) -> Result<()> {
        let _turn = self.turn_to_write().await;
        sqlx::query(
            "INSERT INTO pod_logs (submission_id, pod_name, pod_created_at, content_base64, \
             truncated_bytes, archived_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (submission_id, pod_name) DO UPDATE SET content_base64 = $4, \
             truncated_bytes = $5, archived_at = $6",
        )
        .bind(id.to_string())
        .bind(log.pod_name.clone())
        .bind(pod_created_at.to_string())
        .bind(BASE64.encode(&log.content))
        .bind(i64::try_from(log.truncated_bytes).unwrap_or(i64::MAX))
        .bind(Timestamp::now().to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The names of the pods of a submission whose log is archived.
    pub async fn archived_pods(&self, id: SubmissionId) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT pod_name FROM pod_logs WHERE submission_id = $1")
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok(row.try_get("pod_name")?))
            .collect()
    }

    /// An archived log: of the named pod, or of the newest pod whose name starts with
    /// `run_prefix` (a run's; `""`: any).
    pub async fn archived_log(
        &self,
        id: SubmissionId,
        pod_name: Option<&str>,
        run_prefix: &str,
    ) -> Result<Option<ArchivedLog>> {
        let row = sqlx::query(
            "SELECT pod_name, content_base64, truncated_bytes FROM pod_logs \
             WHERE submission_id = $1 AND ($2 = '' OR pod_name = $2) \
             AND ($2 <> '' OR pod_name LIKE $3) \
             ORDER BY pod_created_at DESC, pod_name DESC LIMIT 1",
        )
        .bind(id.to_string())
        .bind(pod_name.unwrap_or_default().to_owned())
        .bind(format!("{run_prefix}%"))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let pod_name: String = row.try_get("pod_name")?;
        let encoded: String = row.try_get("content_base64")?;
        let content = BASE64
            .decode(encoded)
            .map_err(|error| StorageError::Corrupt {
                id: format!("{id}/{pod_name}"),
                reason: error.to_string(),
            })?;
        let truncated: i64 = row.try_get("truncated_bytes")?;
        Ok(Some(ArchivedLog {
            pod_name,
            content,
            truncated_bytes: u64::try_from(truncated).unwrap_or_default(),
        }))
    }
}
