//! `Idempotency-Key`: a client that retries after a lost answer gets the original submission,
//! never a second one.

use reqwest::StatusCode;
use serde_json::{Value, json as body};

use crate::on_both_databases;
use crate::support::{Backend, TestApp, fields, json, problem, spawn_app};

pub(crate) async fn post_with_key(
    app: &TestApp,
    path: &str,
    key: &str,
    request: &Value,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("idempotency-key", key)
        .json(request)
        .send()
        .await
        .expect("request")
}

async fn a_retry_with_the_same_key_returns_the_original_submission(backend: Backend) {
    let app = spawn_app(backend).await;
    let request = body!({"image": "busybox", "command": "echo once"});

    let first = post_with_key(&app, "/v1/submissions", "retry-1", &request).await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = json(first, StatusCode::CREATED).await;
    // The same body, serialized differently, is the same request.
    let reordered = body!({"command": "echo once", "image": "busybox"});
    let again = post_with_key(&app, "/v1/submissions", "retry-1", &reordered).await;

    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let again = json(again, StatusCode::CREATED).await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(app.list_all("").await.len(), 1);
}
on_both_databases!(a_retry_with_the_same_key_returns_the_original_submission);

async fn the_same_key_with_another_body_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    post_with_key(
        &app,
        "/v1/submissions",
        "k",
        &body!({"image": "busybox", "command": "a"}),
    )
    .await;

    let other = post_with_key(
        &app,
        "/v1/submissions",
        "k",
        &body!({"image": "busybox", "command": "b"}),
    )
    .await;

    let problem = problem(other, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Idempotency-Key"),
        "{problem}"
    );
    assert_eq!(app.list_all("").await.len(), 1);
}
on_both_databases!(the_same_key_with_another_body_is_refused);

async fn a_retried_batch_returns_the_original_batch(backend: Backend) {
    let app = spawn_app(backend).await;
    let request = body!({"submissions": [
        {"image": "busybox", "command": "one"},
        {"image": "busybox", "command": "two"},
    ]});

    let first = json(
        post_with_key(&app, "/v1/submissions/batch", "batch-7", &request).await,
        StatusCode::CREATED,
    )
    .await;
    let again = json(
        post_with_key(&app, "/v1/submissions/batch", "batch-7", &request).await,
        StatusCode::CREATED,
    )
    .await;

    let ids = |batch: &Value| -> Vec<Value> {
        batch["submissions"]
            .as_array()
            .expect("submissions")
            .iter()
            .map(|s| s["id"].clone())
            .collect()
    };
    assert_eq!(ids(&again), ids(&first));
    assert_eq!(app.list_all("").await.len(), 2);
}
on_both_databases!(a_retried_batch_returns_the_original_batch);

async fn concurrent_retries_store_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let request = body!({"image": "busybox", "command": "echo racing"});

    let responses = futures::future::join_all(
        (0..8).map(|_| post_with_key(&app, "/v1/submissions", "race", &request)),
    )
    .await;

    let mut ids = Vec::new();
    for response in responses {
        ids.push(json(response, StatusCode::CREATED).await["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(app.list_all("").await.len(), 1);
}
on_both_databases!(concurrent_retries_store_once);

async fn a_malformed_key_is_a_bad_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let long = "k".repeat(256);

    let response = post_with_key(
        &app,
        "/v1/submissions",
        &long,
        &body!({"image": "busybox", "command": "x"}),
    )
    .await;

    assert_eq!(
        fields(&problem(response, StatusCode::BAD_REQUEST).await),
        ["Idempotency-Key"]
    );
    assert!(app.list_all("").await.is_empty());
}
on_both_databases!(a_malformed_key_is_a_bad_request);
