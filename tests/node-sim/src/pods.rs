//! Pods on the simulated node: binding unscheduled pods here (there is no scheduler), running
//! each pod's container command as a local process, reporting its status through the pod's
//! status subresource, and honouring deletion (kill, then remove the pod) as a kubelet does.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, watch};

use crate::logs::{LogKey, LogStore};

/// The longest a deleted pod's process gets between SIGTERM and SIGKILL; tests need no more.
const MAX_GRACE: Duration = Duration::from_secs(3);

/// The argv to run for a container: `bash -cl X` becomes `bash -c X`, so no login profile of
/// this machine is read; everything else runs as given.
pub fn argv(container: &Container) -> Vec<String> {
    let mut argv: Vec<String> = container.command.clone().unwrap_or_default();
    argv.extend(container.args.clone().unwrap_or_default());
    if argv.len() >= 2 && argv[0] == "bash" && argv[1] == "-cl" {
        argv[1] = "-c".into();
    }
    argv
}

/// Kubernetes times are whole seconds in RFC 3339.
pub fn k8s_time(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn conditions(ready: bool, now: &str) -> Value {
    let status = |on: bool| if on { "True" } else { "False" };
    json!([
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "Ready", "status": status(ready), "lastTransitionTime": now},
        {"type": "ContainersReady", "status": status(ready), "lastTransitionTime": now},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
    ])
}

fn container_status(container: &Container, ready: bool, state: Value) -> Value {
    json!({
        "name": container.name,
        "image": container.image.clone().unwrap_or_default(),
        "imageID": "",
        "ready": ready,
        "started": ready,
        "restartCount": 0,
        "state": state,
    })
}

/// The status of a pod whose container runs since `started`.
pub fn running_status(container: &Container, started: Timestamp) -> Value {
    let started = k8s_time(started);
    json!({"status": {
        "phase": "Running",
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "startTime": started,
        "conditions": conditions(true, &started),
        "containerStatuses": [container_status(container, true, json!({"running": {"startedAt": started}}))],
    }})
}

/// The status of a pod whose container ended with `exit_code`.
pub fn terminated_status(
    container: &Container,
    started: Timestamp,
    finished: Timestamp,
    exit_code: i32,
    message: Option<&str>,
) -> Value {
    let (phase, reason) = if exit_code == 0 {
        ("Succeeded", "Completed")
    } else {
        ("Failed", "Error")
    };
    let mut terminated = json!({
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": k8s_time(started),
        "finishedAt": k8s_time(finished),
    });
    if let Some(message) = message {
        terminated["message"] = json!(message);
    }
    json!({"status": {
        "phase": phase,
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "startTime": k8s_time(started),
        "conditions": conditions(false, &k8s_time(finished)),
        "containerStatuses": [container_status(container, false, json!({"terminated": terminated}))],
    }})
}

/// A process this node runs for a pod.
struct Running {
    pid: u32,
    /// Becomes true when the process has exited.
    exited: watch::Receiver<bool>,
}

#[derive(Clone)]
pub struct Node {
    client: Client,
    name: String,
    logs: LogStore,
    work_dir: PathBuf,
    /// By pod uid: started pods (a pod runs at most once), and their process while it runs.
    started: Arc<Mutex<HashMap<String, Option<Running>>>>,
}

impl Node {
    pub fn new(client: Client, name: String, logs: LogStore, work_dir: PathBuf) -> Self {
        Node {
            client,
            name,
            logs,
            work_dir,
            started: Arc::default(),
        }
    }

    fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Watches every pod until the stream ends, acting on each change.
    pub async fn run(self) {
        let api: Api<Pod> = Api::all(self.client.clone());
        let mut pods = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(pod) = pods.next().await {
            match pod {
                Ok(pod) => self.on_pod(pod).await,
                Err(error) => tracing::warn!(%error, "watching pods failed; retrying"),
            }
        }
    }

    async fn on_pod(&self, pod: Pod) {
        let node = pod.spec.as_ref().and_then(|spec| spec.node_name.clone());
        let phase = pod.status.as_ref().and_then(|status| status.phase.clone());
        let ended = matches!(phase.as_deref(), Some("Succeeded" | "Failed"));
        match node {
            Some(node) if node != self.name => {}
            _ if pod.metadata.deletion_timestamp.is_some() => {
                let node = self.clone();
                tokio::spawn(async move { node.terminate(pod).await });
            }
            None => {
                let node = self.clone();
                tokio::spawn(async move { node.bind(&pod).await });
            }
            Some(_) if ended => {}
            Some(_) => {
                let uid = pod.uid().unwrap_or_default();
                let first = self
                    .started
                    .lock()
                    .is_ok_and(|mut started| match started.entry(uid) {
                        Entry::Vacant(entry) => {
                            entry.insert(None);
                            true
                        }
                        Entry::Occupied(_) => false,
                    });
                if first {
                    let node = self.clone();
                    tokio::spawn(async move { node.start(pod).await });
                }
            }
        }
    }

    async fn bind(&self, pod: &Pod) {
        let (namespace, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.name},
        });
        let (pods, post) = (self.pods(&namespace), PostParams::default());
        let bound = until_answered("bind", &namespace, &name, || {
            pods.create_subresource::<_, Value>("binding", &name, &post, &binding)
        })
        .await;
        if bound.is_some() {
            tracing::info!(%namespace, pod = %name, "bound");
        }
    }

    async fn start(&self, pod: Pod) {
        let (namespace, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        let uid = pod.uid().unwrap_or_default();
        let Some(container) = pod
            .spec
            .as_ref()
            .and_then(|spec| spec.containers.first())
            .cloned()
        else {
            return;
        };
        let started = Timestamp::now();
        let argv = argv(&container);
        let key = LogKey {
            namespace: namespace.clone(),
            pod: name.clone(),
            container: container.name.clone(),
        };
        let writer = match self.logs.writer(key).await {
            Ok(writer) => writer,
            Err(error) => {
                tracing::error!(%error, "cannot write logs");
                return;
            }
        };
        let Some((program, arguments)) = argv.split_first() else {
            self.report(
                &namespace,
                &name,
                terminated_status(
                    &container,
                    started,
                    Timestamp::now(),
                    128,
                    Some("no command"),
                ),
            )
            .await;
            return;
        };
        let mut command = tokio::process::Command::new(program);
        command
            .args(arguments)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .current_dir(&self.work_dir);
        if let Some(dir) = container
            .working_dir
            .as_deref()
            .filter(|dir| std::path::Path::new(dir).is_dir())
        {
            command.current_dir(dir);
        }
        for variable in container.env.clone().unwrap_or_default() {
            if let Some(value) = variable.value {
                command.env(variable.name, value);
            }
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                let message = format!("cannot run {program}: {error}");
                self.report(
                    &namespace,
                    &name,
                    terminated_status(&container, started, Timestamp::now(), 128, Some(&message)),
                )
                .await;
                return;
            }
        };
        let (exited_sender, exited) = watch::channel(false);
        if let (Some(pid), Ok(mut runs)) = (child.id(), self.started.lock()) {
            runs.insert(uid.clone(), Some(Running { pid, exited }));
        }
        tracing::info!(%namespace, pod = %name, ?argv, "started");

        let (lines, received) = mpsc::channel(256);
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(forward(BufReader::new(stdout), lines.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward(BufReader::new(stderr), lines.clone()));
        }
        drop(lines);
        let logged = tokio::spawn(writer.drain(received));
        self.report(&namespace, &name, running_status(&container, started))
            .await;

        let status = child.wait().await;
        let _ = logged.await;
        let _ = exited_sender.send(true);
        if let Ok(mut started) = self.started.lock() {
            started.insert(uid, None);
        }
        // A pod being deleted is not reported on; if the API server cannot say, report anyway.
        let deleted = match self.pods(&namespace).get_opt(&name).await {
            Ok(pod) => pod.is_none_or(|pod| pod.metadata.deletion_timestamp.is_some()),
            Err(_) => false,
        };
        if deleted {
            return;
        }
        let exit_code = match status {
            Ok(status) => status.code().unwrap_or_else(|| {
                128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
            }),
            Err(_) => 128,
        };
        tracing::info!(%namespace, pod = %name, exit_code, "exited");
        self.report(
            &namespace,
            &name,
            terminated_status(&container, started, Timestamp::now(), exit_code, None),
        )
        .await;
    }

    /// Reports a pod's status, retrying while the API server cannot be reached (a kubelet
    /// keeps syncing until it gets through); gives up only when the pod is gone.
    async fn report(&self, namespace: &str, name: &str, status: Value) {
        let (pods, params, patch) = (
            self.pods(namespace),
            PatchParams::default(),
            Patch::Merge(&status),
        );
        until_answered("report status", namespace, name, || {
            pods.patch_status(name, &params, &patch)
        })
        .await;
    }

    /// Stops a deleted pod's process (SIGTERM, then SIGKILL after the grace period) and removes
    /// the pod, as a kubelet confirms a deletion.
    async fn terminate(&self, pod: Pod) {
        let (namespace, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        let uid = pod.uid().unwrap_or_default();
        let running = self
            .started
            .lock()
            .ok()
            .and_then(|mut started| started.get_mut(&uid).and_then(Option::take));
        if let Some(mut running) = running {
            let grace = pod
                .spec
                .as_ref()
                .and_then(|spec| spec.termination_grace_period_seconds)
                .map_or(MAX_GRACE, |seconds| {
                    Duration::from_secs(seconds.max(0).unsigned_abs()).min(MAX_GRACE)
                });
            signal(running.pid, "TERM").await;
            let exited = async { running.exited.wait_for(|exited| *exited).await.is_ok() };
            if tokio::time::timeout(grace, exited).await.is_err() {
                signal(running.pid, "KILL").await;
            }
        }
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let pods = self.pods(&namespace);
        if until_answered("remove", &namespace, &name, || pods.delete(&name, &params))
            .await
            .is_some()
        {
            tracing::info!(%namespace, pod = %name, "removed");
        }
    }

    /// Kills every process this node runs (on shutdown).
    pub async fn kill_all(&self) {
        let pids: Vec<u32> = self
            .started
            .lock()
            .map(|started| {
                started
                    .values()
                    .flatten()
                    .map(|running| running.pid)
                    .collect()
            })
            .unwrap_or_default();
        for pid in pids {
            signal(pid, "KILL").await;
        }
    }
}

/// Calls `attempt` until the API server answers it, as a kubelet keeps retrying what it must
/// tell the API server. Returns `None` for an answer retrying cannot change (4xx: the pod is
/// gone, already bound elsewhere, ...).
async fn until_answered<T, F, Fut>(
    what: &str,
    namespace: &str,
    name: &str,
    mut attempt: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut pause = Duration::from_millis(200);
    loop {
        match attempt().await {
            Ok(value) => return Some(value),
            Err(kube::Error::Api(status)) if (400..500).contains(&status.code) => {
                tracing::debug!(%namespace, pod = %name, code = status.code, "{what}: refused");
                return None;
            }
            Err(error) => {
                tracing::warn!(%namespace, pod = %name, %error, "{what} failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Signals a process group (each payload runs in its own).
async fn signal(pid: u32, signal: &str) {
    let _ = tokio::process::Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status()
        .await;
}

async fn forward<R: tokio::io::AsyncBufRead + Unpin>(reader: R, lines: mpsc::Sender<String>) {
    let mut reader = reader.lines();
    while let Ok(Some(line)) = reader.next_line().await {
        if lines.send(line).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(command: &[&str]) -> Container {
        Container {
            name: "payload".into(),
            command: Some(command.iter().map(|part| part.to_string()).collect()),
            ..Container::default()
        }
    }

    #[test]
    fn a_login_shell_becomes_a_plain_shell() {
        assert_eq!(
            argv(&container(&["bash", "-cl", "echo hi"])),
            ["bash", "-c", "echo hi"]
        );
        assert_eq!(argv(&container(&["sleep", "1"])), ["sleep", "1"]);
    }

    #[test]
    fn a_failed_container_reports_its_exit_code() {
        let at: Timestamp = "2026-01-01T00:00:00.5Z".parse().expect("time");

        let status = terminated_status(&container(&["false"]), at, at, 3, None);

        assert_eq!(status["status"]["phase"], "Failed");
        let state = &status["status"]["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(state["exitCode"], 3);
        assert_eq!(state["reason"], "Error");
        assert_eq!(state["startedAt"], "2026-01-01T00:00:00Z");
    }

    #[test]
    fn a_running_container_is_ready() {
        let status = running_status(&container(&["true"]), Timestamp::UNIX_EPOCH);

        assert_eq!(status["status"]["phase"], "Running");
        assert_eq!(status["status"]["containerStatuses"][0]["ready"], true);
    }
}
