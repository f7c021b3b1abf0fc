//! What a current Kubernetes brings, against the control plane `tests/control-plane.sh` built:
//! its version, pods deleted gracefully behind the job-tracking finalizer, evictions that do
//! not use up a retry (`podFailurePolicy`), the kubelet's reasons for an image it cannot pull,
//! and the shipped manifests accepted by the server.

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, EvictParams, ListParams};
use reqwest::StatusCode;
use serde_json::{Value, json as body};

use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually, follow_states, id};
use crate::on_the_cluster;
use crate::payload_node::MISSING_IMAGE;
use crate::support::{Backend, json};

#[tokio::test]
#[ignore = "needs the local control plane: run tests/run.sh"]
async fn the_control_plane_is_the_version_the_script_built() {
    let cluster = TestCluster::new().await;
    let expected = std::env::var("SH_TEST_KUBERNETES_VERSION")
        .expect("SH_TEST_KUBERNETES_VERSION (tests/control-plane.sh writes it into its env file)");

    let info = cluster.admin.apiserver_version().await.expect("/version");

    assert_eq!(
        info.git_version, expected,
        "the API server is not the release tests/control-plane.sh builds (a stale cache?)"
    );
    println!("control plane: Kubernetes {}", info.git_version);
}

/// The pods of a submission, as the API server lists them (terminating ones included).
async fn pods_of(cluster: &TestCluster, id: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let selector = format!("submission-helper.io/submission-id={id}");
    pods.list(&ListParams::default().labels(&selector))
        .await
        .expect("list pods")
        .items
}

/// Waits until a pod of the submission other than `not` runs, and returns its name.
async fn another_running_pod(app: &crate::support::TestApp, id: &str, not: &str) -> String {
    eventually(
        "a replacement pod to run",
        Duration::from_secs(90),
        || async {
            let listed = json(
                app.get(&format!("/v1/submissions/{id}/pods")).await,
                StatusCode::OK,
            )
            .await;
            listed["items"].as_array()?.iter().find_map(|pod| {
                (pod["name"] != not && pod["phase"] == "Running")
                    .then(|| pod["name"].as_str().map(str::to_owned))
                    .flatten()
            })
        },
    )
    .await
}

async fn an_evicted_pod_is_replaced_without_using_up_a_retry(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let gate = cluster.gate("finish");
    // No retry at all: only a failure the policy ignores can leave this Job alive.
    let request =
        body!({"image": PAYLOAD_IMAGE, "command": gate.wait_command(), "backoff_limit": 0});
    let id = id(&app.submit(request).await);
    follow_states(&app, &id, &["running"]).await;
    let evicted = pods_of(&cluster, &id).await[0]
        .metadata
        .name
        .clone()
        .expect("pod name");

    let pods: Api<Pod> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    pods.evict(&evicted, &EvictParams::default())
        .await
        .expect("kubectl drain's eviction");
    another_running_pod(&app, &id, &evicted).await;
    gate.open();

    let (done, _) = follow_states(&app, &id, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let job = jobs
        .get(done["job_name"].as_str().expect("job name"))
        .await
        .expect("job");
    let status = job.status.unwrap_or_default();
    assert_eq!(
        (status.succeeded, status.failed.unwrap_or(0)),
        (Some(1), 0),
        "the eviction is not counted as a failure"
    );
    eventually(
        "the evicted pod to be gone (its finalizer removed)",
        Duration::from_secs(60),
        || async {
            let left = pods_of(&cluster, &id).await;
            left.iter()
                .all(|pod| pod.metadata.name.as_deref() != Some(evicted.as_str()))
                .then_some(())
        },
    )
    .await;
}
on_the_cluster!(an_evicted_pod_is_replaced_without_using_up_a_retry);

async fn a_payload_past_its_deadline_is_stopped_and_fails_with_the_reason(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let gate = cluster.gate("never");
    let command = format!(
        "trap 'echo stopping; exit 143' TERM; echo started; {}",
        gate.wait_loop()
    );
    let request = body!({"image": PAYLOAD_IMAGE, "command": command, "active_deadline_seconds": 3});
    let id = id(&app.submit(request).await);

    let (failed, _) = follow_states(&app, &id, &["failed", "succeeded"]).await;

    assert_eq!(failed["state"], "failed", "{failed}");
    let message = failed["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("DeadlineExceeded"), "{failed}");
    assert!(!message.contains("stopping its pods"), "{failed}");
    // Failed is recorded only once the job controller saw the pod stop: it is terminal, or gone.
    let left = pods_of(&cluster, &id).await;
    assert!(
        left.iter().all(|pod| matches!(
            pod.status
                .as_ref()
                .and_then(|status| status.phase.as_deref()),
            Some("Failed" | "Succeeded")
        )),
        "{left:?}"
    );
}
on_the_cluster!(a_payload_past_its_deadline_is_stopped_and_fails_with_the_reason);

async fn an_image_that_cannot_be_pulled_is_explained_and_cancelling_it_leaves_nothing(
    backend: Backend,
) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let request = body!({"image": MISSING_IMAGE, "command": "true"});
    let id = id(&app.submit(request).await);

    let explained = eventually(
        "the kubelet's reason in the submission's message",
        Duration::from_secs(60),
        || async {
            let seen = json(
                app.get(&format!("/v1/submissions/{id}")).await,
                StatusCode::OK,
            )
            .await;
            let message = seen["message"].as_str().unwrap_or_default();
            (message.starts_with("ErrImagePull") || message.starts_with("ImagePullBackOff"))
                .then_some(seen)
        },
    )
    .await;
    assert_eq!(explained["state"], "pending", "{explained}");
    let pods = json(
        app.get(&format!("/v1/submissions/{id}/pods")).await,
        StatusCode::OK,
    )
    .await;
    let status = pods["items"][0]["status"].as_str().unwrap_or_default();
    assert!(
        status == "ErrImagePull" || status == "ImagePullBackOff",
        "kubectl's STATUS column: {pods}"
    );

    let cancelled = json(
        app.post_json(&format!("/v1/submissions/{id}/cancel"), &body!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled["state"], "cancelled");
    eventually("its pod to be gone", Duration::from_secs(60), || async {
        pods_of(&cluster, &id).await.is_empty().then_some(())
    })
    .await;
}
on_the_cluster!(an_image_that_cannot_be_pulled_is_explained_and_cancelling_it_leaves_nothing);

async fn an_image_that_cannot_be_pulled_fails_after_the_pending_timeout_and_its_job_goes(
    backend: Backend,
) {
    let cluster = TestCluster::new().await;
    let app = cluster
        .spawn_service_tuned(backend, |settings| {
            settings.pending_timeout = Duration::from_secs(4);
        })
        .await;
    let request = body!({"image": MISSING_IMAGE, "command": "true"});
    let id = id(&app.submit(request).await);

    let (failed, seen) = follow_states(&app, &id, &["failed", "succeeded", "cancelled"]).await;

    assert_eq!(failed["state"], "failed", "{failed}");
    let message = failed["message"].as_str().unwrap_or_default();
    assert!(
        (message.starts_with("ErrImagePull") || message.starts_with("ImagePullBackOff"))
            && message.contains("could not start within 4s, the pending timeout"),
        "the kubelet's reason and the timeout: {message}"
    );
    assert!(seen.contains(&"pending".to_string()), "{seen:?}");
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let job_name = failed["job_name"].as_str().expect("job name").to_owned();
    eventually("its Job to be deleted", Duration::from_secs(60), || async {
        jobs.get_opt(&job_name)
            .await
            .expect("get job")
            .is_none()
            .then_some(())
    })
    .await;
    eventually("its pod to be gone", Duration::from_secs(60), || async {
        pods_of(&cluster, &id).await.is_empty().then_some(())
    })
    .await;
}
on_the_cluster!(an_image_that_cannot_be_pulled_fails_after_the_pending_timeout_and_its_job_goes);

/// Runs kubectl (the one built with the control plane) against the test cluster.
fn kubectl(cluster: &TestCluster, args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(args)
        .output()
        .expect("run kubectl")
}

#[tokio::test]
#[ignore = "needs the local control plane: run tests/run.sh"]
async fn a_job_the_service_creates_passes_strict_server_validation() {
    let cluster = TestCluster::new().await;
    let settings = submission_helper::cluster::manifest::PodSettings::default();
    let spec = submission_helper::domain::SubmissionSpec::parse(
        serde_json::from_value(body!({"image": PAYLOAD_IMAGE, "command": "true",
            "env": {"A": "1"}, "labels": {"campaign": "mc16e"},
            "resources": {"requests": {"cpu": "1", "memory": "4000M"}},
            "active_deadline_seconds": 60, "ttl_seconds_after_finished": 60}))
        .expect("request"),
        &submission_helper::domain::SubmitDefaults::default(),
    )
    .expect("valid");
    let submission = submission_helper::domain::Submission::new(
        spec,
        &cluster.namespace,
        &submission_helper::domain::Caller::user("alice"),
    );
    let job: Value = serde_json::to_value(submission_helper::cluster::manifest::job(
        &submission,
        &settings,
    ))
    .expect("json");
    let mut job = job;
    job["apiVersion"] = body!("batch/v1");
    job["kind"] = body!("Job");
    let path = cluster.scratch.path().join("job.json");
    std::fs::write(&path, serde_json::to_vec(&job).expect("json")).expect("write job");

    let output = kubectl(
        &cluster,
        &[
            "create",
            "--dry-run=server",
            "--validate=strict",
            "-o",
            "json",
            "-f",
            path.to_str().expect("utf-8 path"),
        ],
    );

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let accepted: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(
        accepted["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["type"],
        "DisruptionTarget",
        "the server kept the pod failure policy: {accepted}"
    );
}
