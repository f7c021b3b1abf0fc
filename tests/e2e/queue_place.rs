//! Where a submission that waits in the service's own queue stands, and why, as
//! `GET /v1/submissions/{id}` says it: its place among its user's queued submissions, and what
//! holds it (its user's limit of active Jobs, the submissions it depends on).

use reqwest::StatusCode;
use serde_json::{Value, json as body};

use crate::harness::{PAYLOAD_IMAGE, TestCluster, follow_states, id};
use crate::on_the_cluster;
use crate::support::{Backend, TestApp, json};

async fn get(app: &TestApp, id: &str) -> Value {
    json(
        app.get(&format!("/v1/submissions/{id}")).await,
        StatusCode::OK,
    )
    .await
}

async fn a_queued_submission_says_what_it_waits_for_and_its_place(backend: Backend) {
    // Arrange: one active Job a user, taken by a payload that runs until its gate opens
    let cluster = TestCluster::simulated().await;
    let app = cluster
        .spawn_service_tuned(backend, |settings| settings.dispatch.per_user = Some(1))
        .await;
    let gate = cluster.gate("first");
    let first = app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": gate.wait_command()}))
        .await;
    let owner = first["owner"].as_str().unwrap_or_default().to_owned();
    follow_states(&app, &id(&first), &["running"]).await;

    // Act: two more, and a third that depends on the first of them
    let second = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": "true"}))
        .await);
    let third = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": "true"}))
        .await);
    let after = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": "true", "depends_on": [second]}))
        .await);

    // Assert
    let waiting = format!(
        "waits for one of {owner}'s 1 active Jobs to end: at most 1 run at once (max_concurrent)"
    );
    let second_now = get(&app, &second).await;
    assert_eq!(second_now["state"], "queued", "{second_now}");
    assert_eq!(second_now["message"], waiting.as_str(), "{second_now}");
    assert_eq!(
        second_now["queue"],
        body!({"name": null, "priority_class": null, "admitted": false, "position": 0, "evictions": 0})
    );
    assert_eq!(get(&app, &third).await["queue"]["position"], 1);
    let dependent = get(&app, &after).await;
    assert_eq!(dependent["state"], "waiting", "{dependent}");
    assert_eq!(
        dependent["message"],
        format!("waits for 1 submission it depends on to succeed: {second} (queued)").as_str(),
        "{dependent}"
    );
    let listed = json(app.get("/v1/submissions").await, StatusCode::OK).await;
    assert!(
        listed["items"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|item| item.get("queue").is_none()),
        "lists leave the place out: {listed}"
    );

    // Act: the first ends
    gate.open();

    // Assert: the rest run in turn
    for id in [&second, &third, &after] {
        let (done, _) = follow_states(&app, id, &["succeeded", "failed"]).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        assert!(done.get("queue").is_none(), "{done}");
    }
}
on_the_cluster!(a_queued_submission_says_what_it_waits_for_and_its_place);
