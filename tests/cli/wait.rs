//! `wait` and `submit --wait`: 0 only if every one succeeded, 1 if some failed or were
//! cancelled, 2 for an error, 3 when the timeout passes first.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{PAYLOAD_IMAGE, TestCluster, follow_states, id};
use crate::process::Client;
use crate::support::{Backend, json as expect_json, spawn_app};
use crate::{on_both_databases, on_the_cluster};

async fn wait_says_timeout_cancelled_and_unknown_by_its_exit_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = Client::of(&app);
    let queued = id(&app
        .submit(json!({"image": "busybox", "command": "true"}))
        .await);

    let timed_out = client.run(&["wait", &queued, "--timeout", "2s"]).await;
    expect_json(
        app.post_json(&format!("/v1/submissions/{queued}/cancel"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let cancelled = client.run(&["wait", &format!("submission/{queued}")]).await;
    let unknown = client
        .run(&["wait", "01935f2e-8c4a-7b3d-9e2f-123456789abc"])
        .await;

    timed_out.expect_code(3);
    assert!(
        timed_out
            .stderr
            .contains(&format!("not ended yet: {queued} queued")),
        "{}",
        timed_out.stderr
    );
    assert_eq!(
        cancelled.expect_code(1).lines(),
        [format!("{queued} cancelled: cancelled by request")]
    );
    unknown.expect_code(2);
    assert!(
        unknown.stderr.contains("there is no submission"),
        "{}",
        unknown.stderr
    );
}
on_both_databases!(wait_says_timeout_cancelled_and_unknown_by_its_exit_code);

async fn wait_exits_zero_only_when_every_submission_succeeded(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let client = Client::of(&app);
    let submit = |command: &'static str| {
        let client = &client;
        async move {
            let run = client
                .run(&["submit", "--k8s-image", PAYLOAD_IMAGE, "--", command])
                .await;
            run.expect_code(0).stdout.trim().to_owned()
        }
    };
    let succeeding = submit("echo fine").await;
    let failing = submit("exit 3").await;
    let gate = cluster.gate("go");
    let gated = client
        .run(&[
            "submit",
            "--k8s-image",
            PAYLOAD_IMAGE,
            "--",
            &gate.wait_command(),
        ])
        .await
        .expect_code(0)
        .stdout
        .trim()
        .to_owned();
    follow_states(&app, &gated, &["running"]).await;

    let success = client.run(&["wait", &succeeding]).await;
    let mixed = client.run(&["wait", &succeeding, &failing]).await;
    let timed_out = client.run(&["wait", &gated, "--timeout", "3s"]).await;
    let submitted_and_failed = client
        .run(&[
            "submit",
            "--k8s-image",
            PAYLOAD_IMAGE,
            "--wait",
            "--",
            "exit",
            "4",
        ])
        .await;
    gate.open();
    let after_the_gate = client.run(&["wait", &gated, "--timeout", "90s"]).await;

    assert_eq!(
        success.expect_code(0).lines(),
        [format!("{succeeding} succeeded")]
    );
    let lines = mixed.expect_code(1).lines();
    assert!(
        lines.contains(&format!("{succeeding} succeeded").as_str()),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with(&format!("{failing} failed: "))),
        "{lines:?}"
    );
    assert!(
        mixed.stderr.contains("succeeded 1, failed 1"),
        "{}",
        mixed.stderr
    );
    timed_out.expect_code(3);
    submitted_and_failed.expect_code(1);
    after_the_gate.expect_code(0);
}
on_the_cluster!(wait_exits_zero_only_when_every_submission_succeeded);
