//! `logs [-f] [--previous]` and `describe`: what a payload wrote, as it writes it, and why it
//! failed.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually, follow_states};
use crate::on_the_cluster;
use crate::process::Client;
use crate::support::{Backend, json as expect_json};

async fn logs_follow_shows_lines_as_they_are_written(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let client = Client::of(&app);
    let gate = cluster.gate("go");
    let command = format!("echo first; {}; echo second", gate.wait_command());
    let id = client
        .run(&["submit", "--k8s-image", PAYLOAD_IMAGE, "--", &command])
        .await
        .expect_code(0)
        .stdout
        .trim()
        .to_owned();
    follow_states(&app, &id, &["running"]).await;

    let mut follow = client.spawn(&["logs", "-f", &id]);
    follow
        .until("the first line", Duration::from_secs(60), |line| {
            line == "first"
        })
        .await;
    assert!(
        follow.is_running(),
        "the follow waits for more while the payload runs"
    );
    gate.open();
    follow
        .until("the second line", Duration::from_secs(60), |line| {
            line == "second"
        })
        .await;

    assert_eq!(follow.end(Duration::from_secs(60)).await, Some(0));
    assert_eq!(follow.seen, ["first", "second"]);
}
on_the_cluster!(logs_follow_shows_lines_as_they_are_written);

async fn describe_and_logs_previous_show_why_a_retried_payload_failed(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let client = Client::of(&app);

    let run = client
        .run(&[
            "submit",
            "--k8s-image",
            PAYLOAD_IMAGE,
            "--retries",
            "1",
            "--wait",
            "--timeout",
            "3m",
            "--",
            "echo attempt $HOSTNAME; exit 3",
        ])
        .await;

    run.expect_code(1);
    let id = run.lines()[0].to_owned();
    let pods = expect_json(
        app.get(&format!("/v1/submissions/{id}/pods")).await,
        StatusCode::OK,
    )
    .await;
    let mut started: Vec<(String, String)> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|pod: &Value| {
            (
                pod["start_time"].as_str().unwrap_or_default().to_owned(),
                pod["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    started.sort();
    assert_eq!(started.len(), 2, "{pods}");
    let (first, second) = (&started[0].1, &started[1].1);

    // The job controller records its events a moment after it acts.
    eventually(
        "the Job's failure among its events",
        Duration::from_secs(30),
        || async {
            let events = expect_json(
                app.get(&format!("/v1/submissions/{id}/cluster-events"))
                    .await,
                StatusCode::OK,
            )
            .await;
            events
                .to_string()
                .contains("BackoffLimitExceeded")
                .then_some(())
        },
    )
    .await;
    let previous = client.run(&["logs", &id, "--previous"]).await;
    let newest = client.run(&["logs", &id]).await;
    let described = client.run(&["describe", &id]).await;

    assert_eq!(previous.expect_code(0).stdout, format!("attempt {first}\n"));
    assert_eq!(newest.expect_code(0).stdout, format!("attempt {second}\n"));
    let text = &described.expect_code(0).stdout;
    assert!(text.contains("State:           failed\n"), "{text}");
    assert!(text.contains("Why it failed:\n"), "{text}");
    for pod in [first, second] {
        assert!(
            text.contains(&format!("pod {pod}: terminated (Error), exit code 3")),
            "{text}"
        );
    }
    let events = text.split_once("Events:\n").expect("an Events section").1;
    let rows: Vec<Vec<&str>> = events
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect())
        .collect();
    let job = format!("Job/{}", first.rsplit_once('-').map_or("", |(job, _)| job));
    for pod in [first, second] {
        assert!(
            rows.iter()
                .any(|row| row[..2] == ["Normal", "SuccessfulCreate"]
                    && row.contains(&job.as_str())
                    && row.join(" ").ends_with(&format!("Created pod: {pod}"))),
            "the creation of {pod} among the events: {text}"
        );
    }
    assert!(
        rows.iter()
            .any(|row| row[..2] == ["Warning", "BackoffLimitExceeded"]
                && row.contains(&job.as_str())),
        "the Job's failure among the events: {text}"
    );
    let failed = follow_states(&app, &id, &["failed"]).await.0;
    assert!(
        text.contains(failed["message"].as_str().unwrap_or("<none>")),
        "{text}"
    );
}
on_the_cluster!(describe_and_logs_previous_show_why_a_retried_payload_failed);
