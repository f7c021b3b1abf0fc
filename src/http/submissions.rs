//! `/v1/submissions` and `/v1/submissions/{id}`: what a submission looks like to clients, and
//! listing and inspecting them. Submitting, logs and cancels have modules of their own.
use std::str::FromStr;

use axum::Json;
use axum::extract::{Path, State as AppState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::context::Context;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::QueryPairs;
use super::query_filters::{cluster_asked, labels_asked, queue_asked, states_asked};
use super::queue_place;
use super::responses::{ClusterUnavailable, NoSuchSubmission, Unauthorized};
use super::submission_lookup::find;
use super::submission_view::SubmissionView;
use crate::cluster::views::{self, PodDetail};
use crate::domain::{Attempt, Caller, State, SubmissionId};
use crate::storage::{Filter, Page};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// One page of submissions, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubmissionPage {
    pub items: Vec<SubmissionView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PodList {
    pub items: Vec<PodDetail>,
}

/// List submissions, newest first.
#[utoipa::path(
    get,
    path = "/v1/submissions",
    tag = "submissions",
    params(
        ("state" = Option<Vec<State>>, Query, description = "Only these states; repeat or separate with commas"),
        ("label" = Option<Vec<String>>, Query, description = "`key=value`; repeat to require several labels", pattern = "^[^=]+=.*$"),
        ("name" = Option<String>, Query, description = "Only submissions with this name"),
        ("cluster" = Option<String>, Query, description = "Only submissions placed in, or pinned to, this cluster (one of the server's)"),
        ("queue" = Option<String>, Query, description = "Only submissions sent to this Kueue LocalQueue"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)", minimum = 1, maximum = 1000),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("owner" = Option<String>, Query, description = "Only this user's submissions (admins; others see only their own)"),
    ),
    responses(
        Unauthorized,
        (status = 200, body = SubmissionPage),
        (status = 400, description = "A query parameter is malformed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    AppState(context): AppState<Context>,
    caller: Caller,
    query: QueryPairs,
) -> ApiResult<Json<SubmissionPage>> {
    query.only(&[
        "state", "label", "name", "cluster", "queue", "limit", "cursor", "owner",
    ])?;
    let owner = match query.single("owner")? {
        Some(owner) if caller.admin => Some(owner.to_owned()),
        Some(owner) if owner != caller.user => {
            return Err(ApiError::Forbidden(
                "only admins may list other users' submissions".into(),
            ));
        }
        _ if caller.admin => None,
        _ => Some(caller.user.clone()),
    };
    let mut filter = Filter {
        owner,
        ..Filter::default()
    };
    filter.states = states_asked(&query)?;
    filter.labels = labels_asked(&query)?;
    filter.name = query.single("name")?.map(str::to_owned);
    filter.cluster = cluster_asked(&query, &context.clusters)?;
    filter.queue = queue_asked(&query)?;
    let limit = query.number("limit", 1..=MAX_PAGE)?.unwrap_or(DEFAULT_PAGE);
    let before = query
        .single("cursor")?
        .filter(|cursor| !cursor.is_empty())
        .map(|cursor| {
            SubmissionId::from_str(cursor).map_err(|_| {
                ApiError::bad_request("cursor", "is not a cursor this service returned")
            })
        })
        .transpose()?;

    let items = context.store.list(&filter, Page { limit, before }).await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|last| last.id.to_string()))
        .flatten();
    let mut items: Vec<SubmissionView> = items.into_iter().map(SubmissionView::from).collect();
    let now = jiff::Timestamp::now();
    for view in &mut items {
        as_last_seen(&context, view, now);
    }
    Ok(Json(SubmissionPage { items, next_cursor }))
}

/// One submission, with the status Kubernetes reports for its Job.
#[utoipa::path(
    get,
    path = "/v1/submissions/{id}",
    tag = "submissions",
    params(("id" = String, Path, description = "The submission's id")),
    responses(
        Unauthorized,
        (status = 200, body = SubmissionView),
        NoSuchSubmission,
    )
)]
#[tracing::instrument(skip_all, fields(submission_id = %id))]
pub async fn get(
    AppState(context): AppState<Context>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SubmissionView>> {
    let submission = find(&context, &caller, &id).await?;
    let ends = context.store.pod_ends(submission.id).await?;
    let policy = submission.spec.retry_policy.clone();
    let attempts = ends
        .into_iter()
        .map(|end| Attempt::of(end, &policy))
        .collect();
    let mut view = SubmissionView::from(submission.clone());
    view.attempts = Some(attempts);
    queue_place::fill(&context, &submission, &mut view).await?;
    as_last_seen(&context, &mut view, jiff::Timestamp::now());
    Ok(Json(view))
}

/// Says so on a live submission whose cluster has not answered for long enough to count as
/// unreachable, or that the service no longer has: its state is as last seen.
fn as_last_seen(context: &Context, view: &mut SubmissionView, now: jiff::Timestamp) {
    if view.namespace != context.clusters.namespace() {
        let former = (view.cluster.as_deref())
            .and_then(|name| context.clusters.following(name, &view.namespace));
        let note = match former {
            // Followed there, since the start: said only while its watches fail (no rights in
            // that namespace, or the cluster does not answer).
            Some(former) => match former.reachability().unreachable_since(now) {
                Some(since) => format!(
                    "its Job is in the namespace {}, which this service has not been able to \
                     watch since {since}",
                    view.namespace
                ),
                None => return,
            },
            None => format!(
                "its Job is in the namespace {}, which this service no longer follows",
                view.namespace
            ),
        };
        view.as_last_seen(&note);
        return;
    }
    let Some(name) = view.cluster.clone() else {
        return;
    };
    match context.clusters.get(&name) {
        Some(cluster) => {
            if let Some(since) = cluster.reachability().unreachable_since(now) {
                view.while_unanswered(&name, since);
            }
        }
        None => view.while_unconfigured(&name),
    }
}

/// The pods of a submission's Job, like `kubectl get pods -l`.
#[utoipa::path(
    get,
    path = "/v1/submissions/{id}/pods",
    tag = "submissions",
    params(("id" = String, Path, description = "The submission's id")),
    responses(
        Unauthorized,
        (status = 200, body = PodList),
        NoSuchSubmission,
        ClusterUnavailable,
    )
)]
#[tracing::instrument(skip_all, fields(submission_id = %id))]
pub async fn pods(
    AppState(context): AppState<Context>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<PodList>> {
    let submission = find(&context, &caller, &id).await?;
    let Some(cluster) = context.clusters.of_or_only(&submission) else {
        // Not placed yet: no Job, so no pods.
        return Ok(Json(PodList { items: Vec::new() }));
    };
    let pods = cluster.pods_of(submission.id).await?;
    Ok(Json(PodList {
        items: pods.iter().map(|pod| views::pod_detail(pod)).collect(),
    }))
}
