//! The webhook outbox seen from outside: attempts counted in `/metrics` by what became of
//! them, the notifications still to be sent, and given-up ones pruned with the events.

use std::time::Duration;

use jiff::Timestamp;
use reqwest::StatusCode;
use serde_json::json as body;
use submission_helper::storage::Store;

use crate::on_both_databases;
use crate::prometheus::Scrape;
use crate::support::{Backend, TestApp, TestDatabase, eventually};
use crate::webhook_receiver::{PATIENCE, Receiver};
use crate::webhooks::{spawn_notifying_app_tuned, submit};

async fn attempts_are_counted_by_outcome_and_the_outbox_shows_what_is_pending(backend: Backend) {
    let receiver = Receiver::start(usize::MAX).await;
    let app = spawn_notifying_app_tuned(TestDatabase::new(backend).await, |webhooks| {
        webhooks.attempts = 2;
        // Long enough for a scrape to find the retried notification waiting.
        webhooks.first_retry = Duration::from_secs(3);
        webhooks.max_retry = Duration::from_secs(3);
    })
    .await;
    let hooked = body!({"image": "busybox", "command": "true", "notify_url": receiver.url});
    let before = scrape(&app).await;

    submit(&app, hooked.clone()).await;
    let waiting = eventually("a failed attempt to be retried later", PATIENCE, || async {
        let now = scrape(&app).await;
        (now.value(DELIVERIES, &[("outcome", "retried")]) == 1.0).then_some(now)
    })
    .await;
    // A scrape reads the outbox from the database before it writes the counters, so one taken
    // as an attempt ends may count it and still find it pending: wait for both to settle.
    let given_up = eventually("the notification to be given up", PATIENCE, || async {
        let now = scrape(&app).await;
        let counted = now.value(DELIVERIES, &[("outcome", "given_up")]) == 1.0;
        (counted && now.value(PENDING, &[]) == 0.0).then_some(now)
    })
    .await;
    receiver.recover();
    submit(&app, hooked).await;
    let delivered = eventually(
        "the next notification to be delivered",
        PATIENCE,
        || async {
            let now = scrape(&app).await;
            let counted = now.value(DELIVERIES, &[("outcome", "delivered")]) == 1.0;
            (counted && now.value(PENDING, &[]) == 0.0).then_some(now)
        },
    )
    .await;

    for outcome in ["delivered", "retried", "given_up"] {
        assert_eq!(before.value(DELIVERIES, &[("outcome", outcome)]), 0.0);
    }
    assert_eq!(before.value(PENDING, &[]), 0.0);
    assert_eq!(waiting.value(PENDING, &[]), 1.0, "the retried one waits");
    assert_eq!(
        given_up.value(PENDING, &[]),
        0.0,
        "a given-up one is not pending"
    );
    assert_eq!(delivered.value(PENDING, &[]), 0.0);
    assert_eq!(delivered.value(DELIVERIES, &[("outcome", "retried")]), 1.0);
    assert_eq!(receiver.refused(), 2);
}
on_both_databases!(attempts_are_counted_by_outcome_and_the_outbox_shows_what_is_pending);

async fn given_up_deliveries_are_pruned_with_the_events(backend: Backend) {
    let receiver = Receiver::start(usize::MAX).await;
    let app = spawn_notifying_app_tuned(TestDatabase::new(backend).await, |webhooks| {
        webhooks.attempts = 1;
    })
    .await;
    let store = Store::connect(&app.database.url).await.expect("store");
    submit(
        &app,
        body!({"image": "busybox", "command": "true", "notify_url": receiver.url}),
    )
    .await;
    eventually("the notification to be given up", PATIENCE, || async {
        (store.delivery_counts().await.expect("outbox") == (0, 1)).then_some(())
    })
    .await;

    let kept = store
        .prune_deliveries(Timestamp::now() - jiff::SignedDuration::from_hours(1))
        .await
        .expect("prune");
    let still_there = store.delivery_counts().await.expect("outbox");
    let pruned = store
        .prune_deliveries(Timestamp::now() + jiff::SignedDuration::from_secs(1))
        .await
        .expect("prune");

    assert_eq!(kept, 0, "given up within the retention: kept");
    assert_eq!(still_there, (0, 1));
    assert_eq!(pruned, 1);
    assert_eq!(store.delivery_counts().await.expect("outbox"), (0, 0));
}
on_both_databases!(given_up_deliveries_are_pruned_with_the_events);

const DELIVERIES: &str = "submission_helper_webhook_deliveries_total";
const PENDING: &str = "submission_helper_webhook_outbox_pending";

async fn scrape(app: &TestApp) -> Scrape {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    Scrape::parse(&response.text().await.expect("text"))
}
