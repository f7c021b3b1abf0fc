//! Log archiving off the watchers' path: bounded in concurrency (and, per pod, in time: see
//! [`logs::ARCHIVE_TIME_LIMIT`]), so a slow or hung log read never holds up anyone else's state
//! changes. A Job that ended is recorded as ended by the same background task, after its pods'
//! logs are archived (or the archive says why not), so a finished submission always has them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::Semaphore;

use super::reconcile::Retries;
use super::watch::progress_from_job;
use super::{Cluster, logs};
use crate::domain::SubmissionId;
use crate::storage::Store;

/// How many logs are read for the archive at once.
const CONCURRENT_ARCHIVES: usize = 8;

/// Runs archives in the background for the watchers.
#[derive(Clone)]
pub struct Archiver {
    cluster: Cluster,
    store: Store,
    retries: Retries,
    permits: Arc<Semaphore>,
    /// Submissions whose end is being recorded, so a Job seen twice is finished once.
    finishing: Arc<Mutex<HashSet<SubmissionId>>>,
}

impl Archiver {
    pub fn new(cluster: Cluster, store: Store, retries: Retries) -> Self {
        Archiver {
            cluster,
            store,
            retries,
            permits: Arc::new(Semaphore::new(CONCURRENT_ARCHIVES)),
            finishing: Arc::default(),
        }
    }

    /// Archives the log of a pod that ended, now, while it still exists.
    pub fn archive_pod(&self, id: SubmissionId, pod: Pod) {
        let archiver = self.clone();
        tokio::spawn(async move {
            let Ok(_permit) = archiver.permits.acquire().await else {
                return;
            };
            logs::archive_pod(&archiver.cluster, &archiver.store, id, &pod).await;
        });
    }

    /// Archives the logs of the pods of `job`, which ended, then records its end; a change
    /// the store does not take goes to the reconcile queue.
    pub fn finish(&self, id: SubmissionId, job: Job) {
        let first = self
            .finishing
            .lock()
            .map(|mut finishing| finishing.insert(id))
            .unwrap_or(false);
        if !first {
            return;
        }
        let archiver = self.clone();
        tokio::spawn(async move {
            if let Ok(_permit) = archiver.permits.acquire().await {
                logs::archive(&archiver.cluster, &archiver.store, id, false).await;
            }
            let recorded = archiver
                .store
                .update(id, |submission| progress_from_job(submission, &job))
                .await;
            match recorded {
                Ok(Some(updated)) if updated.changed => {
                    tracing::info!(submission_id = %id, state = %updated.submission.progress.state, "submission progressed");
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(submission_id = %id, %error, "could not record a Job's end; retrying");
                    archiver.retries.push(id);
                }
            }
            if let Ok(mut finishing) = archiver.finishing.lock() {
                finishing.remove(&id);
            }
        });
    }
}
