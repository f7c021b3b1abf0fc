//! Containers as local processes: the image is ignored and the container's command runs on
//! this machine, in its own process group so that stopping a container stops everything it
//! started (as a container runtime stops a container's whole PID namespace). Output is
//! captured line by line into the container's log.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Container;
use rustix::process::{Pid, Signal};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::logs::{Line, LogWriter, Stream};

/// How long output still held open by a container's leftovers may take to arrive once its main
/// process has ended and its group was killed; a process that left the group could hold the
/// pipes forever.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// The argv to run for a container: `bash -cl X` becomes `bash -c X`, so no login profile of
/// this machine is read; everything else runs as given (command, then args).
pub fn argv(container: &Container) -> Vec<String> {
    let mut argv: Vec<String> = container.command.clone().unwrap_or_default();
    argv.extend(container.args.clone().unwrap_or_default());
    if argv.len() >= 2 && argv[0] == "bash" && argv[1] == "-cl" {
        argv[1] = "-c".into();
    }
    argv
}

/// The environment of a container's process: like a container's, not this process's (so the
/// test harness's variables do not leak into payloads), but with this machine's PATH and HOME
/// so the commands can be found. Only literal values are set; `valueFrom` needs a kubelet.
pub fn environment(
    container: &Container,
    pod_name: &str,
    path: Option<String>,
    home: Option<String>,
) -> Vec<(String, String)> {
    let mut environment = vec![
        (
            "PATH".to_owned(),
            path.unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
        ("HOSTNAME".to_owned(), pod_name.to_owned()),
    ];
    if let Some(home) = home {
        environment.push(("HOME".into(), home));
    }
    for variable in container.env.iter().flatten() {
        if let Some(value) = &variable.value {
            environment.retain(|(name, _)| *name != variable.name);
            environment.push((variable.name.clone(), value.clone()));
        }
    }
    environment
}

/// How a container ended, as its status reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub exit_code: i32,
    pub reason: String,
    pub message: Option<String>,
    pub started: Option<Timestamp>,
    pub finished: Timestamp,
}

impl Exit {
    /// A process that ran and ended with `status`: `Completed` for 0, `Error` otherwise, and
    /// 128 + N for death by signal N, as container runtimes report it.
    pub fn of(status: ExitStatus, started: Timestamp, finished: Timestamp) -> Exit {
        use std::os::unix::process::ExitStatusExt as _;
        let exit_code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Exit {
            exit_code,
            reason: if exit_code == 0 { "Completed" } else { "Error" }.into(),
            message: None,
            started: Some(started),
            finished,
        }
    }

    /// How a container that ended because its node failed is reported: the runtime lost it.
    pub fn lost(self) -> Exit {
        Exit {
            exit_code: 137,
            reason: "ContainerStatusUnknown".into(),
            message: Some("The container could not be located when the pod was terminated".into()),
            ..self
        }
    }

    /// A container whose process could not be started at all.
    pub fn start_error(message: String, now: Timestamp) -> Exit {
        Exit {
            exit_code: 128,
            reason: "StartError".into(),
            message: Some(message),
            started: None,
            finished: now,
        }
    }
}

/// The process groups this node runs, so they can all be killed when it stops, and a record
/// of each on disk, so that a node started after a crash can kill what the crashed one left.
#[derive(Clone)]
pub struct ProcessGroups {
    dir: PathBuf,
    live: Arc<Mutex<HashSet<i32>>>,
}

impl ProcessGroups {
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(ProcessGroups {
            dir,
            live: Arc::default(),
        })
    }

    fn add(&self, group: i32) {
        if let Ok(mut live) = self.live.lock() {
            live.insert(group);
        }
        if let Some(started) = start_time(group) {
            let _ = std::fs::write(self.dir.join(group.to_string()), started);
        }
    }

    fn remove(&self, group: i32) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(&group);
        }
        let _ = std::fs::remove_file(self.dir.join(group.to_string()));
    }

    /// Kills every group this process started (on shutdown).
    pub fn kill_all(&self) {
        let groups: Vec<i32> = self
            .live
            .lock()
            .map(|live| live.iter().copied().collect())
            .unwrap_or_default();
        for group in groups {
            signal_group(group, Signal::KILL);
            self.remove(group);
        }
    }

    /// Kills the groups an earlier run of this node left behind, if they still run. A record
    /// names a group and the start time of its leader, so a reused process id is left alone.
    pub fn kill_leftovers(&self) {
        let Ok(records) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for record in records.flatten() {
            let path = record.path();
            let group = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.parse::<i32>().ok());
            let recorded = std::fs::read_to_string(&path).ok();
            if let (Some(group), Some(recorded)) = (group, recorded)
                && start_time(group).as_deref() == Some(recorded.as_str())
            {
                tracing::info!(group, "killing a process group left by an earlier run");
                signal_group(group, Signal::KILL);
            }
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The start time of a process (field 22 of /proc/PID/stat), which tells a process from a
/// later one with the same id.
fn start_time(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

fn parse_start_time(stat: &str) -> Option<String> {
    // The command name (field 2) is in parentheses and may hold spaces; field 3 follows.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19).map(str::to_owned)
}

/// Sends `signal` to a process group; a group that is gone already is no error.
pub fn signal_group(group: i32, signal: Signal) {
    if let Some(group) = Pid::from_raw(group) {
        let _ = rustix::process::kill_process_group(group, signal);
    }
}

/// What a container's process needs besides the container itself.
pub struct Launch<'a> {
    pub pod_name: &'a str,
    /// Where the process runs unless the container names an existing working directory.
    pub work_dir: &'a Path,
    pub groups: &'a ProcessGroups,
}

/// A started container: its process, and the tasks copying its output into its log.
pub struct Running {
    child: tokio::process::Child,
    group: i32,
    /// It needs more memory than its limit (`memory.rs`): killed at once, as `OOMKilled`.
    out_of_memory: bool,
    pub started: Timestamp,
    groups: ProcessGroups,
    readers: Vec<JoinHandle<()>>,
    writer: JoinHandle<()>,
}

impl Running {
    /// Starts `container`'s command, its output going to `log`.
    pub fn start(
        container: &Container,
        launch: &Launch<'_>,
        log: LogWriter,
    ) -> Result<Running, String> {
        let argv = argv(container);
        let Some((program, arguments)) = argv.split_first() else {
            return Err("the container has no command (images are not run here)".into());
        };
        let mut command = tokio::process::Command::new(program);
        command
            .args(arguments)
            .env_clear()
            .envs(environment(
                container,
                launch.pod_name,
                std::env::var("PATH").ok(),
                std::env::var("HOME").ok(),
            ))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .current_dir(launch.work_dir);
        if let Some(dir) = container
            .working_dir
            .as_deref()
            .filter(|dir| Path::new(dir).is_dir())
        {
            command.current_dir(dir);
        }
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot run {program}: {error}"))?;
        let started = Timestamp::now();
        let group = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or("the process ended before it could be watched")?;
        launch.groups.add(group);

        let (lines, received) = mpsc::channel(256);
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(read_lines(
                BufReader::new(stdout),
                Stream::Stdout,
                lines.clone(),
            )));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(read_lines(
                BufReader::new(stderr),
                Stream::Stderr,
                lines,
            )));
        }
        Ok(Running {
            child,
            group,
            out_of_memory: crate::memory::runs_out(container),
            started,
            groups: launch.groups.clone(),
            readers,
            writer: tokio::spawn(log.drain(received)),
        })
    }

    /// An id for the container's status.
    pub fn container_id(&self) -> String {
        format!("node-sim://{}", self.group)
    }

    /// Waits until the process ends, or until `stop` asks for it to end: then sends SIGTERM
    /// to its group, and SIGKILL once the grace period given is over. Returns once the
    /// container's output is all in its log.
    pub async fn wait(mut self, mut stop: watch::Receiver<Option<Duration>>) -> Exit {
        if self.out_of_memory {
            signal_group(self.group, Signal::KILL);
        }
        let status = tokio::select! {
            status = self.child.wait() => status,
            grace = async { stop.wait_for(Option::is_some).await.ok().and_then(|grace| *grace) } => {
                let grace = grace.unwrap_or_default();
                signal_group(self.group, Signal::TERM);
                match tokio::time::timeout(grace, self.child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        signal_group(self.group, Signal::KILL);
                        self.child.wait().await
                    }
                }
            }
        };
        let finished = Timestamp::now();
        // What the main process left running ends with it, as in a container.
        signal_group(self.group, Signal::KILL);
        self.groups.remove(self.group);
        let readers = futures::future::join_all(self.readers.iter_mut());
        if tokio::time::timeout(OUTPUT_GRACE, readers).await.is_err() {
            for reader in &self.readers {
                reader.abort();
            }
        }
        let _ = self.writer.await;
        match status {
            Ok(_) if self.out_of_memory => Exit {
                exit_code: 137,
                reason: "OOMKilled".into(),
                message: None,
                started: Some(self.started),
                finished,
            },
            Ok(status) => Exit::of(status, self.started, finished),
            Err(error) => Exit {
                exit_code: 128,
                reason: "Error".into(),
                message: Some(format!("lost track of the process: {error}")),
                started: Some(self.started),
                finished,
            },
        }
    }
}

/// Copies lines of one output stream into the log, each with the time it was read. Bytes are
/// kept as they are; a last line without a newline is kept too.
async fn read_lines<R: AsyncBufRead + Unpin>(
    mut reader: R,
    stream: Stream,
    lines: mpsc::Sender<Line>,
) {
    loop {
        let mut text = Vec::new();
        match reader.read_until(b'\n', &mut text).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if text.last() == Some(&b'\n') {
                    text.pop();
                }
                let line = Line {
                    time: Timestamp::now(),
                    stream,
                    text,
                };
                if lines.send(line).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::EnvVar;

    use super::*;

    fn container(command: &[&str], args: &[&str]) -> Container {
        let strings = |parts: &[&str]| parts.iter().map(|part| part.to_string()).collect();
        Container {
            name: "payload".into(),
            command: (!command.is_empty()).then(|| strings(command)),
            args: (!args.is_empty()).then(|| strings(args)),
            ..Container::default()
        }
    }

    #[test]
    fn a_login_shell_becomes_a_plain_shell() {
        assert_eq!(
            argv(&container(&["bash", "-cl", "echo hi"], &[])),
            ["bash", "-c", "echo hi"]
        );
    }

    #[test]
    fn other_commands_run_as_given_with_their_args() {
        assert_eq!(argv(&container(&["sleep"], &["1"])), ["sleep", "1"]);
        assert_eq!(
            argv(&container(&["sh", "-cl", "x"], &[])),
            ["sh", "-cl", "x"]
        );
        assert!(argv(&container(&[], &[])).is_empty());
    }

    #[test]
    fn literal_env_values_are_set_and_references_skipped() {
        let mut payload = container(&["true"], &[]);
        payload.env = Some(vec![
            EnvVar {
                name: "GREETING".into(),
                value: Some("hello".into()),
                value_from: None,
            },
            EnvVar {
                name: "FROM_SECRET".into(),
                value: None,
                value_from: Some(Default::default()),
            },
            EnvVar {
                name: "PATH".into(),
                value: Some("/opt/bin".into()),
                value_from: None,
            },
        ]);

        let environment = environment(&payload, "pod-1", Some("/usr/bin".into()), None);

        assert!(environment.contains(&("GREETING".into(), "hello".into())));
        assert!(environment.contains(&("HOSTNAME".into(), "pod-1".into())));
        assert!(environment.contains(&("PATH".into(), "/opt/bin".into())));
        assert!(!environment.iter().any(|(name, _)| name == "FROM_SECRET"));
        assert_eq!(
            environment
                .iter()
                .filter(|(name, _)| name == "PATH")
                .count(),
            1
        );
    }

    #[test]
    fn exits_are_reported_as_a_runtime_reports_them() {
        use std::os::unix::process::ExitStatusExt as _;
        let at = Timestamp::UNIX_EPOCH;

        let completed = Exit::of(ExitStatus::from_raw(0), at, at);
        let failed = Exit::of(ExitStatus::from_raw(3 << 8), at, at);
        let killed = Exit::of(ExitStatus::from_raw(9), at, at);

        assert_eq!(
            (completed.exit_code, completed.reason.as_str()),
            (0, "Completed")
        );
        assert_eq!((failed.exit_code, failed.reason.as_str()), (3, "Error"));
        assert_eq!((killed.exit_code, killed.reason.as_str()), (137, "Error"));
    }

    #[test]
    fn the_start_time_is_field_22_even_with_spaces_in_the_name() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";

        assert_eq!(parse_start_time(stat).as_deref(), Some("987654"));
        assert!(start_time(i32::try_from(std::process::id()).expect("pid")).is_some());
    }
}
