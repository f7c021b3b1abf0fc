use reqwest::StatusCode;

use crate::on_both_databases;
use crate::support::{Backend, json, problem, spawn_app};

async fn healthz_answers_while_the_cluster_is_unavailable(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.get("/healthz").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
}
on_both_databases!(healthz_answers_while_the_cluster_is_unavailable);

async fn readyz_says_why_the_cluster_is_not_ready(backend: Backend) {
    let app = spawn_app(backend).await;

    let body = json(app.get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE).await;

    assert_eq!(body["ready"], false);
    assert_eq!(body["database"], "ok");
    // A short cause only: the reason's details (paths, hosts) are for the log, not for anyone
    // who asks without a token.
    assert_eq!(body["cluster"], "no cluster is configured", "{body}");
}
on_both_databases!(readyz_says_why_the_cluster_is_not_ready);

async fn cluster_views_say_the_cluster_is_unavailable(backend: Backend) {
    let app = spawn_app(backend).await;
    let submission = app
        .submit(serde_json::json!({"image": "busybox", "command": "true"}))
        .await;
    let id = submission["id"].as_str().unwrap_or_default();

    for path in [
        "/v1/jobs".to_owned(),
        "/v1/pods".to_owned(),
        format!("/v1/submissions/{id}/pods"),
        format!("/v1/submissions/{id}/cluster-events"),
        format!("/v1/submissions/{id}/logs"),
    ] {
        let body = problem(app.get(&path).await, StatusCode::SERVICE_UNAVAILABLE).await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("no cluster"),
            "{path}: {body}"
        );
    }
}
on_both_databases!(cluster_views_say_the_cluster_is_unavailable);

async fn unknown_paths_and_methods_get_problems(backend: Backend) {
    let app = spawn_app(backend).await;

    problem(app.get("/v2/nothing").await, StatusCode::NOT_FOUND).await;
    let response = app
        .client
        .delete(app.url("/v1/submissions"))
        .send()
        .await
        .expect("request");
    problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
}
on_both_databases!(unknown_paths_and_methods_get_problems);

async fn metrics_count_submissions_by_state_and_need_a_token_unless_public(backend: Backend) {
    let app = spawn_app(backend).await;
    app.submit(serde_json::json!({"image": "busybox", "command": "true"}))
        .await;
    let stopped = app
        .submit(serde_json::json!({"image": "busybox", "command": "false"}))
        .await;
    let cancel = format!(
        "/v1/submissions/{}/cancel",
        stopped["id"].as_str().expect("id")
    );
    assert_eq!(
        app.post_json(&cancel, &serde_json::json!({}))
            .await
            .status(),
        StatusCode::OK
    );
    let anonymous = reqwest::Client::new();

    let refused = anonymous
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request");
    let text = app.get("/metrics").await.text().await.expect("text");

    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(
        text.contains("submission_helper_submissions{state=\"queued\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("submission_helper_submissions{state=\"running\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("submission_helper_submissions{state=\"cancelled\"} 1\n"),
        "{text}"
    );

    let database = crate::support::TestDatabase::new(backend).await;
    let cluster =
        submission_helper::cluster::Cluster::unconfigured("none".into(), "default".into());
    let public = crate::support::TestApp::builder()
        .with_database(database)
        .with_cluster(cluster)
        .with_public_metrics()
        .spawn()
        .await;
    let open = anonymous
        .get(public.url("/metrics"))
        .send()
        .await
        .expect("request");
    assert_eq!(
        open.status(),
        StatusCode::OK,
        "--public-metrics needs no token"
    );
}
on_both_databases!(metrics_count_submissions_by_state_and_need_a_token_unless_public);

/// A request that takes too long is answered with a problem instead of hanging, and nothing of
/// it is stored: here a submit waits for a SQLite database that another writer holds locked.
#[tokio::test]
async fn a_request_held_up_past_the_time_limit_is_answered_503_and_stores_nothing() {
    use sqlx::{Connection, Executor};
    let database = crate::support::TestDatabase::new(crate::support::Backend::Sqlite).await;
    let url = database.url.clone();
    let app = crate::support::TestApp::builder()
        .with_database(database)
        .with_request_timeout(std::time::Duration::from_secs(1))
        .spawn()
        .await;
    let mut writer = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    writer.execute("BEGIN IMMEDIATE").await.expect("lock");

    let started = std::time::Instant::now();
    let response = app
        .post_json(
            "/v1/submissions",
            &serde_json::json!({"image": "busybox", "command": "true", "name": "held-up"}),
        )
        .await;
    let waited = started.elapsed();
    writer.execute("ROLLBACK").await.expect("unlock");

    assert_eq!(response.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let problem: serde_json::Value = response.json().await.expect("problem");
    assert_eq!(
        problem["type"], "urn:submission-helper:problem:request-timeout",
        "{problem}"
    );
    assert!(
        waited < std::time::Duration::from_secs(4),
        "answered after {waited:?}"
    );
    let listed: serde_json::Value = app
        .get("/v1/submissions?name=held-up")
        .await
        .json()
        .await
        .expect("list");
    assert_eq!(listed["items"], serde_json::json!([]), "{listed}");
}
