//! The database goes away while Jobs finish: the changes the watchers could not record are
//! reconciled again once it is back, so every submission reaches its true final state without
//! waiting for the next re-list of the cluster.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually};
use crate::submissions::until_all_ended;
use crate::support::{Backend, json as json_body};

fn postgres(command: &str) {
    let dir = std::env::var("SH_TEST_POSTGRES_DIR")
        .expect("SH_TEST_POSTGRES_DIR (tests/postgres.sh writes it into its env file)");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/postgres.sh");
    let status = Command::new(script)
        .args([command, &dir])
        .status()
        .expect("run postgres.sh");
    assert!(status.success(), "postgres.sh {command} failed");
}

/// How long the database stays down once every Job has completed: long enough for every write
/// the watchers try meanwhile to fail (each waits 5 s for a connection, one after another), so
/// that no later event can make up for a lost one.
const OUTAGE: Duration = Duration::from_secs(45);

/// Restarts the database when dropped, so a failing test leaves the server up for the others.
struct Outage;

impl Outage {
    fn begin() -> Self {
        postgres("stop");
        Outage
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        postgres("start");
    }
}

#[tokio::test]
#[ignore = "needs the local control plane and Postgres: run tests/run.sh"]
async fn completions_during_a_database_outage_are_recorded_once_it_is_back() {
    // Before the cluster: making its namespace talks to the control plane the others change.
    let _alone = crate::ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(Backend::Postgres).await;
    let gate = cluster.gate("finish");
    let total = 3;
    let submissions: Vec<Value> = (0..total)
        .map(|i| json!({"name": format!("d-{i}"), "image": PAYLOAD_IMAGE, "command": gate.wait_command()}))
        .collect();
    json_body(
        app.post_json(
            "/v1/submissions/batch",
            &json!({"submissions": submissions}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    eventually("all of them to run", Duration::from_secs(120), || async {
        let page: Value = app
            .get("/v1/submissions?state=running&limit=1000")
            .await
            .json()
            .await
            .ok()?;
        (page["items"].as_array()?.len() == total).then_some(())
    })
    .await;

    let outage = Outage::begin();
    gate.open();
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    eventually(
        "every Job to complete while the database is down",
        Duration::from_secs(120),
        || async {
            let listed = jobs
                .list(&ListParams::default().labels("app=submission-helper"))
                .await
                .ok()?;
            let complete = listed.items.iter().filter(|job| {
                job.status
                    .iter()
                    .flat_map(|status| status.conditions.iter().flatten())
                    .any(|condition| condition.type_ == "Complete" && condition.status == "True")
            });
            (complete.count() == total).then_some(())
        },
    )
    .await;
    tokio::time::sleep(OUTAGE).await;
    drop(outage);
    let back = std::time::Instant::now();

    let finished = until_all_ended(
        &app.client,
        &app.address,
        Some(total),
        Duration::from_secs(60),
    )
    .await;
    assert!(
        finished.iter().all(|s| s["state"] == "succeeded"),
        "every submission is recorded succeeded: {finished:#?}"
    );
    crate::support::report(&format!(
        "database outage: {total} Jobs completed while Postgres was down; all {} recorded \
         succeeded {:.1} s after it came back",
        finished.len(),
        back.elapsed().as_secs_f64()
    ));
}
