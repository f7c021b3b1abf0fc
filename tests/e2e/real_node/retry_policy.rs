//! A code ruled `ignore` on the real node: the pod that exited with it is replaced without
//! counting against the submission's retries, so a payload that says "try again later" once
//! succeeds with no retries at all. The volume keeps what the first pod did.

use serde_json::json as body;

use super::Prepared;
use crate::harness::{follow_states, id};
use crate::on_the_real_node;
use crate::support::Backend;

async fn an_exit_code_ruled_ignore_is_retried_without_counting(backend: Backend) {
    // Arrange: the first pod leaves a mark on the volume and asks to be tried again
    let prepared = Prepared::new().await;
    let app = prepared.spawn_service(backend, |_| {}).await;
    let command = "if [ -e /ntuples/tried ]; then echo second try; \
                   else touch /ntuples/tried; exit 75; fi";

    // Act
    let created = app
        .submit(body!({
            "image": prepared.node.image,
            "command": command,
            "retries": 0,
            "retry_policy": {"on_exit_codes": [{"codes": [75], "action": "ignore"}]},
        }))
        .await;
    let id = id(&created);
    let (done, _) = follow_states(&app, &id, &["succeeded", "failed"]).await;

    // Assert: with no retries, a counted failure would have failed it
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(prepared.read("tried").is_some(), "the first pod ran");
    let log = app
        .get(&format!("/v1/submissions/{id}/logs"))
        .await
        .text()
        .await
        .expect("log");
    assert_eq!(log, "second try\n");
    let attempts: Vec<(i64, bool)> = done["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|attempt| {
            let code = attempt["exit_code"].as_i64().expect("exit code");
            (code, attempt["counted"].as_bool().expect("counted"))
        })
        .collect();
    assert_eq!(attempts, [(75, false), (0, false)], "{done}");
}
on_the_real_node!(an_exit_code_ruled_ignore_is_retried_without_counting);
