//! SIGTERM: the service stops taking connections, ends open log follows cleanly (the client
//! sees a complete response, not a cut connection) and exits successfully.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::harness::{PAYLOAD_IMAGE, TestCluster};
use crate::process::ServiceProcess;
use crate::support::TestDatabase;

#[tokio::test]
#[ignore = "needs the local control plane: run tests/run.sh"]
async fn sigterm_ends_log_follows_cleanly_and_exits() {
    // Before the cluster: making its namespace talks to the control plane the others change.
    let _alone = crate::ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::new().await;
    cluster.apply_rbac(include_str!("../../docker/k8s/base/rbac.yaml"));
    let kubeconfig = cluster.service_account_kubeconfig_file().await;
    let database = TestDatabase::new(crate::support::Backend::Sqlite).await;
    let log = cluster.scratch.path().join("service.log");
    let mut service = ServiceProcess::start(&database.url, &kubeconfig, &log).await;
    let client = crate::support::client_with_token(&service.token);
    let gate = cluster.gate("never");
    let command = format!("echo still running; {}", gate.wait_command());
    let created: Value = client
        .post(format!("{}/v1/submissions", service.url))
        .json(&json!({"image": PAYLOAD_IMAGE, "command": command}))
        .send()
        .await
        .expect("submit")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    let follow = client
        .get(format!(
            "{}/v1/submissions/{id}/logs?follow=true",
            service.url
        ))
        .send()
        .await
        .expect("follow");
    let mut body = follow.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(60), body.next())
        .await
        .expect("the first line in time")
        .expect("a chunk")
        .expect("bytes");
    assert_eq!(&first[..], b"still running\n");

    let exit = service.terminate(Duration::from_secs(30)).await;

    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        let mut results = Vec::new();
        while let Some(chunk) = body.next().await {
            results.push(chunk.map(|bytes| bytes.len()));
        }
        results
    })
    .await
    .expect("the follow ended with the service");
    assert!(
        rest.iter().all(Result::is_ok),
        "the follow was cut off: {rest:?}"
    );
    let exit = exit.expect("the service exited within 30 seconds of SIGTERM");
    assert!(exit.success(), "exit status {exit:?}");
    let refused = client.get(format!("{}/healthz", service.url)).send().await;
    assert!(refused.is_err(), "the service still answers after SIGTERM");
}
