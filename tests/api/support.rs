//! Starts the real service on 127.0.0.1:0 with its own database, as a user would reach it.
//!
//! Every test gets a fresh database: an SQLite file in its own temporary directory, or its own
//! database on the Postgres server named by `SH_TEST_POSTGRES_URL` (started by `tests/run.sh`).
//! Shared by the `api`, `e2e` and `faults` test binaries; each uses part of it.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use submission_helper::cluster::{Cluster, Clusters};
use submission_helper::domain::{Progress, State, SubmissionId, SubmitDefaults};
use submission_helper::startup::{Application, Settings};
use submission_helper::storage::Store;

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Why a Postgres test is ignored by plain `cargo test`, and the panic message when it is run
/// (`cargo test -- --include-ignored`, as `tests/run.sh` does) without a server.
///
/// The `#[ignore = "..."]` attributes spell the same text out: an attribute needs a literal.
pub const NEEDS_POSTGRES: &str =
    "needs Postgres: tests/run.sh starts one and sets SH_TEST_POSTGRES_URL";

/// Runs a test against both databases: `name::sqlite` and `name::postgres`.
///
/// The Postgres half is `#[ignore]`d, so plain `cargo test` lists it as ignored (never as passed)
/// when no server was set up; run with `--include-ignored`, it fails without one.
#[macro_export]
macro_rules! on_both_databases {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }

            #[tokio::test]
            #[ignore = "needs Postgres: tests/run.sh starts one and sets SH_TEST_POSTGRES_URL"]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await
            }
        }
    };
}

/// Waits until `check` returns something, or fails the test after `deadline` saying what it
/// waited for.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_seen(what, deadline, || {
        let checked = check();
        async move { checked.await.ok_or_else(String::new) }
    })
    .await
}

/// As [`eventually`], with `check` saying what it saw instead (`Err`): the failure shows the
/// last thing seen.
pub async fn eventually_seen<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        let seen = match check().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        assert!(
            start.elapsed() < deadline,
            "gave up after {deadline:?} waiting for {what}{}",
            if seen.is_empty() {
                String::new()
            } else {
                format!("; {seen}")
            }
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Postgres server every Postgres test needs; panics with [`NEEDS_POSTGRES`] without one.
pub fn required_postgres_url() -> String {
    match std::env::var("SH_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("{NEEDS_POSTGRES}"),
    }
}

/// The Postgres server for the cluster suites, or `None` (with a note) when it is not set up.
///
/// Under CI a missing server is an error, so the Postgres half of those suites can never be
/// skipped silently.
pub fn postgres_url() -> Option<String> {
    match std::env::var("SH_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if must_run_everything() => {
            panic!("SH_TEST_POSTGRES_URL is not set: run the suite with tests/run.sh")
        }
        _ => {
            say_once_skipped("the Postgres half of this suite: SH_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// Tells the person running `cargo test` what was left out, once per test binary.
///
/// Written to the process's stderr directly, past libtest's capture, so it shows even when the
/// tests pass.
pub fn say_once_skipped(what: &str) {
    use std::io::Write;
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let Ok(mut said) = SAID.lock() else { return };
    if !said.iter().any(|done| done == what) {
        said.push(what.to_owned());
        let _ = writeln!(
            std::io::stderr(),
            "note: skipped {what}; tests/run.sh sets up everything and runs it all"
        );
    }
}

/// Prints a line of figures into the test output, even when the test passes.
pub fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Under CI, or when `tests/run.sh` set things up, no part of the suite may be skipped.
pub fn must_run_everything() -> bool {
    std::env::var("CI").is_ok_and(|ci| ci == "true")
        || std::env::var("SH_TEST_REQUIRE_ALL").is_ok_and(|all| all == "1")
}

/// A fresh, empty database; the temporary directory lives as long as the value.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// The SQLite database file, or `None` for a Postgres database.
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        self.url.strip_prefix("sqlite://").map(PathBuf::from)
    }

    /// The same database again; the original keeps its files alive.
    pub fn shared(&self) -> TestDatabase {
        TestDatabase {
            url: self.url.clone(),
            _dir: None,
        }
    }

    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}", dir.path().join("submissions.db").display());
                TestDatabase {
                    url,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let server = required_postgres_url();
                let name = format!("test_{}", uuid::Uuid::now_v7().simple());
                let admin = sqlx::PgPool::connect(&server)
                    .await
                    .expect("postgres server");
                // A database name cannot be bound; this one is ours (`test_` and a UUID).
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .expect("create database");
                admin.close().await;
                let (base, _) = server
                    .rsplit_once('/')
                    .expect("postgres url with a database");
                TestDatabase {
                    url: format!("{base}/{name}"),
                    _dir: None,
                }
            }
        }
    }
}

pub struct TestApp {
    pub address: String,
    /// Sends `token` (user `alice`) with every request.
    pub client: Client,
    pub token: String,
    pub database: TestDatabase,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The user whose token `TestApp::client` sends.
pub const USER: &str = "alice";

/// An HTTP client that sends `token` with every request.
pub fn client_with_token(token: &str) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client")
}

/// A client of `user`, whose token allows one active Job at a time.
pub async fn client_limited_to_one_job(store: &Store, user: &str) -> Client {
    let (_, secret) = store
        .create_limited_token(user, false, false, Some(1))
        .await
        .expect("token");
    client_with_token(&secret)
}

/// A service with no cluster configured: submissions are stored and stay `queued`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    TestApp::builder().on(backend).spawn().await
}

/// The clusters `onsite` and `cloud`, in that order, neither with a client: submissions are
/// placed (or pinned) but no Job is created.
pub fn two_clusters_without_clients() -> Clusters {
    let unconfigured = |name: &str| {
        Cluster::unconfigured("no cluster in this test".into(), "default".into()).named(name)
    };
    Clusters::new(
        unconfigured("onsite"),
        vec![unconfigured("cloud")],
        submission_helper::domain::placement::Placement::Ordered,
    )
}

/// A service over [`two_clusters_without_clients`].
pub async fn spawn_over_two_clusters_without_clients(backend: Backend) -> TestApp {
    TestApp::builder()
        .on(backend)
        .with_clusters(two_clusters_without_clients())
        .spawn()
        .await
}

/// Where a test's service keeps its submissions.
enum Database {
    /// A fresh, empty database.
    Fresh(Backend),
    /// One the test made, e.g. shared with another service or left by a stopped one.
    Given(TestDatabase),
}

/// A service to start, with what a test changes of the defaults; [`TestApp::builder`] makes one.
pub struct TestAppBuilder {
    database: Database,
    clusters: Clusters,
    settings: Settings,
}

impl TestAppBuilder {
    /// On a fresh database of `backend`.
    pub fn on(mut self, backend: Backend) -> Self {
        self.database = Database::Fresh(backend);
        self
    }

    /// On `database`.
    pub fn with_database(mut self, database: TestDatabase) -> Self {
        self.database = Database::Given(database);
        self
    }

    pub fn with_cluster(mut self, cluster: Cluster) -> Self {
        self.clusters = cluster.into();
        self
    }

    /// Several clusters behind the one API (`--cluster`), in this order.
    pub fn with_clusters(mut self, clusters: Clusters) -> Self {
        self.clusters = clusters;
        self
    }

    pub fn with_defaults(mut self, defaults: SubmitDefaults) -> Self {
        self.settings.defaults = defaults;
        self
    }

    /// `per_minute` requests a minute per token.
    pub fn with_rate_limit(mut self, per_minute: u32) -> Self {
        self.settings.rate_limit_per_minute = per_minute;
        self
    }

    /// `/metrics` open to anyone.
    pub fn with_public_metrics(mut self) -> Self {
        self.settings.public_metrics = true;
        self
    }

    /// Every request (log follows excepted) limited to `limit`.
    pub fn with_request_timeout(mut self, limit: Duration) -> Self {
        self.settings.request_timeout = limit;
        self
    }

    /// Any other setting a test needs, changed by `tune`.
    pub fn with_settings(mut self, tune: impl FnOnce(&mut Settings)) -> Self {
        tune(&mut self.settings);
        self
    }

    /// Starts the service on 127.0.0.1, with a token for [`USER`].
    pub async fn spawn(self) -> TestApp {
        // The service's log, shown with a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("submission_helper=info"))
            .with_test_writer()
            .with_ansi(false)
            .try_init();
        let database = match self.database {
            Database::Fresh(backend) => TestDatabase::new(backend).await,
            Database::Given(database) => database,
        };
        let store = Store::connect(&database.url).await.expect("database");
        let (_, token) = store.create_token(USER, false, false).await.expect("token");
        let app = Application::build(self.settings, store, self.clusters)
            .await
            .expect("bind");
        let address = format!("http://{}", app.local_addr().expect("address"));
        let server = tokio::spawn(async move {
            app.run_until(std::future::pending()).await.expect("serve");
        });
        TestApp {
            address,
            client: client_with_token(&token),
            token,
            database,
            server,
        }
    }
}

impl TestApp {
    /// A service with no cluster configured (submissions are stored and stay `queued`), on a
    /// fresh SQLite database, with the server's defaults except that it listens on a free port
    /// and waits at most a minute for a log; the builder's `with_` methods change that.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            database: Database::Fresh(Backend::Sqlite),
            clusters: Cluster::unconfigured("no cluster in this test".into(), "default".into())
                .into(),
            settings: Settings {
                listen: "127.0.0.1:0".parse().expect("address"),
                log_wait: Duration::from_secs(60),
                ..Settings::default()
            },
        }
    }

    /// Stops the service (as a crash would: nothing drains) and hands back its database.
    pub fn stop(mut self) -> TestDatabase {
        self.server.abort();
        std::mem::replace(
            &mut self.database,
            TestDatabase {
                url: String::new(),
                _dir: None,
            },
        )
    }

    /// A client with a new token for `user` in this service's database.
    pub async fn client_for(&self, user: &str, admin: bool, delegate: bool) -> Client {
        let store = Store::connect(&self.database.url).await.expect("database");
        let (_, token) = store
            .create_token(user, admin, delegate)
            .await
            .expect("token");
        client_with_token(&token)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A GET sent with another client's token.
    pub async fn get_as(&self, client: &Client, path: &str) -> Response {
        client.get(self.url(path)).send().await.expect("request")
    }

    /// A POST of `body` as JSON sent with another client's token.
    pub async fn post_as(&self, client: &Client, path: &str, body: &Value) -> Response {
        client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Submits and returns the stored submission, asserting it was created.
    pub async fn submit(&self, body: Value) -> Value {
        let response = self.post_json("/v1/submissions", &body).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{:?}",
            response.text().await
        );
        response.json().await.expect("json")
    }

    /// Every submission, following the cursor through all pages.
    pub async fn list_all(&self, query: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/submissions?limit=7{query}");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page: Value = json(self.get(&path).await, StatusCode::OK).await;
            all.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return all,
            }
        }
    }
}

/// The JSON body, after asserting the status.
pub async fn json(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
}

/// The problem document, after asserting the status and the media type.
pub async fn problem(response: Response, status: StatusCode) -> Value {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = json(response, status).await;
    assert_eq!(content_type, "application/problem+json", "{body}");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    body
}

/// The fields a problem names.
pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|error| error["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What `text` gives away of an API server the service could not reach at `host:port`: where
/// it is, the client library's words for a failed connection, the service's account. Users
/// are told a short cause; all of this is for the log.
pub fn cluster_error_text_in(text: &str, host: &str, port: u16) -> Vec<String> {
    let port = port.to_string();
    let lowered = text.to_lowercase();
    [
        host,
        port.as_str(),
        "https://",
        "error trying to connect",
        "tcp connect",
        "connection refused",
        "os error",
        "hyper",
        "client error",
        "serviceerror",
        "system:serviceaccount",
    ]
    .into_iter()
    .filter(|needle| lowered.contains(&needle.to_lowercase()))
    .map(str::to_owned)
    .collect()
}

/// Records that a submission ended in `state`, as the controller does when its Job ends: the
/// tests without a cluster drive a submission's end this way.
pub async fn end(store: &Store, id: SubmissionId, state: State) {
    store
        .update(id, |current| {
            Some(Progress {
                state,
                finished_at: Some(jiff::Timestamp::now()),
                ..current.progress.clone()
            })
        })
        .await
        .expect("update")
        .expect("stored");
}
