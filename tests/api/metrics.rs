//! `/metrics` moves with what happened: requests counted and timed by route template (never
//! the path with its id) and status, the build's version, the event streams open; and the
//! Grafana dashboard and the Prometheus alert rules shipped in `docker/` use only series the
//! service exports. (Webhook attempts and the outbox: `webhooks.rs`.) Both formats, read by
//! the official client's parsers, type every counter as a counter.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::json;

use submission_helper::domain::State;
use submission_helper::storage::FinalCounts;

use crate::campaigns::{batch, id_of, store_of};
use crate::events::open;
use crate::on_both_databases;
use crate::prometheus::{Format, Scrape, official_parse};
use crate::support::{Backend, TestApp, end, eventually, spawn_app};

pub(crate) async fn scrape(app: &TestApp) -> Scrape {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    Scrape::parse(&response.text().await.expect("text"))
}

const REQUESTS: &str = "submission_helper_http_requests_total";
const DURATIONS: &str = "submission_helper_http_request_duration_seconds_count";
const SUBSCRIBERS: &str = "submission_helper_event_subscribers";

async fn requests_are_counted_and_timed_by_route_template_and_status(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = scrape(&app).await;
    let submit = [
        ("method", "POST"),
        ("route", "/v1/submissions"),
        ("status", "201"),
    ];
    let refused = [
        ("method", "POST"),
        ("route", "/v1/submissions"),
        ("status", "422"),
    ];
    let read = [("route", "/v1/submissions/{id}"), ("status", "200")];
    let unmatched = [("route", "unmatched"), ("status", "404")];

    let stored = app
        .submit(json!({"image": "busybox", "command": "true"}))
        .await;
    let id = stored["id"].as_str().expect("id");
    let invalid = app
        .post_json("/v1/submissions", &json!({"image": "busybox"}))
        .await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    for _ in 0..2 {
        let found = app.get(&format!("/v1/submissions/{id}")).await;
        assert_eq!(found.status(), StatusCode::OK);
    }
    let nowhere = app.get(&format!("/v1/nothing-here/{id}")).await;
    assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);
    let after = scrape(&app).await;

    let moved = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    assert_eq!(moved(REQUESTS, &submit), 1.0, "a 201 submit");
    assert_eq!(moved(REQUESTS, &refused), 1.0, "a 422 submit");
    assert_eq!(moved(REQUESTS, &read), 2.0, "two reads of one submission");
    assert_eq!(moved(REQUESTS, &unmatched), 1.0, "a path no route has");
    assert_eq!(
        moved(REQUESTS, &[("route", "/metrics"), ("status", "200")]),
        1.0,
        "the first scrape"
    );
    assert_eq!(moved(DURATIONS, &submit), 1.0);
    assert_eq!(moved(DURATIONS, &refused), 1.0);
    let all_answered = [("route", "/v1/submissions/{id}"), ("le", "+Inf")];
    assert_eq!(
        moved(
            "submission_helper_http_request_duration_seconds_bucket",
            &all_answered
        ),
        2.0,
        "every request falls in the +Inf bucket"
    );
    assert!(
        after.value(
            "submission_helper_http_request_duration_seconds_sum",
            &submit
        ) > 0.0,
        "the time it took is summed"
    );
    let routes: Vec<_> = after
        .samples
        .iter()
        .filter_map(|sample| sample.labels.get("route"))
        .collect();
    assert!(
        routes.iter().all(|route| !route.contains(id)),
        "ids never become labels: {routes:?}"
    );
    assert_eq!(
        after.value(
            "submission_helper_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(after.value("submission_helper_log_follows_open", &[]), 0.0);
    let (open, idle, most) = (
        after.value("submission_helper_db_pool_connections", &[]),
        after.value("submission_helper_db_pool_idle_connections", &[]),
        after.value("submission_helper_db_pool_max_connections", &[]),
    );
    assert!(open >= 1.0, "requests opened database connections: {open}");
    assert!(
        idle <= open && open <= most,
        "{idle} idle of {open} open, at most {most}"
    );
    for resource in ["jobs", "pods"] {
        for name in [
            "submission_helper_watch_restarts_total",
            "submission_helper_watch_errors_total",
        ] {
            assert!(
                after.samples.iter().any(|sample| sample.name == name
                    && sample.labels.get("resource").map(String::as_str) == Some(resource)),
                "{name}{{resource={resource:?}}} is exported from the start"
            );
        }
    }
}
on_both_databases!(requests_are_counted_and_timed_by_route_template_and_status);

async fn open_event_streams_are_counted_while_they_last(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = scrape(&app).await;

    let first = open(&app, "").await;
    let second = open(&app, "?state=failed").await;
    let both = scrape(&app).await;
    drop(first);
    let one = eventually(
        "a closed stream to stop counting",
        Duration::from_secs(20),
        || async {
            let scrape = scrape(&app).await;
            (scrape.value(SUBSCRIBERS, &[]) == 1.0).then_some(scrape)
        },
    )
    .await;
    drop(second);

    assert_eq!(before.value(SUBSCRIBERS, &[]), 0.0);
    assert_eq!(both.value(SUBSCRIBERS, &[]), 2.0);
    assert_eq!(one.value(SUBSCRIBERS, &[]), 1.0);
}
on_both_databases!(open_event_streams_are_counted_while_they_last);

/// Every `submission_helper_*` name in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("submission_helper_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|character| character.is_ascii_alphanumeric() || *character == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.push(name);
    }
    names
}

#[tokio::test]
async fn the_dashboard_and_the_alert_rules_use_only_series_the_service_exports() {
    let app = spawn_app(Backend::Sqlite).await;
    // The first scrape is counted, so the second has the HTTP requests' series too.
    scrape(&app).await;
    let exported = scrape(&app).await.series_names();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dashboard =
        std::fs::read_to_string(root.join("docker/grafana-dashboard.json")).expect("the dashboard");
    let rules =
        std::fs::read_to_string(root.join("docker/prometheus-rules.yaml")).expect("the rules");
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard is JSON");
    assert!(
        parsed["panels"]
            .as_array()
            .is_some_and(|panels| panels.len() >= 6),
        "a dashboard with its panels"
    );

    for (file, text) in [("dashboard", &dashboard), ("rules", &rules)] {
        let used = metric_names(text);
        assert!(used.len() >= 3, "{file} uses the service's metrics");
        let unknown: Vec<_> = used
            .iter()
            .filter(|name| !exported.contains(*name))
            .collect();
        assert!(
            unknown.is_empty(),
            "{file}: series the service does not export: {unknown:?}\nexported: {exported:?}"
        );
    }
    for alert in [
        "SubmissionsStuckQueued",
        "ApiServerErrors",
        "ReconcileLagHigh",
    ] {
        assert!(
            rules.contains(&format!("alert: {alert}")),
            "{alert} in the rules"
        );
    }
}

/// What Prometheus sends when it scrapes.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
     application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;q=0.4,\
     text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// The answer to a scrape that sends `accept`: its content type and its text.
async fn scrape_as(app: &TestApp, accept: Option<&str>) -> (String, String) {
    let mut request = app.client.get(app.url("/metrics"));
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    let response = request.send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (content_type, response.text().await.expect("text"))
}

async fn both_formats_read_by_the_official_parsers_type_every_counter_and_histogram(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.submit(json!({"image": "busybox", "command": "true"}))
        .await;
    // The first scrape is counted, so the next ones have the same series.
    scrape(&app).await;
    let expected = [
        ("submission_helper_http_requests", "counter"),
        ("submission_helper_reconciles", "counter"),
        ("submission_helper_apiserver_requests", "counter"),
        ("submission_helper_apiserver_responses", "counter"),
        ("submission_helper_watch_restarts", "counter"),
        ("submission_helper_watch_errors", "counter"),
        ("submission_helper_reruns", "counter"),
        ("submission_helper_webhook_deliveries", "counter"),
        (
            "submission_helper_http_request_duration_seconds",
            "histogram",
        ),
        ("submission_helper_reconcile_lag_seconds", "histogram"),
        (
            "submission_helper_submit_to_job_created_seconds",
            "histogram",
        ),
        (
            "submission_helper_job_created_to_running_seconds",
            "histogram",
        ),
        ("submission_helper_submissions", "gauge"),
        ("submission_helper_webhook_outbox_pending", "gauge"),
        ("submission_helper_db_pool_connections", "gauge"),
        ("submission_helper_log_follows_open", "gauge"),
        ("submission_helper_build_info", "gauge"),
    ];

    let (openmetrics_type, openmetrics) = scrape_as(&app, Some(PROMETHEUS_ACCEPT)).await;
    let (text_type, text) = scrape_as(&app, None).await;
    let (curl_type, _) = scrape_as(&app, Some("*/*")).await;

    assert_eq!(
        openmetrics_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    for content_type in [&text_type, &curl_type] {
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    }
    assert!(!text.contains("# EOF"), "{text}");
    let created = |line: &str| {
        line.split(['{', ' '])
            .next()
            .is_some_and(|name| name.ends_with("_created"))
    };
    assert!(!text.lines().any(created), "no _created series:\n{text}");
    assert!(
        text.contains("# TYPE submission_helper_http_requests_total counter\n"),
        "0.0.4 declares a counter by its sample's name:\n{text}"
    );
    let Some(read_openmetrics) = official_parse(Format::OpenMetrics, &openmetrics) else {
        return;
    };
    let Some(read_text) = official_parse(Format::Text, &text) else {
        return;
    };
    for (format, families) in [("OpenMetrics", &read_openmetrics), ("text", &read_text)] {
        for (name, kind) in expected {
            let family = families.iter().find(|family| family.name == name);
            assert_eq!(
                family.map(|family| family.kind.as_str()),
                Some(kind),
                "{format}: {name} read as {family:?}"
            );
        }
        let untyped: Vec<_> = families
            .iter()
            .filter(|family| !["counter", "gauge", "histogram"].contains(&family.kind.as_str()))
            .collect();
        assert!(untyped.is_empty(), "{format}: read untyped: {untyped:?}");
    }
    let series = |families: &Vec<crate::prometheus::Family>| -> BTreeSet<_> {
        families
            .iter()
            .flat_map(|family| &family.samples)
            .map(|sample| (sample.name.clone(), sample.labels.clone()))
            .collect()
    };
    assert_eq!(
        series(&read_openmetrics),
        series(&read_text),
        "both formats have the same series"
    );
    assert!(
        series(&read_text).contains(&(
            "submission_helper_http_requests_total".to_owned(),
            [
                ("method", "POST"),
                ("route", "/v1/submissions"),
                ("status", "201")
            ]
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
        )),
        "a counter's sample keeps its name and labels"
    );
}
on_both_databases!(both_formats_read_by_the_official_parsers_type_every_counter_and_histogram);

/// `submission_helper_submissions` by final state, as `/metrics` shows it.
async fn final_states(app: &TestApp) -> [f64; 3] {
    let scraped = scrape(app).await;
    ["succeeded", "failed", "cancelled"]
        .map(|state| scraped.value("submission_helper_submissions", &[("state", state)]))
}

/// Runs one statement on the service's database, as an operator would.
async fn execute(url: &str, statement: &'static str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("connect");
    sqlx::query(statement)
        .execute(&pool)
        .await
        .expect("statement");
    pool.close().await;
}

async fn a_start_reads_the_saved_final_counts_and_the_events_since_not_the_whole_table(
    backend: Backend,
) {
    // Arrange: 2 succeeded, 1 failed, 1 cancelled, 1 queued; the counts saved
    let app = spawn_app(backend).await;
    let stored = batch(
        &app,
        json!({"submissions": (0..5)
            .map(|n| json!({"name": format!("s{n}"), "image": "busybox", "command": "true"}))
            .collect::<Vec<_>>()}),
    )
    .await;
    let store = store_of(&app).await;
    end(&store, id_of(&stored[0]), State::Succeeded).await;
    end(&store, id_of(&stored[1]), State::Succeeded).await;
    end(&store, id_of(&stored[2]), State::Failed).await;
    let cancelled = app
        .post_json(
            &format!("/v1/submissions/{}/cancel", id_of(&stored[3])),
            &json!({}),
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    assert_eq!(final_states(&app).await, [2.0, 1.0, 1.0]);
    let counts = store.final_counts(None).await.expect("counts");
    assert!(store.save_final_counts(&counts).await.expect("save"));
    // Older counts never replace newer ones (another replica's).
    let older = FinalCounts {
        revision: counts.revision - 1,
        ..counts.clone()
    };
    assert!(!store.save_final_counts(&older).await.expect("save"));

    // Act: the service stopped, its saved count made wrong on purpose, one more failure,
    // then a start
    let database = app.stop();
    execute(
        &database.url,
        "UPDATE final_state_counts SET count = 1002 WHERE state = 'succeeded'",
    )
    .await;
    end(&store, id_of(&stored[4]), State::Failed).await;
    let restarted = TestApp::builder().with_database(database).spawn().await;

    // Assert: the start read the saved counts, not the table, and added the failure since
    assert_eq!(final_states(&restarted).await, [1002.0, 2.0, 1.0]);

    // Act: counts saved long ago, every event since pruned (a service stopped for longer than
    // the event retention), then a start
    let database = restarted.stop();
    execute(
        &database.url,
        "UPDATE event_revisions SET revision = CASE name WHEN 'counted' THEN 1 \
         ELSE (SELECT revision FROM event_revisions WHERE name = 'allocated') END \
         WHERE name IN ('counted', 'pruned')",
    )
    .await;
    let restarted = TestApp::builder().with_database(database).spawn().await;

    // Assert: only a count of the table is right, and that is what it did
    assert_eq!(final_states(&restarted).await, [2.0, 2.0, 1.0]);
}
on_both_databases!(a_start_reads_the_saved_final_counts_and_the_events_since_not_the_whole_table);
