//! `/v1/submissions`: submit, list, inspect, follow logs of, and cancel submissions.

use std::collections::BTreeMap;
use std::str::FromStr;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State as AppState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio_util::compat::FuturesAsyncReadCompatExt;
use tokio_util::io::ReaderStream;
use utoipa::ToSchema;

use super::Context;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{AppJson, QueryPairs, Submitted};
use crate::cluster::logs::{self, LogRequest};
use crate::cluster::views::{self, PodDetail};
use crate::cluster::{Cluster, ClusterError};
use crate::domain::{
    Caller, FieldError, Resources, State, Submission, SubmissionId, SubmissionRequest,
    SubmissionSpec, kube_rules,
};
use crate::storage::{Filter, IdempotencyKey, Page, Stored};

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
            labels: spec.labels,
            resources: spec.resources,
            backoff_limit: spec.backoff_limit,
            active_deadline_seconds: spec.active_deadline_seconds,
            ttl_seconds_after_finished: spec.ttl_seconds_after_finished,
        }
    }
}

/// Many submissions at once, stored all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Up to 10,000 submissions.
    #[schema(min_items = 1, max_items = 10000)]
    pub submissions: Vec<SubmissionRequest>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// The stored submissions, in the order they were sent.
    pub submissions: Vec<SubmissionView>,
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

/// Which active submissions to cancel. At least one criterion is required; all given must match.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct CancelFilter {
    /// Labels the submission must carry (all of them).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Only submissions in these states (`queued`, `pending`, `running`).
    #[serde(default)]
    pub state: Vec<State>,
    /// Only submissions with this name.
    pub name: Option<String>,
    /// Admins only: cancel matching submissions of every user, not only their own.
    #[serde(default)]
    pub all_users: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CancelResponse {
    /// The submissions this request cancelled, newest first.
    pub cancelled: Vec<SubmissionView>,
}

fn parse_id(text: &str) -> ApiResult<SubmissionId> {
    SubmissionId::from_str(text)
        .map_err(|_| ApiError::NotFound(format!("there is no submission with id {text:?}")))
}

/// The submission, if it exists and the caller may see it (others' are "not found", so ids
/// reveal nothing).
async fn find(context: &Context, caller: &Caller, id: &str) -> ApiResult<Submission> {
    let id = parse_id(id)?;
    context
        .store
        .get(id)
        .await?
        .filter(|submission| caller.may_access(&submission.owner))
        .ok_or_else(|| ApiError::NotFound(format!("there is no submission with id {id}")))
}

fn parse_spec(
    context: &Context,
    caller: &Caller,
    request: SubmissionRequest,
    prefix: &str,
) -> Result<Submission, Vec<FieldError>> {
    SubmissionSpec::parse(request, &context.defaults)
        .map(|spec| Submission::new(spec, context.cluster.namespace(), caller))
        .map_err(|errors| {
            errors
                .into_iter()
                .map(|error| FieldError::new(format!("{prefix}{}", error.field), error.reason))
                .collect()
        })
}

/// Submit a payload to run as a Kubernetes Job.
///
/// The submission is stored before anything reaches the cluster; its Job is created right
/// after. Fields left out take the server's defaults. With an `Idempotency-Key`, a retry of the
/// same request returns the submission the first one stored instead of storing another.
#[utoipa::path(
    post,
    path = "/v1/submissions",
    tag = "submissions",
    request_body = SubmissionRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and body return the first result", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 401, description = "No token, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
        (status = 201, description = "Stored; its Job is being created", body = SubmissionView,
         headers(("Location" = String, description = "The submission's URL"))),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not declared as JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Some fields are invalid, or the Idempotency-Key was used with another body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn submit(
    AppState(context): AppState<Context>,
    caller: Caller,
    submitted: Submitted<SubmissionRequest>,
) -> ApiResult<Response> {
    let submission =
        parse_spec(&context, &caller, submitted.body, "").map_err(ApiError::Invalid)?;
    let (stored, replayed) =
        store(&context, &caller, vec![submission], submitted.idempotency).await?;
    let submission = stored
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal("an idempotency key recorded no submission".into()))?;
    let location = format!("/v1/submissions/{}", submission.id);
    let mut response =
        (StatusCode::CREATED, Json(SubmissionView::from(submission))).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    mark_replayed(&mut response, replayed);
    Ok(response)
}

/// Stores new submissions, or, for a repeated `Idempotency-Key` with the same body, returns
/// what the first request stored (and `true`).
async fn store(
    context: &Context,
    caller: &Caller,
    submissions: Vec<Submission>,
    idempotency: Option<IdempotencyKey>,
) -> ApiResult<(Vec<Submission>, bool)> {
    // Keys are per user: two users' keys never collide.
    let idempotency = idempotency.map(|key| IdempotencyKey {
        key: format!("{}\n{}", caller.user, key.key),
        ..key
    });
    let Some(key) = idempotency else {
        context.store.insert(&submissions).await?;
        context.dispatch.notify_one();
        tracing::info!(count = submissions.len(), "submissions stored");
        return Ok((submissions, false));
    };
    match context.store.insert_idempotent(&key, &submissions).await? {
        Stored::New => {
            context.dispatch.notify_one();
            tracing::info!(count = submissions.len(), "submissions stored");
            Ok((submissions, false))
        }
        Stored::Replayed(earlier) => Ok((earlier, true)),
        Stored::KeyReused => Err(ApiError::Unprocessable(
            "this Idempotency-Key was already used with a different body; use a new key for a new request"
                .into(),
        )),
    }
}

/// Tells the client its request was a repeat, answered from what the first one stored.
fn mark_replayed(response: &mut Response, replayed: bool) {
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
}

/// Submit many payloads at once (up to 10,000): all are stored, or none.
#[utoipa::path(
    post,
    path = "/v1/submissions/batch",
    tag = "submissions",
    request_body = BatchRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and body return the first result", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 401, description = "No token, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
        (status = 201, description = "All stored", body = BatchResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too many submissions or too large a body", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not declared as JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Some fields are invalid (`submissions[i].field`); nothing was stored", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn submit_batch(
    AppState(context): AppState<Context>,
    caller: Caller,
    submitted: Submitted<BatchRequest>,
) -> ApiResult<Response> {
    let request = submitted.body;
    if request.submissions.len() > MAX_BATCH {
        return Err(ApiError::PayloadTooLarge(format!(
            "a batch holds at most {MAX_BATCH} submissions, this one has {}",
            request.submissions.len()
        )));
    }
    if request.submissions.is_empty() {
        return Err(ApiError::invalid("submissions", "must not be empty"));
    }
    let mut submissions = Vec::with_capacity(request.submissions.len());
    let mut errors = Vec::new();
    for (index, request) in request.submissions.into_iter().enumerate() {
        match parse_spec(
            &context,
            &caller,
            request,
            &format!("submissions[{index}]."),
        ) {
            Ok(submission) => submissions.push(submission),
            Err(mut field_errors) => errors.append(&mut field_errors),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let (stored, replayed) = store(&context, &caller, submissions, submitted.idempotency).await?;
    let body = BatchResponse {
        submissions: stored.into_iter().map(SubmissionView::from).collect(),
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    mark_replayed(&mut response, replayed);
    Ok(response)
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
    for text in query.all("state").flat_map(|value| value.split(',')) {
        let state = State::from_str(text.trim())
            .map_err(|error| ApiError::bad_request("state", error.to_string()))?;
        filter.states.push(state);
    }
    for text in query.all("label") {
        let Some((key, value)) = text.split_once('=') else {
            return Err(ApiError::bad_request("label", "must be key=value"));
        };
        kube_rules::label_key(key)
            .map_err(|reason| ApiError::bad_request("label", format!("key {reason}")))?;
        filter.labels.push((key.to_owned(), value.to_owned()));
    }
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

/// The payload's log, like `kubectl logs [-f]`.
///
/// Without `pod`, the newest pod that has started. With `follow=true` the response streams
/// lines as they are written and ends when the container ends; if no pod has started yet it
/// first waits for one (bounded by the server's `--log-wait-seconds`). Once a pod is gone
/// (TTL, cancel, node loss) its archived log is served (`X-Log-Source: archive`): its last
/// 4 MiB, after a marker line if the start was dropped.
#[utoipa::path(
    get,
    path = "/v1/submissions/{id}/logs",
    tag = "submissions",
    params(
        ("id" = String, Path, description = "The submission's id"),
        ("follow" = Option<bool>, Query, description = "Stream new lines until the container ends"),
        ("tail_lines" = Option<i64>, Query, description = "Only the last N lines", minimum = 0, maximum = 1000000),
        ("timestamps" = Option<bool>, Query, description = "Prefix each line with its RFC 3339 time"),
        ("pod" = Option<String>, Query, description = "A pod of this submission (see its pods)"),
    ),
    responses(
        (status = 401, description = "No token, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "The log", body = String, content_type = "text/plain"),
        (status = 400, description = "A query parameter is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such submission or pod", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`pod` is not a valid pod name", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No pod has started yet (without follow)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The token's user has as many log follows open as allowed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The cluster cannot be asked", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "Following, but no pod started in time", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(submission_id = %id))]
pub async fn logs(
    AppState(context): AppState<Context>,
    caller: Caller,
    Path(id): Path<String>,
    query: QueryPairs,
) -> ApiResult<Response> {
    query.only(&["follow", "tail_lines", "timestamps", "pod"])?;
    let request = LogRequest {
        pod: query.single("pod")?.map(str::to_owned),
        follow: query.flag("follow")?,
        tail_lines: query.number("tail_lines", 0..=1_000_000)?,
        timestamps: query.flag("timestamps")?,
    };
    if let Some(pod) = &request.pod {
        kube_rules::dns1123_label(pod).map_err(|reason| ApiError::invalid("pod", reason))?;
    }
    let submission = find(&context, &caller, &id).await?;
    // Held until the follow's body ends.
    let slot = if request.follow {
        Some(
            context
                .follows
                .take(&caller.submitted_by)
                .ok_or(ApiError::TooManyFollows(context.follows.limit()))?,
        )
    } else {
        None
    };
    // A pod of this submission's Job is named after the Job: any other name is answered
    // without asking the API server.
    if let Some(pod) = &request.pod
        && !pod.starts_with(&format!("{}-", submission.job_name))
    {
        return Err(ApiError::NotFound(format!(
            "submission {} has no pod named {pod}",
            submission.id
        )));
    }
    let state = submission.progress.state;
    // A finished submission's pods will not start any more: do not wait for one.
    let choose = LogRequest {
        follow: request.follow && !state.is_final(),
        ..request.clone()
    };
    let chosen = tokio::select! {
        chosen = logs::choose_pod(&context.cluster, submission.id, &choose, context.log_wait) => chosen,
        () = context.shutdown.cancelled() => {
            return Err(ApiError::ClusterUnavailable("the service is shutting down".into()));
        }
    };
    let live = match chosen {
        Ok(pod) => match open_log(&context.cluster, &pod, &request).await {
            Ok(stream) => Ok((pod, stream)),
            Err(error) => Err(logs::LogError::from(error)),
        },
        Err(error) => Err(error),
    };
    let (pod, body, source) = match live {
        Ok((pod, stream)) => {
            // A follow ends cleanly when the service shuts down, instead of being cut off.
            let stream = stream
                .map(move |chunk| {
                    let _held = &slot;
                    chunk.inspect_err(
                        |error| tracing::warn!(%error, "log stream ended with an error"),
                    )
                })
                .take_until(context.shutdown.clone().cancelled_owned());
            (pod, Body::from_stream(stream), "cluster")
        }
        // The pod is gone (or the cluster cannot be asked): what was archived is the log.
        Err(error) => match context
            .store
            .archived_log(submission.id, request.pod.as_deref())
            .await?
        {
            Some(archived) => {
                let view = logs::archived_view(&archived, request.tail_lines);
                (archived.pod_name, Body::from(view), "archive")
            }
            None if state.is_final() && matches!(error, logs::LogError::NotStarted) => {
                return Err(ApiError::Conflict(format!(
                    "the submission {state} and none of its pods exists any more; no log was archived"
                )));
            }
            None => return Err(error.into()),
        },
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-log-source", HeaderValue::from_static(source));
    if let Ok(value) = HeaderValue::from_str(&pod) {
        headers.insert("x-pod-name", value);
    }
    Ok((headers, body).into_response())
}

/// A pod's log as `request` asks: a follow shares the pod's one upstream stream with every
/// other follower (see [`crate::cluster::shared_logs`]); a read, or a follow that wants more
/// than the shared history holds, gets a stream of its own.
async fn open_log(
    cluster: &Cluster,
    pod: &str,
    request: &LogRequest,
) -> Result<BoxStream<'static, std::io::Result<Bytes>>, ClusterError> {
    if request.follow
        && let Some(shared) = cluster.shared_logs().follow(cluster, pod, request).await?
    {
        return Ok(shared);
    }
    let reader = logs::stream(cluster, pod, request).await?;
    Ok(ReaderStream::new(reader.compat()).boxed())
}

/// Cancel a submission: its Job and pods are deleted, the record stays as `cancelled`.
///
/// Cancelling a cancelled submission again is not an error.
#[utoipa::path(
    post,
    path = "/v1/submissions/{id}/cancel",
    tag = "submissions",
    params(("id" = String, Path, description = "The submission's id")),
    responses(
        (status = 401, description = "No token, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "Cancelled (now or before)", body = SubmissionView),
        (status = 404, description = "No such submission", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It already succeeded or failed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(submission_id = %id))]
pub async fn cancel(
    AppState(context): AppState<Context>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SubmissionView>> {
    let id = parse_id(&id)?;
    let filter = Filter {
        ids: vec![id],
        owner: (!caller.admin).then(|| caller.user.clone()),
        ..Filter::default()
    };
    let cancelled = context
        .store
        .cancel_matching(&filter, CANCELLED_MESSAGE)
        .await?;
    delete_jobs(&context, &cancelled);
    let submission = match cancelled.into_iter().next() {
        Some(submission) => submission,
        None => find(&context, &caller, &id.to_string()).await?,
    };
    match submission.progress.state {
        State::Cancelled => Ok(Json(submission.into())),
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
        (status = 401, description = "No token, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "What was cancelled (possibly nothing)", body = CancelResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not declared as JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The filter is invalid or empty", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_matching(
    AppState(context): AppState<Context>,
    caller: Caller,
    AppJson(request): AppJson<CancelFilter>,
) -> ApiResult<Json<CancelResponse>> {
    let mut errors = Vec::new();
    if request.labels.is_empty() && request.state.is_empty() && request.name.is_none() {
        errors.push(FieldError::new(
            "body",
            "give at least one of labels, state, name (to cancel everything, list the three active states)",
        ));
    }
    for (key, value) in &request.labels {
        for result in [kube_rules::label_key(key), kube_rules::label_value(value)] {
            if let Err(reason) = result {
                errors.push(FieldError::new(format!("labels.{key}"), reason));
            }
        }
    }
    for state in &request.state {
        if state.is_final() {
            errors.push(FieldError::new(
                "state",
                format!("{state} submissions cannot be cancelled; use queued, pending or running"),
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
    };
    let cancelled = context
        .store
        .cancel_matching(&filter, CANCELLED_MESSAGE)
        .await?;
    delete_jobs(&context, &cancelled);
    tracing::info!(count = cancelled.len(), "submissions cancelled");
    Ok(Json(CancelResponse {
        cancelled: cancelled.into_iter().map(SubmissionView::from).collect(),
    }))
}

/// Hands the Jobs of newly cancelled submissions to the background (archive, then delete):
/// the cancel is already recorded, and the answer does not wait for the cluster.
fn delete_jobs(context: &Context, cancelled: &[Submission]) {
    context.cancels.delete_jobs(
        cancelled
            .iter()
            .map(|submission| (submission.id, submission.job_name.clone())),
    );
}
