//! `cancel ID...` and `cancel --all -l K=V`, which asks first and needs `--yes` without a
//! terminal.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually, follow_states, id};
use crate::process::Client;
use crate::support::{Backend, TestApp, json as expect_json, spawn_app};
use crate::{on_both_databases, on_the_cluster};

async fn state(app: &TestApp, id: &str) -> String {
    let submission = expect_json(
        app.get(&format!("/v1/submissions/{id}")).await,
        StatusCode::OK,
    )
    .await;
    submission["state"].as_str().unwrap_or_default().to_owned()
}

async fn cancel_all_without_a_terminal_needs_yes_and_then_cancels_only_the_labelled(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let client = Client::of(&app);
    let submit = |campaign: &str| {
        app.submit(json!({"image": "busybox", "command": "true", "labels": {"campaign": campaign}}))
    };
    let (a1, a2, b) = (
        id(&submit("a").await),
        id(&submit("a").await),
        id(&submit("b").await),
    );

    let refused = client.run(&["cancel", "--all", "-l", "campaign=a"]).await;
    let states_after_refusal = [state(&app, &a1).await, state(&app, &a2).await];
    let confirmed = client
        .run(&["cancel", "--all", "-l", "campaign=a", "--yes"])
        .await;
    let by_id = client.run(&["cancel", &b]).await;
    let again = client.run(&["cancel", &b]).await;
    let unknown = client
        .run(&["cancel", "01935f2e-8c4a-7b3d-9e2f-123456789abc"])
        .await;

    refused.expect_code(2);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_eq!(states_after_refusal, ["queued", "queued"]);
    let mut cancelled = confirmed.expect_code(0).lines();
    cancelled.sort();
    let mut expected = [format!("{a1} cancelled"), format!("{a2} cancelled")];
    expected.sort();
    assert_eq!(cancelled, expected);
    assert_eq!(by_id.expect_code(0).lines(), [format!("{b} cancelled")]);
    again.expect_code(0);
    unknown.expect_code(2);
    assert!(
        unknown.stderr.contains("there is no submission"),
        "{}",
        unknown.stderr
    );
}
on_both_databases!(cancel_all_without_a_terminal_needs_yes_and_then_cancels_only_the_labelled);

async fn cancel_all_by_label_stops_only_the_matching_jobs(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let client = Client::of(&app);
    let gate = cluster.gate("never");
    let mut ids = Vec::new();
    for campaign in ["a", "a", "b"] {
        let run = client
            .run(&[
                "submit",
                "--k8s-image",
                PAYLOAD_IMAGE,
                "--label",
                &format!("campaign={campaign}"),
                "--",
                &gate.wait_command(),
            ])
            .await;
        ids.push(run.expect_code(0).stdout.trim().to_owned());
    }
    for id in &ids {
        follow_states(&app, id, &["running"]).await;
    }

    let cancelled = client
        .run(&["cancel", "--all", "-l", "campaign=a", "--yes"])
        .await;

    assert_eq!(cancelled.expect_code(0).lines().len(), 2);
    eventually(
        "the campaign's Jobs to be gone",
        Duration::from_secs(60),
        || async {
            let jobs = client
                .run(&["get", "jobs", "-l", "campaign=a", "-o", "name"])
                .await;
            (jobs.code == Some(0) && jobs.stdout.is_empty()).then_some(())
        },
    )
    .await;
    let others = client
        .run(&["get", "jobs", "-l", "campaign=b", "-o", "name"])
        .await;
    assert_eq!(others.expect_code(0).lines().len(), 1);
    assert_eq!(state(&app, &ids[2]).await, "running");
    for id in &ids[..2] {
        assert_eq!(state(&app, id).await, "cancelled");
    }
    client.run(&["cancel", &ids[2]]).await.expect_code(0);
}
on_the_cluster!(cancel_all_by_label_stops_only_the_matching_jobs);
