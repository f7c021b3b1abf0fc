//! Two replicas of the service on one Postgres database, changing states concurrently: a
//! stream from either sees every revision once, in increasing order, with no gap.
//!
//! Concurrent transactions commit in an order of their own; revisions handed out by a sequence
//! would let a stream see revision 7 before 6 commits and skip 6 for ever. This test makes many
//! such transactions at once (group-committed submits, batches, cancels on both replicas) while
//! streams read. One replica's feed keeps a single page, so its streams keep falling behind it
//! and catching up from the database, and must switch back without a gap or a repeat.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json as body;
use submission_helper::cluster::Cluster;
use submission_helper::http::event_stream::EventStreams;
use submission_helper::storage::Store;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::events::EventStream;
use crate::support::{Backend, TestApp, TestDatabase, json};

/// Writers per replica, and the rounds each makes (a submit or a batch, then cancels).
const WRITERS: usize = 12;
const ROUNDS: usize = 12;

/// A replica whose feed of new events keeps `feed_buffer` pages.
async fn replica(database: &TestDatabase, feed_buffer: usize) -> TestApp {
    TestApp::builder()
        .with_database(database.shared())
        .with_cluster(Cluster::unconfigured(
            "no cluster in this test".into(),
            "default".into(),
        ))
        .with_settings(|settings| {
            settings.rate_limit_per_minute = 6000;
            settings.event_streams = EventStreams {
                feed_buffer,
                ..EventStreams::default()
            };
        })
        .spawn()
        .await
}

/// Submits and cancels, `ROUNDS` times, through `app`.
async fn churn(app: &TestApp, writer: usize) {
    for round in 0..ROUNDS {
        let task = body!({"image": "busybox", "command": format!("echo {writer} {round}")});
        let ids: Vec<String> = if round % 3 == 0 {
            let batch = body!({"submissions": [task.clone(), task.clone(), task]});
            let stored = json(
                app.post_json("/v1/submissions/batch", &batch).await,
                StatusCode::CREATED,
            )
            .await;
            stored["submissions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect()
        } else {
            vec![
                app.submit(task).await["id"]
                    .as_str()
                    .expect("id")
                    .to_owned(),
            ]
        };
        for id in ids {
            let response = app
                .post_json(&format!("/v1/submissions/{id}/cancel"), &body!({}))
                .await;
            assert_eq!(response.status(), StatusCode::OK);
        }
    }
}

/// Every revision a stream delivers, until it has delivered the one `until` ends up naming.
async fn read_all(mut stream: EventStream, mut until: watch::Receiver<i64>) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        let last = *until.borrow_and_update();
        if seen.last().is_some_and(|seen| *seen >= last) {
            return seen;
        }
        tokio::select! {
            event = stream.state_within(deadline.saturating_duration_since(Instant::now())) => {
                let event = event.unwrap_or_else(|| panic!("stopped at {:?} of {last}", seen.last()));
                seen.push(event["revision"].as_i64().expect("revision"));
            }
            _ = until.changed() => {}
        }
    }
}

#[tokio::test]
#[ignore = "needs Postgres: tests/run.sh starts one and sets SH_TEST_POSTGRES_URL"]
async fn two_replicas_changing_states_at_once_stream_every_revision_once_in_order() {
    let database = TestDatabase::new(Backend::Postgres).await;
    let (one, two) = (replica(&database, 256).await, replica(&database, 1).await);
    let (last, until) = watch::channel(i64::MAX);
    let mut readers = Vec::new();
    for app in [&one, &two] {
        let stream = EventStream::open(&app.client, &app.url("/v1/events?after=0"), None).await;
        readers.push(tokio::spawn(read_all(stream, until.clone())));
    }

    let writers = (0..WRITERS).flat_map(|writer| [(writer, &one), (writer, &two)]);
    futures::future::join_all(writers.map(|(writer, app)| churn(app, writer))).await;
    let store = Store::connect(&database.url).await.expect("store");
    let latest = store.revisions().await.expect("revisions").latest;
    last.send_replace(latest);

    let per_writer = (ROUNDS / 3) * 6 + (ROUNDS - ROUNDS / 3) * 2;
    assert_eq!(
        usize::try_from(latest).unwrap_or_default(),
        2 * WRITERS * per_writer,
        "one revision per change"
    );
    let expected: Vec<i64> = (1..=latest).collect();
    for reader in readers {
        let seen = reader.await.expect("reader");
        assert_eq!(seen.len(), expected.len(), "every revision once");
        assert!(seen == expected, "in increasing order, with no gap");
    }
}
