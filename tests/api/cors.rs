//! Browser dashboards on other origins (`--cors-origin`): what a browser's preflight and its
//! real request get back, for an origin the operator allowed and for one it did not.

use reqwest::{Method, StatusCode};
use submission_helper::cluster::Cluster;

use crate::support::{Backend, TestApp, TestDatabase, json, spawn_app};

const DASHBOARD: &str = "https://dashboard.example.org";

async fn with_dashboard_allowed() -> TestApp {
    TestApp::builder()
        .with_database(TestDatabase::new(Backend::Sqlite).await)
        .with_cluster(Cluster::unconfigured(
            "none in these tests".into(),
            "default".into(),
        ))
        .with_settings(|settings| settings.cors_origins = vec![DASHBOARD.parse().expect("origin")])
        .spawn()
        .await
}

/// What a browser sends before a cross-origin POST with a token and a JSON body.
async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, app.url("/v1/submissions"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("preflight")
}

#[tokio::test]
async fn an_allowed_origin_may_submit_from_a_browser_and_read_the_answer() {
    let app = with_dashboard_allowed().await;

    let allowed = preflight(&app, DASHBOARD).await;
    let answer = app
        .client
        .post(app.url("/v1/submissions"))
        .header("origin", DASHBOARD)
        .json(&serde_json::json!({"image": "busybox", "command": "true"}))
        .send()
        .await
        .expect("request");

    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], DASHBOARD);
    let methods = headers["access-control-allow-methods"]
        .to_str()
        .expect("text");
    assert!(methods.contains("POST"), "{methods}");
    let asked = headers["access-control-allow-headers"]
        .to_str()
        .expect("text")
        .to_ascii_lowercase();
    assert!(
        asked.contains("authorization") && asked.contains("content-type"),
        "{asked}"
    );
    assert_eq!(answer.headers()["access-control-allow-origin"], DASHBOARD);
    let exposed = answer.headers()["access-control-expose-headers"]
        .to_str()
        .expect("text")
        .to_ascii_lowercase();
    assert!(
        exposed.contains("x-request-id") && exposed.contains("location"),
        "{exposed}"
    );
    json(answer, StatusCode::CREATED).await;
}

#[tokio::test]
async fn another_origin_gets_no_cors_headers_and_the_token_is_still_required() {
    let app = with_dashboard_allowed().await;

    let refused = preflight(&app, "https://evil.example.net").await;
    let without_token = reqwest::Client::new()
        .get(app.url("/v1/submissions"))
        .header("origin", DASHBOARD)
        .send()
        .await
        .expect("request");

    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin"),
        "{:?}",
        refused.headers()
    );
    assert_eq!(without_token.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_cors_origins_no_origin_is_allowed() {
    let app = spawn_app(Backend::Sqlite).await;

    let answer = preflight(&app, DASHBOARD).await;

    assert!(
        !answer.headers().contains_key("access-control-allow-origin"),
        "{:?}",
        answer.headers()
    );
}
