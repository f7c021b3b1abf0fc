//! Running one pod's containers: its init containers one after another, then its containers
//! together, each change reported; a deletion stops them (SIGTERM, then SIGKILL after the grace
//! period) and the pod's last status says how each ended, so it reaches a terminal phase.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::ResourceExt;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{Node, PULL_BACK_OFF, Report, Updates, grace_period, is_deleting};
use crate::containers::{Exit, Launch, Running};
use crate::logs::LogKey;
use crate::pod_status::{self, State};

impl Node {
    /// Starts one container's process, its output going to its log.
    async fn start(
        &self,
        pod: &Pod,
        container: &Container,
        launch: &Launch<'_>,
    ) -> Result<Running, String> {
        let key = LogKey {
            namespace: pod.namespace().unwrap_or_default(),
            pod: pod.name_any(),
            container: container.name.clone(),
        };
        let uid = pod.uid().unwrap_or_default();
        match self.inner.logs.writer(key, &uid).await {
            Ok(log) => Running::start(container, launch, log),
            Err(error) => Err(format!("cannot write the container's log: {error}")),
        }
    }

    /// Runs the pod's init containers one after another, reporting each change. Returns their
    /// final states once all exited 0; None when one failed or the pod was deleted meanwhile
    /// (its final status is reported then, and its containers never start).
    async fn run_init_containers(
        &self,
        pod: &Pod,
        updates: &mut Updates,
        start: Timestamp,
    ) -> Option<Vec<State>> {
        let (namespace, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        let spec = pod.spec.clone().unwrap_or_default();
        let init = spec.init_containers.unwrap_or_default();
        let waiting: Vec<State> = spec
            .containers
            .iter()
            .map(|_| pod_status::initializing())
            .collect();
        let mut init_states: Vec<State> = init.iter().map(|_| pod_status::initializing()).collect();
        let launch = Launch {
            pod_name: &name,
            work_dir: &self.inner.work_dir,
            groups: &self.inner.groups,
        };
        for (index, container) in init.iter().enumerate() {
            let started = self.start(pod, container, &launch).await;
            let process = match started {
                Ok(process) => process,
                Err(message) => {
                    init_states[index] = State::Terminated {
                        exit: Exit::start_error(message, Timestamp::now()),
                        id: None,
                    };
                    self.report(pod, (&init_states, &waiting), start, updates, Report::Final)
                        .await;
                    return None;
                }
            };
            tracing::info!(%namespace, pod = %name, container = %container.name, "init container started");
            let id = process.container_id();
            init_states[index] = State::Running {
                started: process.started,
                id: id.clone(),
            };
            self.report(
                pod,
                (&init_states, &waiting),
                start,
                updates,
                Report::Progress,
            )
            .await;
            let (stop, stop_requested) = watch::channel(None);
            let mut exited = Box::pin(process.wait(stop_requested));
            let mut deleted = false;
            let exit = loop {
                tokio::select! {
                    exit = &mut exited => break exit,
                    changed = updates.changed(), if !deleted => {
                        let current = changed.ok().and_then(|()| updates.borrow_and_update().clone());
                        let grace = match &current {
                            Some(pod) if is_deleting(pod) => grace_period(pod),
                            Some(_) => continue,
                            None => Duration::ZERO,
                        };
                        deleted = true;
                        stop.send_replace(Some(grace));
                    }
                }
            };
            let exit = if self.inner.health.is_ready() {
                exit
            } else {
                exit.lost()
            };
            let failed = exit.exit_code != 0;
            init_states[index] = State::Terminated { exit, id: Some(id) };
            if deleted || failed {
                let now = Timestamp::now();
                let states: Vec<State> = waiting.iter().cloned().map(|s| s.stopped(now)).collect();
                let reported = if deleted { &states } else { &waiting };
                self.report(pod, (&init_states, reported), start, updates, Report::Final)
                    .await;
                return None;
            }
        }
        Some(init_states)
    }

    /// Runs the pod's containers until they have all ended (reporting each change), or until
    /// the pod is deleted: then stops them (SIGTERM, SIGKILL after the grace period) and reports
    /// how each ended, so the pod reaches a terminal phase before it is removed. A container
    /// whose image cannot be pulled waits, re-reported as the kubelet backs off, until then.
    pub(super) async fn run_containers(&self, pod: &Pod, updates: &mut Updates) {
        let (namespace, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        let containers: Vec<Container> = pod
            .spec
            .as_ref()
            .map(|spec| spec.containers.clone())
            .unwrap_or_default();
        let start = Timestamp::now();
        let Some(init_states) = self.run_init_containers(pod, updates, start).await else {
            return;
        };
        let (stop, stop_requested) = watch::channel(None);
        let mut states = Vec::with_capacity(containers.len());
        let mut running = JoinSet::new();
        let launch = Launch {
            pod_name: &name,
            work_dir: &self.inner.work_dir,
            groups: &self.inner.groups,
        };
        let mut pull_attempt = 0;
        for (index, container) in containers.iter().enumerate() {
            let image = container.image.as_deref().unwrap_or_default();
            if let Some(failure) = self.inner.registry.pull(image, pull_attempt) {
                tracing::info!(%namespace, pod = %name, container = %container.name, reason = failure.reason, "image not pulled");
                states.push(State::Waiting {
                    reason: failure.reason.into(),
                    message: failure.message,
                });
                continue;
            }
            let started = self.start(pod, container, &launch).await;
            match started {
                Ok(process) => {
                    tracing::info!(%namespace, pod = %name, container = %container.name,
                        argv = ?crate::containers::argv(container), "started");
                    states.push(State::Running {
                        started: process.started,
                        id: process.container_id(),
                    });
                    let (stop, id) = (stop_requested.clone(), process.container_id());
                    running.spawn(async move { (index, process.wait(stop).await, id) });
                }
                Err(message) => {
                    tracing::warn!(%namespace, pod = %name, container = %container.name, %message, "could not start");
                    states.push(State::Terminated {
                        exit: Exit::start_error(message, Timestamp::now()),
                        id: None,
                    });
                }
            }
        }
        self.report(
            pod,
            (&init_states, &states),
            start,
            updates,
            Report::Progress,
        )
        .await;

        let mut deleted = false;
        loop {
            let waiting = !deleted
                && states
                    .iter()
                    .any(|state| matches!(state, State::Waiting { .. }));
            if running.is_empty() && !waiting {
                break;
            }
            tokio::select! {
                Some(ended) = running.join_next(), if !running.is_empty() => {
                    let Ok((index, exit, id)) = ended else { continue };
                    let exit = if self.inner.health.is_ready() { exit } else { exit.lost() };
                    tracing::info!(%namespace, pod = %name, container = %containers[index].name,
                        exit_code = exit.exit_code, "exited");
                    states[index] = State::Terminated { exit, id: Some(id) };
                    if !deleted {
                        self.report(pod, (&init_states, &states), start, updates, Report::Progress).await;
                    }
                }
                changed = updates.changed(), if !deleted => {
                    let current = changed.ok().and_then(|()| updates.borrow_and_update().clone());
                    let grace = match &current {
                        Some(pod) if is_deleting(pod) => grace_period(pod),
                        Some(_) => continue,
                        // Gone from the API without a graceful deletion: no grace to give.
                        None => Duration::ZERO,
                    };
                    tracing::info!(%namespace, pod = %name, ?grace, "deleted; stopping its containers");
                    deleted = true;
                    stop.send_replace(Some(grace));
                }
                () = tokio::time::sleep(PULL_BACK_OFF), if waiting => {
                    pull_attempt += 1;
                    for (state, container) in states.iter_mut().zip(&containers) {
                        if let State::Waiting { reason, message } = state {
                            let image = container.image.as_deref().unwrap_or_default();
                            if let Some(failure) = self.inner.registry.pull(image, pull_attempt) {
                                *reason = failure.reason.into();
                                *message = failure.message;
                            }
                        }
                    }
                    self.report(pod, (&init_states, &states), start, updates, Report::Progress).await;
                }
            }
        }
        if deleted {
            let now = Timestamp::now();
            let states: Vec<State> = states.into_iter().map(|state| state.stopped(now)).collect();
            self.report(pod, (&init_states, &states), start, updates, Report::Final)
                .await;
        }
    }
}
