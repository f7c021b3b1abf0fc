//! `/metrics`: Prometheus text with the number of submissions in each state, what the HTTP
//! side does (requests by route and status, log follows open, the build; see
//! [`super::request_metrics`]) and what the cluster side does (reconciles, their queue and lag,
//! how long Jobs take to be created and to run, requests to the API server and its answers; see
//! [`crate::cluster::metrics`]), the database pool's use, and what the webhook sender does
//! (attempts by outcome, the outbox; see [`crate::webhooks::metrics`]). It needs a token
//! unless the server runs with `--public-metrics` (for a scraper inside a trusted network).
//!
//! Active states are counted on every scrape (they are few, and what alerts watch). Counting the
//! final states reads most of the table (75 ms at a million rows on SQLite), so those counts are
//! kept for [`FINAL_COUNTS_TTL`](super::final_counts::FINAL_COUNTS_TTL) and recounted in the background when older: a scrape never
//! waits for that count, except the very first.

use axum::extract::{FromRequestParts, State as AppState};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::IntoResponse;

use super::context::Context;
use super::error::{ApiError, ApiResult};
use crate::domain::{Caller, State};

/// Submissions by state, in the Prometheus text format (final states counted at most
/// 15 seconds ago), and the controller's reconciles, queue depth and lag.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "A token is needed unless the server runs with --public-metrics"),
    )
)]
pub async fn metrics(
    AppState(context): AppState<Context>,
    mut parts: Parts,
) -> ApiResult<impl IntoResponse> {
    if !context.public_metrics {
        Caller::from_request_parts(&mut parts, &context).await?;
    }
    let mut counts = context
        .store
        .count_by_state(&State::ACTIVE)
        .await
        .map_err(ApiError::from)?;
    counts.extend(
        context
            .final_counts
            .get(&context.store)
            .await
            .map_err(ApiError::from)?,
    );
    let mut text = String::from(
        "# HELP submission_helper_submissions Submissions by state.\n# TYPE submission_helper_submissions gauge\n",
    );
    for state in State::ALL {
        let count = counts
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, count)| *count);
        text.push_str(&format!(
            "submission_helper_submissions{{state=\"{state}\"}} {count}\n"
        ));
    }
    encode_pool(&mut text, context.store.pool_stats());
    context.cluster.metrics().encode(&mut text);
    context
        .http_metrics
        .encode(&mut text, context.follows.open());
    let (pending, _) = context
        .store
        .delivery_counts()
        .await
        .map_err(ApiError::from)?;
    context.webhook_metrics.encode(&mut text, pending);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

/// The database pool's connections: open, idle and the most it opens.
fn encode_pool(text: &mut String, pool: crate::storage::PoolStats) {
    for (name, help, value) in [
        (
            "db_pool_connections",
            "Database connections open now (in use or idle)",
            u64::from(pool.open),
        ),
        (
            "db_pool_idle_connections",
            "Open database connections waiting for a statement",
            pool.idle as u64,
        ),
        (
            "db_pool_max_connections",
            "The most database connections the pool opens",
            u64::from(pool.max),
        ),
    ] {
        text.push_str(&format!(
            "# HELP submission_helper_{name} {help}.\n# TYPE submission_helper_{name} gauge\nsubmission_helper_{name} {value}\n"
        ));
    }
}
