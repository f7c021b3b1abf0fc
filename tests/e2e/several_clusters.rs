//! One API over two clusters, each a control plane of its own with its node (the real node's
//! and the simulated node's under `tests/run.sh`): placement in order within a cluster's cap,
//! pinning, logs followed from each cluster, the kubectl-like lists with their CLUSTER column,
//! a bulk cancel that deletes Jobs in both, and TES tasks and webhooks in either.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use serde_json::{Value, json as body};
use submission_helper::domain::placement::Placement;

use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually, follow_states, id};
use crate::on_the_cluster;
use crate::support::{Backend, TestApp, TestDatabase};
use crate::webhook_receiver::{Receiver, verified, webhook_secret};

/// The service over `onsite` and `cloud` (the same namespace in each control plane), as each
/// one's shipped service account, `onsite` capped at `onsite_cap` active Jobs.
async fn spawn_over_both(
    backend: Backend,
    onsite: &TestCluster,
    cloud: &TestCluster,
    placement: Placement,
    onsite_cap: Option<i64>,
) -> TestApp {
    onsite
        .spawn_service_over(
            cloud,
            TestDatabase::new(backend).await,
            placement,
            |settings| {
                if let Some(cap) = onsite_cap {
                    settings.cluster_capacity.insert("onsite".into(), cap);
                }
            },
        )
        .await
}

/// The names of the Jobs of ours in `cluster`'s namespace, as its API server lists them.
async fn jobs_in(cluster: &TestCluster) -> Vec<String> {
    let mut names: Vec<String> = cluster
        .count_per_submission::<Job>()
        .await
        .into_keys()
        .collect();
    names.sort();
    names
}

/// `path`'s `items`, each row's `submission_id` with its `cluster`.
async fn rows(app: &TestApp, path: &str) -> BTreeMap<String, String> {
    let table: Value = app.get(path).await.json().await.expect("table");
    table["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|row| {
            (
                row["submission_id"].as_str().unwrap_or_default().to_owned(),
                row["cluster"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn placement_in_order_within_a_cap_with_pins_and_logs_followed_in_each_cluster(
    backend: Backend,
) {
    // Arrange: onsite takes one Job at a time; cloud takes the overflow
    let onsite = TestCluster::new().await;
    let cloud = onsite.beside().await;
    let app = spawn_over_both(backend, &onsite, &cloud, Placement::Ordered, Some(1)).await;
    let onsite_gate = onsite.gate("held");

    // Act: one held onsite; one free (onsite is full, so cloud); one pinned onsite (waits)
    let held = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "cluster": "onsite",
                       "command": format!("echo held onsite; {}", onsite_gate.wait_command())}))
        .await);
    follow_states(&app, &held, &["running"]).await;
    let overflow = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": "echo overflow to the cloud"}))
        .await);
    let pinned = id(&app
        .submit(
            body!({"image": PAYLOAD_IMAGE, "cluster": "onsite", "command": "echo pinned onsite"}),
        )
        .await);
    let (overflowed, _) = follow_states(&app, &overflow, &["succeeded", "failed"]).await;
    let while_held: Value = app
        .get(&format!("/v1/submissions/{pinned}"))
        .await
        .json()
        .await
        .expect("submission");
    let jobs = rows(&app, "/v1/jobs").await;
    let cloud_jobs = rows(&app, "/v1/jobs?cluster=cloud").await;
    let pods = rows(&app, "/v1/pods").await;
    let (onsite_jobs, cloud_jobs_listed) = (jobs_in(&onsite).await, jobs_in(&cloud).await);
    let follow = app
        .get(&format!("/v1/submissions/{held}/logs?follow=true"))
        .await;
    onsite_gate.open();
    let followed = follow.text().await.expect("log");
    let (held_end, _) = follow_states(&app, &held, &["succeeded", "failed"]).await;
    let (pinned_end, _) = follow_states(&app, &pinned, &["succeeded", "failed"]).await;
    let overflow_log = app
        .get(&format!("/v1/submissions/{overflow}/logs"))
        .await
        .text()
        .await
        .expect("log");
    let pinned_log = app
        .get(&format!("/v1/submissions/{pinned}/logs"))
        .await
        .text()
        .await
        .expect("log");

    // Assert: each where placement put it, and read from there
    assert_eq!(overflowed["state"], "succeeded", "{overflowed}");
    assert_eq!(overflowed["cluster"], "cloud", "{overflowed}");
    assert_eq!(
        while_held["state"], "queued",
        "onsite was full: {while_held}"
    );
    assert_eq!(while_held["cluster"], "onsite", "{while_held}");
    assert_eq!(
        while_held["message"],
        "waits for the cluster onsite it asked for: it is full: 1 active Jobs at most (--cluster-capacity)"
    );
    assert_eq!(
        jobs.get(&held).map(String::as_str),
        Some("onsite"),
        "{jobs:?}"
    );
    assert_eq!(
        jobs.get(&overflow).map(String::as_str),
        Some("cloud"),
        "{jobs:?}"
    );
    assert_eq!(
        cloud_jobs.keys().collect::<Vec<_>>(),
        [&overflow],
        "{cloud_jobs:?}"
    );
    assert_eq!(
        pods.get(&held).map(String::as_str),
        Some("onsite"),
        "{pods:?}"
    );
    assert_eq!(
        onsite_jobs,
        std::slice::from_ref(&held),
        "onsite's API server"
    );
    assert_eq!(
        cloud_jobs_listed,
        std::slice::from_ref(&overflow),
        "cloud's API server"
    );
    assert_eq!(followed, "held onsite\n");
    assert_eq!(held_end["state"], "succeeded", "{held_end}");
    assert_eq!(pinned_end["state"], "succeeded", "{pinned_end}");
    assert_eq!(pinned_end["cluster"], "onsite", "{pinned_end}");
    assert_eq!(overflow_log, "overflow to the cloud\n");
    assert_eq!(pinned_log, "pinned onsite\n");
}
on_the_cluster!(placement_in_order_within_a_cap_with_pins_and_logs_followed_in_each_cluster);

async fn balanced_placement_spreads_work_and_a_bulk_cancel_deletes_the_jobs_in_both_clusters(
    backend: Backend,
) {
    // Arrange: two held payloads pinned to each cluster, all of one campaign
    let onsite = TestCluster::new().await;
    let cloud = onsite.beside().await;
    let app = spawn_over_both(backend, &onsite, &cloud, Placement::Balanced, None).await;
    let mut held = Vec::new();
    for (cluster, gate) in [("onsite", onsite.gate("g")), ("cloud", cloud.gate("g"))] {
        for _ in 0..2 {
            held.push(id(&app
                .submit(body!({"image": PAYLOAD_IMAGE, "cluster": cluster,
                               "labels": {"campaign": "spanning"},
                               "command": gate.wait_command()}))
                .await));
        }
    }
    for id in &held {
        follow_states(&app, id, &["running"]).await;
    }
    // Two unpinned ones, placed balanced: the first where there is a tie goes to the first
    // cluster, the second to the other, now less busy
    let mut spread = Vec::new();
    for _ in 0..2 {
        let sent = app
            .submit(
                body!({"image": PAYLOAD_IMAGE, "labels": {"campaign": "spanning"},
                           "command": "sleep 600"}),
            )
            .await;
        let (running, _) = follow_states(&app, &id(&sent), &["running"]).await;
        spread.push(running["cluster"].as_str().unwrap_or_default().to_owned());
        held.push(id(&sent));
    }

    // Act
    let cancelled: Value = app
        .post_json(
            "/v1/submissions/cancel",
            &body!({"labels": {"campaign": "spanning"}}),
        )
        .await
        .json()
        .await
        .expect("cancel answer");

    // Assert: all six cancelled, and their Jobs gone from both API servers
    assert_eq!(spread, ["onsite", "cloud"], "balanced placement");
    assert_eq!(
        cancelled["cancelled"].as_array().map(Vec::len),
        Some(6),
        "{cancelled}"
    );
    for cluster in [&onsite, &cloud] {
        eventually(
            "the cancelled Jobs to be deleted",
            Duration::from_secs(60),
            || async { jobs_in(cluster).await.is_empty().then_some(()) },
        )
        .await;
    }
    for id in &held {
        let (ended, _) = follow_states(&app, id, &["cancelled"]).await;
        assert_eq!(ended["state"], "cancelled");
    }
}
on_the_cluster!(
    balanced_placement_spreads_work_and_a_bulk_cancel_deletes_the_jobs_in_both_clusters
);

async fn a_merge_waits_for_samples_in_both_clusters_and_each_ones_events_come_from_its_own(
    backend: Backend,
) {
    // Arrange: a sample in each cluster and a merge of both, placed wherever there is room
    let onsite = TestCluster::new().await;
    let cloud = onsite.beside().await;
    let app = spawn_over_both(backend, &onsite, &cloud, Placement::Balanced, None).await;

    // Act
    let stored: Value = app
        .post_json(
            "/v1/submissions/batch",
            &body!({"submissions": [
                {"name": "sample-onsite", "image": PAYLOAD_IMAGE, "cluster": "onsite",
                 "command": "echo onsite"},
                {"name": "sample-cloud", "image": PAYLOAD_IMAGE, "cluster": "cloud",
                 "command": "echo cloud"},
                {"name": "merge", "image": PAYLOAD_IMAGE, "command": "echo merged",
                 "depends_on": ["sample-onsite", "sample-cloud"]},
            ]}),
        )
        .await
        .json()
        .await
        .expect("batch");
    let ids: Vec<String> = stored["submissions"]
        .as_array()
        .expect("submissions")
        .iter()
        .map(id)
        .collect();
    let mut ended = Vec::new();
    for id in &ids {
        ended.push(
            follow_states(&app, id, &["succeeded", "failed", "cancelled"])
                .await
                .0,
        );
    }
    // The job controller of each sample's cluster reported creating its pod.
    let mut created = Vec::new();
    for id in &ids[..2] {
        created.push(
            eventually("its Job's events", Duration::from_secs(30), || async {
                let events: Value = app
                    .get(&format!("/v1/submissions/{id}/cluster-events"))
                    .await
                    .json()
                    .await
                    .ok()?;
                events["items"]
                    .as_array()?
                    .iter()
                    .find(|event| event["reason"] == "SuccessfulCreate")
                    .cloned()
            })
            .await,
        );
    }

    // Assert: each sample in its cluster, its events from there; the merge ran once both had
    // succeeded
    assert_eq!(ended[0]["cluster"], "onsite", "{}", ended[0]);
    assert_eq!(ended[1]["cluster"], "cloud", "{}", ended[1]);
    for submission in &ended {
        assert_eq!(submission["state"], "succeeded", "{submission}");
    }
    let merge_started = ended[2]["started_at"].as_str().expect("started");
    for sample in &ended[..2] {
        let finished = sample["finished_at"].as_str().expect("finished");
        assert!(
            finished <= merge_started,
            "{sample} ended after the merge started"
        );
    }
    for (event, id) in created.iter().zip(&ids) {
        let job = id.replace('-', "");
        assert!(
            event["message"].as_str().is_some_and(|m| m.contains(&job)),
            "{event}"
        );
    }
}
on_the_cluster!(a_merge_waits_for_samples_in_both_clusters_and_each_ones_events_come_from_its_own);

async fn a_tes_task_pinned_by_its_backend_parameter_and_webhooks_work_in_either_cluster(
    backend: Backend,
) {
    // Arrange: a receiver of webhooks; placement in order, so only a pin puts work in cloud
    let onsite = TestCluster::new().await;
    let cloud = onsite.beside().await;
    let receiver = Receiver::start(0).await;
    let app = onsite
        .spawn_service_over(
            &cloud,
            TestDatabase::new(backend).await,
            Placement::Ordered,
            |settings| settings.defaults.allowed.notify_hosts = vec!["127.0.0.1".into()],
        )
        .await;
    let secret = webhook_secret(&app.database.url).await;

    // Act: a TES task pinned to cloud, and a notifying submission in each cluster
    let task = body!({"name": "pinned-task",
                      "executors": [{"image": PAYLOAD_IMAGE, "command": ["echo", "from cloud"]}],
                      "resources": {"backend_parameters": {"cluster": "cloud"}}});
    let created: Value = app
        .post_json("/ga4gh/tes/v1/tasks", &task)
        .await
        .json()
        .await
        .expect("created task");
    let task_id = created["id"].as_str().unwrap_or_default().to_owned();
    let mut notifying = Vec::new();
    for cluster in ["onsite", "cloud"] {
        notifying.push(id(&app
            .submit(body!({"image": PAYLOAD_IMAGE, "command": "echo notified",
                           "cluster": cluster, "notify_url": receiver.url}))
            .await));
    }
    let completed = eventually(
        "the TES task to complete",
        Duration::from_secs(120),
        || async {
            let task: Value = app
                .get(&format!("/ga4gh/tes/v1/tasks/{task_id}?view=FULL"))
                .await
                .json()
                .await
                .ok()?;
            (task["state"] == "COMPLETE" || task["state"].as_str()?.ends_with("ERROR"))
                .then_some(task)
        },
    )
    .await;
    let ends = eventually(
        "a webhook of each submission's success",
        Duration::from_secs(120),
        || async {
            let events: Vec<Value> = receiver
                .accepted()
                .iter()
                .map(|received| verified(received, &secret))
                .collect();
            let ended = |id: &String| {
                events
                    .iter()
                    .any(|event| event["id"] == id.as_str() && event["state"] == "succeeded")
            };
            notifying.iter().all(ended).then_some(events)
        },
    )
    .await;

    // Assert: the task ran in cloud and kept its parameter; each submission told of its end
    let placed: Value = app
        .get(&format!("/v1/submissions/{task_id}"))
        .await
        .json()
        .await
        .expect("the task's submission");
    assert_eq!(completed["state"], "COMPLETE", "{completed}");
    assert_eq!(
        completed["resources"]["backend_parameters"],
        body!({"cluster": "cloud"}),
        "{completed}"
    );
    assert!(
        completed["logs"][0]["logs"][0]["stdout"]
            .as_str()
            .is_some_and(|out| out.contains("from cloud")),
        "{completed}"
    );
    assert_eq!(placed["cluster"], "cloud", "{placed}");
    assert!(jobs_in(&cloud).await.contains(&task_id), "{placed}");
    assert!(!jobs_in(&onsite).await.contains(&task_id), "{placed}");
    for (id, cluster) in notifying.iter().zip(["onsite", "cloud"]) {
        let states: Vec<&str> = ends
            .iter()
            .filter(|event| event["id"] == id.as_str())
            .filter_map(|event| event["state"].as_str())
            .collect();
        assert_eq!(states.first(), Some(&"queued"), "{cluster}: {states:?}");
        assert_eq!(states.last(), Some(&"succeeded"), "{cluster}: {states:?}");
    }
}
on_the_cluster!(a_tes_task_pinned_by_its_backend_parameter_and_webhooks_work_in_either_cluster);
