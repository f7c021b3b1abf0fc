//! A webhook receiver of the tests' own, on 127.0.0.1: it answers the first requests it is
//! sent with a 500, keeps what it accepted, and checks a notification's signature as a real
//! receiver would. Shared by the API tests and the fault tests (which SIGKILL the service).

// Each test binary uses part of it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde_json::Value;
use sha2::Sha256;

use crate::support::eventually_seen;

/// How long [`Receiver::wait_for`] waits for notifications that must arrive.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// What the receiver was sent and answered 2xx to.
#[derive(Debug, Clone)]
pub struct Received {
    pub signature: String,
    pub event_id: String,
    pub body: String,
}

#[derive(Default)]
struct Inbox {
    /// Requests still to answer 500 to.
    failures_left: usize,
    /// Requests answered 500.
    refused: usize,
    accepted: Vec<Received>,
    /// How long an accepted request takes to answer (recorded first, as a receiver that
    /// processes a notification and then answers).
    delay: Duration,
}

/// A webhook receiver on 127.0.0.1 that answers the first `failures` requests with a 500.
pub struct Receiver {
    pub url: String,
    inbox: Arc<Mutex<Inbox>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    pub async fn start(failures: usize) -> Self {
        let inbox = Arc::new(Mutex::new(Inbox {
            failures_left: failures,
            ..Inbox::default()
        }));
        let app = axum::Router::new()
            .route("/hooks", axum::routing::post(receive))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let address = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("receiver");
        });
        Receiver {
            url: format!("http://{address}/hooks"),
            inbox,
            server,
        }
    }

    pub fn accepted(&self) -> Vec<Received> {
        self.inbox.lock().expect("inbox").accepted.clone()
    }

    pub fn refused(&self) -> usize {
        self.inbox.lock().expect("inbox").refused
    }

    /// From now on, answers every request with a 204.
    pub fn recover(&self) {
        self.inbox.lock().expect("inbox").failures_left = 0;
    }

    /// From now on, takes `delay` to answer each request it accepts.
    pub fn slow_down(&self, delay: Duration) {
        self.inbox.lock().expect("inbox").delay = delay;
    }

    /// Waits until `count` notifications with distinct revisions were accepted.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let what = format!("{count} notifications");
        eventually_seen(&what, PATIENCE, || async {
            let accepted = self.accepted();
            let mut revisions: Vec<&str> = accepted.iter().map(|r| r.event_id.as_str()).collect();
            revisions.sort_unstable();
            revisions.dedup();
            if revisions.len() >= count {
                return Ok(accepted);
            }
            Err(format!("got {accepted:#?}"))
        })
        .await
    }
}

async fn receive(
    AxumState(inbox): AxumState<Arc<Mutex<Inbox>>>,
    headers: HeaderMap,
    body: String,
) -> AxumStatus {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let delay = {
        let mut inbox = inbox.lock().expect("inbox");
        if inbox.failures_left > 0 {
            inbox.failures_left -= 1;
            inbox.refused += 1;
            return AxumStatus::INTERNAL_SERVER_ERROR;
        }
        inbox.accepted.push(Received {
            signature: header("submission-helper-signature"),
            event_id: header("submission-helper-event-id"),
            body,
        });
        inbox.delay
    };
    tokio::time::sleep(delay).await;
    AxumStatus::NO_CONTENT
}

/// The event a notification carries, after checking its signature as a receiver would.
pub fn verified(received: &Received, secret: &str) -> Value {
    let (timestamp, digest) = received
        .signature
        .split_once(',')
        .and_then(|(t, v1)| Some((t.strip_prefix("t=")?, v1.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("a signature header of the form t=..,v1=..: {received:?}"));
    let seconds: i64 = timestamp.parse().expect("unix seconds");
    assert!(
        (Timestamp::now().as_second() - seconds).abs() < 300,
        "a fresh timestamp: {received:?}"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{timestamp}.{}", received.body).as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(digest, expected, "the signature verifies: {received:?}");
    let event: Value = serde_json::from_str(&received.body).expect("a JSON body");
    assert_eq!(
        event["revision"].to_string(),
        received.event_id,
        "the id header is the revision"
    );
    event
}

/// The webhook secret of the test user's token (the one the service or the test app was
/// given), as `token create` showed it.
pub async fn webhook_secret(database_url: &str) -> String {
    let store = submission_helper::storage::Store::connect(database_url)
        .await
        .expect("store");
    let token = store
        .tokens()
        .await
        .expect("tokens")
        .into_iter()
        .find(|token| token.user == crate::support::USER)
        .expect("the test user's token");
    store
        .webhook_secret(&token.id)
        .await
        .expect("secret")
        .expect("the token has a webhook secret")
}
