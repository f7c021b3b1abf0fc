//! What a user of the seed does, on the real node: a private image pulled with the registry
//! secret, its `.bashrc` environment, input and output on the `ntuples-claim` volume, logs
//! followed from the kubelet, an out-of-memory kill, a cancel the payload sees as SIGTERM, and
//! the registry's refusals.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json as body};

use super::{Prepared, create_registry_secret};
use crate::harness::{eventually, follow_states, id};
use crate::on_the_real_node;
use crate::support::{Backend, TestApp, json};

/// The log of a submission's only pod, as the service answers it.
async fn log_of(app: &TestApp, id: &str) -> String {
    let response = app.get(&format!("/v1/submissions/{id}/logs")).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.expect("log")
}

/// The first container of a submission's first pod, as `/v1/submissions/{id}/pods` shows it.
async fn first_container(app: &TestApp, id: &str) -> Value {
    let pods = json(
        app.get(&format!("/v1/submissions/{id}/pods")).await,
        StatusCode::OK,
    )
    .await;
    pods["items"][0]["containers"][0].clone()
}

/// Waits until the submission's `message` satisfies `wanted`, and returns the submission.
async fn message_that(app: &TestApp, id: &str, what: &str, wanted: impl Fn(&str) -> bool) -> Value {
    let path = format!("/v1/submissions/{id}");
    eventually(what, Duration::from_secs(90), || async {
        let submission: Value = app.get(&path).await.json().await.ok()?;
        wanted(submission["message"].as_str().unwrap_or_default()).then_some(submission)
    })
    .await
}

async fn the_private_image_is_pulled_with_the_seeds_secret_and_its_bashrc_sets_up_the_payload(
    backend: Backend,
) {
    let prepared = Prepared::new().await;
    let app = prepared.spawn_service(backend, |_| {}).await;

    let created = app
        .submit(
            body!({"image": prepared.node.image, "command": "analyze config/master/analyze.cfg"}),
        )
        .await;
    let id = id(&created);
    let (done, seen) = follow_states(&app, &id, &["succeeded", "failed"]).await;

    assert_eq!(done["state"], "succeeded", "{done}; states seen: {seen:?}");
    assert_eq!(
        log_of(&app, &id).await,
        "CAFExample on AnalysisBase 21.2.171: config/master/analyze.cfg\n",
        "analyze is on PATH and the release set up only through .bashrc"
    );
    let container = first_container(&app, &id).await;
    assert_eq!(container["name"], "analyze", "{container}");
    assert_eq!(container["exit_code"], 0, "{container}");
}
on_the_real_node!(
    the_private_image_is_pulled_with_the_seeds_secret_and_its_bashrc_sets_up_the_payload
);

async fn without_the_secret_or_with_a_wrong_password_the_registrys_refusal_is_the_message(
    backend: Backend,
) {
    let prepared = Prepared::new().await;
    create_registry_secret(
        &prepared.cluster,
        "wrong-password",
        &prepared.node,
        "not-the-password",
    );
    let app = prepared
        .spawn_service(backend, |settings| {
            settings.pending_timeout = Duration::from_secs(20);
        })
        .await;
    let image = &prepared.node.image;

    let anonymous = id(&app
        .submit(body!({"image": image, "command": "true", "registry_secret": null}))
        .await);
    let wrong = id(&app
        .submit(body!({"image": image, "command": "true", "registry_secret": "wrong-password"}))
        .await);

    for id in [&anonymous, &wrong] {
        let (failed, seen) = follow_states(&app, id, &["failed", "succeeded"]).await;
        let message = failed["message"].as_str().unwrap_or_default();
        assert_eq!(failed["state"], "failed", "{failed}");
        assert!(!seen.contains(&"running".to_owned()), "{seen:?}");
        assert!(
            (message.starts_with("ErrImagePull") || message.starts_with("ImagePullBackOff"))
                && message.contains("401 Unauthorized")
                && message.contains("could not start within 20s, the pending timeout"),
            "the kubelet's reason, with the registry's refusal, and the timeout: {message}"
        );
    }
}
on_the_real_node!(without_the_secret_or_with_a_wrong_password_the_registrys_refusal_is_the_message);

async fn input_on_the_ntuples_volume_is_read_and_the_output_left_there_for_the_next_submission(
    backend: Backend,
) {
    let prepared = Prepared::new().await;
    prepared.put("mc16e/ttbar.txt", "event 1\nevent 2\nevent 3\n");
    let app = prepared.spawn_service(backend, |_| {}).await;
    let image = &prepared.node.image;

    let batch = json(
        app.post_json(
            "/v1/submissions/batch",
            &body!({"submissions": [
                {"name": "count", "image": image,
                 "command": "mkdir -p /ntuples/output && wc -l < /ntuples/mc16e/ttbar.txt > /ntuples/output/ttbar.count"},
                {"name": "merge", "image": image, "depends_on": ["count"],
                 "command": "echo \"ttbar: $(cat /ntuples/output/ttbar.count) events\""}
            ]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let ids: Vec<String> = batch["submissions"]
        .as_array()
        .expect("submissions")
        .iter()
        .map(id)
        .collect();
    let (merged, _) = follow_states(&app, &ids[1], &["succeeded", "failed", "cancelled"]).await;

    assert_eq!(merged["state"], "succeeded", "{merged}");
    assert_eq!(log_of(&app, &ids[1]).await, "ttbar: 3 events\n");
    assert_eq!(
        prepared
            .read("output/ttbar.count")
            .as_deref()
            .map(str::trim),
        Some("3"),
        "the output stays on the volume"
    );
}
on_the_real_node!(
    input_on_the_ntuples_volume_is_read_and_the_output_left_there_for_the_next_submission
);

async fn logs_are_followed_live_from_the_kubelet(backend: Backend) {
    let prepared = Prepared::new().await;
    let app = prepared.spawn_service(backend, |_| {}).await;
    let command =
        "echo first line; while [ ! -e /ntuples/go ]; do sleep 0.1; done; echo second line";
    let id = id(&app
        .submit(body!({"image": prepared.node.image, "command": command}))
        .await);

    let response = app
        .get(&format!("/v1/submissions/{id}/logs?follow=true"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.bytes_stream();
    let mut received = String::new();
    let first = tokio::time::timeout(Duration::from_secs(90), async {
        while !received.contains("first line\n") {
            let chunk = stream.next().await.expect("stream open").expect("chunk");
            received.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(
        first.is_ok(),
        "the first line did not arrive while the payload ran: {received:?}"
    );
    assert!(!received.contains("second line"), "{received:?}");

    prepared.put("go", "");
    let rest = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(chunk) = stream.next().await {
            received.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        }
    })
    .await;

    assert!(
        rest.is_ok(),
        "the stream did not end when the payload exited: {received:?}"
    );
    assert_eq!(received, "first line\nsecond line\n");
}
on_the_real_node!(logs_are_followed_live_from_the_kubelet);

async fn a_payload_over_its_memory_limit_is_reported_oom_killed(backend: Backend) {
    let prepared = Prepared::new().await;
    let app = prepared.spawn_service(backend, |_| {}).await;
    let command =
        "echo allocating; kept=$(head -c 300000000 /dev/zero | tr '\\0' x); echo survived";

    let id = id(&app
        .submit(
            body!({"image": prepared.node.image, "command": command, "retries": 0,
                       "tool": "allocate", "resources": {"limits": {"memory": "64Mi"}}}),
        )
        .await);
    let (failed, _) = follow_states(&app, &id, &["failed", "succeeded"]).await;

    assert_eq!(failed["state"], "failed", "{failed}");
    let container = first_container(&app, &id).await;
    assert_eq!(container["state"], "terminated", "{container}");
    assert_eq!(container["reason"], "OOMKilled", "{container}");
    assert_eq!(container["exit_code"], 137, "{container}");
    assert_eq!(log_of(&app, &id).await, "allocating\n");
}
on_the_real_node!(a_payload_over_its_memory_limit_is_reported_oom_killed);

async fn a_cancel_reaches_the_payload_as_sigterm_and_its_trap_runs_before_it_ends(
    backend: Backend,
) {
    let prepared = Prepared::new().await;
    let app = prepared.spawn_service(backend, |_| {}).await;
    let command = "trap 'echo saved > /ntuples/checkpoint; exit 0' TERM; \
                   echo started; while true; do sleep 0.1; done";
    let id = id(&app
        .submit(body!({"image": prepared.node.image, "command": command, "tool": "work"}))
        .await);
    follow_states(&app, &id, &["running"]).await;
    eventually(
        "the payload to have started",
        Duration::from_secs(60),
        || async { (log_of(&app, &id).await == "started\n").then_some(()) },
    )
    .await;

    let cancelled = json(
        app.post_json(&format!("/v1/submissions/{id}/cancel"), &body!({}))
            .await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(cancelled["state"], "cancelled");
    let checkpoint = eventually(
        "the payload's trap to write its checkpoint",
        Duration::from_secs(25),
        || async { prepared.read("checkpoint") },
    )
    .await;
    assert_eq!(checkpoint, "saved\n");
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(prepared.cluster.admin.clone(), &prepared.cluster.namespace);
    let selector = format!("submission-helper.io/submission-id={id}");
    eventually(
        "its pod to be gone before the grace period ends",
        Duration::from_secs(25),
        || async {
            let listed = pods
                .list(&kube::api::ListParams::default().labels(&selector))
                .await
                .ok()?;
            listed.items.is_empty().then_some(())
        },
    )
    .await;
}
on_the_real_node!(a_cancel_reaches_the_payload_as_sigterm_and_its_trap_runs_before_it_ends);

async fn a_missing_image_is_err_image_pull_then_image_pull_back_off(backend: Backend) {
    let prepared = Prepared::new().await;
    let app = prepared.spawn_service(backend, |_| {}).await;
    let image = format!("{}/caf-k8s/missing:1", prepared.node.registry);
    let id = id(&app.submit(body!({"image": image, "command": "true"})).await);

    let pulled = message_that(&app, &id, "ErrImagePull in the message", |message| {
        message.starts_with("ErrImagePull")
    })
    .await;
    assert!(
        pulled["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not found"),
        "the registry's answer: {pulled}"
    );
    let backing_off = message_that(&app, &id, "ImagePullBackOff in the message", |message| {
        message.starts_with("ImagePullBackOff")
    })
    .await;

    assert_eq!(backing_off["state"], "pending", "{backing_off}");
    let pods = json(
        app.get(&format!("/v1/submissions/{id}/pods")).await,
        StatusCode::OK,
    )
    .await;
    let status = pods["items"][0]["status"].as_str().unwrap_or_default();
    assert!(
        status == "ErrImagePull" || status == "ImagePullBackOff",
        "kubectl's STATUS column: {pods}"
    );
    let cancelled = json(
        app.post_json(&format!("/v1/submissions/{id}/cancel"), &body!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled["state"], "cancelled");
}
on_the_real_node!(a_missing_image_is_err_image_pull_then_image_pull_back_off);
