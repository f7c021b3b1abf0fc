//! Pods on the simulated node. There is no scheduler, so unscheduled pods are bound here; each
//! pod bound here gets its own task that runs its containers, reports their status through
//! the pod's status subresource, and honours deletion as a kubelet does (stop the processes,
//! then remove the pod). A failure on one pod is logged and retried, never fatal to the node.
//! Running a pod's containers is in `run`.

mod run;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::containers::ProcessGroups;
use crate::images::Registry;
use crate::logs::LogStore;
use crate::node::Health;
use crate::pod_status::{self, State};

/// The longest a deleted pod's processes get between SIGTERM and SIGKILL; tests need no more.
const MAX_GRACE: Duration = Duration::from_secs(5);

/// The grace period of a deleted pod: what the deletion asked for, else the pod's own, capped.
pub fn grace_period(pod: &Pod) -> Duration {
    let seconds = pod.metadata.deletion_grace_period_seconds.or_else(|| {
        pod.spec
            .as_ref()
            .and_then(|spec| spec.termination_grace_period_seconds)
    });
    seconds.map_or(MAX_GRACE, |seconds| {
        Duration::from_secs(seconds.max(0).unsigned_abs()).min(MAX_GRACE)
    })
}

/// How long the kubelet's image pull back-off lasts between reports here (a real one grows to
/// minutes; tests need to see both reasons soon).
const PULL_BACK_OFF: Duration = Duration::from_secs(3);

/// Whether a status report is a step along the way, skipped once the pod is being deleted, or
/// the last one, made after its containers stopped because it was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    Progress,
    Final,
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|spec| spec.node_name.as_deref())
        .filter(|name| !name.is_empty())
}

/// Whether the API server's answer is one that retrying cannot change (a 4xx other than 408
/// and 429); connection failures and 5xx are worth retrying, as a kubelet keeps retrying.
fn is_final(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status)
        if (400..500).contains(&status.code) && !matches!(status.code, 408 | 429))
}

fn is_deleting(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// The latest version of a pod as a pod task sees it; None once it is gone from the API.
type Updates = watch::Receiver<Option<Pod>>;

/// What the command line says about the node's pods.
pub struct Settings {
    /// The node's name.
    pub name: String,
    /// Only pods of this namespace, if given.
    pub namespace: Option<String>,
    /// Never pods of namespaces starting with one of these.
    pub excluded_namespaces: Vec<String>,
    /// Where payloads run unless their container names an existing working directory.
    pub work_dir: PathBuf,
    pub registry: Registry,
}

/// The simulated node's pods, and what it needs to run them.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    name: String,
    namespace: Option<String>,
    logs: LogStore,
    work_dir: PathBuf,
    groups: ProcessGroups,
    registry: Registry,
    health: Health,
    /// Pods in namespaces whose name starts with one of these are another node's business.
    excluded_namespaces: Vec<String>,
    /// By pod uid, the channel to the task handling that pod; an entry lives as long as its
    /// pod does, so a pod runs at most once.
    tasks: Mutex<HashMap<String, watch::Sender<Option<Pod>>>>,
    stopping: AtomicBool,
}

impl Node {
    pub fn new(
        client: Client,
        settings: Settings,
        logs: LogStore,
        groups: ProcessGroups,
        health: Health,
    ) -> Self {
        let Settings {
            name,
            namespace,
            excluded_namespaces,
            work_dir,
            registry,
        } = settings;
        Node {
            inner: Arc::new(Inner {
                client,
                name,
                namespace,
                logs,
                work_dir,
                groups,
                registry,
                health,
                excluded_namespaces,
                tasks: Mutex::default(),
                stopping: AtomicBool::new(false),
            }),
        }
    }

    fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.inner.client.clone(), namespace)
    }

    /// Watches pods (re-listing after every break, with backoff) and hands each change to the
    /// pod's task. A pod missing from a re-list was deleted while nobody watched.
    pub async fn run(self) {
        let api: Api<Pod> = match &self.inner.namespace {
            Some(namespace) => Api::namespaced(self.inner.client.clone(), namespace),
            None => Api::all(self.inner.client.clone()),
        };
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut listed: Option<HashSet<String>> = None;
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Init) => listed = Some(HashSet::new()),
                Ok(watcher::Event::InitApply(pod)) => {
                    if let Some(listed) = listed.as_mut() {
                        listed.insert(pod.uid().unwrap_or_default());
                    }
                    self.observe(pod);
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(listed) = listed.take() {
                        self.forget_all_but(&listed);
                    }
                }
                Ok(watcher::Event::Apply(pod)) => self.observe(pod),
                Ok(watcher::Event::Delete(pod)) => self.forget(&pod.uid().unwrap_or_default()),
                Err(error) => tracing::warn!(%error, "watching pods failed; retrying"),
            }
        }
    }

    /// Passes a pod's new version to its task, starting one for a pod new to this node.
    fn observe(&self, pod: Pod) {
        let Some(uid) = pod.uid() else { return };
        let namespace = pod.namespace().unwrap_or_default();
        if self
            .inner
            .excluded_namespaces
            .iter()
            .any(|prefix| namespace.starts_with(prefix.as_str()))
        {
            return;
        }
        if node_of(&pod).is_some_and(|node| node != self.inner.name) {
            self.forget(&uid);
            return;
        }
        let Ok(mut tasks) = self.inner.tasks.lock() else {
            return;
        };
        if let Some(task) = tasks.get(&uid) {
            task.send_replace(Some(pod));
            return;
        }
        if node_of(&pod).is_none() && is_deleting(&pod) {
            // The API server removes unscheduled pods by itself.
            return;
        }
        let (sender, updates) = watch::channel(Some(pod));
        tasks.insert(uid, sender);
        let node = self.clone();
        tokio::spawn(async move { node.handle(updates).await });
    }

    fn forget(&self, uid: &str) {
        let task = self
            .inner
            .tasks
            .lock()
            .ok()
            .and_then(|mut tasks| tasks.remove(uid));
        if let Some(task) = task {
            task.send_replace(None);
        }
    }

    fn forget_all_but(&self, listed: &HashSet<String>) {
        let gone: Vec<String> = self
            .inner
            .tasks
            .lock()
            .map(|tasks| {
                tasks
                    .keys()
                    .filter(|uid| !listed.contains(*uid))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for uid in gone {
            self.forget(&uid);
        }
    }

    /// The whole life of one pod on this node.
    async fn handle(self, mut updates: Updates) {
        let Some(pod) = self.bound(&mut updates).await else {
            return;
        };
        let (namespace, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        if pod_status::has_ended(&pod) {
            // Finished earlier: nothing to run.
        } else if is_deleting(&pod) || pod_status::was_started(&pod) {
            // Deleted before it started, or started by an earlier run of this node whose
            // processes ended with it: report it stopped, as a kubelet does, so that a job
            // controller waiting for a terminal phase can go on.
            let now = Timestamp::now();
            let states = pod_status::lost(&pod, now);
            let start = pod_status::start_time(&pod).unwrap_or(now);
            tracing::info!(%namespace, pod = %name, "reporting containers that cannot run any more lost");
            self.report(&pod, (&[], &states), start, &updates, Report::Final)
                .await;
        } else {
            self.run_containers(&pod, &mut updates).await;
        }
        self.until_gone(&mut updates).await;
        let uid = pod.uid().unwrap_or_default();
        self.inner.logs.remove_pod(&namespace, &name, &uid);
    }

    /// Binds the pod here if it is unscheduled, and returns it once it is bound here; None if
    /// it is gone or another node's.
    async fn bound(&self, updates: &mut Updates) -> Option<Pod> {
        let mut pause = Duration::from_millis(200);
        loop {
            let pod = updates.borrow_and_update().clone()?;
            let retry = match node_of(&pod) {
                Some(node) if node == self.inner.name => return Some(pod),
                Some(_) => return None,
                None if is_deleting(&pod) => false,
                // A node that is not ready takes no new pods; it tries again when it is.
                None if !self.inner.health.is_ready() => true,
                None => !self.bind(&pod).await,
            };
            if retry {
                tokio::select! {
                    changed = updates.changed() => changed.ok()?,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(5));
            } else {
                updates.changed().await.ok()?;
            }
        }
    }

    /// Binds the pod to this node; false if that should be tried again.
    async fn bind(&self, pod: &Pod) -> bool {
        let (namespace, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "uid": pod.uid()},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.inner.name},
        });
        let bound: Result<Value, _> = self
            .pods(&namespace)
            .create_subresource("binding", &name, &PostParams::default(), &binding)
            .await;
        match bound {
            Ok(_) => {
                tracing::info!(%namespace, pod = %name, "bound");
                true
            }
            // Bound meanwhile, gone, or refused: the next update tells.
            Err(error) if is_final(&error) => {
                tracing::debug!(%namespace, pod = %name, %error, "binding refused");
                true
            }
            Err(error) => {
                tracing::warn!(%namespace, pod = %name, %error, "could not bind; retrying");
                false
            }
        }
    }

    /// Waits until the pod is gone from the API, removing it once it is being deleted.
    async fn until_gone(&self, updates: &mut Updates) {
        loop {
            let current = updates.borrow_and_update().clone();
            match current {
                None => return,
                Some(pod) if is_deleting(&pod) => self.remove(&pod).await,
                Some(_) => {}
            }
            if updates.changed().await.is_err() {
                return;
            }
        }
    }

    /// Reports the pod's status with a strategic merge patch (so conditions others set, such
    /// as an eviction's `DisruptionTarget`, are kept), retrying while the API server cannot take
    /// it (a kubelet keeps syncing until it gets through). Gives up once the pod is gone, when a
    /// progress report finds the pod being deleted (its final report follows), or when this node
    /// is stopping (its processes die with it, which is no pod failure).
    async fn report(
        &self,
        pod: &Pod,
        (init_states, states): (&[State], &[State]),
        start: Timestamp,
        updates: &Updates,
        kind: Report,
    ) {
        let (namespace, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        let containers = pod
            .spec
            .as_ref()
            .map(|spec| spec.containers.as_slice())
            .unwrap_or_default();
        let init_containers = pod
            .spec
            .as_ref()
            .and_then(|spec| spec.init_containers.as_deref())
            .unwrap_or_default();
        let init_containers = &init_containers[..init_states.len().min(init_containers.len())];
        let mut pause = Duration::from_millis(200);
        loop {
            let skip = match (updates.borrow().as_ref(), kind) {
                (None, _) => true,
                (Some(current), Report::Progress) => is_deleting(current),
                (Some(_), Report::Final) => false,
            };
            if skip || self.inner.stopping.load(Ordering::SeqCst) {
                return;
            }
            let status = pod_status::pod_status_with_init(
                init_containers,
                init_states,
                containers,
                states,
                start,
                Timestamp::now(),
            );
            let patched = self
                .pods(&namespace)
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&status))
                .await;
            match patched {
                Ok(_) => return,
                Err(error) if is_final(&error) => {
                    tracing::warn!(%namespace, pod = %name, %error, "status refused");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%namespace, pod = %name, %error, "could not report status; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Removes a pod being deleted whose processes have stopped: a deletion with no grace
    /// period, for this very pod (uid precondition), as a kubelet confirms one.
    async fn remove(&self, pod: &Pod) {
        let (namespace, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let mut pause = Duration::from_millis(200);
        loop {
            match self.pods(&namespace).delete(&name, &params).await {
                Ok(_) => {
                    tracing::info!(%namespace, pod = %name, "removed");
                    return;
                }
                // Gone already (404), a new pod of the same name (409), or refused.
                Err(error) if is_final(&error) => return,
                Err(error) => {
                    tracing::warn!(%namespace, pod = %name, %error, "could not remove; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// The node failed: every process it runs dies, and the containers are reported lost
    /// (see `run`), so their pods fail as pods on a failed node do.
    pub fn lose_all_processes(&self) {
        self.inner.groups.kill_all();
    }

    /// Stops reporting and kills every process this node runs (on shutdown).
    pub fn stop(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner.groups.kill_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).expect("pod")
    }

    #[test]
    fn the_grace_period_is_the_deletions_then_the_pods_and_is_capped() {
        let asked = pod(json!({"metadata": {"deletionGracePeriodSeconds": 1},
            "spec": {"containers": [], "terminationGracePeriodSeconds": 3}}));
        let own = pod(json!({"spec": {"containers": [], "terminationGracePeriodSeconds": 2}}));
        let long = pod(json!({"metadata": {"deletionGracePeriodSeconds": 30}}));
        let none = pod(json!({"metadata": {"deletionGracePeriodSeconds": 0}}));

        assert_eq!(grace_period(&asked), Duration::from_secs(1));
        assert_eq!(grace_period(&own), Duration::from_secs(2));
        assert_eq!(grace_period(&long), MAX_GRACE);
        assert_eq!(grace_period(&none), Duration::ZERO);
    }

    #[test]
    fn only_refusals_are_final() {
        let answer =
            |code| kube::Error::Api(kube::core::Status::failure("", "").with_code(code).boxed());

        assert!(is_final(&answer(404)));
        assert!(is_final(&answer(409)));
        assert!(is_final(&answer(422)));
        assert!(!is_final(&answer(429)));
        assert!(!is_final(&answer(500)));
        assert!(!is_final(&answer(503)));
    }

    #[test]
    fn an_empty_node_name_is_unscheduled() {
        let unscheduled = pod(json!({"spec": {"containers": [], "nodeName": ""}}));
        let bound = pod(json!({"spec": {"containers": [], "nodeName": "sim-node"}}));

        assert_eq!(node_of(&unscheduled), None);
        assert_eq!(node_of(&bound), Some("sim-node"));
    }
}
