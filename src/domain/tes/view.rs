//! A stored task as an answer shows it: the document as sent, with the service's own fields
//! (id, state, creation time, logs), cut to the view asked for.

use super::document::{ExecutorLog, Task, TaskLog, View};
use super::state::tes_state;
use crate::domain::submission::Submission;

/// `submission`'s task, whose document is `document`, in `view`.
pub fn render(submission: &Submission, document: &Task, view: View) -> Task {
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
    let executors = document.executors.as_deref().unwrap_or_default();
    // Every executor of a Job that succeeded exited 0 or ignored its error; other exit codes
    // are not known yet, and an entry without its exit code is never shown.
    let logs = match state {
        super::document::TesState::Complete => executors
            .iter()
            .map(|_| ExecutorLog {
                exit_code: 0,
                ..ExecutorLog::default()
            })
            .collect(),
        _ => Vec::new(),
    };
    let system_logs = progress.message.iter().cloned().collect::<Vec<_>>();
    let log = TaskLog {
        logs,
        metadata: None,
        start_time: progress.started_at.map(|at| at.to_string()),
        end_time: progress.finished_at.map(|at| at.to_string()),
        outputs: Vec::new(),
        system_logs: (view == View::Full && !system_logs.is_empty()).then_some(system_logs),
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
