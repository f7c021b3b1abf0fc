//! One of two clusters stops answering: queued work goes to the other, running work there
//! keeps its state while the cluster is merely unreachable, and once it is lost (here after a
//! few seconds; 15 minutes by default) its live submissions run again in the other. When it
//! answers again, the Jobs they left there are deleted, so no payload runs twice at once once
//! both answer, also when the service restarted in the meantime; a submission pinned to it
//! waits for it and then runs there.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use submission_helper::domain::placement::Placement;

use crate::apiserver::{control_plane, submission_of};
use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually, follow_states};
use crate::on_the_cluster;
use crate::support::{Backend, TestApp, TestDatabase};

/// A folder both clusters' payloads reach: `onsite`'s shared folder, at this machine's path on
/// a simulated node (which runs payloads here), at `/ntuples` in a real node's pods.
fn shared_folder(onsite: &TestCluster) -> String {
    let here = onsite.volume().display();
    format!("D='{here}'; [ -d \"$D\" ] || D=/ntuples")
}

/// Records `start` in the shared ledger, waits for the gate file `go` (or the test's end),
/// records `end`; ends at once on SIGTERM.
fn gated_payload(onsite: &TestCluster) -> String {
    format!(
        "{}; echo start >> \"$D/ledger\"; trap 'exit 143' TERM; \
         while [ ! -e \"$D/go\" ] && [ -e \"$D/.test-running\" ]; do sleep 0.05; done; \
         echo end >> \"$D/ledger\"",
        shared_folder(onsite)
    )
}

fn ledger(onsite: &TestCluster) -> Vec<String> {
    std::fs::read_to_string(onsite.volume().join("ledger"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn jobs_of(cluster: &TestCluster, id: &str) -> usize {
    cluster
        .count_per_submission::<Job>()
        .await
        .get(id)
        .copied()
        .unwrap_or(0)
}

/// Whether `id` has neither a Job nor a pod in `cluster`: its node stopped the pod (a pod
/// object goes once its node confirms the end).
async fn gone_from(cluster: &TestCluster, id: &str) -> bool {
    let pods = cluster.count_per_submission::<Pod>().await;
    jobs_of(cluster, id).await == 0 && !pods.contains_key(id)
}

async fn submit(app: &TestApp, request: Value) -> String {
    app.submit(request).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The service over both, `onsite` unreachable after 2 s without an answer and lost after 8 s.
async fn over_both(
    onsite: &TestCluster,
    configs: &(kube::Config, kube::Config),
    database: TestDatabase,
) -> TestApp {
    onsite
        .spawn_service_over_configs(configs, database, Placement::Ordered, |settings| {
            settings.cluster_unreachable_after = Duration::from_secs(2);
            settings.cluster_lost_after = Duration::from_secs(8);
        })
        .await
}

async fn a_lost_clusters_work_runs_again_in_the_other_and_its_old_jobs_go_when_it_answers(
    backend: Backend,
) {
    // Arrange: a payload running onsite until its gate opens
    let _alone = crate::ONE_AT_A_TIME.lock().await;
    let onsite = TestCluster::new().await;
    let cloud = onsite.beside().await;
    for cluster in [&onsite, &cloud] {
        cluster.apply_rbac(include_str!("../../docker/k8s/base/rbac.yaml"));
    }
    let configs = (
        onsite.service_account_config().await,
        cloud.service_account_config().await,
    );
    let app = over_both(&onsite, &configs, TestDatabase::new(backend).await).await;
    let moved = submit(
        &app,
        json!({"image": PAYLOAD_IMAGE, "command": gated_payload(&onsite)}),
    )
    .await;
    let (running, _) = follow_states(&app, &moved, &["running"]).await;

    // Act: onsite's API server stops; work is sent meanwhile; the service restarts; onsite's
    // API server starts again
    control_plane(&onsite, "stop-apiserver");
    let unreachable = eventually(
        "the running submission to say its cluster has not answered",
        Duration::from_secs(60),
        || async {
            let submission = submission_of(&app, &moved).await?;
            submission["message"]
                .as_str()
                .is_some_and(|message| message.contains("; as last seen"))
                .then_some(submission)
        },
    )
    .await;
    let queued_meanwhile = submit(
        &app,
        json!({"image": PAYLOAD_IMAGE, "command": "echo placed while onsite is down"}),
    )
    .await;
    let pinned = submit(
        &app,
        json!({"image": PAYLOAD_IMAGE, "cluster": "onsite", "command": "echo pinned onsite"}),
    )
    .await;
    let (meanwhile, _) = follow_states(&app, &queued_meanwhile, &["succeeded", "failed"]).await;
    let rerun = eventually(
        "the lost cluster's submission to run again in the other",
        Duration::from_secs(90),
        || async {
            let submission = submission_of(&app, &moved).await?;
            (submission["cluster"] == "cloud" && submission["state"] == "running")
                .then_some(submission)
        },
    )
    .await;
    let pinned_while_down = submission_of(&app, &pinned).await.expect("pinned");
    let ready_while_down = app.get("/readyz").await;
    let (ready_status, readiness) = (
        ready_while_down.status(),
        ready_while_down.json::<Value>().await.expect("readiness"),
    );
    let runs_while_down = eventually(
        "the new run to start beside the old one",
        Duration::from_secs(30),
        || async { (ledger(&onsite).len() >= 2).then(|| ledger(&onsite)) },
    )
    .await;
    let app = over_both(&onsite, &configs, app.stop()).await;
    control_plane(&onsite, "start-apiserver");
    eventually(
        "the Job left in the lost cluster, and its pod, to be deleted once it answers",
        Duration::from_secs(120),
        || async { gone_from(&onsite, &moved).await.then_some(()) },
    )
    .await;
    std::fs::write(onsite.volume().join("go"), b"go").expect("open the gate");
    let (done, _) = follow_states(&app, &moved, &["succeeded", "failed"]).await;
    let (pinned_done, _) = follow_states(&app, &pinned, &["succeeded", "failed"]).await;

    // Assert: unreachable, it kept its state; lost, it ran again in the other cluster, once
    assert_eq!(running["cluster"], "onsite", "{running}");
    assert_eq!(unreachable["state"], "running", "{unreachable}");
    assert_eq!(meanwhile["state"], "succeeded", "{meanwhile}");
    assert_eq!(
        meanwhile["cluster"], "cloud",
        "queued work goes to the other"
    );
    assert_eq!(rerun["reruns"], 1, "{rerun}");
    assert_eq!(pinned_while_down["state"], "queued", "{pinned_while_down}");
    assert_eq!(
        pinned_while_down["message"],
        "waits for the cluster onsite it asked for: it does not answer"
    );
    assert_eq!(
        ready_status,
        reqwest::StatusCode::OK,
        "one cluster answers: {readiness}"
    );
    assert_eq!(readiness["clusters"]["cloud"], "ok", "{readiness}");
    assert_ne!(readiness["clusters"]["onsite"], "ok", "{readiness}");
    assert!(
        readiness["cluster"]
            .as_str()
            .is_some_and(|c| c.starts_with("onsite: ")),
        "says which does not answer: {readiness}"
    );
    assert_eq!(
        runs_while_down,
        ["start", "start"],
        "the old run and the new"
    );
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["cluster"], "cloud", "{done}");
    assert_eq!(
        ledger(&onsite),
        ["start", "start", "end"],
        "the old run was stopped before the gate opened: one payload finished"
    );
    assert_eq!(pinned_done["state"], "succeeded", "{pinned_done}");
    assert_eq!(pinned_done["cluster"], "onsite", "{pinned_done}");
    assert_eq!(jobs_of(&cloud, &moved).await, 1, "its one live Job");
}
on_the_cluster!(a_lost_clusters_work_runs_again_in_the_other_and_its_old_jobs_go_when_it_answers);
