//! Rules on the payload's exit code, as Kubernetes' job controller applies them from the Job's
//! pod failure policy: a code ruled `fail` ends the submission at once with its retries left.
//! (`ignore`, which needs a payload that fails once and then succeeds, is shown on the real
//! node, where the volume keeps what the first pod did: `real_node::retry_policy`.)

use reqwest::StatusCode;
use serde_json::json as body;

use crate::harness::{PAYLOAD_IMAGE, TestCluster, follow_states, id};
use crate::on_the_cluster;
use crate::support::{Backend, json};

async fn an_exit_code_ruled_fail_ends_the_submission_at_once_with_its_retries_left(
    backend: Backend,
) {
    // Arrange
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;

    // Act: a known "bad input" code, with three retries to spare
    let created = app
        .submit(body!({
            "image": PAYLOAD_IMAGE,
            "command": "echo bad input; exit 42",
            "retries": 3,
            "retry_policy": {"on_exit_codes": [{"codes": [42], "action": "fail"}]},
        }))
        .await;
    let id = id(&created);
    let (done, _) = follow_states(&app, &id, &["succeeded", "failed"]).await;

    // Assert: one pod only, and the message says which rule ended it
    assert_eq!(done["state"], "failed", "{done}");
    assert_eq!(done["failed"], 1, "no retry: {done}");
    let message = done["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("PodFailurePolicy") && message.contains("exit code 42"),
        "{message}"
    );
    assert_eq!(
        done["retry_policy"],
        body!({"on_exit_codes": [{"codes": [42], "action": "fail"}]})
    );
    let pods = json(
        app.get(&format!("/v1/submissions/{id}/pods")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(pods["items"].as_array().map(Vec::len), Some(1), "{pods}");
    let attempts = &done["attempts"];
    assert_eq!(attempts.as_array().map(Vec::len), Some(1), "{done}");
    assert_eq!(attempts[0]["exit_code"], 42);
    assert_eq!(attempts[0]["reason"], "Error");
    assert_eq!(attempts[0]["counted"], false, "it used no retry: {done}");
    assert_eq!(attempts[0]["pod"], pods["items"][0]["name"]);
}
on_the_cluster!(an_exit_code_ruled_fail_ends_the_submission_at_once_with_its_retries_left);

/// A payload that needs more memory than its limit is killed as a kubelet's OOM killer would
/// (the simulated node does it on demand: `NODE_SIM_MEMORY_NEEDED`), and its attempt says so.
async fn a_payload_killed_for_memory_is_recorded_as_oom_killed(backend: Backend) {
    // Arrange
    let cluster = TestCluster::simulated().await;
    let app = cluster.spawn_service(backend).await;

    // Act
    let created = app
        .submit(body!({
            "image": PAYLOAD_IMAGE,
            "command": "echo loading the ntuples",
            "env": {"NODE_SIM_MEMORY_NEEDED": "1Gi"},
            "resources": {"limits": {"memory": "64Mi"}},
            "retries": 0,
        }))
        .await;
    let id = id(&created);
    let (done, _) = follow_states(&app, &id, &["succeeded", "failed"]).await;

    // Assert
    assert_eq!(done["state"], "failed", "{done}");
    let attempts = &done["attempts"];
    assert_eq!(attempts.as_array().map(Vec::len), Some(1), "{done}");
    assert_eq!(attempts[0]["reason"], "OOMKilled", "{done}");
    assert_eq!(attempts[0]["exit_code"], 137, "{done}");
    assert_eq!(attempts[0]["memory"], "64Mi", "{done}");
    assert_eq!(attempts[0]["counted"], true, "{done}");
}
on_the_cluster!(a_payload_killed_for_memory_is_recorded_as_oom_killed);
