//! A kill for memory under the submission's `retry_policy.on_oom`: its Job failed at once (the
//! pod failure policy's rule on exit code 137), and instead of failing, the submission runs
//! again with more memory, or fails saying that the cap or the count is reached. Pure: the
//! reconciler applies it.

use super::cached_pod::Pod;
use super::logs;
use crate::domain::{AfterOom, Progress, State, Submission, after_oom as decide};
use crate::storage::Next;

/// The reason the kubelet gives a container the kernel's OOM killer ended.
pub const OOM_KILLED: &str = "OOMKilled";

/// Whether a container of `pod` was killed for memory.
pub fn killed_for_memory(pod: &Pod) -> bool {
    logs::statuses_in_order(pod).any(|container| {
        container
            .state
            .as_ref()
            .and_then(|state| state.terminated.as_ref())
            .and_then(|terminated| terminated.reason.as_deref())
            == Some(OOM_KILLED)
    })
}

/// What becomes of `current` whose next progress is `next`: `next` itself, unless it is the
/// failure of a Job whose pod was killed for memory (`oom_killed`) and the submission has an
/// `on_oom` rule.
pub fn after_oom(current: &Submission, next: Progress, oom_killed: bool) -> Next {
    if !oom_killed || next.state != State::Failed || current.progress.state.is_final() {
        return Next::Progress(next);
    }
    match decide(&current.spec, current.oom_reruns) {
        None => Next::Progress(next),
        Some(AfterOom::Rerun { spec, message }) => Next::RerunForMemory { spec, message },
        Some(AfterOom::Fail { message }) => Next::Progress(Progress {
            message: Some(message),
            ..next
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{Caller, SubmissionRequest, SubmissionSpec, SubmitDefaults};

    fn submission(on_oom: bool) -> Submission {
        let mut request = json!({
            "image": "busybox",
            "command": "analyze",
            "resources": {"limits": {"memory": "1Gi"}},
        });
        if on_oom {
            request["retry_policy"] = json!({"on_oom": {"max_memory": "4Gi"}});
        }
        let request: SubmissionRequest = serde_json::from_value(request).expect("request");
        let spec = SubmissionSpec::parse(request, &SubmitDefaults::default()).expect("valid");
        let mut submission = Submission::new(spec, "default", &Caller::user("alice"));
        submission.progress.state = State::Running;
        submission
    }

    fn failed() -> Progress {
        Progress {
            state: State::Failed,
            message: Some("PodFailurePolicy: Container analyze ... exit code 137".into()),
            ..Progress::queued()
        }
    }

    fn pod(reason: &str) -> Pod {
        serde_json::from_value(json!({"status": {"phase": "Failed", "containerStatuses": [{
            "name": "analyze", "image": "busybox", "imageID": "", "ready": false,
            "restartCount": 0,
            "state": {"terminated": {"exitCode": 137, "reason": reason}},
        }]}}))
        .expect("pod")
    }

    #[test]
    fn only_the_kubelets_oom_killed_reason_is_a_kill_for_memory() {
        assert!(killed_for_memory(&pod("OOMKilled")));
        assert!(!killed_for_memory(&pod("Error")));
    }

    #[test]
    fn a_job_failed_by_a_kill_for_memory_reruns_with_twice_the_memory() {
        let Next::RerunForMemory { spec, message } = after_oom(&submission(true), failed(), true)
        else {
            panic!("a rerun")
        };

        assert_eq!(spec.resources.limits.memory.as_deref(), Some("2Gi"));
        assert!(message.ends_with("rerun 1 of 2 with 2Gi"), "{message}");
    }

    #[test]
    fn without_on_oom_or_without_a_kill_for_memory_a_failure_stays_a_failure() {
        assert_eq!(
            after_oom(&submission(false), failed(), true),
            Next::Progress(failed())
        );
        assert_eq!(
            after_oom(&submission(true), failed(), false),
            Next::Progress(failed())
        );
    }

    #[test]
    fn at_the_count_the_failure_says_so() {
        let mut at_count = submission(true);
        at_count.oom_reruns = 2;

        let Next::Progress(progress) = after_oom(&at_count, failed(), true) else {
            panic!("no rerun")
        };

        assert_eq!(progress.state, State::Failed);
        assert!(
            progress
                .message
                .is_some_and(|message| message.contains("max_reruns"))
        );
    }
}
