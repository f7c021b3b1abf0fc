//! What each executor of a TES task's pod did, read when the pod ended, before its log is
//! archived: the archive is what lets the task be shown as ended, so a client that sees a
//! final state finds every exit code. Read from the pod's container statuses (exit code,
//! times, and the code an ignored error reported in its termination message) and from each
//! executor's container log.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::cached_pod::{ContainerStatus, Pod};
use super::client::Cluster;
use super::logs;
use crate::domain::SubmissionId;
use crate::domain::tes::runs::{
    EXECUTOR_PREFIX, ExecutorRun, INPUTS_CONTAINER, OUTPUT_LIMIT, OUTPUTS_CONTAINER, PodReport,
    copied_outputs, missing_inputs, reported_exit_code, start_error_exit_code,
};
use crate::storage::Store;

/// Records what the executors of `pod` did, if it is a task's pod. Failures are logged: the
/// task is then shown without its executors' output, never held up.
pub async fn record(cluster: &Cluster, store: &Store, id: SubmissionId, pod: Arc<Pod>) {
    let Some(name) = pod.metadata.name.as_deref() else {
        return;
    };
    record_report(cluster, store, id, &pod, name).await;
    let mut runs = ended_executors(&pod);
    if runs.is_empty() {
        return;
    }
    let mut all_read = true;
    for (container, run) in &mut runs {
        let read = tokio::time::timeout(
            logs::ARCHIVE_TIME_LIMIT,
            logs::container_tail(cluster, name, container, OUTPUT_LIMIT),
        )
        .await;
        match read {
            Ok(Ok((output, truncated_bytes))) => {
                run.output = output;
                run.truncated_bytes = truncated_bytes;
            }
            Ok(Err(error)) => {
                tracing::warn!(submission_id = %id, pod = %name, %container, %error, "cannot read an executor's log");
                run.output = logs::not_archived_note(error.short_cause()).into_bytes();
                all_read = false;
            }
            Err(_) => {
                tracing::warn!(submission_id = %id, pod = %name, %container, "reading an executor's log took too long");
                run.output = logs::not_archived_note("reading it took too long").into_bytes();
                all_read = false;
            }
        }
    }
    let created = pod
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or_else(Timestamp::now, |at| at.0);
    let runs: Vec<ExecutorRun> = runs.into_iter().map(|(_, run)| run).collect();
    let recorded = store.record_executor_runs(id, name, created, &runs, all_read);
    if let Err(error) = recorded.await {
        tracing::warn!(submission_id = %id, pod = %name, %error, "cannot record what the executors did");
    }
}

/// Records what the service's own steps of the pod said (the inputs they did not find, the
/// outputs they copied), if either ran to its end.
async fn record_report(cluster: &Cluster, store: &Store, id: SubmissionId, pod: &Pod, name: &str) {
    let mut report = PodReport::default();
    let mut said = false;
    if ended_with(pod, INPUTS_CONTAINER).is_some_and(|code| code != 0)
        && let Some(log) = own_log(cluster, id, name, INPUTS_CONTAINER).await
    {
        report.missing_inputs = missing_inputs(&log);
        said = true;
    }
    if ended_with(pod, OUTPUTS_CONTAINER).is_some()
        && let Some(log) = own_log(cluster, id, name, OUTPUTS_CONTAINER).await
    {
        report.copied_outputs = copied_outputs(&log);
        said = true;
    }
    if !said {
        return;
    }
    if let Err(error) = store.record_pod_report(id, &report).await {
        tracing::warn!(submission_id = %id, pod = %name, %error, "cannot record what the task's own steps said");
    }
}

/// The exit code of `pod`'s container `container`, once it ended.
fn ended_with(pod: &Pod, container: &str) -> Option<i32> {
    logs::statuses_in_order(pod)
        .filter(|status| status.name == container)
        .find_map(|status| status.state.as_ref()?.terminated.as_ref())
        .map(|ended| ended.exit_code)
}

/// The log of one of the service's own steps in pod `name`.
async fn own_log(
    cluster: &Cluster,
    id: SubmissionId,
    name: &str,
    container: &str,
) -> Option<String> {
    let read = tokio::time::timeout(
        logs::ARCHIVE_TIME_LIMIT,
        logs::container_tail(cluster, name, container, OUTPUT_LIMIT),
    )
    .await;
    match read {
        Ok(Ok((log, _))) => Some(String::from_utf8_lossy(&log).into_owned()),
        Ok(Err(error)) => {
            tracing::warn!(submission_id = %id, pod = %name, %container, %error, "cannot read a step's log");
            None
        }
        Err(_) => {
            tracing::warn!(submission_id = %id, pod = %name, %container, "reading a step's log took too long");
            None
        }
    }
}

/// Each executor of `pod` that ended, with its container's name, in order (an executor the
/// pod never started is left out). Empty for a pod that is no task's.
pub fn ended_executors(pod: &Pod) -> Vec<(String, ExecutorRun)> {
    let mut runs: Vec<(String, ExecutorRun)> = logs::statuses_in_order(pod)
        .filter_map(ended_executor)
        .collect();
    runs.sort_by_key(|(_, run)| run.executor);
    runs
}

fn ended_executor(status: &ContainerStatus) -> Option<(String, ExecutorRun)> {
    let executor = status
        .name
        .strip_prefix(EXECUTOR_PREFIX)?
        .parse::<usize>()
        .ok()?;
    let ended = status.state.as_ref()?.terminated.as_ref()?;
    let message = ended.message.as_deref();
    let exit_code = reported_exit_code(message)
        .or_else(|| start_error_exit_code(ended.reason.as_deref(), message))
        .unwrap_or(ended.exit_code);
    // A container that could not start has no start time: Kubernetes shows the epoch.
    let time = |at: &Option<Time>| {
        at.as_ref()
            .map(|at| at.0)
            .filter(|at| *at != Timestamp::UNIX_EPOCH)
    };
    let run = ExecutorRun {
        executor,
        exit_code,
        start_time: time(&ended.started_at),
        end_time: time(&ended.finished_at),
        output: Vec::new(),
        truncated_bytes: 0,
    };
    Some((status.name.clone(), run))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "sh-1"}, "status": status}))
            .expect("pod")
    }

    fn terminated(name: &str, exit_code: i32, message: Option<&str>) -> serde_json::Value {
        json!({
            "name": name, "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {
                "exitCode": exit_code, "message": message,
                "startedAt": "2026-12-06T08:00:00Z", "finishedAt": "2026-12-06T08:00:02Z",
            }},
        })
    }

    #[test]
    fn executors_that_ended_are_read_in_order_with_their_exit_codes_and_times() {
        let pod = pod(json!({
            "initContainerStatuses": [
                terminated("tes-inputs", 0, None),
                terminated("exec-0", 0, None),
                terminated("exec-1", 0, Some("tes-exit-code=3\n")),
            ],
            "containerStatuses": [terminated("exec-2", 1, None)],
        }));

        let runs = ended_executors(&pod);

        let summary: Vec<(&str, usize, i32)> = runs
            .iter()
            .map(|(name, run)| (name.as_str(), run.executor, run.exit_code))
            .collect();
        assert_eq!(
            summary,
            [("exec-0", 0, 0), ("exec-1", 1, 3), ("exec-2", 2, 1)]
        );
        assert_eq!(
            runs[0].1.start_time.map(|at| at.to_string()).as_deref(),
            Some("2026-12-06T08:00:00Z")
        );
        assert_eq!(
            runs[0].1.end_time.map(|at| at.to_string()).as_deref(),
            Some("2026-12-06T08:00:02Z")
        );
    }

    /// Executor 1, waiting for executor 0 to end.
    fn second_waiting() -> serde_json::Value {
        json!({
            "name": "exec-1", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "PodInitializing"}},
        })
    }

    #[test]
    fn an_executor_that_never_started_and_a_pod_that_is_no_tasks_have_no_runs() {
        let failed_first = pod(json!({
            "initContainerStatuses": [terminated("exec-0", 2, None)],
            "containerStatuses": [second_waiting()],
        }));
        let payload = pod(json!({"containerStatuses": [terminated("analysis", 0, None)]}));

        assert_eq!(ended_executors(&failed_first).len(), 1);
        assert!(ended_executors(&payload).is_empty());
    }

    #[test]
    fn the_log_of_a_pod_whose_first_executor_failed_is_that_executors() {
        let failed_first = pod(json!({
            "initContainerStatuses": [terminated("tes-inputs", 0, None), terminated("exec-0", 2, None)],
            "containerStatuses": [second_waiting()],
        }));

        assert_eq!(logs::logged_container(&failed_first), Some("exec-0"));
        assert!(logs::has_started(&failed_first));
    }
}
