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

use futures::future::try_join_all;

use crate::cluster::events::{self, EventRow};
use crate::cluster::selector;
use crate::cluster::views::{self, JobRow, PodRow};
use crate::cluster::{Cluster, Clusters};
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

/// The clusters a list asks (`?cluster=NAME`, or all), each with a client.
fn listed<'c>(query: &QueryPairs, clusters: &'c Clusters) -> ApiResult<Vec<&'c Cluster>> {
    match super::query_filters::cluster_asked(query, clusters)? {
        Some(name) => Ok(clusters.get(&name).into_iter().collect()),
        None => Ok(clusters
            .iter()
            .filter(|cluster| cluster.is_configured() || clusters.len() == 1)
            .collect()),
    }
}

/// The caller's selector (`app=submission-helper`, what they asked for, and their own
/// objects only unless they are an admin), parsed as the API server would.
fn selector(query: &QueryPairs, caller: &Caller) -> ApiResult<Selector> {
    query.only(&["label_selector", "cluster"])?;
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
    params(
        ("label_selector" = Option<String>, Query, description = "More label requirements, e.g. `campaign=mc16e`"),
        ("cluster" = Option<String>, Query, description = "Only this cluster's (`--cluster NAME=...`); default: every cluster's"),
    ),
    responses(
        Unauthorized,
        (status = 200, body = JobTable),
        (status = 400, description = "The selector is malformed, or no cluster has that name", body = Problem, content_type = "application/problem+json"),
        ClusterUnavailable,
    )
)]
pub async fn jobs(
    AppState(context): AppState<Context>,
    caller: Caller,
    query: QueryPairs,
) -> ApiResult<Json<JobTable>> {
    let selector = selector(&query, &caller)?;
    let listed = listed(&query, &context.clusters)?;
    let found = try_join_all(listed.iter().map(|cluster| cluster.list_jobs(&selector))).await?;
    let now = Timestamp::now();
    Ok(Json(JobTable {
        items: listed
            .iter()
            .zip(found)
            .flat_map(|(cluster, jobs)| {
                jobs.into_iter()
                    .map(move |job| views::job_row(&job, cluster.name(), now))
            })
            .collect(),
    }))
}

/// Our pods as `kubectl get pods -l app=submission-helper` lists them.
#[utoipa::path(
    get,
    path = "/v1/pods",
    tag = "cluster",
    params(
        ("label_selector" = Option<String>, Query, description = "More label requirements, e.g. `campaign=mc16e`"),
        ("cluster" = Option<String>, Query, description = "Only this cluster's (`--cluster NAME=...`); default: every cluster's"),
    ),
    responses(
        Unauthorized,
        (status = 200, body = PodTable),
        (status = 400, description = "The selector is malformed, or no cluster has that name", body = Problem, content_type = "application/problem+json"),
        ClusterUnavailable,
    )
)]
pub async fn pods(
    AppState(context): AppState<Context>,
    caller: Caller,
    query: QueryPairs,
) -> ApiResult<Json<PodTable>> {
    let selector = selector(&query, &caller)?;
    let listed = listed(&query, &context.clusters)?;
    let found = try_join_all(listed.iter().map(|cluster| cluster.list_pods(&selector))).await?;
    let now = Timestamp::now();
    Ok(Json(PodTable {
        items: listed
            .iter()
            .zip(found)
            .flat_map(|(cluster, pods)| {
                pods.into_iter()
                    .map(move |pod| views::pod_row(&pod, cluster.name(), now))
            })
            .collect(),
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
    let Some(cluster) = context.clusters.of_or_only(&submission) else {
        // Not placed yet (or in a cluster the service no longer has): nothing to ask.
        return Ok(Json(EventList { items: Vec::new() }));
    };
    // Each run's Job: a rerun's history stays with it.
    let mut names: Vec<String> = (0..=submission.reruns)
        .map(|run| rerun_job_name(submission.id, run))
        .collect();
    names.extend(
        cluster
            .pods_of(submission.id)
            .await?
            .iter()
            .filter_map(|pod| pod.metadata.name.clone()),
    );
    let found = cluster.events_about(&names).await?;
    Ok(Json(EventList {
        items: events::event_rows(&found),
    }))
}
