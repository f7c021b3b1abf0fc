//! One pod of a submission, as it ended: the history `GET /v1/submissions/{id}` shows in
//! `attempts`, kept after Kubernetes deletes the pods. What is recorded are the pod's facts;
//! whether it used a retry follows from them and the submission's retry policy.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::retry_policy::{ExitCodeAction, OOM_EXIT_CODE, RetryPolicy};

/// How a pod ended, as read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEnd {
    pub pod: String,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// The payload's exit code; none if it never ran.
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub memory: Option<String>,
    /// Whether the pod had the `DisruptionTarget` condition (evicted, preempted, drained).
    pub disrupted: bool,
}

/// A pod that ran (or tried to run) the payload, once it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    /// The pod's name (its log: `GET /v1/submissions/{id}/logs?pod=NAME`).
    pub pod: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    /// The payload's exit code; none if it never ran.
    pub exit_code: Option<i32>,
    /// Why it ended, in Kubernetes' words: `Completed`, `Error`, `OOMKilled`, `Evicted`,
    /// `DeadlineExceeded`...
    #[schema(example = "OOMKilled")]
    pub reason: Option<String>,
    /// The memory it had: its limit, else its request.
    #[schema(example = "4000M")]
    pub memory: Option<String>,
    /// Whether it was evicted, preempted or drained away.
    pub disrupted: bool,
    /// Whether it used one of the submission's `retries`: not if it succeeded, was disrupted,
    /// or exited with a code ruled `ignore` (or `fail`, which ends the submission at once).
    pub counted: bool,
}

impl Attempt {
    /// `end` under `policy`.
    pub fn of(end: PodEnd, policy: &RetryPolicy) -> Self {
        let succeeded = end.exit_code == Some(0);
        let ruled = end.exit_code.and_then(|code| {
            policy
                .on_exit_codes
                .iter()
                .find(|rule| rule.codes.contains(&code))
                .map(|rule| rule.action)
        });
        // `ignore` retries without counting; `fail` ends the submission, using no retry; so
        // does a kill for memory under `on_oom`, which ends its Job for a rerun.
        let oom = policy.on_oom.is_some() && end.exit_code == Some(OOM_EXIT_CODE);
        let uncounted = oom || matches!(ruled, Some(ExitCodeAction::Ignore | ExitCodeAction::Fail));
        Attempt {
            counted: !(succeeded || end.disrupted || uncounted),
            pod: end.pod,
            started_at: end.started_at,
            finished_at: end.finished_at,
            exit_code: end.exit_code,
            reason: end.reason,
            memory: end.memory,
            disrupted: end.disrupted,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn end(exit_code: Option<i32>, disrupted: bool) -> PodEnd {
        PodEnd {
            pod: "sh-1-abcde".into(),
            started_at: None,
            finished_at: None,
            exit_code,
            reason: None,
            memory: None,
            disrupted,
        }
    }

    #[test]
    fn a_failure_counts_unless_disrupted_or_ruled_ignore_and_a_success_never_does() {
        let policy: RetryPolicy = serde_json::from_value(json!({"on_exit_codes": [
            {"codes": [75], "action": "ignore"}, {"codes": [42], "action": "fail"},
        ]}))
        .expect("policy");
        let counted =
            |exit_code, disrupted| Attempt::of(end(exit_code, disrupted), &policy).counted;

        assert!(counted(Some(1), false));
        assert!(
            !counted(Some(42), false),
            "fail ends it without using a retry"
        );
        assert!(counted(None, false), "a pod that never ran failed");
        assert!(!counted(Some(75), false));
        assert!(!counted(Some(137), true));
        assert!(!counted(Some(0), false));
    }
}
