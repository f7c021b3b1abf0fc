//! The Node object: registered Ready with this process's kubelet endpoint, and kept Ready by a
//! heartbeat (the Ready condition and the node's Lease) so the node lifecycle controller never
//! marks it NotReady or evicts its pods, unless a test makes the node unhealthy ([`Health`]):
//! then it reports itself NotReady, as a kubelet whose container runtime is down does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::pod_status::k8s_time;

/// The kubelet release this node says it runs: the control plane's own.
const KUBELET_VERSION: &str = "v1.37.2";
const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long the Lease holds without renewal (a kubelet's default).
const LEASE_SECONDS: i32 = 40;
const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Whether the simulated node is healthy; shared by the heartbeat, the binder and the pods.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<AtomicBool>);

impl Health {
    pub fn is_ready(&self) -> bool {
        !self.0.load(Ordering::SeqCst)
    }

    pub fn set_ready(&self, ready: bool) {
        self.0.store(!ready, Ordering::SeqCst);
    }
}

/// The node's status: Ready (or not), reachable at 127.0.0.1 with its kubelet port, room for
/// many pods.
pub fn status(
    name: &str,
    kubelet_port: u16,
    since: Timestamp,
    now: Timestamp,
    ready: bool,
) -> Value {
    let (since, now) = (k8s_time(since), k8s_time(now));
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": since})
    };
    let resources =
        json!({"cpu": "64", "memory": "256Gi", "pods": "1000", "ephemeral-storage": "1Ti"});
    json!({"status": {
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            if ready {
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status")
            } else {
                condition("Ready", "False", "KubeletNotReady", "container runtime is down (simulated)")
            },
        ],
        "addresses": [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "capacity": resources,
        "allocatable": resources,
        "nodeInfo": {
            "machineID": "node-sim", "systemUUID": "node-sim", "bootID": "node-sim",
            "kernelVersion": std::env::consts::OS, "osImage": "node-sim",
            "containerRuntimeVersion": "node-sim://1", "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION, "operatingSystem": "linux",
            "architecture": std::env::consts::ARCH,
        },
    }})
}

/// The node's Lease, held by the node and renewed `now`.
pub fn lease(name: &str, node_uid: Option<String>, now: Timestamp) -> Value {
    let mut lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": LEASE_NAMESPACE},
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": now.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        },
    });
    // Owned by the node, so the garbage collector removes it with the node, as a kubelet's is.
    if let Some(uid) = node_uid {
        lease["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": "Node", "name": name, "uid": uid}]);
    }
    lease
}

/// The registered node: enough to report on it.
pub struct Registration {
    client: Client,
    name: String,
    kubelet_port: u16,
    since: Timestamp,
    health: Health,
}

impl Registration {
    /// Creates the Node if it does not exist, then reports it Ready and takes its Lease.
    pub async fn register(
        client: Client,
        name: String,
        kubelet_port: u16,
        health: Health,
    ) -> kube::Result<Self> {
        let registration = Registration {
            client,
            name,
            kubelet_port,
            since: Timestamp::now(),
            health,
        };
        registration.report().await?;
        Ok(registration)
    }

    async fn report(&self) -> kube::Result<()> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let ready = self.health.is_ready();
        let status = status(
            &self.name,
            self.kubelet_port,
            self.since,
            Timestamp::now(),
            ready,
        );
        let node = match nodes
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&status))
            .await
        {
            Err(kube::Error::Api(error)) if error.code == 404 => {
                let node: Node = serde_json::from_value(json!({
                    "metadata": {"name": self.name, "labels": {
                        "kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": std::env::consts::ARCH, "node-sim": "true"}},
                }))
                .map_err(kube::Error::SerdeError)?;
                nodes.create(&PostParams::default(), &node).await?;
                tracing::info!(node = %self.name, "registered");
                nodes
                    .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&status))
                    .await?
            }
            node => node?,
        };
        self.renew_lease(node.uid()).await
    }

    async fn renew_lease(&self, node_uid: Option<String>) -> kube::Result<()> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        let lease = lease(&self.name, node_uid, Timestamp::now());
        match leases
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&lease))
            .await
        {
            Err(kube::Error::Api(error)) if error.code == 404 => {
                let lease: Lease =
                    serde_json::from_value(lease).map_err(kube::Error::SerdeError)?;
                leases.create(&PostParams::default(), &lease).await?;
                Ok(())
            }
            renewed => renewed.map(|_| ()),
        }
    }

    /// Renews the heartbeat until the task is aborted, registering the node again if it was
    /// deleted; failures are logged and retried at the next beat. A change of health is
    /// reported at once (`changed`).
    pub async fn heartbeat(self, mut changed: tokio::sync::watch::Receiver<()>) {
        let mut beats = tokio::time::interval(HEARTBEAT);
        beats.tick().await;
        loop {
            tokio::select! {
                _ = beats.tick() => {}
                result = changed.changed() => if result.is_err() { return },
            }
            if let Err(error) = self.report().await {
                tracing::warn!(node = %self.name, %error, "heartbeat failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_is_ready_at_its_kubelet_port() {
        let since: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let now: Timestamp = "2026-01-01T00:00:10.7Z".parse().expect("time");

        let status = status("sim", 10250, since, now, true);

        let ready = status["status"]["conditions"]
            .as_array()
            .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Ready"))
            .expect("Ready condition");
        assert_eq!(ready["status"], "True");
        assert_eq!(ready["reason"], "KubeletReady");
        assert_eq!(ready["lastHeartbeatTime"], "2026-01-01T00:00:10Z");
        assert_eq!(ready["lastTransitionTime"], "2026-01-01T00:00:00Z");
        assert_eq!(
            status["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"],
            10250
        );
        assert_eq!(status["status"]["addresses"][0]["type"], "InternalIP");
        assert_eq!(status["status"]["addresses"][0]["address"], "127.0.0.1");
        assert_eq!(status["status"]["allocatable"]["pods"], "1000");
    }

    #[test]
    fn an_unhealthy_node_reports_itself_not_ready_with_the_kubelets_reason() {
        let now: Timestamp = "2026-01-01T00:00:10Z".parse().expect("time");

        let status = status("sim", 10250, now, now, false);

        let ready = status["status"]["conditions"]
            .as_array()
            .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Ready"))
            .expect("Ready condition");
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "KubeletNotReady");
    }

    #[test]
    fn the_lease_is_held_by_the_node_and_owned_by_it() {
        let now: Timestamp = "2026-01-01T00:00:10.123456789Z".parse().expect("time");

        let lease = lease("sim", Some("uid-1".into()), now);

        assert_eq!(lease["spec"]["holderIdentity"], "sim");
        assert_eq!(lease["spec"]["renewTime"], "2026-01-01T00:00:10.123456Z");
        assert_eq!(lease["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        let parsed: Lease = serde_json::from_value(lease).expect("a Lease");
        assert_eq!(
            parsed.spec.and_then(|spec| spec.lease_duration_seconds),
            Some(40)
        );
    }
}
