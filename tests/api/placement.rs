//! Several clusters behind one API: which cluster each submission's Job goes to, decided by the
//! database when the dispatcher claims it (read here from the store as the dispatcher reads
//! it, with clusters that have no client: placement needs none), and what a user sees of it.

use std::collections::BTreeMap;

use jiff::Timestamp;
use reqwest::StatusCode;
use serde_json::{Value, json as body};
use submission_helper::domain::placement::{Place, Placement};
use submission_helper::storage::{Claiming, Placing, Queued, Store};

use crate::campaigns::{batch, sample, store_of};
use crate::on_both_databases;
use crate::support::{Backend, TestApp, json, problem, spawn_over_two_clusters_without_clients};

fn place(name: &str, capacity: Option<i64>, open: bool) -> Place {
    Place {
        name: name.into(),
        capacity,
        in_use: 0,
        open,
    }
}

/// Claims as the dispatcher does, `placing` as given.
async fn claim(store: &Store, placing: &Placing) -> Vec<Queued> {
    store
        .claim_for(
            "default",
            Timestamp::now(),
            32,
            None,
            Claiming::Runnable,
            placing,
        )
        .await
        .expect("claim")
}

/// The claimed submissions' names by the cluster each was placed in.
fn by_cluster(claimed: &[Queued]) -> BTreeMap<String, Vec<String>> {
    let mut placed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for queued in claimed {
        placed
            .entry(queued.submission.cluster.clone().unwrap_or_default())
            .or_default()
            .push(queued.submission.spec.name.clone().unwrap_or_default());
    }
    placed
}

/// The names of the submissions under `key` of an answer (a page's `items`, a cancel's
/// `cancelled`).
fn names(answer: &Value, key: &str) -> Vec<String> {
    answer[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["name"].as_str().map(str::to_owned))
        .collect()
}

async fn samples(app: &TestApp, names: &[&str]) -> Vec<Value> {
    batch(
        app,
        body!({"submissions": names.iter().map(|name| sample(name)).collect::<Vec<_>>()}),
    )
    .await
}

async fn ordered_placement_fills_the_first_cluster_to_its_cap_then_the_next(backend: Backend) {
    // Arrange: six submissions; onsite takes two, cloud three
    let app = spawn_over_two_clusters_without_clients(backend).await;
    let stored = samples(&app, &["s0", "s1", "s2", "s3", "s4", "s5"]).await;
    let store = store_of(&app).await;
    let placing = Placing {
        placement: Placement::Ordered,
        places: vec![
            place("onsite", Some(2), true),
            place("cloud", Some(3), true),
        ],
    };

    // Act
    let first = claim(&store, &placing).await;
    let again = claim(&store, &placing).await;

    // Assert: in submit order, onsite first; the sixth waits for room
    assert_eq!(
        by_cluster(&first),
        BTreeMap::from([
            ("onsite".to_owned(), vec!["s0".to_owned(), "s1".to_owned()]),
            (
                "cloud".to_owned(),
                vec!["s2".to_owned(), "s3".to_owned(), "s4".to_owned()]
            ),
        ])
    );
    assert!(again.is_empty(), "both clusters are full: {again:?}");
    let id = stored[2]["id"].as_str().expect("id");
    let view = json(
        app.get(&format!("/v1/submissions/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(view["cluster"], "cloud", "{view}");
    let last = stored[5]["id"].as_str().expect("id");
    let view = json(
        app.get(&format!("/v1/submissions/{last}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(view["state"], "queued");
    assert_eq!(view["cluster"], Value::Null, "not placed yet: {view}");
}
on_both_databases!(ordered_placement_fills_the_first_cluster_to_its_cap_then_the_next);

async fn a_cluster_that_does_not_answer_gets_no_new_jobs_and_pinned_work_waits_for_it(
    backend: Backend,
) {
    // Arrange: two pinned to onsite, which does not answer; two free to go anywhere
    let app = spawn_over_two_clusters_without_clients(backend).await;
    let stored = batch(
        &app,
        body!({"submissions": [
            sample("free0"),
            {"name": "pinned0", "image": "busybox", "command": "true", "cluster": "onsite"},
            {"name": "pinned1", "image": "busybox", "command": "true", "cluster": "onsite"},
            sample("free1"),
        ]}),
    )
    .await;
    assert_eq!(stored[1]["cluster"], "onsite", "a pin shows at once");
    let store = store_of(&app).await;
    let unanswered = Placing {
        placement: Placement::Ordered,
        places: vec![place("onsite", None, false), place("cloud", None, true)],
    };

    // Act
    let meanwhile = claim(&store, &unanswered).await;
    let answered = Placing {
        placement: Placement::Ordered,
        places: vec![place("onsite", Some(1), true), place("cloud", None, true)],
    };
    let back = claim(&store, &answered).await;

    // Assert: the free ones went to cloud; the pinned ones waited, then onsite took one
    assert_eq!(
        by_cluster(&meanwhile),
        BTreeMap::from([(
            "cloud".to_owned(),
            vec!["free0".to_owned(), "free1".to_owned()]
        )])
    );
    assert_eq!(
        by_cluster(&back),
        BTreeMap::from([("onsite".to_owned(), vec!["pinned0".to_owned()])])
    );
}
on_both_databases!(a_cluster_that_does_not_answer_gets_no_new_jobs_and_pinned_work_waits_for_it);

async fn balanced_placement_evens_the_share_of_capacity_in_use(backend: Backend) {
    let app = spawn_over_two_clusters_without_clients(backend).await;
    samples(&app, &["b0", "b1", "b2", "b3", "b4", "b5"]).await;
    let store = store_of(&app).await;
    let placing = Placing {
        placement: Placement::Balanced,
        places: vec![
            place("onsite", Some(2), true),
            place("cloud", Some(4), true),
        ],
    };

    let claimed = claim(&store, &placing).await;

    // Each to the lower share in use (a tie to the first given): onsite 1/2, cloud 1/4, 2/4,
    // onsite 2/2 (full), cloud 3/4, 4/4.
    assert_eq!(
        by_cluster(&claimed),
        BTreeMap::from([
            ("onsite".to_owned(), vec!["b0".to_owned(), "b3".to_owned()]),
            (
                "cloud".to_owned(),
                ["b1", "b2", "b4", "b5"].map(String::from).to_vec()
            ),
        ])
    );
}
on_both_databases!(balanced_placement_evens_the_share_of_capacity_in_use);

async fn a_users_limit_counts_its_jobs_in_every_cluster(backend: Backend) {
    // Arrange: five queued of one user, whose limit is three, and clusters without caps
    let app = spawn_over_two_clusters_without_clients(backend).await;
    samples(&app, &["u0", "u1", "u2", "u3", "u4"]).await;
    let store = store_of(&app).await;
    let placing = Placing {
        placement: Placement::Balanced,
        places: vec![place("onsite", None, true), place("cloud", None, true)],
    };
    let claim_limited = || {
        store.claim_for(
            "default",
            Timestamp::now(),
            32,
            Some(3),
            Claiming::Runnable,
            &placing,
        )
    };

    // Act
    let first = claim_limited().await.expect("claim");
    let again = claim_limited().await.expect("claim");

    // Assert: three in all, spread over both; none more while they are active
    assert_eq!(
        by_cluster(&first),
        BTreeMap::from([
            ("onsite".to_owned(), vec!["u0".to_owned(), "u2".to_owned()]),
            ("cloud".to_owned(), vec!["u1".to_owned()]),
        ])
    );
    assert!(again.is_empty(), "the user's limit is reached: {again:?}");
}
on_both_databases!(a_users_limit_counts_its_jobs_in_every_cluster);

async fn two_replicas_claiming_at_once_never_pass_a_clusters_cap(backend: Backend) {
    // Arrange: forty queued, and two replicas' stores on the one database
    let app = spawn_over_two_clusters_without_clients(backend).await;
    let names: Vec<String> = (0..40).map(|n| format!("r{n}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    samples(&app, &names).await;
    let (one, other) = (store_of(&app).await, store_of(&app).await);
    let placing = Placing {
        placement: Placement::Ordered,
        places: vec![
            place("onsite", Some(5), true),
            place("cloud", Some(7), true),
        ],
    };

    // Act: both claim at once, a few rounds each, as two dispatchers would
    let rounds = |store: Store, placing: Placing| async move {
        let mut claimed = Vec::new();
        for _ in 0..4 {
            claimed.extend(claim(&store, &placing).await);
        }
        claimed
    };
    let (mine, theirs) = tokio::join!(rounds(one, placing.clone()), rounds(other, placing.clone()));

    // Assert: together exactly the caps, each submission once
    let mut all = mine;
    all.extend(theirs);
    let placed = by_cluster(&all);
    assert_eq!(placed["onsite"].len(), 5, "{placed:?}");
    assert_eq!(placed["cloud"].len(), 7, "{placed:?}");
    let mut ids: Vec<_> = all.iter().map(|queued| queued.submission.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12, "a submission was claimed twice");
}
on_both_databases!(two_replicas_claiming_at_once_never_pass_a_clusters_cap);

async fn a_cluster_the_service_does_not_have_is_refused_naming_the_field(backend: Backend) {
    let app = spawn_over_two_clusters_without_clients(backend).await;

    let refused = app
        .post_json(
            "/v1/submissions",
            &body!({"image": "busybox", "command": "true", "cluster": "gpu"}),
        )
        .await;
    let listed = app.get("/v1/jobs?cluster=gpu").await;
    let submissions = app.get("/v1/submissions?cluster=gpu").await;
    let cancel = app
        .post_json("/v1/submissions/cancel", &body!({"cluster": "gpu"}))
        .await;

    let cancel = problem(cancel, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(cancel["errors"][0]["field"], "cluster", "{cancel}");
    let submissions = problem(submissions, StatusCode::BAD_REQUEST).await;
    assert!(
        submissions["detail"]
            .as_str()
            .is_some_and(|d| d.contains("cluster")),
        "{submissions}"
    );
    let body = problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["field"], "cluster");
    assert_eq!(
        errors[0]["reason"],
        "no cluster is named \"gpu\" here; this server has: onsite, cloud"
    );
    let body = problem(listed, StatusCode::BAD_REQUEST).await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("cluster")),
        "{body}"
    );
}
on_both_databases!(a_cluster_the_service_does_not_have_is_refused_naming_the_field);

async fn with_several_clusters_each_clusters_series_carry_its_name(backend: Backend) {
    let app = spawn_over_two_clusters_without_clients(backend).await;

    let text = app.get("/metrics").await.text().await.expect("metrics");

    for cluster in ["onsite", "cloud"] {
        let label = format!("cluster=\"{cluster}\"");
        let series = |name: &str| {
            text.lines()
                .filter(|line| line.starts_with(name) && line.contains(&label))
                .count()
        };
        assert!(
            series("submission_helper_reconciles_total{") > 0,
            "{cluster}: {text}"
        );
        assert!(
            series("submission_helper_apiserver_requests_total{") > 0,
            "{cluster}: {text}"
        );
        assert_eq!(series("submission_helper_cluster_reachable{"), 1, "{text}");
    }
}
on_both_databases!(with_several_clusters_each_clusters_series_carry_its_name);

async fn a_claim_of_several_rounds_takes_each_submission_once(backend: Backend) {
    // Arrange: alice's, then three of carol's (her token allows one Job at a time), then
    // alice's second
    let app = crate::support::spawn_app(backend).await;
    let store = store_of(&app).await;
    let carol = crate::support::client_limited_to_one_job(&store, "carol").await;
    samples(&app, &["a0"]).await;
    for name in ["c0", "c1", "c2"] {
        app.post_as(&carol, "/v1/submissions", &sample(name)).await;
    }
    samples(&app, &["a1"]).await;

    // Act: three at a time; carol's limit is found full in the first round
    let claimed = store
        .claim("default", Timestamp::now(), 3, None)
        .await
        .expect("claim");

    // Assert: the second round went past carol's, to alice's second, and took a0 once
    let names: Vec<String> = claimed
        .iter()
        .filter_map(|queued| queued.submission.spec.name.clone())
        .collect();
    assert_eq!(names, ["a0", "c0", "a1"]);
}
on_both_databases!(a_claim_of_several_rounds_takes_each_submission_once);

async fn the_list_and_a_bulk_cancel_take_one_clusters_submissions(backend: Backend) {
    // Arrange: one submission pinned to each cluster, and one not placed yet
    let app = spawn_over_two_clusters_without_clients(backend).await;
    for (name, cluster) in [("a", Some("onsite")), ("b", Some("cloud")), ("c", None)] {
        let mut request = body!({"name": name, "image": "busybox", "command": "true"});
        if let Some(cluster) = cluster {
            request["cluster"] = body!(cluster);
        }
        app.submit(request).await;
    }

    // Act
    let listed = json(
        app.get("/v1/submissions?cluster=cloud").await,
        StatusCode::OK,
    )
    .await;
    let cancelled = json(
        app.post_json("/v1/submissions/cancel", &body!({"cluster": "onsite"}))
            .await,
        StatusCode::OK,
    )
    .await;
    let left = json(
        app.get("/v1/submissions?state=queued").await,
        StatusCode::OK,
    )
    .await;

    // Assert
    assert_eq!(names(&listed, "items"), ["b"], "{listed}");
    assert_eq!(names(&cancelled, "cancelled"), ["a"], "{cancelled}");
    assert_eq!(names(&left, "items"), ["c", "b"], "{left}");
}
on_both_databases!(the_list_and_a_bulk_cancel_take_one_clusters_submissions);

async fn the_list_and_a_bulk_cancel_take_one_kueue_queues_submissions(backend: Backend) {
    // Arrange: a server that submits through Kueue, one submission in each of two queues
    let app = TestApp::builder()
        .on(backend)
        .with_settings(|settings| {
            settings.defaults.kueue = Some(submission_helper::domain::KueueDefaults {
                default_queue: Some("team-a".into()),
            });
        })
        .spawn()
        .await;
    app.submit(body!({"name": "a", "image": "busybox", "command": "true"}))
        .await;
    app.submit(body!({"name": "ab", "image": "busybox", "command": "true", "queue": "team-ab"}))
        .await;

    // Act
    let listed = json(
        app.get("/v1/submissions?queue=team-a").await,
        StatusCode::OK,
    )
    .await;
    let malformed = app.get("/v1/submissions?queue=Team%20A").await;
    let cancelled = json(
        app.post_json("/v1/submissions/cancel", &body!({"queue": "team-ab"}))
            .await,
        StatusCode::OK,
    )
    .await;

    // Assert: a queue's name matches whole, never as the start of another's
    assert_eq!(names(&listed, "items"), ["a"], "{listed}");
    assert_eq!(names(&cancelled, "cancelled"), ["ab"], "{cancelled}");
    let refused = problem(malformed, StatusCode::BAD_REQUEST).await;
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("queue")),
        "{refused}"
    );
}
on_both_databases!(the_list_and_a_bulk_cancel_take_one_kueue_queues_submissions);
