//! Status stays true when the cluster changes behind the service's back or the service is away.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use reqwest::StatusCode;
use serde_json::{Value, json as body};

use crate::harness::{PAYLOAD_IMAGE, TestCluster, follow_states, id, run_gated};
use crate::on_the_cluster;
use crate::support::{Backend, eventually, json};

async fn a_job_deleted_by_hand_is_recorded_as_deleted(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let gate = cluster.gate("never");
    let running = run_gated(&app, &gate).await;
    let id = id(&running);

    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    jobs.delete(
        running["job_name"].as_str().expect("job name"),
        &DeleteParams::background(),
    )
    .await
    .expect("kubectl delete job");

    let (failed, _) = follow_states(&app, &id, &["failed"]).await;
    assert!(
        failed["message"]
            .as_str()
            .unwrap_or_default()
            .contains("deleted"),
        "{failed}"
    );
}
on_the_cluster!(a_job_deleted_by_hand_is_recorded_as_deleted);

async fn a_job_deleted_while_the_service_was_away_is_found_at_restart(backend: Backend) {
    let cluster = TestCluster::new().await;
    let first = cluster.spawn_service(backend).await;
    let gate = cluster.gate("never");
    let running = run_gated(&first, &gate).await;
    let id = id(&running);
    let database = first.stop();

    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    jobs.delete(
        running["job_name"].as_str().expect("job name"),
        &DeleteParams::background(),
    )
    .await
    .expect("kubectl delete job");
    let second = cluster
        .spawn_service_on(database, cluster.service_account_client().await)
        .await;

    let (failed, _) = follow_states(&second, &id, &["failed"]).await;
    assert!(
        failed["message"]
            .as_str()
            .unwrap_or_default()
            .contains("deleted"),
        "{failed}"
    );
}
on_the_cluster!(a_job_deleted_while_the_service_was_away_is_found_at_restart);

/// A pod deleted by hand stops as a failed attempt (a current kubelet gives it the Failed phase),
/// so it uses up one of the submission's retries; with one to spare the Job carries on.
async fn a_pod_deleted_by_hand_uses_a_retry_and_the_submission_still_succeeds(backend: Backend) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let gate = cluster.gate("finish");
    let request =
        body!({"image": PAYLOAD_IMAGE, "command": gate.wait_command(), "backoff_limit": 1});
    let id = id(&app.submit(request).await);
    follow_states(&app, &id, &["running"]).await;
    let pods: Api<Pod> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let selector = format!("submission-helper.io/submission-id={id}");
    let first = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("pods")
        .items;
    let first_name = first[0].metadata.name.clone().expect("pod name");

    pods.delete(&first_name, &DeleteParams::default())
        .await
        .expect("kubectl delete pod");

    let listed = crate::harness::eventually(
        "a replacement pod to run",
        Duration::from_secs(60),
        || async {
            let listed = json(
                app.get(&format!("/v1/submissions/{id}/pods")).await,
                StatusCode::OK,
            )
            .await;
            let items = listed["items"].as_array()?.clone();
            items
                .iter()
                .any(|pod| pod["name"] != first_name.as_str() && pod["phase"] == "Running")
                .then_some(items)
        },
    )
    .await;
    assert!(
        listed
            .iter()
            .all(|pod| pod["name"] != first_name.as_str() || pod["status"] == "Terminating"),
        "{listed:?}"
    );
    gate.open();
    let (done, _) = follow_states(&app, &id, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "succeeded", "{done}");
}
on_the_cluster!(a_pod_deleted_by_hand_uses_a_retry_and_the_submission_still_succeeds);

async fn submissions_wait_for_an_unreachable_api_server_and_run_once_it_answers(backend: Backend) {
    let cluster = TestCluster::new().await;
    cluster.apply_rbac(include_str!("../../docker/k8s/base/rbac.yaml"));
    let away = cluster
        .spawn_service_as(backend, cluster.unreachable_client().await)
        .await;
    let requests: Vec<Value> = (0..20)
        .map(|i| body!({"image": PAYLOAD_IMAGE, "command": format!("echo {i}")}))
        .collect();
    let stored = json(
        away.post_json("/v1/submissions/batch", &body!({"submissions": requests}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let ids: Vec<String> = stored["submissions"]
        .as_array()
        .expect("submissions")
        .iter()
        .map(id)
        .collect();
    let waiting = crate::harness::eventually(
        "the wait to be explained",
        Duration::from_secs(60),
        || async {
            let submission = json(
                away.get(&format!("/v1/submissions/{}", ids[0])).await,
                StatusCode::OK,
            )
            .await;
            submission["message"]
                .as_str()
                .is_some_and(|m| m.contains("waiting to create the Job"))
                .then_some(submission)
        },
    )
    .await;
    assert_eq!(waiting["state"], "queued");
    let ready = json(away.get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(ready["database"], "ok");
    let database = away.stop();

    let back = cluster
        .spawn_service_on(database, cluster.service_account_client().await)
        .await;

    for id in &ids {
        let (done, _) = follow_states(&back, id, &["succeeded", "failed"]).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let listed = jobs
        .list(&ListParams::default().labels("app=submission-helper"))
        .await
        .expect("jobs");
    assert_eq!(
        listed.items.len(),
        ids.len(),
        "exactly one Job per submission"
    );
}
on_the_cluster!(submissions_wait_for_an_unreachable_api_server_and_run_once_it_answers);

async fn a_job_removed_by_its_ttl_as_soon_as_it_succeeded_is_recorded_as_succeeded(
    backend: Backend,
) {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(backend).await;
    let request =
        body!({"image": PAYLOAD_IMAGE, "command": "echo done", "ttl_seconds_after_finished": 0});
    let id = id(&app.submit(request).await);
    let job_name = format!("sh-{}", id.replace('-', ""));
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);

    let (done, _) = follow_states(&app, &id, &["succeeded", "failed"]).await;
    crate::harness::eventually(
        "the TTL controller to remove the Job",
        Duration::from_secs(60),
        || async { jobs.get_opt(&job_name).await.ok()?.is_none().then_some(()) },
    )
    .await;

    assert_eq!(done["state"], "succeeded", "{done}");
    let later = json(
        app.get(&format!("/v1/submissions/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        later["state"], "succeeded",
        "the deletion did not undo the success: {later}"
    );
}
on_the_cluster!(a_job_removed_by_its_ttl_as_soon_as_it_succeeded_is_recorded_as_succeeded);

async fn a_service_restarted_with_another_namespace_follows_its_former_jobs_to_their_end(
    backend: Backend,
) {
    // Arrange: two held payloads in the first namespace; the service restarted in another,
    // its service account given the same rights in the first
    let first_namespace = TestCluster::new().await;
    let other_namespace = TestCluster::new().await;
    let first = first_namespace.spawn_service(backend).await;
    let gate = first_namespace.gate("finish");
    let request = body!({"image": PAYLOAD_IMAGE,
                         "command": format!("echo before the move; {}", gate.wait_command())});
    let finishing = id(&first.submit(request.clone()).await);
    let to_cancel = first.submit(request).await;
    let cancelled = id(&to_cancel);
    for id in [&finishing, &cancelled] {
        follow_states(&first, id, &["running"]).await;
    }
    let database = first.stop();
    other_namespace.apply_rbac(include_str!("../../docker/k8s/base/rbac.yaml"));
    first_namespace.apply_rbac(&format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: submission-helper-moved
  namespace: submission-helper
subjects:
  - kind: ServiceAccount
    name: submission-helper
    namespace: {}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: submission-helper
",
        other_namespace.namespace
    ));
    let other = other_namespace
        .spawn_service_on(database, other_namespace.service_account_client().await)
        .await;

    // Act: read, cancel one, let the other finish
    let viewed = json(
        other.get(&format!("/v1/submissions/{finishing}")).await,
        StatusCode::OK,
    )
    .await;
    let pods = eventually(
        "its pod, read in the first namespace",
        Duration::from_secs(60),
        || async {
            let pods = json(
                other
                    .get(&format!("/v1/submissions/{finishing}/pods"))
                    .await,
                StatusCode::OK,
            )
            .await;
            (pods["items"].as_array().map(Vec::len) == Some(1)).then_some(pods)
        },
    )
    .await;
    let log = other
        .get(&format!("/v1/submissions/{finishing}/logs"))
        .await
        .text()
        .await
        .expect("log");
    other
        .post_json(&format!("/v1/submissions/{cancelled}/cancel"), &body!({}))
        .await;
    let jobs: Api<Job> = Api::namespaced(first_namespace.admin.clone(), &first_namespace.namespace);
    let cancelled_job = to_cancel["job_name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    eventually(
        "the cancelled Job deleted from the first namespace",
        Duration::from_secs(60),
        || async {
            let names: Vec<String> = jobs
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .filter_map(|job| job.metadata.name)
                .collect();
            (!names.contains(&cancelled_job)).then_some(())
        },
    )
    .await;
    gate.open();
    let (finished, _) = follow_states(&other, &finishing, &["succeeded", "failed"]).await;

    // Assert: followed where its Job is, as if the service had never moved
    assert_eq!(viewed["state"], "running", "{viewed}");
    assert!(viewed["message"].is_null(), "no note: {viewed}");
    assert_eq!(pods["items"][0]["phase"], "Running", "{pods}");
    assert!(log.contains("before the move"), "{log}");
    assert_eq!(finished["state"], "succeeded", "{finished}");
    let (ended, _) = follow_states(&other, &cancelled, &["cancelled"]).await;
    assert_eq!(ended["state"], "cancelled", "{ended}");
}
on_the_cluster!(a_service_restarted_with_another_namespace_follows_its_former_jobs_to_their_end);

async fn a_service_without_rights_in_its_former_namespace_says_so_and_changes_nothing(
    backend: Backend,
) {
    let first_namespace = TestCluster::new().await;
    let other_namespace = TestCluster::new().await;
    let first = first_namespace.spawn_service(backend).await;
    let gate = first_namespace.gate("finish");
    let running = id(&run_gated(&first, &gate).await);
    let database = first.stop();

    // Restarted on the same database with another --namespace, and no rights in the first: it
    // runs its own work there...
    other_namespace.apply_rbac(include_str!("../../docker/k8s/base/rbac.yaml"));
    let other = other_namespace
        .spawn_service_on(database, other_namespace.service_account_client().await)
        .await;
    let own = id(&other
        .submit(body!({"image": PAYLOAD_IMAGE, "command": "echo here"}))
        .await);
    let (done, _) = follow_states(&other, &own, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    // ...says it cannot watch the first namespace, and changes nothing there.
    let untouched = eventually(
        "a note that the first namespace cannot be watched",
        Duration::from_secs(60),
        || async {
            let view = json(
                other.get(&format!("/v1/submissions/{running}")).await,
                StatusCode::OK,
            )
            .await;
            view["message"].is_string().then_some(view)
        },
    )
    .await;
    assert_eq!(untouched["state"], "running", "{untouched}");
    let message = untouched["message"].as_str().unwrap_or_default();
    let expected = format!(
        "its Job is in the namespace {}, which this service has not been able to watch since ",
        first_namespace.namespace
    );
    assert!(
        message.starts_with(&expected) && message.ends_with("; as last seen"),
        "{untouched}"
    );

    // Back in the first namespace, it is followed to its end.
    let database = other.stop();
    let back = first_namespace
        .spawn_service_on(database, first_namespace.service_account_client().await)
        .await;
    gate.open();
    let (finished, _) = follow_states(&back, &running, &["succeeded", "failed"]).await;
    assert_eq!(finished["state"], "succeeded", "{finished}");
}
on_the_cluster!(a_service_without_rights_in_its_former_namespace_says_so_and_changes_nothing);

/// Every Job name the API server announces in the namespace from now on, created and deleted
/// a moment later included (a list afterwards would not show those).
fn record_every_job(cluster: &TestCluster) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use futures::StreamExt;
    use kube::runtime::watcher::{self, Event};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let record = seen.clone();
    tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher::watcher(jobs, watcher::Config::default()));
        while let Some(event) = events.next().await {
            if let Ok(Event::Apply(job) | Event::InitApply(job)) = event
                && let (Some(name), Ok(mut seen)) = (job.metadata.name, record.lock())
                && !seen.contains(&name)
            {
                seen.push(name);
            }
        }
    });
    seen
}

async fn a_submission_cancelled_before_its_job_exists_never_gets_one(backend: Backend) {
    let cluster = TestCluster::new().await;
    cluster.apply_rbac(include_str!("../../docker/k8s/base/rbac.yaml"));
    let away = cluster
        .spawn_service_as(backend, cluster.unreachable_client().await)
        .await;
    let stored = json(
        away.post_json(
            "/v1/submissions/batch",
            &body!({"submissions": (0..3)
                .map(|n| body!({"image": PAYLOAD_IMAGE, "command": format!("echo {n}")}))
                .collect::<Vec<_>>()}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let ids: Vec<String> = stored["submissions"]
        .as_array()
        .expect("submissions")
        .iter()
        .map(id)
        .collect();
    let cancelled = json(
        away.post_json(&format!("/v1/submissions/{}/cancel", ids[1]), &body!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let database = away.stop();
    let seen = record_every_job(&cluster);

    let back = cluster
        .spawn_service_on(database, cluster.service_account_client().await)
        .await;

    for id in [&ids[0], &ids[2]] {
        let (done, _) = follow_states(&back, id, &["succeeded", "failed"]).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    let still = json(
        back.get(&format!("/v1/submissions/{}", ids[1])).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(still["state"], "cancelled");
    let seen = seen.lock().map(|seen| seen.clone()).unwrap_or_default();
    assert_eq!(seen.len(), 2, "Jobs the API server ever had: {seen:?}");
    assert!(
        !seen
            .iter()
            .any(|name| Some(name.as_str()) == cancelled["job_name"].as_str()),
        "the cancelled submission never had a Job: {seen:?}"
    );
}
on_the_cluster!(a_submission_cancelled_before_its_job_exists_never_gets_one);
