//! What the watches know: every Job and pod of ours, kept current by one watch per kind.
//!
//! The controller drives both watches into these reflector stores; status, `/pods`,
//! `/v1/jobs`, `/v1/pods` and log follows read them instead of asking the API server, so a
//! thousand dashboards polling cost the API server nothing. Like an informer's cache, a store
//! can lag the API server by the time an event takes to arrive, and keeps its last contents
//! while a watch is being re-established.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::Resource;
use kube::core::{Selector, SelectorExt};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::cached_pod::Pod;
use super::error::ClusterError;
use super::workloads::WorkloadFacts;
use crate::domain::SubmissionId;

/// How long a read waits for the first full list after a start before it answers 503.
const FIRST_LIST_WAIT: Duration = Duration::from_secs(5);

/// The readers. Cheap to clone.
#[derive(Clone)]
pub struct Caches {
    namespace: String,
    jobs: Store<Job>,
    pods: Store<Pod>,
    /// Notified after every pod event, for readers waiting for a pod to start.
    pod_changed: Arc<Notify>,
    /// The names of each submission's pods, so finding them does not walk every pod.
    /// Kept by the controller from the pod events; a name whose pod is gone is skipped.
    pod_names: Arc<Mutex<HashMap<SubmissionId, BTreeSet<String>>>>,
    /// What Kueue's Workloads say, by the name of the Job each stands for (when Jobs are
    /// submitted through Kueue; its watch keeps it).
    workloads: Arc<Mutex<HashMap<String, Arc<WorkloadFacts>>>>,
    /// Whether Workloads are followed, and listed once yet.
    workloads_listed: Arc<tokio::sync::watch::Sender<Listed>>,
}

/// Where the Workloads' watch stands: not followed (no Kueue), or followed and listed or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listed {
    NotFollowed,
    NotYet,
    Done,
}

/// The writing ends, taken once by the controller that runs the watches.
pub struct Writers {
    pub jobs: Writer<Job>,
    pub pods: Writer<Pod>,
    pub pod_changed: Arc<Notify>,
}

impl Caches {
    pub fn new(namespace: &str) -> (Caches, Writers) {
        let (jobs, job_writer) = reflector::store();
        let (pods, pod_writer) = reflector::store();
        let pod_changed = Arc::new(Notify::new());
        let caches = Caches {
            namespace: namespace.to_owned(),
            jobs,
            pods,
            pod_changed: pod_changed.clone(),
            pod_names: Arc::default(),
            workloads: Arc::default(),
            workloads_listed: Arc::new(tokio::sync::watch::Sender::new(Listed::NotFollowed)),
        };
        let writers = Writers {
            jobs: job_writer,
            pods: pod_writer,
            pod_changed,
        };
        (caches, writers)
    }

    /// Waits (briefly) until both watches have listed once (and the Workloads' too, when
    /// they are followed: a reconcile before it would not know what Kueue said).
    pub async fn ready(&self) -> Result<(), ClusterError> {
        let listed = async {
            let mut workloads = self.workloads_listed.subscribe();
            self.jobs.wait_until_ready().await.is_ok()
                && self.pods.wait_until_ready().await.is_ok()
                && workloads
                    .wait_for(|listed| *listed != Listed::NotYet)
                    .await
                    .is_ok()
        };
        match tokio::time::timeout(FIRST_LIST_WAIT, listed).await {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => Err(ClusterError::Unreachable(
                "the service has not listed the cluster's Jobs and pods yet".into(),
            )),
        }
    }

    pub fn job(&self, name: &str) -> Option<Arc<Job>> {
        self.jobs.get(&ObjectRef::new(name).within(&self.namespace))
    }

    pub fn pod(&self, name: &str) -> Option<Arc<Pod>> {
        self.pods.get(&ObjectRef::new(name).within(&self.namespace))
    }

    /// A submission's pods, oldest first.
    pub fn pods_of(&self, id: SubmissionId) -> Vec<Arc<Pod>> {
        let names = self.pod_names.lock().get(&id).cloned().unwrap_or_default();
        let mut pods: Vec<Arc<Pod>> = names.iter().filter_map(|name| self.pod(name)).collect();
        if pods.len() < names.len() {
            // Some were deleted while no watch saw it (a relist dropped them).
            for name in names.iter().filter(|name| self.pod(name).is_none()) {
                self.index_pod(id, name, false);
            }
        }
        pods.sort_by(|a, b| creation_order(a).cmp(&creation_order(b)));
        pods
    }

    /// Notes that a pod of `id` exists (or, with `present` false, was deleted).
    pub(crate) fn index_pod(&self, id: SubmissionId, name: &str, present: bool) {
        let mut names = self.pod_names.lock();
        if present {
            names.entry(id).or_default().insert(name.to_owned());
        } else if let Some(pods) = names.get_mut(&id) {
            pods.remove(name);
            if pods.is_empty() {
                names.remove(&id);
            }
        }
    }

    /// What the Workload of the Job named `job` says, if Kueue has made one.
    pub fn workload_of(&self, job: &str) -> Option<Arc<WorkloadFacts>> {
        self.workloads.lock().get(job).cloned()
    }

    /// Notes that Workloads are followed: [`Caches::ready`] waits for their first list.
    pub(crate) fn follow_workloads(&self) {
        self.workloads_listed.send_replace(Listed::NotYet);
    }

    /// Stops [`Caches::ready`] waiting for the Workloads' first list, which is not coming
    /// soon (Kueue missing, or not readable): reconciles go on without what Kueue says.
    pub(crate) fn workloads_unavailable(&self) {
        self.workloads_listed.send_if_modified(|listed| {
            let waiting = *listed == Listed::NotYet;
            if waiting {
                *listed = Listed::Done;
            }
            waiting
        });
    }

    /// Keeps what the Workload of the Job named `job` says (`None`: it was deleted).
    pub(crate) fn set_workload(&self, job: &str, facts: Option<WorkloadFacts>) {
        let mut workloads = self.workloads.lock();
        match facts {
            Some(facts) => workloads.insert(job.to_owned(), Arc::new(facts)),
            None => workloads.remove(job),
        };
    }

    /// Forgets the Workloads of every Job but those named (after a full list).
    pub(crate) fn keep_workloads(&self, listed: &std::collections::HashSet<String>) {
        self.workloads.lock().retain(|job, _| listed.contains(job));
        self.workloads_listed.send_replace(Listed::Done);
    }

    /// Our Jobs that `selector` selects, oldest first (as kubectl lists them: by name).
    pub fn jobs_matching(&self, selector: &Selector) -> Vec<Arc<Job>> {
        matching(&self.jobs, selector)
    }

    /// Our pods that `selector` selects, by name.
    pub fn pods_matching(&self, selector: &Selector) -> Vec<Arc<Pod>> {
        matching(&self.pods, selector)
    }

    /// Completes after the next pod event; create it before looking at the pods, so an event
    /// between the look and the wait is not missed.
    pub fn pod_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.pod_changed.notified()
    }
}

fn matching<K>(store: &Store<K>, selector: &Selector) -> Vec<Arc<K>>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let mut selected: Vec<Arc<K>> = store
        .state()
        .into_iter()
        .filter(|object| {
            let none = Default::default();
            selector.matches(object.meta().labels.as_ref().unwrap_or(&none))
        })
        .collect();
    selected.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
    selected
}

fn creation_order(pod: &Arc<Pod>) -> (Option<jiff::Timestamp>, Option<&str>) {
    (
        pod.metadata.creation_timestamp.as_ref().map(|at| at.0),
        pod.metadata.name.as_deref(),
    )
}
