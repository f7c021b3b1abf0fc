//! What a Job or pod says, turned into a submission's next progress: pure functions, which the
//! state machine keeps from ever moving backwards. The controller applies them.

use std::str::FromStr;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;

use super::cached_pod::Pod;
use crate::domain::{Progress, SUBMISSION_ID_LABEL, State, Submission, SubmissionId};

/// The message recorded when a Job disappears before it ended and nobody cancelled it.
pub const DELETED_BEHIND_OUR_BACK: &str = "the Job was deleted from the cluster before it was \
     seen to finish (not by this service; it may have ended while the service was not watching)";

/// Next progress of a submission, given its Job as the API server reports it.
///
/// Only the terminal conditions (`Complete`, `Failed`) end a submission: from Kubernetes 1.31 on
/// the job controller first sets `SuccessCriteriaMet` or `FailureTarget` and adds the terminal
/// condition once every pod has stopped, so a final state here means nothing of it still runs
/// and its logs are whole. Meanwhile a `FailureTarget` already tells the user why it will fail.
/// `ready` (1.24+) moves a submission to running without waiting for a pod event; on servers
/// that do not report it the pod watch does the same.
pub fn progress_from_job(submission: &Submission, job: &Job) -> Option<Progress> {
    let current = &submission.progress;
    if current.state.is_final() {
        return None;
    }
    let status = job.status.clone().unwrap_or_default();
    let mut next = current.clone();
    next.active = status.active.unwrap_or(0).into();
    next.succeeded = status.succeeded.unwrap_or(0).into();
    next.failed = status.failed.unwrap_or(0).into();

    let condition = |kind: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|condition| condition.type_ == kind && condition.status == "True")
    };
    let explain = |condition: &JobCondition, otherwise: &str| match (
        condition.reason.as_deref(),
        condition.message.as_deref(),
    ) {
        (Some(reason), Some(message)) => format!("{reason}: {message}"),
        (Some(text), None) | (None, Some(text)) => text.to_owned(),
        (None, None) => otherwise.to_owned(),
    };
    let target = if let Some(complete) = condition("Complete") {
        next.finished_at = status
            .completion_time
            .as_ref()
            .or(complete.last_transition_time.as_ref())
            .map(|at| at.0);
        next.message = None;
        State::Succeeded
    } else if let Some(failed) = condition("Failed") {
        next.finished_at = failed.last_transition_time.as_ref().map(|at| at.0);
        next.message = Some(explain(failed, "the Job failed"));
        State::Failed
    } else {
        if let Some(failing) = condition("FailureTarget") {
            let why = explain(failing, "the Job is failing");
            next.message = Some(format!("{why} (stopping its pods)"));
        }
        if status.ready.unwrap_or(0) > 0 {
            State::Running
        } else {
            State::Pending
        }
    };
    if current.state.can_become(target) {
        next.state = target;
    }
    if next.state.is_final() && next.started_at.is_none() {
        next.started_at = status.start_time.as_ref().map(|at| at.0);
    }
    if next.state.is_final() && next.finished_at.is_none() {
        next.finished_at = Some(Timestamp::now());
    }
    Some(next)
}

/// Next progress of a submission, given one of its pods.
///
/// A pod can only tell that the payload started (or why it cannot start); whether the
/// submission succeeded or failed is the Job's to say, after its retries.
pub fn progress_from_pod(submission: &Submission, pod: &Pod) -> Option<Progress> {
    let current = &submission.progress;
    if current.state.is_final() {
        return None;
    }
    let status = pod.status.clone().unwrap_or_default();
    let containers = status.container_statuses.clone().unwrap_or_default();
    // Init containers first: a TES task's executors run as init containers, and its pod is
    // `Pending` until the last step starts, though its work runs.
    let started: Vec<Time> = super::logs::statuses_in_order(pod)
        .filter_map(|container| {
            let state = container.state.as_ref()?;
            state
                .running
                .as_ref()
                .and_then(|running| running.started_at.clone())
                .or_else(|| {
                    state
                        .terminated
                        .as_ref()
                        .and_then(|terminated| terminated.started_at.clone())
                })
        })
        .filter(|at| at.0 != Timestamp::UNIX_EPOCH)
        .collect();
    let phase = status.phase.as_deref().unwrap_or("Pending");
    let works = phase == "Running" || (phase == "Pending" && !started.is_empty());

    let mut next = current.clone();
    if works && current.state.can_become(State::Running) {
        next.state = State::Running;
        next.message = None;
    }
    if next.started_at.is_none() && (works || phase != "Pending") {
        next.started_at = started
            .iter()
            .map(|at| at.0)
            .min()
            .or(status.start_time.map(|at| at.0));
    }
    if next.state != State::Running {
        // Tell the user why nothing runs yet: a bad image, a missing secret or volume claim.
        let waiting = containers.iter().find_map(|container| {
            let waiting = container.state.as_ref()?.waiting.as_ref()?;
            let reason = waiting.reason.as_deref()?;
            (reason != "ContainerCreating").then(|| match waiting.message.as_deref() {
                Some(message) => format!("{reason}: {message}"),
                None => reason.to_owned(),
            })
        });
        if waiting.is_some() {
            next.message = waiting;
        }
    }
    Some(next)
}

/// Whether the Job is suspended: held by Kueue until it is admitted, or evicted since.
pub fn is_suspended(job: &Job) -> bool {
    job.spec
        .as_ref()
        .and_then(|spec| spec.suspend)
        .unwrap_or(false)
}

/// Whether the Job completed or failed.
pub(crate) fn has_ended(job: &Job) -> bool {
    job.status
        .iter()
        .flat_map(|status| status.conditions.iter().flatten())
        .any(|condition| {
            matches!(condition.type_.as_str(), "Complete" | "Failed") && condition.status == "True"
        })
}

/// Next progress of a submission whose Job was deleted, given the Job's last state if known.
///
/// A Job deleted after it ended (its `ttlSecondsAfterFinished`, or by hand) keeps the outcome
/// it carried: the delete event's object is the Job as it was last, and if that says it ended,
/// so be it. Without the object (it vanished while nobody watched), a stored count of succeeded
/// pods is the same evidence, since our Jobs want one completion. Only a Job that vanished
/// unfinished fails the submission.
pub fn progress_after_job_deleted(submission: &Submission, last: Option<&Job>) -> Option<Progress> {
    let current = &submission.progress;
    if current.state.is_final() || matches!(current.state, State::Waiting | State::Queued) {
        return None;
    }
    if let Some(job) = last.filter(|job| has_ended(job)) {
        return progress_from_job(submission, job);
    }
    if current.succeeded > 0 {
        return Some(Progress {
            state: State::Succeeded,
            message: None,
            active: 0,
            finished_at: current.finished_at.or_else(|| Some(Timestamp::now())),
            ..current.clone()
        });
    }
    Some(Progress {
        state: State::Failed,
        message: Some(DELETED_BEHIND_OUR_BACK.into()),
        active: 0,
        finished_at: Some(Timestamp::now()),
        ..current.clone()
    })
}

/// What the controller knows of a submission's Job.
pub enum JobSeen<'a> {
    Present(&'a Job),
    /// Gone, with its last state if its delete event was seen.
    Deleted(Option<&'a Job>),
}

/// Why a pod's log is missing when the pod vanished before it ended.
pub const POD_LOST: &str = "the pod was lost before it ended (deleted, or its node was lost)";

/// A submission's next progress, given its Job, its pods (oldest first), the pods lost before
/// they ended, and whether logs of ended pods are still being archived.
///
/// A Job's end waits for its archives: a finished submission always has its logs (or the
/// archive says why not). A lost pod is said in the message while the Job decides whether to
/// retry it; if the Job then fails, the failure names the lost pods first.
pub fn next_progress(
    submission: &Submission,
    job: &JobSeen<'_>,
    pods: &[std::sync::Arc<Pod>],
    lost: &[String],
    archiving: bool,
) -> Option<Progress> {
    if submission.progress.state.is_final() {
        return None;
    }
    let mut current = submission.clone();
    for pod in pods {
        if let Some(next) = progress_from_pod(&current, pod) {
            current.progress = next;
        }
    }
    let lost_pods = (!lost.is_empty()).then(|| format!("pod {} lost: {POD_LOST}", lost.join(", ")));
    if lost_pods.is_some() {
        current.progress.message.clone_from(&lost_pods);
    }
    let ends = match job {
        JobSeen::Present(job) => has_ended(job),
        JobSeen::Deleted(_) => true,
    };
    if ends && archiving {
        return Some(current.progress);
    }
    let mut next = match job {
        JobSeen::Present(job) => progress_from_job(&current, job),
        JobSeen::Deleted(last) => progress_after_job_deleted(&current, *last),
    }
    .unwrap_or(current.progress);
    if let (State::Failed, Some(lost_pods)) = (next.state, lost_pods) {
        next.message = Some(match next.message {
            Some(reason) if reason != lost_pods => format!("{lost_pods}; then {reason}"),
            _ => lost_pods,
        });
    }
    Some(next)
}

/// Waiting reasons of a container that waiting alone will not cure: an image that cannot be
/// pulled or is malformed, a container that cannot be configured (a missing secret or config
/// map).
const STUCK_REASONS: [&str; 4] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
];

/// A pod that cannot start, why (the kubelet's or the scheduler's words), and since when.
#[derive(Debug, Clone, PartialEq)]
pub struct Stuck {
    pub pod: String,
    pub why: String,
    pub since: Timestamp,
}

/// Whether `pod` is stuck before its start: a container waiting for one of [`STUCK_REASONS`]
/// (since the pod was created), or the pod unschedulable (since the scheduler said so). A pod
/// that runs or has ended is not stuck, nor one of whose containers (init containers too:
/// a TES task's executors) has started.
pub fn stuck(pod: &Pod) -> Option<Stuck> {
    let name = pod.metadata.name.clone()?;
    let status = pod.status.as_ref()?;
    if status
        .phase
        .as_deref()
        .is_some_and(|phase| phase != "Pending")
    {
        return None;
    }
    if super::logs::has_started(pod) {
        return None;
    }
    let explained = |reason: &str, message: Option<&str>| match message {
        Some(message) if !message.is_empty() => format!("{reason}: {message}"),
        _ => reason.to_owned(),
    };
    let waiting = status
        .container_statuses
        .iter()
        .chain(status.init_container_statuses.iter())
        .flatten()
        .find_map(|container| {
            let waiting = container.state.as_ref()?.waiting.as_ref()?;
            let reason = waiting.reason.as_deref()?;
            STUCK_REASONS
                .contains(&reason)
                .then(|| explained(reason, waiting.message.as_deref()))
        });
    if let Some(why) = waiting {
        let since = pod.metadata.creation_timestamp.as_ref()?.0;
        return Some(Stuck {
            pod: name,
            why,
            since,
        });
    }
    status.conditions.iter().flatten().find_map(|condition| {
        (condition.type_ == "PodScheduled"
            && condition.status == "False"
            && condition.reason.as_deref() == Some("Unschedulable"))
        .then(|| Stuck {
            pod: name.clone(),
            why: explained("Unschedulable", condition.message.as_deref()),
            since: condition
                .last_transition_time
                .as_ref()
                .map(|at| at.0)
                .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|at| at.0))
                .unwrap_or_else(Timestamp::now),
        })
    })
}

/// What the pending timeout makes of a submission's pods at `now`: the first pod stuck for
/// longer than `timeout` (the submission fails), or when the next stuck pod's time is up.
pub fn pending_deadline(
    pods: &[std::sync::Arc<Pod>],
    now: Timestamp,
    timeout: std::time::Duration,
) -> Deadline {
    let timeout = jiff::SignedDuration::try_from(timeout).unwrap_or(jiff::SignedDuration::MAX);
    let mut next: Option<Timestamp> = None;
    for stuck in pods.iter().filter_map(|pod| stuck(pod)) {
        let due = stuck.since.checked_add(timeout).unwrap_or(Timestamp::MAX);
        if due <= now {
            return Deadline::Passed(stuck);
        }
        next = Some(next.map_or(due, |next| next.min(due)));
    }
    match next {
        Some(due) => Deadline::At(due),
        None => Deadline::None,
    }
}

#[derive(Debug, PartialEq)]
pub enum Deadline {
    /// No pod is stuck.
    None,
    /// A pod is stuck; its time is up then.
    At(Timestamp),
    /// This pod has been stuck for too long.
    Passed(Stuck),
}

/// A submission failed because a pod of it could not start within `timeout`.
pub fn failed_stuck(
    submission: &Submission,
    stuck: &Stuck,
    timeout: std::time::Duration,
) -> Option<Progress> {
    let current = &submission.progress;
    if !current.state.can_become(State::Failed) {
        return None;
    }
    Some(Progress {
        state: State::Failed,
        message: Some(format!(
            "{} (pod {} could not start within {}s, the pending timeout)",
            stuck.why,
            stuck.pod,
            timeout.as_secs()
        )),
        active: 0,
        finished_at: Some(Timestamp::now()),
        ..current.clone()
    })
}

/// The submission an object of ours belongs to, from its label.
pub fn submission_id<K: Resource>(object: &K) -> Option<SubmissionId> {
    let labels = object.meta().labels.as_ref()?;
    SubmissionId::from_str(labels.get(SUBMISSION_ID_LABEL)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::domain::{SubmissionRequest, SubmissionSpec, SubmitDefaults};

    fn submission(state: State) -> Submission {
        let spec = SubmissionSpec::parse(
            SubmissionRequest {
                image: Some("img".into()),
                command: Some("true".into()),
                ..Default::default()
            },
            &SubmitDefaults::default(),
        )
        .expect("valid");
        let mut submission =
            Submission::new(spec, "default", &crate::domain::Caller::user("alice"));
        submission.progress.state = state;
        submission
    }

    fn job(status: serde_json::Value) -> Job {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "j"}, "status": status}))
            .expect("job")
    }

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "status": status}))
            .expect("pod")
    }

    fn pod_created_at(created: &str, status: serde_json::Value) -> std::sync::Arc<Pod> {
        std::sync::Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p", "creationTimestamp": created}, "status": status
            }))
            .expect("pod"),
        )
    }

    fn waiting(reason: &str) -> serde_json::Value {
        serde_json::json!({"phase": "Pending", "containerStatuses": [{
            "name": "payload", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
            "state": {"waiting": {"reason": reason, "message": "Back-off pulling image \"i\""}}
        }]})
    }

    #[test]
    fn a_pod_that_cannot_pull_its_image_is_stuck_since_it_was_created() {
        let pod = pod_created_at("2026-01-01T00:00:00Z", waiting("ImagePullBackOff"));

        let stuck = stuck(&pod).expect("stuck");

        assert_eq!(stuck.why, "ImagePullBackOff: Back-off pulling image \"i\"");
        assert_eq!(stuck.since.to_string(), "2026-01-01T00:00:00Z");
    }

    #[test]
    fn a_pod_still_creating_its_container_or_running_is_not_stuck() {
        let creating = pod_created_at("2026-01-01T00:00:00Z", waiting("ContainerCreating"));
        let running = pod_created_at(
            "2026-01-01T00:00:00Z",
            serde_json::json!({"phase": "Running", "containerStatuses": [{
                "name": "payload", "ready": true, "restartCount": 0, "image": "i", "imageID": "",
                "state": {"waiting": {"reason": "ErrImagePull"}}
            }]}),
        );

        assert_eq!(stuck(&creating), None);
        assert_eq!(stuck(&running), None);
    }

    #[test]
    fn an_unschedulable_pod_is_stuck_since_the_scheduler_said_so() {
        let pod = pod_created_at(
            "2026-01-01T00:00:00Z",
            serde_json::json!({"phase": "Pending", "conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient memory.",
                "lastTransitionTime": "2026-01-01T00:00:05Z"
            }]}),
        );

        let stuck = stuck(&pod).expect("stuck");

        assert_eq!(
            stuck.why,
            "Unschedulable: 0/3 nodes are available: 3 Insufficient memory."
        );
        assert_eq!(stuck.since.to_string(), "2026-01-01T00:00:05Z");
    }

    #[test]
    fn the_pending_timeout_passes_for_the_pod_stuck_longest() {
        let pods = [
            pod_created_at("2026-01-01T00:00:00Z", waiting("ErrImagePull")),
            pod_created_at("2026-01-01T00:09:00Z", waiting("InvalidImageName")),
        ];
        let timeout = std::time::Duration::from_secs(600);
        let at = |text: &str| text.parse::<Timestamp>().expect("time");

        assert_eq!(
            pending_deadline(&pods, at("2026-01-01T00:05:00Z"), timeout),
            Deadline::At(at("2026-01-01T00:10:00Z"))
        );
        assert!(matches!(
            pending_deadline(&pods, at("2026-01-01T00:10:00Z"), timeout),
            Deadline::Passed(stuck) if stuck.why.starts_with("ErrImagePull")
        ));
        assert_eq!(
            pending_deadline(&[], at("2026-01-01T00:10:00Z"), timeout),
            Deadline::None
        );
    }

    #[test]
    fn a_stuck_pod_fails_its_submission_with_the_kubelets_reason() {
        let stuck = Stuck {
            pod: "sh-x-abcde".into(),
            why: "ImagePullBackOff: Back-off pulling image".into(),
            since: Timestamp::UNIX_EPOCH,
        };

        let next = failed_stuck(
            &submission(State::Pending),
            &stuck,
            std::time::Duration::from_secs(600),
        )
        .expect("progress");

        assert_eq!(next.state, State::Failed);
        assert_eq!(
            next.message.as_deref(),
            Some(
                "ImagePullBackOff: Back-off pulling image (pod sh-x-abcde could not start within 600s, the pending timeout)"
            )
        );
        assert_eq!(
            failed_stuck(
                &submission(State::Cancelled),
                &stuck,
                std::time::Duration::from_secs(1)
            ),
            None
        );
    }

    #[test]
    fn a_new_job_makes_a_queued_submission_pending() {
        let next = progress_from_job(
            &submission(State::Queued),
            &job(serde_json::json!({"active": 1})),
        );

        let next = next.expect("progress");
        assert_eq!((next.state, next.active), (State::Pending, 1));
    }

    #[test]
    fn a_complete_job_succeeds_with_its_completion_time() {
        let status = serde_json::json!({
            "succeeded": 1, "startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:01:00Z",
            "conditions": [{"type": "Complete", "status": "True"}]
        });

        let next = progress_from_job(&submission(State::Running), &job(status)).expect("progress");

        assert_eq!(next.state, State::Succeeded);
        assert_eq!(next.succeeded, 1);
        assert_eq!(
            next.finished_at.map(|at| at.to_string()).as_deref(),
            Some("2026-01-01T00:01:00Z")
        );
    }

    #[test]
    fn a_failed_job_fails_with_its_reason() {
        let status = serde_json::json!({
            "failed": 2,
            "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                            "message": "Job has reached the specified backoff limit"}]
        });

        let next = progress_from_job(&submission(State::Running), &job(status)).expect("progress");

        assert_eq!(next.state, State::Failed);
        assert_eq!(
            next.message.as_deref(),
            Some("BackoffLimitExceeded: Job has reached the specified backoff limit")
        );
    }

    #[test]
    fn a_cancelled_submission_ignores_its_job() {
        let status = serde_json::json!({"conditions": [{"type": "Complete", "status": "True"}]});

        assert_eq!(
            progress_from_job(&submission(State::Cancelled), &job(status)),
            None
        );
    }

    #[test]
    fn a_running_pod_makes_the_submission_running() {
        let status = serde_json::json!({"phase": "Running", "containerStatuses": [{
            "name": "payload", "ready": true, "restartCount": 0, "image": "i", "imageID": "",
            "state": {"running": {"startedAt": "2026-01-01T00:00:05Z"}}
        }]});

        let next = progress_from_pod(&submission(State::Pending), &pod(status)).expect("progress");

        assert_eq!(next.state, State::Running);
        assert_eq!(
            next.started_at.map(|at| at.to_string()).as_deref(),
            Some("2026-01-01T00:00:05Z")
        );
    }

    /// A TES task's pod: its first executor (an init container) done, its second running, the
    /// last step waiting, as the kubelet shows it (phase `Pending`).
    fn executors_running() -> serde_json::Value {
        let container = |name: &str, state: serde_json::Value| {
            serde_json::json!({"name": name, "ready": false, "restartCount": 0, "image": "i",
                               "imageID": "", "state": state})
        };
        serde_json::json!({"phase": "Pending",
            "initContainerStatuses": [
                container("exec-0", serde_json::json!({"terminated": {"exitCode": 0,
                    "startedAt": "2026-01-01T00:00:03Z", "finishedAt": "2026-01-01T00:00:04Z"}})),
                container("exec-1", serde_json::json!({"running": {"startedAt": "2026-01-01T00:00:05Z"}})),
            ],
            "containerStatuses": [container("tes-outputs", serde_json::json!({"waiting": {
                "reason": "PodInitializing"}}))],
        })
    }

    #[test]
    fn a_pod_whose_init_containers_run_makes_the_submission_running_since_the_first_began() {
        let next = progress_from_pod(&submission(State::Pending), &pod(executors_running()))
            .expect("progress");

        assert_eq!(next.state, State::Running);
        assert_eq!(next.message, None);
        assert_eq!(
            next.started_at.map(|at| at.to_string()).as_deref(),
            Some("2026-01-01T00:00:03Z")
        );
    }

    #[test]
    fn a_pod_whose_init_containers_ran_is_not_stuck_whatever_its_last_step_waits_for() {
        let mut status = executors_running();
        status["containerStatuses"][0]["state"] =
            serde_json::json!({"waiting": {"reason": "ImagePullBackOff"}});

        assert_eq!(stuck(&pod_created_at("2026-01-01T00:00:00Z", status)), None);
    }

    #[test]
    fn a_retry_pod_that_is_pending_does_not_move_a_running_submission_back() {
        let next = progress_from_pod(
            &submission(State::Running),
            &pod(serde_json::json!({"phase": "Pending"})),
        )
        .expect("progress");

        assert_eq!(next.state, State::Running);
    }

    #[test]
    fn an_image_that_cannot_be_pulled_is_explained() {
        let status = serde_json::json!({"phase": "Pending", "containerStatuses": [{
            "name": "payload", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
            "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}
        }]});

        let next = progress_from_pod(&submission(State::Pending), &pod(status)).expect("progress");

        assert_eq!(next.message.as_deref(), Some("ErrImagePull: not found"));
    }

    #[test]
    fn a_job_deleted_behind_our_back_fails_the_submission() {
        let unfinished = job(serde_json::json!({"active": 1}));

        let next = progress_after_job_deleted(&submission(State::Running), Some(&unfinished))
            .expect("progress");

        assert_eq!(next.state, State::Failed);
        assert_eq!(next.message.as_deref(), Some(DELETED_BEHIND_OUR_BACK));
        assert_eq!(
            progress_after_job_deleted(&submission(State::Succeeded), None),
            None
        );
    }

    #[test]
    fn a_job_deleted_after_it_completed_keeps_its_success() {
        let complete = job(serde_json::json!({
            "succeeded": 1, "completionTime": "2026-01-01T00:01:00Z",
            "conditions": [{"type": "Complete", "status": "True"}]
        }));

        let next = progress_after_job_deleted(&submission(State::Running), Some(&complete))
            .expect("progress");

        assert_eq!((next.state, next.message), (State::Succeeded, None));
    }

    #[test]
    fn a_job_deleted_after_it_failed_keeps_its_reason() {
        let failed = job(serde_json::json!({"failed": 1, "conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}));

        let next = progress_after_job_deleted(&submission(State::Running), Some(&failed))
            .expect("progress");

        assert_eq!(next.state, State::Failed);
        assert_eq!(next.message.as_deref(), Some("BackoffLimitExceeded"));
    }

    #[test]
    fn a_job_gone_while_unwatched_after_a_recorded_success_counts_as_succeeded() {
        let mut running = submission(State::Running);
        running.progress.succeeded = 1;

        let next = progress_after_job_deleted(&running, None).expect("progress");

        assert_eq!(next.state, State::Succeeded);
    }

    #[test]
    fn a_job_with_a_ready_pod_makes_the_submission_running() {
        let next = progress_from_job(
            &submission(State::Pending),
            &job(serde_json::json!({"active": 1, "ready": 1})),
        )
        .expect("progress");

        assert_eq!(next.state, State::Running);
    }

    #[test]
    fn a_job_decided_to_fail_says_why_but_ends_only_once_its_pods_stopped() {
        let failing = serde_json::json!({"active": 1, "terminating": 1, "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded",
             "message": "Job was active longer than specified deadline"}]});
        let failed = serde_json::json!({"failed": 1, "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"},
            {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
             "message": "Job was active longer than specified deadline"}]});

        let meanwhile =
            progress_from_job(&submission(State::Running), &job(failing)).expect("progress");
        let end = progress_from_job(&submission(State::Running), &job(failed)).expect("progress");

        assert_eq!(meanwhile.state, State::Running);
        assert_eq!(
            meanwhile.message.as_deref(),
            Some(
                "DeadlineExceeded: Job was active longer than specified deadline (stopping its pods)"
            )
        );
        assert_eq!(end.state, State::Failed);
        assert_eq!(
            end.message.as_deref(),
            Some("DeadlineExceeded: Job was active longer than specified deadline")
        );
    }

    #[test]
    fn success_criteria_met_waits_for_the_complete_condition() {
        let met = serde_json::json!({"succeeded": 1, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached"}]});

        let next = progress_from_job(&submission(State::Running), &job(met)).expect("progress");

        assert_eq!((next.state, next.succeeded), (State::Running, 1));
    }

    #[test]
    fn a_lost_pod_is_said_while_the_job_decides_and_named_when_it_fails() {
        let lost = ["sh-1-abc".to_owned()];
        let running = job(serde_json::json!({"active": 1}));
        let failed = job(serde_json::json!({"failed": 1, "conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}));

        let meanwhile = next_progress(
            &submission(State::Pending),
            &JobSeen::Present(&running),
            &[],
            &lost,
            false,
        )
        .expect("progress");
        let end = next_progress(
            &submission(State::Pending),
            &JobSeen::Present(&failed),
            &[],
            &lost,
            false,
        )
        .expect("progress");

        assert_eq!(meanwhile.state, State::Pending);
        assert_eq!(
            meanwhile.message.as_deref(),
            Some(
                "pod sh-1-abc lost: the pod was lost before it ended (deleted, or its node was lost)"
            )
        );
        assert_eq!(end.state, State::Failed);
        assert_eq!(
            end.message.as_deref(),
            Some(
                "pod sh-1-abc lost: the pod was lost before it ended (deleted, or its node was \
                 lost); then BackoffLimitExceeded"
            )
        );
    }

    #[test]
    fn a_job_that_ended_is_recorded_only_once_its_logs_are_archived() {
        let complete = job(serde_json::json!({"succeeded": 1, "conditions": [
            {"type": "Complete", "status": "True"}]}));
        let seen = JobSeen::Present(&complete);

        let archiving = next_progress(&submission(State::Running), &seen, &[], &[], true);
        let archived = next_progress(&submission(State::Running), &seen, &[], &[], false);

        assert_eq!(archiving.map(|next| next.state), Some(State::Running));
        assert_eq!(archived.map(|next| next.state), Some(State::Succeeded));
    }

    #[test]
    fn a_retried_lost_pod_that_then_succeeds_leaves_no_failure() {
        let complete = job(serde_json::json!({"succeeded": 1, "conditions": [
            {"type": "Complete", "status": "True"}]}));

        let next = next_progress(
            &submission(State::Running),
            &JobSeen::Present(&complete),
            &[],
            &["sh-1-abc".to_owned()],
            false,
        )
        .expect("progress");

        assert_eq!((next.state, next.message), (State::Succeeded, None));
    }
}
