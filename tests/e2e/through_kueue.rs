//! Submitting through Kueue (`--kueue`), against Kueue itself: built from its Go module and
//! run beside the simulated node's control plane by `tests/control-plane.sh kueue-up`, which
//! `tests/run.sh` does after the rest of the suite (Kueue's Job webhook would hold every other
//! test's Jobs), on Kubernetes 1.34+ only (Kueue's own limit).
//!
//! Each test has a ClusterQueue of its own that admits only its namespace, so tests never share
//! a quota; a LocalQueue `analysis` in the namespace is the service's default queue.

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use reqwest::StatusCode;
use serde_json::{Value, json as body};
use submission_helper::cluster::kueue_settings::KueueSettings;
use submission_helper::domain::KueueDefaults;

use crate::browser::Browser;
use crate::harness::{Gate, PAYLOAD_IMAGE, TestCluster, eventually, follow_states, id, metric};
use crate::support::{Backend, TestApp, fields, json, problem};

/// A test that needs Kueue: left out of a plain `cargo test` and of the suite's main run.
macro_rules! with_kueue {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            #[ignore = "needs Kueue beside the local control plane: run tests/run.sh"]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }

            #[tokio::test]
            #[ignore = "needs Kueue beside the local control plane, and Postgres: run tests/run.sh"]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await
            }
        }
    };
}

/// Kueue's visibility server, as `tests/control-plane.sh kueue-up` wrote it in its env file.
fn visibility_url() -> http::Uri {
    let url = std::env::var("SH_TEST_KUEUE_VISIBILITY_URL").unwrap_or_else(|_| {
        panic!(
            "SH_TEST_KUEUE_VISIBILITY_URL is not set: this test needs Kueue (tests/control-plane.sh kueue-up); run it with tests/run.sh"
        )
    });
    url.parse().expect("a URL")
}

/// Applies `manifest` with kubectl as the cluster's admin; server-side, so that tests applying
/// the objects they share at once all succeed.
fn kubectl_apply(cluster: &TestCluster, manifest: &str) {
    let file = cluster.scratch.path().join("kueue.yaml");
    std::fs::write(&file, manifest).expect("write manifest");
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(["apply", "--server-side", "--force-conflicts", "-f"])
        .arg(&file)
        .output()
        .expect("run kubectl");
    assert!(
        output.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The priority classes the tests name.
const PRIORITY_CLASSES: &str = "
apiVersion: kueue.x-k8s.io/v1beta2
kind: WorkloadPriorityClass
metadata: {name: sh-test-high}
value: 1000
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: WorkloadPriorityClass
metadata: {name: sh-test-low}
value: 10
";

/// The namespace's own ClusterQueue with `cpus` of quota (preempting lower priorities within
/// it), its LocalQueue `analysis`, and the priority classes.
fn create_queues(cluster: &TestCluster, cpus: &str) {
    let namespace = &cluster.namespace;
    kubectl_apply(
        cluster,
        &format!(
            "
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {{name: default-flavor}}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {{name: cq-{namespace}}}
spec:
  namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {namespace}}}}}
  preemption: {{withinClusterQueue: LowerPriority}}
  resourceGroups:
    - coveredResources: [cpu, memory]
      flavors:
        - name: default-flavor
          resources:
            - {{name: cpu, nominalQuota: \"{cpus}\"}}
            - {{name: memory, nominalQuota: 64Gi}}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {{name: analysis, namespace: {namespace}}}
spec: {{clusterQueue: cq-{namespace}}}
---
{PRIORITY_CLASSES}"
        ),
    );
}

/// The service as its service account, with the base and Kueue RBAC, submitting through Kueue
/// with `analysis` as the default queue.
async fn spawn_through_kueue(
    cluster: &TestCluster,
    backend: Backend,
    max_suspended: u32,
) -> TestApp {
    spawn_through_kueue_tuned(cluster, backend, max_suspended, |_| {}).await
}

/// [`spawn_through_kueue`], with what the test changes of the settings.
async fn spawn_through_kueue_tuned(
    cluster: &TestCluster,
    backend: Backend,
    max_suspended: u32,
    tune: impl FnOnce(&mut submission_helper::startup::Settings),
) -> TestApp {
    let rbac = include_str!("../../docker/k8s/overlays/kueue/rbac.yaml").replace(
        "name: submission-helper-kueue-submission-helper",
        &format!("name: submission-helper-kueue-{}", cluster.namespace),
    );
    cluster.apply_rbac(&rbac);
    cluster
        .spawn_service_tuned(backend, |settings| {
            through_kueue(settings, max_suspended);
            tune(settings);
        })
        .await
}

fn through_kueue(settings: &mut submission_helper::startup::Settings, max_suspended: u32) {
    settings.defaults.kueue = Some(KueueDefaults {
        default_queue: Some("analysis".into()),
    });
    settings.kueue = Some(KueueSettings {
        max_suspended,
        visibility_url: Some(visibility_url()),
    });
}

async fn get(app: &TestApp, id: &str) -> Value {
    json(
        app.get(&format!("/v1/submissions/{id}")).await,
        StatusCode::OK,
    )
    .await
}

/// A namespace whose queue has one CPU, the service, and a first submission that holds that
/// CPU running until the gate it returns opens.
async fn one_cpu_taken(backend: Backend) -> (TestCluster, TestApp, Gate) {
    let cluster = TestCluster::simulated().await;
    create_queues(&cluster, "1");
    let app = spawn_through_kueue(&cluster, backend, 1000).await;
    let gate = cluster.gate("first");
    let first = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": gate.wait_command(), "cpus": 1}))
        .await);
    follow_states(&app, &first, &["running"]).await;
    (cluster, app, gate)
}

/// Waits until the submission is `pending` and its message says `words`.
async fn pending_saying(app: &TestApp, id: &str, words: &str) -> Value {
    eventually(
        &format!("{id} pending, saying {words:?}"),
        Duration::from_secs(60),
        || async {
            let submission = get(app, id).await;
            (submission["state"] == "pending"
                && submission["message"]
                    .as_str()
                    .is_some_and(|message| message.contains(words)))
            .then_some(submission)
        },
    )
    .await
}

/// What the page shows of a submission (after signing in with the app's token), with a
/// screenshot; `None` where no browser is installed (outside `tests/run.sh`).
async fn the_page_of(app: &TestApp, id: &str, backend: Backend) -> Option<String> {
    let browser = Browser::start(&format!("kueue-{backend:?}"), 1280, 800).await?;
    browser.sign_in(&app.url("/ui"), &app.token).await;
    browser.find("#submit").await;
    browser
        .client
        .goto(&app.url(&format!("/ui#/submissions/{id}")))
        .await
        .expect("open the submission");
    let text = browser
        .wait_for_text("the submission's queue", Duration::from_secs(30), "Queue: ")
        .await;
    browser.screenshot("waiting-in-kueue").await;
    browser.close().await;
    Some(text)
}

async fn a_submission_through_kueue_is_admitted_and_runs(backend: Backend) {
    // Arrange
    let cluster = TestCluster::simulated().await;
    create_queues(&cluster, "4");
    let app = spawn_through_kueue(&cluster, backend, 1000).await;

    // Act
    let created = app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": "echo admitted", "priority_class": "sh-test-low"}))
        .await;
    let id = id(&created);
    let (done, _) = follow_states(&app, &id, &["succeeded", "failed"]).await;

    // Assert: it ran once admitted, and says where it waited
    assert_eq!(done["state"], "succeeded", "{done}");
    let readiness = json(app.get("/readyz").await, StatusCode::OK).await;
    assert_eq!(readiness["kueue"], "ok", "{readiness}");
    assert_eq!(
        done["queue"],
        body!({"name": "analysis", "priority_class": "sh-test-low", "admitted": true, "position": null, "evictions": 0})
    );
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let job = jobs
        .get(done["job_name"].as_str().unwrap_or_default())
        .await
        .expect("its Job");
    let labels = job.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("kueue.x-k8s.io/queue-name").map(String::as_str),
        Some("analysis")
    );
    assert_eq!(
        labels
            .get("kueue.x-k8s.io/priority-class")
            .map(String::as_str),
        Some("sh-test-low")
    );
    assert_eq!(
        job.spec.and_then(|spec| spec.suspend),
        Some(false),
        "Kueue let it run"
    );
}
with_kueue!(a_submission_through_kueue_is_admitted_and_runs);

async fn a_submission_beyond_its_queues_quota_waits_with_kueues_reason_and_runs_when_there_is_room(
    backend: Backend,
) {
    // Arrange: a quota of one CPU, taken by a first submission that runs until its gate opens
    let (_cluster, app, gate) = one_cpu_taken(backend).await;

    // Act
    let second = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": "echo second", "cpus": 1}))
        .await);

    // Assert: pending in Kueue's words, first in its queue
    let waiting = pending_saying(&app, &second, "insufficient unused quota for cpu").await;
    let message = waiting["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("waits in Kueue queue analysis: "),
        "{message}"
    );
    assert_eq!(waiting["queue"]["admitted"], false, "{waiting}");
    assert_eq!(waiting["queue"]["position"], 0, "{waiting}");
    let page = the_page_of(&app, &second, backend).await;
    if let Some(text) = &page {
        assert!(text.contains("insufficient unused quota for cpu"), "{text}");
        assert!(text.contains("Queue: analysis, position 0"), "{text}");
    }

    // Act: the first ends, which frees the quota
    gate.open();

    // Assert
    let (done, _) = follow_states(&app, &second, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["queue"]["admitted"], true, "{done}");
    assert_eq!(done["message"], Value::Null, "{done}");
}
with_kueue!(
    a_submission_beyond_its_queues_quota_waits_with_kueues_reason_and_runs_when_there_is_room
);

async fn a_preempted_submission_waits_again_and_then_succeeds_without_using_a_retry(
    backend: Backend,
) {
    // Arrange: a low-priority submission with no retries to spare holds the whole quota
    let cluster = TestCluster::simulated().await;
    create_queues(&cluster, "1");
    let app = spawn_through_kueue(&cluster, backend, 1000).await;
    let gate = cluster.gate("low");
    let low = id(&app
        .submit(body!({
            "image": PAYLOAD_IMAGE, "command": gate.wait_command(), "cpus": 1,
            "retries": 0, "priority_class": "sh-test-low",
        }))
        .await);
    follow_states(&app, &low, &["running"]).await;

    // Act: a high-priority submission needs the same CPU
    let high = id(&app
        .submit(body!({
            "image": PAYLOAD_IMAGE, "command": "echo urgent", "cpus": 1,
            "priority_class": "sh-test-high",
        }))
        .await);

    // Assert: the low one is pending again, saying why, and the high one runs to its end
    let evicted = pending_saying(&app, &low, "preempted by a higher priority workload").await;
    assert_eq!(evicted["queue"]["evictions"], 1, "{evicted}");
    assert_eq!(evicted["queue"]["admitted"], false, "{evicted}");
    let (urgent, _) = follow_states(&app, &high, &["succeeded", "failed"]).await;
    assert_eq!(urgent["state"], "succeeded", "{urgent}");

    // Act: once admitted again it runs; its gate lets it end
    follow_states(&app, &low, &["running"]).await;
    gate.open();

    // Assert: it succeeded although it had no retry to spare, and users saw it step back
    let (done, _) = follow_states(&app, &low, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["queue"]["evictions"], 1, "{done}");
    let attempts = done["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.len(), 2, "{done}");
    assert_eq!(attempts[0]["reason"], "Suspended", "{done}");
    assert_eq!(
        attempts[0]["counted"], false,
        "the eviction used no retry: {done}"
    );
    assert_eq!(attempts[1]["exit_code"], 0, "{done}");
    let mut stream = app
        .client
        .get(app.url(&format!("/v1/events?id={low}&after=0")))
        .send()
        .await
        .expect("the event stream");
    let stepped_back = "\"previous_state\":\"running\",\"state\":\"pending\"";
    let events = tokio::time::timeout(Duration::from_secs(30), async {
        let mut text = String::new();
        loop {
            let Ok(Some(chunk)) = stream.chunk().await else {
                break;
            };
            text.push_str(&String::from_utf8_lossy(chunk.as_ref()));
            if text.contains(stepped_back) {
                break;
            }
        }
        text
    })
    .await
    .unwrap_or_default();
    assert!(events.contains(stepped_back), "{events}");
}
with_kueue!(a_preempted_submission_waits_again_and_then_succeeds_without_using_a_retry);

async fn cancelling_a_waiting_submission_deletes_its_suspended_job(backend: Backend) {
    // Arrange: no quota at all, so nothing is admitted
    let cluster = TestCluster::simulated().await;
    create_queues(&cluster, "0");
    let app = spawn_through_kueue(&cluster, backend, 1000).await;
    let waiting = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": "echo never"}))
        .await);
    let pending = pending_saying(&app, &waiting, "waits in Kueue queue analysis").await;
    let job_name = pending["job_name"].as_str().unwrap_or_default().to_owned();

    // Act
    let cancelled = app
        .post_json(&format!("/v1/submissions/{waiting}/cancel"), &body!({}))
        .await;

    // Assert
    let cancelled = json(cancelled, StatusCode::OK).await;
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    eventually(
        "the suspended Job deleted",
        Duration::from_secs(30),
        || async {
            jobs.get_opt(&job_name)
                .await
                .ok()
                .flatten()
                .is_none_or(|job| job.metadata.deletion_timestamp.is_some())
                .then_some(())
        },
    )
    .await;
}
with_kueue!(cancelling_a_waiting_submission_deletes_its_suspended_job);

async fn a_queue_or_priority_class_the_cluster_lacks_is_refused(backend: Backend) {
    // Arrange
    let cluster = TestCluster::simulated().await;
    create_queues(&cluster, "1");
    let app = spawn_through_kueue(&cluster, backend, 1000).await;

    // Act
    let refused = app
        .post_json(
            "/v1/submissions",
            &body!({
                "image": PAYLOAD_IMAGE, "command": "true",
                "queue": "no-such-queue", "priority_class": "no-such-class",
            }),
        )
        .await;

    // Assert: both named, and nothing stored
    let problem = problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&problem), ["queue", "priority_class"], "{problem}");
    assert!(
        problem
            .to_string()
            .contains("no Kueue LocalQueue \\\"no-such-queue\\\""),
        "{problem}"
    );
    let listed = json(app.get("/v1/submissions").await, StatusCode::OK).await;
    assert_eq!(listed["items"], body!([]), "{listed}");
}
with_kueue!(a_queue_or_priority_class_the_cluster_lacks_is_refused);

/// How many of the namespace's Jobs are suspended (or not, as `suspended` says) and not
/// complete; `None` if they could not be listed.
async fn unfinished(jobs: &Api<Job>, suspended: bool) -> Option<usize> {
    let listed = jobs.list(&ListParams::default()).await.ok()?;
    let count = listed
        .items
        .iter()
        .filter(|job| job.spec.as_ref().and_then(|spec| spec.suspend) == Some(suspended))
        .filter(|job| {
            job.status
                .as_ref()
                .and_then(|status| status.completion_time.as_ref())
                .is_none()
        })
        .count();
    Some(count)
}

async fn no_more_than_the_allowed_number_of_jobs_wait_suspended(backend: Backend) {
    // Arrange: nothing can be admitted, and at most two Jobs may wait
    let cluster = TestCluster::simulated().await;
    create_queues(&cluster, "0");
    let app = spawn_through_kueue(&cluster, backend, 2).await;
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);

    // Act
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(id(&app
            .submit(body!({"image": PAYLOAD_IMAGE, "command": format!("echo {n}")}))
            .await));
    }

    // Assert: the first two wait in Kueue, the rest in the service's own queue
    for id in &ids[..2] {
        pending_saying(&app, id, "waits in Kueue queue analysis").await;
    }
    for id in &ids[2..] {
        assert_eq!(get(&app, id).await["state"], "queued");
    }

    // Act: quota for everything
    create_queues(&cluster, "8");

    // Assert: all run, and never more than two Jobs waited suspended at once
    let most_suspended = std::cell::Cell::new(0);
    eventually("all five succeeded", Duration::from_secs(120), || async {
        let suspended = unfinished(&jobs, true).await?;
        most_suspended.set(most_suspended.get().max(suspended));
        let mut succeeded = 0;
        for id in &ids {
            if get(&app, id).await["state"] == "succeeded" {
                succeeded += 1;
            }
        }
        (succeeded == ids.len()).then_some(())
    })
    .await;
    let most = most_suspended.get();
    assert!(most <= 2, "{most} Jobs waited suspended at once");
}
with_kueue!(no_more_than_the_allowed_number_of_jobs_wait_suspended);

async fn a_users_limit_counts_only_admitted_jobs_the_rest_wait_in_kueue_at_our_gate(
    backend: Backend,
) {
    // Arrange: quota for all three, and a limit of one running Job per user
    let cluster = TestCluster::simulated().await;
    create_queues(&cluster, "8");
    let app = spawn_through_kueue_tuned(&cluster, backend, 1000, |settings| {
        settings.dispatch.per_user = Some(1);
    })
    .await;
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let gate = cluster.gate("first");

    // Act
    let first = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": gate.wait_command()}))
        .await);
    follow_states(&app, &first, &["running"]).await;
    let rest: Vec<String> = {
        let mut rest = Vec::new();
        for n in 0..2 {
            rest.push(id(&app
                .submit(body!({"image": PAYLOAD_IMAGE, "command": format!("echo {n}")}))
                .await));
        }
        rest
    };

    // Assert: the other two have their Jobs, waiting in Kueue behind our gate with room in
    // the quota, and say why
    for id in &rest {
        let waiting = pending_saying(&app, id, "held back by its limit of concurrent Jobs").await;
        assert_eq!(waiting["queue"]["admitted"], false, "{waiting}");
        let job = jobs
            .get(waiting["job_name"].as_str().unwrap_or_default())
            .await
            .expect("its Job exists");
        assert_eq!(
            job.metadata
                .annotations
                .unwrap_or_default()
                .get("kueue.x-k8s.io/admission-gated-by")
                .map(String::as_str),
            Some("submission-helper.io/max-concurrent")
        );
        assert_eq!(job.spec.and_then(|spec| spec.suspend), Some(true));
    }

    // Act: the first ends
    gate.open();

    // Assert: the other two run one at a time, each once admitted, and never two at once
    let most_admitted = std::cell::Cell::new(0);
    eventually("all three succeeded", Duration::from_secs(120), || async {
        let admitted = unfinished(&jobs, false).await?;
        most_admitted.set(most_admitted.get().max(admitted));
        let mut succeeded = 0;
        for id in std::iter::once(&first).chain(&rest) {
            if get(&app, id).await["state"] == "succeeded" {
                succeeded += 1;
            }
        }
        (succeeded == 3).then_some(())
    })
    .await;
    let most = most_admitted.get();
    assert!(most <= 1, "{most} Jobs ran at once under a limit of one");
}
with_kueue!(a_users_limit_counts_only_admitted_jobs_the_rest_wait_in_kueue_at_our_gate);

async fn without_kueue_in_the_cluster_the_service_starts_and_says_it_is_not_ready(
    backend: Backend,
) {
    // Arrange: the real node's control plane, where Kueue was never installed
    let cluster = TestCluster::new().await;
    let app = cluster
        .spawn_service_tuned(backend, |settings| {
            settings.kueue = Some(KueueSettings::default());
        })
        .await;

    // Act
    let readiness = app.get("/readyz").await;

    // Assert
    let readiness = json(readiness, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(readiness["database"], "ok", "{readiness}");
    assert_eq!(readiness["cluster"], "ok", "{readiness}");
    assert_eq!(
        readiness["kueue"],
        "Kueue is not installed in the cluster (no kueue.x-k8s.io API)"
    );
}
with_kueue!(without_kueue_in_the_cluster_the_service_starts_and_says_it_is_not_ready);

async fn after_a_restart_a_waiting_submission_still_says_kueues_reason(backend: Backend) {
    // Arrange: a first submission holds the only CPU; a second waits for it
    let (cluster, app, gate) = one_cpu_taken(backend).await;
    let second = id(&app
        .submit(body!({"image": PAYLOAD_IMAGE, "command": "echo second", "cpus": 1}))
        .await);
    pending_saying(&app, &second, "insufficient unused quota for cpu").await;

    // Act: the service stops as in a crash and starts again on the same database
    let database = app.stop();
    let app = TestApp::builder()
        .with_database(database)
        .with_cluster(cluster.service_account_cluster().await)
        .with_settings(|settings| {
            settings.defaults = crate::harness::test_defaults();
            through_kueue(settings, 1000);
        })
        .spawn()
        .await;

    // Assert: once both submissions were reconciled after the restart's lists, the waiting
    // one still says why in Kueue's words
    eventually(
        "both submissions reconciled after the restart",
        Duration::from_secs(30),
        || async {
            let done = metric(&app, "submission_helper_reconciles_total{result=\"ok\"}").await;
            (done >= 2.0).then_some(())
        },
    )
    .await;
    let waiting = get(&app, &second).await;
    assert_eq!(waiting["state"], "pending", "{waiting}");
    let message = waiting["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("insufficient unused quota for cpu"),
        "{message}"
    );

    // Act: the first ends
    gate.open();

    // Assert
    let (done, _) = follow_states(&app, &second, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "succeeded", "{done}");
}
with_kueue!(after_a_restart_a_waiting_submission_still_says_kueues_reason);
