//! `GET /v1/submissions/{id}/logs`: a payload's log, read, followed live, or from the archive.

use axum::body::Body;
use axum::extract::{Path, State as AppState};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::context::Context;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::QueryPairs;
use super::responses::{ClusterUnavailable, Unauthorized};
use crate::cluster::Cluster;
use crate::cluster::logs::{self, LogRequest};
use crate::domain::{Caller, Submission, kube_rules};

use super::submission_lookup::find;
use super::time_limit::within;

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
        Unauthorized,
        (status = 200, description = "The log", body = String, content_type = "text/plain"),
        (status = 400, description = "A query parameter is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such submission or pod", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`pod` is not a valid pod name", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No pod has started yet (without follow)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The token's user has as many log follows open as allowed", body = Problem, content_type = "application/problem+json"),
        ClusterUnavailable,
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
    // A follow streams for as long as the payload runs; a read answers within the server's
    // time limit, as other routes do (the route has no time limit layer, see `router`).
    if request.follow {
        answer(context, caller, id, request).await
    } else {
        within(
            context.request_timeout,
            answer(context.clone(), caller, id, request),
        )
        .await
    }
}

/// The cluster whose pods hold `submission`'s log: its own; before it is placed (a follow
/// of a queued submission), the one it is placed in within the log wait. With one cluster,
/// that one.
async fn placed<'c>(context: &'c Context, submission: &Submission, follow: bool) -> &'c Cluster {
    let clusters = &context.clusters;
    if let Some(cluster) = clusters.of(submission) {
        return cluster;
    }
    if clusters.len() > 1 && follow {
        let deadline = tokio::time::Instant::now() + context.log_wait;
        while tokio::time::Instant::now() < deadline && !context.shutdown.is_cancelled() {
            tokio::time::sleep(PLACEMENT_POLL).await;
            if let Ok(Some(now)) = context.store.get(submission.id).await
                && let Some(cluster) = clusters.of(&now)
            {
                return cluster;
            }
        }
    }
    clusters.first()
}

/// How often a follow of a submission not placed yet looks for its cluster.
const PLACEMENT_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// The log `request` asks for, of submission `id`.
async fn answer(
    context: Context,
    caller: Caller,
    id: String,
    request: LogRequest,
) -> ApiResult<Response> {
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
    // A pod of one of this submission's Jobs is named after the Job, and every run's Job
    // after its first: any other name is answered without asking the API server.
    if let Some(pod) = &request.pod
        && !pod.starts_with(&format!("{}-", submission.id.job_name()))
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
    let cluster = placed(&context, &submission, choose.follow).await;
    let chosen = tokio::select! {
        chosen = logs::choose_pod(
            cluster, submission.id, &submission.job_name, &choose, context.log_wait,
        ) => chosen,
        () = context.shutdown.cancelled() => {
            return Err(ApiError::ClusterUnavailable("the service is shutting down".into()));
        }
    };
    let live = match chosen {
        Ok(pod) => match logs::open(cluster, &pod, &request).await {
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
            .archived_log(
                submission.id,
                request.pod.as_deref(),
                &logs::run_prefix(&submission.job_name),
            )
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
