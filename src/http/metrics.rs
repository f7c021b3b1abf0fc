//! `/metrics`: Prometheus text with the number of submissions in each state. It needs a token
//! unless the server runs with `--public-metrics` (for a scraper inside a trusted network).

use axum::extract::{FromRequestParts, State as AppState};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::IntoResponse;

use super::Context;
use super::error::{ApiError, ApiResult};
use crate::domain::{Caller, State};

/// Submissions by state, in the Prometheus text format.
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
    let counts = context
        .store
        .count_by_state()
        .await
        .map_err(ApiError::from)?;
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
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}
