//! The limits of concurrent Jobs held at Kueue's admission gate (`Claiming::ThroughKueue`, what the
//! dispatcher does through Kueue), read from the store as the dispatcher reads it: every due
//! submission is claimed and marked gated, and the gates open oldest first while the limits
//! have room, counting only the Jobs whose gate is off.

use jiff::Timestamp;
use serde_json::{Value, json as body};
use submission_helper::domain::{Progress, State, SubmissionId};
use submission_helper::storage::{Claiming, Placing, Queued, Store};

use crate::campaigns::{batch, id_of, sample, store_of};
use crate::on_both_databases;
use crate::support::{Backend, end, spawn_app};

const THROUGH_KUEUE: Claiming = Claiming::ThroughKueue {
    max_suspended: 1000,
};

/// Claims as the dispatcher does through Kueue, `limit` the server's `--max-concurrent`.
async fn claim_through_kueue(store: &Store, limit: Option<i64>) -> Vec<Queued> {
    store
        .claim_for(
            "default",
            Timestamp::now(),
            32,
            limit,
            THROUGH_KUEUE,
            &Placing::default(),
        )
        .await
        .expect("claim")
}

/// Records a claimed submission's Job as created (`pending`), as the dispatcher does.
async fn created(store: &Store, id: SubmissionId) {
    store
        .update(id, |current| {
            Some(Progress {
                state: State::Pending,
                ..current.progress.clone()
            })
        })
        .await
        .expect("update")
        .expect("stored");
}

fn names(queued: &[Queued]) -> Vec<String> {
    queued
        .iter()
        .filter_map(|queued| queued.submission.spec.name.clone())
        .collect()
}

async fn a_limit_at_kueues_gate_opens_the_oldest_and_the_next_when_one_ends(backend: Backend) {
    // Arrange: alice's three under the server's limit of 2; carol's two under her token's 1
    let app = spawn_app(backend).await;
    let alices: Vec<Value> = batch(
        &app,
        body!({"submissions": (0..3).map(|n| sample(&format!("a{n}"))).collect::<Vec<_>>()}),
    )
    .await;
    let store = store_of(&app).await;
    let carol = crate::support::client_limited_to_one_job(&store, "carol").await;
    for n in 0..2 {
        app.post_as(&carol, "/v1/submissions", &sample(&format!("c{n}")))
            .await;
    }
    let limit = Some(2);

    // Act: every one claimed and created gated; then the gates that may open
    let claimed = claim_through_kueue(&store, limit).await;
    for queued in &claimed {
        created(&store, queued.submission.id).await;
    }
    let opened = store
        .open_gates("default", Timestamp::now(), limit)
        .await
        .expect("open");
    let again = store
        .open_gates("default", Timestamp::now(), limit)
        .await
        .expect("open");
    end(&store, id_of(&alices[0]), State::Succeeded).await;
    let after_an_end = store
        .open_gates("default", Timestamp::now(), limit)
        .await
        .expect("open");

    // Assert: no limit held a claim back, and every claimed one was gated
    assert_eq!(names(&claimed), ["a0", "a1", "a2", "c0", "c1"]);
    assert!(claimed.iter().all(|queued| queued.submission.gated));
    // the gates opened within each limit, oldest first, and stay opened
    assert_eq!(names(&opened), ["a0", "a1", "c0"]);
    assert!(again.is_empty(), "the open ones count against the limits");
    assert_eq!(names(&after_an_end), ["a2"], "alice's next once one ended");
    let third = store
        .get(id_of(&alices[2]))
        .await
        .expect("read")
        .expect("stored");
    assert!(!third.gated);
    let carols_second = &claimed[4].submission;
    let stored = store
        .get(carols_second.id)
        .await
        .expect("read")
        .expect("stored");
    assert!(stored.gated, "carol's second waits at the gate");
}
on_both_databases!(a_limit_at_kueues_gate_opens_the_oldest_and_the_next_when_one_ends);

async fn without_a_limit_nothing_is_gated(backend: Backend) {
    let app = spawn_app(backend).await;
    batch(&app, body!({"submissions": [sample("free")]})).await;
    let store = store_of(&app).await;

    let claimed = claim_through_kueue(&store, None).await;

    assert_eq!(names(&claimed), ["free"]);
    assert!(!claimed[0].submission.gated);
    let stored = store
        .get(claimed[0].submission.id)
        .await
        .expect("read")
        .expect("stored");
    assert!(!stored.gated);
}
on_both_databases!(without_a_limit_nothing_is_gated);

async fn a_batchs_limit_at_kueues_gate_opens_one_of_its_submissions_at_a_time(backend: Backend) {
    // Arrange: a batch of three with max_concurrent 1, and a lone submission of the same user
    let app = spawn_app(backend).await;
    batch(
        &app,
        body!({"max_concurrent": 1,
               "submissions": (0..3).map(|n| sample(&format!("g{n}"))).collect::<Vec<_>>()}),
    )
    .await;
    batch(&app, body!({"submissions": [sample("lone")]})).await;
    let store = store_of(&app).await;

    // Act
    let claimed = claim_through_kueue(&store, None).await;
    for queued in &claimed {
        created(&store, queued.submission.id).await;
    }
    let opened = store
        .open_gates("default", Timestamp::now(), None)
        .await
        .expect("open");
    end(&store, claimed[0].submission.id, State::Failed).await;
    let after_an_end = store
        .open_gates("default", Timestamp::now(), None)
        .await
        .expect("open");

    // Assert: the batch's are gated and go one at a time; the lone one, under no limit, never
    // waited at the gate
    assert_eq!(
        claimed
            .iter()
            .map(|queued| queued.submission.gated)
            .collect::<Vec<_>>(),
        [true, true, true, false]
    );
    assert_eq!(names(&opened), ["g0"]);
    assert_eq!(
        names(&after_an_end),
        ["g1"],
        "the batch's next once one ended"
    );
}
on_both_databases!(a_batchs_limit_at_kueues_gate_opens_one_of_its_submissions_at_a_time);
