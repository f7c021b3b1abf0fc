//! One `info` line per answered request, as operators expect of a web service: its route
//! template, status and latency, in the request's span, which names its method, path, request
//! id and (once its token was read) its user. Never a token or a query string: the span holds
//! the path alone, and the route is the template the router matched (`/v1/submissions/{id}`).
//! `--log-requests=false` turns the line off; warnings and errors are logged in the span all
//! the same.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::request_metrics::UNMATCHED;

/// The middleware that writes the line (added to every route, and to the fallback, by
/// [`super::router`]), if `enabled`. The latency is the time to the answer's headers: a
/// stream or a log follow goes on after it.
pub async fn record(State(enabled): State<bool>, request: Request, next: Next) -> Response {
    if !enabled {
        return next.run(request).await;
    }
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    tracing::info!(
        route = %route,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_millis(),
        "answered"
    );
    response
}
