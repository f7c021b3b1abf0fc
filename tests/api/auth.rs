//! Who may do what: every `/v1` call needs a token; users see and cancel only their own
//! submissions; admins see all; delegates act for users only through `X-On-Behalf-Of`.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json as body};

use crate::on_both_databases;
use crate::support::{Backend, TestApp, json, problem, spawn_app};

async fn submit_as(app: &TestApp, client: &Client, name: &str) -> Value {
    let request = body!({"name": name, "image": "busybox", "command": "true"});
    let response = app.post_as(client, "/v1/submissions", &request).await;
    json(response, StatusCode::CREATED).await
}

async fn names(app: &TestApp, client: &Client, query: &str) -> Vec<String> {
    let response = app.get_as(client, &format!("/v1/submissions{query}")).await;
    let page = json(response, StatusCode::OK).await;
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|s| s["name"].as_str().map(str::to_owned))
        .collect()
}

async fn every_v1_call_needs_a_valid_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let anonymous = Client::new();

    for (method, path) in [
        ("GET", "/v1/submissions"),
        ("POST", "/v1/submissions"),
        ("GET", "/v1/jobs"),
        ("POST", "/v1/submissions/cancel"),
    ] {
        let request = anonymous
            .request(method.parse().expect("method"), app.url(path))
            .json(&body!({}));
        let response = request.send().await.expect("request");
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer"),
            "{method} {path}"
        );
        problem(response, StatusCode::UNAUTHORIZED).await;
    }
    let wrong = crate::support::client_with_token("sht_not-a-token");
    problem(
        app.get_as(&wrong, "/v1/submissions").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        app.get_as(&anonymous, "/healthz").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_as(&anonymous, "/openapi.json").await.status(),
        StatusCode::OK
    );
}
on_both_databases!(every_v1_call_needs_a_valid_token);

async fn users_see_and_cancel_only_their_own_submissions(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = app.client_for("bob", false, false).await;
    let alices = app
        .submit(body!({"name": "alices", "image": "busybox", "command": "true"}))
        .await;
    let bobs = submit_as(&app, &bob, "bobs").await;
    let alices_id = alices["id"].as_str().expect("id");

    assert_eq!(names(&app, &bob, "").await, ["bobs"]);
    assert_eq!(names(&app, &app.client, "").await, ["alices"]);
    assert_eq!(alices["owner"], "alice");
    assert_eq!(bobs["owner"], "bob");
    for path in [
        format!("/v1/submissions/{alices_id}"),
        format!("/v1/submissions/{alices_id}/pods"),
        format!("/v1/submissions/{alices_id}/cluster-events"),
        format!("/v1/submissions/{alices_id}/logs"),
    ] {
        problem(app.get_as(&bob, &path).await, StatusCode::NOT_FOUND).await;
    }
    let cancel = bob
        .post(app.url(&format!("/v1/submissions/{alices_id}/cancel")))
        .send()
        .await
        .expect("request");
    problem(cancel, StatusCode::NOT_FOUND).await;
    let bulk = app
        .post_as(
            &bob,
            "/v1/submissions/cancel",
            &body!({"state": ["queued"]}),
        )
        .await;
    let bulk = json(bulk, StatusCode::OK).await;
    assert_eq!(bulk["cancelled"].as_array().map(Vec::len), Some(1));
    assert_eq!(bulk["cancelled"][0]["name"], "bobs");
    let still = json(
        app.get(&format!("/v1/submissions/{alices_id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(still["state"], "queued");
    let others = app.get_as(&bob, "/v1/submissions?owner=alice").await;
    problem(others, StatusCode::FORBIDDEN).await;
    let widen = app
        .post_as(
            &bob,
            "/v1/submissions/cancel",
            &body!({"state": ["queued"], "all_users": true}),
        )
        .await;
    problem(widen, StatusCode::FORBIDDEN).await;
}
on_both_databases!(users_see_and_cancel_only_their_own_submissions);

async fn admins_see_everyone_and_widen_bulk_cancel_explicitly(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = app.client_for("bob", false, false).await;
    let admin = app.client_for("operator", true, false).await;
    app.submit(body!({"name": "alices", "image": "busybox", "command": "true"}))
        .await;
    submit_as(&app, &bob, "bobs").await;

    assert_eq!(names(&app, &admin, "").await, ["bobs", "alices"]);
    assert_eq!(names(&app, &admin, "?owner=alice").await, ["alices"]);
    let own_only = app
        .post_as(
            &admin,
            "/v1/submissions/cancel",
            &body!({"state": ["queued"]}),
        )
        .await;
    assert_eq!(json(own_only, StatusCode::OK).await["cancelled"], body!([]));
    let everyone = app
        .post_as(
            &admin,
            "/v1/submissions/cancel",
            &body!({"state": ["queued"], "all_users": true}),
        )
        .await;
    assert_eq!(
        json(everyone, StatusCode::OK).await["cancelled"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}
on_both_databases!(admins_see_everyone_and_widen_bulk_cancel_explicitly);

async fn a_delegate_acts_for_a_user_only_through_the_header(backend: Backend) {
    let app = spawn_app(backend).await;
    let portal = app.client_for("portal", false, true).await;
    let bob = app.client_for("bob", false, false).await;
    let request = body!({"name": "via-portal", "image": "busybox", "command": "true"});

    let response = portal
        .post(app.url("/v1/submissions"))
        .header("x-on-behalf-of", "bob")
        .json(&request)
        .send()
        .await
        .expect("request");
    let created = json(response, StatusCode::CREATED).await;

    assert_eq!(
        (created["owner"].as_str(), created["submitted_by"].as_str()),
        (Some("bob"), Some("portal"))
    );
    assert_eq!(names(&app, &bob, "").await, ["via-portal"]);
    let as_bob = portal
        .get(app.url("/v1/submissions"))
        .header("x-on-behalf-of", "bob")
        .send()
        .await
        .expect("request");
    assert_eq!(
        json(as_bob, StatusCode::OK).await["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert!(
        names(&app, &portal, "").await.is_empty(),
        "without the header the portal acts as itself"
    );
    let forged = bob
        .post(app.url("/v1/submissions"))
        .header("x-on-behalf-of", "alice")
        .json(&request)
        .send()
        .await
        .expect("request");
    problem(forged, StatusCode::FORBIDDEN).await;
    let bad = portal
        .get(app.url("/v1/submissions"))
        .header("x-on-behalf-of", "not a user")
        .send()
        .await
        .expect("request");
    assert_eq!(
        crate::support::fields(&problem(bad, StatusCode::BAD_REQUEST).await),
        ["X-On-Behalf-Of"]
    );
}
on_both_databases!(a_delegate_acts_for_a_user_only_through_the_header);

async fn idempotency_keys_belong_to_their_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = app.client_for("bob", false, false).await;
    let request = body!({"image": "busybox", "command": "true"});

    let alices = app
        .client
        .post(app.url("/v1/submissions"))
        .header("idempotency-key", "k1")
        .json(&request)
        .send()
        .await
        .expect("request");
    let bobs = bob
        .post(app.url("/v1/submissions"))
        .header("idempotency-key", "k1")
        .json(&request)
        .send()
        .await
        .expect("request");

    let (alices, bobs) = (
        json(alices, StatusCode::CREATED).await,
        json(bobs, StatusCode::CREATED).await,
    );
    assert_ne!(alices["id"], bobs["id"]);
    assert_eq!(bobs["owner"], "bob");
}
on_both_databases!(idempotency_keys_belong_to_their_user);

#[tokio::test]
async fn tokens_are_managed_from_the_command_line() {
    let app = spawn_app(Backend::Sqlite).await;
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_submission-helper"))
            .arg("token")
            .args(args)
            .args(["--database-url", &app.database.url])
            .output()
            .expect("run the command")
    };

    let created = cli(&["create", "--user", "carol"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let secret = String::from_utf8(created.stdout)
        .expect("text")
        .trim()
        .to_owned();
    let carol = crate::support::client_with_token(&secret);
    let listed = submit_as(&app, &carol, "carols").await;
    assert_eq!(listed["owner"], "carol");

    let list = String::from_utf8(cli(&["list"]).stdout).expect("text");
    assert!(list.contains("\tcarol\t"), "{list}");
    assert!(
        !list.contains(&secret),
        "a listing must never show a secret"
    );
    let id = list
        .lines()
        .find(|line| line.contains("\tcarol\t"))
        .and_then(|line| line.split('\t').next())
        .expect("id");
    let revoked = cli(&["revoke", id]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    problem(
        app.get_as(&carol, "/v1/submissions").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(
        !cli(&["revoke", id]).status.success(),
        "revoking twice says so"
    );
    assert!(!cli(&["create", "--user", "not valid"]).status.success());
}

async fn a_token_over_its_rate_limit_is_told_when_to_retry(backend: Backend) {
    let database = crate::support::TestDatabase::new(backend).await;
    let cluster =
        submission_helper::cluster::Cluster::unconfigured("none".into(), "default".into());
    let app = crate::support::TestApp::builder()
        .with_database(database)
        .with_cluster(cluster)
        .with_rate_limit(3)
        .spawn()
        .await;
    let bob = app.client_for("bob", false, false).await;

    for _ in 0..3 {
        assert_eq!(app.get("/v1/submissions").await.status(), StatusCode::OK);
    }
    let limited = app.get("/v1/submissions").await;

    let retry_after: u64 = limited
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    problem(limited, StatusCode::TOO_MANY_REQUESTS).await;
    let others = app.get_as(&bob, "/v1/submissions").await;
    assert_eq!(
        others.status(),
        StatusCode::OK,
        "each token has its own budget"
    );
}
on_both_databases!(a_token_over_its_rate_limit_is_told_when_to_retry);

/// Runs the real binary with debug logging, sends a token and an environment secret through
/// every kind of request, and reads the service's log: neither may appear in it.
#[tokio::test]
async fn tokens_and_environment_values_never_reach_the_log() {
    secrets_stay_out_of_the_log("text").await;
}

/// The same in the log for collectors (`--log-format json`): one JSON object a line, and each
/// request's events carry the `x-request-id` its answer had.
#[tokio::test]
async fn the_json_log_has_one_object_a_line_with_the_request_id_and_no_secrets() {
    let (logged, request_id) = secrets_stay_out_of_the_log("json").await;

    let lines: Vec<Value> = logged
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let of_the_request: Vec<&Value> = lines
        .iter()
        .filter(|line| {
            line["spans"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|span| span["request_id"] == request_id.as_str())
        })
        .collect();
    assert!(
        of_the_request
            .iter()
            .any(|line| line["fields"]["message"] == "submissions stored"),
        "the submit's events carry its request id {request_id}: {logged}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line["level"] == "INFO" && line["fields"]["message"] == "listening"),
        "{logged}"
    );
}

/// Returns the log and the request id of the accepted submit.
async fn secrets_stay_out_of_the_log(log_format: &str) -> (String, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = submission_helper::storage::Store::connect(&database)
        .await
        .expect("database");
    let (_, token) = store
        .create_token("alice", false, false)
        .await
        .expect("token");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let log_path = dir.path().join("service.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut service = tokio::process::Command::new(env!("CARGO_BIN_EXE_submission-helper"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &database,
            "--log-format",
            log_format,
        ])
        .env("KUBECONFIG", "/nonexistent")
        .env("RUST_LOG", "debug")
        .stdout(log)
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the service");
    let url = format!("http://127.0.0.1:{port}");
    let client = crate::support::client_with_token(&token);
    crate::support::eventually(
        "the service to start",
        std::time::Duration::from_secs(5),
        || async {
            let answered = client.get(format!("{url}/healthz")).send().await;
            answered.is_ok().then_some(())
        },
    )
    .await;
    let secret = "s3cr3t-value-that-must-not-be-logged";
    let request = body!({"image": "busybox", "command": "true", "env": {"PASSWORD": secret}});

    let created = client
        .post(format!("{url}/v1/submissions"))
        .json(&request)
        .send()
        .await
        .expect("submit");
    assert_eq!(created.status(), StatusCode::CREATED);
    let request_id = created.headers()["x-request-id"]
        .to_str()
        .expect("request id")
        .to_owned();
    let refused = client
        .post(format!("{url}/v1/submissions"))
        .json(&body!({"image": "bad image", "command": "x", "env": {"1BAD": secret}}))
        .send()
        .await
        .expect("submit");
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    client
        .get(format!("{url}/v1/submissions"))
        .send()
        .await
        .expect("list");
    Client::new()
        .get(format!("{url}/v1/submissions"))
        .header("authorization", format!("Bearer {token}x"))
        .send()
        .await
        .expect("wrong token");
    let _ = service.start_kill();
    let _ = service.wait().await;

    let logged = std::fs::read_to_string(&log_path).expect("log");
    assert!(
        logged.contains("submissions stored"),
        "the log was written: {logged}"
    );
    assert!(
        !logged.contains(secret),
        "an environment value reached the log"
    );
    assert!(!logged.contains(&token), "a token reached the log");
    (logged, request_id)
}

/// An address that keeps sending unknown tokens is refused before any token lookup once it has
/// spent its budget (120 a minute), with Retry-After; once the budget refills, a good token from
/// the same address is served again.
async fn an_address_guessing_tokens_is_slowed_down_before_any_lookup(backend: Backend) {
    let app = spawn_app(backend).await;
    let guesser = crate::support::client_with_token("sht_guessed");
    let started = std::time::Instant::now();

    for attempt in 0..120 {
        let answer = app.get_as(&guesser, "/v1/submissions").await;
        assert_eq!(
            answer.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }
    // The budget refills at 2 a second meanwhile: on a slow machine the next few guesses may
    // still be looked up, but no more than refilled.
    let mut refused = app.get_as(&guesser, "/v1/submissions").await;
    let mut more = 0;
    while refused.status() == StatusCode::UNAUTHORIZED {
        more += 1;
        assert!(
            f64::from(more) <= 1.0 + 2.0 * started.elapsed().as_secs_f64(),
            "{more} guesses past the budget were still looked up"
        );
        refused = app.get_as(&guesser, "/v1/submissions").await;
    }

    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|value| value.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body = problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("too many unknown tokens")),
        "{body}"
    );

    crate::support::eventually(
        "a good token to be served again after the refill",
        std::time::Duration::from_secs(10),
        || async {
            let answer = app.get("/v1/submissions").await;
            if answer.status() == StatusCode::OK {
                return Some(());
            }
            assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
            None
        },
    )
    .await;
}
on_both_databases!(an_address_guessing_tokens_is_slowed_down_before_any_lookup);

/// Lookups of requests arriving together share one statement: each request must still act as
/// its own token's user, and a revoked token among them must be refused.
async fn concurrent_requests_with_different_tokens_each_act_as_their_own_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut clients = Vec::new();
    for n in 0..40 {
        clients.push((
            format!("user-{n}"),
            app.client_for(&format!("user-{n}"), false, false).await,
        ));
    }
    let store = submission_helper::storage::Store::connect(&app.database.url)
        .await
        .expect("store");
    let (revoked, secret) = store
        .create_token("gone", false, false)
        .await
        .expect("token");
    store.revoke_token(&revoked.id).await.expect("revoke");
    let gone = crate::support::client_with_token(&secret);

    let answers = futures::future::join_all(clients.iter().map(|(user, client)| {
        let app = &app;
        async move {
            let created = app
                .post_as(
                    client,
                    "/v1/submissions",
                    &serde_json::json!({"image": "busybox", "command": "true"}),
                )
                .await;
            (
                user.clone(),
                created.status(),
                created.json::<serde_json::Value>().await.ok(),
            )
        }
    }))
    .await;
    let refused = app.get_as(&gone, "/v1/submissions").await;

    for (user, status, created) in answers {
        assert_eq!(status, StatusCode::CREATED, "{user}");
        assert_eq!(
            created.map(|c| c["owner"].clone()),
            Some(serde_json::json!(user))
        );
    }
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}
on_both_databases!(concurrent_requests_with_different_tokens_each_act_as_their_own_user);
