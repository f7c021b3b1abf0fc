//! Bad input gets a problem document naming the field and the reason, and nothing is stored.

use reqwest::StatusCode;
use serde_json::{Value, json as body};

use crate::on_both_databases;
use crate::support::{Backend, TestApp, fields, problem, spawn_app};

fn valid() -> Value {
    body!({"image": "busybox:1.36", "command": "echo hello"})
}

/// Sends `request`, expects a 422 naming exactly `field`, and checks nothing was stored.
async fn refused(app: &TestApp, request: Value, field: &str) {
    let response = app.post_json("/v1/submissions", &request).await;
    let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&problem), [field], "{request}: {problem}");
    let reason = problem["errors"][0]["reason"].as_str().unwrap_or_default();
    assert!(!reason.is_empty(), "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(field),
        "{problem}"
    );
    assert!(app.list_all("").await.is_empty(), "{request} was stored");
}

fn with(field: &str, value: Value) -> Value {
    let mut request = valid();
    request[field] = value;
    request
}

async fn each_bad_field_is_named(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        (with("name", body!("has spaces")), "name"),
        (with("name", body!("")), "name"),
        (with("name", body!(7)), "name"),
        (with("image", body!("bad image")), "image"),
        (with("image", body!("")), "image"),
        (with("command", body!("   ")), "command"),
        (with("command", body!("x".repeat(70_000))), "command"),
        (with("command", body!(["echo", "hi"])), "command"),
        (
            with("registry_secret", body!("Not_A_Secret")),
            "registry_secret",
        ),
        (with("volume_claim", body!("UPPER")), "volume_claim"),
        (with("mount_path", body!("relative")), "mount_path"),
        (with("mount_path", body!("/")), "mount_path"),
        (with("mount_path", body!("/a/../etc")), "mount_path"),
        (with("env", body!({"1ABC": "x"})), "env.1ABC"),
        (with("env", body!({"OK": 1})), "env.OK"),
        (with("env", body!(["A=B"])), "env"),
        (with("labels", body!({"app": "mine"})), "labels.app"),
        (
            with("labels", body!({"submission-helper.io/submission-id": "x"})),
            "labels.submission-helper.io/submission-id",
        ),
        (with("labels", body!({"bad key!": "x"})), "labels.bad key!"),
        (with("labels", body!({"k": "bad value"})), "labels.k"),
        (
            with("resources", body!({"requests": {"cpu": "lots"}})),
            "resources.requests.cpu",
        ),
        (
            with("resources", body!({"limits": {"memory": "-1Gi"}})),
            "resources.limits.memory",
        ),
        (
            with("resources", body!({"limits": {"gpu": "1"}})),
            "resources.limits.gpu",
        ),
        (
            with(
                "resources",
                body!({"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}),
            ),
            "resources.requests.memory",
        ),
        (with("backoff_limit", body!(-1)), "backoff_limit"),
        (with("backoff_limit", body!(101)), "backoff_limit"),
        (with("backoff_limit", body!("3")), "backoff_limit"),
        (
            with("active_deadline_seconds", body!(0)),
            "active_deadline_seconds",
        ),
        (
            with("ttl_seconds_after_finished", body!(-1)),
            "ttl_seconds_after_finished",
        ),
        (
            with(
                "retry_policy",
                body!({"on_exit_codes": [{"codes": [2], "action": "retry"}]}),
            ),
            "retry_policy.on_exit_codes[0].action",
        ),
        (
            with(
                "retry_policy",
                body!({"on_exit_codes": [{"codes": [2]}, {"codes": [2], "action": "fail"}]}),
            ),
            "retry_policy.on_exit_codes[1].codes",
        ),
        (
            with("retry_policy", body!({"on_exit_codes": [{"codes": [0]}]})),
            "retry_policy.on_exit_codes[0].codes",
        ),
        (
            with("retry_policy", body!({"on_exit_codes": [{"codes": []}]})),
            "retry_policy.on_exit_codes[0].codes",
        ),
        (
            with(
                "retry_policy",
                body!({"on_oom": {"memory_factor": 1.0, "max_memory": "16Gi"}}),
            ),
            "retry_policy.on_oom.memory_factor",
        ),
        (
            with("retry_policy", body!({"on_oom": {"max_memory": "1Mi"}})),
            "retry_policy.on_oom.max_memory",
        ),
        (
            with(
                "retry_policy",
                body!({"on_oom": {"max_memory": "16Gi", "max_reruns": 0}}),
            ),
            "retry_policy.on_oom.max_reruns",
        ),
        (
            with(
                "retry_policy",
                body!({"on_oom": {"max_memory": "16Gi"}, "on_exit_codes": [{"codes": [137]}]}),
            ),
            "retry_policy.on_exit_codes[0].codes",
        ),
        (with("privileged", body!(true)), "privileged"),
        (with("host_network", body!(true)), "host_network"),
        (body!({"image": "busybox"}), "command"),
    ];
    for (request, field) in cases {
        refused(&app, request, field).await;
    }
}
on_both_databases!(each_bad_field_is_named);

async fn a_mount_path_without_a_volume_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut request = valid();
    request["volume_claim"] = Value::Null;
    request["mount_path"] = body!("/data");

    refused(&app, request, "mount_path").await;
}
on_both_databases!(a_mount_path_without_a_volume_is_refused);

async fn an_image_is_required_when_the_server_has_none(backend: Backend) {
    let app = spawn_app(backend).await;

    refused(&app, body!({"command": "true"}), "image").await;
}
on_both_databases!(an_image_is_required_when_the_server_has_none);

async fn every_bad_field_is_reported_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let request =
        body!({"image": "bad image", "command": "", "backoff_limit": -3, "env": {"9": "x"}});

    let response = app.post_json("/v1/submissions", &request).await;

    let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        fields(&problem),
        ["image", "command", "env.9", "backoff_limit"]
    );
}
on_both_databases!(every_bad_field_is_reported_at_once);

async fn a_body_that_is_not_json_is_a_bad_request(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app
        .client
        .post(app.url("/v1/submissions"))
        .header("content-type", "application/json")
        .body("{\"image\": ")
        .send()
        .await
        .expect("request");

    let problem = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(fields(&problem), ["body"]);
    assert!(app.list_all("").await.is_empty());
}
on_both_databases!(a_body_that_is_not_json_is_a_bad_request);

async fn a_body_without_a_json_content_type_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app
        .client
        .post(app.url("/v1/submissions"))
        .body(valid().to_string())
        .send()
        .await
        .expect("request");

    problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}
on_both_databases!(a_body_without_a_json_content_type_is_refused);

async fn a_body_too_large_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let request = with("env", body!({"BIG": "x".repeat(2 * 1024 * 1024)}));

    let response = app.post_json("/v1/submissions", &request).await;

    problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(app.list_all("").await.is_empty());
}
on_both_databases!(a_body_too_large_is_refused);

async fn bad_query_parameters_are_named(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        ("/v1/submissions?state=done", "state"),
        ("/v1/submissions?label=novalue", "label"),
        ("/v1/submissions?label=bad%20key=x", "label"),
        ("/v1/submissions?limit=0", "limit"),
        ("/v1/submissions?limit=abc", "limit"),
        ("/v1/submissions?cursor=zzz", "cursor"),
        ("/v1/submissions?colour=red", "colour"),
        ("/v1/jobs?selector=x", "selector"),
    ];
    for (path, field) in cases {
        let problem = problem(app.get(path).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(fields(&problem), [field], "{path}");
    }
}
on_both_databases!(bad_query_parameters_are_named);

async fn a_bad_batch_names_the_submission_and_field(backend: Backend) {
    let app = spawn_app(backend).await;

    let empty = app
        .post_json("/v1/submissions/batch", &body!({"submissions": []}))
        .await;
    let missing = app.post_json("/v1/submissions/batch", &body!({})).await;
    let wrong = app
        .post_json(
            "/v1/submissions/batch",
            &body!({"submissions": [valid(), {"command": 1}]}),
        )
        .await;

    assert_eq!(
        fields(&problem(empty, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["submissions"]
    );
    assert_eq!(
        fields(&problem(missing, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["body"]
    );
    assert_eq!(
        fields(&problem(wrong, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["submissions[1].command"]
    );
    assert!(app.list_all("").await.is_empty());
}
on_both_databases!(a_bad_batch_names_the_submission_and_field);

async fn names_outside_the_server_allow_lists_are_refused(backend: Backend) {
    let defaults = submission_helper::domain::SubmitDefaults {
        registry_secret: None,
        volume_claim: None,
        allowed: submission_helper::domain::AllowLists {
            image_prefixes: vec!["registry.example.org/atlas/".into()],
            volume_claims: vec!["ntuples-claim".into()],
            registry_secrets: vec!["sh-k8s-registry-secret".into()],
            notify_hosts: Vec::new(),
        },
        ..Default::default()
    };
    let database = crate::support::TestDatabase::new(backend).await;
    let cluster =
        submission_helper::cluster::Cluster::unconfigured("none".into(), "default".into());
    let app = crate::support::TestApp::builder()
        .with_database(database)
        .with_cluster(cluster)
        .with_defaults(defaults)
        .spawn()
        .await;

    refused(
        &app,
        body!({"image": "docker.io/someone/miner", "command": "x"}),
        "image",
    )
    .await;
    refused(
        &app,
        body!({"image": "registry.example.org/atlas/a:1", "command": "x", "volume_claim": "other"}),
        "volume_claim",
    )
    .await;
    refused(&app, body!({"image": "registry.example.org/atlas/a:1", "command": "x", "registry_secret": "theirs"}), "registry_secret").await;
    app.submit(body!({"image": "registry.example.org/atlas/a:1", "command": "x", "volume_claim": "ntuples-claim"})).await;
}
on_both_databases!(names_outside_the_server_allow_lists_are_refused);
