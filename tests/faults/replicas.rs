//! Two replicas on one Postgres database: both dispatch and watch, and the work is idempotent
//! (Job names derive from submission ids, so a second create is refused; status updates are
//! optimistic and only move forward), so they never double-create or fight over status.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestCluster, eventually};
use crate::submissions::{all_ended, list_all};
use crate::support::{Backend, TestDatabase, json as json_body};

#[tokio::test]
#[ignore = "needs the local control plane and Postgres: run tests/run.sh"]
async fn two_replicas_on_one_database_create_each_job_once_and_agree_on_status() {
    // On the simulated node: a real node of 2 cores would take a minute to start 100 pods.
    // Before the cluster: making its namespace talks to the control plane the others change.
    let _alone = crate::ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::simulated().await;
    cluster.apply_rbac(include_str!("../../docker/k8s/base/rbac.yaml"));
    let database = TestDatabase::new(Backend::Postgres).await;
    let first = cluster
        .spawn_service_on(database.shared(), cluster.service_account_client().await)
        .await;
    let second = cluster
        .spawn_service_on(database.shared(), cluster.service_account_client().await)
        .await;
    let gate = cluster.gate("cancelled-one");
    let ledger = cluster.ledger("runs");

    for round in 0..10 {
        let app = if round % 2 == 0 { &first } else { &second };
        let submissions: Vec<Value> = (0..10)
            .map(|i| {
                let name = format!("r{round}-{i}");
                json!({"name": name, "image": "busybox", "command": ledger.record_command(&name)})
            })
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
    }
    let blocked = first
        .submit(json!({"image": "busybox", "command":
            format!("{}; {}", ledger.record_command("blocked"), gate.wait_command())}))
        .await;
    let blocked_id = blocked["id"].as_str().expect("id").to_owned();
    eventually(
        "the blocked one to run",
        Duration::from_secs(120),
        || async {
            let seen: Value = second
                .get(&format!("/v1/submissions/{blocked_id}"))
                .await
                .json()
                .await
                .ok()?;
            (seen["state"] == "running").then_some(())
        },
    )
    .await;
    let cancelled = json_body(
        second
            .post_json(&format!("/v1/submissions/{blocked_id}/cancel"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled["state"], "cancelled");

    let finished = eventually(
        "all 101 submissions to end, the same on both replicas",
        Duration::from_secs(300),
        || async {
            let items = all_ended(&first.client, &first.address, Some(101)).await?;
            let other = list_all(&second.client, &second.address).await?;
            (items == other).then_some(items)
        },
    )
    .await;
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let listed = eventually(
        "the cancelled one's Job to be deleted",
        Duration::from_secs(60),
        || async {
            let listed = jobs
                .list(&ListParams::default().labels("app=submission-helper"))
                .await
                .ok()?
                .items;
            (listed.len() == 100).then_some(listed)
        },
    )
    .await;
    let pods = cluster.count_per_submission::<Pod>().await;
    let runs = ledger.runs();
    let succeeded = finished
        .iter()
        .filter(|s| s["state"] == "succeeded")
        .count();
    crate::support::report(&format!(
        "two replicas: 101 submissions, {succeeded} succeeded, 1 cancelled, {} Jobs, {} pods; \
         payloads run: {}, more than once: {}",
        listed.len(),
        pods.values().sum::<usize>(),
        runs.len(),
        runs.values().filter(|count| **count > 1).count()
    ));
    assert_eq!(runs.len(), 101, "every payload ran: {runs:?}");
    assert!(
        runs.values().all(|count| *count == 1),
        "a payload ran twice: {runs:?}"
    );
    assert_eq!(succeeded, 100);
    let final_cancelled: Value = first
        .get(&format!("/v1/submissions/{blocked_id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        final_cancelled["state"], "cancelled",
        "the other replica must not undo a cancel"
    );
}
