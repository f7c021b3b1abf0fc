//! How a pod of a submission ended, read from it when it ends (before its log is archived, so
//! a submission shown as ended has its attempts) and kept after Kubernetes deletes it.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::cached_pod::Pod;
use super::logs;
use crate::domain::{PodEnd, SubmissionId};
use crate::storage::Store;

/// Records how `pod` ended; `suspended` if its Job's suspension stopped it (Kueue evicted the
/// Job), which the job controller does not count as a failure. A failure to record is
/// logged: the attempt is then missing from the submission's history, and nothing else is
/// held up.
pub async fn record(store: &Store, id: SubmissionId, pod: Arc<Pod>, suspended: bool) {
    let Some(mut end) = pod_end(&pod) else {
        return;
    };
    let stopped = suspended && end.exit_code != Some(0);
    if stopped {
        end.disrupted = true;
        end.reason = Some("Suspended".into());
    }
    let created = pod
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or_else(Timestamp::now, |at| at.0);
    if let Err(error) = store.record_pod_end(id, created, &end).await {
        tracing::warn!(submission_id = %id, pod = %end.pod, %error, "cannot record how a pod ended");
    }
}

/// How `pod` ended, read from its payload container (the last that started) and its status.
pub fn pod_end(pod: &Pod) -> Option<PodEnd> {
    let name = pod.metadata.name.clone()?;
    let status = pod.status.as_ref();
    let container = logs::logged_container(pod).or_else(|| logs::payload_container(pod));
    let ended = container.and_then(|container| {
        logs::statuses_in_order(pod)
            .find(|status| status.name == container)
            .and_then(|status| status.state.as_ref()?.terminated.clone())
    });
    let memory = container.and_then(|container| {
        let spec = pod.spec.as_ref()?;
        let resources = spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .find(|spec| spec.name == container)?
            .resources
            .as_ref()?;
        memory_of(resources.limits.as_ref()).or_else(|| memory_of(resources.requests.as_ref()))
    });
    let disrupted = status
        .and_then(|status| status.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|condition| condition.type_ == "DisruptionTarget" && condition.status == "True");
    let time = |at: Option<&Time>| at.map(|at| at.0).filter(|at| *at != Timestamp::UNIX_EPOCH);
    // A reason of the whole pod (Evicted, DeadlineExceeded) says more than its container's.
    let reason = status
        .and_then(|status| status.reason.clone())
        .or_else(|| ended.as_ref().and_then(|ended| ended.reason.clone()));
    Some(PodEnd {
        pod: name,
        started_at: time(ended.as_ref().and_then(|ended| ended.started_at.as_ref())),
        finished_at: time(ended.as_ref().and_then(|ended| ended.finished_at.as_ref())),
        exit_code: ended.as_ref().map(|ended| ended.exit_code),
        reason,
        memory,
        disrupted,
    })
}

fn memory_of(amounts: Option<&BTreeMap<String, Quantity>>) -> Option<String> {
    amounts?.get("memory").map(|quantity| quantity.0.clone())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_oom_killed_payload_ends_with_its_code_reason_and_memory() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "sh-1-abcde"},
            "spec": {"containers": [{"name": "analyze", "resources": {
                "requests": {"memory": "4000M"}, "limits": {"memory": "8000M"}}}]},
            "status": {"phase": "Failed", "containerStatuses": [{
                "name": "analyze", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                    "startedAt": "2026-12-06T08:00:00Z", "finishedAt": "2026-12-06T08:01:00Z"}},
            }]},
        }))
        .expect("pod");

        let end = pod_end(&pod).expect("ended");

        assert_eq!(end.exit_code, Some(137));
        assert_eq!(end.reason.as_deref(), Some("OOMKilled"));
        assert_eq!(end.memory.as_deref(), Some("8000M"));
        assert!(!end.disrupted);
    }

    #[test]
    fn an_evicted_pod_is_disrupted_and_says_so() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "sh-1-fghij"},
            "spec": {"containers": [{"name": "analyze"}]},
            "status": {"phase": "Failed", "reason": "Evicted",
                "conditions": [{"type": "DisruptionTarget", "status": "True"}]},
        }))
        .expect("pod");

        let end = pod_end(&pod).expect("ended");

        assert_eq!(end.exit_code, None);
        assert_eq!(end.reason.as_deref(), Some("Evicted"));
        assert!(end.disrupted);
    }
}
