//! The `tes_executor_logs` table: what each executor of a TES task's pod did (exit code, times,
//! output), recorded when the pod ended, and read back for the newest pod of each task.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::Timestamp;
use sqlx::{QueryBuilder, Row};

use super::error::{Result, StorageError};
use super::store::Store;
use crate::domain::SubmissionId;
use crate::domain::tes::runs::ExecutorRun;

impl Store {
    /// Keeps what the executors of one pod did; an earlier record of the same pod is replaced
    /// only if `replace` (a read that failed must not overwrite one that worked).
    pub async fn record_executor_runs(
        &self,
        id: SubmissionId,
        pod_name: &str,
        pod_created_at: Timestamp,
        runs: &[ExecutorRun],
        replace: bool,
    ) -> Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        let mut builder = QueryBuilder::new(
            "INSERT INTO tes_executor_logs (submission_id, pod_name, pod_created_at, executor, \
             exit_code, start_time, end_time, output_base64, truncated_bytes) ",
        );
        builder.push_values(runs, |mut row, run| {
            row.push_bind(id.to_string())
                .push_bind(pod_name.to_owned())
                .push_bind(pod_created_at.to_string())
                .push_bind(i64::try_from(run.executor).unwrap_or(i64::MAX))
                .push_bind(i64::from(run.exit_code))
                .push_bind(run.start_time.map(|at| at.to_string()))
                .push_bind(run.end_time.map(|at| at.to_string()))
                .push_bind(BASE64.encode(&run.output))
                .push_bind(i64::try_from(run.truncated_bytes).unwrap_or(i64::MAX));
        });
        builder.push(if replace {
            " ON CONFLICT (submission_id, pod_name, executor) DO UPDATE SET \
             exit_code = excluded.exit_code, start_time = excluded.start_time, \
             end_time = excluded.end_time, output_base64 = excluded.output_base64, \
             truncated_bytes = excluded.truncated_bytes"
        } else {
            " ON CONFLICT (submission_id, pod_name, executor) DO NOTHING"
        });
        let _turn = self.turn_to_write().await;
        self.built(&mut builder)?.execute(&self.pool).await?;
        Ok(())
    }

    /// What the executors of each task's newest recorded pod did, in executor order, with
    /// their output only if `with_output` (a list's BASIC view shows none); tasks with no
    /// record are left out. Read through the primary key.
    pub async fn executor_runs(
        &self,
        ids: &[SubmissionId],
        with_output: bool,
    ) -> Result<HashMap<SubmissionId, Vec<ExecutorRun>>> {
        let mut found: HashMap<SubmissionId, (String, String, Vec<ExecutorRun>)> = HashMap::new();
        for ids in ids.chunks(500) {
            let mut builder = QueryBuilder::new(
                "SELECT submission_id, pod_name, pod_created_at, executor, exit_code, start_time, \
                 end_time, truncated_bytes, ",
            );
            builder.push(if with_output {
                "output_base64"
            } else {
                "'' AS output_base64"
            });
            builder.push(" FROM tes_executor_logs WHERE submission_id IN (");
            let mut separated = builder.separated(", ");
            for id in ids {
                separated.push_bind(id.to_string());
            }
            builder.push(")");
            let rows = self.built(&mut builder)?.fetch_all(&self.pool).await?;
            for row in &rows {
                let text: String = row.try_get("submission_id")?;
                let corrupt = |reason: String| StorageError::Corrupt {
                    id: text.clone(),
                    reason,
                };
                let id: SubmissionId = text.parse().map_err(|_| corrupt("submission_id".into()))?;
                let pod: (String, String) =
                    (row.try_get("pod_created_at")?, row.try_get("pod_name")?);
                let run = run_from_row(row).map_err(corrupt)?;
                let entry = found
                    .entry(id)
                    .or_insert_with(|| (pod.0.clone(), pod.1.clone(), Vec::new()));
                match (&pod.0, &pod.1).cmp(&(&entry.0, &entry.1)) {
                    std::cmp::Ordering::Greater => *entry = (pod.0, pod.1, vec![run]),
                    std::cmp::Ordering::Equal => entry.2.push(run),
                    std::cmp::Ordering::Less => {}
                }
            }
        }
        Ok(found
            .into_iter()
            .map(|(id, (_, _, mut runs))| {
                runs.sort_by_key(|run| run.executor);
                (id, runs)
            })
            .collect())
    }
}

fn run_from_row(row: &sqlx::any::AnyRow) -> std::result::Result<ExecutorRun, String> {
    let get_i64 = |column: &str| {
        row.try_get::<i64, _>(column)
            .map_err(|e| format!("{column}: {e}"))
    };
    let time = |column: &str| -> std::result::Result<Option<Timestamp>, String> {
        let text: Option<String> = row.try_get(column).map_err(|e| format!("{column}: {e}"))?;
        text.map(|text| text.parse().map_err(|e| format!("{column}: {e}")))
            .transpose()
    };
    let encoded: String = row
        .try_get("output_base64")
        .map_err(|e| format!("output_base64: {e}"))?;
    Ok(ExecutorRun {
        executor: usize::try_from(get_i64("executor")?).map_err(|e| format!("executor: {e}"))?,
        exit_code: i32::try_from(get_i64("exit_code")?).map_err(|e| format!("exit_code: {e}"))?,
        start_time: time("start_time")?,
        end_time: time("end_time")?,
        output: BASE64
            .decode(encoded)
            .map_err(|e| format!("output_base64: {e}"))?,
        truncated_bytes: u64::try_from(get_i64("truncated_bytes")?).unwrap_or_default(),
    })
}
