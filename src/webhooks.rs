//! Sending submissions' state changes to their `notify_url`: the sender that works through the
//! outbox (`storage::webhooks`), signs each notification, and retries with backoff.
//!
//! Each notification is the event's JSON as `GET /v1/events` sends it (its revision included),
//! POSTed with `Submission-Helper-Signature: t=<unix seconds>,v1=<hex>`, the HMAC-SHA256 of
//! `"{t}.{body}"` under the webhook secret of the token the submission was sent with, and
//! `Submission-Helper-Event-Id: <revision>`. A receiver verifies the signature, refuses an old
//! `t` (a replay), and drops a revision it has seen: delivery is at least once, since a sender
//! that dies between the receiver's answer and recording it leaves the row to be sent again.
//!
//! Every claimed delivery is sent by a task of its own, up to [`Settings::concurrency`] at
//! once, each bounded by [`Settings::timeout`], so a slow receiver holds up only its own
//! submission's notifications (which wait for it, to keep their order). A failed attempt is
//! tried again after a backoff that doubles each time, up to [`Settings::attempts`]; then the
//! row is kept as failed and the failure logged.
//!
//! Where a notification may go is checked again when it is sent: the URL against the
//! operator's `--allowed-notify-host`, and every address a name resolves to, so a name that
//! points at a private, loopback or link-local address is not connected to (unless its host is
//! allowed). Redirects are not followed and proxies from the environment are not used, so
//! neither can lead elsewhere.

pub mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use sha2::Sha256;
use tokio::task::JoinSet;

use crate::backoff::Backoff;
use crate::domain::StateEvent;
use crate::domain::notify::{host_allowed, parse_notify_url, refused_address};
use crate::storage::{Attempt, Delivery, Store};

/// The header with the timestamp and signature.
pub const SIGNATURE_HEADER: &str = "submission-helper-signature";
/// The header with the event's revision, to drop duplicates by.
pub const EVENT_ID_HEADER: &str = "submission-helper-event-id";

/// How notifications are sent.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Attempts before a delivery is given up.
    pub attempts: u32,
    /// The wait after the first failed attempt; each further failure doubles it.
    pub first_retry: Duration,
    /// The longest wait between attempts.
    pub max_retry: Duration,
    /// How often the outbox is read without being woken (other replicas' events, retries).
    pub poll: Duration,
    /// Notifications being sent at once.
    pub concurrency: usize,
    /// `--allowed-notify-host`: hosts that may be sent to, private or not.
    pub allowed_hosts: Vec<String>,
}

impl Default for Settings {
    /// Also the defaults of the `--notify-*` flags.
    fn default() -> Self {
        Settings {
            timeout: Duration::from_secs(10),
            attempts: 10,
            first_retry: Duration::from_secs(5),
            max_retry: Duration::from_secs(3600),
            poll: Duration::from_secs(1),
            concurrency: 32,
            allowed_hosts: Vec::new(),
        }
    }
}

impl Settings {
    /// How long a claim holds: well past an attempt's timeout, so a live sender never loses
    /// it; a dead sender's claim lapses after it, and the delivery is sent again.
    fn lease(&self) -> Duration {
        self.timeout.saturating_mul(3)
    }

    /// The wait after the `failed`-th failed attempt (1 for the first).
    pub fn backoff(&self, failed: u32) -> Duration {
        Backoff::doubling(self.first_retry, self.max_retry).after(failed)
    }
}

/// The signature header's value for `body` sent at `unix_seconds`.
pub fn signature(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        // HMAC takes keys of any length.
        return String::new();
    };
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("t={unix_seconds},v1={digest}")
}

/// Sends the outbox's notifications until dropped, counting what becomes of each attempt.
pub async fn run(store: Store, settings: Settings, metrics: Arc<metrics::WebhookMetrics>) {
    let sender = match Sender::new(settings, metrics) {
        Ok(sender) => Arc::new(sender),
        Err(error) => {
            tracing::error!(%error, "cannot build the webhook client; notifications are not sent");
            return;
        }
    };
    let mut wakes = store.delivery_wakes();
    let mut sending = JoinSet::new();
    loop {
        let free = sender.settings.concurrency.saturating_sub(sending.len());
        if free > 0 {
            let limit = u32::try_from(free).unwrap_or(u32::MAX);
            match store
                .claim_deliveries(Timestamp::now(), limit, sender.settings.lease())
                .await
            {
                Ok(claimed) => {
                    for delivery in claimed {
                        sending.spawn(sender.clone().deliver(store.clone(), delivery));
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot read the webhook outbox"),
            }
        }
        tokio::select! {
            // A finished delivery may let its submission's next one go.
            Some(_) = sending.join_next(), if !sending.is_empty() => {}
            _ = wakes.changed() => {}
            () = tokio::time::sleep(sender.settings.poll) => {}
        }
    }
}

struct Sender {
    client: reqwest::Client,
    settings: Settings,
    metrics: Arc<metrics::WebhookMetrics>,
}

impl Sender {
    fn new(settings: Settings, metrics: Arc<metrics::WebhookMetrics>) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("submission-helper/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                allowed: Arc::new(settings.allowed_hosts.clone()),
            }))
            .build()?;
        Ok(Sender {
            client,
            settings,
            metrics,
        })
    }

    /// Makes one attempt at `delivery` and records what became of it.
    async fn deliver(self: Arc<Self>, store: Store, delivery: Delivery) {
        let failed = u32::try_from(delivery.attempts.saturating_add(1)).unwrap_or(u32::MAX);
        let attempt = match self.send(&delivery, failed).await {
            Ok(()) => {
                tracing::debug!(revision = delivery.revision, "notification delivered");
                Attempt::Delivered
            }
            Err(Failure::Final(error)) => Attempt::GiveUp { error },
            Err(Failure::Again(error)) if failed >= self.settings.attempts => {
                Attempt::GiveUp { error }
            }
            Err(Failure::Again(error)) => {
                let wait = jiff::SignedDuration::try_from(self.settings.backoff(failed))
                    .unwrap_or(jiff::SignedDuration::MAX);
                let at = Timestamp::now().checked_add(wait).unwrap_or(Timestamp::MAX);
                tracing::info!(revision = delivery.revision, attempt = failed, %error, "notification failed; will retry");
                Attempt::Retry { at, error }
            }
        };
        if let Attempt::GiveUp { error } = &attempt {
            tracing::warn!(
                revision = delivery.revision,
                url = %delivery.url,
                attempts = failed,
                %error,
                "notification given up"
            );
        }
        match store.record_attempt(&delivery, &attempt).await {
            Ok(true) => self.metrics.count(&attempt),
            Ok(false) => tracing::warn!(
                revision = delivery.revision,
                "a notification's claim lapsed while it was sent; another sender has it"
            ),
            Err(error) => {
                tracing::warn!(revision = delivery.revision, %error, "cannot record a notification's attempt; it will be sent again")
            }
        }
    }

    async fn send(&self, delivery: &Delivery, attempt: u32) -> Result<(), Failure> {
        let Some(event) = delivery.event.clone() else {
            return Err(Failure::Final(
                "the event was deleted by retention before it could be sent".into(),
            ));
        };
        let Some(secret) = &delivery.secret else {
            return Err(Failure::Final(
                "the submission's token has no webhook signing secret".into(),
            ));
        };
        let url = parse_notify_url(&delivery.url, &self.settings.allowed_hosts)
            .map_err(|reason| Failure::Final(format!("notify_url {reason}")))?;
        let body = serde_json::to_vec(&StateEvent::from(event))
            .map_err(|error| Failure::Final(error.to_string()))?;
        let signature = signature(secret, Timestamp::now().as_second(), &body);
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_ID_HEADER, delivery.revision.to_string())
            .header("submission-helper-attempt", attempt.to_string())
            .body(body)
            .send()
            .await
            .map_err(|error| Failure::Again(with_sources(&error)))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(Failure::Again(format!("the receiver answered {status}")))
        }
    }
}

/// Why an attempt failed.
enum Failure {
    /// Worth another attempt (no answer, a timeout, an error status).
    Again(String),
    /// Another attempt would fail the same way.
    Final(String),
}

/// An error with its causes, which reqwest keeps out of its own message.
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Resolves names as the system does, keeping only the addresses a notification may reach.
struct GuardedResolver {
    allowed: Arc<Vec<String>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allowed = self.allowed.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let any_address = host_allowed(&host, &allowed);
            let kept: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| any_address || !refused_address(address.ip()))
                .collect();
            if kept.is_empty() {
                return Err(format!(
                    "{host} resolves to no address this server sends to (private, loopback and \
                     link-local addresses are refused unless the host is allowed)"
                )
                .into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_the_timestamp_and_body() {
        // Pinned from Python's
        // hmac.new(b"whsec_test", b"1700000000.{}", "sha256").hexdigest().
        assert_eq!(
            signature("whsec_test", 1_700_000_000, b"{}"),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }

    #[test]
    fn the_backoff_doubles_up_to_its_limit() {
        let settings = Settings {
            first_retry: Duration::from_secs(5),
            max_retry: Duration::from_secs(60),
            ..Settings::default()
        };
        let waits: Vec<u64> = (1..=6).map(|n| settings.backoff(n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
    }
}
