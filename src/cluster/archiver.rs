//! Log archiving off the controller's path: bounded in concurrency (and, per pod, in time: see
//! [`logs::ARCHIVE_TIME_LIMIT`]), so a slow or hung log read never holds up anyone else's state
//! changes. When an archive is done (or the archive says why there is none) the submission is
//! reconciled again: a Job that ended is recorded as ended only once its pods' logs are kept.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::attempts;
use super::cached_pod::Pod;
use super::client::Cluster;
use super::logs;
use super::tes_logs;
use super::triggers::Triggers;
use crate::domain::SubmissionId;
use crate::storage::Store;

/// How many logs are read for the archive at once.
const CONCURRENT_ARCHIVES: usize = 16;

/// Runs archives in the background for the controller.
#[derive(Clone)]
pub struct Archiver {
    cluster: Cluster,
    store: Store,
    triggers: Triggers,
    permits: Arc<Semaphore>,
    /// Pods whose log is being archived, so a pod seen twice is read once.
    archiving: Arc<Mutex<HashSet<String>>>,
}

impl Archiver {
    pub fn new(cluster: Cluster, store: Store, triggers: Triggers) -> Self {
        Archiver {
            cluster,
            store,
            triggers,
            permits: Arc::new(Semaphore::new(CONCURRENT_ARCHIVES)),
            archiving: Arc::default(),
        }
    }

    /// Archives the log of a pod that ended, now, while it still exists; then reconciles its
    /// submission again. `suspended`: its Job was suspended (Kueue evicted it), which stopped
    /// the pod; that used no retry.
    pub fn archive_pod(&self, id: SubmissionId, pod: Arc<Pod>, suspended: bool) {
        let Some(name) = pod.metadata.name.clone() else {
            return;
        };
        let first = self.archiving.lock().insert(name.clone());
        if !first {
            return;
        }
        let archiver = self.clone();
        tokio::spawn(async move {
            if let Ok(_permit) = archiver.permits.acquire().await {
                // The attempt and the executors first: the pod's archive lets the submission
                // be shown as ended.
                attempts::record(&archiver.store, id, pod.clone(), suspended).await;
                tes_logs::record(&archiver.cluster, &archiver.store, id, pod.clone()).await;
                logs::archive_pod(&archiver.cluster, &archiver.store, id, &pod).await;
            }
            archiver.archiving.lock().remove(&name);
            archiver.triggers.reconcile(id);
        });
    }
}
