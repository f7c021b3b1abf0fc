//! Campaigns over the API and in the store: a merge that waits for its samples (`depends_on`),
//! what becomes of it when they succeed, fail or are cancelled, and the limits on how many Jobs
//! of a user or of a batch are dispatched at once. No cluster here: the store's own steps
//! (a dependency's end, the dispatcher's claim) are driven directly, as the controller and the
//! dispatcher would; the end-to-end suite runs them on the control plane.

use jiff::Timestamp;
use reqwest::StatusCode;
use serde_json::{Value, json as body};
use submission_helper::domain::{State, SubmissionId};
use submission_helper::storage::Store;

use crate::on_both_databases;
pub(crate) use crate::support::end;
use crate::support::{Backend, TestApp, fields, json, problem, spawn_app};

pub(crate) fn sample(name: &str) -> Value {
    body!({"name": name, "image": "busybox", "command": format!("echo {name}")})
}

pub(crate) async fn batch(app: &TestApp, request: Value) -> Vec<Value> {
    let response = app.post_json("/v1/submissions/batch", &request).await;
    let stored = json(response, StatusCode::CREATED).await;
    stored["submissions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub(crate) fn id_of(submission: &Value) -> SubmissionId {
    submission["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("id")
}

/// The service's database, opened as a second process would.
pub(crate) async fn store_of(app: &TestApp) -> Store {
    Store::connect(&app.database.url).await.expect("store")
}

pub(crate) async fn state_of(app: &TestApp, id: SubmissionId) -> Value {
    json(
        app.get(&format!("/v1/submissions/{id}")).await,
        StatusCode::OK,
    )
    .await
}

async fn a_merge_waits_for_its_samples_then_is_queued_when_all_succeeded(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut merge = sample("merge");
    merge["depends_on"] = body!(["a", "b", "c"]);

    let stored = batch(
        &app,
        body!({"submissions": [sample("a"), sample("b"), sample("c"), merge]}),
    )
    .await;

    let samples: Vec<SubmissionId> = stored[..3].iter().map(id_of).collect();
    let merge = id_of(&stored[3]);
    assert_eq!(stored[3]["state"], "waiting");
    let named: Vec<String> = samples.iter().map(ToString::to_string).collect();
    assert_eq!(stored[3]["depends_on"], body!(named));
    assert!(stored[..3].iter().all(|s| s["state"] == "queued"));

    let store = store_of(&app).await;
    end(&store, samples[0], State::Succeeded).await;
    end(&store, samples[1], State::Succeeded).await;
    assert_eq!(state_of(&app, merge).await["state"], "waiting");
    end(&store, samples[2], State::Succeeded).await;

    assert_eq!(state_of(&app, merge).await["state"], "queued");
}
on_both_databases!(a_merge_waits_for_its_samples_then_is_queued_when_all_succeeded);

async fn a_failed_sample_fails_the_merge_and_what_waits_on_it_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut merge = sample("merge");
    merge["depends_on"] = body!(["a", "b"]);
    let mut plot = sample("plot");
    plot["depends_on"] = body!(["merge"]);
    let stored = batch(
        &app,
        body!({"submissions": [sample("a"), sample("b"), merge, plot]}),
    )
    .await;
    let (a, merge, plot) = (id_of(&stored[0]), id_of(&stored[2]), id_of(&stored[3]));

    end(&store_of(&app).await, a, State::Failed).await;

    let merge_now = state_of(&app, merge).await;
    assert_eq!(merge_now["state"], "failed");
    assert_eq!(merge_now["message"], format!("dependency {a} failed"));
    assert!(merge_now["finished_at"].is_string(), "{merge_now}");
    let plot_now = state_of(&app, plot).await;
    assert_eq!(plot_now["state"], "failed");
    assert_eq!(plot_now["message"], format!("dependency {merge} failed"));
}
on_both_databases!(a_failed_sample_fails_the_merge_and_what_waits_on_it_naming_it);

async fn cancelling_a_sample_cancels_what_waits_on_it_and_says_so(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut merge = sample("merge");
    merge["depends_on"] = body!(["a", "b"]);
    let stored = batch(
        &app,
        body!({"submissions": [sample("a"), sample("b"), merge]}),
    )
    .await;
    let (a, b, merge) = (id_of(&stored[0]), id_of(&stored[1]), id_of(&stored[2]));

    let cancelled = json(
        app.post_json(&format!("/v1/submissions/{a}/cancel"), &body!({}))
            .await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(cancelled["also_cancelled"], body!([merge.to_string()]));
    let merge_now = state_of(&app, merge).await;
    assert_eq!(merge_now["state"], "cancelled");
    assert_eq!(
        merge_now["message"],
        format!("dependency {a} was cancelled")
    );
    assert_eq!(
        state_of(&app, b).await["state"],
        "queued",
        "the other sample runs on"
    );
}
on_both_databases!(cancelling_a_sample_cancels_what_waits_on_it_and_says_so);

async fn a_bulk_cancel_lists_what_was_cancelled_with_the_matches(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut samples = sample("a");
    samples["labels"] = body!({"step": "samples"});
    let mut merge = sample("merge");
    merge["depends_on"] = body!(["a"]);
    let stored = batch(&app, body!({"submissions": [samples, merge]})).await;

    let cancelled = json(
        app.post_json(
            "/v1/submissions/cancel",
            &body!({"labels": {"step": "samples"}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(cancelled["cancelled"][0]["id"], stored[0]["id"]);
    assert_eq!(cancelled["also_cancelled"][0]["id"], stored[1]["id"]);
    assert_eq!(cancelled["also_cancelled"][0]["state"], "cancelled");
}
on_both_databases!(a_bulk_cancel_lists_what_was_cancelled_with_the_matches);

async fn a_submission_may_depend_on_stored_ones_and_starts_as_they_stand(backend: Backend) {
    let app = spawn_app(backend).await;
    let stored = batch(
        &app,
        body!({"submissions": [sample("done"), sample("running"), sample("broken")]}),
    )
    .await;
    let (done, running, broken) = (id_of(&stored[0]), id_of(&stored[1]), id_of(&stored[2]));
    let store = store_of(&app).await;
    end(&store, done, State::Succeeded).await;
    end(&store, broken, State::Failed).await;
    let after = |ids: &[SubmissionId]| {
        let mut request = sample("after");
        request["depends_on"] = body!(ids.iter().map(ToString::to_string).collect::<Vec<_>>());
        request
    };

    let ready = app.submit(after(&[done])).await;
    let waiting = app.submit(after(&[done, running])).await;
    let hopeless = app.submit(after(&[done, broken])).await;

    assert_eq!(ready["state"], "queued");
    assert_eq!(waiting["state"], "waiting");
    assert_eq!(hopeless["state"], "failed");
    assert_eq!(hopeless["message"], format!("dependency {broken} failed"));
    end(&store, running, State::Succeeded).await;
    assert_eq!(state_of(&app, id_of(&waiting)).await["state"], "queued");
}
on_both_databases!(a_submission_may_depend_on_stored_ones_and_starts_as_they_stand);

async fn unknown_foreign_and_circular_dependencies_are_refused_naming_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = app.client_for("bob", false, false).await;
    let bobs = app
        .post_as(&bob, "/v1/submissions", &sample("bobs"))
        .await
        .json::<Value>()
        .await
        .expect("json");
    let mut foreign = sample("mine");
    foreign["depends_on"] = body!([bobs["id"], SubmissionId::new().to_string(), "no-such-name"]);

    let refused = problem(
        app.post_json("/v1/submissions", &foreign).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    assert_eq!(
        fields(&refused),
        ["depends_on[2]"],
        "names are resolved first: {refused}"
    );
    foreign["depends_on"] = body!([bobs["id"], SubmissionId::new().to_string()]);
    let refused = problem(
        app.post_json("/v1/submissions", &foreign).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&refused), ["depends_on[0]", "depends_on[1]"]);
    assert!(
        refused["errors"][0]["reason"]
            .as_str()
            .is_some_and(|reason| reason.starts_with("there is no submission")),
        "another user's submission is as unknown as none: {refused}"
    );

    let mut a = sample("a");
    a["depends_on"] = body!(["c"]);
    let mut b = sample("b");
    b["depends_on"] = body!(["a"]);
    let mut c = sample("c");
    c["depends_on"] = body!(["b"]);
    let circle = problem(
        app.post_json(
            "/v1/submissions/batch",
            &body!({"submissions": [sample("free"), a, b, c]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let mut members = fields(&circle);
    members.sort();
    assert_eq!(
        members,
        [
            "submissions[1].depends_on",
            "submissions[2].depends_on",
            "submissions[3].depends_on"
        ]
    );
    let reason = circle["errors"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("submissions[1] (a)"), "{reason}");
    let listed = json(app.get("/v1/submissions").await, StatusCode::OK).await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(0),
        "nothing of a refused request is stored: {listed}"
    );
}
on_both_databases!(unknown_foreign_and_circular_dependencies_are_refused_naming_them);

async fn a_batch_of_ten_thousand_with_a_wide_fan_in_is_stored_and_released(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut submissions: Vec<Value> = (0..9_900).map(|n| sample(&format!("s{n}"))).collect();
    for merge in 0..99 {
        let mut request = sample(&format!("merge{merge}"));
        request["depends_on"] = body!(
            (merge * 100..merge * 100 + 100)
                .map(|n| format!("s{n}"))
                .collect::<Vec<_>>()
        );
        submissions.push(request);
    }
    let mut last = sample("final");
    last["depends_on"] = body!((0..99).map(|n| format!("merge{n}")).collect::<Vec<_>>());
    submissions.push(last);

    let started = std::time::Instant::now();
    let stored = batch(&app, body!({"submissions": submissions})).await;
    let took = started.elapsed();

    assert_eq!(stored.len(), 10_000);
    assert_eq!(stored[9_950]["state"], "waiting");
    let store = store_of(&app).await;
    for sample in &stored[..100] {
        end(&store, id_of(sample), State::Succeeded).await;
    }
    assert_eq!(
        state_of(&app, id_of(&stored[9_900])).await["state"],
        "queued"
    );
    assert_eq!(
        state_of(&app, id_of(&stored[9_901])).await["state"],
        "waiting"
    );
    crate::support::report(&format!(
        "a batch of 10,000 with 100-wide fan-ins stored in {took:?}"
    ));
}
on_both_databases!(a_batch_of_ten_thousand_with_a_wide_fan_in_is_stored_and_released);

async fn a_user_at_the_limit_keeps_the_rest_queued_and_holds_up_no_one_else(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = app.client_for("bob", false, false).await;
    let mine = batch(
        &app,
        body!({"submissions": (0..5).map(|n| sample(&format!("a{n}"))).collect::<Vec<_>>()}),
    )
    .await;
    let bobs = app
        .post_as(&bob, "/v1/submissions", &sample("b0"))
        .await
        .json::<Value>()
        .await
        .expect("json");
    let store = store_of(&app).await;
    let limit = Some(2);

    let first = store
        .claim("default", Timestamp::now(), 32, limit)
        .await
        .expect("claim");

    let claimed: Vec<String> = first
        .iter()
        .map(|queued| queued.submission.id.to_string())
        .collect();
    assert_eq!(
        claimed,
        [
            mine[0]["id"].as_str().unwrap_or_default(),
            mine[1]["id"].as_str().unwrap_or_default(),
            bobs["id"].as_str().unwrap_or_default()
        ],
        "the user's two oldest, and the other user's behind them"
    );
    let again = store
        .claim("default", Timestamp::now(), 32, limit)
        .await
        .expect("claim");
    assert!(again.is_empty(), "claimed ones count against the limit");
    end(&store, id_of(&mine[0]), State::Succeeded).await;
    let next = store
        .claim("default", Timestamp::now(), 32, limit)
        .await
        .expect("claim");
    assert_eq!(
        next.iter()
            .map(|queued| queued.submission.id.to_string())
            .collect::<Vec<_>>(),
        [mine[2]["id"].as_str().unwrap_or_default()],
        "the next in submit order, once one ended"
    );
}
on_both_databases!(a_user_at_the_limit_keeps_the_rest_queued_and_holds_up_no_one_else);

async fn a_batch_limit_and_a_tokens_own_limit_are_obeyed(backend: Backend) {
    let app = spawn_app(backend).await;
    batch(
        &app,
        body!({"max_concurrent": 1,
               "submissions": (0..3).map(|n| sample(&format!("g{n}"))).collect::<Vec<_>>()}),
    )
    .await;
    batch(
        &app,
        body!({"submissions": (0..2).map(|n| sample(&format!("f{n}"))).collect::<Vec<_>>()}),
    )
    .await;
    let store = store_of(&app).await;
    let carol = crate::support::client_limited_to_one_job(&store, "carol").await;
    for n in 0..2 {
        let response = app
            .post_as(&carol, "/v1/submissions", &sample(&format!("c{n}")))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    let claimed = store
        .claim("default", Timestamp::now(), 32, None)
        .await
        .expect("claim");

    let names: Vec<String> = claimed
        .iter()
        .filter_map(|queued| queued.submission.spec.name.clone())
        .collect();
    assert_eq!(names, ["g0", "f0", "f1", "c0"]);
    let zero = problem(
        app.post_json(
            "/v1/submissions/batch",
            &body!({"max_concurrent": 0, "submissions": [sample("x")]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&zero), ["max_concurrent"]);
}
on_both_databases!(a_batch_limit_and_a_tokens_own_limit_are_obeyed);
