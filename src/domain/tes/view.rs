//! A stored task as an answer shows it: the document as sent, with the service's own fields
//! (id, state, creation time, logs), cut to the view asked for.

use super::document::{ExecutorLog, OutputFileLog, Task, TaskLog, TesState, View};
use super::runs::{CopiedOutput, ExecutorRun, PodReport};
use super::state::tes_state;
use crate::domain::submission::Submission;

/// What the service recorded of a task beyond its document and its submission.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    /// What the service says of the task itself (a backend parameter it dropped).
    pub notes: Vec<String>,
    /// What each executor did in the task's newest pod that ended.
    pub runs: Vec<ExecutorRun>,
    /// What the service's own steps of the task's last pod said.
    pub report: PodReport,
}

/// `submission`'s task, whose document is `document`, in `view`.
pub fn render(submission: &Submission, document: &Task, recorded: &Recorded, view: View) -> Task {
    let progress = &submission.progress;
    let state = tes_state(progress.state, progress.message.as_deref());
    let minimal = Task {
        id: Some(submission.id.to_string()),
        state: Some(state),
        ..Task::default()
    };
    if view == View::Minimal {
        return minimal;
    }
    let (outputs, missing) = output_logs(document, &recorded.report.copied_outputs);
    let system_logs: Vec<String> = recorded
        .notes
        .iter()
        .cloned()
        .chain(
            recorded
                .report
                .missing_inputs
                .iter()
                .map(|url| format!("input {url} is not on the volume: no executor ran")),
        )
        .chain(missing)
        .chain(progress.message.iter().cloned())
        .collect();
    let log = TaskLog {
        logs: executor_logs(document, state, &recorded.runs, view),
        metadata: None,
        start_time: progress.started_at.map(|at| at.to_string()),
        end_time: progress.finished_at.map(|at| at.to_string()),
        outputs,
        system_logs: (view == View::Full).then_some(system_logs),
    };
    let mut task = Task {
        logs: Some(vec![log]),
        creation_time: Some(submission.created_at.to_string()),
        ..document.clone()
    };
    task.id = minimal.id;
    task.state = minimal.state;
    if view == View::Basic {
        for input in task.inputs.iter_mut().flatten() {
            input.content = None;
        }
    }
    task
}

/// Each output copied, with its size (a pattern's matches each with its own URL and path), and
/// a line for each the executors did not write.
fn output_logs(document: &Task, copied: &[CopiedOutput]) -> (Vec<OutputFileLog>, Vec<String>) {
    let sent = document.outputs.as_deref().unwrap_or_default();
    let mut outputs = Vec::new();
    let mut missing = Vec::new();
    for copy in copied {
        let Some(output) = sent.get(copy.index) else {
            continue;
        };
        let url = output.url.clone().unwrap_or_default();
        let path = output.path.clone().unwrap_or_default();
        let (url, path) = match (&copy.suffix, &output.path_prefix) {
            (Some(suffix), Some(prefix)) => (
                format!("{}{suffix}", url.trim_end_matches('/')),
                format!("{}{suffix}", prefix.trim_end_matches('/')),
            ),
            _ => (url, path),
        };
        match copy.size {
            Some(size) => outputs.push(OutputFileLog {
                url,
                path,
                size_bytes: size.to_string(),
            }),
            None => missing.push(format!(
                "output {url} was not written: nothing was at {path} when the executors ended"
            )),
        }
    }
    (outputs, missing)
}

/// One entry per executor that ran, in order. Without a record (the pod was gone before it
/// could be read) a task that completed shows each executor's exit code 0, which is all a
/// Job that succeeded says; an entry is never shown without its exit code.
fn executor_logs(
    document: &Task,
    state: TesState,
    runs: &[ExecutorRun],
    view: View,
) -> Vec<ExecutorLog> {
    if runs.is_empty() {
        if state != TesState::Complete {
            return Vec::new();
        }
        let executors = document.executors.as_deref().unwrap_or_default();
        return executors
            .iter()
            .map(|_| ExecutorLog {
                exit_code: 0,
                ..ExecutorLog::default()
            })
            .collect();
    }
    let mut runs: Vec<&ExecutorRun> = runs.iter().collect();
    runs.sort_by_key(|run| run.executor);
    runs.into_iter()
        .map(|run| ExecutorLog {
            start_time: run.start_time.map(|at| at.to_string()),
            end_time: run.end_time.map(|at| at.to_string()),
            stdout: (view == View::Full).then(|| run.output_text()),
            stderr: (view == View::Full).then(String::new),
            exit_code: run.exit_code,
        })
        .collect()
}
