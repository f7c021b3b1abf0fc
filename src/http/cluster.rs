//! `/v1/jobs` and `/v1/pods`: live views of the cluster's objects labelled
//! `app=submission-helper`, with the columns kubectl prints, for people who want exactly what
//! `kubectl get jobs -l app=submission-helper` would show. They are read from the controller's
//! watch caches, so polling them costs the API server nothing.

use axum::Json;
use axum::extract::{Path, State as AppState};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::context::Context;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::QueryPairs;
use super::responses::{ClusterUnavailable, NoSuchSubmission, Unauthorized};
use kube::core::{Expression, Selector};

use crate::cluster::events::{self, EventRow};
use crate::cluster::selector;
use crate::cluster::views::{self, JobRow, PodRow};
use crate::domain::{APP_LABEL, APP_LABEL_VALUE, Caller, OWNER_LABEL, rerun_job_name};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobTable {
    pub items: Vec<JobRow>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PodTable {
    pub items: Vec<PodRow>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    pub items: Vec<EventRow>,
}

/// The caller's selector (`app=submission-helper`, what they asked for, and their own
/// objects only unless they are an admin), parsed as the API server would.
fn selector(query: &QueryPairs, caller: &Caller) -> ApiResult<Selector> {
    query.only(&["label_selector"])?;
    let asked = query.single("label_selector")?.unwrap_or_default();
    let mut selector = selector::parse(asked)
        .map_err(|error| ApiError::bad_request("label_selector", error.to_string()))?;
    let mut ours = vec![(APP_LABEL.to_owned(), APP_LABEL_VALUE.to_owned())];
    if !caller.admin {
        ours.push((OWNER_LABEL.to_owned(), caller.user.clone()));
    }
    selector.extend(
        ours.into_iter()
            .map(|(key, value)| Expression::Equal(key, value)),
    );
    Ok(selector)
}

/// Our Jobs as `kubectl get jobs -l app=submission-helper` lists them.
#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "cluster",
    params(("label_selector" = Option<String>, Query, description = "More label requirements, e.g. `campaign=mc16e`")),
    responses(
        Unauthorized,
        (status = 200, body = JobTable),
        (status = 400, description = "The selector is malformed", body = Problem, content_type = "application/problem+json"),
        ClusterUnavailable,
    )
)]
pub async fn jobs(
    AppState(context): AppState<Context>,
    caller: Caller,
    query: QueryPairs,
) -> ApiResult<Json<JobTable>> {
    let selector = selector(&query, &caller)?;
    let jobs = context.cluster.list_jobs(&selector).await?;
    let now = Timestamp::now();
    Ok(Json(JobTable {
        items: jobs.iter().map(|job| views::job_row(job, now)).collect(),
    }))
}

/// Our pods as `kubectl get pods -l app=submission-helper` lists them.
#[utoipa::path(
    get,
    path = "/v1/pods",
    tag = "cluster",
    params(("label_selector" = Option<String>, Query, description = "More label requirements, e.g. `campaign=mc16e`")),
    responses(
        Unauthorized,
        (status = 200, body = PodTable),
        (status = 400, description = "The selector is malformed", body = Problem, content_type = "application/problem+json"),
        ClusterUnavailable,
    )
)]
pub async fn pods(
    AppState(context): AppState<Context>,
    caller: Caller,
    query: QueryPairs,
) -> ApiResult<Json<PodTable>> {
    let selector = selector(&query, &caller)?;
    let pods = context.cluster.list_pods(&selector).await?;
    let now = Timestamp::now();
    Ok(Json(PodTable {
        items: pods.iter().map(|pod| views::pod_row(pod, now)).collect(),
    }))
}

/// What Kubernetes recorded about a submission's Job and its pods, oldest first: the Events
/// section of `kubectl describe job` and `kubectl describe pod` (scheduling, image pulls,
/// back-offs, the Job's failure). Events are kept by the API server for an hour by default, so
/// an old submission has none.
#[utoipa::path(
    get,
    path = "/v1/submissions/{id}/cluster-events",
    tag = "cluster",
    params(("id" = String, Path, description = "The submission's id")),
    responses(
        Unauthorized,
        (status = 200, body = EventList),
        NoSuchSubmission,
        ClusterUnavailable,
    )
)]
#[tracing::instrument(skip_all, fields(submission_id = %id))]
pub async fn submission_events(
    AppState(context): AppState<Context>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<EventList>> {
    let submission = super::submission_lookup::find(&context, &caller, &id).await?;
    // Each run's Job: a rerun's history stays with it.
    let mut names: Vec<String> = (0..=submission.reruns)
        .map(|run| rerun_job_name(submission.id, run))
        .collect();
    names.extend(
        context
            .cluster
            .pods_of(submission.id)
            .await?
            .iter()
            .filter_map(|pod| pod.metadata.name.clone()),
    );
    let found = context.cluster.events_about(&names).await?;
    Ok(Json(EventList {
        items: events::event_rows(&found),
    }))
}
