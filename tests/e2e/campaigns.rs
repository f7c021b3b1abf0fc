//! A CAF campaign on the control plane: samples and a merge that waits for them, and limits on
//! how many Jobs run at once, held by the database across two replicas.

use std::cell::Cell;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use reqwest::StatusCode;
use serde_json::{Value, json as body};

use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually, follow_states, id, test_defaults};
use crate::on_the_cluster;
use crate::support::{Backend, TestApp, TestDatabase, json};

async fn batch(app: &TestApp, request: Value) -> Vec<Value> {
    let stored = json(
        app.post_json("/v1/submissions/batch", &request).await,
        StatusCode::CREATED,
    )
    .await;
    stored["submissions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn a_merge_runs_only_after_all_twenty_samples_succeeded(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let ledger = cluster.ledger("runs");
    let mut submissions: Vec<Value> = (0..20)
        .map(|n| {
            let name = format!("sample-{n}");
            body!({"name": name, "image": PAYLOAD_IMAGE, "retries": 0,
                   "command": format!("sleep 0.{}; {}", n % 7, ledger.record_command(&name))})
        })
        .collect();
    submissions.push(body!({"name": "merge", "image": PAYLOAD_IMAGE,
        "command": ledger.record_command("merge"),
        "depends_on": (0..20).map(|n| format!("sample-{n}")).collect::<Vec<_>>()}));

    let stored = batch(&app, body!({"submissions": submissions})).await;

    assert_eq!(stored[20]["state"], "waiting");
    let merge = id(&stored[20]);
    let (merged, seen) = follow_states(&app, &merge, &["succeeded", "failed"]).await;
    assert_eq!(merged["state"], "succeeded", "{merged}");
    assert_eq!(
        seen.first().map(String::as_str),
        Some("waiting"),
        "{seen:?}"
    );
    let order = ledger.lines();
    assert_eq!(order.len(), 21, "every payload ran once: {order:?}");
    assert_eq!(
        order.last().map(String::as_str),
        Some("merge"),
        "the merge ran last: {order:?}"
    );
    let merge_started = merged["started_at"].as_str().expect("started").to_owned();
    for sample in &stored[..20] {
        let done = json(
            app.get(&format!("/v1/submissions/{}", id(sample))).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(done["state"], "succeeded");
        let finished: jiff::Timestamp = done["finished_at"]
            .as_str()
            .expect("finished")
            .parse()
            .expect("time");
        let started: jiff::Timestamp = merge_started.parse().expect("time");
        assert!(
            finished <= started,
            "{} finished after the merge started",
            done["name"]
        );
    }
}
on_the_cluster!(a_merge_runs_only_after_all_twenty_samples_succeeded);

async fn a_failed_sample_fails_the_merge_which_never_gets_a_job(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let ledger = cluster.ledger("runs");
    let stored = batch(
        &app,
        body!({"submissions": [
            {"name": "good", "image": PAYLOAD_IMAGE, "command": ledger.record_command("good")},
            {"name": "bad", "image": PAYLOAD_IMAGE, "retries": 0, "command": "echo broken; exit 1"},
            {"name": "merge", "image": PAYLOAD_IMAGE, "command": ledger.record_command("merge"),
             "depends_on": ["good", "bad"]}
        ]}),
    )
    .await;
    let (bad, merge) = (id(&stored[1]), id(&stored[2]));

    let (failed, _) = follow_states(&app, &merge, &["failed", "succeeded", "cancelled"]).await;

    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["message"], format!("dependency {bad} failed"));
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let merge_job = failed["job_name"].as_str().expect("job name");
    assert!(
        jobs.get_opt(merge_job).await.expect("get job").is_none(),
        "the merge never got a Job"
    );
    assert!(!ledger.runs().contains_key("merge"), "the merge never ran");
}
on_the_cluster!(a_failed_sample_fails_the_merge_which_never_gets_a_job);

/// The Jobs of the namespace: their names, and whether each is still unfinished.
async fn jobs_now(cluster: &TestCluster) -> Vec<(String, bool)> {
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let listed = jobs
        .list(&ListParams::default().labels("app=submission-helper"))
        .await
        .expect("list jobs");
    listed
        .items
        .into_iter()
        .filter_map(|job| {
            let ended = job
                .status
                .iter()
                .flat_map(|status| status.conditions.iter().flatten())
                .any(|condition| {
                    matches!(condition.type_.as_str(), "Complete" | "Failed")
                        && condition.status == "True"
                });
            Some((job.metadata.name?, !ended))
        })
        .collect()
}

/// Checks what the user would see at one moment: at most `limit` Jobs unfinished, and none
/// for a submission behind the oldest `limit` still without a finished Job (dispatch in submit
/// order). Returns how many are unfinished.
fn check_jobs(jobs: &[(String, bool)], job_names: &[String], limit: usize) -> usize {
    let unfinished = jobs.iter().filter(|(_, unfinished)| *unfinished).count();
    assert!(
        unfinished <= limit,
        "more than {limit} Jobs at once: {jobs:?}"
    );
    let finished = jobs.len() - unfinished;
    for (name, _) in jobs {
        let position = job_names.iter().position(|own| own == name);
        assert!(
            position.is_some_and(|position| position < finished + limit),
            "{name} was dispatched before older submissions: {jobs:?}"
        );
    }
    unfinished
}

/// When a dispatcher last took its turn to claim the queued submissions of `namespace` (in
/// milliseconds; 0 before the first).
async fn last_dispatch_turn(database: &sqlx::PgPool, namespace: &str) -> i64 {
    sqlx::query_scalar("SELECT taken_at FROM dispatch_turns WHERE namespace = $1")
        .bind(namespace)
        .fetch_optional(database)
        .await
        .expect("dispatch turns")
        .unwrap_or_default()
}

/// Two replicas on one Postgres database, each user allowed 3 active Jobs: at no moment do
/// more than 3 exist unfinished, and the others are dispatched in submit order as they end.
#[tokio::test]
#[ignore = "needs the local control plane and Postgres: run tests/run.sh"]
async fn the_limit_of_active_jobs_holds_across_two_replicas() {
    let cluster = TestCluster::new().await;
    cluster.apply_rbac(include_str!("../../docker/k8s/base/rbac.yaml"));
    let database = TestDatabase::new(Backend::Postgres).await;
    let limited = |settings: &mut submission_helper::startup::Settings| {
        settings.defaults = test_defaults();
        settings.dispatch.per_user = Some(3);
    };
    let first = TestApp::builder()
        .with_database(database.shared())
        .with_cluster(cluster.service_account_cluster().await)
        .with_settings(limited)
        .spawn()
        .await;
    let second = TestApp::builder()
        .with_database(database.shared())
        .with_cluster(cluster.service_account_cluster().await)
        .with_settings(limited)
        .spawn()
        .await;
    let ledger = cluster.ledger("runs");
    let gate = cluster.gate("go");
    let submissions: Vec<Value> = (0..12)
        .map(|n| {
            let name = format!("s{n:02}");
            body!({"name": name, "image": PAYLOAD_IMAGE, "command":
                format!("{}; {}", gate.wait_command(), ledger.record_command(&name))})
        })
        .collect();
    let stored = batch(&first, body!({"submissions": submissions})).await;
    let job_names: Vec<String> = stored
        .iter()
        .map(|submission| {
            submission["job_name"]
                .as_str()
                .expect("job name")
                .to_owned()
        })
        .collect();

    eventually("3 Jobs to run", Duration::from_secs(60), || async {
        (check_jobs(&jobs_now(&cluster).await, &job_names, 3) == 3).then_some(())
    })
    .await;
    // Both dispatchers look again every few seconds: neither may start a fourth meanwhile. Each
    // look takes the namespace's dispatch turn in the database; nothing wakes either of them
    // now, so the next two turns taken are one of each.
    let turns = sqlx::PgPool::connect(&database.url)
        .await
        .expect("database");
    let last_seen = Cell::new(last_dispatch_turn(&turns, &cluster.namespace).await);
    let taken = Cell::new(0);
    eventually(
        "both dispatchers to look again",
        Duration::from_secs(60),
        || async {
            check_jobs(&jobs_now(&cluster).await, &job_names, 3);
            let last = last_dispatch_turn(&turns, &cluster.namespace).await;
            if last > last_seen.get() {
                last_seen.set(last);
                taken.set(taken.get() + 1);
            }
            (taken.get() >= 2).then_some(())
        },
    )
    .await;
    let queued = json(
        second.get("/v1/submissions?state=queued").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        queued["items"].as_array().map(Vec::len),
        Some(9),
        "{queued}"
    );

    gate.open();
    eventually("all 12 to succeed", Duration::from_secs(180), || async {
        check_jobs(&jobs_now(&cluster).await, &job_names, 3);
        let done = json(
            first.get("/v1/submissions?state=succeeded").await,
            StatusCode::OK,
        )
        .await;
        (done["items"].as_array().map(Vec::len) == Some(12)).then_some(())
    })
    .await;
    let runs = ledger.runs();
    assert_eq!(runs.len(), 12, "{runs:?}");
    assert!(
        runs.values().all(|times| *times == 1),
        "each ran once: {runs:?}"
    );
}
