//! The TES suite's tests that need a real kubelet, run with py-tes against the service on the
//! real node: executors in their image, one after another in one pod, files through volumes
//! and the claim, redirected streams, each executor's exit code, times and output, failures
//! and ignored errors (`tests/tes/run.sh pytest URL -m real_node`). The suite's other tests
//! run against the service as a process on the simulated node (`tests/run.sh`).

use std::process::Stdio;
use std::time::Duration;

use submission_helper::storage::Store;

use super::Prepared;
use crate::payload_node::MISSING_IMAGE;
use crate::support::Backend;

#[tokio::test]
#[ignore = "needs the real node (kubelet, containerd, a private registry) and PyPI's py-tes: run tests/run.sh"]
async fn tes_tasks_run_on_the_real_node_as_py_tes_expects() {
    // Arrange: the service, and a second user for the suite's tests of owners
    let node = Prepared::new().await;
    let app = node
        .spawn_service(Backend::Sqlite, |settings| {
            settings.pending_timeout = Duration::from_secs(30);
        })
        .await;
    let store = Store::connect(&app.database.url).await.expect("store");
    let (_, other_token) = store
        .create_token("tes-bob", false, false)
        .await
        .expect("token");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tes/run.sh");

    // Act
    let run = tokio::process::Command::new(script)
        .args([
            "pytest",
            &app.address,
            "-m",
            "real_node",
            "-q",
            "-rfE",
            "-x",
        ])
        .env("SH_TES_TOKEN", &app.token)
        .env("SH_TES_OTHER_TOKEN", other_token)
        .env("SH_TES_IMAGE", &node.node.image)
        .env("SH_TES_MISSING_IMAGE", MISSING_IMAGE)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("run tests/tes/run.sh");

    // Assert
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    println!("{said}");
    assert!(
        run.status.success(),
        "py-tes tests failed on the real node:\n{said}"
    );
    assert!(
        said.contains(" passed") && !said.contains(" skipped"),
        "every real-node test ran:\n{said}"
    );
}
