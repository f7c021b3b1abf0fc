//! The page at `/ui` as a person uses it, in a real browser against the service on the control
//! plane: sign in, a refused field shown beside it, submit, the state changing without a
//! reload, the log followed live, cancel with its confirmation, a failed submission's attempts
//! and its rerun; then the same list on a phone.
//! Each step leaves a screenshot (see `browser.rs`).

use std::time::Duration;

use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::harness::{PAYLOAD_IMAGE, TestCluster, eventually};
use crate::support::{Backend, json as json_body, spawn_app};

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
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "the list: {violations:#?}");

    // A refused field: the server's reason beside it, nothing stored.
    browser.fill("s-image", PAYLOAD_IMAGE).await;
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
    let command = format!(
        "echo hello from the page; echo page line 2; echo page line 3; {}",
        gate.wait_command()
    );
    browser.fill("s-command", &command).await;
    browser.click("#submit button[type=submit]").await;
    let row = eventually(
        "the row of page-run to show running",
        Duration::from_secs(90),
        || async {
            rows(&browser)
                .await?
                .into_iter()
                .find(|text| text.contains("page-run") && text.contains("running"))
        },
    )
    .await;
    assert!(row.contains("page-run"));
    let stored = app.list_all("").await;
    assert_eq!(stored.len(), 1, "one submission stored: {stored:?}");
    let id = stored[0]["id"].as_str().expect("id").to_owned();
    browser.screenshot("3-running").await;

    // Times as kubectl prints ages, the full time in the browser's zone on hover; the state as
    // a badge that says it in words.
    let created = browser.find("tbody tr time").await;
    let age = created.text().await.expect("age");
    let seconds = age.strip_suffix('s').and_then(|n| n.parse::<u64>().ok());
    assert!(seconds.is_some_and(|n| n < 120), "an age in seconds: {age}");
    let full = created
        .attr("title")
        .await
        .expect("title")
        .unwrap_or_default();
    assert!(full.contains(':'), "the full time on hover: {full:?}");
    let state = browser
        .find("tbody tr .badge")
        .await
        .text()
        .await
        .expect("badge");
    assert_eq!(state, "running");

    // Its page: the log, followed live.
    browser.click("tbody tr a").await;
    browser
        .wait_for_text(
            "the payload's first line in the log",
            Duration::from_secs(60),
            "hello from the page",
        )
        .await;
    let job_name = stored[0]["job_name"].as_str().expect("job name").to_owned();
    let tables = eventually(
        "its Job and pod as kubectl shows them",
        Duration::from_secs(30),
        || async {
            let job = browser.find("#job").await.text().await.ok()?;
            let pods = browser.find("#pods").await.text().await.ok()?;
            (job.contains(&job_name) && pods.contains("Running")).then_some((job, pods))
        },
    )
    .await;
    assert!(tables.0.contains("COMPLETIONS"), "Job table: {}", tables.0);
    assert!(tables.1.contains(&job_name), "pod table: {}", tables.1);
    browser.screenshot("4-log-followed").await;

    // Find in the log while it is followed: every match marked, Next moves to the second.
    browser
        .wait_for_text(
            "the log's last line",
            Duration::from_secs(30),
            "page line 3",
        )
        .await;
    browser.fill("log-find", "page").await;
    let counted = |expected: &'static str| {
        let browser = &browser;
        async move {
            eventually(
                &format!("the search to say {expected:?}"),
                Duration::from_secs(10),
                || async {
                    let said = browser.find("#log-matches").await.text().await.ok()?;
                    (said == expected).then_some(())
                },
            )
            .await
        }
    };
    counted("1 of 3").await;
    browser.click("#log-next").await;
    counted("2 of 3").await;
    let marked = browser
        .client
        .execute(
            "return [...document.querySelectorAll('pre.log mark')].map(m => m.className + ':' + m.textContent)",
            Vec::new(),
        )
        .await
        .expect("marks");
    assert_eq!(
        marked,
        serde_json::json!([":page", "current:page", ":page"])
    );
    browser.screenshot("4b-log-search").await;

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
        .find_all(Locator::Css("#cancel"))
        .await
        .expect("buttons");
    assert!(
        buttons.is_empty(),
        "no Cancel offered for a cancelled submission"
    );
    browser.screenshot("5-cancelled").await;

    // A submission that failed: its page lists the pod that ended, its exit code and reason.
    let failed = app
        .submit(json!({"name": "page-fails", "image": PAYLOAD_IMAGE,
                       "command": "echo oops; exit 3", "retries": 0}))
        .await;
    let failed_id = failed["id"].as_str().expect("id").to_owned();
    eventually("page-fails to fail", Duration::from_secs(90), || async {
        let submission: Value = app
            .get(&format!("/v1/submissions/{failed_id}"))
            .await
            .json()
            .await
            .ok()?;
        (submission["state"] == "failed").then_some(())
    })
    .await;
    browser
        .client
        .goto(&app.url(&format!("/ui#/submissions/{failed_id}")))
        .await
        .expect("the failed submission's page");
    let attempts = eventually(
        "its attempt on the page",
        Duration::from_secs(30),
        || async {
            let table = browser.find("#attempts").await.text().await.ok()?;
            table.contains("RETRY USED").then_some(table)
        },
    )
    .await;
    let row: Vec<&str> = attempts
        .lines()
        .find(|line| line.starts_with("sh-"))
        .map(|line| line.split_whitespace().collect())
        .unwrap_or_default();
    assert_eq!(row.get(1..3), Some(&["3", "Error"][..]), "{attempts}");
    assert_eq!(row.get(4), Some(&"yes"), "{attempts}");
    // What Kubernetes recorded about it: the job controller created its pod.
    let recorded = eventually("its Kubernetes events", Duration::from_secs(30), || async {
        let table = browser.find("#cluster-events").await.text().await.ok()?;
        table.contains("SuccessfulCreate").then_some(table)
    })
    .await;
    assert!(recorded.contains("job-controller"), "{recorded}");
    browser.screenshot("6-attempts").await;
    let violations = browser.accessibility_violations().await;
    assert!(
        violations.is_empty(),
        "a failed submission's page: {violations:#?}"
    );

    // Rerun it from its page with more memory, confirmed in the browser's dialog.
    browser
        .find("#rerun-memory")
        .await
        .send_keys("64Mi")
        .await
        .expect("typed");
    browser.click("#rerun").await;
    browser
        .client
        .accept_alert()
        .await
        .expect("the confirmation");
    let reran = eventually("the rerun recorded", Duration::from_secs(30), || async {
        let submission: Value = app
            .get(&format!("/v1/submissions/{failed_id}"))
            .await
            .json()
            .await
            .ok()?;
        (submission["reruns"] == 1).then_some(submission)
    })
    .await;
    assert_eq!(reran["resources"]["requests"]["memory"], "64Mi", "{reran}");
    browser
        .wait_for_text(
            "the page to show the rerun",
            Duration::from_secs(30),
            "Reruns: 1",
        )
        .await;
    browser.screenshot("6b-rerun").await;

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
    browser.screenshot("7-phone").await;
    browser.assert_fits_the_width().await;

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

#[tokio::test]
#[ignore = "needs Debian's chromium: run tests/run.sh"]
async fn the_list_pages_through_older_submissions_and_cancel_all_counts_every_match() {
    // No cluster: the submissions stay queued, which is all the list needs.
    let app = spawn_app(Backend::Sqlite).await;
    let Some(browser) = Browser::start("ui-paging", 1280, 800).await else {
        return;
    };
    let many: Vec<Value> = (0..120)
        .map(|i| {
            json!({"name": format!("big-{i:03}"), "image": "busybox", "command": "true",
                        "labels": {"campaign": "big"}})
        })
        .collect();
    json_body(
        app.post_json("/v1/submissions/batch", &json!({"submissions": many}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    for i in 0..3 {
        app.submit(
            json!({"name": format!("other-{i}"), "image": "busybox", "command": "true",
                          "labels": {"campaign": "other"}}),
        )
        .await;
    }
    browser.sign_in(&app.url("/ui"), &app.token).await;

    // 123 rows, 50 a page, newest first: 50, 50, 23, and back.
    let first = page_rows(&browser, "other-2").await;
    assert_eq!(first.len(), 50);
    assert!(first[0].contains("other-2"), "newest first: {first:?}");
    browser.click("#older").await;
    let second = page_rows(&browser, "big-069").await;
    assert_eq!(second.len(), 50);
    browser.click("#older").await;
    let third = page_rows(&browser, "big-000").await;
    assert_eq!(third.len(), 23);
    assert!(third[22].contains("big-000"), "oldest last: {}", third[22]);
    let older_disabled = browser.find("#older").await.attr("disabled").await;
    assert!(
        older_disabled.is_ok_and(|value| value.is_some()),
        "no page after the last"
    );
    browser.screenshot("1-last-page").await;
    browser.click("#newer").await;
    assert_eq!(page_rows(&browser, "big-069").await.len(), 50);

    // The page sorts by a column's header, and the other way round on a second click.
    // (This page holds big-072 down to big-023.)
    for (first, sorted) in [("big-023", "ascending"), ("big-072", "descending")] {
        browser.click("th button[data-column='Name']").await;
        let rows = eventually(
            "the rows sorted by name",
            Duration::from_secs(10),
            || async {
                let rows = rows(&browser).await?;
                rows.first()?.contains(first).then_some(rows)
            },
        )
        .await;
        assert_eq!(rows.len(), 50);
        let order = browser
            .find("th:has(button[data-column='Name'])")
            .await
            .attr("aria-sort")
            .await
            .ok()
            .flatten();
        assert_eq!(order.as_deref(), Some(sorted));
    }

    // Cancel all of one campaign: the count is every match, not a page of them.
    browser.fill("f-label", "campaign=big").await;
    browser.click("#filters button[type=submit]").await;
    browser.click("#cancel-all").await;
    let question = eventually("the confirmation", Duration::from_secs(10), || async {
        browser.client.get_alert_text().await.ok()
    })
    .await;
    assert_eq!(question, "Cancel 120 active submission(s)?");
    browser.client.accept_alert().await.expect("confirm");
    eventually("120 cancelled", Duration::from_secs(10), || async {
        let cancelled = app.list_all("&state=cancelled").await;
        (cancelled.len() == 120).then_some(())
    })
    .await;
    let others = app.list_all("&label=campaign=other").await;
    assert!(
        others
            .iter()
            .all(|submission| submission["state"] == "queued"),
        "the other campaign is untouched: {others:?}"
    );

    // The filter is in the address: a shared view opens filtered.
    let address = browser.client.current_url().await.expect("address");
    assert_eq!(address.fragment(), Some("/?label=campaign%3Dbig"));
    browser
        .client
        .goto(&app.url("/ui#/?label=campaign%3Dother"))
        .await
        .expect("a shared view");
    let shared = page_rows(&browser, "other-0").await;
    assert_eq!(shared.len(), 3, "only the other campaign: {shared:?}");
    let label = browser.find("#f-label").await.prop("value").await;
    assert_eq!(label.ok().flatten().as_deref(), Some("campaign=other"));
    browser.screenshot("2-shared-view").await;
    browser.close().await;
}

/// The rows of the list once the page shows `expected`.
async fn page_rows(browser: &Browser, expected: &str) -> Vec<String> {
    eventually(
        &format!("a page showing {expected}"),
        Duration::from_secs(30),
        || async {
            let texts = rows(browser).await?;
            texts
                .iter()
                .any(|text| text.contains(expected))
                .then_some(texts)
        },
    )
    .await
}

/// The text of each row of the list as the page shows it now.
async fn rows(browser: &Browser) -> Option<Vec<String>> {
    let rows = browser
        .client
        .find_all(Locator::Css("tbody tr"))
        .await
        .ok()?;
    let mut texts = Vec::new();
    for row in rows {
        texts.push(row.text().await.ok()?);
    }
    Some(texts)
}

#[tokio::test]
#[ignore = "needs Debian's chromium: run tests/run.sh"]
async fn on_a_system_in_dark_mode_the_page_is_dark_and_its_badges_stay_readable() {
    // No cluster: a queued submission is all the list needs.
    let app = spawn_app(Backend::Sqlite).await;
    let Some(browser) = Browser::start_themed("ui-dark", 1280, 800, true).await else {
        return;
    };
    app.submit(
        json!({"name": "in-the-dark", "image": "busybox", "command": "true",
                      "labels": {"campaign": "night"}}),
    )
    .await;

    browser.sign_in(&app.url("/ui"), &app.token).await;
    browser
        .wait_for_text("the list", Duration::from_secs(30), "in-the-dark")
        .await;

    let colours = browser
        .client
        .execute(
            "const style = (node) => getComputedStyle(node);
             const badge = document.querySelector('tbody .badge');
             return [style(document.documentElement).backgroundColor, style(document.documentElement).color,
                     style(badge).backgroundColor, style(badge).color];",
            Vec::new(),
        )
        .await
        .expect("colours");
    browser.screenshot("1-list").await;
    let rgb = |value: &Value| -> Vec<f64> {
        value
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("rgb(")
            .trim_end_matches(')')
            .split(',')
            .filter_map(|part| part.trim().parse().ok())
            .collect()
    };
    let [page, text, badge, badge_text] =
        [0, 1, 2, 3].map(|index| luminance(&rgb(&colours[index])));
    assert!(
        page < 0.05 && text > 0.7,
        "a dark page with light text: {colours}"
    );
    assert!(
        contrast(badge, badge_text) >= 4.5,
        "the badge's text readable on it (WCAG AA): {colours}"
    );
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "the list, dark: {violations:#?}");
    browser.click("#to-campaigns").await;
    browser.find("section.campaign").await;
    browser.screenshot("2-campaigns").await;
    let violations = browser.accessibility_violations().await;
    assert!(
        violations.is_empty(),
        "the campaigns, dark: {violations:#?}"
    );
    browser.close().await;
}

/// The relative luminance of an sRGB colour (WCAG 2).
fn luminance(rgb: &[f64]) -> f64 {
    let channel = |value: f64| {
        let value = value / 255.0;
        if value <= 0.03928 {
            value / 12.92
        } else {
            ((value + 0.055) / 1.055).powf(2.4)
        }
    };
    match rgb {
        [r, g, b, ..] => 0.2126 * channel(*r) + 0.7152 * channel(*g) + 0.0722 * channel(*b),
        _ => f64::NAN,
    }
}

/// The contrast ratio of two luminances (WCAG 2).
fn contrast(a: f64, b: f64) -> f64 {
    (a.max(b) + 0.05) / (a.min(b) + 0.05)
}

#[tokio::test]
#[ignore = "needs Debian's chromium: run tests/run.sh"]
async fn with_several_clusters_the_list_and_a_submission_say_which_cluster_each_is_in() {
    // Two clusters without a client: pinned submissions show their cluster while queued; and
    // Kueue's queues, one of them asked for.
    let app = crate::support::TestApp::builder()
        .with_clusters(crate::support::two_clusters_without_clients())
        .with_settings(|settings| {
            settings.defaults.kueue = Some(submission_helper::domain::KueueDefaults {
                default_queue: Some("analysis".into()),
            });
        })
        .spawn()
        .await;
    let Some(browser) = Browser::start("ui-clusters", 1280, 800).await else {
        return;
    };
    let pinned = app
        .submit(
            json!({"name": "to-the-cloud", "image": "busybox", "command": "true",
                       "cluster": "cloud"}),
        )
        .await;
    app.submit(
        json!({"name": "kept-onsite", "image": "busybox", "command": "true",
                      "cluster": "onsite", "queue": "express"}),
    )
    .await;
    app.submit(json!({"name": "anywhere", "image": "busybox", "command": "true"}))
        .await;
    browser.sign_in(&app.url("/ui"), &app.token).await;

    let listed = page_rows(&browser, "anywhere").await;
    let header = browser
        .find("th button[data-column='Cluster']")
        .await
        .text()
        .await;
    browser.screenshot("1-list").await;
    let id = pinned["id"].as_str().expect("id");
    browser
        .client
        .goto(&app.url(&format!("/ui#/submissions/{id}")))
        .await
        .expect("the submission's page");
    let cluster = eventually(
        "the submission's cluster",
        Duration::from_secs(10),
        || async {
            browser
                .client
                .find(Locator::Css("#cluster"))
                .await
                .ok()?
                .text()
                .await
                .ok()
        },
    )
    .await;
    browser.screenshot("2-submission").await;
    // A shared view of one cluster's submissions: its filter is in the address.
    browser
        .client
        .goto(&app.url("/ui#/?cluster=cloud"))
        .await
        .expect("the filtered list");
    let filtered = eventually(
        "only the cloud's submission listed",
        Duration::from_secs(30),
        || async {
            let texts = rows(&browser).await?;
            (texts.len() == 1).then_some(texts)
        },
    )
    .await;
    let filter = browser.find("#f-cluster").await.prop("value").await;
    browser.screenshot("3-filtered-by-cluster").await;
    browser
        .client
        .goto(&app.url("/ui#/?queue=express"))
        .await
        .expect("the list of one queue");
    let queued = eventually(
        "only the express queue's submission listed",
        Duration::from_secs(30),
        || async {
            let texts = rows(&browser).await?;
            (texts.len() == 1 && texts[0].contains("kept-onsite")).then_some(texts)
        },
    )
    .await;
    browser.screenshot("4-filtered-by-queue").await;

    assert_eq!(header.ok().as_deref(), Some("Cluster"));
    assert!(filtered[0].contains("to-the-cloud"), "{filtered:?}");
    assert_eq!(filter.ok().flatten().as_deref(), Some("cloud"));
    assert_eq!(queued.len(), 1, "{queued:?}");
    let row = |name: &str| listed.iter().find(|row| row.contains(name)).cloned();
    assert!(
        row("to-the-cloud").is_some_and(|row| row.contains("cloud")),
        "{listed:?}"
    );
    assert!(
        row("kept-onsite").is_some_and(|row| row.contains("onsite")),
        "{listed:?}"
    );
    assert!(
        row("anywhere").is_some_and(|row| row.contains("<none>")),
        "{listed:?}"
    );
    assert_eq!(cluster, "Cluster: cloud");
    browser.close().await;
}
