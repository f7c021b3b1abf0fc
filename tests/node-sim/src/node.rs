//! The Node object: registered Ready with this process's kubelet endpoint, and kept Ready by a
//! heartbeat so the node lifecycle controller never evicts its pods.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::pods::k8s_time;

const HEARTBEAT: Duration = Duration::from_secs(10);

/// The node's status: Ready, reachable at 127.0.0.1 with its kubelet port, room for many pods.
pub fn status(name: &str, kubelet_port: u16, since: Timestamp, now: Timestamp) -> Value {
    let (since, now) = (k8s_time(since), k8s_time(now));
    let condition = |kind: &str, status: &str, reason: &str| {
        json!({"type": kind, "status": status, "reason": reason,
               "lastHeartbeatTime": now, "lastTransitionTime": since})
    };
    let resources =
        json!({"cpu": "64", "memory": "256Gi", "pods": "1000", "ephemeral-storage": "1Ti"});
    json!({"status": {
        "conditions": [
            condition("Ready", "True", "KubeletReady"),
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID"),
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
            "containerRuntimeVersion": "node-sim://1", "kubeletVersion": "v1.20.0",
            "kubeProxyVersion": "v1.20.0", "operatingSystem": "linux",
            "architecture": std::env::consts::ARCH,
        },
    }})
}

/// Creates the Node if it does not exist, then reports it Ready.
pub async fn register(client: &Client, name: &str, kubelet_port: u16) -> anyhow::Result<Timestamp> {
    let nodes: Api<Node> = Api::all(client.clone());
    if nodes.get_opt(name).await?.is_none() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "node-sim": "true"}},
        }))?;
        nodes.create(&PostParams::default(), &node).await?;
    }
    let since = Timestamp::now();
    nodes
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(status(name, kubelet_port, since, since)),
        )
        .await?;
    Ok(since)
}

/// Renews the Ready condition's heartbeat until the task is aborted.
pub async fn heartbeat(client: Client, name: String, kubelet_port: u16, since: Timestamp) {
    let nodes: Api<Node> = Api::all(client);
    let mut ticks = tokio::time::interval(HEARTBEAT);
    loop {
        ticks.tick().await;
        let status = status(&name, kubelet_port, since, Timestamp::now());
        if let Err(error) = nodes
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
            .await
        {
            tracing::warn!(%error, "heartbeat failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_is_ready_at_its_kubelet_port() {
        let status = status("sim", 10250, Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH);

        assert_eq!(status["status"]["conditions"][0]["type"], "Ready");
        assert_eq!(status["status"]["conditions"][0]["status"], "True");
        assert_eq!(
            status["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"],
            10250
        );
        assert_eq!(status["status"]["addresses"][0]["address"], "127.0.0.1");
    }
}
