//! The `tes_tasks` and `tes_task_tags` tables: GA4GH TES tasks, each stored with the
//! submission that runs it (same id, one transaction), and read back with it, one at a time
//! or as filtered newest-first pages.

use sqlx::{Any, QueryBuilder, Row};

use crate::domain::tes::document::Task;
use crate::domain::tes::list::ListQuery;
use crate::domain::tes::runs::PodReport;
use crate::domain::tes::state::{EXECUTOR_FAILURE, Ours, ours};
use crate::domain::{State, Submission, SubmissionId};
use crate::storage::error::{Result, StorageError};
use crate::storage::store::Store;
use crate::storage::submissions::row::{columns, from_row};

/// A stored task: the submission that runs it, its document, and what the service said of it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTask {
    pub submission: Submission,
    pub document: Task,
    /// Lines for the task's `system_logs` (a backend parameter that was dropped).
    pub notes: Vec<String>,
    /// What the service's own steps of the task's last pod said.
    pub report: PodReport,
}

impl Store {
    /// Stores a task: its submission, its document, the service's notes and its tags, all or
    /// none.
    pub async fn insert_task(
        &self,
        submission: Submission,
        document: &Task,
        notes: &[String],
    ) -> Result<Submission> {
        let corrupt = |error: serde_json::Error| StorageError::Corrupt {
            id: submission.id.to_string(),
            reason: error.to_string(),
        };
        let text = serde_json::to_string(document).map_err(corrupt)?;
        let notes = serde_json::to_string(notes).map_err(corrupt)?;
        let mut submissions = [submission];
        let _turn = self.turn_to_write().await;
        let mut tx = self.begin_write().await?;
        let recorded = self.insert_rows(&mut tx, &mut submissions).await?;
        let [submission] = submissions;
        let id = submission.id.to_string();
        sqlx::query(
            "INSERT INTO tes_tasks (submission_id, name_hex, document, notes) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id.clone())
        .bind(hex(document.name.as_deref().unwrap_or_default()))
        .bind(text)
        .bind(notes)
        .execute(&mut *tx)
        .await?;
        let tags = document.tags.clone().unwrap_or_default();
        if !tags.is_empty() {
            let mut builder =
                QueryBuilder::new("INSERT INTO tes_task_tags (submission_id, key, value) ");
            builder.push_values(tags, |mut row, (key, value)| {
                row.push_bind(id.clone()).push_bind(key).push_bind(value);
            });
            self.built(&mut builder)?.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.wal.wrote(1);
        self.dispatchable(std::slice::from_ref(&submission));
        self.events_committed(recorded);
        Ok(submission)
    }

    /// Keeps what the service's own steps of a task's last pod said.
    pub async fn record_pod_report(&self, id: SubmissionId, report: &PodReport) -> Result<()> {
        let text = serde_json::to_string(report).map_err(|error| StorageError::Corrupt {
            id: id.to_string(),
            reason: error.to_string(),
        })?;
        let _turn = self.turn_to_write().await;
        sqlx::query("UPDATE tes_tasks SET pod_report = $1 WHERE submission_id = $2")
            .bind(text)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The task `id`, if there is one (a submission that is no task is none).
    pub async fn get_task(&self, id: SubmissionId) -> Result<Option<StoredTask>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            ", t.document, t.notes, t.pod_report FROM tes_tasks t JOIN submissions s ON s.id = t.submission_id \
             WHERE t.submission_id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| task_from_row(&row)).transpose()
    }

    /// One page of the tasks `query` asks for, newest first; only `owner`'s if given.
    pub async fn list_tasks(
        &self,
        owner: Option<&str>,
        query: &ListQuery,
    ) -> Result<Vec<StoredTask>> {
        let mut builder = QueryBuilder::new(concat!(
            "SELECT ",
            columns!(),
            ", t.document, t.notes, t.pod_report FROM tes_tasks t JOIN submissions s ON s.id = t.submission_id \
             WHERE 1 = 1"
        ));
        if let Some(owner) = owner {
            builder.push(" AND s.owner = ").push_bind(owner.to_owned());
        }
        if let Some(prefix) = &query.name_prefix {
            let low = hex(prefix);
            let high = format!("{low}g");
            builder.push(" AND t.name_hex >= ").push_bind(low);
            builder.push(" AND t.name_hex < ").push_bind(high);
        }
        if let Some(state) = query.state {
            push_state(&mut builder, ours(state));
        }
        for (key, value) in &query.tags {
            builder
                .push(" AND EXISTS (SELECT 1 FROM tes_task_tags g WHERE g.submission_id = t.submission_id AND g.key = ")
                .push_bind(key.clone());
            if let Some(value) = value {
                builder.push(" AND g.value = ").push_bind(value.clone());
            }
            builder.push(")");
        }
        if let Some(after) = query.after {
            builder
                .push(" AND t.submission_id < ")
                .push_bind(after.to_string());
        }
        builder
            .push(" ORDER BY t.submission_id DESC LIMIT ")
            .push_bind(i64::from(query.page_size) + 1);
        let rows = self.built(&mut builder)?.fetch_all(&self.pool).await?;
        rows.iter().map(task_from_row).collect()
    }
}

fn push_state(builder: &mut QueryBuilder<Any>, ours: Ours) {
    match ours {
        Ours::Nothing => {
            builder.push(" AND 1 = 0");
        }
        Ours::States(states) => {
            builder.push(" AND s.state IN (");
            let mut separated = builder.separated(", ");
            for state in states {
                separated.push_bind(state.as_str());
            }
            builder.push(")");
        }
        Ours::Failed { by_executor } => {
            builder
                .push(" AND s.state = ")
                .push_bind(State::Failed.as_str())
                .push(" AND ")
                .push(if by_executor { "" } else { "NOT " })
                .push("COALESCE(substr(s.message, 1, ")
                .push(EXECUTOR_FAILURE.len().to_string())
                .push("), '') = ")
                .push_bind(EXECUTOR_FAILURE);
        }
    }
}

fn task_from_row(row: &sqlx::any::AnyRow) -> Result<StoredTask> {
    let (submission, _) = from_row(row)?;
    let text: String = row.try_get("document")?;
    let corrupt = |column: &str, error: serde_json::Error| StorageError::Corrupt {
        id: submission.id.to_string(),
        reason: format!("{column}: {error}"),
    };
    let document = serde_json::from_str(&text).map_err(|error| corrupt("document", error))?;
    let notes: String = row.try_get("notes")?;
    let notes = serde_json::from_str(&notes).map_err(|error| corrupt("notes", error))?;
    let report: String = row.try_get("pod_report")?;
    let report = serde_json::from_str(&report).map_err(|error| corrupt("pod_report", error))?;
    Ok(StoredTask {
        submission,
        document,
        notes,
        report,
    })
}

/// The UTF-8 bytes of `text` in lowercase hex: hex digits sort alike in every collation.
fn hex(text: &str) -> String {
    text.bytes().map(|byte| format!("{byte:02x}")).collect()
}
