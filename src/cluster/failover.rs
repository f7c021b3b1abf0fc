//! Failover between clusters: the live submissions of a cluster that has not answered for
//! `--cluster-lost-after` are run again in the others (while one of them answers), and the
//! Jobs they left there are deleted, their logs archived first, as soon as it answers again.
//!
//! Until then nothing is killed or failed for a cluster's silence: a control plane that is down
//! for a while leaves its kubelets running their pods, and the work they do is kept if the
//! cluster answers before the limit. A submission pinned to a cluster waits for it.

use std::time::Duration;

use jiff::Timestamp;

use super::client::Cluster;
use super::clusters::Clusters;
use super::logs;
use super::metrics::RerunCause;
use crate::storage::Store;

/// How often the dispatcher looks for lost clusters and abandoned Jobs to delete, at most.
pub const EVERY: Duration = Duration::from_secs(2);
/// How long an abandoned Job's logs may take to archive before it is deleted anyway.
const ARCHIVE_BEFORE_DELETE: Duration = Duration::from_secs(10);

/// One round: moves the live submissions off every lost cluster (if another takes Jobs), and
/// deletes the abandoned Jobs of every cluster that answers.
pub async fn round(clusters: &Clusters, store: &Store) {
    if clusters.len() < 2 {
        return;
    }
    let now = Timestamp::now();
    for cluster in clusters.iter() {
        if let Some(since) = cluster.reachability().lost_since(now)
            && clusters
                .iter()
                .any(|other| other.name() != cluster.name() && other.takes_jobs())
        {
            move_off(clusters, cluster, store, since).await;
        }
        if cluster.takes_jobs() {
            delete_abandoned(cluster, store).await;
        }
    }
}

/// Queues again the live submissions of `cluster`, lost since `since`, for the others.
async fn move_off(clusters: &Clusters, cluster: &Cluster, store: &Store, since: Timestamp) {
    let since = Timestamp::from_second(since.as_second()).unwrap_or(since);
    let message = format!(
        "its cluster {} has not answered since {since}: run again in another",
        cluster.name()
    );
    match store
        .fail_over(clusters.namespace(), cluster.name(), &message)
        .await
    {
        Ok(moved) if moved.is_empty() => {}
        Ok(moved) => {
            tracing::warn!(cluster = cluster.name(), %since, count = moved.len(), "the cluster is lost: its live submissions run again in another");
            cluster
                .metrics()
                .reruns
                .get_or_create(&RerunCause {
                    cause: "cluster_lost",
                })
                .inc_by(u64::try_from(moved.len()).unwrap_or(u64::MAX));
        }
        Err(error) => {
            tracing::warn!(cluster = cluster.name(), %error, "could not move a lost cluster's submissions; will retry");
        }
    }
}

/// Deletes the Jobs left in `cluster` by submissions that run elsewhere now, each log archived
/// first (bounded in time); a Job that could not be deleted is tried again next round.
async fn delete_abandoned(cluster: &Cluster, store: &Store) {
    let abandoned = match store
        .abandoned_in(cluster.name(), cluster.namespace())
        .await
    {
        Ok(abandoned) => abandoned,
        Err(error) => {
            tracing::warn!(%error, "could not read the abandoned Jobs");
            return;
        }
    };
    for job in abandoned {
        let archived = logs::archive(cluster, store, job.id);
        if tokio::time::timeout(ARCHIVE_BEFORE_DELETE, archived)
            .await
            .is_err()
        {
            tracing::warn!(submission_id = %job.id, "archiving an abandoned Job's logs took too long");
        }
        match cluster.delete_job(&job.job_name).await {
            Ok(()) => {
                tracing::info!(submission_id = %job.id, job = job.job_name, cluster = cluster.name(), "deleted a Job its submission left when its cluster was lost");
                if let Err(error) = store.forget_abandoned(cluster.name(), &job.job_name).await {
                    tracing::warn!(%error, "could not forget a deleted abandoned Job");
                }
            }
            Err(error) => {
                tracing::warn!(submission_id = %job.id, %error, "could not delete an abandoned Job yet");
            }
        }
    }
}
