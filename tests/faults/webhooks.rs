//! Webhooks across SIGKILLs of the real service: every state change of a submission that names
//! a `notify_url` reaches a receiver that fails its first attempts, with a signature that
//! verifies, in order per submission. Delivery is at least once (a notification in flight at
//! a kill is sent again once its claim lapses), so the receiver drops what it has seen by the
//! event id, as the README tells receivers to; a repeat must be the same event.
//!
//! No cluster is configured, so each submission is stored `queued` and then cancelled over
//! HTTP: two changes each, made on both sides of the kills. The receiver answers slowly, so
//! kills land while notifications are on their way.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::on_both_databases;
use crate::process::ServiceProcess;
use crate::support::{Backend, TestDatabase, client_with_token, eventually, report};
use crate::webhook_receiver::{Receiver, verified, webhook_secret};

/// Submissions stored in each round, and rounds (each ends with a kill).
const SUBMISSIONS: usize = 8;
const ROUNDS: usize = 3;

async fn every_notification_arrives_verified_and_in_order_across_sigkills(backend: Backend) {
    let receiver = Receiver::start(5).await;
    receiver.slow_down(Duration::from_millis(300));
    let database = TestDatabase::new(backend).await;
    let scratch = tempfile::tempdir().expect("scratch directory");
    let log = scratch.path().join("service.log");
    // Names no file: the service runs without a cluster, and submissions stay queued.
    let kubeconfig = scratch.path().join("no-kubeconfig");
    let mut service = ServiceProcess::start_with(
        &database.url,
        &kubeconfig,
        &log,
        &[
            "--allowed-notify-host",
            "127.0.0.1",
            "--notify-timeout",
            "1s",
            "--notify-first-retry",
            "1s",
        ],
    )
    .await;
    let client = client_with_token(&service.token);
    let secret = webhook_secret(&database.url).await;
    let task = json!({"image": "busybox", "command": "true", "notify_url": receiver.url});

    let mut submissions = Vec::new();
    for _ in 0..ROUNDS {
        let stored: Vec<String> = futures::future::join_all(
            (0..SUBMISSIONS).map(|_| submit(&client, &service.url, &task)),
        )
        .await;
        let heard = receiver.accepted().len() + receiver.refused();
        eventually(
            "this round's notifications to reach the receiver",
            Duration::from_secs(30),
            || async { (receiver.accepted().len() + receiver.refused() > heard).then_some(()) },
        )
        .await;
        service.kill_and_restart().await;
        for id in &stored {
            let response = client
                .post(format!("{}/v1/submissions/{id}/cancel", service.url))
                .json(&json!({}))
                .send()
                .await
                .expect("cancel");
            assert!(response.status().is_success(), "cancel {id}");
        }
        submissions.extend(stored);
    }
    service.kill_and_restart().await;

    let expected = 2 * submissions.len();
    let accepted = eventually(
        "every notification to arrive",
        Duration::from_secs(120),
        || async {
            let accepted = receiver.accepted();
            let mut ids: Vec<&str> = accepted.iter().map(|r| r.event_id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            (ids.len() >= expected).then_some(accepted)
        },
    )
    .await;
    let mut first: BTreeMap<String, Value> = BTreeMap::new();
    let mut arrived: Vec<Value> = Vec::new();
    let mut repeats = 0;
    for received in &accepted {
        let event = verified(received, &secret);
        match first.get(&received.event_id) {
            Some(earlier) => {
                repeats += 1;
                assert_eq!(*earlier, event, "a repeat is the same event");
            }
            None => {
                first.insert(received.event_id.clone(), event.clone());
                arrived.push(event);
            }
        }
    }
    let mut states: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for event in &arrived {
        states
            .entry(event["id"].as_str().expect("id").to_owned())
            .or_default()
            .push(event["state"].as_str().expect("state").to_owned());
    }
    report(&format!(
        "webhooks across sigkills ({backend:?}): {} submissions, {} kills, {} notifications, \
         {} attempts refused by the receiver, {repeats} sent again after a kill",
        submissions.len(),
        service.restarts,
        arrived.len(),
        receiver.refused(),
    ));

    assert_eq!(
        receiver.refused(),
        5,
        "the receiver's failures were retried"
    );
    assert_eq!(arrived.len(), expected, "only these submissions' changes");
    for id in &submissions {
        assert_eq!(
            states.get(id).map(Vec::as_slice),
            Some(["queued".to_owned(), "cancelled".to_owned()].as_slice()),
            "{id}: every change, in order"
        );
    }
}
on_both_databases!(every_notification_arrives_verified_and_in_order_across_sigkills);

async fn submit(client: &reqwest::Client, url: &str, task: &Value) -> String {
    let response = client
        .post(format!("{url}/v1/submissions"))
        .json(task)
        .send()
        .await
        .expect("submit");
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let stored: Value = response.json().await.expect("the stored submission");
    stored["id"].as_str().expect("id").to_owned()
}
