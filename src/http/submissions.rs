//! `/v1/submissions` and `/v1/submissions/{id}`: what a submission looks like to clients, and
//! listing and inspecting them. Submitting, logs and cancels have modules of their own.
use std::collections::BTreeMap;
use std::str::FromStr;

use axum::Json;
use axum::extract::{Path, State as AppState};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Context;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::QueryPairs;
use crate::cluster::views::{self, PodDetail};
use crate::domain::{
    Caller, IDENTIFIER_LABEL, NotifyScope, Resources, State, Submission, SubmissionId, kube_rules,
};
use crate::storage::{Filter, Page};

/// The most submissions one batch may carry.
pub const MAX_BATCH: usize = 10_000;
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// A submission: what was asked for, and what Kubernetes says of it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubmissionView {
    #[schema(example = "01935f2e-8c4a-7b3d-9e2f-123456789abc")]
    pub id: String,
    pub name: Option<String>,
    /// The user it belongs to.
    pub owner: String,
    /// Who sent it: the owner, or a delegate acting for them.
    pub submitted_by: String,
    pub state: State,
    /// Why it is in this state, when there is more to say: the Job's failure reason, an image
    /// that cannot be pulled, a Job the API server refused.
    pub message: Option<String>,
    /// The Job's name (`kubectl get job NAME`).
    #[schema(example = "sh-01935f2e8c4a7b3d9e2f123456789abc")]
    pub job_name: String,
    pub namespace: String,
    /// Pods running now.
    pub active: i64,
    /// Pods that succeeded.
    pub succeeded: i64,
    /// Pods that failed.
    pub failed: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    pub image: String,
    pub command: String,
    pub registry_secret: Option<String>,
    pub volume_claim: Option<String>,
    pub mount_path: Option<String>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub resources: Resources,
    pub backoff_limit: i32,
    pub active_deadline_seconds: Option<i64>,
    pub ttl_seconds_after_finished: Option<i32>,
    /// The task identifier (the label `identifier`), if it has one.
    pub identifier: Option<String>,
    /// The payload container's name.
    #[schema(example = "analyze")]
    pub tool: String,
    /// The submissions that must succeed before it runs.
    pub depends_on: Vec<String>,
    /// Where each change of its state is POSTed (see `notify`); null when nowhere.
    #[schema(example = "https://portal.example.org/hooks/submissions")]
    pub notify_url: Option<String>,
    /// Which changes `notify_url` is sent: `all` or only the `final` one; null without a
    /// `notify_url`.
    pub notify: Option<NotifyScope>,
}

impl From<Submission> for SubmissionView {
    fn from(submission: Submission) -> Self {
        let Submission {
            id,
            spec,
            owner,
            submitted_by,
            namespace,
            job_name,
            created_at,
            progress,
            limits: _,
            notify_token: _,
        } = submission;
        let (volume_claim, mount_path) = match spec.volume {
            Some(volume) => (Some(volume.claim), Some(volume.mount_path)),
            None => (None, None),
        };
        SubmissionView {
            id: id.to_string(),
            name: spec.name,
            owner,
            submitted_by,
            state: progress.state,
            message: progress.message,
            job_name,
            namespace,
            active: progress.active,
            succeeded: progress.succeeded,
            failed: progress.failed,
            created_at,
            started_at: progress.started_at,
            finished_at: progress.finished_at,
            image: spec.image,
            command: spec.command,
            registry_secret: spec.registry_secret,
            volume_claim,
            mount_path,
            env: spec.env,
            identifier: spec.labels.get(IDENTIFIER_LABEL).cloned(),
            labels: spec.labels,
            resources: spec.resources,
            backoff_limit: spec.backoff_limit,
            active_deadline_seconds: spec.active_deadline_seconds,
            ttl_seconds_after_finished: spec.ttl_seconds_after_finished,
            tool: spec.tool,
            depends_on: spec.depends_on.iter().map(ToString::to_string).collect(),
            notify_url: spec.notify.as_ref().map(|notify| notify.url.clone()),
            notify: spec.notify.map(|notify| notify.scope),
        }
    }
}

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

pub(super) fn parse_id(text: &str) -> ApiResult<SubmissionId> {
    SubmissionId::from_str(text)
        .map_err(|_| ApiError::NotFound(format!("there is no submission with id {text:?}")))
}

/// The submission, if it exists and the caller may see it (others' are "not found", so ids
/// reveal nothing).
pub(super) async fn find(context: &Context, caller: &Caller, id: &str) -> ApiResult<Submission> {
    let id = parse_id(id)?;
    context
        .store
        .get(id)
        .await?
        .filter(|submission| caller.may_access(&submission.owner))
        .ok_or_else(|| ApiError::NotFound(format!("there is no submission with id {id}")))
}

/// The states of the `state` parameters (repeated, or separated with commas).
pub(super) fn states_asked(query: &QueryPairs) -> ApiResult<Vec<State>> {
    query
        .all("state")
        .flat_map(|value| value.split(','))
        .map(|text| {
            State::from_str(text.trim())
                .map_err(|error| ApiError::bad_request("state", error.to_string()))
        })
        .collect()
}

/// The labels of the `label` parameters (`key=value`, repeated to require several).
pub(super) fn labels_asked(query: &QueryPairs) -> ApiResult<Vec<(String, String)>> {
    query
        .all("label")
        .map(|text| {
            let Some((key, value)) = text.split_once('=') else {
                return Err(ApiError::bad_request("label", "must be key=value"));
            };
            kube_rules::label_key(key)
                .map_err(|reason| ApiError::bad_request("label", format!("key {reason}")))?;
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect()
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
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)", minimum = 1, maximum = 1000),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("owner" = Option<String>, Query, description = "Only this user's submissions (admins; others see only their own)"),
    ),
    responses(
        (status = 401, description = "No token, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
        (status = 200, body = SubmissionPage),
        (status = 400, description = "A query parameter is malformed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    AppState(context): AppState<Context>,
    caller: Caller,
    query: QueryPairs,
) -> ApiResult<Json<SubmissionPage>> {
    query.only(&["state", "label", "name", "limit", "cursor", "owner"])?;
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
    Ok(Json(SubmissionPage {
        items: items.into_iter().map(SubmissionView::from).collect(),
        next_cursor,
    }))
}

/// One submission, with the status Kubernetes reports for its Job.
#[utoipa::path(
    get,
    path = "/v1/submissions/{id}",
    tag = "submissions",
    params(("id" = String, Path, description = "The submission's id")),
    responses(
        (status = 401, description = "No token, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
        (status = 200, body = SubmissionView),
        (status = 404, description = "No such submission", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(submission_id = %id))]
pub async fn get(
    AppState(context): AppState<Context>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SubmissionView>> {
    Ok(Json(find(&context, &caller, &id).await?.into()))
}

/// The pods of a submission's Job, like `kubectl get pods -l`.
#[utoipa::path(
    get,
    path = "/v1/submissions/{id}/pods",
    tag = "submissions",
    params(("id" = String, Path, description = "The submission's id")),
    responses(
        (status = 401, description = "No token, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
        (status = 200, body = PodList),
        (status = 404, description = "No such submission", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The cluster cannot be asked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(submission_id = %id))]
pub async fn pods(
    AppState(context): AppState<Context>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<PodList>> {
    let submission = find(&context, &caller, &id).await?;
    let pods = context.cluster.pods_of(submission.id).await?;
    Ok(Json(PodList {
        items: pods.iter().map(|pod| views::pod_detail(pod)).collect(),
    }))
}
