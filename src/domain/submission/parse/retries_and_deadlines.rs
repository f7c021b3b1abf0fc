//! How often a failed pod is retried, how long the Job may run, and how long it is kept once
//! it ended: each said in Kubernetes' words or the helper's (`retries`, `time` in minutes).

use crate::domain::field_error::{FieldError, FieldErrors};
use crate::domain::submission::defaults::JobDefaults;

/// The most retries of a failed pod.
pub const MAX_BACKOFF_LIMIT: i64 = 100;
/// Ten years, in minutes: `time` beyond it is a mistake, not a plan.
pub const MAX_TIME_MINUTES: i64 = 10 * 365 * 24 * 60;

/// The Job's `backoffLimit`, `activeDeadlineSeconds` and `ttlSecondsAfterFinished`.
#[derive(Debug)]
pub(crate) struct RetriesAndDeadlines {
    pub backoff_limit: i32,
    pub active_deadline_seconds: Option<i64>,
    pub ttl_seconds_after_finished: Option<i32>,
}

/// The fields as sent, each optional.
#[derive(Debug)]
pub(crate) struct Given {
    pub retries: Option<i64>,
    pub backoff_limit: Option<i64>,
    pub time: Option<i64>,
    pub active_deadline_seconds: Option<i64>,
    pub ttl_seconds_after_finished: Option<i64>,
}

/// Each value in its range, given once (in either words) or the server's default.
pub(crate) fn parse(
    given: Given,
    defaults: &JobDefaults,
) -> Result<RetriesAndDeadlines, Vec<FieldError>> {
    let mut errors = FieldErrors::default();

    let backoff_limit = match (given.retries, given.backoff_limit) {
        (Some(retries), Some(limit)) if retries != limit => {
            errors.refuse("retries", "conflicts with backoff_limit; give one of them");
            0
        }
        (Some(limit), _) | (None, Some(limit)) => {
            let field = if given.retries.is_some() {
                "retries"
            } else {
                "backoff_limit"
            };
            if !(0..=MAX_BACKOFF_LIMIT).contains(&limit) {
                errors.refuse(field, format!("must be between 0 and {MAX_BACKOFF_LIMIT}"));
            }
            i32::try_from(limit).unwrap_or_default()
        }
        (None, None) => defaults.retries,
    };

    if let Some(seconds) = given.active_deadline_seconds
        && seconds < 1
    {
        errors.refuse("active_deadline_seconds", "must be at least 1");
    }
    let active_deadline_seconds = match (given.time, given.active_deadline_seconds) {
        (Some(_), Some(_)) => {
            errors.refuse(
                "time",
                "conflicts with active_deadline_seconds; give one of them",
            );
            None
        }
        (Some(minutes), None) if !(1..=MAX_TIME_MINUTES).contains(&minutes) => {
            errors.refuse(
                "time",
                format!("must be between 1 and {MAX_TIME_MINUTES} minutes"),
            );
            None
        }
        (Some(minutes), None) => Some(minutes * 60),
        (None, Some(seconds)) => Some(seconds),
        (None, None) => defaults.time_minutes.map(|minutes| minutes * 60),
    };

    let ttl_seconds_after_finished = match given.ttl_seconds_after_finished {
        Some(seconds) => match i32::try_from(seconds) {
            Ok(seconds) if seconds >= 0 => Some(seconds),
            _ => {
                errors.refuse(
                    "ttl_seconds_after_finished",
                    format!("must be between 0 and {}", i32::MAX),
                );
                None
            }
        },
        None => defaults.ttl_seconds_after_finished,
    };

    errors.or(RetriesAndDeadlines {
        backoff_limit,
        active_deadline_seconds,
        ttl_seconds_after_finished,
    })
}
