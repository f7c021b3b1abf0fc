//! The time a request may take before it is answered 503: a layer on the routes that have a
//! limit (every route but the event stream and a submission's log), so a new streaming route
//! is cut off only if it is put among them. The log route serves both a bounded read and a
//! follow, so its handler bounds the read itself with [`within`].

use std::future::Future;
use std::time::Duration;

use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ApiResult};

/// Answers a request that takes longer than `limit` with a 503 problem, dropping the handler
/// (a statement it had begun is rolled back, so nothing half-done is stored).
pub async fn time_limit(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::TookTooLong(limit).into_response(),
    }
}

/// `answer`, or the same 503 problem as [`time_limit`]'s if it takes longer than `limit`.
pub async fn within<T>(
    limit: Duration,
    answer: impl Future<Output = ApiResult<T>>,
) -> ApiResult<T> {
    tokio::time::timeout(limit, answer)
        .await
        .unwrap_or(Err(ApiError::TookTooLong(limit)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::within;
    use crate::http::error::{ApiError, ApiResult};

    #[tokio::test]
    async fn an_answer_past_its_limit_is_the_time_limits_problem_and_one_within_it_is_kept() {
        let stuck = std::future::pending::<ApiResult<u8>>();

        let late = within(Duration::from_millis(10), stuck).await;
        let quick = within(Duration::from_secs(5), async { Ok(7) }).await;

        assert!(matches!(late, Err(ApiError::TookTooLong(_))), "{late:?}");
        assert_eq!(quick.ok(), Some(7));
    }
}
