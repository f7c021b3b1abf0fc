//! A real browser for the page's tests: Debian's `chromium`, headless, driven through its
//! `chromedriver` (WebDriver on 127.0.0.1). The browser is kept on loopback: hostnames other
//! than localhost do not resolve and its background services are off, so it sends nothing
//! beyond this machine.
//!
//! Screenshots go to `SH_TEST_ARTIFACTS` (`tests/run.sh` sets it to `test-artifacts/` in the
//! checkout), or to cargo's temporary directory for tests.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::harness::eventually;
use crate::support::{must_run_everything, say_once_skipped};

/// A headless Chromium session, and the chromedriver that runs it (stopped on drop).
pub struct Browser {
    pub client: Client,
    driver: Child,
    webdriver: String,
    artifacts: PathBuf,
    /// The browser's profile, removed with it.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A browser whose window is `width` x `height`, saving screenshots as `<story>-<name>.png`;
    /// `None` (the test is skipped, and says so) where no chromedriver is installed, except
    /// under `tests/run.sh`, which installs it and where a missing browser fails the test.
    pub async fn start(story: &str, width: u32, height: u32) -> Option<Browser> {
        Browser::start_themed(story, width, height, false).await
    }

    /// [`Browser::start`], its system theme dark when `dark` (the page's `prefers-color-scheme`).
    pub async fn start_themed(story: &str, width: u32, height: u32, dark: bool) -> Option<Browser> {
        let chromedriver = std::env::var("SH_TEST_CHROMEDRIVER")
            .unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
        if !std::path::Path::new(&chromedriver).exists() {
            assert!(
                !must_run_everything(),
                "no chromedriver at {chromedriver}: tests/run.sh installs Debian's chromium-driver"
            );
            say_once_skipped("the browser tests: Debian's chromium-driver is not installed");
            return None;
        }
        let port = free_port();
        // In a process group of its own, with the browser it starts, so both can be stopped
        // together even when a test fails before it closes the session.
        let driver = Command::new(&chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let webdriver = format!("http://127.0.0.1:{port}");
        let status = format!("{webdriver}/status");
        eventually(
            "chromedriver to answer",
            Duration::from_secs(30),
            || async {
                let answer = reqwest::get(&status).await.ok()?;
                let body: Value = answer.json().await.ok()?;
                (body["value"]["ready"] == true).then_some(())
            },
        )
        .await;

        let profile = tempfile::tempdir().expect("browser profile");
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-domain-reliability",
            "--disable-client-side-phishing-detection",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
        ]
        .map(str::to_owned)
        .into();
        args.push(format!("--window-size={width},{height}"));
        args.push(format!("--user-data-dir={}", profile.path().display()));
        if dark {
            args.push("--force-dark-mode".to_owned());
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": std::env::var("SH_TEST_CHROMIUM")
                    .unwrap_or_else(|_| "/usr/bin/chromium".to_owned()),
                "args": args,
            },
        });
        let capabilities = match capabilities {
            Value::Object(map) => map,
            _ => unreachable!("a JSON object"),
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .expect("a chromium session");
        let artifacts = std::env::var("SH_TEST_ARTIFACTS")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artifacts"))
            .join(story);
        std::fs::create_dir_all(&artifacts).expect("artifacts directory");
        Some(Browser {
            client,
            driver,
            webdriver,
            artifacts,
            _profile: profile,
        })
    }

    /// Opens the page at `page` (`.../ui`) and signs in with `token`.
    pub async fn sign_in(&self, page: &str, token: &str) {
        self.client.goto(page).await.expect("open the page");
        self.fill("token", token).await;
        self.click("#signin button[type=submit]").await;
    }

    /// Saves what the page shows now as `<name>.png`, to be looked at.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let path = self.artifacts.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        crate::support::report(&format!("screenshot: {}", path.display()));
    }

    /// Types `text` into the field with this id, after clearing it.
    pub async fn fill(&self, id: &str, text: &str) {
        let field = self.find(&format!("#{id}")).await;
        field.clear().await.expect("clear field");
        field.send_keys(text).await.expect("type into field");
    }

    /// Clicks the element `css` selects. A live view may draw it again between the find and
    /// the click (its old element is then stale): it is found again, within the deadline.
    pub async fn click(&self, css: &str) {
        eventually(
            &format!("a click on {css}"),
            Duration::from_secs(30),
            || async {
                match self.find(css).await.click().await {
                    Ok(()) => Some(()),
                    Err(error) if error.is_stale_element_reference() => None,
                    Err(error) => panic!("click {css}: {error}"),
                }
            },
        )
        .await;
    }

    /// The element `css` selects, waiting for it to appear.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css} on the page: {error}"))
    }

    /// The page's visible text, waiting until it contains `expected`.
    pub async fn wait_for_text(&self, what: &str, deadline: Duration, expected: &str) -> String {
        eventually(what, deadline, || async {
            let body = self.client.find(Locator::Css("body")).await.ok()?;
            let text = body.text().await.ok()?;
            text.contains(expected).then_some(text)
        })
        .await
    }

    /// Asserts that the page is no wider than the window (a phone's, say): nothing to scroll
    /// sideways.
    pub async fn assert_fits_the_width(&self) {
        let overflow = self
            .client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                Vec::new(),
            )
            .await
            .expect("page width");
        assert!(
            overflow.as_f64().is_some_and(|extra| extra <= 1.0),
            "the page is wider than the window by {overflow} px"
        );
    }

    /// The accessibility rules the page as it is now breaks, by axe-core (`SH_TEST_AXE`, which
    /// `tests/run.sh` fetches): each as `rule: what it asks (the elements that break it)`.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let Ok(path) = std::env::var("SH_TEST_AXE") else {
            assert!(
                !crate::support::must_run_everything(),
                "SH_TEST_AXE is not set: tests/run.sh fetches axe-core"
            );
            crate::support::say_once_skipped("accessibility checks: SH_TEST_AXE is not set");
            return Vec::new();
        };
        let axe = std::fs::read_to_string(&path).expect("axe-core's script");
        let script = format!(
            "{axe}\nreturn axe.run(document, {{resultTypes: ['violations']}}).then((result) => \
             result.violations.map((v) => `${{v.id}}: ${{v.help}} (${{v.nodes.map((n) => \
             n.target.join(' ')).join(', ')}})`));"
        );
        let found = self
            .client
            .execute(&script, Vec::new())
            .await
            .expect("axe-core ran");
        serde_json::from_value(found).expect("a list of violations")
    }

    /// What the page wrote to the browser's console at level SEVERE (script errors, failed
    /// loads), from chromedriver's log of the session.
    pub async fn console_errors(&self) -> Vec<String> {
        let session = self
            .client
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        let log: Value = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.webdriver))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("read the browser's log")
            .json()
            .await
            .expect("the log as JSON");
        log["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Stops chromedriver and every browser process it started (its process group).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}
