//! What each executor of a task did, as read from its pod when the pod ended: the facts behind
//! a task log's `logs[]`, kept after the pod is gone.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The most of one executor's output kept: its last 1 MiB.
pub const OUTPUT_LIMIT: usize = 1024 * 1024;

/// One executor's run in one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorRun {
    /// Its place in the task's `executors`.
    pub executor: usize,
    /// As the executor's program exited (also when its `ignore_error` let the task go on).
    pub exit_code: i32,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
    /// Its container's log: stdout and stderr, merged by Kubernetes.
    pub output: Vec<u8>,
    /// Bytes dropped from the start of an output larger than [`OUTPUT_LIMIT`].
    pub truncated_bytes: u64,
}

impl ExecutorRun {
    /// The output as text, after a marker if its start was dropped.
    pub fn output_text(&self) -> String {
        let text = String::from_utf8_lossy(&self.output);
        if self.truncated_bytes == 0 {
            return text.into_owned();
        }
        format!(
            "[submission-helper: output truncated, the first {} bytes were dropped]\n{text}",
            self.truncated_bytes
        )
    }
}

/// An executor's container is named this and its place in `executors` (`exec-0`, `exec-1`...).
pub const EXECUTOR_PREFIX: &str = "exec-";

/// The container that writes inline inputs and checks those of the claim before the first
/// executor: a line `tes-input-missing URL` for each input not on the claim.
pub const INPUTS_CONTAINER: &str = "tes-inputs";

/// The container that copies outputs to their URLs after the last executor, and logs them: a
/// line `tes-output INDEX SIZE` for each output copied, `tes-output-match INDEX SIZE SUFFIX` for
/// each match of a pattern, `tes-output-missing INDEX` for each the executors did not write.
pub const OUTPUTS_CONTAINER: &str = "tes-outputs";

/// One output as the outputs container logged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopiedOutput {
    /// Its place in the task's `outputs`.
    pub index: usize,
    /// For a match of a pattern: its path after the pattern's `path_prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// Its size in bytes; `None` if the executors did not write it.
    pub size: Option<u64>,
}

/// What the service's own steps of a task's pod said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodReport {
    /// The URL of each input of the claim that was not there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_inputs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copied_outputs: Vec<CopiedOutput>,
}

/// The URLs of the inputs the inputs container said are missing.
pub fn missing_inputs(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| line.strip_prefix("tes-input-missing "))
        .map(str::to_owned)
        .collect()
}

/// What the outputs container logged, in its order.
pub fn copied_outputs(log: &str) -> Vec<CopiedOutput> {
    let mut copied = Vec::new();
    for line in log.lines() {
        let mut words = line.splitn(4, ' ');
        let (kind, index) = (words.next(), words.next().and_then(|i| i.parse().ok()));
        let Some(index) = index else { continue };
        let size = words.next().and_then(|size| size.trim().parse().ok());
        let output = match (kind, size) {
            (Some("tes-output"), Some(size)) => CopiedOutput {
                index,
                suffix: None,
                size: Some(size),
            },
            (Some("tes-output-match"), Some(size)) => CopiedOutput {
                index,
                suffix: words.next().map(str::to_owned),
                size: Some(size),
            },
            (Some("tes-output-missing"), _) => CopiedOutput {
                index,
                suffix: None,
                size: None,
            },
            _ => continue,
        };
        copied.push(output);
    }
    copied
}

/// Where an executor whose error is ignored reports its exit code: its container exits 0 so
/// the pod goes on, after writing this line to its termination message.
pub const IGNORED_EXIT_PREFIX: &str = "tes-exit-code=";

/// The exit code a container's termination `message` reports for its executor, if any.
pub fn reported_exit_code(message: Option<&str>) -> Option<i32> {
    message?
        .lines()
        .find_map(|line| line.trim().strip_prefix(IGNORED_EXIT_PREFIX))?
        .trim()
        .parse()
        .ok()
}

/// The exit code a shell gives a program that could not be started, for a container that
/// Kubernetes ended with `reason` (`StartError` from containerd, `ContainerCannotRun` from
/// Docker) and exit code 128: 127 when the program was not found, 126 when it could not run.
pub fn start_error_exit_code(reason: Option<&str>, message: Option<&str>) -> Option<i32> {
    if !matches!(reason, Some("StartError" | "ContainerCannotRun")) {
        return None;
    }
    let message = message.unwrap_or_default().to_lowercase();
    let missing = ["not found", "no such file"]
        .iter()
        .any(|said| message.contains(said));
    Some(if missing { 127 } else { 126 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outputs_containers_log_gives_each_outputs_size_or_its_absence() {
        let log = "tes-output 0 12\ntes-output-missing 1\ncp: something else said\n\
                   tes-output-match 2 7 /sub dir/a.txt\n";

        let copied = copied_outputs(log);

        let seen: Vec<(usize, Option<&str>, Option<u64>)> = copied
            .iter()
            .map(|output| (output.index, output.suffix.as_deref(), output.size))
            .collect();
        assert_eq!(
            seen,
            [
                (0, None, Some(12)),
                (1, None, None),
                (2, Some("/sub dir/a.txt"), Some(7))
            ]
        );
    }

    #[test]
    fn the_inputs_containers_log_names_each_missing_input() {
        let log = "tes-input-missing file:///ntuples/a b.txt\nsomething else\n";

        assert_eq!(missing_inputs(log), ["file:///ntuples/a b.txt"]);
    }

    #[test]
    fn a_program_that_could_not_start_gets_the_shells_exit_code() {
        let missing = "failed to create containerd task: failed to create shim task: OCI runtime create failed: \
            runc create failed: unable to start container process: exec: \"nope\": executable file not found in $PATH: unknown";
        let denied = "runc create failed: unable to start container process: exec: \"/data/x\": permission denied";

        assert_eq!(
            start_error_exit_code(Some("StartError"), Some(missing)),
            Some(127)
        );
        assert_eq!(
            start_error_exit_code(Some("StartError"), Some(denied)),
            Some(126)
        );
        assert_eq!(start_error_exit_code(Some("Error"), Some(missing)), None);
    }

    #[test]
    fn an_ignored_executors_exit_code_is_read_from_its_termination_message() {
        assert_eq!(reported_exit_code(Some("tes-exit-code=3\n")), Some(3));
        assert_eq!(
            reported_exit_code(Some("other\ntes-exit-code=127")),
            Some(127)
        );
        assert_eq!(reported_exit_code(Some("tes-exit-code=x")), None);
        assert_eq!(reported_exit_code(None), None);
    }

    #[test]
    fn a_truncated_output_says_how_much_was_dropped() {
        let run = ExecutorRun {
            executor: 0,
            exit_code: 0,
            start_time: None,
            end_time: None,
            output: b"tail\n".to_vec(),
            truncated_bytes: 10,
        };

        assert_eq!(
            run.output_text(),
            "[submission-helper: output truncated, the first 10 bytes were dropped]\ntail\n"
        );
    }
}
