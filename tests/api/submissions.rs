//! Submitting, listing, inspecting and cancelling, as the README shows it with curl.

use reqwest::StatusCode;
use serde_json::{Value, json as body};

use crate::on_both_databases;
use crate::support::{Backend, TestApp, fields, json, problem, spawn_app};

fn payload(name: &str) -> Value {
    body!({
        "name": name,
        "image": "gitlab-registry.cern.ch/fsauerbu/caf-k8s/cafexample",
        "command": "analyze config/master/analyze.cfg",
    })
}

async fn a_submission_is_stored_with_the_seed_defaults(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.post_json("/v1/submissions", &payload("ttbar")).await;

    let location = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let created = json(response, StatusCode::CREATED).await;
    let id = created["id"].as_str().expect("id");
    assert_eq!(
        location.as_deref(),
        Some(format!("/v1/submissions/{id}").as_str())
    );
    assert_eq!(created["state"], "queued");
    assert_eq!(created["registry_secret"], "sh-k8s-registry-secret");
    assert_eq!(created["volume_claim"], "ntuples-claim");
    assert_eq!(created["mount_path"], "/ntuples");
    assert_eq!(created["backoff_limit"], 3);
    assert_eq!(created["active_deadline_seconds"], 86400);
    assert_eq!(created["ttl_seconds_after_finished"], 86400);
    assert_eq!(
        created["resources"],
        body!({"requests": {"cpu": "1", "memory": "4000M"}})
    );
    assert_eq!(created["job_name"], format!("sh-{}", id.replace('-', "")));
    assert_eq!(created["namespace"], "default");

    let fetched = json(
        app.get(&format!("/v1/submissions/{id}")).await,
        StatusCode::OK,
    )
    .await;
    // Shown alone, a queued submission also says why it waits, and where.
    assert_eq!(
        fetched["message"],
        "waits for a cluster: none is configured, and its Job is created once one is"
    );
    assert_eq!(
        fetched["queue"],
        body!({"name": null, "priority_class": null, "admitted": false, "position": 0, "evictions": 0})
    );
    assert_eq!(as_submitted(fetched, &created), created);
}

/// A submission as `GET` shows it, without what only that adds to a queued one (why it waits,
/// and where), to compare with the submit's answer.
fn as_submitted(mut fetched: Value, created: &Value) -> Value {
    fetched["message"] = created["message"].clone();
    if let Some(fields) = fetched.as_object_mut() {
        fields.remove("queue");
    }
    fetched
}
on_both_databases!(a_submission_is_stored_with_the_seed_defaults);

async fn every_field_is_kept_as_given(backend: Backend) {
    let app = spawn_app(backend).await;
    let request = body!({
        "name": "full",
        "image": "atlas/analysisbase:21.2.171",
        "command": "echo \"$HOME\" && exit 3",
        "registry_secret": null,
        "volume_claim": "my-data",
        "mount_path": "/data/in",
        "env": {"NEVENTS": "1000", "CAF_CONFIG": "a b c"},
        "labels": {"campaign": "mc16e", "example.org/user": "alice"},
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        "backoff_limit": 3,
        "active_deadline_seconds": 3600,
        "ttl_seconds_after_finished": 600
    });

    let created = app.submit(request.clone()).await;

    for field in [
        "name",
        "image",
        "command",
        "registry_secret",
        "volume_claim",
        "mount_path",
        "env",
        "labels",
        "resources",
        "backoff_limit",
        "active_deadline_seconds",
        "ttl_seconds_after_finished",
    ] {
        assert_eq!(created[field], request[field], "{field}");
    }
}
on_both_databases!(every_field_is_kept_as_given);

async fn the_helpers_flags_have_fields_of_their_own(backend: Backend) {
    let app = spawn_app(backend).await;

    let created = app
        .submit(body!({
            "image": "gitlab-registry.cern.ch/fsauerbu/caf-k8s/cafexample",
            "command": "analyze.py config/master/analyze.cfg",
            "identifier": "ttbar-mc16e", "time": 120, "memory": "8000M", "cpus": 2, "retries": 0
        }))
        .await;

    assert_eq!(created["identifier"], "ttbar-mc16e");
    assert_eq!(created["labels"]["identifier"], "ttbar-mc16e");
    assert_eq!(created["active_deadline_seconds"], 7200);
    assert_eq!(
        created["resources"],
        body!({"requests": {"cpu": "2", "memory": "8000M"}})
    );
    assert_eq!(created["backoff_limit"], 0);
    assert_eq!(created["tool"], "analyze");
}
on_both_databases!(the_helpers_flags_have_fields_of_their_own);

async fn a_field_given_in_both_vocabularies_is_refused_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app
        .post_json(
            "/v1/submissions",
            &body!({"image": "img", "command": "true", "retries": 1, "backoff_limit": 2,
                    "time": 5, "active_deadline_seconds": 60}),
        )
        .await;

    let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&problem), ["retries", "time"]);
    assert!(
        problem["errors"][0]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("backoff_limit")),
        "{problem}"
    );
}
on_both_databases!(a_field_given_in_both_vocabularies_is_refused_naming_it);

async fn null_asks_for_no_secret_and_no_volume(backend: Backend) {
    let app = spawn_app(backend).await;

    let created = app
        .submit(body!({"image": "busybox", "command": "true", "registry_secret": null, "volume_claim": null}))
        .await;

    assert_eq!(created["registry_secret"], Value::Null);
    assert_eq!(created["volume_claim"], Value::Null);
    assert_eq!(created["mount_path"], Value::Null);
}
on_both_databases!(null_asks_for_no_secret_and_no_volume);

async fn a_batch_is_stored_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let submissions: Vec<Value> = (0..250).map(|i| payload(&format!("part-{i}"))).collect();

    let response = app
        .post_json(
            "/v1/submissions/batch",
            &body!({"submissions": submissions}),
        )
        .await;

    let stored = json(response, StatusCode::CREATED).await;
    let names: Vec<&str> = stored["submissions"]
        .as_array()
        .expect("submissions")
        .iter()
        .filter_map(|submission| submission["name"].as_str())
        .collect();
    let expected: Vec<String> = (0..250).map(|i| format!("part-{i}")).collect();
    assert_eq!(names, expected);
    assert_eq!(app.list_all("").await.len(), 250);
}
on_both_databases!(a_batch_is_stored_in_order);

async fn a_batch_with_one_bad_submission_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut bad = payload("bad");
    bad["mount_path"] = body!("relative/path");

    let response = app
        .post_json(
            "/v1/submissions/batch",
            &body!({"submissions": [payload("good"), bad, payload("also-good")]}),
        )
        .await;

    let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        crate::support::fields(&problem),
        ["submissions[1].mount_path"]
    );
    assert!(app.list_all("").await.is_empty());
}
on_both_databases!(a_batch_with_one_bad_submission_stores_nothing);

async fn a_batch_of_ten_thousand_is_accepted_and_more_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let one = body!({"image": "busybox", "command": "true"});

    let too_many = vec![one.clone(); 10_001];
    let refused = app
        .post_json("/v1/submissions/batch", &body!({"submissions": too_many}))
        .await;
    problem(refused, StatusCode::PAYLOAD_TOO_LARGE).await;

    let most = vec![one; 10_000];
    let accepted = app
        .post_json("/v1/submissions/batch", &body!({"submissions": most}))
        .await;
    let stored = json(accepted, StatusCode::CREATED).await;
    assert_eq!(stored["submissions"].as_array().map(Vec::len), Some(10_000));
}
on_both_databases!(a_batch_of_ten_thousand_is_accepted_and_more_is_refused);

async fn listing_pages_newest_first_through_every_submission(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for i in 0..23 {
        ids.push(app.submit(payload(&format!("job-{i}"))).await["id"].clone());
    }

    let listed: Vec<Value> = app
        .list_all("")
        .await
        .into_iter()
        .map(|s| s["id"].clone())
        .collect();

    ids.reverse();
    assert_eq!(listed, ids);
}
on_both_databases!(listing_pages_newest_first_through_every_submission);

async fn listing_filters_by_state_label_and_name(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut first = payload("alpha");
    first["labels"] = body!({"campaign": "mc16e", "user": "alice"});
    let mut second = payload("beta");
    second["labels"] = body!({"campaign": "mc16e", "user": "bob"});
    let first = app.submit(first).await;
    let second = app.submit(second).await;
    app.submit(payload("gamma")).await;
    let cancelled = app
        .post_json(
            &format!(
                "/v1/submissions/{}/cancel",
                second["id"].as_str().unwrap_or_default()
            ),
            &body!({}),
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);

    let names = |items: Vec<Value>| -> Vec<String> {
        items
            .iter()
            .filter_map(|s| s["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        names(app.list_all("&label=campaign=mc16e").await),
        ["beta", "alpha"]
    );
    assert_eq!(
        names(app.list_all("&label=campaign=mc16e&label=user=alice").await),
        ["alpha"]
    );
    assert_eq!(names(app.list_all("&state=cancelled").await), ["beta"]);
    assert_eq!(
        names(app.list_all("&state=queued,running").await),
        ["gamma", "alpha"]
    );
    assert_eq!(
        names(app.list_all("&state=queued&state=cancelled").await),
        ["gamma", "beta", "alpha"]
    );
    assert_eq!(names(app.list_all("&name=alpha").await), ["alpha"]);
    assert!(app.list_all("&name=nobody").await.is_empty());
    assert_eq!(first["state"], "queued");
}
on_both_databases!(listing_filters_by_state_label_and_name);

async fn cancelling_twice_is_not_an_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.submit(payload("once")).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("/v1/submissions/{id}/cancel");

    let first = json(app.post_json(&path, &body!({})).await, StatusCode::OK).await;
    let second = json(app.post_json(&path, &body!({})).await, StatusCode::OK).await;

    assert_eq!(first["state"], "cancelled");
    assert_eq!(second["state"], "cancelled");
    assert!(first["finished_at"].is_string());
    let stored = json(
        app.get(&format!("/v1/submissions/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stored["state"], "cancelled");
}
on_both_databases!(cancelling_twice_is_not_an_error);

async fn bulk_cancel_touches_only_what_matches(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for (name, campaign) in [("a", "mc16a"), ("b", "mc16e"), ("c", "mc16e")] {
        let mut request = payload(name);
        request["labels"] = body!({"campaign": campaign});
        ids.push(app.submit(request).await["id"].clone());
    }

    let response = app
        .post_json(
            "/v1/submissions/cancel",
            &body!({"labels": {"campaign": "mc16e"}}),
        )
        .await;

    let cancelled = json(response, StatusCode::OK).await;
    let cancelled: Vec<Value> = cancelled["cancelled"]
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(cancelled, [ids[2].clone(), ids[1].clone()]);
    let untouched = json(
        app.get(&format!(
            "/v1/submissions/{}",
            ids[0].as_str().unwrap_or_default()
        ))
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(untouched["state"], "queued");

    let again = json(
        app.post_json(
            "/v1/submissions/cancel",
            &body!({"labels": {"campaign": "mc16e"}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["cancelled"], body!([]));
}
on_both_databases!(bulk_cancel_touches_only_what_matches);

async fn bulk_cancel_needs_a_filter(backend: Backend) {
    let app = spawn_app(backend).await;
    app.submit(payload("keep")).await;

    let empty = problem(
        app.post_json("/v1/submissions/cancel", &body!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let finished = problem(
        app.post_json("/v1/submissions/cancel", &body!({"state": ["succeeded"]}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    assert_eq!(crate::support::fields(&empty), ["body"]);
    assert_eq!(crate::support::fields(&finished), ["state"]);
    assert_eq!(app.list_all("&state=queued").await.len(), 1);
}
on_both_databases!(bulk_cancel_needs_a_filter);

async fn unknown_submissions_are_not_found(backend: Backend) {
    let app = spawn_app(backend).await;

    for path in [
        "/v1/submissions/01935f2e-8c4a-7b3d-9e2f-123456789abc",
        "/v1/submissions/not-an-id",
        "/v1/submissions/01935f2e-8c4a-7b3d-9e2f-123456789abc/pods",
    ] {
        problem(app.get(path).await, StatusCode::NOT_FOUND).await;
    }
    let cancel = app
        .post_json(
            "/v1/submissions/01935f2e-8c4a-7b3d-9e2f-123456789abc/cancel",
            &body!({}),
        )
        .await;
    problem(cancel, StatusCode::NOT_FOUND).await;
}
on_both_databases!(unknown_submissions_are_not_found);

async fn submissions_survive_a_restart(backend: Backend) {
    let first = spawn_app(backend).await;
    let created = first.submit(payload("durable")).await;

    // A second service on the same database, as after a restart.
    let second = TestApp::builder()
        .with_database(first.database.shared())
        .with_cluster(unconfigured())
        .spawn()
        .await;

    let path = format!(
        "/v1/submissions/{}",
        created["id"].as_str().unwrap_or_default()
    );
    let fetched = json(second.get(&path).await, StatusCode::OK).await;
    assert_eq!(as_submitted(fetched, &created), created);
}
on_both_databases!(submissions_survive_a_restart);

fn unconfigured() -> submission_helper::cluster::Cluster {
    submission_helper::cluster::Cluster::unconfigured(
        "no cluster in this test".into(),
        "default".into(),
    )
}

/// `?pod=` is checked before the cluster is asked: a name that cannot be a pod's is refused,
/// and one that is not of this submission's Job is not found (this app has no cluster at all).
async fn a_log_request_for_a_pod_that_cannot_be_the_submissions_is_answered_at_once(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let submitted = app.submit(payload("logs")).await;
    let id = submitted["id"].as_str().unwrap_or_default().to_owned();
    let job_name = submitted["job_name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let malformed = app
        .get(&format!("/v1/submissions/{id}/logs?pod=Not_A_Pod"))
        .await;
    let foreign = app
        .get(&format!("/v1/submissions/{id}/logs?pod=someone-else-abcde"))
        .await;
    let ours = app
        .get(&format!("/v1/submissions/{id}/logs?pod={job_name}-abcde"))
        .await;

    let malformed = json(malformed, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(malformed["errors"][0]["field"], "pod", "{malformed}");
    let foreign = json(foreign, StatusCode::NOT_FOUND).await;
    assert!(
        foreign["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("someone-else-abcde"),
        "{foreign}"
    );
    assert_eq!(
        ours.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "a name that may be its pod's is for the cluster to answer"
    );
}
on_both_databases!(a_log_request_for_a_pod_that_cannot_be_the_submissions_is_answered_at_once);

/// How pods ended, as the service records them when they end (written here straight into the
/// database: with no cluster no pod ever ends).
async fn attempts_are_shown_oldest_first_with_whether_each_used_a_retry(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let created = app
        .submit(body!({"image": "busybox", "command": "analyze",
            "retry_policy": {"on_exit_codes": [{"codes": [75], "action": "ignore"}]}}))
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let store = submission_helper::storage::Store::connect(&app.database.url)
        .await
        .expect("store");
    let end = |pod: &str, exit_code: i32, disrupted: bool| submission_helper::domain::PodEnd {
        pod: pod.into(),
        started_at: None,
        finished_at: None,
        exit_code: Some(exit_code),
        reason: Some("Error".into()),
        memory: Some("4000M".into()),
        disrupted,
    };
    let at = |text: &str| text.parse::<jiff::Timestamp>().expect("time");
    let submission = id.parse().expect("id");

    // Act
    for (created_at, pod) in [
        ("2026-12-06T08:02:00Z", end("third", 1, false)),
        ("2026-12-06T08:00:00Z", end("first", 75, false)),
        ("2026-12-06T08:01:00Z", end("second", 137, true)),
    ] {
        store
            .record_pod_end(submission, at(created_at), &pod)
            .await
            .expect("record");
    }
    let shown = json(
        app.get(&format!("/v1/submissions/{id}")).await,
        StatusCode::OK,
    )
    .await;
    let listed = app.list_all("").await;

    // Assert
    let attempts: Vec<(&str, bool)> = shown["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|attempt| {
            let pod = attempt["pod"].as_str().expect("pod");
            (pod, attempt["counted"].as_bool().expect("counted"))
        })
        .collect();
    assert_eq!(
        attempts,
        [("first", false), ("second", false), ("third", true)]
    );
    assert_eq!(shown["attempts"][1]["disrupted"], true);
    assert_eq!(listed[0].get("attempts"), None, "lists leave them out");
}
on_both_databases!(attempts_are_shown_oldest_first_with_whether_each_used_a_retry);
