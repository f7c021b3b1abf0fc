//! What the HTTP side does, for `/metrics`: requests by method, route and status, how long each
//! took to be answered, the log follows and event streams open now, and the build's version.
//!
//! A request is labelled with its route's template (`/v1/submissions/{id}`, axum's
//! [`MatchedPath`]), never the path it asked for: ids in paths would make a series each, and a
//! scanner's made-up paths would make the label set unbounded. Paths that match no route are
//! `unmatched`; methods other than the standard ones are `other`. Durations run until the
//! response's head is sent, so a log follow counts until its stream starts, not while it lasts.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    /// The route's template, or [`UNMATCHED`].
    pub route: String,
    /// The response's status code (`201`, `422`...).
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Build {
    version: &'static str,
}

/// 1 ms to about 33 s (past 30 s a request is answered 503 anyway).
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The HTTP side's metrics, shared by the middleware that records them and `/metrics`.
#[derive(Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram, fn() -> Histogram>,
    follows_open: Gauge,
    event_subscribers: Gauge,
    build: Family<Build, Gauge>,
}

/// One open event stream, counted in `event_subscribers` until it is dropped.
pub struct OpenEventStream(Gauge);

impl Drop for OpenEventStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for HttpMetrics {
    fn default() -> Self {
        let build = Family::<Build, Gauge>::default();
        build
            .get_or_create(&Build {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        HttpMetrics {
            requests: Family::default(),
            durations: Family::new_with_constructor(request_buckets),
            follows_open: Gauge::default(),
            event_subscribers: Gauge::default(),
            build,
        }
    }
}

impl HttpMetrics {
    /// Adds these metrics to the registry `/metrics` encodes.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            self.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "From a request received to its response's head sent, by method, route template and status",
            self.durations.clone(),
        );
        registry.register(
            "log_follows_open",
            "Log follows (logs?follow=true) open now",
            self.follows_open.clone(),
        );
        registry.register(
            "event_subscribers",
            "Event streams (GET /v1/events) open now",
            self.event_subscribers.clone(),
        );
        registry.register(
            "build_info",
            "The running build: always 1, with its version as a label",
            self.build.clone(),
        );
    }

    /// Sets how many log follows are open, before a scrape encodes it.
    pub fn set_follows_open(&self, open: usize) {
        self.follows_open
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// Counts an event stream as open until the returned value is dropped.
    pub fn event_stream_opened(&self) -> OpenEventStream {
        self.event_subscribers.inc();
        OpenEventStream(self.event_subscribers.clone())
    }

    fn record(&self, labels: &RequestLabels, started: Instant) {
        self.requests.get_or_create(labels).inc();
        self.durations
            .get_or_create(labels)
            .observe(started.elapsed().as_secs_f64());
    }
}

/// The middleware that counts and times every request (added to every route, and to the
/// fallback, by [`super::router`]).
pub async fn record(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let labels = RequestLabels {
        method,
        route,
        status: response.status().as_str().to_owned(),
    };
    metrics.record(&labels, started);
    response
}

/// The method as a label: one of the standard methods, or `other`.
fn method_label(method: &Method) -> &'static str {
    [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
    ]
    .into_iter()
    .find(|(known, _)| known == method)
    .map_or("other", |(_, label)| label)
}
