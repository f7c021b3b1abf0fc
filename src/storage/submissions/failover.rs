//! Failover: the live submissions of a cluster that has not answered for longer than
//! `--cluster-lost-after` are run again elsewhere (a new Job, counted in `reruns`), and the
//! Jobs they leave there are kept in `abandoned_jobs` until that cluster answers again and
//! they are deleted, so that once both answer a submission has one live Job.

use jiff::Timestamp;
use sqlx::Row;

use super::rerun::{RerunRow, write_rerun};
use super::row::{columns, from_row};
use crate::domain::{JobRef, State, Submission, SubmissionId};
use crate::storage::error::{Result, StorageError};
use crate::storage::store::Store;

impl Store {
    /// Queues again, each as its next run, the live (pending or running) submissions of
    /// `namespace` whose Jobs are in `cluster` and that are not pinned to it, saying
    /// `message`; records their Jobs there as abandoned. Returns them as they are now.
    pub async fn fail_over(
        &self,
        namespace: &str,
        cluster: &str,
        message: &str,
    ) -> Result<Vec<Submission>> {
        let turn = self.turn_to_write().await;
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM submissions WHERE cluster = $1 AND state IN ('pending', 'running') \
             AND namespace = $2 AND pin IS NULL ORDER BY id"
        ))
        .bind(cluster.to_owned())
        .bind(namespace.to_owned())
        .fetch_all(&mut *tx)
        .await?;
        let now = Timestamp::now().to_string();
        let mut moved = Vec::new();
        let mut changes = Vec::new();
        for row in &rows {
            let (submission, version) = from_row(row)?;
            let next = RerunRow::new(
                &submission,
                submission.spec.clone(),
                State::Queued,
                Some(message.to_owned()),
                0,
            )
            .keeping_memory_reruns(submission.oom_reruns);
            if !write_rerun(&mut tx, &next, submission.id, version).await? {
                // Changed since it was read (it ended meanwhile): left as it is.
                continue;
            }
            sqlx::query("UPDATE submissions SET cluster = NULL WHERE id = $1")
                .bind(submission.id.to_string())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO abandoned_jobs (cluster, job_name, submission_id, abandoned_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (cluster, job_name) DO NOTHING",
            )
            .bind(cluster.to_owned())
            .bind(submission.job_name.clone())
            .bind(submission.id.to_string())
            .bind(now.clone())
            .execute(&mut *tx)
            .await?;
            changes.push(next.change(&submission));
            let mut now_queued = next.into_submission(&submission);
            now_queued.cluster = None;
            moved.push(now_queued);
        }
        if moved.is_empty() {
            tx.rollback().await?;
            return Ok(moved);
        }
        let recorded = self.record_events(&mut tx, &changes).await?;
        tx.commit().await?;
        drop(turn);
        self.events_committed(recorded);
        self.wake_dispatcher();
        Ok(moved)
    }

    /// The Jobs abandoned in `cluster`'s `namespace` (the only one failover moves work from),
    /// to delete once it answers again.
    pub async fn abandoned_in(&self, cluster: &str, namespace: &str) -> Result<Vec<JobRef>> {
        let rows = sqlx::query(
            "SELECT job_name, submission_id FROM abandoned_jobs WHERE cluster = $1 \
             ORDER BY job_name",
        )
        .bind(cluster.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("submission_id")?;
                let id: SubmissionId =
                    id.parse()
                        .map_err(|error: uuid::Error| StorageError::Corrupt {
                            id: id.clone(),
                            reason: error.to_string(),
                        })?;
                Ok(JobRef {
                    id,
                    job_name: row.try_get("job_name")?,
                    cluster: Some(cluster.to_owned()),
                    namespace: namespace.to_owned(),
                })
            })
            .collect()
    }

    /// Forgets an abandoned Job: it is deleted.
    pub async fn forget_abandoned(&self, cluster: &str, job_name: &str) -> Result<()> {
        let _turn = self.turn_to_write().await;
        sqlx::query("DELETE FROM abandoned_jobs WHERE cluster = $1 AND job_name = $2")
            .bind(cluster.to_owned())
            .bind(job_name.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
