//! What a user does, end to end: submit, watch the state, read logs, cancel.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use reqwest::StatusCode;
use serde_json::{Value, json as body};

use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually, follow_states, id, run_gated};
use crate::on_the_cluster;
use crate::support::{Backend, json};
use submission_helper::domain::SubmitDefaults;

async fn a_submission_runs_to_success_through_every_state(backend: Backend) {
    let cluster = TestCluster::new().await;
    // The helper's own defaults (a core and 4000M), which the Job is checked for.
    let app = cluster
        .spawn_service_tuned(backend, |settings| {
            settings.defaults = SubmitDefaults::default();
        })
        .await;
    let gate = cluster.gate("go");
    let command = format!("echo started; {}; echo finished", gate.wait_command());

    let created = app
        .submit(body!({"name": "story", "image": PAYLOAD_IMAGE, "command": command, "identifier": "story-1"}))
        .await;
    let id = id(&created);
    assert_eq!(created["state"], "queued");

    let (running, seen_before) = follow_states(&app, &id, &["running"]).await;
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let listed = jobs
        .list(&ListParams::default().labels("app=submission-helper"))
        .await
        .expect("list jobs");
    assert_eq!(
        listed.items.len(),
        1,
        "kubectl get jobs -l app=submission-helper lists it"
    );
    let job = &listed.items[0];
    assert_eq!(job.metadata.name.as_deref(), running["job_name"].as_str());
    let pod_spec = job
        .spec
        .as_ref()
        .and_then(|spec| spec.template.spec.clone())
        .expect("pod spec");
    assert_eq!(
        pod_spec.containers[0].command,
        Some(vec!["bash".into(), "-cl".into(), command.clone()])
    );
    assert_eq!(pod_spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod_spec.automount_service_account_token, Some(false));
    // The helper's defaults, as the API server stored them.
    let job_spec = job.spec.as_ref().expect("job spec");
    assert_eq!(job_spec.backoff_limit, Some(3));
    assert_eq!(job_spec.active_deadline_seconds, Some(86400));
    assert_eq!(job_spec.ttl_seconds_after_finished, Some(86400));
    let container = &pod_spec.containers[0];
    assert_eq!(container.name, "echo", "named after the command's program");
    assert_eq!(container.image_pull_policy.as_deref(), Some("Always"));
    let requests = container
        .resources
        .as_ref()
        .and_then(|resources| resources.requests.clone())
        .expect("requests");
    assert_eq!(
        (
            requests.get("memory").map(|q| q.0.as_str()),
            requests.get("cpu").map(|q| q.0.as_str())
        ),
        (Some("4G"), Some("1")),
        "4000M, as the API server writes it"
    );
    let by_identifier = jobs
        .list(&ListParams::default().labels("identifier=story-1"))
        .await
        .expect("list jobs");
    assert_eq!(
        by_identifier.items.len(),
        1,
        "kubectl get jobs -l identifier=story-1"
    );
    assert_eq!(
        pod_spec
            .image_pull_secrets
            .map(|secrets| secrets.into_iter().map(|s| s.name).collect::<Vec<_>>()),
        Some(vec!["sh-k8s-registry-secret".to_string()])
    );
    assert!(running["started_at"].is_string(), "{running}");
    let path = format!("/v1/submissions/{id}");
    eventually(
        "the Job's active pod to be counted",
        Duration::from_secs(30),
        || async {
            let submission: Value = app.get(&path).await.json().await.ok()?;
            (submission["active"] == 1).then_some(())
        },
    )
    .await;

    gate.open();
    let (succeeded, seen_after) = follow_states(&app, &id, &["succeeded", "failed"]).await;

    assert_eq!(succeeded["state"], "succeeded", "{succeeded}");
    assert_eq!(succeeded["succeeded"], 1);
    let order = ["queued", "pending", "running", "succeeded"];
    let seen: Vec<String> = seen_before.into_iter().chain(seen_after).collect();
    let ranks: Vec<usize> = seen
        .iter()
        .filter_map(|state| order.iter().position(|o| o == state))
        .collect();
    assert!(
        ranks.windows(2).all(|pair| pair[0] <= pair[1]),
        "states went backwards: {seen:?}"
    );
    let (created_at, started_at, finished_at) = (
        created["created_at"]
            .as_str()
            .unwrap_or_default()
            .parse::<jiff::Timestamp>()
            .expect("created_at"),
        succeeded["started_at"]
            .as_str()
            .unwrap_or_default()
            .parse::<jiff::Timestamp>()
            .expect("started_at"),
        succeeded["finished_at"]
            .as_str()
            .unwrap_or_default()
            .parse::<jiff::Timestamp>()
            .expect("finished_at"),
    );
    assert!(started_at <= finished_at, "{succeeded}");
    assert!(
        created_at.as_second() <= started_at.as_second(),
        "{created} {succeeded}"
    );

    let log = app.get(&format!("/v1/submissions/{id}/logs")).await;
    assert_eq!(log.status(), StatusCode::OK);
    assert_eq!(log.text().await.expect("log"), "started\nfinished\n");
    let pods = json(
        app.get(&format!("/v1/submissions/{id}/pods")).await,
        StatusCode::OK,
    )
    .await;
    let pod = pods["items"][0]["name"].as_str().expect("pod name");
    let named = app
        .get(&format!("/v1/submissions/{id}/logs?pod={pod}"))
        .await;
    assert_eq!(named.status(), StatusCode::OK);
    assert_eq!(named.text().await.expect("log"), "started\nfinished\n");
}
on_the_cluster!(a_submission_runs_to_success_through_every_state);

async fn a_failing_payload_is_retried_then_fails_with_the_reason(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;

    let created = app
        .submit(
            body!({"image": PAYLOAD_IMAGE, "command": "echo trying; exit 3", "backoff_limit": 1}),
        )
        .await;
    let id = id(&created);

    let (failed, _) = follow_states(&app, &id, &["failed", "succeeded"]).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["message"]
            .as_str()
            .unwrap_or_default()
            .contains("BackoffLimitExceeded"),
        "{failed}"
    );
    assert!(failed["finished_at"].is_string());

    let pods = json(
        app.get(&format!("/v1/submissions/{id}/pods")).await,
        StatusCode::OK,
    )
    .await;
    let pods = pods["items"].as_array().expect("pods");
    assert_eq!(pods.len(), 2, "the job controller retried once: {pods:?}");
    for pod in pods {
        assert_eq!(pod["phase"], "Failed", "{pod}");
        assert_eq!(pod["containers"][0]["state"], "terminated", "{pod}");
        assert_eq!(pod["containers"][0]["exit_code"], 3, "{pod}");
    }

    // What Kubernetes said about it, as `kubectl describe` ends: the job controller records
    // its events a moment after it acts.
    let job = format!("Job/{}", created["job_name"].as_str().unwrap_or_default());
    let events = eventually(
        "the Job's failure among its events",
        Duration::from_secs(30),
        || async {
            let events = json(
                app.get(&format!("/v1/submissions/{id}/cluster-events"))
                    .await,
                StatusCode::OK,
            )
            .await;
            let items = events["items"].as_array().cloned().unwrap_or_default();
            items
                .iter()
                .any(|event| event["reason"] == "BackoffLimitExceeded")
                .then_some(items)
        },
    )
    .await;
    let failure = events
        .iter()
        .find(|event| event["reason"] == "BackoffLimitExceeded")
        .expect("the failure");
    assert_eq!(failure["object"], job.as_str(), "{failure}");
    assert_eq!(failure["type"], "Warning", "{failure}");
    assert_eq!(failure["from"], "job-controller", "{failure}");
    let created_pods: Vec<&str> = events
        .iter()
        .filter(|event| event["reason"] == "SuccessfulCreate" && event["object"] == job.as_str())
        .filter_map(|event| event["message"].as_str())
        .collect();
    for pod in pods {
        let name = pod["name"].as_str().unwrap_or_default();
        assert!(
            created_pods.contains(&format!("Created pod: {name}").as_str()),
            "{name} among {created_pods:?}"
        );
    }
    // Compared as times: a kubelet's events are stamped to the second, the job controller's to
    // the microsecond ("…:38Z" is before "…:38.5Z", though not as text).
    let last_seen: Vec<jiff::Timestamp> = events
        .iter()
        .filter_map(|event| event["last_seen"].as_str())
        .map(|time| time.parse().expect("an RFC 3339 time"))
        .collect();
    assert!(last_seen.is_sorted(), "oldest first: {last_seen:?}");
}
on_the_cluster!(a_failing_payload_is_retried_then_fails_with_the_reason);

async fn following_logs_streams_lines_while_the_payload_writes_them(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let gate = cluster.gate("second-line");
    let command = format!("echo first line; {}; echo second line", gate.wait_command());
    let id = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": command}))
        .await);

    // Asked right after the submit: the follow waits for the pod instead of failing.
    let response = app
        .get(&format!("/v1/submissions/{id}/logs?follow=true"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.bytes_stream();
    let mut received = String::new();
    let first = tokio::time::timeout(Duration::from_secs(60), async {
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
    assert!(!received.contains("second line"));

    gate.open();
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

    let tail = app
        .get(&format!("/v1/submissions/{id}/logs?tail_lines=1"))
        .await;
    assert_eq!(tail.text().await.expect("tail"), "second line\n");
}
on_the_cluster!(following_logs_streams_lines_while_the_payload_writes_them);

async fn cancel_removes_the_job_and_its_pods(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let gate = cluster.gate("never");
    let running = run_gated(&app, &gate).await;
    let id = id(&running);
    let job_name = running["job_name"].as_str().expect("job name").to_owned();

    let cancelled = json(
        app.post_json(&format!("/v1/submissions/{id}/cancel"), &body!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled["state"], "cancelled");

    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let pods: Api<Pod> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let selector = format!("job-name={job_name}");
    eventually(
        "the Job and its pods to be deleted",
        Duration::from_secs(60),
        || async {
            let job = jobs.get_opt(&job_name).await.ok()?;
            let pods = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .ok()?;
            (job.is_none() && pods.items.is_empty()).then_some(())
        },
    )
    .await;
    let again = json(
        app.post_json(&format!("/v1/submissions/{id}/cancel"), &body!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["state"], "cancelled");
    let stored = json(
        app.get(&format!("/v1/submissions/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        stored["state"], "cancelled",
        "the watcher must not overwrite a cancel: {stored}"
    );
}
on_the_cluster!(cancel_removes_the_job_and_its_pods);

async fn bulk_cancel_by_label_leaves_the_others_running(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let gate = cluster.gate("release");
    let mut ids = Vec::new();
    for campaign in ["mc16a", "mc16e", "mc16e"] {
        let request = body!({"image": PAYLOAD_IMAGE, "command": gate.wait_command(), "labels": {"campaign": campaign}});
        ids.push(id(&app.submit(request).await));
    }
    for id in &ids {
        follow_states(&app, id, &["running"]).await;
    }

    let response = app
        .post_json(
            "/v1/submissions/cancel",
            &body!({"labels": {"campaign": "mc16e"}}),
        )
        .await;

    let cancelled = json(response, StatusCode::OK).await;
    let mut cancelled: Vec<String> = cancelled["cancelled"]
        .as_array()
        .expect("list")
        .iter()
        .map(id)
        .collect();
    cancelled.sort();
    let mut expected = vec![ids[1].clone(), ids[2].clone()];
    expected.sort();
    assert_eq!(cancelled, expected);
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let remaining = eventually(
        "only the unmatched Job to remain",
        Duration::from_secs(60),
        || async {
            let listed = jobs
                .list(&ListParams::default().labels("app=submission-helper"))
                .await
                .ok()?;
            (listed.items.len() == 1).then_some(listed.items)
        },
    )
    .await;
    assert_eq!(
        remaining[0]
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("campaign"))
            .map(String::as_str),
        Some("mc16a")
    );

    gate.open();
    let (survivor, _) = follow_states(&app, &ids[0], &["succeeded", "failed"]).await;
    assert_eq!(survivor["state"], "succeeded");
}
on_the_cluster!(bulk_cancel_by_label_leaves_the_others_running);

async fn the_cluster_views_show_what_kubectl_shows(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let id = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": "echo done", "labels": {"team": "top"}}))
        .await);
    let (done, _) = follow_states(&app, &id, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "succeeded");

    let jobs = json(
        app.get("/v1/jobs?label_selector=team%3Dtop").await,
        StatusCode::OK,
    )
    .await;
    let pods = json(app.get("/v1/pods").await, StatusCode::OK).await;
    let none = json(
        app.get("/v1/jobs?label_selector=team%3Dnobody").await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(jobs["items"].as_array().map(Vec::len), Some(1), "{jobs}");
    assert_eq!(jobs["items"][0]["completions"], "1/1");
    assert_eq!(jobs["items"][0]["submission_id"], id.as_str());
    assert_eq!(pods["items"][0]["status"], "Completed", "{pods}");
    assert_eq!(pods["items"][0]["ready"], "0/1");
    assert_eq!(none["items"], body!([]));
    let bob = app.client_for("bob", false, false).await;
    let bobs_view = bob.get(app.url("/v1/jobs")).send().await.expect("request");
    assert_eq!(
        json(bobs_view, StatusCode::OK).await["items"],
        body!([]),
        "users see only their own Jobs"
    );
    let jobs_api: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let owned = jobs_api
        .list(&ListParams::default().labels("submission-helper.io/owner=alice"))
        .await
        .expect("jobs");
    assert_eq!(
        owned.items.len(),
        1,
        "kubectl get jobs -l submission-helper.io/owner=alice"
    );
    let ready = json(app.get("/readyz").await, StatusCode::OK).await;
    assert_eq!(ready["ready"], true);
}
on_the_cluster!(the_cluster_views_show_what_kubectl_shows);

async fn a_role_without_create_refuses_submissions_with_a_clear_message_then_fails_them(
    backend: Backend,
) {
    let cluster = TestCluster::new().await;
    let narrowed = include_str!("../../docker/k8s/base/rbac.yaml").replace(
        r#"["create", "get", "list", "watch", "delete"]"#,
        r#"["get", "list", "watch", "delete"]"#,
    );
    cluster.apply_rbac(&narrowed);
    let app = cluster
        .spawn_service_as(backend, cluster.service_account_client().await)
        .await;

    let id = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": "true"}))
        .await);

    let path = format!("/v1/submissions/{id}");
    let waiting = eventually(
        "the refusal to be explained",
        Duration::from_secs(60),
        || async {
            let submission: Value = app.get(&path).await.json().await.ok()?;
            submission["message"]
                .as_str()
                .is_some_and(|m| m.contains("forbidden"))
                .then_some(submission)
        },
    )
    .await;
    assert_eq!(waiting["state"], "queued", "{waiting}");
    assert!(
        waiting["message"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot create resource \"jobs\""),
        "{waiting}"
    );

    // Not for ever: after a few attempts, about half a minute, the submission fails and says why.
    let failed = eventually(
        "the refused submission to fail",
        Duration::from_secs(90),
        || async {
            let submission: Value = app.get(&path).await.json().await.ok()?;
            (submission["state"] == "failed").then_some(submission)
        },
    )
    .await;
    let message = failed["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("refused the Job 6 times") && message.contains("forbidden"),
        "{failed}"
    );
}
on_the_cluster!(a_role_without_create_refuses_submissions_with_a_clear_message_then_fails_them);

async fn the_shipped_role_grants_nothing_beyond_what_the_service_uses(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let client = cluster.service_account_client().await;
    let ready = json(app.get("/readyz").await, StatusCode::OK).await;
    assert_eq!(ready["ready"], true);

    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), &cluster.namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &cluster.namespace);
    let elsewhere: Api<Job> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(body!({
        "metadata": {"name": "direct"},
        "spec": {"containers": [{"name": "c", "image": PAYLOAD_IMAGE}]}
    }))
    .expect("pod");

    let forbidden = |result: Result<(), kube::Error>| matches!(result, Err(kube::Error::Api(status)) if status.code == 403);
    assert!(
        forbidden(secrets.list(&ListParams::default()).await.map(drop)),
        "secrets are readable"
    );
    assert!(
        forbidden(pods.create(&Default::default(), &pod).await.map(drop)),
        "pods can be created directly"
    );
    assert!(
        forbidden(pods.delete("direct", &Default::default()).await.map(drop)),
        "pods can be deleted"
    );
    assert!(
        forbidden(elsewhere.list(&ListParams::default()).await.map(drop)),
        "Jobs of another namespace are visible"
    );
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(client.clone(), &cluster.namespace);
    assert!(
        events.list(&ListParams::default()).await.is_ok(),
        "events are not listable (describe needs them)"
    );
    assert!(
        forbidden(
            events
                .delete_collection(&Default::default(), &ListParams::default())
                .await
                .map(drop)
        ),
        "events can be deleted"
    );
}
on_the_cluster!(the_shipped_role_grants_nothing_beyond_what_the_service_uses);

async fn another_user_can_neither_see_follow_nor_cancel_a_running_submission(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let bob = app.client_for("bob", false, false).await;
    let portal = app.client_for("portal", false, true).await;
    let gate = cluster.gate("alices-gate");
    let running = run_gated(&app, &gate).await;
    let id = id(&running);

    for path in [
        format!("/v1/submissions/{id}"),
        format!("/v1/submissions/{id}/pods"),
        format!("/v1/submissions/{id}/logs?follow=true"),
    ] {
        let response = app.get_as(&bob, &path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let cancel = app
        .post_as(&bob, &format!("/v1/submissions/{id}/cancel"), &body!({}))
        .await;
    assert_eq!(cancel.status(), StatusCode::NOT_FOUND);
    let bulk = app
        .post_as(
            &bob,
            "/v1/submissions/cancel",
            &body!({"state": ["running"]}),
        )
        .await;
    assert_eq!(json(bulk, StatusCode::OK).await["cancelled"], body!([]));
    let still = json(
        app.get(&format!("/v1/submissions/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        still["state"], "running",
        "bob's requests left alice's payload alone"
    );

    let for_alice = portal
        .get(app.url(&format!("/v1/submissions/{id}/pods")))
        .header("x-on-behalf-of", "alice")
        .send()
        .await
        .expect("request");
    assert_eq!(
        for_alice.status(),
        StatusCode::OK,
        "a delegate acts for alice through the header"
    );
    gate.open();
    let (done, _) = follow_states(&app, &id, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "succeeded");
}
on_the_cluster!(another_user_can_neither_see_follow_nor_cancel_a_running_submission);

/// A token's user may keep only so many log follows open (`--follows-per-token-user`): past it a
/// follow is refused with 429 and Retry-After, and closing one frees its place.
async fn log_follows_past_the_cap_are_refused_until_one_closes(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster
        .spawn_service_tuned(backend, |settings| settings.follows_per_user = 2)
        .await;
    let gate = cluster.gate("end");
    let command = format!("echo started; {}", gate.wait_command());
    let id = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": command}))
        .await);
    let path = format!("/v1/submissions/{id}/logs?follow=true");

    let first = app.get(&path).await;
    let second = app.get(&path).await;
    let third = app.get(&path).await;

    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.headers()["retry-after"], "5");
    let problem: Value = third.json().await.expect("problem");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("already follows 2 logs")),
        "{problem}"
    );

    drop(first);
    let again = eventually(
        "a follow to be accepted once one closed",
        Duration::from_secs(30),
        || async {
            let response = app.get(&path).await;
            (response.status() == StatusCode::OK).then_some(response)
        },
    )
    .await;
    drop(again);
    drop(second);
    gate.open();
}
on_the_cluster!(log_follows_past_the_cap_are_refused_until_one_closes);
