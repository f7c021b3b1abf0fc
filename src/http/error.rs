//! The HTTP layer's one error type, and the one place it becomes an RFC 9457
//! `application/problem+json` response.
//!
//! Handlers return `Result<_, ApiError>` and never build error responses by hand. Internal
//! errors (database, unexpected cluster answers) are logged here with their detail and reach the
//! client only as a generic 500, so no SQL or credentials leak. A cluster that cannot answer is
//! a 503 whose detail is its short cause; the error itself (the API server's address, the
//! client library's words) is logged, inside the request's span and so with its request id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::cluster::ClusterError;
use crate::cluster::logs::LogError;
use crate::domain::FieldError;
use crate::storage::StorageError;

/// The `Retry-After` for a wait: whole seconds, rounded up (a client that waits what it is told
/// must find its budget refilled), and at least one.
pub fn retry_after_seconds(wait: std::time::Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    #[schema(example = "urn:submission-helper:problem:invalid-request")]
    pub kind: String,
    #[schema(example = "Invalid request")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    pub detail: String,
    /// Every field that was refused, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is well-formed but some fields are invalid.
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    /// The request could not be read (malformed JSON, bad query string).
    #[error("{detail}")]
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// The request is understood but cannot be done as asked (not tied to one field).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    NotFound(String),
    /// No token, or one that is unknown or revoked.
    #[error("{0}")]
    Unauthorized(String),
    /// The token used up its requests for now; retry after the duration.
    #[error("this token sent too many requests; retry in {} seconds", retry_after_seconds(*.0))]
    TooManyRequests(std::time::Duration),
    /// The token's user has as many log follows open as allowed.
    #[error(
        "this token's user already follows {0} logs, the most allowed at once; close one first"
    )]
    TooManyFollows(usize),
    /// The client's address sent too many unknown tokens; retry after the duration.
    #[error("this address sent too many unknown tokens; retry in {} seconds", retry_after_seconds(*.0))]
    UnknownTokens(std::time::Duration),
    /// A valid token that may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// A stream asked to resume from events that retention has deleted.
    #[error("{0}")]
    EventsPruned(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The cluster is needed for this answer and cannot be asked right now.
    #[error("{0}")]
    ClusterUnavailable(String),
    /// The cluster failed to answer (not configured, unreachable, refusing or failing): a 503
    /// (a 404 for an object it no longer has), told in short and logged in full.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The request took longer than the server allows; nothing of it was kept.
    #[error("the request took longer than {} seconds and was abandoned; nothing of it was stored", .0.as_secs())]
    TookTooLong(std::time::Duration),
    #[error("{0}")]
    Timeout(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::Invalid(vec![FieldError::new(field, reason)])
    }

    pub fn bad_request(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let error = FieldError::new(field, reason);
        ApiError::BadRequest {
            detail: format!("{}: {}", error.field, error.reason),
            errors: vec![error],
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
                "Invalid request",
            ),
            ApiError::BadRequest { .. } => (
                StatusCode::BAD_REQUEST,
                "malformed-request",
                "Malformed request",
            ),
            ApiError::Unprocessable(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                "Request cannot be processed",
            ),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too many requests",
            ),
            ApiError::UnknownTokens(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-unknown-tokens",
                "Too many unknown tokens",
            ),
            ApiError::TooManyFollows(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-follows",
                "Too many log follows",
            ),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::EventsPruned(_) => (StatusCode::GONE, "events-pruned", "Events pruned"),
            ApiError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request too large",
            ),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            ApiError::Cluster(ClusterError::Api { code: 404, .. }) => {
                (StatusCode::NOT_FOUND, "not-found", "Not found")
            }
            ApiError::Cluster(ClusterError::Api { code, .. }) if *code != 403 && *code < 500 => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
            ApiError::ClusterUnavailable(_) | ApiError::Cluster(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "cluster-unavailable",
                "Cluster unavailable",
            ),
            ApiError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout", "Timed out"),
            ApiError::TookTooLong(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "request-timeout",
                "Request took too long",
            ),
            ApiError::Storage(error) if error.is_unavailable() => (
                StatusCode::SERVICE_UNAVAILABLE,
                "database-unavailable",
                "Database unavailable",
            ),
            ApiError::Storage(_) | ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

impl From<LogError> for ApiError {
    fn from(error: LogError) -> Self {
        match error {
            LogError::NoSuchPod(..) => ApiError::NotFound(error.to_string()),
            LogError::NotStarted => {
                ApiError::Conflict(format!("{error}; ask with follow=true to wait for it"))
            }
            LogError::Timeout(_) => ApiError::Timeout(error.to_string()),
            LogError::Cluster(ClusterError::Api {
                code: 400, message, ..
            }) => ApiError::Conflict(message),
            LogError::Cluster(error) => ApiError::Cluster(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title) = self.parts();
        let detail = match &self {
            ApiError::Storage(error) if error.is_unavailable() => {
                tracing::warn!(%error, "database unavailable");
                "the database is busy or unreachable; retry shortly".to_owned()
            }
            ApiError::Storage(error) => {
                tracing::error!(%error, "storage failed");
                "the service could not complete the request; it has been logged".to_owned()
            }
            ApiError::Internal(error) => {
                tracing::error!(%error, "internal error");
                "the service could not complete the request; it has been logged".to_owned()
            }
            ApiError::Cluster(error) if status == StatusCode::INTERNAL_SERVER_ERROR => {
                tracing::error!(%error, "the API server answered unexpectedly");
                "the service could not complete the request; it has been logged".to_owned()
            }
            ApiError::Cluster(error) => {
                tracing::warn!(%error, "the cluster could not answer");
                error.short_cause().to_owned()
            }
            ApiError::Invalid(errors) => format!(
                "{} field(s) are invalid: {}",
                errors.len(),
                errors
                    .iter()
                    .map(|error| format!("{} {}", error.field, error.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            other => other.to_string(),
        };
        let retry_after = match &self {
            ApiError::TooManyRequests(wait) => Some(retry_after_seconds(*wait)),
            ApiError::TookTooLong(_) => Some(1),
            ApiError::TooManyFollows(_) => Some(5),
            ApiError::UnknownTokens(wait) => Some(retry_after_seconds(*wait)),
            ApiError::Storage(error) if error.is_unavailable() => Some(1),
            _ => None,
        };
        let errors = match self {
            ApiError::Invalid(errors) | ApiError::BadRequest { errors, .. } => errors,
            _ => Vec::new(),
        };
        let problem = Problem {
            kind: format!("urn:submission-helper:problem:{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            errors,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::response::IntoResponse as _;

    use super::{ApiError, retry_after_seconds};
    use crate::cluster::ClusterError;
    use crate::storage::StorageError;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1900)), 2);
        assert_eq!(retry_after_seconds(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }

    #[test]
    fn a_database_with_no_free_connection_is_a_503_to_retry_not_a_500() {
        let busy = ApiError::Storage(StorageError::Database(sqlx::Error::PoolTimedOut));
        let broken = ApiError::Storage(StorageError::Database(sqlx::Error::RowNotFound));

        let busy = busy.into_response();
        assert_eq!(busy.status(), 503);
        assert_eq!(busy.headers()["retry-after"], "1");
        assert_eq!(broken.into_response().status(), 500);
    }

    /// What the service logs, kept in memory.
    #[derive(Clone, Default)]
    struct Log(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

    impl std::io::Write for Log {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_cluster_failure_is_answered_in_short_and_logged_in_full_with_the_request_id() {
        let log = Log::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer({
                let log = log.clone();
                move || log.clone()
            })
            .with_ansi(false)
            .finish();
        let error = ClusterError::Unreachable(
            "ServiceError: client error (Connect): tcp connect error: 10.96.0.1:443: \
             Connection refused (os error 111)"
                .into(),
        );

        let response = tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("request", request_id = "0193-a-request");
            let _serving = request.enter();
            ApiError::from(error).into_response()
        });

        assert_eq!(response.status(), 503);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let problem: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(problem["detail"], "the API server could not be reached");
        let logged = String::from_utf8(log.0.lock().clone()).expect("utf-8");
        assert!(
            logged.contains("request_id=\"0193-a-request\"")
                && logged.contains("10.96.0.1:443: Connection refused"),
            "{logged}"
        );
    }

    #[test]
    fn the_api_servers_message_for_a_pod_whose_log_cannot_be_read_yet_is_kept() {
        let waiting = crate::cluster::logs::LogError::Cluster(ClusterError::Api {
            code: 400,
            reason: "BadRequest".into(),
            message: "container \"busybox\" in pod \"sh-x-abcde\" is waiting to start: \
                      ContainerCreating"
                .into(),
        });

        let error = ApiError::from(waiting);

        assert!(
            matches!(&error, ApiError::Conflict(message) if message.contains("is waiting to start")),
            "{error:?}"
        );
    }
}
