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

#[tokio::test]
#[ignore = "needs the real node (kubelet, containerd, a private registry with the Snakemake image) and PyPI's Snakemake: run tests/run.sh"]
async fn a_snakemake_workflow_runs_through_tes_on_the_real_node_and_sees_a_failed_step() {
    // Arrange: the samples on the volume, under the workflow's storage prefix; the service
    // mounts the volume where the submitting side sees it too (tests/tes/snakemake.sh)
    let node = Prepared::new().await;
    let app = node
        .spawn_service(Backend::Sqlite, |settings| {
            settings.defaults.mount_path = SNAKEMAKE_MOUNT.into();
            // Each task runs Snakemake itself: Python needs more than a payload's 16 MiB.
            settings.defaults.job.memory = Some("512Mi".into());
            settings.pending_timeout = Duration::from_secs(120);
        })
        .await;
    for (sample, events) in [("ttbar", 3), ("wjets", 2), ("zjets", 5)] {
        let lines: String = (0..events)
            .map(|event| format!("event {event}\n"))
            .collect();
        node.put(&format!("snakemake/data/{sample}.txt"), &lines);
    }
    let workdir = tempfile::tempdir().expect("workdir");

    // Act: snakemake --executor tes, as its users run it: the analysis, then its broken step
    let analysis = snakemake(&node, &app, workdir.path(), &[]).await;
    let analysis_tasks = tes_tasks(&app).await;
    let broken = snakemake(&node, &app, workdir.path(), &["broken"]).await;

    // Assert: the analysis ended well, its summary is on the volume, and its four tasks (three
    // counts, one summary) are complete with an exit code each
    assert!(analysis.0, "snakemake failed:\n{}", analysis.1);
    assert_eq!(
        node.read("snakemake/results/summary.txt").as_deref(),
        Some("ttbar 3\nwjets 2\nzjets 5\n"),
        "the summary the last task left on the volume"
    );
    let rules: Vec<String> = analysis_tasks.iter().map(rule_of).collect();
    assert_eq!(
        (
            count(&rules, "count"),
            count(&rules, "summary"),
            rules.len()
        ),
        (3, 1, 4),
        "one task per job: {analysis_tasks:#?}"
    );
    for task in &analysis_tasks {
        assert_eq!(task["state"], "COMPLETE", "{task:#?}");
        assert_eq!(task["logs"][0]["logs"][0]["exit_code"], 0, "{task:#?}");
    }
    // and the broken step failed Snakemake, its task an executor error with Snakemake's exit
    // code (the executor runs Snakemake, which ran the step) and the step's words in its log
    assert!(!broken.0, "snakemake saw no failure:\n{}", broken.1);
    assert!(
        broken.1.contains("Error in rule broken"),
        "Snakemake names the failed rule:\n{}",
        broken.1
    );
    let tasks = tes_tasks(&app).await;
    let failed: Vec<&serde_json::Value> = tasks
        .iter()
        .filter(|task| rule_of(task) == "broken")
        .collect();
    assert_eq!(failed.len(), 1, "{tasks:#?}");
    assert_eq!(failed[0]["state"], "EXECUTOR_ERROR", "{:#?}", failed[0]);
    assert_eq!(
        failed[0]["logs"][0]["logs"][0]["exit_code"], 1,
        "{:#?}",
        failed[0]
    );
    let full: serde_json::Value = app
        .client
        .get(format!(
            "{}/ga4gh/tes/v1/tasks/{}?view=FULL",
            app.address,
            failed[0]["id"].as_str().unwrap_or_default()
        ))
        .send()
        .await
        .expect("get task")
        .json()
        .await
        .expect("task");
    let output = full["logs"][0]["logs"][0]["stdout"]
        .as_str()
        .unwrap_or_default();
    assert!(
        output.contains("no such calibration") && output.contains("exit 3"),
        "the step's own words and command in the executor's log:\n{output}"
    );
}

/// Runs `tests/tes/snakemake.sh run` with these targets; whether it succeeded, and what it said.
async fn snakemake(
    node: &Prepared,
    app: &crate::support::TestApp,
    workdir: &std::path::Path,
    targets: &[&str],
) -> (bool, String) {
    let image = std::env::var("SH_TEST_SNAKEMAKE_IMAGE")
        .expect("SH_TEST_SNAKEMAKE_IMAGE: source tests/real-node.sh's env file");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tes/snakemake.sh");
    let run = tokio::process::Command::new(script)
        .arg("run")
        .arg(&app.address)
        .arg(node.cluster.volume())
        .arg(SNAKEMAKE_MOUNT)
        .arg(image)
        .arg(workdir)
        .args(targets)
        .env("SH_TES_TOKEN", &app.token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("run tests/tes/snakemake.sh");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    println!("{said}");
    (run.status.success(), said)
}

/// Every task of the test's user, in the BASIC view.
async fn tes_tasks(app: &crate::support::TestApp) -> Vec<serde_json::Value> {
    let tasks: serde_json::Value = app
        .client
        .get(format!("{}/ga4gh/tes/v1/tasks?view=BASIC", app.address))
        .send()
        .await
        .expect("list tasks")
        .json()
        .await
        .expect("tasks");
    tasks["tasks"].as_array().cloned().unwrap_or_default()
}

/// The rule a task of Snakemake's runs: its name is `snakejob.RULE.JOBID.sh`.
fn rule_of(task: &serde_json::Value) -> String {
    let name = task["name"].as_str().unwrap_or_default();
    name.split('.').nth(1).unwrap_or_default().to_owned()
}

fn count(rules: &[String], rule: &str) -> usize {
    rules.iter().filter(|each| *each == rule).count()
}

/// Where the Snakemake test's service mounts the volume, and where `tests/tes/snakemake.sh`
/// shows it to Snakemake on this machine (in a mount namespace of its own, over an empty
/// tmpfs: nothing of the machine's is changed).
const SNAKEMAKE_MOUNT: &str = "/srv/ntuples";
