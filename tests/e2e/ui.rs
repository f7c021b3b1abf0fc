//! The page at `/ui` as a person uses it, in a real browser against the service on the control
//! plane: sign in, a refused field shown beside it, submit, the state changing without a
//! reload, the log followed live, cancel with its confirmation; then the same list on a phone.
//! Each step leaves a screenshot (see `browser.rs`).

use std::time::Duration;

use serde_json::Value;

use crate::browser::Browser;
use crate::harness::{TestCluster, eventually};
use crate::support::Backend;

#[tokio::test]
#[ignore = "needs the local control plane and Debian's chromium: run tests/run.sh"]
async fn a_user_signs_in_submits_watches_it_run_follows_its_log_and_cancels_it() {
    let cluster = TestCluster::new().await;
    let app = cluster.spawn_service(Backend::Sqlite).await;
    let Some(browser) = Browser::start("ui-story", 1280, 800).await else {
        return;
    };
    let gate = cluster.gate("page");

    // Sign in: a wrong token is refused in words, the right one shows the submit form.
    browser
        .client
        .goto(&app.url("/ui"))
        .await
        .expect("open the page");
    browser.fill("token", "not-a-token").await;
    browser.click("#signin button[type=submit]").await;
    browser
        .wait_for_text(
            "the wrong token refused",
            Duration::from_secs(10),
            "not accepted",
        )
        .await;
    browser.fill("token", &app.token).await;
    browser.click("#signin button[type=submit]").await;
    browser.find("#submit").await;
    browser.screenshot("1-signed-in").await;

    // A refused field: the server's reason beside it, nothing stored.
    browser.fill("s-image", "busybox").await;
    browser.fill("s-command", "true").await;
    browser.fill("s-mount_path", "relative/path").await;
    browser.click("#submit button[type=submit]").await;
    let reason = eventually(
        "the refusal beside the mount path",
        Duration::from_secs(10),
        || async {
            let text = browser.find("#e-mount_path").await.text().await.ok()?;
            (!text.is_empty()).then_some(text)
        },
    )
    .await;
    assert!(reason.contains("absolute"), "reason shown: {reason}");
    assert!(app.list_all("").await.is_empty(), "nothing was stored");
    browser.screenshot("2-field-refused").await;

    // Submit: the row appears and turns running without a reload.
    browser.fill("s-mount_path", "/ntuples").await;
    browser.fill("s-name", "page-run").await;
    let command = format!("echo hello from the page; {}", gate.wait_command());
    browser.fill("s-command", &command).await;
    browser.click("#submit button[type=submit]").await;
    let row = eventually(
        "the row of page-run to show running",
        Duration::from_secs(90),
        || async {
            let rows = browser
                .client
                .find_all(fantoccini::Locator::Css("tbody tr"))
                .await
                .ok()?;
            for row in rows {
                let text = row.text().await.ok()?;
                if text.contains("page-run") && text.contains("running") {
                    return Some(text);
                }
            }
            None
        },
    )
    .await;
    assert!(row.contains("page-run"));
    let stored = app.list_all("").await;
    assert_eq!(stored.len(), 1, "one submission stored: {stored:?}");
    let id = stored[0]["id"].as_str().expect("id").to_owned();
    browser.screenshot("3-running").await;

    // Its page: the log, followed live.
    browser.click("tbody tr a").await;
    browser
        .wait_for_text(
            "the payload's first line in the log",
            Duration::from_secs(60),
            "hello from the page",
        )
        .await;
    browser.screenshot("4-log-followed").await;

    // Cancel, confirmed in the browser's dialog.
    browser.click("#cancel").await;
    browser
        .client
        .accept_alert()
        .await
        .expect("the confirmation");
    let state = eventually("the cancel recorded", Duration::from_secs(30), || async {
        let submission: Value = app
            .get(&format!("/v1/submissions/{id}"))
            .await
            .json()
            .await
            .ok()?;
        (submission["state"] == "cancelled").then_some(submission)
    })
    .await;
    assert_eq!(state["state"], "cancelled");
    browser
        .wait_for_text(
            "the page to show the cancel",
            Duration::from_secs(30),
            "State: cancelled",
        )
        .await;
    let buttons = browser
        .client
        .find_all(fantoccini::Locator::Css("#cancel"))
        .await
        .expect("buttons");
    assert!(
        buttons.is_empty(),
        "no Cancel offered for a cancelled submission"
    );
    browser.screenshot("5-cancelled").await;

    // The list on a phone: everything within the screen's width.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("phone size");
    browser
        .client
        .goto(&app.url("/ui#/"))
        .await
        .expect("back to the list");
    browser
        .wait_for_text("the list on a phone", Duration::from_secs(30), "page-run")
        .await;
    let overflow = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            Vec::new(),
        )
        .await
        .expect("page width");
    browser.screenshot("6-phone").await;
    assert!(
        overflow.as_f64().is_some_and(|extra| extra <= 1.0),
        "the page is wider than the phone by {overflow} px"
    );

    // The browser logs every failed request; the two this story provoked on purpose are the
    // only ones allowed.
    let provoked = [
        "/v1/submissions?limit=1 - Failed to load resource: the server responded with a status of 401",
        "/v1/submissions - Failed to load resource: the server responded with a status of 422",
    ];
    let errors: Vec<String> = browser
        .console_errors()
        .await
        .into_iter()
        .filter(|error| !provoked.iter().any(|expected| error.contains(expected)))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await;
}
