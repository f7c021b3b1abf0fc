//! `rerun ID...` and `rerun -l K=V --failed`, which asks first as `cancel --all` does and says
//! how many run again.

use reqwest::StatusCode;
use serde_json::{Value, json};
use submission_helper::domain::State;
use submission_helper::storage::Store;

use crate::harness::id;
use crate::on_both_databases;
use crate::process::Client;
use crate::support::{Backend, TestApp, json as expect_json, spawn_app};

async fn submission(app: &TestApp, id: &str) -> Value {
    expect_json(
        app.get(&format!("/v1/submissions/{id}")).await,
        StatusCode::OK,
    )
    .await
}

async fn end(app: &TestApp, id: &str, state: State) {
    let store = Store::connect(&app.database.url).await.expect("store");
    crate::support::end(&store, id.parse().expect("id"), state).await;
}

async fn rerun_by_label_needs_yes_then_reruns_only_the_failed_with_more_memory(backend: Backend) {
    // Arrange: a1 failed, a2 succeeded, b failed
    let app = spawn_app(backend).await;
    let client = Client::of(&app);
    let submit = |campaign: &str| {
        app.submit(json!({"image": "busybox", "command": "true", "labels": {"campaign": campaign}}))
    };
    let (a1, a2, b) = (
        id(&submit("a").await),
        id(&submit("a").await),
        id(&submit("b").await),
    );
    end(&app, &a1, State::Failed).await;
    end(&app, &a2, State::Succeeded).await;
    end(&app, &b, State::Failed).await;

    // Act
    let refused = client.run(&["rerun", "-l", "campaign=a", "--failed"]).await;
    let confirmed = client
        .run(&[
            "rerun",
            "-l",
            "campaign=a",
            "--failed",
            "--memory",
            "8000M",
            "--yes",
        ])
        .await;
    let by_id = client.run(&["rerun", &b]).await;
    let succeeded = client.run(&["rerun", &a2]).await;

    // Assert
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("Rerun the 1 failed submission(s)")
            && refused.stderr.contains("--yes"),
        "{}",
        refused.stderr
    );
    assert_eq!(confirmed.expect_code(0).lines(), [format!("{a1} rerun")]);
    assert!(
        confirmed.stderr.contains("1 submission(s) rerun"),
        "{}",
        confirmed.stderr
    );
    let a1_now = submission(&app, &a1).await;
    assert_eq!(a1_now["state"], "queued");
    assert_eq!(a1_now["resources"]["requests"]["memory"], "8000M");
    assert_eq!(by_id.expect_code(0).lines(), [format!("{b} rerun")]);
    succeeded.expect_code(2);
    assert!(
        succeeded.stderr.contains("succeeded"),
        "{}",
        succeeded.stderr
    );
    assert_eq!(submission(&app, &a2).await["reruns"], 0);
}
on_both_databases!(rerun_by_label_needs_yes_then_reruns_only_the_failed_with_more_memory);
