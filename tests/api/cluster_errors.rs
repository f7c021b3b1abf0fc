//! What users are told when the cluster cannot be asked: a short cause, never where the API
//! server is, how the service signs in, or what the client library said (that goes to the log).
//!
//! The API server here is a kubeconfig pointing at a closed port on 127.0.0.1: every call the
//! service makes fails to connect at once, as when the API server is down.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use submission_helper::cluster::Cluster;

use crate::on_both_databases;
use crate::support::{Backend, TestApp, TestDatabase, cluster_error_text_in, eventually, problem};

/// A cluster whose kubeconfig names an API server on a closed port of loopback, and that port.
async fn unreachable_cluster() -> (Cluster, u16) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&format!(
        "apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: https://127.0.0.1:{port}
users:
- name: submission-helper
  user:
    token: not-a-real-token
contexts:
- name: lab
  context:
    cluster: lab
    user: submission-helper
    namespace: default
current-context: lab
"
    ))
    .expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    (Cluster::from_config(config, "default".into()), port)
}

async fn answers_that_need_an_unreachable_cluster_give_a_short_cause_only(backend: Backend) {
    let (cluster, port) = unreachable_cluster().await;
    let app = TestApp::builder()
        .with_database(TestDatabase::new(backend).await)
        .with_cluster(cluster)
        .spawn()
        .await;
    let submitted = app
        .submit(json!({"image": "busybox", "command": "true"}))
        .await;
    let id = submitted["id"].as_str().expect("id");
    let paths = [
        "/v1/jobs".to_owned(),
        "/v1/pods".to_owned(),
        format!("/v1/submissions/{id}/pods"),
        format!("/v1/submissions/{id}/cluster-events"),
        format!("/v1/submissions/{id}/logs"),
        format!("/v1/submissions/{id}/logs?follow=true"),
    ];

    let answers = futures::future::join_all(paths.iter().map(|path| app.get(path))).await;

    for (path, answer) in paths.iter().zip(answers) {
        let body = problem(answer, StatusCode::SERVICE_UNAVAILABLE).await;
        assert_eq!(
            body["type"], "urn:submission-helper:problem:cluster-unavailable",
            "{path}: {body}"
        );
        let detail = body["detail"].as_str().unwrap_or_default();
        assert_eq!(detail, "the API server could not be reached", "{path}");
        assert_eq!(
            cluster_error_text_in(detail, "127.0.0.1", port),
            Vec::<String>::new(),
            "{path}: {detail}"
        );
    }
}
on_both_databases!(answers_that_need_an_unreachable_cluster_give_a_short_cause_only);

async fn a_submission_waiting_for_an_unreachable_cluster_says_why_in_short(backend: Backend) {
    let (cluster, port) = unreachable_cluster().await;
    let app = TestApp::builder()
        .with_database(TestDatabase::new(backend).await)
        .with_cluster(cluster)
        .spawn()
        .await;
    let submitted = app
        .submit(json!({"image": "busybox", "command": "true"}))
        .await;
    let path = format!("/v1/submissions/{}", submitted["id"].as_str().expect("id"));

    let waiting: Value = eventually(
        "the dispatcher to say why the Job is not created",
        Duration::from_secs(30),
        || async {
            let submission: Value = app.get(&path).await.json().await.ok()?;
            submission["message"]
                .as_str()
                .is_some_and(|message| message.starts_with("waiting to create the Job"))
                .then_some(submission)
        },
    )
    .await;

    assert_eq!(waiting["state"], "queued", "{waiting}");
    let message = waiting["message"].as_str().unwrap_or_default();
    assert_eq!(
        message,
        "waiting to create the Job: the API server could not be reached"
    );
    assert_eq!(
        cluster_error_text_in(message, "127.0.0.1", port),
        Vec::<String>::new(),
        "{message}"
    );
}
on_both_databases!(a_submission_waiting_for_an_unreachable_cluster_says_why_in_short);

async fn answers_without_a_cluster_do_not_repeat_why_none_was_found(backend: Backend) {
    let why = "kubeconfig: failed to read kubeconfig from '/home/operator/.kube/config': \
               No such file or directory (os error 2)";
    let cluster = Cluster::unconfigured(why.into(), "default".into());
    let app = TestApp::builder()
        .with_database(TestDatabase::new(backend).await)
        .with_cluster(cluster)
        .spawn()
        .await;
    let submitted = app
        .submit(json!({"image": "busybox", "command": "true"}))
        .await;
    let id = submitted["id"].as_str().expect("id");

    let answer = app
        .get(&format!("/v1/submissions/{id}/cluster-events"))
        .await;

    let body = problem(answer, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["detail"], "no cluster is configured", "{body}");
}
on_both_databases!(answers_without_a_cluster_do_not_repeat_why_none_was_found);
