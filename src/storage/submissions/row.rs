//! How a row of the `submissions` table is read: the columns a [`Submission`] is read from,
//! and how. Every statement that returns whole submissions selects [`columns!`] and reads each
//! row with [`from_row`].

use std::str::FromStr;

use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::{Progress, State, Submission, SubmissionId, SubmissionSpec, WorkLimits};
use crate::storage::error::{Result, StorageError};

/// The columns [`from_row`] reads. A macro, so fixed statements stay `&'static str` literals.
macro_rules! columns {
    () => {
        "id, spec, namespace, job_name, state, message, active, succeeded, failed, created_at, \
         started_at, finished_at, version, owner, submitted_by, user_limit, group_id, group_limit, \
         notify_token, admitted, evictions, reruns, oom_reruns, gated, cluster"
    };
}
pub(in crate::storage) use columns;

/// The submission a row holds, and its `version` (for optimistic updates).
pub(in crate::storage) fn from_row(row: &AnyRow) -> Result<(Submission, i64)> {
    let id_text: String = row.try_get("id")?;
    let corrupt = |reason: String| StorageError::Corrupt {
        id: id_text.clone(),
        reason,
    };
    let timestamp = |column: &str| -> Result<Option<Timestamp>> {
        let text: Option<String> = row.try_get(column)?;
        text.map(|text| {
            Timestamp::from_str(&text).map_err(|error| corrupt(format!("{column}: {error}")))
        })
        .transpose()
    };
    let id = SubmissionId::from_str(&id_text).map_err(|error| corrupt(error.to_string()))?;
    let spec_text: String = row.try_get("spec")?;
    let spec: SubmissionSpec =
        serde_json::from_str(&spec_text).map_err(|error| corrupt(format!("spec: {error}")))?;
    let state_text: String = row.try_get("state")?;
    let state = State::from_str(&state_text).map_err(|error| corrupt(error.to_string()))?;
    let submission = Submission {
        id,
        spec,
        owner: row.try_get("owner")?,
        submitted_by: row.try_get("submitted_by")?,
        namespace: row.try_get("namespace")?,
        job_name: row.try_get("job_name")?,
        created_at: timestamp("created_at")?.ok_or_else(|| corrupt("created_at is null".into()))?,
        progress: Progress {
            state,
            message: row.try_get("message")?,
            active: row.try_get("active")?,
            succeeded: row.try_get("succeeded")?,
            failed: row.try_get("failed")?,
            started_at: timestamp("started_at")?,
            finished_at: timestamp("finished_at")?,
            admitted: row.try_get::<i64, _>("admitted")? != 0,
            evictions: row.try_get("evictions")?,
        },
        limits: WorkLimits {
            user: row.try_get("user_limit")?,
            group: match (
                row.try_get::<Option<String>, _>("group_id")?,
                row.try_get::<Option<i64>, _>("group_limit")?,
            ) {
                (Some(id), Some(limit)) => Some((id, limit)),
                _ => None,
            },
        },
        notify_token: row.try_get("notify_token")?,
        reruns: row.try_get("reruns")?,
        oom_reruns: row.try_get("oom_reruns")?,
        gated: row.try_get::<i64, _>("gated")? != 0,
        cluster: row.try_get("cluster")?,
    };
    Ok((submission, row.try_get("version")?))
}
