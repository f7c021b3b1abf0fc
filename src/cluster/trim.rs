//! What the caches keep of each Job and pod: only what the views, the reconciles and the log
//! readers read.
//!
//! The watches deliver whole objects, and most of each is never read here: the Job's pod
//! template (command, environment, volumes, security settings), a pod's spec beyond its
//! containers' names and resources and its node, its addresses and its containers' images,
//! ids and mounts, annotations and `managedFields`. At 5,000 live Jobs those were most of what
//! the service held (BENCHMARKS.md). A pod is decoded into a type of our own that declares
//! only what is kept ([`super::cached_pod`]); a Job is trimmed before the reflector stores it.
//! A field read anywhere below `cluster/` or in the views must be kept here: the tests below
//! name them.

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::cached_pod::Pod;
use crate::domain::ADMISSION_GATE_ANNOTATION;

/// Keeps a Job's metadata, its completions, suspension and limits, and its whole status.
pub fn job(job: &mut Job) {
    metadata(&mut job.metadata);
    if let Some(spec) = job.spec.take() {
        job.spec = Some(JobSpec {
            completions: spec.completions,
            parallelism: spec.parallelism,
            suspend: spec.suspend,
            backoff_limit: spec.backoff_limit,
            active_deadline_seconds: spec.active_deadline_seconds,
            ttl_seconds_after_finished: spec.ttl_seconds_after_finished,
            ..JobSpec::default()
        });
    }
}

/// Keeps a pod's metadata but what no reader looks at, and its containers' resources but
/// their claims. (The rest of the pod is not even decoded: [`Pod`] declares what is kept.)
pub fn pod(pod: &mut Pod) {
    metadata(&mut pod.metadata);
    if let Some(spec) = &mut pod.spec {
        let containers = spec.init_containers.iter_mut().flatten();
        for container in containers.chain(spec.containers.iter_mut()) {
            if let Some(resources) = &mut container.resources {
                resources.claims = None;
            }
        }
    }
}

/// Drops what no reader looks at: annotations (Kueue's and the API server's) but our admission
/// gate, managed fields, owner references, finalizers and the name's prefix. The labels stay:
/// a selector of the pods' or Jobs' lists may name any of them.
fn metadata(metadata: &mut ObjectMeta) {
    metadata.annotations = metadata.annotations.take().and_then(|mut annotations| {
        let gate = annotations.remove_entry(ADMISSION_GATE_ANNOTATION)?;
        Some(std::iter::once(gate).collect())
    });
    metadata.managed_fields = None;
    metadata.owner_references = None;
    metadata.finalizers = None;
    metadata.generate_name = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cached_job_keeps_what_its_views_read_and_drops_its_pod_template() {
        let mut cached: Job = serde_json::from_value(json!({
            "metadata": {
                "name": "sh-7", "namespace": "ns", "uid": "u-1", "resourceVersion": "42",
                "creationTimestamp": "2026-12-06T10:00:00Z",
                "labels": {"app": "submission-helper", "submission-helper/id": "7"},
                "annotations": {"batch.kubernetes.io/job-tracking": ""},
                "managedFields": [{"manager": "submission-helper", "operation": "Update"}]
            },
            "spec": {
                "completions": 1, "parallelism": 1, "suspend": true, "backoffLimit": 3,
                "activeDeadlineSeconds": 600, "ttlSecondsAfterFinished": 60,
                "template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "payload", "image": "atlas/analysis:1",
                                    "command": ["bash", "-cl", "run.sh"]}],
                    "volumes": [{"name": "ntuples",
                                 "persistentVolumeClaim": {"claimName": "ntuples-claim"}}]
                }}
            },
            "status": {"active": 1, "startTime": "2026-12-06T10:00:01Z",
                       "conditions": [{"type": "Suspended", "status": "True"}]}
        }))
        .expect("a Job");
        let status = cached.status.clone();
        job(&mut cached);
        assert_eq!(
            serde_json::to_value(&cached.metadata).expect("metadata"),
            json!({
                "name": "sh-7", "namespace": "ns", "uid": "u-1", "resourceVersion": "42",
                "creationTimestamp": "2026-12-06T10:00:00Z",
                "labels": {"app": "submission-helper", "submission-helper/id": "7"}
            })
        );
        assert_eq!(
            serde_json::to_value(&cached.spec).expect("spec"),
            json!({
                "completions": 1, "parallelism": 1, "suspend": true, "backoffLimit": 3,
                "activeDeadlineSeconds": 600, "ttlSecondsAfterFinished": 60,
                "template": {}
            })
        );
        assert_eq!(cached.status, status);
    }

    #[test]
    fn a_cached_job_keeps_our_admission_gate_and_no_other_annotation() {
        let mut cached: Job = serde_json::from_value(json!({
            "metadata": {"name": "sh-7", "annotations": {
                "batch.kubernetes.io/job-tracking": "",
                "kueue.x-k8s.io/admission-gated-by": "submission-helper.io/max-concurrent"
            }}
        }))
        .expect("a Job");

        job(&mut cached);

        assert_eq!(
            serde_json::to_value(&cached.metadata).expect("metadata")["annotations"],
            json!({"kueue.x-k8s.io/admission-gated-by": "submission-helper.io/max-concurrent"})
        );
    }

    #[test]
    fn a_cached_pod_keeps_its_node_its_containers_names_and_resources_and_their_states() {
        let mut cached: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": "sh-7-abcde", "namespace": "ns", "uid": "p-1",
                "creationTimestamp": "2026-12-06T10:00:01Z",
                "deletionTimestamp": "2026-12-06T10:05:00Z",
                "labels": {"job-name": "sh-7", "submission-helper/id": "7"},
                "generateName": "sh-7-",
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "sh-7",
                                     "uid": "u-1", "controller": true}],
                "finalizers": ["batch.kubernetes.io/job-tracking"],
                "annotations": {"kubectl.kubernetes.io/default-container": "payload"}
            },
            "spec": {
                "nodeName": "node-1",
                "initContainers": [{"name": "executor-0", "image": "alpine",
                                    "resources": {"limits": {"memory": "1Gi"}}}],
                "containers": [{"name": "payload", "image": "atlas/analysis:1",
                                "command": ["bash", "-cl", "run.sh"],
                                "env": [{"name": "A", "value": "1"}],
                                "resources": {"requests": {"cpu": "1", "memory": "2Gi"},
                                              "limits": {"memory": "2Gi"},
                                              "claims": [{"name": "gpu"}]}}],
                "volumes": [{"name": "ntuples",
                             "persistentVolumeClaim": {"claimName": "ntuples-claim"}}],
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]
            },
            "status": {"phase": "Failed", "reason": "Evicted", "message": "low on memory",
                       "startTime": "2026-12-06T10:00:02Z", "podIP": "10.0.0.7",
                       "qosClass": "Burstable", "hostIP": "192.0.2.1",
                       "conditions": [{"type": "DisruptionTarget", "status": "True"}],
                       "containerStatuses": [{"name": "payload", "image": "atlas/analysis:1",
                                              "imageID": "docker.io/atlas@sha256:0",
                                              "containerID": "containerd://1", "ready": false,
                                              "restartCount": 1, "started": false,
                                              "volumeMounts": [{"name": "ntuples",
                                                                "mountPath": "/ntuples"}],
                                              "state": {"terminated": {"exitCode": 137,
                                                                       "reason": "OOMKilled"}},
                                              "lastState": {"terminated": {"exitCode": 1}}}]}
        }))
        .expect("a pod");
        pod(&mut cached);
        let metadata = serde_json::to_value(&cached.metadata).expect("metadata");
        for dropped in [
            "annotations",
            "generateName",
            "ownerReferences",
            "finalizers",
        ] {
            assert_eq!(metadata.get(dropped), None, "{dropped} kept: {metadata}");
        }
        for kept in ["name", "labels", "deletionTimestamp", "uid"] {
            assert!(metadata.get(kept).is_some(), "{kept} dropped: {metadata}");
        }
        assert_eq!(
            serde_json::to_value(&cached.spec).expect("spec"),
            json!({
                "nodeName": "node-1",
                "initContainers": [{"name": "executor-0",
                                    "resources": {"limits": {"memory": "1Gi"}}}],
                "containers": [{"name": "payload",
                                "resources": {"requests": {"cpu": "1", "memory": "2Gi"},
                                              "limits": {"memory": "2Gi"}}}]
            })
        );
        assert_eq!(
            serde_json::to_value(&cached.status).expect("status"),
            json!({
                "phase": "Failed", "reason": "Evicted", "message": "low on memory",
                "startTime": "2026-12-06T10:00:02Z",
                "conditions": [{"type": "DisruptionTarget", "status": "True"}],
                "containerStatuses": [{"name": "payload",
                                       "ready": false, "restartCount": 1, "started": false,
                                       "state": {"terminated": {"exitCode": 137,
                                                                "reason": "OOMKilled"}},
                                       "lastState": {"terminated": {"exitCode": 1}}}]
            })
        );
    }
}
