//! The state every handler is handed: the store, the cluster, the server's settings and the
//! shared limits and counters of the process.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use tokio_util::sync::CancellationToken;

use super::event_feed::EventFeed;
use super::event_stream::EventStreams;
use super::follows::FollowLimits;
use super::oidc::Verifier;
use super::rate_limit::RateLimiter;
use super::registry::Metrics;
use super::request_metrics::HttpMetrics;
use super::token_use::TokenUse;
use crate::cluster::Clusters;
use crate::cluster::cancels::Cancels;
use crate::domain::SubmitDefaults;
use crate::storage::Store;

/// What every handler can reach, shared: each request clones it a few times (its extractors
/// and handler each take their own), one reference count rather than one per field.
#[derive(Clone)]
pub struct Context(Arc<Parts>);

impl Context {
    pub fn new(parts: Parts) -> Self {
        Context(Arc::new(parts))
    }
}

impl std::ops::Deref for Context {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// The parts of a [`Context`].
pub struct Parts {
    pub store: Store,
    pub clusters: Clusters,
    pub defaults: Arc<SubmitDefaults>,
    /// Active Jobs per user for users whose token sets no limit (`--max-concurrent`).
    pub user_limit: Option<i64>,
    /// How long a log follow waits for a pod to start.
    pub log_wait: Duration,
    pub request_timeout: Duration,
    /// Cancelled when the service shuts down, so log follows end cleanly instead of being cut.
    pub shutdown: CancellationToken,
    /// Requests a minute per token.
    pub rate_limit: RateLimiter,
    /// Unknown tokens a minute per client address; past it, that address's requests are
    /// refused before any token lookup.
    pub unknown_tokens: RateLimiter,
    /// Whether `/metrics` answers without a token.
    pub public_metrics: bool,
    /// Log follows and event streams each token user may keep open at once.
    pub follows: FollowLimits,
    /// How event streams wait for changes and keep quiet connections alive.
    pub event_streams: EventStreams,
    /// New events, read once for every stream of the process.
    pub event_feed: EventFeed,
    /// Where cancels leave the Jobs to delete in the background.
    pub cancels: Cancels,
    /// Web origins whose pages may call the API (CORS); empty: none but our own.
    pub cors_origins: Arc<Vec<HeaderValue>>,
    /// Every metric of the service, for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Requests by route and status, for `/metrics`.
    pub http_metrics: Arc<HttpMetrics>,
    /// When tokens were last used, written at most once a minute per token.
    pub token_use: TokenUse,
    /// Whether each answered request writes a line at `info` (`--log-requests`).
    pub log_requests: bool,
    /// The OpenID Connect issuer whose access tokens are accepted too, if one is configured.
    pub oidc: Option<Arc<Verifier>>,
}
