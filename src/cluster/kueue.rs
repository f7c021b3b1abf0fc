//! What the service asks of Kueue: whether a LocalQueue or WorkloadPriorityClass exists,
//! whether Kueue is installed at all (for `/readyz`), the Workloads it watches, and a pending
//! submission's place in its queue from Kueue's visibility API.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;

use super::client::{Cluster, bounded};
use super::error::{ClusterError, Result};
use crate::domain::{FieldError, Queueing};

const GROUP: &str = "kueue.x-k8s.io";
const VERSION: &str = "v1beta2";

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, kind), plural)
}

/// Kueue's Workloads in our namespace, one for each Job in a queue.
pub fn workloads(cluster: &Cluster) -> Result<Api<DynamicObject>> {
    Ok(Api::namespaced_with(
        cluster.client()?,
        cluster.namespace(),
        &resource("Workload", "workloads"),
    ))
}

fn local_queues(cluster: &Cluster) -> Result<Api<DynamicObject>> {
    Ok(Api::namespaced_with(
        cluster.client()?,
        cluster.namespace(),
        &resource("LocalQueue", "localqueues"),
    ))
}

fn priority_classes(cluster: &Cluster) -> Result<Api<DynamicObject>> {
    Ok(Api::all_with(
        cluster.client()?,
        &resource("WorkloadPriorityClass", "workloadpriorityclasses"),
    ))
}

/// Checks that Kueue answers: its API is served (discovery, which every user may read) and its
/// LocalQueues of our namespace can be listed. What is wrong, in a few words, for `/readyz`.
pub async fn probe(cluster: &Cluster) -> std::result::Result<(), String> {
    let listed = async {
        let client = cluster.client()?;
        bounded(client.list_api_group_resources(&format!("{GROUP}/{VERSION}"))).await??;
        bounded(local_queues(cluster)?.list_metadata(&ListParams::default().limit(1))).await??;
        Ok::<(), ClusterError>(())
    };
    listed.await.map_err(|error| {
        tracing::warn!(%error, "Kueue not ready");
        match error {
            ClusterError::Api { code: 404, .. } => {
                "Kueue is not installed in the cluster (no kueue.x-k8s.io API)".to_owned()
            }
            ClusterError::Api {
                code: 401 | 403, ..
            } => "the service may not read Kueue's LocalQueues".to_owned(),
            other => format!("Kueue: {}", other.short_cause()),
        }
    })
}

/// Why a submission's queue or priority class cannot be used: each one the cluster does not
/// have. Errors only when the API server cannot be asked.
pub async fn check_names(cluster: &Cluster, queueing: &Queueing) -> Result<Vec<FieldError>> {
    let mut refused = Vec::new();
    if !exists(local_queues(cluster)?, &queueing.queue).await? {
        refused.push(FieldError::new(
            "queue",
            format!(
                "there is no Kueue LocalQueue {:?} in namespace {}",
                queueing.queue,
                cluster.namespace()
            ),
        ));
    }
    if let Some(class) = &queueing.priority_class
        && !exists(priority_classes(cluster)?, class).await?
    {
        refused.push(FieldError::new(
            "priority_class",
            format!("there is no Kueue WorkloadPriorityClass {class:?}"),
        ));
    }
    Ok(refused)
}

async fn exists(api: Api<DynamicObject>, name: &str) -> Result<bool> {
    match bounded(api.get_metadata_opt(name)).await? {
        Ok(found) => Ok(found.is_some()),
        Err(error) => Err(error.into()),
    }
}

/// The place (0 first) of the Job named `job` among the pending workloads of its LocalQueue,
/// from Kueue's visibility API; `None` when that cannot be asked or does not list it.
pub async fn position(cluster: &Cluster, queue: &str, job: &str) -> Option<i64> {
    let client = cluster.kueue()?.visibility.clone()?;
    let path = format!(
        "/apis/visibility.kueue.x-k8s.io/v1beta2/namespaces/{}/localqueues/{queue}/pendingworkloads",
        cluster.namespace()
    );
    let request = http::Request::get(path).body(Vec::new()).ok()?;
    let answer: Value = match bounded(client.request::<Value>(request)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) => {
            tracing::debug!(%error, "Kueue's visibility API did not answer");
            return None;
        }
        Err(error) => {
            tracing::debug!(%error, "Kueue's visibility API did not answer");
            return None;
        }
    };
    position_of(&answer, job)
}

/// The `positionInLocalQueue` of the Job named `job` in a `PendingWorkloadsSummary`.
fn position_of(summary: &Value, job: &str) -> Option<i64> {
    summary
        .get("items")?
        .as_array()?
        .iter()
        .find(|item| {
            item.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|owners| {
                    owners.iter().any(|owner| {
                        owner.get("kind").and_then(Value::as_str) == Some("Job")
                            && owner.get("name").and_then(Value::as_str) == Some(job)
                    })
                })
        })?
        .get("positionInLocalQueue")?
        .as_i64()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_jobs_position_is_read_from_its_workloads_entry() {
        let summary = json!({
            "kind": "PendingWorkloadsSummary",
            "items": [
                {"metadata": {"name": "job-a-1", "ownerReferences": [{"kind": "Job", "name": "a"}]},
                 "positionInLocalQueue": 0, "positionInClusterQueue": 3},
                {"metadata": {"name": "job-b-1", "ownerReferences": [{"kind": "Job", "name": "b"}]},
                 "positionInLocalQueue": 1, "positionInClusterQueue": 4}
            ]
        });

        assert_eq!(position_of(&summary, "b"), Some(1));
        assert_eq!(position_of(&summary, "c"), None);
    }
}
