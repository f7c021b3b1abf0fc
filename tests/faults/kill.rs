//! SIGKILL the service again and again during a burst of submissions: afterwards every
//! acknowledged submission exists exactly once, with exactly one Job, in a final state, and
//! nothing was half-created.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use serde_json::{Value, json};

use crate::on_the_cluster;
use crate::submissions::until_all_ended;
use crate::support::Backend;

const SUBMISSIONS: usize = 500;

async fn every_acknowledged_submission_runs_exactly_once_across_sigkills(backend: Backend) {
    // On the simulated node: a real node of 2 cores would take minutes to start 500 pods.
    // Before the cluster: making its namespace talks to the control plane the others change.
    let _alone = crate::ONE_AT_A_TIME.lock().await;
    let (cluster, _database, mut service, client) = crate::process::on_simulated(backend).await;
    let url = service.url.clone();
    let ledger = cluster.ledger("runs");

    // The burst: each submission sent once, while the service is killed at irregular intervals.
    let done = AtomicBool::new(false);
    let burst = async {
        let outcomes = futures::stream::iter(0..SUBMISSIONS)
            .map(|i| {
                let (client, url) = (client.clone(), url.clone());
                let command = ledger.record_command(&format!("burst-{i}"));
                async move {
                    // Spread over about 8 seconds, so the kills land all through the burst.
                    tokio::time::sleep(Duration::from_millis(16 * i as u64)).await;
                    let name = format!("burst-{i}");
                    let request = json!({"name": name, "image": "busybox", "command": command});
                    let sent = client
                        .post(format!("{url}/v1/submissions"))
                        .json(&request)
                        .send()
                        .await;
                    (
                        name,
                        sent.is_ok_and(|response| response.status().is_success()),
                    )
                }
            })
            .buffer_unordered(SUBMISSIONS)
            .collect::<Vec<_>>()
            .await;
        done.store(true, Ordering::SeqCst);
        outcomes
    };
    let killer = async {
        let pauses = [350u64, 600, 250, 900, 450, 700, 300, 800];
        let mut kills = 0;
        while !done.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(pauses[kills % pauses.len()])).await;
            service.kill_and_restart().await;
            kills += 1;
        }
        kills
    };
    let (outcomes, kills) = tokio::time::timeout(Duration::from_secs(300), async {
        tokio::join!(burst, killer)
    })
    .await
    .expect("the burst did not finish in 5 minutes");
    let acknowledged: BTreeSet<String> = outcomes
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(name, _)| name.clone())
        .collect();

    // After the storm: everything stored reaches a final state, once.
    let stored = until_all_ended(&client, &url, None, Duration::from_secs(600)).await;
    let mut by_name: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for submission in &stored {
        by_name
            .entry(submission["name"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(submission);
    }
    let jobs_per_submission = cluster.count_per_submission::<Job>().await;
    let runs = ledger.runs();
    let ran_twice = runs.values().filter(|count| **count > 1).count();
    let never_ran = stored
        .iter()
        .filter(|s| !runs.contains_key(s["name"].as_str().unwrap_or_default()))
        .count();
    let duplicates = by_name.values().filter(|copies| copies.len() > 1).count();
    let lost = acknowledged
        .iter()
        .filter(|name| !by_name.contains_key(*name))
        .count();
    let stored_after_error = by_name
        .keys()
        .filter(|name| !acknowledged.contains(*name))
        .count();
    let without_one_job = stored
        .iter()
        .filter(|s| jobs_per_submission.get(s["id"].as_str().unwrap_or_default()) != Some(&1))
        .count();
    let orphan_jobs = jobs_per_submission
        .keys()
        .filter(|id| !stored.iter().any(|s| s["id"].as_str() == Some(id.as_str())))
        .count();
    let failed = stored.iter().filter(|s| s["state"] != "succeeded").count();
    crate::support::report(&format!(
        "sigkill burst ({backend:?}): {SUBMISSIONS} submissions, {kills} kills, {} acknowledged, \
         {} errors ({stored_after_error} of them stored whole), {} stored, {} Jobs; \
         duplicates found: {duplicates}, lost found: {lost}, without exactly one Job: {without_one_job}, \
         Jobs without a submission: {orphan_jobs}, payloads run more than once: {ran_twice}, \
         stored but never run: {never_ran}, not succeeded: {failed}",
        acknowledged.len(),
        SUBMISSIONS - acknowledged.len(),
        stored.len(),
        jobs_per_submission.values().sum::<usize>(),
    ));
    assert!(kills >= 5, "the service was killed only {kills} times");
    assert_eq!(
        (
            duplicates,
            lost,
            without_one_job,
            orphan_jobs,
            ran_twice,
            never_ran,
            failed
        ),
        (0, 0, 0, 0, 0, 0, 0)
    );
    service.kill().await;
}
on_the_cluster!(every_acknowledged_submission_runs_exactly_once_across_sigkills);
