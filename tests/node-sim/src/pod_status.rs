//! Pod status as a kubelet reports it, built from the state of each container. Pure, so what
//! the Job controller and the service read is pinned by unit tests.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Value, json};

use crate::containers::Exit;

/// Kubernetes times (`metav1.Time`) are whole seconds in RFC 3339.
pub fn k8s_time(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Where a container is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not started, and why (an image that cannot be pulled).
    Waiting {
        reason: String,
        message: String,
    },
    Running {
        started: Timestamp,
        id: String,
    },
    Terminated {
        exit: Exit,
        id: Option<String>,
    },
}

impl State {
    fn is_running(&self) -> bool {
        matches!(self, State::Running { .. })
    }

    fn is_waiting(&self) -> bool {
        matches!(self, State::Waiting { .. })
    }

    /// The state a container is left in when its pod is stopped: a container that never
    /// started is reported as a kubelet reports one it cannot account for.
    pub fn stopped(self, now: Timestamp) -> State {
        match self {
            State::Waiting { .. } => State::Terminated {
                exit: Exit {
                    exit_code: 137,
                    reason: "ContainerStatusUnknown".into(),
                    message: Some(
                        "The container could not be located when the pod was terminated".into(),
                    ),
                    started: None,
                    finished: now,
                },
                id: None,
            },
            other => other,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            State::Waiting { reason, message } => {
                json!({"waiting": {"reason": reason, "message": message}})
            }
            State::Running { started, .. } => json!({"running": {"startedAt": k8s_time(*started)}}),
            State::Terminated { exit, id } => {
                let mut terminated = json!({
                    "exitCode": exit.exit_code,
                    "reason": exit.reason,
                    "finishedAt": k8s_time(exit.finished),
                });
                if let Some(started) = exit.started {
                    terminated["startedAt"] = json!(k8s_time(started));
                }
                if let Some(message) = &exit.message {
                    terminated["message"] = json!(message);
                }
                if let Some(id) = id {
                    terminated["containerID"] = json!(id);
                }
                json!({"terminated": terminated})
            }
        }
    }

    fn id(&self) -> Option<&str> {
        match self {
            State::Waiting { .. } => None,
            State::Running { id, .. } => Some(id),
            State::Terminated { id, .. } => id.as_deref(),
        }
    }
}

/// The pod's phase for a pod that never restarts a container (Jobs' `restartPolicy: Never`):
/// Pending while a container has not started, Running while any runs, then Succeeded if all
/// exited 0 and Failed otherwise.
pub fn phase(states: &[State]) -> &'static str {
    if states.iter().any(State::is_waiting) {
        "Pending"
    } else if states.iter().any(State::is_running) {
        "Running"
    } else if states
        .iter()
        .all(|state| matches!(state, State::Terminated { exit, .. } if exit.exit_code == 0))
    {
        "Succeeded"
    } else {
        "Failed"
    }
}

/// Whether every init container exited 0 (true for a pod without any).
fn initialized(init_states: &[State]) -> bool {
    init_states
        .iter()
        .all(|state| matches!(state, State::Terminated { exit, .. } if exit.exit_code == 0))
}

/// The state of a container that waits for the pod's init containers.
pub fn initializing() -> State {
    State::Waiting {
        reason: "PodInitializing".into(),
        message: String::new(),
    }
}

/// The status subresource patch for a pod whose init containers and containers are in
/// `init_states` and `states` (each in spec order). Init containers run one after another before the
/// containers; one that fails fails the pod (`restartPolicy: Never`), and until all succeeded
/// the pod is Pending, not `Initialized`, its containers waiting in `PodInitializing`.
pub fn pod_status_with_init(
    init_containers: &[Container],
    init_states: &[State],
    containers: &[Container],
    states: &[State],
    start_time: Timestamp,
    now: Timestamp,
) -> Value {
    let init_failed = init_states
        .iter()
        .any(|state| matches!(state, State::Terminated { exit, .. } if exit.exit_code != 0));
    let initialized = initialized(init_states);
    let phase = if init_failed {
        "Failed"
    } else if !initialized {
        "Pending"
    } else {
        phase(states)
    };
    let ready = initialized && !states.is_empty() && states.iter().all(State::is_running);
    let now = k8s_time(now);
    let condition = |kind: &str, on: bool| {
        let mut condition = json!({"type": kind, "status": if on { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": now});
        if !on {
            let reason = if matches!(phase, "Succeeded" | "Failed") {
                "PodCompleted"
            } else {
                "ContainersNotReady"
            };
            condition["reason"] = json!(reason);
        }
        condition
    };
    let statuses = |containers: &[Container], states: &[State]| -> Vec<Value> {
        containers
            .iter()
            .zip(states)
            .map(|(container, state)| {
                let mut status = json!({
                    "name": container.name,
                    "image": container.image.clone().unwrap_or_default(),
                    "imageID": "",
                    "ready": state.is_running(),
                    "started": state.is_running(),
                    "restartCount": 0,
                    "state": state.to_json(),
                });
                if let Some(id) = state.id() {
                    status["containerID"] = json!(id);
                }
                status
            })
            .collect()
    };
    let mut initialized_condition = condition("Initialized", initialized);
    if !initialized {
        initialized_condition["reason"] = json!("ContainersNotInitialized");
    }
    let mut status = json!({"status": {
        "phase": phase,
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": k8s_time(start_time),
        "conditions": [
            initialized_condition,
            condition("Ready", ready),
            condition("ContainersReady", ready),
            condition("PodScheduled", true),
        ],
        "containerStatuses": statuses(containers, states),
    }});
    if !init_containers.is_empty() {
        status["status"]["initContainerStatuses"] = json!(statuses(init_containers, init_states));
    }
    status
}

/// Whether the pod ran to its end.
pub fn has_ended(pod: &Pod) -> bool {
    matches!(
        pod.status
            .as_ref()
            .and_then(|status| status.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Whether a node reported the pod's containers as started.
pub fn was_started(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|status| status.phase.as_deref()) == Some("Running")
        || status
            .and_then(|status| status.container_statuses.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|container| container.state.as_ref())
            .any(|state| state.running.is_some() || state.terminated.is_some())
}

/// The states to report for a pod an earlier run of this node started: its processes ended
/// with that run, so each container not already terminated is reported lost, as a kubelet
/// reports containers its runtime no longer knows.
pub fn lost(pod: &Pod, now: Timestamp) -> Vec<State> {
    let containers = pod
        .spec
        .as_ref()
        .map(|spec| spec.containers.as_slice())
        .unwrap_or_default();
    let reported = pod
        .status
        .as_ref()
        .and_then(|status| status.container_statuses.as_deref())
        .unwrap_or_default();
    containers
        .iter()
        .map(|container| {
            let status = reported.iter().find(|status| status.name == container.name);
            let id = status.and_then(|status| status.container_id.clone());
            let state = status.and_then(|status| status.state.as_ref());
            if let Some(terminated) = state.and_then(|state| state.terminated.as_ref()) {
                return State::Terminated {
                    exit: Exit {
                        exit_code: terminated.exit_code,
                        reason: terminated.reason.clone().unwrap_or_default(),
                        message: terminated.message.clone(),
                        started: terminated.started_at.as_ref().map(|time| time.0),
                        finished: terminated.finished_at.as_ref().map_or(now, |time| time.0),
                    },
                    id,
                };
            }
            let started = state
                .and_then(|state| state.running.as_ref())
                .and_then(|running| running.started_at.as_ref())
                .map(|time| time.0);
            State::Terminated {
                exit: Exit {
                    exit_code: 137,
                    reason: "ContainerStatusUnknown".into(),
                    message: Some(
                        "The container could not be located when the pod was terminated".into(),
                    ),
                    started,
                    finished: now,
                },
                id,
            }
        })
        .collect()
}

/// When the pod was first reported started, if it was.
pub fn start_time(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()
        .and_then(|status| status.start_time.as_ref())
        .map(|time| time.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time: &str) -> Timestamp {
        time.parse().expect("time")
    }

    fn container(name: &str) -> Container {
        Container {
            name: name.into(),
            image: Some("busybox".into()),
            ..Container::default()
        }
    }

    fn running() -> State {
        State::Running {
            started: at("2026-01-01T00:00:00.5Z"),
            id: "node-sim://7".into(),
        }
    }

    fn ended(exit_code: i32) -> State {
        let exit = Exit {
            exit_code,
            reason: if exit_code == 0 { "Completed" } else { "Error" }.into(),
            message: None,
            started: Some(at("2026-01-01T00:00:00.5Z")),
            finished: at("2026-01-01T00:00:03Z"),
        };
        State::Terminated {
            exit,
            id: Some("node-sim://7".into()),
        }
    }

    /// A pod without init containers.
    fn pod_status(
        containers: &[Container],
        states: &[State],
        start_time: Timestamp,
        now: Timestamp,
    ) -> Value {
        pod_status_with_init(&[], &[], containers, states, start_time, now)
    }

    fn condition<'a>(status: &'a Value, kind: &str) -> &'a Value {
        status["status"]["conditions"]
            .as_array()
            .and_then(|conditions| conditions.iter().find(|c| c["type"] == kind))
            .expect("condition")
    }

    #[test]
    fn a_running_container_makes_a_ready_running_pod() {
        let status = pod_status(
            &[container("payload")],
            &[running()],
            at("2026-01-01T00:00:00Z"),
            at("2026-01-01T00:00:01Z"),
        );

        assert_eq!(status["status"]["phase"], "Running");
        assert_eq!(status["status"]["podIP"], "127.0.0.1");
        assert_eq!(status["status"]["startTime"], "2026-01-01T00:00:00Z");
        let container = &status["status"]["containerStatuses"][0];
        assert_eq!(container["ready"], true);
        assert_eq!(container["started"], true);
        assert_eq!(container["restartCount"], 0);
        assert_eq!(
            container["state"]["running"]["startedAt"],
            "2026-01-01T00:00:00Z"
        );
        for kind in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            assert_eq!(condition(&status, kind)["status"], "True", "{kind}");
        }
    }

    #[test]
    fn a_failed_container_reports_its_exit_code() {
        let status = pod_status(
            &[container("payload")],
            &[ended(3)],
            at("2026-01-01T00:00:00Z"),
            at("2026-01-01T00:00:03Z"),
        );

        assert_eq!(status["status"]["phase"], "Failed");
        let container = &status["status"]["containerStatuses"][0];
        assert_eq!(container["ready"], false);
        let terminated = &container["state"]["terminated"];
        assert_eq!(terminated["exitCode"], 3);
        assert_eq!(terminated["reason"], "Error");
        assert_eq!(terminated["startedAt"], "2026-01-01T00:00:00Z");
        assert_eq!(terminated["finishedAt"], "2026-01-01T00:00:03Z");
        assert_eq!(condition(&status, "Ready")["status"], "False");
        assert_eq!(condition(&status, "Ready")["reason"], "PodCompleted");
    }

    #[test]
    fn the_phase_follows_all_containers() {
        assert_eq!(phase(&[ended(0)]), "Succeeded");
        assert_eq!(phase(&[ended(0), ended(0)]), "Succeeded");
        assert_eq!(phase(&[ended(0), ended(1)]), "Failed");
        assert_eq!(phase(&[ended(1), running()]), "Running");
    }

    #[test]
    fn a_pod_started_by_an_earlier_run_is_reported_lost() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "image": "", "imageID": "",
                 "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}},
                {"name": "b", "ready": false, "restartCount": 0, "image": "", "imageID": "",
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            ]},
        }))
        .expect("pod");
        let now = at("2026-01-01T00:01:00Z");

        let states = lost(&pod, now);

        assert!(was_started(&pod));
        assert_eq!(phase(&states), "Failed");
        let State::Terminated { exit, .. } = &states[0] else {
            panic!("not terminated: {states:?}");
        };
        assert_eq!(exit.reason, "ContainerStatusUnknown");
        assert_eq!(exit.exit_code, 137);
        assert_eq!(exit.started, Some(at("2026-01-01T00:00:00Z")));
        assert!(matches!(&states[1], State::Terminated { exit, .. } if exit.reason == "Completed"));
    }

    #[test]
    fn a_container_whose_image_cannot_be_pulled_keeps_the_pod_pending_with_the_reason() {
        let waiting = State::Waiting {
            reason: "ImagePullBackOff".into(),
            message: "Back-off pulling image \"x\"".into(),
        };

        let status = pod_status(
            &[container("payload")],
            std::slice::from_ref(&waiting),
            at("2026-01-01T00:00:00Z"),
            at("2026-01-01T00:00:01Z"),
        );

        assert_eq!(status["status"]["phase"], "Pending");
        let container = &status["status"]["containerStatuses"][0];
        assert_eq!(container["ready"], false);
        assert_eq!(container["state"]["waiting"]["reason"], "ImagePullBackOff");
        assert_eq!(condition(&status, "Ready")["reason"], "ContainersNotReady");
        assert_eq!(phase(&[running(), waiting.clone()]), "Pending");
    }

    #[test]
    fn a_pod_stopped_before_its_image_was_pulled_fails() {
        let waiting = State::Waiting {
            reason: "ErrImagePull".into(),
            message: "not found".into(),
        };

        let stopped = waiting.stopped(at("2026-01-01T00:00:02Z"));

        assert_eq!(phase(std::slice::from_ref(&stopped)), "Failed");
        assert!(
            matches!(&stopped, State::Terminated { exit, .. } if exit.reason == "ContainerStatusUnknown" && exit.exit_code == 137)
        );
    }

    #[test]
    fn a_pod_is_pending_and_not_initialized_while_an_init_container_runs() {
        let status = pod_status_with_init(
            &[container("fetch")],
            &[running()],
            &[container("payload")],
            &[initializing()],
            at("2026-01-01T00:00:00Z"),
            at("2026-01-01T00:00:01Z"),
        );

        assert_eq!(status["status"]["phase"], "Pending");
        assert_eq!(condition(&status, "Initialized")["status"], "False");
        assert_eq!(
            condition(&status, "Initialized")["reason"],
            "ContainersNotInitialized"
        );
        assert_eq!(
            status["status"]["initContainerStatuses"][0]["state"]["running"]["startedAt"],
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            status["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
            "PodInitializing"
        );
    }

    #[test]
    fn a_failed_init_container_fails_the_pod_before_its_containers_start() {
        let status = pod_status_with_init(
            &[container("fetch")],
            &[ended(2)],
            &[container("payload")],
            &[initializing()],
            at("2026-01-01T00:00:00Z"),
            at("2026-01-01T00:00:03Z"),
        );

        assert_eq!(status["status"]["phase"], "Failed");
        assert_eq!(
            status["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"],
            2
        );
    }

    #[test]
    fn once_init_containers_succeeded_the_containers_decide_the_phase() {
        let status = pod_status_with_init(
            &[container("fetch")],
            &[ended(0)],
            &[container("payload")],
            &[running()],
            at("2026-01-01T00:00:00Z"),
            at("2026-01-01T00:00:03Z"),
        );

        assert_eq!(status["status"]["phase"], "Running");
        assert_eq!(condition(&status, "Initialized")["status"], "True");
        assert_eq!(condition(&status, "Ready")["status"], "True");
    }

    #[test]
    fn a_pending_pod_was_not_started() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"phase": "Pending"},
        }))
        .expect("pod");

        assert!(!was_started(&pod));
        assert!(!has_ended(&pod));
    }
}
