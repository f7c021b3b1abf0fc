//! `/metrics`: one registry with the number of submissions in each state and the database
//! pool's use (see [`super::database_metrics`]), what the HTTP side does (requests by route and
//! status, log follows open, the build; see [`super::request_metrics`]), what the cluster side
//! does (reconciles, their queue and lag, how long Jobs take to be created and to run, requests
//! to the API server and its answers; see [`crate::cluster::metrics`]) and what the webhook
//! sender does (attempts by outcome, the outbox; see [`crate::webhooks::metrics`]), written in
//! the format the scraper asked for ([`super::exposition`]). It needs a token unless the server
//! runs with `--public-metrics` (for a scraper inside a trusted network).

use axum::extract::{FromRequestParts, State as AppState};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::IntoResponse;

use super::context::Context;
use super::error::{ApiError, ApiResult};
use super::exposition::Format;
use crate::cluster::metrics::ClusterName;
use crate::domain::Caller;

/// Every metric of the service: OpenMetrics text when the `Accept` header asks for it (as
/// Prometheus does), the Prometheus text format (version 0.0.4) otherwise. Submissions in
/// final states are counted at most 15 seconds ago.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "The Prometheus text format (version 0.0.4), or OpenMetrics text when `Accept` asks for it", content(
            (String = "text/plain"),
            (String = "application/openmetrics-text"),
        )),
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
    let format = Format::negotiate(
        parts
            .headers
            .get(header::ACCEPT)
            .and_then(|accept| accept.to_str().ok()),
    );
    context
        .metrics
        .database
        .read()
        .await
        .map_err(ApiError::from)?;
    context
        .http_metrics
        .set_follows_open(context.follows.open());
    let now = jiff::Timestamp::now();
    for cluster in context.clusters.iter() {
        let reachable = cluster.reachability().unreachable_since(now).is_none();
        context
            .metrics
            .reachable
            .get_or_create(&ClusterName {
                cluster: cluster.name().to_owned(),
            })
            .set(i64::from(reachable));
    }
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::VARY, "Accept"),
        ],
        format.encode(&context.metrics.registry),
    ))
}
