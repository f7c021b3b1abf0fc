//! The simulated node's own behaviours that the suites rely on, against the real control plane:
//! init containers before containers, and a node that fails (NotReady, its running pods lost,
//! no new pods taken) and recovers. The failing node is a private one, for a `lone-` namespace
//! the shared node leaves alone, so no other test's pods are on it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json as body;

use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually, follow_states, id};
use crate::support::Backend;

/// A node-sim process of the test's own, taking only the pods of the test's namespace.
struct PrivateNode {
    process: Child,
    name: String,
    output: PathBuf,
}

impl PrivateNode {
    async fn start(cluster: &TestCluster) -> Self {
        let binary = std::env::var("SH_TEST_NODE_SIM")
            .expect("SH_TEST_NODE_SIM, the node-sim binary (tests/run.sh sets it)");
        let name = format!("node-{}", cluster.namespace);
        let output = cluster.scratch.path().join("node-sim.out");
        let process = Command::new(binary)
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args(["--node-name", &name, "--namespace", &cluster.namespace])
            .arg("--work-dir")
            .arg(cluster.scratch.path().join("node"))
            .stdout(std::fs::File::create(&output).expect("output file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start node-sim");
        let node = PrivateNode {
            process,
            name,
            output,
        };
        node.said("node-sim ready").await;
        node
    }

    /// Waits until the node printed `line`.
    async fn said(&self, line: &str) {
        eventually(
            &format!("node-sim to say {line:?}"),
            Duration::from_secs(30),
            || async {
                let printed = std::fs::read_to_string(&self.output).unwrap_or_default();
                printed.contains(line).then_some(())
            },
        )
        .await;
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.process.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
    }
}

impl Drop for PrivateNode {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.process.id().to_string())
            .status();
        let _ = self.process.wait();
    }
}

/// The node's Ready condition as the API server has it.
async fn ready_condition(cluster: &TestCluster, node: &str) -> Option<String> {
    let nodes: Api<Node> = Api::all(cluster.admin.clone());
    let node = nodes.get_opt(node).await.ok()??;
    node.status?
        .conditions?
        .into_iter()
        .find(|condition| condition.type_ == "Ready")
        .map(|condition| condition.status)
}

async fn a_failed_node_loses_its_running_pods_and_takes_none_until_it_recovers(backend: Backend) {
    let cluster = TestCluster::lone().await;
    let node = PrivateNode::start(&cluster).await;
    let app = cluster.spawn_service(backend).await;
    let gate = cluster.gate("never");
    let request =
        body!({"image": PAYLOAD_IMAGE, "command": gate.wait_command(), "backoff_limit": 0});
    let lost = id(&app.submit(request).await);
    follow_states(&app, &lost, &["running"]).await;

    node.signal("USR1");
    node.said("node-sim not-ready").await;
    eventually(
        "the node to be NotReady",
        Duration::from_secs(30),
        || async {
            (ready_condition(&cluster, &node.name).await.as_deref() == Some("False")).then_some(())
        },
    )
    .await;
    let (failed, _) = follow_states(&app, &lost, &["failed", "succeeded"]).await;
    let waiting = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": "echo after recovery"}))
        .await);
    let pods: Api<Pod> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let selector = format!("submission-helper.io/submission-id={waiting}");
    let unbound = eventually(
        "the next submission's pod to exist",
        Duration::from_secs(60),
        || async {
            let listed = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .ok()?;
            listed.items.into_iter().next()
        },
    )
    .await;

    assert_eq!(failed["state"], "failed", "{failed}");
    let lost_pods = json_pods(&app, &lost).await;
    assert_eq!(
        lost_pods[0]["containers"][0]["reason"], "ContainerStatusUnknown",
        "{lost_pods:?}"
    );
    assert_eq!(
        unbound.spec.and_then(|spec| spec.node_name),
        None,
        "a NotReady node bound a pod"
    );

    node.signal("USR2");
    node.said("node-sim ready-again").await;
    let (done, _) = follow_states(&app, &waiting, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let nodes: Api<Node> = Api::all(cluster.admin.clone());
    let _ = nodes.delete(&node.name, &DeleteParams::default()).await;
}
crate::on_the_cluster!(a_failed_node_loses_its_running_pods_and_takes_none_until_it_recovers);

async fn json_pods(app: &crate::support::TestApp, id: &str) -> Vec<serde_json::Value> {
    let listed = crate::support::json(
        app.get(&format!("/v1/submissions/{id}/pods")).await,
        reqwest::StatusCode::OK,
    )
    .await;
    listed["items"].as_array().cloned().unwrap_or_default()
}

/// A Job with an init container, created directly (the service's Jobs have none): the
/// init container runs first, and one that fails fails the pod before its container starts.
async fn init_job(cluster: &TestCluster, name: &str, init_command: &str, order: &str) -> Job {
    let job: Job = serde_json::from_value(body!({
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "initContainers": [{"name": "fetch", "image": PAYLOAD_IMAGE,
                "command": ["sh", "-c", format!("{init_command}; echo init >> '{order}'")]}],
            "containers": [{"name": "payload", "image": PAYLOAD_IMAGE,
                "command": ["sh", "-c", format!("echo main >> '{order}'")]}],
        }}},
    }))
    .expect("job");
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("create job")
}

/// Waits until the Job has the condition `kind`, and returns its pods.
async fn ended_with(cluster: &TestCluster, name: &str, kind: &str) -> Vec<Pod> {
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let pods: Api<Pod> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    eventually(
        &format!("Job {name} to be {kind}"),
        Duration::from_secs(60),
        || async {
            let job = jobs.get_opt(name).await.ok()??;
            let ended = job
                .status?
                .conditions?
                .into_iter()
                .any(|condition| condition.type_ == kind && condition.status == "True");
            if !ended {
                return None;
            }
            let selector = format!("job-name={name}");
            Some(
                pods.list(&ListParams::default().labels(&selector))
                    .await
                    .ok()?
                    .items,
            )
        },
    )
    .await
}

#[tokio::test]
#[ignore = "needs the local control plane: run tests/run.sh"]
async fn the_simulated_node_runs_init_containers_first_and_a_failed_one_stops_the_pod() {
    let cluster = TestCluster::simulated().await;
    let (good, bad) = (
        cluster.scratch.path().join("good"),
        cluster.scratch.path().join("bad"),
    );

    init_job(&cluster, "with-init", "true", &good.display().to_string()).await;
    init_job(
        &cluster,
        "failing-init",
        "exit 3",
        &bad.display().to_string(),
    )
    .await;
    let succeeded = ended_with(&cluster, "with-init", "Complete").await;
    let failed = ended_with(&cluster, "failing-init", "Failed").await;

    assert_eq!(
        std::fs::read_to_string(&good).ok().as_deref(),
        Some("init\nmain\n")
    );
    assert_eq!(
        std::fs::read_to_string(&bad).ok(),
        None,
        "nothing ran after the failed init"
    );
    let init_exit = |pods: &[Pod]| {
        pods.first()
            .and_then(|pod| pod.status.clone())
            .and_then(|status| status.init_container_statuses)
            .and_then(|statuses| statuses.into_iter().next())
            .and_then(|status| status.state?.terminated)
            .map(|terminated| terminated.exit_code)
    };
    assert_eq!(init_exit(&succeeded), Some(0));
    assert_eq!(init_exit(&failed), Some(3));
    let phase = failed
        .first()
        .and_then(|pod| pod.status.clone())
        .and_then(|status| status.phase);
    assert_eq!(phase.as_deref(), Some("Failed"));
}
