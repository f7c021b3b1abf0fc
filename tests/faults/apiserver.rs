//! The API server stops in the middle of a burst: submissions are still accepted and wait as
//! `queued`, `/readyz` says why, and everything is created, once, when it is back.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually};
use crate::on_the_cluster;
use crate::support::{Backend, json as json_body};

fn control_plane(cluster: &TestCluster, command: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/control-plane.sh");
    let status = Command::new(script)
        .arg(command)
        .arg(cluster.control_plane_dir())
        .status()
        .expect("run control-plane.sh");
    assert!(status.success(), "control-plane.sh {command} failed");
}

async fn submissions_made_while_the_api_server_is_down_run_once_it_is_back(backend: Backend) {
    let cluster = TestCluster::new().await;
    let _alone = crate::ONE_AT_A_TIME.lock().await;
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

    control_plane(&cluster, "stop-apiserver");
    let during = app.post_json("/v1/submissions/batch", &batch(20)).await;
    let during_status = during.status();
    let readiness = json_body(app.get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE).await;
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
    let waiting = queued["items"].as_array().map_or(0, Vec::len);
    let after = json_body(
        app.post_json("/v1/submissions/batch", &batch(40)).await,
        StatusCode::CREATED,
    )
    .await;
    let total = 60;
    let finished = eventually(
        "all 60 submissions to finish",
        Duration::from_secs(300),
        || async {
            let page: Value = app
                .get("/v1/submissions?limit=1000")
                .await
                .json()
                .await
                .ok()?;
            let items = page["items"].as_array()?.clone();
            (items.len() == total
                && items
                    .iter()
                    .all(|s| s["state"] == "succeeded" || s["state"] == "failed"))
            .then_some(items)
        },
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
