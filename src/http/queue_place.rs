//! Where one submission stands while it waits, and why, filled in when it is shown alone
//! (`GET /v1/submissions/{id}`): its place in Kueue's queue, or in the service's own, and what
//! holds it there in words.

use jiff::Timestamp;

use super::context::Context;
use super::error::ApiResult;
use super::submission_view::{QueueView, SubmissionView};
use crate::cluster::kueue;
use crate::domain::{State, Submission, WaitsFor};

/// Sets `view`'s `queue.position`, and its `message` when the submission waits in the
/// service's own queue with nothing said yet (a refused create keeps its own).
pub async fn fill(
    context: &Context,
    submission: &Submission,
    view: &mut SubmissionView,
) -> ApiResult<()> {
    let progress = &submission.progress;
    match progress.state {
        State::Pending if !progress.admitted => {
            if let (Some(queueing), Some(queue)) = (&submission.spec.queueing, view.queue.as_mut())
            {
                let cluster = context
                    .clusters
                    .of(submission)
                    .unwrap_or(context.clusters.first());
                queue.position =
                    kueue::position(cluster, &queueing.queue, &submission.job_name).await;
            }
        }
        State::Waiting if progress.message.is_none() => {
            let unfinished = context.store.unfinished_dependencies(submission.id).await?;
            if !unfinished.is_empty() {
                let listed = unfinished
                    .into_iter()
                    .map(|dependency| {
                        let name = dependency.name.unwrap_or_else(|| dependency.id.to_string());
                        (name, dependency.state.to_string())
                    })
                    .collect();
                view.message = Some(WaitsFor::Dependencies(listed).explain());
            }
        }
        State::Queued => {
            let ahead = context
                .store
                .queued_ahead(&submission.namespace, &submission.owner, submission.id)
                .await?;
            let queue = view.queue.get_or_insert(QueueView {
                name: None,
                priority_class: None,
                admitted: false,
                position: None,
                evictions: progress.evictions,
            });
            if queue.name.is_none() {
                queue.position = Some(ahead);
            }
            if progress.message.is_none() {
                view.message = Some(waits_for(context, submission).await?.explain());
            }
        }
        _ => {}
    }
    Ok(())
}

/// What a queued submission waits for: the first of its cluster, its user's limit, its batch's
/// limit and room in Kueue that holds it, else its turn. Through Kueue the limits hold Jobs at
/// Kueue's gate, not in this queue.
async fn waits_for(context: &Context, submission: &Submission) -> ApiResult<WaitsFor> {
    let now = Timestamp::now();
    if !context.clusters.is_configured() {
        return Ok(WaitsFor::Cluster);
    }
    let limits_here = context.clusters.first().kueue().is_none();
    if limits_here
        && let Some(limit) = submission.limits.user.or(context.user_limit)
        && context.store.active_of_user(&submission.owner, now).await? >= limit
    {
        return Ok(WaitsFor::UserLimit {
            user: submission.owner.clone(),
            limit,
        });
    }
    if limits_here
        && let Some((group, limit)) = &submission.limits.group
        && context.store.active_of_group(group, now).await? >= *limit
    {
        return Ok(WaitsFor::BatchLimit { limit: *limit });
    }
    if let Some(kueue) = context.clusters.first().kueue() {
        let max = kueue.settings.max_suspended;
        let waiting = context
            .store
            .count_suspended(context.clusters.namespace(), now)
            .await?;
        if waiting >= i64::from(max) {
            return Ok(WaitsFor::KueueRoom { max });
        }
    }
    Ok(clusters_hold(context, submission, now)
        .await?
        .unwrap_or(WaitsFor::Turn))
}

/// What holds a queued submission at the clusters, if anything: its pinned cluster's, or
/// every cluster's, reason for taking no Job now (not answering, or at its cap).
async fn clusters_hold(
    context: &Context,
    submission: &Submission,
    now: Timestamp,
) -> ApiResult<Option<WaitsFor>> {
    let clusters = &context.clusters;
    if let Some(pin) = &submission.spec.cluster {
        return Ok(why_not(context, pin, now)
            .await?
            .map(|why| WaitsFor::PinnedCluster {
                cluster: pin.clone(),
                why,
            }));
    }
    let mut held = Vec::new();
    for cluster in clusters.iter() {
        match why_not(context, cluster.name(), now).await? {
            Some(why) => held.push((cluster.name().to_owned(), why.replacen("it ", "", 1))),
            None => return Ok(None),
        }
    }
    Ok(Some(WaitsFor::ClusterRoom(held)))
}

/// Why the cluster `name` takes no Job now, if it does not.
async fn why_not(context: &Context, name: &str, now: Timestamp) -> ApiResult<Option<String>> {
    let Some(cluster) = context.clusters.get(name) else {
        return Ok(Some("this service no longer has it".to_owned()));
    };
    if !cluster.takes_jobs() {
        return Ok(Some("it does not answer".to_owned()));
    }
    if let Some(capacity) = cluster.capacity()
        && context.store.active_in_cluster(name, now).await? >= capacity
    {
        return Ok(Some(format!(
            "it is full: {capacity} active Jobs at most (--cluster-capacity)"
        )));
    }
    Ok(None)
}
