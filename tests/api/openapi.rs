//! The committed OpenAPI document is the one the service serves.

use reqwest::StatusCode;

use crate::support::{Backend, json, spawn_app};

const COMMITTED: &str = "openapi/openapi.json";

#[test]
fn the_committed_openapi_document_is_current() {
    let current = submission_helper::http::openapi_json();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    if std::env::var("UPDATE_OPENAPI").is_ok_and(|value| value == "1") {
        std::fs::write(&path, &current).expect("write the document");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();

    assert!(
        committed == current,
        "{COMMITTED} is stale: regenerate it with `UPDATE_OPENAPI=1 cargo test --test api openapi` and commit it"
    );
}

#[tokio::test]
async fn the_service_serves_its_openapi_document() {
    let app = spawn_app(Backend::Sqlite).await;

    let served = json(app.get("/openapi.json").await, StatusCode::OK).await;

    let committed: serde_json::Value =
        serde_json::from_str(&submission_helper::http::openapi_json()).expect("document");
    assert_eq!(served, committed);
    for path in [
        "/v1/submissions",
        "/v1/submissions/batch",
        "/v1/submissions/{id}",
        "/v1/submissions/{id}/pods",
        "/v1/submissions/{id}/cluster-events",
        "/v1/submissions/{id}/logs",
        "/v1/submissions/{id}/cancel",
        "/v1/submissions/cancel",
        "/v1/events",
        "/v1/jobs",
        "/v1/pods",
        "/v1/tokens",
        "/v1/tokens/{id}",
        "/healthz",
        "/readyz",
    ] {
        assert!(
            served["paths"][path].is_object(),
            "{path} is not documented"
        );
    }
}
