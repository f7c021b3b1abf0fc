//! `/v1/jobs` and `/v1/pods`: live views of the cluster's objects labelled
//! `app=submission-helper`, with the columns kubectl prints, for people who want exactly what
//! `kubectl get jobs -l app=submission-helper` would show.

use axum::Json;
use axum::extract::State as AppState;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Context;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::QueryPairs;
use crate::cluster::ClusterError;
use crate::cluster::views::{self, JobRow, PodRow};
use crate::domain::{Caller, OWNER_LABEL};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobTable {
    pub items: Vec<JobRow>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PodTable {
    pub items: Vec<PodRow>,
}

/// The caller's selector, narrowed to their own objects unless they are an admin.
fn selector(query: &QueryPairs, caller: &Caller) -> ApiResult<Option<String>> {
    query.only(&["label_selector"])?;
    let asked = query
        .single("label_selector")?
        .filter(|selector| !selector.trim().is_empty());
    let own = (!caller.admin).then(|| format!("{OWNER_LABEL}={}", caller.user));
    Ok(match (asked, own) {
        (Some(asked), Some(own)) => Some(format!("{asked},{own}")),
        (Some(asked), None) => Some(asked.to_owned()),
        (None, own) => own,
    })
}

/// A selector the API server cannot parse is the user's mistake, not ours.
fn refused_selector(error: ClusterError) -> ApiError {
    match error {
        ClusterError::Api {
            code: 400, message, ..
        } => ApiError::bad_request("label_selector", message),
        other => other.into(),
    }
}

/// Our Jobs as `kubectl get jobs -l app=submission-helper` lists them.
#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "cluster",
    params(("label_selector" = Option<String>, Query, description = "More label requirements, e.g. `campaign=mc16e`")),
    responses(
        (status = 401, description = "No token, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
        (status = 200, body = JobTable),
        (status = 400, description = "The selector is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The cluster cannot be asked", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn jobs(
    AppState(context): AppState<Context>,
    caller: Caller,
    query: QueryPairs,
) -> ApiResult<Json<JobTable>> {
    let selector = selector(&query, &caller)?;
    let jobs = context
        .cluster
        .list_jobs(selector.as_deref())
        .await
        .map_err(refused_selector)?;
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
        (status = 401, description = "No token, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
        (status = 200, body = PodTable),
        (status = 400, description = "The selector is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The cluster cannot be asked", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn pods(
    AppState(context): AppState<Context>,
    caller: Caller,
    query: QueryPairs,
) -> ApiResult<Json<PodTable>> {
    let selector = selector(&query, &caller)?;
    let pods = context
        .cluster
        .list_pods(selector.as_deref())
        .await
        .map_err(refused_selector)?;
    let now = Timestamp::now();
    Ok(Json(PodTable {
        items: pods.iter().map(|pod| views::pod_row(pod, now)).collect(),
    }))
}
