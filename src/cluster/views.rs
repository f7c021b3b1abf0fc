//! What `kubectl get jobs` and `kubectl get pods` print, computed from the objects themselves.
//!
//! Pure functions of (object, now), so every column is tested without a cluster. The rules
//! follow kubectl's printers: human durations, the pod STATUS column that prefers a container's
//! waiting or terminated reason over the phase, `Terminating` for pods being deleted.

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ContainerState;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::cached_pod::{ContainerStatus, Pod};
use crate::domain::SUBMISSION_ID_LABEL;
use crate::duration::human_duration;

/// One row of `kubectl get jobs -l app=submission-helper`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobRow {
    pub name: String,
    /// The cluster it is in (the service's name for it, `--cluster`).
    #[serde(default)]
    pub cluster: String,
    /// The submission the Job belongs to, from its label.
    pub submission_id: Option<String>,
    /// kubectl's STATUS column: `Running`, `Complete`, `Failed`, `Terminating`, `Suspended`, or
    /// `FailureTarget` / `SuccessCriteriaMet` while a decided Job waits for its pods to stop.
    pub status: String,
    /// Succeeded over wanted completions, e.g. `1/1`.
    pub completions: String,
    /// How long it ran (so far), e.g. `2m5s`; empty before it started.
    pub duration: String,
    pub age: String,
    pub active: i32,
    pub succeeded: i32,
    pub failed: i32,
    /// Pods ready (servers from 1.24 on report it; absent on older ones).
    pub ready: Option<i32>,
    /// Pods being deleted that have not stopped yet (servers from 1.28 on; absent on older ones).
    pub terminating: Option<i32>,
}

/// One row of `kubectl get pods -l app=submission-helper`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PodRow {
    pub name: String,
    /// The cluster it is in.
    #[serde(default)]
    pub cluster: String,
    pub submission_id: Option<String>,
    /// Ready containers over all containers, e.g. `1/1`.
    pub ready: String,
    /// kubectl's STATUS column: `Running`, `Completed`, `Error`, `ImagePullBackOff`, `Terminating`...
    pub status: String,
    pub restarts: i32,
    pub age: String,
}

/// A pod of a submission, in detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PodDetail {
    pub name: String,
    /// The pod's phase: `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
    pub phase: String,
    /// kubectl's STATUS column.
    pub status: String,
    pub ready: String,
    pub restarts: i32,
    pub node: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub start_time: Option<Timestamp>,
    pub containers: Vec<ContainerDetail>,
}

/// A container of a pod and the state it is in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContainerDetail {
    pub name: String,
    /// `waiting`, `running` or `terminated`; `unknown` before the node reported anything.
    pub state: String,
    pub ready: bool,
    pub restart_count: i32,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub exit_code: Option<i32>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
}

pub fn job_row(job: &Job, cluster: &str, now: Timestamp) -> JobRow {
    let status = job.status.clone().unwrap_or_default();
    let wanted = job
        .spec
        .as_ref()
        .and_then(|spec| spec.completions)
        .unwrap_or(1);
    let succeeded = status.succeeded.unwrap_or(0);
    let duration = match (&status.start_time, &status.completion_time) {
        (Some(start), Some(end)) => human_duration(end.0.duration_since(start.0)),
        (Some(start), None) => human_duration(now.duration_since(start.0)),
        (None, _) => String::new(),
    };
    JobRow {
        name: job.metadata.name.clone().unwrap_or_default(),
        cluster: cluster.to_owned(),
        submission_id: label(&job.metadata.labels),
        status: job_status_column(job).into(),
        completions: format!("{succeeded}/{wanted}"),
        duration,
        age: age(job.metadata.creation_timestamp.as_ref().map(|at| at.0), now),
        active: status.active.unwrap_or(0),
        succeeded,
        failed: status.failed.unwrap_or(0),
        ready: status.ready,
        terminating: status.terminating,
    }
}

/// kubectl's STATUS column of a Job, in kubectl's order of precedence.
fn job_status_column(job: &Job) -> &'static str {
    let has = |kind: &str| {
        job.status
            .iter()
            .flat_map(|status| status.conditions.iter().flatten())
            .any(|condition| condition.type_ == kind && condition.status == "True")
    };
    if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if job.metadata.deletion_timestamp.is_some() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

pub fn pod_row(pod: &Pod, cluster: &str, now: Timestamp) -> PodRow {
    let columns = PodColumns::of(pod);
    PodRow {
        name: pod.metadata.name.clone().unwrap_or_default(),
        cluster: cluster.to_owned(),
        submission_id: label(&pod.metadata.labels),
        ready: columns.ready,
        status: columns.status,
        restarts: columns.restarts,
        age: age(pod.metadata.creation_timestamp.as_ref().map(|at| at.0), now),
    }
}

pub fn pod_detail(pod: &Pod) -> PodDetail {
    let columns = PodColumns::of(pod);
    let status = pod.status.clone().unwrap_or_default();
    let reported = status.container_statuses.unwrap_or_default();
    let declared: Vec<String> = pod
        .spec
        .as_ref()
        .map(|spec| spec.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let containers = declared
        .into_iter()
        .map(
            |name| match reported.iter().find(|status| status.name == name) {
                Some(status) => container_detail(status),
                None => ContainerDetail {
                    name,
                    state: "unknown".into(),
                    ready: false,
                    restart_count: 0,
                    reason: None,
                    message: None,
                    exit_code: None,
                    started_at: None,
                    finished_at: None,
                },
            },
        )
        .collect();
    PodDetail {
        name: pod.metadata.name.clone().unwrap_or_default(),
        phase: status.phase.unwrap_or_else(|| "Pending".into()),
        status: columns.status,
        ready: columns.ready,
        restarts: columns.restarts,
        node: pod.spec.as_ref().and_then(|spec| spec.node_name.clone()),
        start_time: status.start_time.map(|at| at.0),
        containers,
    }
}

fn container_detail(status: &ContainerStatus) -> ContainerDetail {
    let mut detail = ContainerDetail {
        name: status.name.clone(),
        state: "unknown".into(),
        ready: status.ready,
        restart_count: status.restart_count,
        reason: None,
        message: None,
        exit_code: None,
        started_at: None,
        finished_at: None,
    };
    let state = status.state.clone().unwrap_or_default();
    if let Some(running) = state.running {
        detail.state = "running".into();
        detail.started_at = running.started_at.map(|at| at.0);
    } else if let Some(terminated) = state.terminated {
        detail.state = "terminated".into();
        detail.reason = terminated.reason;
        detail.message = terminated.message;
        detail.exit_code = Some(terminated.exit_code);
        detail.started_at = terminated.started_at.map(|at| at.0);
        detail.finished_at = terminated.finished_at.map(|at| at.0);
    } else if let Some(waiting) = state.waiting {
        detail.state = "waiting".into();
        detail.reason = waiting.reason;
        detail.message = waiting.message;
    }
    detail
}

struct PodColumns {
    ready: String,
    status: String,
    restarts: i32,
}

impl PodColumns {
    /// kubectl's READY, STATUS and RESTARTS columns.
    fn of(pod: &Pod) -> Self {
        let status = pod.status.clone().unwrap_or_default();
        let containers = status.container_statuses.unwrap_or_default();
        let total = pod
            .spec
            .as_ref()
            .map_or(containers.len(), |spec| spec.containers.len());
        let mut reason = status
            .reason
            .clone()
            .filter(|reason| !reason.is_empty())
            .or(status.phase.clone())
            .unwrap_or_else(|| "Pending".into());
        let mut ready = 0;
        let mut restarts = 0;
        let mut has_running = false;
        for container in containers.iter().rev() {
            restarts += container.restart_count;
            match container.state.as_ref() {
                Some(ContainerState {
                    waiting: Some(waiting),
                    ..
                }) if waiting.reason.as_deref().is_some_and(|r| !r.is_empty()) => {
                    reason = waiting.reason.clone().unwrap_or_default();
                }
                Some(ContainerState {
                    terminated: Some(terminated),
                    ..
                }) => {
                    reason = match terminated.reason.as_deref() {
                        Some(r) if !r.is_empty() => r.to_owned(),
                        _ if terminated.signal.is_some_and(|s| s != 0) => {
                            format!("Signal:{}", terminated.signal.unwrap_or_default())
                        }
                        _ => format!("ExitCode:{}", terminated.exit_code),
                    };
                }
                Some(ContainerState {
                    running: Some(_), ..
                }) if container.ready => {
                    has_running = true;
                    ready += 1;
                }
                _ => {}
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".into();
        }
        if pod.metadata.deletion_timestamp.is_some() {
            reason = if status.reason.as_deref() == Some("NodeLost") {
                "Unknown".into()
            } else {
                "Terminating".into()
            };
        }
        PodColumns {
            ready: format!("{ready}/{total}"),
            status: reason,
            restarts,
        }
    }
}

fn label(labels: &Option<std::collections::BTreeMap<String, String>>) -> Option<String> {
    labels.as_ref()?.get(SUBMISSION_ID_LABEL).cloned()
}

fn age(created: Option<Timestamp>, now: Timestamp) -> String {
    created.map_or_else(
        || "<unknown>".into(),
        |created| human_duration(now.duration_since(created)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).expect("pod")
    }

    #[test]
    fn a_finished_pod_shows_completed_or_the_exit_reason() {
        let completed = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "payload"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{
                "name": "payload", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}
            }]}
        }));
        let failed = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "payload"}]},
            "status": {"phase": "Failed", "containerStatuses": [{
                "name": "payload", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                "state": {"terminated": {"exitCode": 3}}
            }]}
        }));

        assert_eq!(
            pod_row(&completed, "default", Timestamp::now()).status,
            "Completed"
        );
        assert_eq!(
            pod_row(&failed, "default", Timestamp::now()).status,
            "ExitCode:3"
        );
        let detail = pod_detail(&failed);
        assert_eq!(detail.containers[0].exit_code, Some(3));
        assert_eq!(detail.containers[0].state, "terminated");
    }

    #[test]
    fn a_waiting_container_shows_its_reason_and_a_deleted_pod_terminating() {
        let mut waiting = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "payload"}]},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": "payload", "ready": false, "restartCount": 2, "image": "i", "imageID": "",
                "state": {"waiting": {"reason": "ImagePullBackOff"}}
            }]}
        }));

        let row = pod_row(&waiting, "default", Timestamp::now());
        assert_eq!(
            (row.status.as_str(), row.ready.as_str(), row.restarts),
            ("ImagePullBackOff", "0/1", 2)
        );

        waiting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
        );
        assert_eq!(
            pod_row(&waiting, "default", Timestamp::now()).status,
            "Terminating"
        );
    }

    #[test]
    fn a_job_row_counts_completions_and_duration() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "sh-1", "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"submission-helper.io/submission-id": "abc"}},
            "status": {"succeeded": 1, "startTime": "2026-01-01T00:00:01Z",
                       "completionTime": "2026-01-01T00:05:04Z"}
        }))
        .expect("job");
        let now: Timestamp = "2026-01-01T01:00:00Z".parse().expect("time");

        let row = job_row(&job, "default", now);

        assert_eq!(row.completions, "1/1");
        assert_eq!(row.duration, "5m3s");
        assert_eq!(row.age, "60m");
        assert_eq!(row.submission_id.as_deref(), Some("abc"));
    }

    fn job_with(status: serde_json::Value) -> Job {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "sh-1"}, "status": status}))
            .expect("job")
    }

    #[test]
    fn a_decided_job_waiting_for_its_pods_shows_the_status_kubectl_shows() {
        let condition =
            |kind: &str| serde_json::json!({"conditions": [{"type": kind, "status": "True"}]});

        let column = |status| job_row(&job_with(status), "default", Timestamp::now()).status;

        assert_eq!(column(serde_json::json!({"active": 1})), "Running");
        assert_eq!(column(condition("FailureTarget")), "FailureTarget");
        assert_eq!(
            column(condition("SuccessCriteriaMet")),
            "SuccessCriteriaMet"
        );
        assert_eq!(column(condition("Complete")), "Complete");
        assert_eq!(column(condition("Failed")), "Failed");
    }

    #[test]
    fn ready_and_terminating_are_absent_when_an_older_server_does_not_report_them() {
        let current = job_row(
            &job_with(serde_json::json!({"active": 2, "ready": 1, "terminating": 1})),
            "default",
            Timestamp::now(),
        );
        let older = job_row(
            &job_with(serde_json::json!({"active": 2})),
            "default",
            Timestamp::now(),
        );

        assert_eq!((current.ready, current.terminating), (Some(1), Some(1)));
        assert_eq!((older.ready, older.terminating), (None, None));
    }
}
