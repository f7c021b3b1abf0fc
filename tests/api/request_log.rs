//! What an operator reads: one line per request at `info`, and every warning or error logged
//! while serving a request carries its request id. The service's log is captured for this
//! test's thread (the test's runtime, and so the server it starts, run on it).

use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use sqlx::{Connection, Executor};

use crate::support::{Backend, TestApp, TestDatabase, USER};
use submission_helper::cluster::Cluster;

/// The log lines written while it is installed, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("log buffer").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .expect("x-request-id")
        .to_owned()
}

#[tokio::test]
async fn each_request_writes_one_line_and_its_errors_carry_its_request_id() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer({
            let captured = captured.clone();
            move || captured.clone()
        })
        .with_ansi(false)
        .finish();
    let _capturing = tracing::subscriber::set_default(subscriber);
    let database = TestDatabase::new(Backend::Sqlite).await;
    let url = database.url.clone();
    let cluster = Cluster::unconfigured("no cluster in this test".into(), "default".into());
    let app = TestApp::builder()
        .with_database(database)
        .with_cluster(cluster)
        .spawn()
        .await;

    let listed = app.get("/v1/submissions?name=private-run").await;
    let mut breaker = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    breaker
        .execute("ALTER TABLE submissions RENAME TO submissions_gone")
        .await
        .expect("rename");
    let broken = app.get("/v1/submissions").await;

    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let (listed_id, broken_id) = (request_id(&listed), request_id(&broken));
    let lines = captured.lines();
    let answered: Vec<_> = lines
        .iter()
        .filter(|line| line.contains(&listed_id) && line.contains("answered"))
        .collect();
    assert_eq!(answered.len(), 1, "{lines:#?}");
    let line = answered[0];
    for part in [
        " INFO ",
        "method=GET",
        "route=/v1/submissions",
        "status=200",
        "latency_ms=",
        &format!("user={USER}"),
    ] {
        assert!(line.contains(part), "{part:?} missing from {line}");
    }
    assert!(
        !line.contains("private-run") && !line.contains(&app.token),
        "a query string or a token was logged: {line}"
    );
    let failure = lines
        .iter()
        .find(|line| line.contains("storage failed"))
        .unwrap_or_else(|| panic!("no storage error logged: {lines:#?}"));
    assert!(
        failure.contains(&format!("request_id=\"{broken_id}\"")),
        "{failure}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.contains(&broken_id) && line.contains("status=500")),
        "{lines:#?}"
    );
}
