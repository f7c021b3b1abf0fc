//! The GA4GH TES 1.1 API under `/ga4gh/tes/v1`, with no cluster (tasks stay QUEUED): creating,
//! reading in each view, listing with filters and pages, cancelling, refusals that store
//! nothing, tokens and owners, and the committed TES document being the one served.

use reqwest::StatusCode;
use serde_json::{Value, json};

use submission_helper::domain::SubmissionId;
use submission_helper::domain::tes::runs::ExecutorRun;
use submission_helper::storage::Store;

use crate::on_both_databases;
use crate::support::{Backend, TestApp, fields, json, problem, spawn_app};

const TASKS: &str = "/ga4gh/tes/v1/tasks";
const COMMITTED: &str = "openapi/tes.json";

fn echo_task(name: &str) -> Value {
    json!({"name": name, "executors": [{"image": "alpine", "command": ["echo", "hello"]}]})
}

async fn create(app: &TestApp, task: &Value) -> String {
    let body = json(app.post_json(TASKS, task).await, StatusCode::OK).await;
    assert_eq!(
        body.as_object().map(|object| object.len()),
        Some(1),
        "{body}"
    );
    body["id"].as_str().expect("id").to_owned()
}

async fn task_count(app: &TestApp) -> usize {
    let page = json(
        app.get(&format!("{TASKS}?page_size=2048")).await,
        StatusCode::OK,
    )
    .await;
    page["tasks"].as_array().expect("tasks").len()
}

async fn listed_ids(app: &TestApp, query: &str) -> Vec<String> {
    let page = json(app.get(&format!("{TASKS}?{query}")).await, StatusCode::OK).await;
    page["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|task| task["id"].as_str().expect("id").to_owned())
        .collect()
}

on_both_databases!(a_created_task_is_answered_with_its_id_and_read_back_as_sent);
async fn a_created_task_is_answered_with_its_id_and_read_back_as_sent(backend: Backend) {
    let app = spawn_app(backend).await;
    let task = json!({
        "name": "hello",
        "executors": [{"image": "alpine", "command": ["echo", "hello"], "env": {"A": "1"}}],
        "inputs": [{"path": "/tmp/script.sh", "content": "echo hi", "type": "FILE"}],
        "tags": {"foo": "bar"},
    });

    let id = create(&app, &task).await;
    let minimal = json(app.get(&format!("{TASKS}/{id}")).await, StatusCode::OK).await;
    let basic = json(
        app.get(&format!("{TASKS}/{id}?view=BASIC")).await,
        StatusCode::OK,
    )
    .await;
    let full = json(
        app.get(&format!("{TASKS}/{id}?view=FULL")).await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(minimal, json!({"id": id, "state": "QUEUED"}));
    assert_eq!(basic["executors"], task["executors"]);
    assert_eq!(basic["tags"], task["tags"]);
    assert_eq!(basic["inputs"][0].get("content"), None, "{basic}");
    assert!(basic["creation_time"].is_string(), "{basic}");
    assert_eq!(basic["logs"].as_array().map(Vec::len), Some(1), "{basic}");
    assert_eq!(full["inputs"][0]["content"], "echo hi");
}

/// What one executor did, as the service records it when a task's pod ends (written here
/// straight into the database: with no cluster no pod ever ends).
fn run(executor: usize, exit_code: i32, output: &str) -> ExecutorRun {
    ExecutorRun {
        executor,
        exit_code,
        start_time: Some("2026-12-06T08:00:00Z".parse().expect("time")),
        end_time: Some("2026-12-06T08:00:02Z".parse().expect("time")),
        output: output.as_bytes().to_vec(),
        truncated_bytes: 0,
    }
}

on_both_databases!(a_task_shows_what_the_executors_of_its_newest_pod_did);
async fn a_task_shows_what_the_executors_of_its_newest_pod_did(backend: Backend) {
    // Arrange: a task whose first pod was preempted after one executor, and whose second ran
    // both (the first failing, its error ignored)
    let app = spawn_app(backend).await;
    let id = create(&app, &echo_task("two-pods")).await;
    let store = Store::connect(&app.database.url).await.expect("store");
    let submission: SubmissionId = id.parse().expect("id");
    let first: jiff::Timestamp = "2026-12-06T07:00:00Z".parse().expect("time");
    let second: jiff::Timestamp = "2026-12-06T07:30:00Z".parse().expect("time");

    // Act
    store
        .record_executor_runs(
            submission,
            "pod-b",
            second,
            &[run(1, 0, "two\n"), run(0, 3, "one\n")],
            true,
        )
        .await
        .expect("record");
    store
        .record_executor_runs(submission, "pod-a", first, &[run(0, 0, "old\n")], true)
        .await
        .expect("record");
    // A second read of the newest pod that failed (its archive retried) keeps what the first got
    store
        .record_executor_runs(submission, "pod-b", second, &[run(0, 3, "[lost]\n")], false)
        .await
        .expect("record");
    let full = json(
        app.get(&format!("{TASKS}/{id}?view=FULL")).await,
        StatusCode::OK,
    )
    .await;
    let basic = json(
        app.get(&format!("{TASKS}?view=BASIC")).await,
        StatusCode::OK,
    )
    .await;

    // Assert: the newest pod's executors, in order, each with its exit code and times; their
    // output only in the FULL view
    let logs = &full["logs"][0]["logs"];
    assert_eq!(logs[0]["exit_code"], 3, "{full}");
    assert_eq!(logs[0]["stdout"], "one\n");
    assert_eq!(logs[1]["exit_code"], 0);
    assert_eq!(logs[1]["stdout"], "two\n");
    assert_eq!(logs[1]["start_time"], "2026-12-06T08:00:00Z");
    assert_eq!(logs[1]["end_time"], "2026-12-06T08:00:02Z");
    assert_eq!(logs.as_array().map(Vec::len), Some(2));
    let listed = &basic["tasks"][0]["logs"][0]["logs"];
    assert_eq!(listed[0]["exit_code"], 3, "{basic}");
    assert_eq!(listed[0].get("stdout"), None, "{basic}");
}

#[tokio::test]
async fn a_backend_parameter_that_is_not_kept_is_said_in_the_full_views_system_logs() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut task = echo_task("parameters");
    task["resources"] = json!({"backend_parameters": {"VmSize": "Standard_D64_v3"}});

    let id = create(&app, &task).await;
    let full = json(
        app.get(&format!("{TASKS}/{id}?view=FULL")).await,
        StatusCode::OK,
    )
    .await;
    let basic = json(
        app.get(&format!("{TASKS}/{id}?view=BASIC")).await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(full["resources"].get("backend_parameters"), None, "{full}");
    let system_logs = full["logs"][0]["system_logs"]
        .as_array()
        .expect("system_logs");
    assert!(
        system_logs
            .iter()
            .any(|line| line.as_str().is_some_and(|line| line.contains("VmSize"))),
        "{full}"
    );
    assert_eq!(basic["logs"][0].get("system_logs"), None, "{basic}");
}

#[tokio::test]
async fn a_task_is_the_submission_of_the_same_id_in_v1() {
    let app = spawn_app(Backend::Sqlite).await;

    let id = create(&app, &echo_task("hello")).await;
    let submission = json(
        app.get(&format!("/v1/submissions/{id}")).await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(submission["id"], id.as_str());
    assert_eq!(submission["state"], "queued");
}

#[tokio::test]
async fn urls_outside_the_volume_are_refused_naming_the_field_and_nothing_is_stored() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut task = echo_task("refused");
    task["inputs"] = json!([
        {"url": "s3://bucket/key", "path": "/in/a"},
        {"url": "file:///etc/passwd", "path": "/in/b"},
    ]);
    task["outputs"] = json!([{"url": "https://example.org/out", "path": "/out/c"}]);

    let refused = problem(app.post_json(TASKS, &task).await, StatusCode::BAD_REQUEST).await;

    assert_eq!(
        fields(&refused),
        ["inputs[0].url", "inputs[1].url", "outputs[0].url"]
    );
    assert_eq!(task_count(&app).await, 0);
}

#[tokio::test]
async fn unknown_fields_wrong_types_and_bad_json_are_400_naming_the_field() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut unknown = echo_task("x");
    unknown["priority"] = json!(1);
    let wrong_type = json!({"executors": [{"image": "alpine", "command": "echo hello"}]});

    let unknown = problem(
        app.post_json(TASKS, &unknown).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let wrong_type = problem(
        app.post_json(TASKS, &wrong_type).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let not_json = app
        .client
        .post(app.url(TASKS))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("request");

    assert_eq!(fields(&unknown), ["priority"]);
    assert_eq!(fields(&wrong_type), ["executors[0].command"]);
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(task_count(&app).await, 0);
}

#[tokio::test]
async fn service_info_is_public_and_names_the_volume_and_the_cluster_parameter() {
    let app = spawn_app(Backend::Sqlite).await;

    let info = json(
        reqwest::get(app.url("/ga4gh/tes/v1/service-info"))
            .await
            .expect("request"),
        StatusCode::OK,
    )
    .await;

    assert_eq!(
        info["type"],
        json!({"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"})
    );
    assert_eq!(info["storage"], json!(["file:///ntuples"]));
    assert_eq!(info["tesResources_backend_parameters"], json!(["cluster"]));
}

#[tokio::test]
async fn tes_is_served_only_under_its_prefix_so_a_resent_create_stores_nothing() {
    let app = spawn_app(Backend::Sqlite).await;

    let elsewhere = [
        app.post_json("/v1/tasks", &echo_task("x")).await.status(),
        app.post_json("/tasks", &echo_task("x")).await.status(),
        app.get("/v1/service-info").await.status(),
    ];

    assert_eq!(elsewhere, [StatusCode::NOT_FOUND; 3]);
    assert_eq!(task_count(&app).await, 0);
}

#[tokio::test]
async fn without_a_token_tasks_are_401_and_another_users_task_is_404() {
    let app = spawn_app(Backend::Sqlite).await;
    let id = create(&app, &echo_task("mine")).await;
    let bob = app.client_for("bob", false, false).await;
    let anonymous = reqwest::Client::new();

    let no_token = app.get_as(&anonymous, TASKS).await.status();
    let get = app.get_as(&bob, &format!("{TASKS}/{id}")).await.status();
    let cancel = app
        .post_as(&bob, &format!("{TASKS}/{id}:cancel"), &json!({}))
        .await
        .status();
    let listed = json(app.get_as(&bob, TASKS).await, StatusCode::OK).await;

    assert_eq!(no_token, StatusCode::UNAUTHORIZED);
    assert_eq!(
        (get, cancel),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert_eq!(listed["tasks"], json!([]));
    let mine = json(app.get(&format!("{TASKS}/{id}")).await, StatusCode::OK).await;
    assert_eq!(mine["state"], "QUEUED");
}

#[tokio::test]
async fn a_cancelled_task_is_canceled_and_cancelling_it_again_changes_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let id = create(&app, &echo_task("cancel-me")).await;

    let first = json(
        app.post_json(&format!("{TASKS}/{id}:cancel"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let again = json(
        app.post_json(&format!("{TASKS}/{id}:cancel"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let task = json(app.get(&format!("{TASKS}/{id}")).await, StatusCode::OK).await;
    let other_suffix = app
        .post_json(&format!("{TASKS}/{id}:pause"), &json!({}))
        .await
        .status();

    assert_eq!((first, again), (json!({}), json!({})));
    assert_eq!(task["state"], "CANCELED");
    assert_ne!(other_suffix, StatusCode::OK);
}

#[tokio::test]
async fn a_cancelled_task_is_not_rerun_its_engine_retries_it() {
    let app = spawn_app(Backend::Sqlite).await;
    let id = create(&app, &echo_task("engine-retries")).await;
    json(
        app.post_json(&format!("{TASKS}/{id}:cancel"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;

    let refused = problem(
        app.post_json(&format!("/v1/submissions/{id}/rerun"), &json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;

    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("TES task")),
        "{refused}"
    );
    let task = json(app.get(&format!("{TASKS}/{id}")).await, StatusCode::OK).await;
    assert_eq!(task["state"], "CANCELED");
}

on_both_databases!(lists_filter_by_name_prefix_state_and_tags_as_the_document_says);
async fn lists_filter_by_name_prefix_state_and_tags_as_the_document_says(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut tagged = echo_task("e70dda48-ComplianceTest");
    tagged["tags"] = json!({"foo": "bar", "baz": "bat", "lorem": "ipsum", "empty": ""});
    let first = create(&app, &tagged).await;
    let second = create(&app, &echo_task("b51f4c41-ComplianceTest")).await;
    let third = create(&app, &echo_task("Percent%_b51")).await;
    json(
        app.post_json(&format!("{TASKS}/{third}:cancel"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(
        listed_ids(&app, "name_prefix=b51f4c41").await,
        [second.as_str()]
    );
    assert_eq!(
        listed_ids(&app, "name_prefix=B51F").await,
        Vec::<String>::new()
    );
    assert_eq!(
        listed_ids(&app, "name_prefix=Percent%25_").await,
        [third.as_str()]
    );
    assert_eq!(
        listed_ids(&app, "name_prefix=ComplianceTest").await,
        Vec::<String>::new()
    );
    assert_eq!(
        listed_ids(&app, "state=QUEUED").await,
        [second.clone(), first.clone()]
    );
    assert_eq!(listed_ids(&app, "state=CANCELED").await, [third.as_str()]);
    assert_eq!(
        listed_ids(&app, "state=COMPLETE").await,
        Vec::<String>::new()
    );
    let tags = "tag_key=foo&tag_key=lorem&tag_key=baz&tag_value=bar&tag_value=ipsum";
    assert_eq!(listed_ids(&app, tags).await, [first.as_str()]);
    assert_eq!(
        listed_ids(&app, "tag_key=foo&tag_value=wrong").await,
        Vec::<String>::new()
    );
    assert_eq!(listed_ids(&app, "tag_key=empty").await, [first.as_str()]);
    assert_eq!(
        listed_ids(&app, "tag_key=foo&tag_key=extra").await,
        Vec::<String>::new()
    );
}

on_both_databases!(paging_through_tasks_gives_every_id_once_newest_first);
async fn paging_through_tasks_gives_every_id_once_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut created = Vec::new();
    for n in 0..7 {
        created.push(create(&app, &echo_task(&format!("page-{n}"))).await);
    }

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let query = match &token {
            Some(token) => format!("page_size=3&page_token={token}&view=BASIC"),
            None => "page_size=3&view=BASIC".to_owned(),
        };
        let page = json(app.get(&format!("{TASKS}?{query}")).await, StatusCode::OK).await;
        let tasks = page["tasks"].as_array().expect("tasks");
        assert!(tasks.len() <= 3);
        seen.extend(
            tasks
                .iter()
                .map(|task| task["id"].as_str().expect("id").to_owned()),
        );
        match page["next_page_token"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }

    created.reverse();
    assert_eq!(seen, created);
}

#[tokio::test]
async fn bad_list_parameters_are_400_naming_them() {
    let app = spawn_app(Backend::Sqlite).await;

    for (query, field) in [
        ("page_size=0", "page_size"),
        ("page_token=not-ours", "page_token"),
        ("view=full", "view"),
        ("state=DONE", "state"),
        ("tag_value=x", "tag_value"),
        ("project=x", "project"),
    ] {
        let refused = problem(
            app.get(&format!("{TASKS}?{query}")).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(fields(&refused), [field], "{query}");
    }
}

#[test]
fn the_committed_tes_document_is_current() {
    let current = submission_helper::http::tes::routes::openapi_json();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    if std::env::var("UPDATE_OPENAPI").is_ok_and(|value| value == "1") {
        std::fs::write(&path, &current).expect("write the document");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();

    assert!(
        committed == current,
        "{COMMITTED} is stale: regenerate it with `UPDATE_OPENAPI=1 cargo test --test api tes` and commit it"
    );
}

#[tokio::test]
async fn the_service_serves_its_tes_document_and_answers_each_of_its_operations() {
    let app = spawn_app(Backend::Sqlite).await;
    let served = json(app.get("/ga4gh/tes/openapi.json").await, StatusCode::OK).await;
    let committed: Value =
        serde_json::from_str(&submission_helper::http::tes::routes::openapi_json())
            .expect("document");
    let id = create(&app, &echo_task("documented")).await;

    let mut operations = Vec::new();
    for (path, item) in served["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            operations.push(format!("{method} {path}"));
        }
    }
    let answers = [
        app.get("/ga4gh/tes/v1/service-info").await.status(),
        app.get(TASKS).await.status(),
        app.post_json(TASKS, &echo_task("again")).await.status(),
        app.get(&format!("{TASKS}/{id}")).await.status(),
        app.post_json(&format!("{TASKS}/{id}:cancel"), &json!({}))
            .await
            .status(),
    ];

    assert_eq!(served, committed);
    operations.sort();
    assert_eq!(
        operations,
        [
            "get /ga4gh/tes/v1/service-info",
            "get /ga4gh/tes/v1/tasks",
            "get /ga4gh/tes/v1/tasks/{id}",
            "post /ga4gh/tes/v1/tasks",
            "post /ga4gh/tes/v1/tasks/{id}:cancel",
        ]
    );
    assert_eq!(answers, [StatusCode::OK; 5]);
}
