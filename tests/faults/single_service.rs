//! One service per SQLite file: a second `serve` on the same file refuses to start, naming the
//! file and the first one's process, while the first goes on; a killed service's lock is gone
//! with it; the `token` commands work beside a running service. No cluster is needed.

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use crate::process::ServiceProcess;
use crate::support::{Backend, TestDatabase, client_with_token, eventually};

/// How long a refused second service may take to exit.
const REFUSAL: Duration = Duration::from_secs(30);

fn no_cluster() -> &'static Path {
    Path::new("/nonexistent")
}

/// `submission-helper serve` on `database_url` until it exits by itself (or the deadline
/// passes): its exit status and standard error.
async fn serve_until_it_exits(database_url: &str) -> (std::process::ExitStatus, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_submission-helper"))
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", database_url])
        .env("KUBECONFIG", no_cluster())
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start a second service");
    let output = tokio::time::timeout(REFUSAL, child.wait_with_output())
        .await
        .expect("the second service exits instead of serving")
        .expect("its output");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn token_command(database_url: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_submission-helper"))
        .arg("token")
        .args(args)
        .args(["--database-url", database_url])
        .output()
        .await
        .expect("token command");
    assert!(
        output.status.success(),
        "token {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test]
async fn a_second_service_on_the_same_sqlite_file_refuses_to_start_naming_the_file_and_the_first() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let scratch = tempfile::tempdir().expect("scratch directory");
    let first =
        ServiceProcess::start(&database.url, no_cluster(), &scratch.path().join("1.log")).await;
    let client = client_with_token(&first.token);
    let stored = client
        .post(format!("{}/v1/submissions", first.url))
        .json(&serde_json::json!({"image": "busybox", "command": "true"}))
        .send()
        .await
        .expect("submit");
    assert_eq!(stored.status(), 201);

    let (status, stderr) = serve_until_it_exits(&database.url).await;

    assert!(!status.success(), "the second service exited with {status}");
    let file = database.sqlite_file().expect("an SQLite file");
    assert!(
        stderr.contains(&file.display().to_string()),
        "names the database file: {stderr}"
    );
    let pid = first.pid().expect("the first service runs");
    assert!(
        stderr.contains(&format!("pid {pid}")),
        "names the first service's process: {stderr}"
    );
    assert!(stderr.contains("one service per SQLite file"), "{stderr}");
    let list = client
        .get(format!("{}/v1/submissions", first.url))
        .send()
        .await
        .expect("list");
    assert_eq!(list.status(), 200, "the first service still serves");
    let body: serde_json::Value = list.json().await.expect("json");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_service_starts_at_once_after_the_first_was_killed() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let scratch = tempfile::tempdir().expect("scratch directory");
    let mut first =
        ServiceProcess::start(&database.url, no_cluster(), &scratch.path().join("1.log")).await;

    first.kill().await;
    let second =
        ServiceProcess::start(&database.url, no_cluster(), &scratch.path().join("2.log")).await;

    let answer = client_with_token(&second.token)
        .get(format!("{}/v1/submissions", second.url))
        .send()
        .await
        .expect("list");
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn token_commands_work_beside_a_running_service() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let scratch = tempfile::tempdir().expect("scratch directory");
    let service =
        ServiceProcess::start(&database.url, no_cluster(), &scratch.path().join("1.log")).await;

    let secret = token_command(&database.url, &["create", "--user", "bob"]).await;
    let listed = token_command(&database.url, &["list"]).await;

    let bob = client_with_token(&secret);
    let answer = bob
        .get(format!("{}/v1/submissions", service.url))
        .send()
        .await
        .expect("list");
    assert_eq!(
        answer.status(),
        200,
        "a token made beside the service works"
    );
    let id = listed
        .lines()
        .find(|line| line.split('\t').nth(1) == Some("bob"))
        .and_then(|line| line.split('\t').next())
        .expect("bob's token listed")
        .to_owned();
    token_command(&database.url, &["revoke", &id]).await;
    eventually(
        "the revoked token to be refused",
        Duration::from_secs(30),
        || async {
            let status = bob
                .get(format!("{}/v1/submissions", service.url))
                .send()
                .await
                .ok()?
                .status();
            (status == 401).then_some(())
        },
    )
    .await;
}
