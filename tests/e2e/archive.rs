//! Logs outlive pods: once a pod is gone (deleted by hand, by the TTL controller, by a cancel)
//! its archived log is served, byte for byte.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use reqwest::StatusCode;
use serde_json::json as body;

use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually, follow_states, id};
use crate::on_the_cluster;
use crate::support::{Backend, TestApp, json};

/// What the payloads print: several lines, tabs, non-ASCII text, a long line.
const PRINTS: &str = r#"printf 'first line\n\tindented\nüñíçødé ✓\n'; head -c 5000 /dev/zero | tr '\0' x; echo; echo last"#;
const PRINTED_LINES: usize = 5;

async fn log(app: &TestApp, id: &str, query: &str) -> (Option<String>, String) {
    let response = app.get(&format!("/v1/submissions/{id}/logs{query}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let source = response
        .headers()
        .get("x-log-source")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    (source, response.text().await.expect("log"))
}

async fn pods_gone(cluster: &TestCluster, id: &str) {
    let pods: Api<Pod> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let selector = format!("submission-helper.io/submission-id={id}");
    eventually("the pods to be gone", Duration::from_secs(60), || async {
        let listed = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .ok()?;
        listed.items.is_empty().then_some(())
    })
    .await;
}

async fn the_log_of_a_deleted_job_is_served_from_the_archive_byte_for_byte(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let id = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": PRINTS}))
        .await);
    let (done, _) = follow_states(&app, &id, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let (source, live) = log(&app, &id, "").await;
    assert_eq!(source.as_deref(), Some("cluster"));
    assert_eq!(live.lines().count(), PRINTED_LINES, "{live:?}");

    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    jobs.delete(
        done["job_name"].as_str().expect("job"),
        &DeleteParams::background(),
    )
    .await
    .expect("kubectl delete job");
    pods_gone(&cluster, &id).await;

    let (source, archived) = log(&app, &id, "").await;
    assert_eq!(source.as_deref(), Some("archive"));
    assert_eq!(archived, live);
    let (_, tail) = log(&app, &id, "?tail_lines=1").await;
    assert_eq!(tail, "last\n");
    let (_, followed) = log(&app, &id, "?follow=true").await;
    assert_eq!(followed, live);
}
on_the_cluster!(the_log_of_a_deleted_job_is_served_from_the_archive_byte_for_byte);

async fn the_log_of_a_job_removed_by_its_ttl_is_still_served(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let request = body!({"image": PAYLOAD_IMAGE, "command": "echo kept after the TTL", "ttl_seconds_after_finished": 2});

    let id = id(&app.submit(request).await);

    let (done, _) = follow_states(&app, &id, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let job_name = done["job_name"].as_str().expect("job").to_owned();
    eventually(
        "the TTL controller to delete the Job",
        Duration::from_secs(60),
        || async { jobs.get_opt(&job_name).await.ok()?.is_none().then_some(()) },
    )
    .await;
    pods_gone(&cluster, &id).await;
    let (source, archived) = log(&app, &id, "").await;
    assert_eq!(
        (source.as_deref(), archived.as_str()),
        (Some("archive"), "kept after the TTL\n")
    );
    let stored = json(
        app.get(&format!("/v1/submissions/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        stored["state"], "succeeded",
        "a Job removed by its TTL is not a failure: {stored}"
    );
}
on_the_cluster!(the_log_of_a_job_removed_by_its_ttl_is_still_served);

async fn a_cancelled_submission_keeps_what_it_logged(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let gate = cluster.gate("never");
    let command = format!("echo working on it; {}", gate.wait_command());
    let id = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": command}))
        .await);
    follow_states(&app, &id, &["running"]).await;
    eventually(
        "the first line to be logged",
        Duration::from_secs(30),
        || async {
            let response = app.get(&format!("/v1/submissions/{id}/logs")).await;
            (response.text().await.ok()? == "working on it\n").then_some(())
        },
    )
    .await;

    let cancelled = app
        .post_json(&format!("/v1/submissions/{id}/cancel"), &body!({}))
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    pods_gone(&cluster, &id).await;

    let (source, archived) = log(&app, &id, "").await;
    assert_eq!(
        (source.as_deref(), archived.as_str()),
        (Some("archive"), "working on it\n")
    );
}
on_the_cluster!(a_cancelled_submission_keeps_what_it_logged);

async fn a_log_read_that_hangs_holds_up_no_other_submission(backend: Backend) {
    let cluster = TestCluster::simulated().await;
    let app = cluster.spawn_service(backend).await;
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    // The simulated node never answers a plain read of this payload's log.
    let held = app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": "echo 'node-sim: hold this log'"}))
        .await;
    let held_job = held["job_name"].as_str().expect("job name").to_owned();
    let held = id(&held);
    eventually(
        "the held one's Job to complete",
        Duration::from_secs(60),
        || async {
            let job = jobs.get_opt(&held_job).await.ok()??;
            let complete = job
                .status?
                .conditions?
                .into_iter()
                .any(|condition| condition.type_ == "Complete" && condition.status == "True");
            complete.then_some(())
        },
    )
    .await;

    // Its log is being read for the archive, and that read hangs: the next one goes on.
    let next = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": "echo next"}))
        .await);
    eventually(
        "the next submission to be recorded succeeded",
        Duration::from_secs(15),
        || async {
            let seen = json(
                app.get(&format!("/v1/submissions/{next}")).await,
                StatusCode::OK,
            )
            .await;
            (seen["state"] == "succeeded").then_some(())
        },
    )
    .await;

    // The held one ends too, once its archive gave up (after its time limit).
    let ended = eventually(
        "the held one to be recorded succeeded",
        Duration::from_secs(60),
        || async {
            let seen = json(
                app.get(&format!("/v1/submissions/{held}")).await,
                StatusCode::OK,
            )
            .await;
            (seen["state"] == "succeeded").then_some(seen)
        },
    )
    .await;
    assert!(ended["finished_at"].is_string(), "{ended}");
}
on_the_cluster!(a_log_read_that_hangs_holds_up_no_other_submission);

/// A cancel is answered as soon as it is recorded: archiving the pods' logs and deleting the Job
/// happen afterwards, in the background. Here archiving hangs (the node never answers a plain
/// read of this log), which once held the cancel's answer for 10 seconds.
async fn a_cancel_answers_at_once_even_when_archiving_its_logs_hangs(backend: Backend) {
    let cluster = TestCluster::simulated().await;
    let app = cluster.spawn_service(backend).await;
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let held = app
        .submit(
            body!({"image": PAYLOAD_IMAGE, "command": "echo 'node-sim: hold this log'; sleep 600"}),
        )
        .await;
    let job_name = held["job_name"].as_str().expect("job name").to_owned();
    let held = id(&held);
    follow_states(&app, &held, &["running"]).await;
    // The marker is in the log (a follow still reads it) before the cancel.
    let mut follow = app
        .get(&format!("/v1/submissions/{held}/logs?follow=true"))
        .await;
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("node-sim: hold this log") {
        let chunk = tokio::time::timeout(Duration::from_secs(60), follow.chunk())
            .await
            .expect("the payload's first line within a minute")
            .expect("log chunk")
            .expect("the log ended before its first line");
        seen.extend_from_slice(&chunk);
    }
    drop(follow);

    let asked = std::time::Instant::now();
    let answer = json(
        app.post_json(&format!("/v1/submissions/{held}/cancel"), &body!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let answered_in = asked.elapsed();

    assert_eq!(answer["state"], "cancelled", "{answer}");
    assert!(
        answered_in < Duration::from_secs(3),
        "the cancel took {answered_in:?} to answer"
    );
    eventually(
        "the cancelled submission's Job to be deleted",
        Duration::from_secs(60),
        || async { jobs.get_opt(&job_name).await.ok()?.is_none().then_some(()) },
    )
    .await;
    let after = json(
        app.get(&format!("/v1/submissions/{held}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(after["state"], "cancelled", "{after}");
}
on_the_cluster!(a_cancel_answers_at_once_even_when_archiving_its_logs_hangs);
