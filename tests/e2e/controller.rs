//! What the service asks of the API server: views answered from the controller's watch
//! caches, one log stream per pod however many follow it, and what only a watch can see (a pod
//! that vanishes before it ends).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use reqwest::StatusCode;
use serde_json::json as body;

use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually, follow_states, id, metric};
use crate::on_the_cluster;
use crate::support::{Backend, TestApp, fields, json, problem};

/// The requests the service has sent the API server with this verb.
async fn api_requests(app: &TestApp, verb: &str) -> f64 {
    metric(
        app,
        &format!("submission_helper_apiserver_requests_total{{verb=\"{verb}\"}}"),
    )
    .await
}

async fn polling_status_and_the_cluster_views_sends_the_api_server_nothing(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let id = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": "echo done", "labels": {"team": "top"}}))
        .await);
    let (done, seen) = follow_states(&app, &id, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(
        metric(
            &app,
            "submission_helper_submit_to_job_created_seconds_count"
        )
        .await,
        1.0,
        "one Job created"
    );
    let created = "submission_helper_apiserver_responses_total{verb=\"create\",code=\"201\"}";
    assert_eq!(metric(&app, created).await, 1.0, "answered 201 Created");
    if seen.iter().any(|state| state == "running") {
        assert_eq!(
            metric(
                &app,
                "submission_helper_job_created_to_running_seconds_count"
            )
            .await,
            1.0,
            "its run was timed"
        );
    }
    let reads_before = api_requests(&app, "get").await;
    assert!(reads_before > 0.0, "the first lists are counted");
    assert!(api_requests(&app, "watch").await >= 2.0, "a watch per kind");
    assert!(metric(&app, "submission_helper_reconciles_total{result=\"ok\"}").await >= 1.0);
    assert!(metric(&app, "submission_helper_reconcile_lag_seconds_count").await >= 1.0);
    let scraped = app
        .get("/metrics")
        .await
        .text()
        .await
        .expect("metrics text");
    for resource in ["jobs", "pods"] {
        for counter in ["watch_restarts_total", "watch_errors_total"] {
            let quiet = format!("submission_helper_{counter}{{resource=\"{resource}\"}} 0");
            assert!(
                scraped.lines().any(|line| line == quiet),
                "a healthy watch's first list is no restart: {quiet} not in\n{scraped}"
            );
        }
    }

    for _ in 0..25 {
        let jobs = json(
            app.get("/v1/jobs?label_selector=team+in+(top,bottom),!nothing")
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(jobs["items"][0]["submission_id"], id.as_str(), "{jobs}");
        let pods = json(app.get("/v1/pods").await, StatusCode::OK).await;
        assert_eq!(pods["items"][0]["status"], "Completed", "{pods}");
        let own = json(
            app.get(&format!("/v1/submissions/{id}/pods")).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(own["items"].as_array().map(Vec::len), Some(1), "{own}");
        json(
            app.get(&format!("/v1/submissions/{id}")).await,
            StatusCode::OK,
        )
        .await;
    }

    assert_eq!(
        api_requests(&app, "get").await,
        reads_before,
        "100 reads of status, pods and the cluster views were answered from the watch caches"
    );
    let refused = problem(
        app.get("/v1/jobs?label_selector=team+in+top").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(fields(&refused), ["label_selector"], "{refused}");
}
on_the_cluster!(polling_status_and_the_cluster_views_sends_the_api_server_nothing);

async fn a_pod_that_vanishes_before_it_ends_is_recorded_as_lost(backend: Backend) {
    // No node runs this namespace's pods: the pod stays pending until it is taken away, the
    // way a pod of a lost node is removed by hand (its Job-tracking finalizer stripped).
    let cluster = TestCluster::lone().await;
    let app = cluster.spawn_service(backend).await;
    let id = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": "sleep 600"}))
        .await);
    let pod = eventually("the submission's pod", Duration::from_secs(60), || async {
        let pods = json(
            app.get(&format!("/v1/submissions/{id}/pods")).await,
            StatusCode::OK,
        )
        .await;
        pods["items"][0]["name"].as_str().map(str::to_owned)
    })
    .await;

    let pods: Api<Pod> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    pods.patch(
        &pod,
        &PatchParams::default(),
        &Patch::Merge(body!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("strip the finalizer");
    pods.delete(&pod, &DeleteParams::default().grace_period(0))
        .await
        .expect("delete the pod");

    let said = eventually(
        "the lost pod in the message",
        Duration::from_secs(60),
        || async {
            let submission = json(
                app.get(&format!("/v1/submissions/{id}")).await,
                StatusCode::OK,
            )
            .await;
            let message = submission["message"].as_str()?.to_owned();
            message
                .contains(&format!("pod {pod} lost"))
                .then_some(message)
        },
    )
    .await;
    assert!(said.contains("before it ended"), "{said}");
    let log = app
        .get(&format!("/v1/submissions/{id}/logs?pod={pod}"))
        .await;
    assert_eq!(log.status(), StatusCode::OK);
    assert_eq!(
        log.headers()
            .get("x-log-source")
            .and_then(|v| v.to_str().ok()),
        Some("archive")
    );
    let text = log.text().await.expect("log");
    assert!(text.contains("was lost before it ended"), "{text}");

    let cancelled = json(
        app.post_json(&format!("/v1/submissions/{id}/cancel"), &body!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
}
on_the_cluster!(a_pod_that_vanishes_before_it_ends_is_recorded_as_lost);

async fn twenty_follows_of_one_pod_share_one_log_stream_from_the_api_server(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let gate = cluster.gate("finish");
    let id = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE,
                       "command": format!("echo first; {}; echo last", gate.wait_command())}))
        .await);
    follow_states(&app, &id, &["running"]).await;
    let reads_before = api_requests(&app, "get").await;

    let path = format!("/v1/submissions/{id}/logs?follow=true");
    let followers = futures::future::join_all((0..19).map(|_| app.get(&path))).await;
    let late = app
        .get(&format!(
            "/v1/submissions/{id}/logs?follow=true&tail_lines=1&timestamps=true"
        ))
        .await;
    // Counted while every follow is open and before the pod ends (its end archives the log).
    let opened = api_requests(&app, "get").await - reads_before;
    gate.open();
    let logs = futures::future::join_all(
        followers
            .into_iter()
            .map(|follower| async move { follower.text().await.expect("log") }),
    )
    .await;
    let late = late.text().await.expect("log");

    for log in &logs {
        assert_eq!(log, "first\nlast\n");
    }
    let stamped: Vec<&str> = late.lines().collect();
    assert_eq!(stamped.len(), 2, "{late}");
    assert!(
        stamped[0].ends_with("Z first") && stamped[1].ends_with("Z last"),
        "{late}"
    );
    assert_eq!(opened, 1.0, "20 follows of one pod opened one log stream");
}
on_the_cluster!(twenty_follows_of_one_pod_share_one_log_stream_from_the_api_server);
