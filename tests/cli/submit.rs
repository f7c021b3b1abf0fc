//! `submit`: the seed's flags become the API's fields; JSON Lines files go in idempotent chunks.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually};
use crate::process::Client;
use crate::support::{Backend, TestApp, json as expect_json, spawn_app};
use crate::{on_both_databases, on_the_cluster};

/// The seed's example image.
const CAF_IMAGE: &str = "gitlab-registry.cern.ch/fsauerbu/caf-k8s/cafexample";

async fn stored(app: &TestApp, id: &str) -> Value {
    expect_json(
        app.get(&format!("/v1/submissions/{id}")).await,
        StatusCode::OK,
    )
    .await
}

/// The submissions with a label, newest first (up to 1,000).
async fn labelled(app: &TestApp, label: &str) -> Vec<Value> {
    let page = expect_json(
        app.get(&format!("/v1/submissions?label={label}&limit=1000"))
            .await,
        StatusCode::OK,
    )
    .await;
    page["items"].as_array().cloned().unwrap_or_default()
}

fn write_file(directory: &tempfile::TempDir, name: &str, lines: &[String]) -> String {
    let path = directory.path().join(name);
    let mut file = std::fs::File::create(&path).expect("create file");
    for line in lines {
        writeln!(file, "{line}").expect("write line");
    }
    path.display().to_string()
}

async fn submit_sends_each_flag_as_its_api_field_and_prints_the_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = Client::of(&app);

    let run = client
        .run(&[
            "submit",
            "--k8s-image",
            CAF_IMAGE,
            "--k8s-registry-secret",
            "gitlab-secret",
            "--k8s-volume-claim",
            "data-claim",
            "--k8s-mount-path",
            "/data",
            "--name",
            "ttbar-2018",
            "--env",
            "NEVENTS=1000",
            "--label",
            "campaign=mc16e",
            "--memory",
            "4000M",
            "--cpus",
            "1",
            "--time",
            "90",
            "--retries",
            "3",
            "--",
            "analyze",
            "config/master/analyze.cfg",
        ])
        .await;

    run.expect_code(0);
    let id = run.stdout.trim();
    let submission = stored(&app, id).await;
    assert_eq!(submission["image"], CAF_IMAGE);
    assert_eq!(submission["command"], "analyze config/master/analyze.cfg");
    assert_eq!(submission["registry_secret"], "gitlab-secret");
    assert_eq!(submission["volume_claim"], "data-claim");
    assert_eq!(submission["mount_path"], "/data");
    assert_eq!(submission["name"], "ttbar-2018");
    assert_eq!(submission["env"], json!({"NEVENTS": "1000"}));
    assert_eq!(submission["labels"], json!({"campaign": "mc16e"}));
    assert_eq!(
        submission["resources"],
        json!({"requests": {"memory": "4000M", "cpu": "1"}})
    );
    assert_eq!(submission["active_deadline_seconds"], 5400);
    assert_eq!(submission["backoff_limit"], 3);
}
on_both_databases!(submit_sends_each_flag_as_its_api_field_and_prints_the_id);

async fn what_no_flag_gives_is_left_to_the_servers_defaults(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = Client::of(&app);

    let bare = client
        .run(&[
            "submit",
            "--k8s-image",
            "busybox",
            "-o",
            "json",
            "--",
            "true",
        ])
        .await;
    let without = client
        .run(&[
            "submit",
            "--k8s-image",
            "busybox",
            "--k8s-registry-secret",
            "",
            "--k8s-volume-claim",
            "",
            "--",
            "true",
        ])
        .await;

    let printed: Value = serde_json::from_str(&bare.expect_code(0).stdout).expect("-o json");
    assert_eq!(printed["state"], "queued");
    let submission = stored(&app, printed["id"].as_str().unwrap_or_default()).await;
    assert_eq!(submission["registry_secret"], "sh-k8s-registry-secret");
    assert_eq!(submission["volume_claim"], "ntuples-claim");
    assert_eq!(submission["mount_path"], "/ntuples");
    assert_eq!(
        submission["resources"],
        json!({"requests": {"cpu": "1", "memory": "4000M"}})
    );
    assert_eq!(submission["active_deadline_seconds"], 86400);
    assert_eq!(submission["backoff_limit"], 3);
    let none = stored(&app, without.expect_code(0).stdout.trim()).await;
    assert_eq!(
        (&none["registry_secret"], &none["volume_claim"]),
        (&Value::Null, &Value::Null)
    );
}
on_both_databases!(what_no_flag_gives_is_left_to_the_servers_defaults);

async fn a_campaign_file_names_its_dependencies_and_its_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = Client::of(&app);
    let directory = tempfile::tempdir().expect("directory");
    let mut lines: Vec<String> = (0..3)
        .map(|n| json!({"name": format!("sample-{n}"), "command": format!("echo {n}")}).to_string())
        .collect();
    lines.push(
        json!({"name": "merge", "command": "merge", "depends_on": ["sample-0", "sample-1", "sample-2"]})
            .to_string(),
    );
    let file = write_file(&directory, "campaign.jsonl", &lines);

    let run = client
        .run(&[
            "submit",
            "--file",
            &file,
            "--k8s-image",
            "busybox",
            "--identifier",
            "ttbar",
            "--chunk-size",
            "2",
            "--max-concurrent",
            "2",
        ])
        .await;

    let ids: Vec<String> = run
        .expect_code(0)
        .stdout
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), 4, "one request despite --chunk-size: {ids:?}");
    let merge = stored(&app, &ids[3]).await;
    assert_eq!(merge["state"], "waiting");
    assert_eq!(merge["depends_on"], json!(ids[..3]));
    assert_eq!(merge["identifier"], "ttbar");

    let after = client
        .run(&[
            "submit",
            "--k8s-image",
            "busybox",
            "--depends-on",
            &ids[3],
            "--tool",
            "plot",
            "--",
            "plot.py",
        ])
        .await;
    let plot = stored(&app, after.expect_code(0).stdout.trim()).await;
    assert_eq!(
        (plot["state"].as_str(), plot["tool"].as_str()),
        (Some("waiting"), Some("plot"))
    );
    assert_eq!(plot["depends_on"], json!([ids[3]]));
}
on_both_databases!(a_campaign_file_names_its_dependencies_and_its_limit);

async fn a_refused_submission_prints_the_problems_detail_and_fields_never_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = Client::of(&app);

    let run = client
        .run(&[
            "submit",
            "--k8s-image",
            "busybox",
            "--k8s-mount-path",
            "relative",
            "--env",
            "1X=a",
            "--",
            "true",
        ])
        .await;

    run.expect_code(2);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("\n  mount_path: must be an absolute path"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("\n  env.1X: "), "{}", run.stderr);
    assert!(!run.stderr.contains('{'), "no JSON: {}", run.stderr);
    assert!(app.list_all("").await.is_empty(), "nothing stored");
}
on_both_databases!(a_refused_submission_prints_the_problems_detail_and_fields_never_json);

async fn a_jsonl_file_goes_in_chunks_and_a_rerun_submits_nothing_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = Client::of(&app);
    let directory = tempfile::tempdir().expect("directory");
    // Even lines name their own image; every line has its own label beside the flags' one.
    let lines: Vec<String> = (1..=250)
        .map(|n: u32| {
            let mut line =
                json!({"command": format!("run {n}"), "labels": {"line": n.to_string()}});
            if n.is_multiple_of(2) {
                line["image"] = json!("alpine");
            }
            line.to_string()
        })
        .collect();
    let file = write_file(&directory, "tasks.jsonl", &lines);
    let args = [
        "submit",
        "--file",
        &file,
        "--chunk-size",
        "100",
        "--k8s-image",
        "busybox",
        "--label",
        "batch=b1",
    ];

    let first = client.run(&args).await;
    let rerun = client.run(&args).await;
    let piped = client
        .run_with_input(
            &[
                "submit",
                "--file",
                "-",
                "--chunk-size",
                "100",
                "--k8s-image",
                "busybox",
                "--label",
                "batch=b1",
            ],
            format!("{}\n", lines.join("\n")).as_bytes(),
        )
        .await;

    first.expect_code(0);
    assert_eq!(first.lines().len(), 250, "{first:#?}");
    assert!(
        first
            .stderr
            .contains(&format!("{file} lines 201-250: 50 submitted")),
        "{}",
        first.stderr
    );
    assert_eq!(rerun.expect_code(0).stdout, first.stdout, "the same ids");
    assert!(
        rerun
            .stderr
            .contains("250 of them by an earlier run, not submitted again"),
        "{}",
        rerun.stderr
    );
    assert_eq!(
        piped.expect_code(0).stdout,
        first.stdout,
        "standard input gives the same chunks and keys"
    );
    let stored = labelled(&app, "batch=b1").await;
    assert_eq!(stored.len(), 250);
    for submission in &stored {
        let line: u32 = submission["labels"]["line"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .expect("line label");
        let image = if line.is_multiple_of(2) {
            "alpine"
        } else {
            "busybox"
        };
        assert_eq!(submission["image"], image, "{submission}");
        assert_eq!(submission["command"], format!("run {line}"));
    }

    let again = client
        .run(&[&args[..], &["--batch-key", "second run"]].concat())
        .await;

    again.expect_code(0);
    assert_eq!(
        labelled(&app, "batch=b1").await.len(),
        500,
        "a new key submits anew"
    );
}
on_both_databases!(a_jsonl_file_goes_in_chunks_and_a_rerun_submits_nothing_twice);

async fn bad_lines_are_named_by_their_line_numbers_and_nothing_of_them_is_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = Client::of(&app);
    let directory = tempfile::tempdir().expect("directory");
    let unreadable = write_file(
        &directory,
        "unreadable.jsonl",
        &[
            r#"{"image": "busybox", "command": "true"}"#.into(),
            "not json".into(),
            "[1]".into(),
        ],
    );
    let refused = write_file(
        &directory,
        "refused.jsonl",
        &[
            r#"{"image": "busybox", "command": "true"}"#.into(),
            String::new(),
            r#"{"image": "busybox", "command": "true", "mount_path": "relative"}"#.into(),
        ],
    );

    let not_json = client.run(&["submit", "--file", &unreadable]).await;
    let invalid = client.run(&["submit", "--file", &refused]).await;

    not_json.expect_code(2);
    assert!(
        not_json
            .stderr
            .contains(&format!("{unreadable}:2: not JSON")),
        "{}",
        not_json.stderr
    );
    assert!(
        not_json
            .stderr
            .contains(&format!("{unreadable}:3: not a JSON object")),
        "{}",
        not_json.stderr
    );
    invalid.expect_code(2);
    assert!(
        invalid.stderr.contains(&format!(
            "{refused}:3: mount_path: must be an absolute path"
        )),
        "{}",
        invalid.stderr
    );
    assert!(app.list_all("").await.is_empty(), "nothing stored");
}
on_both_databases!(bad_lines_are_named_by_their_line_numbers_and_nothing_of_them_is_stored);

async fn the_seeds_example_runs_to_success_with_the_cli(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let client = Client::of(&app);

    // The words are joined with spaces and run by bash: `&&` and "$BASH_VERSION" are bash's.
    // The image is the real node's CAF-like one, from its private registry.
    let run = client
        .run(&[
            "submit",
            "--k8s-image",
            PAYLOAD_IMAGE,
            "--name",
            "cafexample",
            "--wait",
            "--timeout",
            "3m",
            "--",
            "echo",
            "analyze",
            "config/master/analyze.cfg",
            "&&",
            "test",
            "-n",
            "\"$BASH_VERSION\"",
            "&&",
            "echo",
            "done",
        ])
        .await;

    run.expect_code(0);
    let lines = run.lines();
    let id = lines.first().copied().unwrap_or_default().to_owned();
    assert_eq!(lines, [id.as_str(), &format!("{id} succeeded")]);
    let jobs: Api<Job> = kube::Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let listed = jobs
        .list(&ListParams::default().labels(&format!("submission-helper.io/submission-id={id}")))
        .await
        .expect("list jobs");
    let pod = listed
        .items
        .first()
        .and_then(|job| job.spec.as_ref())
        .and_then(|spec| spec.template.spec.clone())
        .expect("the Job's pod template");
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some(PAYLOAD_IMAGE));
    assert_eq!(
        container.command,
        Some(vec![
            "bash".into(),
            "-cl".into(),
            "echo analyze config/master/analyze.cfg && test -n \"$BASH_VERSION\" && echo done"
                .into()
        ])
    );
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .next()
        .expect("a volume mount");
    assert_eq!(mount.mount_path, "/ntuples");
    let claim = pod
        .volumes
        .iter()
        .flatten()
        .find(|volume| volume.name == mount.name)
        .and_then(|volume| volume.persistent_volume_claim.as_ref())
        .map(|claim| claim.claim_name.clone());
    assert_eq!(claim.as_deref(), Some("ntuples-claim"));
    let secrets: Vec<String> = pod
        .image_pull_secrets
        .iter()
        .flatten()
        .map(|secret| secret.name.clone())
        .collect();
    assert_eq!(secrets, ["sh-k8s-registry-secret"]);

    let logs = client.run(&["logs", &id]).await;
    let job_table = client.run(&["get", "jobs", &id]).await;
    let pod_table = client.run(&["get", "pods", &id]).await;
    let described = client.run(&["describe", &id]).await;

    assert_eq!(
        logs.expect_code(0).stdout,
        "analyze config/master/analyze.cfg\ndone\n"
    );
    let job_lines = job_table.expect_code(0).lines();
    assert_eq!(
        job_lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    );
    let job_name = stored(&app, &id).await["job_name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let job_row: Vec<&str> = job_lines[1].split_whitespace().collect();
    assert_eq!(&job_row[..3], [job_name.as_str(), "Complete", "1/1"]);
    let pod_lines = pod_table.expect_code(0).lines();
    assert_eq!(
        pod_lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    assert_eq!(
        pod_lines[1].split_whitespace().nth(2),
        Some("Completed"),
        "{pod_lines:?}"
    );
    let description = &described.expect_code(0).stdout;
    assert!(
        description.contains("State:           succeeded\n"),
        "{description}"
    );
    assert!(
        description.contains("Volume claim:    ntuples-claim mounted at /ntuples\n"),
        "{description}"
    );
}
on_the_cluster!(the_seeds_example_runs_to_success_with_the_cli);

/// On the simulated node: a real node of 2 cores starts about two pods a second, so a thousand
/// would take it some eight minutes.
async fn a_thousand_line_batch_interrupted_and_rerun_runs_each_line_once(backend: Backend) {
    let cluster = TestCluster::simulated().await;
    let app = cluster.spawn_service(backend).await;
    let client = Client::of(&app);
    let ledger = cluster.ledger("ran");
    let lines: Vec<String> = (1..=1000)
        .map(|n| {
            json!({"command": ledger.record_command(&format!("line-{n}")),
                   "labels": {"line": n.to_string()}})
            .to_string()
        })
        .collect();
    let file = write_file(&cluster.scratch, "tasks.jsonl", &lines);
    let flags = [
        "--chunk-size",
        "100",
        "--k8s-image",
        "busybox",
        "--label",
        "batch=b1000",
    ];

    // The first run reads standard input as it arrives: after 600 lines it has sent six chunks
    // and waits for the seventh's lines when it is killed.
    let mut command = client.command(&[&["submit", "--file", "-"][..], &flags].concat());
    command.stdin(std::process::Stdio::piped());
    let mut interrupted = crate::process::Running::start(command);
    let mut stdin = interrupted.child.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(
        &mut stdin,
        format!("{}\n", lines[..600].join("\n")).as_bytes(),
    )
    .await
    .expect("write the first 600 lines");
    eventually(
        "the first six chunks to be stored",
        Duration::from_secs(60),
        || async { (labelled(&app, "batch=b1000").await.len() == 600).then_some(()) },
    )
    .await;
    interrupted.kill().await;
    drop(stdin);

    let rerun = client
        .run(
            &[
                &["submit", "--file", &file][..],
                &flags,
                &["--wait", "--timeout", "10m"],
            ]
            .concat(),
        )
        .await;

    rerun.expect_code(0);
    assert!(
        rerun.stderr.contains("1000 submissions from"),
        "{}",
        rerun.stderr
    );
    assert!(
        rerun
            .stderr
            .contains("600 of them by an earlier run, not submitted again"),
        "{}",
        rerun.stderr
    );
    let stored = labelled(&app, "batch=b1000").await;
    assert_eq!(stored.len(), 1000);
    let distinct: BTreeSet<&str> = stored
        .iter()
        .filter_map(|submission| submission["labels"]["line"].as_str())
        .collect();
    assert_eq!(distinct.len(), 1000, "every line once");
    let runs = ledger.runs();
    assert_eq!(runs.len(), 1000, "every line ran");
    assert!(runs.values().all(|&count| count == 1), "no line ran twice");
    let jobs = cluster.count_per_submission::<Job>().await;
    assert_eq!(jobs.len(), 1000);
    assert!(jobs.values().all(|&count| count == 1), "one Job each");
}
on_the_cluster!(a_thousand_line_batch_interrupted_and_rerun_runs_each_line_once);
