//! The time a request may take before it is answered 503.

use std::time::Duration;

use super::error::ApiError;

/// Answers a request that takes longer than `limit` with a 503 problem, dropping the handler
/// (a statement it had begun is rolled back, so nothing half-done is stored). A log follow is
/// exempt: it waits for a pod and then streams for as long as the payload runs; so is the event
/// stream, which runs until its client leaves.
pub async fn time_limit(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let follows = request.uri().path().ends_with("/logs")
        && request.uri().query().is_some_and(|query| {
            query.split('&').any(|pair| {
                pair.strip_prefix("follow=")
                    .is_some_and(|value| !matches!(value, "false" | "0" | ""))
            })
        });
    if follows || request.uri().path() == "/v1/events" {
        return next.run(request).await;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::TookTooLong(limit).into_response(),
    }
}
