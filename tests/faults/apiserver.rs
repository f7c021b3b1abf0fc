//! The API server stops in the middle of a burst: submissions are still accepted and wait as
//! `queued`, `/readyz` says why, answers that need it say so in short (never its address or the
//! client library's words), and everything is created, once, when it is back.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::config::Kubeconfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually, follow_states, metric};
use crate::on_the_cluster;
use crate::support::{Backend, cluster_error_text_in, json as json_body};

pub(crate) fn control_plane(cluster: &TestCluster, command: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/control-plane.sh");
    let status = Command::new(script)
        .arg(command)
        .arg(cluster.control_plane_dir())
        .status()
        .expect("run control-plane.sh");
    assert!(status.success(), "control-plane.sh {command} failed");
}

/// The host and port of the control plane's API server.
fn api_server_address(cluster: &TestCluster) -> (String, u16) {
    let kubeconfig = Kubeconfig::read_from(cluster.kubeconfig()).expect("kubeconfig");
    let server = kubeconfig
        .clusters
        .iter()
        .find_map(|named| named.cluster.as_ref()?.server.clone())
        .expect("a server");
    let url = url::Url::parse(&server).expect("the server's URL");
    let port = url.port_or_known_default().expect("a port");
    (url.host_str().expect("a host").to_owned(), port)
}

async fn submissions_made_while_the_api_server_is_down_run_once_it_is_back(backend: Backend) {
    // Before the cluster: making its namespace talks to the control plane the others change.
    let _alone = crate::ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let ledger = cluster.ledger("runs");
    let batch = |from: usize| {
        let submissions: Vec<Value> = (from..from + 20)
            .map(|i| {
                let name = format!("b-{i}");
                json!({"name": name, "image": PAYLOAD_IMAGE, "command": ledger.record_command(&name)})
            })
            .collect();
        json!({"submissions": submissions})
    };
    let before = json_body(
        app.post_json("/v1/submissions/batch", &batch(0)).await,
        StatusCode::CREATED,
    )
    .await;

    let asked_about = before["submissions"][0]["id"].as_str().unwrap_or_default();

    control_plane(&cluster, "stop-apiserver");
    let during = app.post_json("/v1/submissions/batch", &batch(20)).await;
    let during_status = during.status();
    let readiness = json_body(app.get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE).await;
    // Answered from the caches, then asked of the API server: it fails to connect.
    let events = app
        .get(&format!("/v1/submissions/{asked_about}/cluster-events"))
        .await;
    let events_status = events.status();
    let events: Value = events.json().await.unwrap_or_default();
    let queued = json_body(
        app.get("/v1/submissions?state=queued&limit=1000").await,
        StatusCode::OK,
    )
    .await;
    control_plane(&cluster, "start-apiserver");

    assert_eq!(
        during_status,
        StatusCode::CREATED,
        "submissions are accepted while the API server is down"
    );
    assert_eq!(readiness["database"], "ok");
    assert_eq!(
        readiness["cluster"], "the API server could not be reached",
        "{readiness}"
    );
    let (host, port) = api_server_address(&cluster);
    assert_eq!(events_status, StatusCode::SERVICE_UNAVAILABLE, "{events}");
    let detail = events["detail"].as_str().unwrap_or_default();
    assert_eq!(detail, "the API server could not be reached", "{events}");
    assert_eq!(
        cluster_error_text_in(detail, &host, port),
        Vec::<String>::new()
    );
    for submission in queued["items"].as_array().into_iter().flatten() {
        let message = submission["message"].as_str().unwrap_or_default();
        assert_eq!(
            cluster_error_text_in(message, &host, port),
            Vec::<String>::new(),
            "{message}"
        );
    }
    let waiting = queued["items"].as_array().map_or(0, Vec::len);
    let after = json_body(
        app.post_json("/v1/submissions/batch", &batch(40)).await,
        StatusCode::CREATED,
    )
    .await;
    let total = 60;
    let finished = crate::submissions::until_all_ended(
        &app.client,
        &app.address,
        Some(total),
        Duration::from_secs(300),
    )
    .await;
    let per_submission = cluster.count_per_submission::<Job>().await;
    let jobs_total: usize = per_submission.values().sum();
    let runs = ledger.runs();
    let succeeded = finished
        .iter()
        .filter(|s| s["state"] == "succeeded")
        .count();
    crate::support::report(&format!(
        "api server outage ({backend:?}): {total} submissions, {waiting} queued during the outage, \
         {succeeded} succeeded, {} Jobs, payloads run: {}, more than once: {}",
        jobs_total,
        runs.len(),
        runs.values().filter(|count| **count > 1).count()
    ));
    assert_eq!(before["submissions"].as_array().map(Vec::len), Some(20));
    assert_eq!(after["submissions"].as_array().map(Vec::len), Some(20));
    assert!(
        waiting >= 20,
        "the submissions made during the outage waited as queued ({waiting})"
    );
    assert_eq!(succeeded, total);
    assert_eq!(jobs_total, total);
    assert_eq!(runs.len(), total, "every payload ran: {runs:?}");
    assert!(
        runs.values().all(|count| *count == 1),
        "a payload ran twice: {runs:?}"
    );
}
on_the_cluster!(submissions_made_while_the_api_server_is_down_run_once_it_is_back);

/// A submission as `GET /v1/submissions/{id}` shows it; `None` if it could not be read.
pub(crate) async fn submission_of(app: &crate::support::TestApp, id: &str) -> Option<Value> {
    app.get(&format!("/v1/submissions/{id}"))
        .await
        .json()
        .await
        .ok()
}

async fn running_work_keeps_its_state_while_the_api_server_is_down_and_says_since_when(
    backend: Backend,
) {
    // Arrange: a payload running until its gate opens, on a service that counts the cluster
    // unreachable after 2 s without an answer
    let _alone = crate::ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::new().await;
    let app = cluster
        .spawn_service_tuned(backend, |settings| {
            settings.cluster_unreachable_after = Duration::from_secs(2);
        })
        .await;
    let gate = cluster.gate("outage");
    let created = json_body(
        app.post_json(
            "/v1/submissions",
            &json!({"image": PAYLOAD_IMAGE, "command": gate.wait_command()}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    follow_states(&app, &id, &["running"]).await;
    let reachable = "submission_helper_cluster_reachable{cluster=\"default\"}";
    let before = metric(&app, reachable).await;

    // Act: the API server stops for longer than that
    control_plane(&cluster, "stop-apiserver");
    let during = eventually(
        "the running submission to say the cluster has not answered",
        Duration::from_secs(60),
        || async {
            let submission = submission_of(&app, &id).await?;
            submission["message"]
                .as_str()
                .is_some_and(|message| message.contains("has not answered since"))
                .then_some(submission)
        },
    )
    .await;
    let listed = json_body(
        app.get("/v1/submissions?state=running").await,
        StatusCode::OK,
    )
    .await;
    let unreachable = metric(&app, reachable).await;
    control_plane(&cluster, "start-apiserver");
    let back = eventually(
        "the cluster to answer again",
        Duration::from_secs(90),
        || async {
            let submission = submission_of(&app, &id).await?;
            submission["message"].is_null().then_some(submission)
        },
    )
    .await;
    gate.open();
    let (done, _) = follow_states(&app, &id, &["succeeded", "failed", "cancelled"]).await;

    // Assert: while unreachable it stayed running and said since when, in its view and in the
    // list, and the metric said so; back, it ended normally
    assert_eq!(during["state"], "running", "{during}");
    let message = during["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("the cluster default has not answered since 20"),
        "{message}"
    );
    assert_eq!(listed["items"][0]["message"], during["message"], "{listed}");
    assert_eq!((before, unreachable), (1.0, 0.0));
    assert_eq!(back["state"], "running", "{back}");
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(metric(&app, reachable).await, 1.0);
}
on_the_cluster!(running_work_keeps_its_state_while_the_api_server_is_down_and_says_since_when);
