//! `POST /ga4gh/tes/v1/tasks/{id}:cancel`: the task's submission is cancelled as `/v1` cancels
//! one (its Job deleted in the background); a task that already ended stays as it ended.

use axum::Json;
use axum::extract::{Path, State as AppState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::tasks::find;
use crate::domain::{Caller, Submission};
use crate::http::Context;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::storage::Filter;

/// The empty answer to a cancel.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = tesCancelTaskResponse)]
pub struct CancelTaskResponse {}

const CANCELLED_MESSAGE: &str = "cancelled by request";

/// Cancel a task.
#[utoipa::path(
    post,
    path = "/ga4gh/tes/v1/tasks/{id}:cancel",
    tag = "TaskService",
    operation_id = "CancelTask",
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, body = CancelTaskResponse),
        (status = 401, description = "No token, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task (or another user's)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel(
    AppState(context): AppState<Context>,
    caller: Caller,
    Path(segment): Path<String>,
) -> ApiResult<Json<CancelTaskResponse>> {
    // Routed as `POST /tasks/{segment}`: the segment is the id and the action.
    let Some(id) = segment.strip_suffix(":cancel") else {
        return Err(ApiError::MethodNotAllowed(
            "this path does not answer to that method".into(),
        ));
    };
    let submission = find(&context, &caller, id).await?.submission;
    let filter = Filter {
        ids: vec![submission.id],
        ..Filter::default()
    };
    let cancelled = context
        .store
        .cancel_matching(&filter, CANCELLED_MESSAGE)
        .await?;
    context
        .cancels
        .delete_jobs(cancelled.matched.iter().map(Submission::job));
    Ok(Json(CancelTaskResponse {}))
}
