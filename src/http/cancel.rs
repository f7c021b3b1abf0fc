//! Cancelling: one submission, or every active one a filter matches, with what waits on them.
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State as AppState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::context::Context;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::AppJson;
use super::query_filters::label_errors;
use super::responses::{NoSuchSubmission, NotJson, Unauthorized};
use crate::domain::{Caller, FieldError, State, Submission, kube_rules};
use crate::storage::{Cancelled, Filter};

use super::submission_lookup::{find, parse_id};
use super::submission_view::SubmissionView;

/// Which active submissions to cancel. At least one criterion is required; all given must match.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct CancelFilter {
    /// Labels the submission must carry (all of them).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Only submissions in these states (`waiting`, `queued`, `pending`, `running`).
    #[serde(default)]
    pub state: Vec<State>,
    /// Only submissions with this name.
    pub name: Option<String>,
    /// Only submissions placed in, or pinned to, this cluster (one of the server's).
    pub cluster: Option<String>,
    /// Only submissions sent to this Kueue LocalQueue.
    pub queue: Option<String>,
    /// Admins only: cancel matching submissions of every user, not only their own.
    #[serde(default)]
    pub all_users: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CancelResponse {
    /// The submissions this request cancelled, newest first.
    pub cancelled: Vec<SubmissionView>,
    /// Submissions that were waiting on those (directly or not), cancelled with them.
    pub also_cancelled: Vec<SubmissionView>,
}

/// The cancelled submission, and what was cancelled with it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CancelledSubmission {
    #[serde(flatten)]
    pub submission: SubmissionView,
    /// The ids of submissions that were waiting on it (directly or not), cancelled with it.
    pub also_cancelled: Vec<String>,
}

/// Cancel a submission: its Job and pods are deleted, the record stays as `cancelled`.
///
/// Submissions waiting on it (`depends_on`) can no longer run and are cancelled with it; the
/// answer names them. Cancelling a cancelled submission again is not an error.
#[utoipa::path(
    post,
    path = "/v1/submissions/{id}/cancel",
    tag = "submissions",
    params(("id" = String, Path, description = "The submission's id")),
    responses(
        Unauthorized,
        (status = 200, description = "Cancelled (now or before), with what waited on it", body = CancelledSubmission),
        NoSuchSubmission,
        (status = 409, description = "It already succeeded or failed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(submission_id = %id))]
pub async fn cancel(
    AppState(context): AppState<Context>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<CancelledSubmission>> {
    let id = parse_id(&id)?;
    let filter = Filter {
        ids: vec![id],
        owner: (!caller.admin).then(|| caller.user.clone()),
        ..Filter::default()
    };
    let Cancelled {
        matched,
        dependents,
    } = context
        .store
        .cancel_matching(&filter, CANCELLED_MESSAGE)
        .await?;
    delete_jobs(&context, &matched);
    let submission = match matched.into_iter().next() {
        Some(submission) => submission,
        None => find(&context, &caller, &id.to_string()).await?,
    };
    match submission.progress.state {
        State::Cancelled => Ok(Json(CancelledSubmission {
            submission: submission.into(),
            also_cancelled: dependents
                .iter()
                .map(|dependent| dependent.id.to_string())
                .collect(),
        })),
        state => Err(ApiError::Conflict(format!(
            "the submission already {state}; there is nothing to cancel"
        ))),
    }
}

const CANCELLED_MESSAGE: &str = "cancelled by request";

/// Cancel every active submission that matches, like `kubectl delete jobs -l ...`.
#[utoipa::path(
    post,
    path = "/v1/submissions/cancel",
    tag = "submissions",
    request_body = CancelFilter,
    responses(
        Unauthorized,
        (status = 200, description = "What was cancelled (possibly nothing)", body = CancelResponse),
        NotJson,
        (status = 422, description = "The filter is invalid or empty", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_matching(
    AppState(context): AppState<Context>,
    caller: Caller,
    AppJson(request): AppJson<CancelFilter>,
) -> ApiResult<Json<CancelResponse>> {
    let mut errors = Vec::new();
    if request.labels.is_empty()
        && request.state.is_empty()
        && request.name.is_none()
        && request.cluster.is_none()
        && request.queue.is_none()
    {
        errors.push(FieldError::new(
            "body",
            "give at least one of labels, state, name, cluster, queue (to cancel everything, list the four active states)",
        ));
    }
    if let Some(Err(reason)) = request.queue.as_deref().map(kube_rules::dns1123_subdomain) {
        errors.push(FieldError::new("queue", reason));
    }
    if let Some(reason) = (request.cluster.as_deref())
        .and_then(|name| super::query_filters::unknown_cluster(name, &context.clusters))
    {
        errors.push(FieldError::new("cluster", reason));
    }
    errors.extend(label_errors(&request.labels));
    for state in &request.state {
        if state.is_final() {
            errors.push(FieldError::new(
                "state",
                format!(
                    "{state} submissions cannot be cancelled; use waiting, queued, pending or running"
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    if request.all_users && !caller.admin {
        return Err(ApiError::Forbidden(
            "only admins may cancel other users' submissions".into(),
        ));
    }
    let filter = Filter {
        states: request.state,
        name: request.name,
        labels: request.labels.into_iter().collect(),
        ids: Vec::new(),
        owner: (!request.all_users).then(|| caller.user.clone()),
        cluster: request.cluster,
        queue: request.queue,
    };
    let Cancelled {
        matched,
        dependents,
    } = context
        .store
        .cancel_matching(&filter, CANCELLED_MESSAGE)
        .await?;
    delete_jobs(&context, &matched);
    tracing::info!(
        count = matched.len(),
        dependents = dependents.len(),
        "submissions cancelled"
    );
    Ok(Json(CancelResponse {
        cancelled: matched.into_iter().map(SubmissionView::from).collect(),
        also_cancelled: dependents.into_iter().map(SubmissionView::from).collect(),
    }))
}

/// Hands the Jobs of newly cancelled submissions to the background (archive, then delete):
/// the cancel is already recorded, and the answer does not wait for the cluster.
fn delete_jobs(context: &Context, cancelled: &[Submission]) {
    context
        .cancels
        .delete_jobs(cancelled.iter().map(Submission::job));
}
