//! SIGKILL the service again and again while payloads are killed for memory and rerun: each
//! rerun is decided once and gets exactly one new Job, whenever the service died between
//! deciding it and creating its Job.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use crate::on_the_cluster;
use crate::submissions::until_all_ended;
use crate::support::Backend;

const SUBMISSIONS: usize = 60;

async fn each_rerun_for_memory_gets_exactly_one_job_across_sigkills(backend: Backend) {
    // Arrange: on the simulated node, which kills a payload for memory as a kubelet reports it
    let _alone = crate::ONE_AT_A_TIME.lock().await;
    let (cluster, _database, mut service, client) = crate::process::on_simulated(backend).await;
    let url = service.url.clone();
    let requests: Vec<Value> = (0..SUBMISSIONS)
        .map(|i| {
            json!({
                "name": format!("hungry-{i}"),
                "image": "busybox",
                "command": "echo loading the ntuples",
                "env": {"NODE_SIM_MEMORY_NEEDED": "1.5Gi"},
                "memory": "1Gi",
                "resources": {"limits": {"memory": "1Gi"}},
                "retry_policy": {"on_oom": {"max_memory": "4Gi", "max_reruns": 2}},
            })
        })
        .collect();
    let sent = client
        .post(format!("{url}/v1/submissions/batch"))
        .json(&json!({"submissions": requests}))
        .send()
        .await
        .expect("the batch was sent");
    assert!(sent.status().is_success(), "{:?}", sent.text().await);

    // Act: kill the service at irregular intervals while the first runs end and reruns start
    let pauses = [300u64, 550, 200, 800, 400, 650, 250, 700];
    let mut kills = 0;
    for pause in pauses.iter().cycle().take(16) {
        tokio::time::sleep(Duration::from_millis(*pause)).await;
        service.kill_and_restart().await;
        kills += 1;
    }
    let stored = until_all_ended(&client, &url, Some(SUBMISSIONS), Duration::from_secs(300)).await;

    // Assert: every submission succeeded in its second run, with one Job for each run
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    let names: BTreeSet<String> = jobs
        .list(&ListParams::default().labels("app=submission-helper"))
        .await
        .expect("kubectl get jobs")
        .items
        .into_iter()
        .filter_map(|job| job.metadata.name)
        .collect();
    let mut expected = BTreeSet::new();
    for submission in &stored {
        let first = submission["job_name"]
            .as_str()
            .and_then(|name| name.strip_suffix("-r1"))
            .unwrap_or_default()
            .to_owned();
        expected.insert(format!("{first}-r1"));
        expected.insert(first);
    }
    let not_succeeded = stored.iter().filter(|s| s["state"] != "succeeded").count();
    let not_rerun_once = stored.iter().filter(|s| s["reruns"] != 1).count();
    crate::support::report(&format!(
        "sigkills during reruns for memory ({backend:?}): {SUBMISSIONS} submissions, {kills} \
         kills, {} Jobs for {} runs expected; not succeeded: {not_succeeded}, not rerun \
         exactly once: {not_rerun_once}",
        names.len(),
        expected.len(),
    ));
    assert_eq!((not_succeeded, not_rerun_once), (0, 0));
    assert_eq!(names, expected, "exactly one Job per run");
    service.kill().await;
}
on_the_cluster!(each_rerun_for_memory_gets_exactly_one_job_across_sigkills);
