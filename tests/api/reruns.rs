//! Reruns over the API and in the store: a failed or cancelled submission runs again under its
//! id (a new Job name, `reruns` + 1), what failed only because of it comes back waiting, and
//! what cannot be rerun is refused saying why. No cluster here: ends are recorded in the store
//! as the controller would; the end-to-end suite runs reruns on the control plane.

use reqwest::StatusCode;
use serde_json::{Value, json as body};
use submission_helper::domain::{State, SubmissionId};

use crate::campaigns::{batch, end, id_of, sample, state_of, store_of};
use crate::events;
use crate::idempotency::post_with_key;
use crate::on_both_databases;
use crate::support::{Backend, TestApp, fields, json, problem, spawn_app};

fn labelled(name: &str) -> Value {
    let mut submission = sample(name);
    submission["labels"] = body!({"campaign": "mc16e"});
    submission
}

async fn rerun(app: &TestApp, id: SubmissionId, changes: &Value) -> reqwest::Response {
    app.post_json(&format!("/v1/submissions/{id}/rerun"), changes)
        .await
}

async fn a_campaigns_three_failed_samples_and_its_merge_run_again_and_nothing_else(
    backend: Backend,
) {
    // Arrange: 20 samples and a merge of them; 17 succeed, 3 fail, the merge fails with them
    let app = spawn_app(backend).await;
    let mut submissions: Vec<Value> = (0..20).map(|n| labelled(&format!("s{n}"))).collect();
    let mut merge = labelled("merge");
    merge["depends_on"] = body!((0..20).map(|n| format!("s{n}")).collect::<Vec<_>>());
    submissions.push(merge);
    let stored = batch(&app, body!({"submissions": submissions})).await;
    let samples: Vec<SubmissionId> = stored[..20].iter().map(id_of).collect();
    let merge = id_of(&stored[20]);
    let store = store_of(&app).await;
    for (n, sample) in samples.iter().enumerate() {
        let state = if n % 7 == 3 {
            State::Failed
        } else {
            State::Succeeded
        };
        end(&store, *sample, state).await;
    }
    assert_eq!(state_of(&app, merge).await["state"], "failed");

    // Act: one bulk rerun of the campaign's failures, with more memory
    let response = app
        .post_json(
            "/v1/submissions/rerun",
            &body!({"labels": {"campaign": "mc16e"}, "state": ["failed"], "memory": "8000M"}),
        )
        .await;
    let reran = json(response, StatusCode::OK).await;

    // Assert: the 3 samples queued with the new memory, the merge waiting for them again
    let failed: Vec<String> = [3, 10, 17].map(|n| samples[n].to_string()).into();
    let mut rerun_ids: Vec<String> = reran["rerun"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    rerun_ids.sort();
    let mut expected = failed.clone();
    expected.sort();
    assert_eq!(rerun_ids, expected, "{reran}");
    for sample in reran["rerun"].as_array().into_iter().flatten() {
        assert_eq!(sample["state"], "queued", "{sample}");
        assert_eq!(sample["reruns"], 1);
        assert_eq!(sample["resources"]["requests"]["memory"], "8000M");
        let job = sample["job_name"].as_str().unwrap_or_default();
        assert!(job.ends_with("-r1"), "{job}");
    }
    assert_eq!(
        reran["also_rerun"].as_array().map(Vec::len),
        Some(1),
        "{reran}"
    );
    assert_eq!(reran["also_rerun"][0]["id"], merge.to_string());
    assert_eq!(reran["also_rerun"][0]["state"], "waiting");
    assert_eq!(
        reran["also_rerun"][0]["resources"]["requests"]["memory"], "8000M",
        "the merge matched the filter too: {reran}"
    );
    assert_eq!(reran["not_rerun"], body!([]));
    let untouched = state_of(&app, samples[0]).await;
    assert_eq!(untouched["state"], "succeeded");
    assert_eq!(untouched["reruns"], 0);

    // And the campaign goes on: once the three succeed, the merge is queued
    for n in [3, 10, 17] {
        end(&store, samples[n], State::Succeeded).await;
    }
    let merge_now = state_of(&app, merge).await;
    assert_eq!(merge_now["state"], "queued", "{merge_now}");
    assert_eq!(merge_now["reruns"], 1);
}
on_both_databases!(a_campaigns_three_failed_samples_and_its_merge_run_again_and_nothing_else);

async fn a_rerun_is_seen_as_a_change_of_state_back_to_queued(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let id = id_of(&app.submit(sample("once")).await);
    end(&store_of(&app).await, id, State::Failed).await;
    let mut stream = events::open(&app, &format!("?id={id}&after=0")).await;
    stream.states(2).await;

    // Act
    let reran = json(rerun(&app, id, &body!({})).await, StatusCode::OK).await;

    // Assert
    assert_eq!(reran["state"], "queued");
    let event = stream.states(1).await.remove(0);
    assert_eq!(event["previous_state"], "failed", "{event}");
    assert_eq!(event["state"], "queued", "{event}");
    let metrics = crate::metrics::scrape(&app).await;
    let counted = |cause| metrics.value("submission_helper_reruns_total", &[("cause", cause)]);
    assert_eq!((counted("request"), counted("memory")), (1.0, 0.0));
}
on_both_databases!(a_rerun_is_seen_as_a_change_of_state_back_to_queued);

async fn a_merge_whose_failed_sample_is_not_rerun_stays_failed_saying_why(backend: Backend) {
    // Arrange: a and b fail, the merge with them
    let app = spawn_app(backend).await;
    let mut merge = sample("merge");
    merge["depends_on"] = body!(["a", "b"]);
    let stored = batch(
        &app,
        body!({"submissions": [sample("a"), sample("b"), merge]}),
    )
    .await;
    let (a, b, merge) = (id_of(&stored[0]), id_of(&stored[1]), id_of(&stored[2]));
    let store = store_of(&app).await;
    end(&store, a, State::Failed).await;

    // Act: the merge alone, then a alone
    let refused = problem(rerun(&app, merge, &body!({})).await, StatusCode::CONFLICT).await;
    let reran = json(rerun(&app, a, &body!({})).await, StatusCode::OK).await;

    // Assert: the merge names its failed dependency; a's rerun brings it back
    let detail = refused["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&a.to_string()), "{refused}");
    assert_eq!(reran["also_rerun"], body!([merge.to_string()]));
    let merge_now = state_of(&app, merge).await;
    assert_eq!(merge_now["state"], "waiting", "b still runs: {merge_now}");
    end(&store, a, State::Succeeded).await;
    end(&store, b, State::Succeeded).await;
    assert_eq!(state_of(&app, merge).await["state"], "queued");
}
on_both_databases!(a_merge_whose_failed_sample_is_not_rerun_stays_failed_saying_why);

async fn succeeded_active_unknown_and_badly_changed_reruns_are_refused(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let done = id_of(&app.submit(sample("done")).await);
    let active = id_of(&app.submit(sample("active")).await);
    let failed = id_of(&app.submit(sample("failed")).await);
    let store = store_of(&app).await;
    end(&store, done, State::Succeeded).await;
    end(&store, failed, State::Failed).await;

    // Act
    let succeeded = problem(rerun(&app, done, &body!({})).await, StatusCode::CONFLICT).await;
    let queued = problem(rerun(&app, active, &body!({})).await, StatusCode::CONFLICT).await;
    let unknown = rerun(&app, SubmissionId::new(), &body!({})).await;
    let bad = problem(
        rerun(
            &app,
            failed,
            &body!({"memory": "lots", "time": 0, "color": "red"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let bad_changes = problem(
        rerun(&app, failed, &body!({"memory": "lots", "time": 0})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let no_filter = problem(
        app.post_json("/v1/submissions/rerun", &body!({"state": ["running"]}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // Assert
    assert!(
        succeeded["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("succeeded")
    );
    assert!(
        queued["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("queued")
    );
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(fields(&bad), ["color"], "{bad}");
    assert_eq!(fields(&bad_changes), ["memory", "time"], "{bad_changes}");
    assert_eq!(fields(&no_filter), ["body", "state"], "{no_filter}");
    let untouched = state_of(&app, failed).await;
    assert_eq!(untouched["state"], "failed", "nothing stored was changed");
    assert_eq!(untouched["reruns"], 0);
}
on_both_databases!(succeeded_active_unknown_and_badly_changed_reruns_are_refused);

async fn a_rerun_retried_with_its_key_runs_once(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let id = id_of(&app.submit(sample("flaky")).await);
    end(&store_of(&app).await, id, State::Failed).await;
    let path = format!("/v1/submissions/{id}/rerun");

    // Act
    let first = post_with_key(&app, &path, "rerun-1", &body!({"memory": "2Gi"})).await;
    let first = json(first, StatusCode::OK).await;
    let again = post_with_key(&app, &path, "rerun-1", &body!({"memory": "2Gi"})).await;
    let replayed = again.headers().get("idempotent-replayed").cloned();
    let again = json(again, StatusCode::OK).await;
    let other = post_with_key(&app, &path, "rerun-1", &body!({"memory": "4Gi"})).await;

    // Assert
    assert_eq!(
        replayed.as_ref().and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["reruns"], 1, "run once: {again}");
    assert_eq!(again["job_name"], first["job_name"]);
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(state_of(&app, id).await["reruns"], 1);
}
on_both_databases!(a_rerun_retried_with_its_key_runs_once);

async fn a_rerun_without_a_body_changes_nothing_but_the_run(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let created = app.submit(sample("plain")).await;
    let id = id_of(&created);
    end(&store_of(&app).await, id, State::Cancelled).await;

    // Act: as `curl -X POST .../rerun` sends it
    let response = app
        .client
        .post(app.url(&format!("/v1/submissions/{id}/rerun")))
        .send()
        .await
        .expect("request");
    let reran = json(response, StatusCode::OK).await;

    // Assert
    assert_eq!(reran["state"], "queued");
    assert_eq!(reran["reruns"], 1);
    assert_eq!(
        reran["job_name"],
        format!("{}-r1", created["job_name"].as_str().unwrap_or_default())
    );
    assert_eq!(reran["resources"], created["resources"]);
    assert_eq!(reran["message"], "rerun by request");
}
on_both_databases!(a_rerun_without_a_body_changes_nothing_but_the_run);

async fn a_refused_rerun_leaves_its_key_for_a_retry_that_can_rerun(backend: Backend) {
    // Arrange: still queued
    let app = spawn_app(backend).await;
    let id = id_of(&app.submit(sample("early")).await);
    let path = format!("/v1/submissions/{id}/rerun");

    // Act: too early, then after it failed, with the same key
    let early = post_with_key(&app, &path, "rerun-early", &body!({})).await;
    end(&store_of(&app).await, id, State::Failed).await;
    let later = post_with_key(&app, &path, "rerun-early", &body!({})).await;

    // Assert
    assert_eq!(early.status(), StatusCode::CONFLICT);
    let later = json(later, StatusCode::OK).await;
    assert_eq!(later["reruns"], 1, "{later}");
}
on_both_databases!(a_refused_rerun_leaves_its_key_for_a_retry_that_can_rerun);
