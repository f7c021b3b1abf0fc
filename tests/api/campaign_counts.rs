//! `GET /v1/campaigns`: a user's submissions grouped by a label's value and counted by state,
//! as the page draws its campaign bars.

use reqwest::StatusCode;
use serde_json::{Value, json as body};
use submission_helper::domain::State;

use crate::campaigns::{batch, end, id_of, store_of};
use crate::on_both_databases;
use crate::support::{Backend, json, problem, spawn_app};

fn labelled(name: &str, labels: Value) -> Value {
    body!({"name": name, "image": "busybox", "command": "true", "labels": labels})
}

async fn each_campaign_is_counted_by_state_and_only_the_callers(backend: Backend) {
    // Arrange: mc16a with 2 succeeded and 1 failed, mc16e with 1 queued; bob's own campaign
    let app = spawn_app(backend).await;
    let stored = batch(
        &app,
        body!({"submissions": [
            labelled("a1", body!({"campaign": "mc16a"})),
            labelled("a2", body!({"campaign": "mc16a"})),
            labelled("a3", body!({"campaign": "mc16a", "sample": "ttbar"})),
            labelled("e1", body!({"campaign": "mc16e", "sample": "ttbar"})),
            labelled("none", body!({})),
        ]}),
    )
    .await;
    let store = store_of(&app).await;
    end(&store, id_of(&stored[0]), State::Succeeded).await;
    end(&store, id_of(&stored[1]), State::Succeeded).await;
    end(&store, id_of(&stored[2]), State::Failed).await;
    let bob = app.client_for("bob", false, false).await;
    app.post_as(
        &bob,
        "/v1/submissions",
        &labelled("b1", body!({"campaign": "bobs"})),
    )
    .await;

    // Act
    let campaigns = json(app.get("/v1/campaigns").await, StatusCode::OK).await;
    let by_sample = json(app.get("/v1/campaigns?label=sample").await, StatusCode::OK).await;
    let refused = problem(
        app.get("/v1/campaigns?label=not%20a%20key").await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    // Assert
    assert_eq!(campaigns["label"], "campaign");
    let values: Vec<&str> = campaigns["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["value"].as_str())
        .collect();
    assert_eq!(values, ["mc16a", "mc16e"], "only alice's: {campaigns}");
    let mc16a = &campaigns["items"][0];
    assert_eq!(mc16a["total"], 3);
    assert_eq!(mc16a["states"]["succeeded"], 2);
    assert_eq!(mc16a["states"]["failed"], 1);
    assert_eq!(mc16a["states"]["running"], 0, "every state is counted");
    assert_eq!(campaigns["items"][1]["states"]["queued"], 1);
    assert_eq!(by_sample["items"][0]["value"], "ttbar");
    assert_eq!(by_sample["items"][0]["total"], 2);
    assert_eq!(refused["errors"][0]["field"], "label", "{refused}");
}
on_both_databases!(each_campaign_is_counted_by_state_and_only_the_callers);

async fn throughput_counts_starts_and_ends_per_minute_of_the_callers_submissions(backend: Backend) {
    // Arrange: two start, one succeeds, one fails; only one is in campaign mc16a
    let app = spawn_app(backend).await;
    let stored = batch(
        &app,
        body!({"submissions": [
            labelled("a", body!({"campaign": "mc16a"})),
            labelled("b", body!({"campaign": "mc16e"})),
        ]}),
    )
    .await;
    let (a, b) = (id_of(&stored[0]), id_of(&stored[1]));
    let store = store_of(&app).await;
    for id in [a, b] {
        store
            .update(id, |current| {
                Some(submission_helper::domain::Progress {
                    state: State::Running,
                    ..current.progress.clone()
                })
            })
            .await
            .expect("update")
            .expect("stored");
    }
    end(&store, a, State::Succeeded).await;
    end(&store, b, State::Failed).await;

    // Act
    let all = json(app.get("/v1/throughput?minutes=5").await, StatusCode::OK).await;
    let mc16a = json(
        app.get("/v1/throughput?minutes=5&label=campaign%3Dmc16a")
            .await,
        StatusCode::OK,
    )
    .await;
    let refused = app.get("/v1/throughput?minutes=0").await;

    // Assert
    let total = |answer: &Value, what: &str| -> i64 {
        answer["minutes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|minute| minute[what].as_i64())
            .sum()
    };
    assert_eq!(all["minutes"].as_array().map(Vec::len), Some(5), "{all}");
    assert_eq!(
        [
            total(&all, "started"),
            total(&all, "succeeded"),
            total(&all, "failed")
        ],
        [2, 1, 1],
        "{all}"
    );
    assert_eq!(
        [
            total(&mc16a, "started"),
            total(&mc16a, "succeeded"),
            total(&mc16a, "failed")
        ],
        [1, 1, 0],
        "{mc16a}"
    );
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
}
on_both_databases!(throughput_counts_starts_and_ends_per_minute_of_the_callers_submissions);
