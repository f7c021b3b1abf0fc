//! What the client does only on a terminal, run on a pseudo-terminal: it asks before cancelling
//! everything that matches, reads a token without showing it, and keeps a live line of counts
//! while it waits.

use reqwest::StatusCode;
use serde_json::json;

use crate::on_both_databases;
use crate::process::Client;
use crate::support::{Backend, TestApp, json as expect_json, spawn_app};

async fn state(app: &TestApp, id: &str) -> String {
    let submission = expect_json(
        app.get(&format!("/v1/submissions/{id}")).await,
        StatusCode::OK,
    )
    .await;
    submission["state"].as_str().unwrap_or_default().to_owned()
}

async fn on_a_terminal_cancel_all_asks_first_and_only_a_yes_cancels(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = Client::of(&app);
    let labelled = crate::harness::id(
        &app.submit(json!({"image": "busybox", "command": "true", "labels": {"campaign": "a"}}))
            .await,
    );
    let cancel = ["cancel", "--all", "-l", "campaign=a"];

    let declined = client.answer_on_a_terminal(&cancel, "[y/N]", "n\n").await;
    let state_after_no = state(&app, &labelled).await;
    let accepted = client.answer_on_a_terminal(&cancel, "[y/N]", "y\n").await;

    declined.expect_code(0);
    assert!(
        declined
            .stdout
            .contains("Cancel every active submission of yours labelled campaign=a? [y/N]"),
        "{declined:#?}"
    );
    assert!(
        declined.stdout.contains("nothing cancelled"),
        "{declined:#?}"
    );
    assert_eq!(state_after_no, "queued");
    accepted.expect_code(0);
    assert!(
        accepted.stdout.contains(&format!("{labelled} cancelled")),
        "{accepted:#?}"
    );
    assert_eq!(state(&app, &labelled).await, "cancelled");
}
on_both_databases!(on_a_terminal_cancel_all_asks_first_and_only_a_yes_cancels);

async fn on_a_terminal_login_asks_for_the_token_without_showing_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = Client::of(&app);

    let login = client
        .answer_on_a_terminal(
            &["login", "--server", &app.address],
            "Token for ",
            &format!("{}\n", app.token),
        )
        .await;

    login.expect_code(0);
    assert!(login.stdout.contains("Token for "), "{login:#?}");
    assert!(
        !login.stdout.contains(&app.token),
        "the token is not echoed: {login:#?}"
    );
    let saved = std::fs::read_to_string(client.config_home().join("submission-helper/config.toml"))
        .expect("the config file");
    assert!(saved.contains(&app.token), "{saved}");
}
on_both_databases!(on_a_terminal_login_asks_for_the_token_without_showing_it);

async fn on_a_terminal_wait_keeps_a_live_line_of_the_counts(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = Client::of(&app);
    let queued = crate::harness::id(
        &app.submit(json!({"image": "busybox", "command": "true"}))
            .await,
    );

    let waited = client
        .answer_on_a_terminal(&["wait", &queued, "--timeout", "3s"], "", "")
        .await;

    waited.expect_code(3);
    // The live line is the counts followed by the time waited; the closing summary has no time.
    assert!(
        waited.stdout.contains(
            "waiting 0, queued 1, pending 0, running 0, succeeded 0, failed 0, cancelled 0 ["
        ),
        "{waited:#?}"
    );
}
on_both_databases!(on_a_terminal_wait_keeps_a_live_line_of_the_counts);

async fn on_a_terminal_a_file_is_submitted_under_a_progress_bar(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = Client::of(&app);
    let directory = tempfile::tempdir().expect("directory");
    let file = directory.path().join("tasks.jsonl");
    let lines: Vec<String> = (1..=250)
        .map(|n| json!({"image": "busybox", "command": format!("run {n}")}).to_string())
        .collect();
    std::fs::write(&file, lines.join("\n")).expect("write the file");
    let path = file.display().to_string();

    let submitted = client
        .answer_on_a_terminal(&["submit", "--file", &path, "--chunk-size", "10"], "", "")
        .await;

    submitted.expect_code(0);
    assert!(
        submitted.stdout.contains("/250 submitted ["),
        "the bar: {submitted:#?}"
    );
    assert!(
        !submitted.stdout.contains("lines 1-10: 10 submitted"),
        "no plain lines on a terminal: {submitted:#?}"
    );
    assert_eq!(app.list_all("").await.len(), 250);
}
on_both_databases!(on_a_terminal_a_file_is_submitted_under_a_progress_bar);
