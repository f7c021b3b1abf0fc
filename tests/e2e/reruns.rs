//! Reruns on the control plane: a payload killed for memory runs again in a new Job with more
//! memory (`retry_policy.on_oom`) until it succeeds or the cap or count is reached; a user's
//! rerun of a failed submission, or of a campaign's failures with their merge. The simulated
//! node kills a payload for memory as a kubelet reports it (`NODE_SIM_MEMORY_NEEDED`).

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use reqwest::StatusCode;
use serde_json::{Value, json as body};

use crate::harness::{PAYLOAD_IMAGE, TestCluster, follow_states, id, metric};
use crate::on_the_cluster;
use crate::support::{Backend, json};

/// A payload that needs `needed` of memory, given `limit` (as its request and its limit).
fn hungry(needed: &str, limit: &str) -> Value {
    body!({
        "image": PAYLOAD_IMAGE,
        "command": "echo loading the ntuples",
        "env": {"NODE_SIM_MEMORY_NEEDED": needed},
        "memory": limit,
        "resources": {"limits": {"memory": limit}},
        "retries": 0,
    })
}

/// The names of the submission's Jobs in the cluster.
async fn jobs_of(cluster: &TestCluster, id: &str) -> BTreeSet<String> {
    let jobs: Api<Job> = Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    jobs.list(&ListParams::default().labels(&format!("submission-helper.io/submission-id={id}")))
        .await
        .expect("kubectl get jobs")
        .items
        .into_iter()
        .filter_map(|job| job.metadata.name)
        .collect()
}

async fn a_payload_killed_for_memory_runs_again_with_twice_the_memory_and_succeeds(
    backend: Backend,
) {
    // Arrange
    let cluster = TestCluster::simulated().await;
    let app = cluster.spawn_service(backend).await;
    let mut request = hungry("1.5Gi", "1Gi");
    request["retry_policy"] =
        body!({"on_oom": {"memory_factor": 2.0, "max_memory": "4Gi", "max_reruns": 2}});

    // Act
    let created = app.submit(request).await;
    let id = id(&created);
    let (done, seen) = follow_states(&app, &id, &["succeeded", "failed"]).await;

    // Assert: one rerun, in its own Job, with twice the memory
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["reruns"], 1, "{done}");
    let first_job = created["job_name"].as_str().unwrap_or_default().to_owned();
    assert_eq!(done["job_name"], format!("{first_job}-r1"));
    assert_eq!(done["resources"]["requests"]["memory"], "2Gi");
    assert_eq!(done["resources"]["limits"]["memory"], "2Gi");
    assert_eq!(
        jobs_of(&cluster, &id).await,
        BTreeSet::from([first_job.clone(), format!("{first_job}-r1")])
    );
    let attempts = done["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.len(), 2, "{done}");
    assert_eq!(attempts[0]["reason"], "OOMKilled");
    assert_eq!(attempts[0]["memory"], "1Gi");
    assert_eq!(
        attempts[0]["counted"], false,
        "a kill for memory uses no retry"
    );
    assert_eq!(attempts[1]["exit_code"], 0);
    assert_eq!(attempts[1]["memory"], "2Gi");
    assert!(seen.contains(&"queued".to_owned()), "{seen:?}");
    assert_eq!(
        metric(&app, "submission_helper_reruns_total{cause=\"memory\"}").await,
        1.0
    );
    // The first run's log stays readable.
    let pod = attempts[0]["pod"].as_str().unwrap_or_default();
    let log = app
        .get(&format!("/v1/submissions/{id}/logs?pod={pod}"))
        .await;
    assert_eq!(log.status(), StatusCode::OK);
}
on_the_cluster!(a_payload_killed_for_memory_runs_again_with_twice_the_memory_and_succeeds);

async fn past_the_cap_or_the_count_a_kill_for_memory_fails_the_submission_saying_which(
    backend: Backend,
) {
    // Arrange: one reaches its cap of 2Gi, the other its one rerun
    let cluster = TestCluster::simulated().await;
    let app = cluster.spawn_service(backend).await;
    let mut capped = hungry("5Gi", "1Gi");
    capped["retry_policy"] = body!({"on_oom": {"max_memory": "2Gi", "max_reruns": 3}});
    let mut counted = hungry("8Gi", "1Gi");
    counted["retry_policy"] = body!({"on_oom": {"max_memory": "16Gi", "max_reruns": 1}});

    // Act
    let capped = id(&app.submit(capped).await);
    let counted = id(&app.submit(counted).await);
    let (capped, _) = follow_states(&app, &capped, &["succeeded", "failed"]).await;
    let (counted, _) = follow_states(&app, &counted, &["succeeded", "failed"]).await;

    // Assert
    for (done, says) in [(&capped, "max_memory (2Gi)"), (&counted, "after 1 reruns")] {
        assert_eq!(done["state"], "failed", "{done}");
        assert_eq!(done["reruns"], 1, "{done}");
        assert_eq!(done["attempts"].as_array().map(Vec::len), Some(2), "{done}");
        let message = done["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("OOMKilled") && message.contains(says),
            "{message}"
        );
    }
    assert_eq!(capped["resources"]["limits"]["memory"], "2Gi");
}
on_the_cluster!(past_the_cap_or_the_count_a_kill_for_memory_fails_the_submission_saying_which);

async fn a_failed_submission_rerun_with_more_memory_succeeds_in_a_new_job(backend: Backend) {
    // Arrange: no rule for memory; the kill fails it
    let cluster = TestCluster::simulated().await;
    let app = cluster.spawn_service(backend).await;
    let id = id(&app.submit(hungry("1.5Gi", "1Gi")).await);
    let (failed, _) = follow_states(&app, &id, &["succeeded", "failed"]).await;
    assert_eq!(failed["state"], "failed", "{failed}");

    // Act: as `submission-helper rerun ID --memory 2Gi`
    let reran = json(
        app.post_json(
            &format!("/v1/submissions/{id}/rerun"),
            &body!({"memory": "2Gi"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let (done, _) = follow_states(&app, &id, &["succeeded", "failed"]).await;

    // Assert
    assert_eq!(reran["state"], "queued");
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["reruns"], 1);
    assert_eq!(done["resources"]["limits"]["memory"], "2Gi");
    let reasons: Vec<&Value> = done["attempts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|attempt| &attempt["reason"])
        .collect();
    assert_eq!(
        reasons,
        [&body!("OOMKilled"), &body!("Completed")],
        "{done}"
    );
    assert_eq!(jobs_of(&cluster, &id).await.len(), 2);
}
on_the_cluster!(a_failed_submission_rerun_with_more_memory_succeeds_in_a_new_job);

async fn a_campaigns_failures_and_its_merge_rerun_at_once_and_the_campaign_succeeds(
    backend: Backend,
) {
    // Arrange: 20 samples, 3 of which need more memory than they ask for, and their merge
    let cluster = TestCluster::simulated().await;
    let app = cluster.spawn_service(backend).await;
    let hungry_ones = [4, 9, 15];
    let mut requests: Vec<Value> = (0..20)
        .map(|n| {
            let mut sample = if hungry_ones.contains(&n) {
                hungry("1.5Gi", "1Gi")
            } else {
                body!({"image": PAYLOAD_IMAGE, "command": format!("echo sample {n}")})
            };
            sample["name"] = body!(format!("s{n}"));
            sample["labels"] = body!({"campaign": "mc16e"});
            sample
        })
        .collect();
    requests.push(body!({
        "name": "merge",
        "image": PAYLOAD_IMAGE,
        "command": "echo merging",
        "labels": {"campaign": "mc16e"},
        "depends_on": (0..20).map(|n| format!("s{n}")).collect::<Vec<_>>(),
    }));
    let stored = json(
        app.post_json("/v1/submissions/batch", &body!({"submissions": requests}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let ids: Vec<String> = stored["submissions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(id)
        .collect();
    let merge = ids[20].clone();
    let (merge_failed, _) = follow_states(&app, &merge, &["failed"]).await;
    for (n, sample) in ids[..20].iter().enumerate() {
        let (done, _) = follow_states(&app, sample, &["succeeded", "failed"]).await;
        let expected = if hungry_ones.contains(&n) {
            "failed"
        } else {
            "succeeded"
        };
        assert_eq!(done["state"], expected, "{done}");
    }

    // Act: `submission-helper rerun -l campaign=mc16e --failed --memory 2Gi`
    let reran = json(
        app.post_json(
            "/v1/submissions/rerun",
            &body!({"labels": {"campaign": "mc16e"}, "state": ["failed"], "memory": "2Gi"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let (merge_done, _) = follow_states(&app, &merge, &["succeeded", "failed"]).await;

    // Assert: the 3 and the merge ran again, the 17 were not touched, the campaign succeeded
    assert!(
        merge_failed["message"]
            .as_str()
            .is_some_and(|message| message.starts_with("dependency ")),
        "{merge_failed}"
    );
    let rerun: BTreeSet<&str> = reran["rerun"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|submission| submission["id"].as_str())
        .collect();
    let expected: BTreeSet<&str> = hungry_ones.iter().map(|n| ids[*n].as_str()).collect();
    assert_eq!(rerun, expected, "{reran}");
    assert_eq!(reran["also_rerun"][0]["id"], merge.as_str(), "{reran}");
    assert_eq!(merge_done["state"], "succeeded", "{merge_done}");
    assert_eq!(merge_done["reruns"], 1);
    for (n, sample) in ids[..20].iter().enumerate() {
        let now = json(
            app.get(&format!("/v1/submissions/{sample}")).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(now["state"], "succeeded", "{now}");
        let runs = if hungry_ones.contains(&n) { 1 } else { 0 };
        assert_eq!(now["reruns"], runs, "{now}");
        assert_eq!(jobs_of(&cluster, sample).await.len(), runs + 1, "{now}");
    }
}
on_the_cluster!(a_campaigns_failures_and_its_merge_rerun_at_once_and_the_campaign_succeeds);
