//! Where a submission that waits in the service's own queue stands: what is ahead of it, and
//! what holds it (its user's or batch's active Jobs, the submissions it depends on). Read when
//! one submission is shown, never on the dispatcher's path.

use jiff::Timestamp;
use sqlx::{QueryBuilder, Row};

use super::dispatch::lease_millis;
use super::error::Result;
use super::placing::push_active;
use super::store::Store;
use crate::domain::{State, SubmissionId};

/// A submission another one depends on and that has not succeeded yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub id: SubmissionId,
    pub name: Option<String>,
    pub state: State,
}

impl Store {
    /// Jobs that count against the limit of the user `owner` now: the live ones and those
    /// being created.
    pub async fn active_of_user(&self, owner: &str, now: Timestamp) -> Result<i64> {
        self.active_counted("owner", owner, now).await
    }

    /// Jobs that count against the cap of the cluster `cluster` now.
    pub async fn active_in_cluster(&self, cluster: &str, now: Timestamp) -> Result<i64> {
        self.active_counted("cluster", cluster, now).await
    }

    /// Jobs that count against the limit of the batch `group` now.
    pub async fn active_of_group(&self, group: &str, now: Timestamp) -> Result<i64> {
        self.active_counted("group_id", group, now).await
    }

    /// Active Jobs of the rows whose `column` (one of ours, never a request's) is `key`.
    async fn active_counted(&self, column: &'static str, key: &str, now: Timestamp) -> Result<i64> {
        let mut builder = QueryBuilder::new("SELECT COUNT(*) AS active FROM submissions WHERE ");
        builder
            .push(column)
            .push(" = ")
            .push_bind(key.to_owned())
            .push(" AND ");
        push_active(&mut builder, now.as_millisecond() - lease_millis());
        let row = self.built(&mut builder)?.fetch_one(&self.pool).await?;
        Ok(row.try_get("active")?)
    }

    /// How many queued submissions of `owner` in `namespace` were sent before `id` (ids sort
    /// in submit order): its place in the service's own queue, 0 first.
    pub async fn queued_ahead(
        &self,
        namespace: &str,
        owner: &str,
        id: SubmissionId,
    ) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS ahead FROM submissions \
             WHERE owner = $1 AND state = 'queued' AND id < $2 AND namespace = $3",
        )
        .bind(owner.to_owned())
        .bind(id.to_string())
        .bind(namespace.to_owned())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("ahead")?)
    }

    /// The submissions `id` depends on that have not succeeded, oldest first.
    pub async fn unfinished_dependencies(&self, id: SubmissionId) -> Result<Vec<Unfinished>> {
        let rows = sqlx::query(
            "SELECT s.id AS id, s.name AS name, s.state AS state \
             FROM submission_dependencies d JOIN submissions s ON s.id = d.depends_on \
             WHERE d.submission_id = $1 AND s.state <> 'succeeded' ORDER BY s.id",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                let state: String = row.try_get("state")?;
                let corrupt = |reason: String| super::error::StorageError::Corrupt {
                    id: id.clone(),
                    reason,
                };
                Ok(Unfinished {
                    id: id
                        .parse()
                        .map_err(|error: uuid::Error| corrupt(error.to_string()))?,
                    name: row.try_get("name")?,
                    state: state
                        .parse()
                        .map_err(|error: crate::domain::UnknownState| corrupt(error.to_string()))?,
                })
            })
            .collect()
    }
}
