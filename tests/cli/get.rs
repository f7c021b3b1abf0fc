//! `get submissions|jobs|pods`: kubectl's columns, names and the API's JSON; `-w` follows changes.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually, follow_states, id};
use crate::process::Client;
use crate::support::{Backend, json as expect_json, spawn_app};
use crate::{on_both_databases, on_the_cluster};

fn columns(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

async fn get_submissions_prints_kubectl_like_columns_and_filters(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = Client::of(&app);
    let first = id(&app
        .submit(json!({"name": "first", "image": "busybox", "command": "true", "labels": {"campaign": "x"}}))
        .await);
    let second = id(&app
        .submit(json!({"name": "second", "image": "busybox", "command": "true", "labels": {"campaign": "y"}}))
        .await);
    let third = id(&app
        .submit(json!({"image": "busybox", "command": "true"}))
        .await);
    expect_json(
        app.post_json(&format!("/v1/submissions/{third}/cancel"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;

    let table = client.run(&["get", "submissions"]).await;
    let by_label = client
        .run(&["get", "submissions", "-l", "campaign=x", "-o", "name"])
        .await;
    let by_state = client
        .run(&["get", "sub", "--state", "cancelled", "-o", "json"])
        .await;
    let one = client
        .run(&["get", "submissions", &second, "-o", "json"])
        .await;
    let limited = client.run(&["get", "submissions", "--limit", "2"]).await;

    let lines = table.expect_code(0).lines();
    assert_eq!(columns(lines[0]), ["ID", "NAME", "STATE", "AGE", "MESSAGE"]);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(
        &columns(lines[1])[..3],
        [third.as_str(), "<none>", "cancelled"],
        "newest first"
    );
    assert_eq!(&columns(lines[3])[..3], [first.as_str(), "first", "queued"]);
    assert_eq!(
        lines[0].find("NAME"),
        lines[1].find("<none>"),
        "aligned columns"
    );
    assert_eq!(
        by_label.expect_code(0).lines(),
        [format!("submission/{first}")]
    );
    let cancelled: Value = serde_json::from_str(&by_state.expect_code(0).stdout).expect("json");
    assert_eq!(cancelled["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(cancelled["items"][0]["id"], third.as_str());
    let object: Value = serde_json::from_str(&one.expect_code(0).stdout).expect("json");
    assert_eq!(object["id"], second.as_str());
    assert_eq!(limited.expect_code(0).lines().len(), 3);
    assert!(limited.stderr.contains("--limit"), "{}", limited.stderr);
}
on_both_databases!(get_submissions_prints_kubectl_like_columns_and_filters);

async fn get_submissions_cluster_lists_one_clusters_with_a_cluster_column(backend: Backend) {
    // Two clusters without a client: pinned submissions are listed by the cluster they ask for
    let app = crate::support::spawn_over_two_clusters_without_clients(backend).await;
    let client = Client::of(&app);
    for (name, cluster) in [("here", "onsite"), ("there", "cloud")] {
        app.submit(
            json!({"name": name, "image": "busybox", "command": "true", "cluster": cluster}),
        )
        .await;
    }

    let run = client
        .run(&["get", "submissions", "--cluster", "cloud"])
        .await;
    let unknown = client
        .run(&["get", "submissions", "--cluster", "gpu"])
        .await;

    let lines = run.expect_code(0).lines();
    assert_eq!(
        columns(lines[0])[..3],
        ["CLUSTER", "ID", "NAME"],
        "{lines:?}"
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(columns(lines[1])[0], "cloud");
    assert_eq!(columns(lines[1])[2], "there");
    unknown.expect_code(2);
    assert!(
        unknown.stderr.contains("no cluster is named"),
        "{}",
        unknown.stderr
    );
}
on_both_databases!(get_submissions_cluster_lists_one_clusters_with_a_cluster_column);

async fn without_a_cluster_get_jobs_says_why_in_words(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = Client::of(&app);

    let run = client.run(&["get", "jobs"]).await;

    run.expect_code(2);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(run.stderr.contains("no cluster"), "{}", run.stderr);
    assert!(!run.stderr.contains('{'), "{}", run.stderr);
}
on_both_databases!(without_a_cluster_get_jobs_says_why_in_words);

async fn get_submissions_watch_prints_a_line_for_each_change(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = Client::of(&app);
    let watched = id(&app
        .submit(json!({"image": "busybox", "command": "true"}))
        .await);
    let mut watch = client.spawn(&["get", "submissions", "-w"]);
    watch
        .until("the header", Duration::from_secs(30), |line| {
            line.starts_with("ID")
        })
        .await;
    watch
        .until("the queued row", Duration::from_secs(30), |line| {
            line.contains(&watched) && line.contains("queued")
        })
        .await;

    expect_json(
        app.post_json(&format!("/v1/submissions/{watched}/cancel"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let later = id(&app
        .submit(json!({"image": "busybox", "command": "true"}))
        .await);

    watch
        .until("the cancelled row", Duration::from_secs(30), |line| {
            line.contains(&watched) && line.contains("cancelled")
        })
        .await;
    if !watch.seen.iter().any(|line| line.contains(&later)) {
        watch
            .until(
                "the new submission's row",
                Duration::from_secs(30),
                |line| line.contains(&later),
            )
            .await;
    }
    assert!(watch.is_running(), "a watch runs until it is stopped");
    watch.kill().await;
}
on_both_databases!(get_submissions_watch_prints_a_line_for_each_change);

async fn get_pods_watch_shows_a_pod_run_then_complete(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let client = Client::of(&app);
    let gate = cluster.gate("go");
    let submitted = client
        .run(&[
            "submit",
            "--k8s-image",
            PAYLOAD_IMAGE,
            "--label",
            "watched=yes",
            "--",
            &gate.wait_command(),
        ])
        .await;
    let id = submitted.expect_code(0).stdout.trim().to_owned();
    follow_states(&app, &id, &["running"]).await;

    let pods = client.run(&["get", "pods", "-l", "watched=yes"]).await;
    let mut watch = client.spawn(&["get", "pods", "-l", "watched=yes", "-w"]);
    watch
        .until("the running pod", Duration::from_secs(60), |line| {
            line.contains(" Running ")
        })
        .await;
    gate.open();

    let completed = watch
        .until("the completed pod", Duration::from_secs(90), |line| {
            line.contains(" Completed ")
        })
        .await;
    watch.kill().await;
    let lines = pods.expect_code(0).lines();
    assert_eq!(
        columns(lines[0]),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    assert_eq!(
        &columns(lines[1])[1..4],
        ["1/1", "Running", "0"],
        "{lines:?}"
    );
    assert!(
        completed.starts_with(&format!("sh-{}", id.replace('-', ""))),
        "{completed}"
    );
    // The job controller counts the pod a moment after it completed.
    let job = eventually(
        "the Job to be complete",
        Duration::from_secs(30),
        || async {
            let jobs = client
                .run(&["get", "jobs", "-l", "watched=yes", "-o", "wide"])
                .await;
            let job = jobs.expect_code(0).lines()[1].to_owned();
            (columns(&job)[1] == "Complete").then_some(job)
        },
    )
    .await;
    assert_eq!(&columns(&job)[1..3], ["Complete", "1/1"], "{job}");
    assert_eq!(columns(&job).last().copied(), Some(id.as_str()));
}
on_the_cluster!(get_pods_watch_shows_a_pod_run_then_complete);
