//! Webhooks: each state change of a submission that names a `notify_url` is POSTed there,
//! signed with its token's webhook secret, retried after failures, in order per submission;
//! `final` sends only the final state; targets the server does not send to are refused at
//! submit time.
//!
//! The receiver ([`crate::webhook_receiver`]) is an HTTP server of the test's own on
//! 127.0.0.1, allowed as the operator would with `--allowed-notify-host 127.0.0.1`. State
//! changes are made by submitting and cancelling over HTTP, and by the controller's updates
//! through the store (no cluster here). The outbox's metrics and pruning:
//! `webhook_outbox.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::StatusCode;
use serde_json::{Value, json as body};
use submission_helper::cluster::Cluster;
use submission_helper::domain::{Progress, State};
use submission_helper::storage::Store;

use crate::on_both_databases;
use crate::support::{
    Backend, TestApp, TestDatabase, eventually, fields, json, problem, spawn_app,
};
use crate::webhook_receiver::{PATIENCE, Receiver, verified, webhook_secret};

/// The states each submission was notified of, in the order they arrived.
fn states_by_submission(events: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut states: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for event in events {
        states
            .entry(event["id"].as_str().expect("id").to_owned())
            .or_default()
            .push(event["state"].as_str().expect("state").to_owned());
    }
    states
}

async fn spawn_notifying_app(backend: Backend) -> TestApp {
    spawn_notifying_app_on(TestDatabase::new(backend).await).await
}

async fn spawn_notifying_app_on(database: TestDatabase) -> TestApp {
    spawn_notifying_app_tuned(database, |_| {}).await
}

/// As [`spawn_notifying_app_on`], with the sender's settings changed by `tune`.
pub async fn spawn_notifying_app_tuned(
    database: TestDatabase,
    tune: impl FnOnce(&mut submission_helper::webhooks::Settings),
) -> TestApp {
    let cluster = Cluster::unconfigured("no cluster in this test".into(), "default".into());
    TestApp::builder()
        .with_database(database)
        .with_cluster(cluster)
        .with_settings(|settings| {
            settings.defaults.allowed.notify_hosts = vec!["127.0.0.1".into()];
            settings.webhooks.first_retry = Duration::from_millis(50);
            settings.webhooks.max_retry = Duration::from_millis(200);
            settings.webhooks.poll = Duration::from_millis(50);
            // A claim lapses after three timeouts: a notification in flight at a crash is sent again
            // well within the test's patience.
            settings.webhooks.timeout = Duration::from_secs(2);
            tune(&mut settings.webhooks);
        })
        .spawn()
        .await
}

pub async fn submit(app: &TestApp, body: Value) -> String {
    let stored = json(
        app.post_json("/v1/submissions", &body).await,
        StatusCode::CREATED,
    )
    .await;
    stored["id"].as_str().expect("id").to_owned()
}

async fn record(store: &Store, id: &str, state: State) {
    store
        .update(id.parse().expect("id"), |current| {
            Some(Progress {
                state,
                finished_at: state.is_final().then(Timestamp::now),
                ..current.progress.clone()
            })
        })
        .await
        .expect("update")
        .expect("stored");
}

async fn every_change_arrives_signed_and_in_order_after_failed_attempts(backend: Backend) {
    let receiver = Receiver::start(2).await;
    let app = spawn_notifying_app(backend).await;
    let store = Store::connect(&app.database.url).await.expect("store");
    let secret = webhook_secret(&app.database.url).await;

    let ran = submit(
        &app,
        body!({"image": "busybox", "command": "true", "notify_url": receiver.url}),
    )
    .await;
    let cancelled = submit(
        &app,
        body!({"image": "busybox", "command": "true", "notify_url": receiver.url, "notify": "all"}),
    )
    .await;
    let silent = submit(&app, body!({"image": "busybox", "command": "true"})).await;
    record(&store, &ran, State::Pending).await;
    record(&store, &ran, State::Running).await;
    let response = app
        .post_json(&format!("/v1/submissions/{cancelled}/cancel"), &body!({}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    record(&store, &silent, State::Pending).await;
    record(&store, &ran, State::Succeeded).await;

    let accepted = receiver.wait_for(6).await;
    let events: Vec<Value> = accepted
        .iter()
        .map(|received| verified(received, &secret))
        .collect();
    assert_eq!(
        receiver.refused(),
        2,
        "the receiver's failures were retried"
    );
    let mut revisions: Vec<i64> = events
        .iter()
        .map(|event| event["revision"].as_i64().expect("revision"))
        .collect();
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(revisions.len(), events.len(), "each event arrived once");
    assert_eq!(
        states_by_submission(&events),
        BTreeMap::from([
            (
                ran.clone(),
                vec![
                    "queued".into(),
                    "pending".into(),
                    "running".into(),
                    "succeeded".into()
                ]
            ),
            (cancelled.clone(), vec!["queued".into(), "cancelled".into()]),
        ])
    );
    let last = events
        .iter()
        .find(|event| event["state"] == "cancelled")
        .expect("the cancel");
    assert_eq!(last["previous_state"], "queued");
}
on_both_databases!(every_change_arrives_signed_and_in_order_after_failed_attempts);

async fn final_only_sends_just_the_final_state(backend: Backend) {
    let receiver = Receiver::start(0).await;
    let app = spawn_notifying_app(backend).await;
    let store = Store::connect(&app.database.url).await.expect("store");
    let secret = webhook_secret(&app.database.url).await;

    let id = submit(
        &app,
        body!({"image": "busybox", "command": "true", "notify_url": receiver.url, "notify": "final"}),
    )
    .await;
    record(&store, &id, State::Pending).await;
    record(&store, &id, State::Running).await;
    record(&store, &id, State::Failed).await;

    let accepted = receiver.wait_for(1).await;
    // Every notification of these changes was written with them: once none is left to send,
    // the receiver has all it will ever get.
    eventually("the outbox to empty", PATIENCE, || async {
        (store.delivery_counts().await.expect("outbox") == (0, 0)).then_some(())
    })
    .await;
    let accepted = if receiver.accepted().len() > accepted.len() {
        receiver.accepted()
    } else {
        accepted
    };
    let events: Vec<Value> = accepted
        .iter()
        .map(|received| verified(received, &secret))
        .collect();
    assert_eq!(
        states_by_submission(&events),
        BTreeMap::from([(id, vec!["failed".to_owned()])])
    );
}
on_both_databases!(final_only_sends_just_the_final_state);

async fn targets_the_server_does_not_send_to_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;

    for url in [
        "http://127.0.0.1:9/hooks",
        "http://localhost/hooks",
        "http://10.0.0.7/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hooks",
        "ftp://example.org/hooks",
        "https://user:secret@example.org/hooks",
        "/relative/hooks",
    ] {
        let response = app
            .post_json(
                "/v1/submissions",
                &body!({"image": "busybox", "command": "true", "notify_url": url}),
            )
            .await;
        let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&problem), ["notify_url"], "{url}: {problem}");
    }
    let response = app
        .post_json(
            "/v1/submissions",
            &body!({"image": "busybox", "command": "true", "notify": "final"}),
        )
        .await;
    let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&problem), ["notify"]);
    let response = app
        .post_json(
            "/v1/submissions",
            &body!({"image": "busybox", "command": "true", "notify_url": "https://example.org/h", "notify": "some"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
on_both_databases!(targets_the_server_does_not_send_to_are_refused);

async fn notifications_not_yet_delivered_are_sent_after_a_crash(backend: Backend) {
    let receiver = Receiver::start(usize::MAX).await;
    let app = spawn_notifying_app(backend).await;
    let store = Store::connect(&app.database.url).await.expect("store");
    let secret = webhook_secret(&app.database.url).await;
    let id = submit(
        &app,
        body!({"image": "busybox", "command": "true", "notify_url": receiver.url}),
    )
    .await;
    record(&store, &id, State::Pending).await;
    record(&store, &id, State::Running).await;
    eventually("two attempts to reach the receiver", PATIENCE, || async {
        (receiver.refused() >= 2).then_some(())
    })
    .await;

    // Stopped as a crash stops it, with every notification still undelivered.
    let database = app.stop();
    drop(store);
    receiver.recover();
    let app = spawn_notifying_app_on(database).await;
    let store = Store::connect(&app.database.url).await.expect("store");
    record(&store, &id, State::Succeeded).await;

    let accepted = receiver.wait_for(4).await;
    // Delivery is at least once, and the stopped service's last attempt may still land: a
    // receiver keeps the first of each event id, as the README tells receivers to.
    let mut seen = std::collections::HashSet::new();
    let events: Vec<Value> = accepted
        .iter()
        .filter(|received| seen.insert(received.event_id.clone()))
        .map(|received| verified(received, &secret))
        .collect();
    assert_eq!(
        states_by_submission(&events),
        BTreeMap::from([(
            id,
            vec![
                "queued".into(),
                "pending".into(),
                "running".into(),
                "succeeded".into()
            ]
        )])
    );
}
on_both_databases!(notifications_not_yet_delivered_are_sent_after_a_crash);

async fn dependents_are_notified_of_the_changes_their_dependencies_cause(backend: Backend) {
    let receiver = Receiver::start(0).await;
    let app = spawn_notifying_app(backend).await;
    let store = Store::connect(&app.database.url).await.expect("store");
    let secret = webhook_secret(&app.database.url).await;
    // The dependencies notify nobody: only their dependents' changes are sent.
    let succeeds = submit(&app, body!({"image": "busybox", "command": "true"})).await;
    let cancelled = submit(&app, body!({"image": "busybox", "command": "true"})).await;
    let runs_next = submit(
        &app,
        body!({"image": "busybox", "command": "true", "notify_url": receiver.url, "depends_on": [succeeds]}),
    )
    .await;
    let never_runs = submit(
        &app,
        body!({"image": "busybox", "command": "true", "notify_url": receiver.url, "depends_on": [cancelled]}),
    )
    .await;

    record(&store, &succeeds, State::Pending).await;
    record(&store, &succeeds, State::Running).await;
    record(&store, &succeeds, State::Succeeded).await;
    let response = app
        .post_json(&format!("/v1/submissions/{cancelled}/cancel"), &body!({}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let events: Vec<Value> = receiver
        .wait_for(4)
        .await
        .iter()
        .map(|received| verified(received, &secret))
        .collect();
    let ended = json(
        app.get(&format!("/v1/submissions/{never_runs}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        states_by_submission(&events),
        BTreeMap::from([
            (runs_next, vec!["waiting".to_owned(), "queued".to_owned()]),
            (
                never_runs,
                vec![
                    "waiting".to_owned(),
                    ended["state"].as_str().expect("state").to_owned()
                ]
            ),
        ])
    );
}
on_both_databases!(dependents_are_notified_of_the_changes_their_dependencies_cause);

async fn a_submission_shows_where_and_which_changes_it_notifies(backend: Backend) {
    let app = spawn_notifying_app(backend).await;
    let url = "http://127.0.0.1:9/hooks";
    let every = submit(
        &app,
        body!({"image": "busybox", "command": "true", "notify_url": url}),
    )
    .await;
    let last = submit(
        &app,
        body!({"image": "busybox", "command": "true", "notify_url": url, "notify": "final"}),
    )
    .await;
    let silent = submit(&app, body!({"image": "busybox", "command": "true"})).await;

    let shown = |id: &String| {
        let app = &app;
        let id = id.clone();
        async move {
            let view = json(
                app.get(&format!("/v1/submissions/{id}")).await,
                StatusCode::OK,
            )
            .await;
            (view["notify_url"].clone(), view["notify"].clone())
        }
    };
    let one_by_one = [
        shown(&every).await,
        shown(&last).await,
        shown(&silent).await,
    ];
    let list = json(app.get("/v1/submissions").await, StatusCode::OK).await;
    let listed: BTreeMap<String, (Value, Value)> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            (
                item["id"].as_str().expect("id").to_owned(),
                (item["notify_url"].clone(), item["notify"].clone()),
            )
        })
        .collect();

    let expected = [
        (body!(url), body!("all")),
        (body!(url), body!("final")),
        (Value::Null, Value::Null),
    ];
    assert_eq!(one_by_one, expected);
    assert_eq!(
        [&listed[&every], &listed[&last], &listed[&silent]],
        [&expected[0], &expected[1], &expected[2]],
        "the list shows the same"
    );
}
on_both_databases!(a_submission_shows_where_and_which_changes_it_notifies);

/// The commit that queues a notification wakes the sender: it goes out at once, not at the
/// sender's next look at the outbox (an hour away here), though commits that notify nobody no
/// longer wake it.
async fn a_notification_goes_out_when_its_change_is_committed(backend: Backend) {
    let receiver = Receiver::start(0).await;
    let app = spawn_notifying_app_tuned(TestDatabase::new(backend).await, |settings| {
        settings.poll = Duration::from_secs(3600);
    })
    .await;
    submit(&app, body!({"image": "busybox", "command": "true"})).await;
    let notifying = submit(
        &app,
        body!({"image": "busybox", "command": "true", "notify_url": receiver.url}),
    )
    .await;
    let accepted = receiver.wait_for(1).await;
    let secret = webhook_secret(&app.database.url).await;
    let event = verified(&accepted[0], &secret);
    assert_eq!(event["id"], notifying.as_str());
    assert_eq!(event["state"], "queued");
}
on_both_databases!(a_notification_goes_out_when_its_change_is_committed);
