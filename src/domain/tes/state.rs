//! A task's TES state, read from the state of the submission that runs it. A pure function of
//! stored facts, so every replica answers the same, and a final state never changes.

use super::document::TesState;
use crate::domain::state::State;

/// How a Job fails when its pod failed: an executor exited non-zero (its `backoffLimit` of 0
/// is used up). Every other failure (a refused create, a deadline, a lost pod) is the system's.
pub const EXECUTOR_FAILURE: &str = "BackoffLimitExceeded";

/// The TES state of a submission in `state`, failed with `message` if it failed.
///
/// PAUSED, PREEMPTED and UNKNOWN are never shown: nothing pauses a Job, a preempted pod is
/// replaced (the task is QUEUED or RUNNING again), and every state of ours has a TES name.
pub fn tes_state(state: State, message: Option<&str>) -> TesState {
    match state {
        State::Waiting | State::Queued | State::Pending => TesState::Queued,
        State::Running => TesState::Running,
        State::Succeeded => TesState::Complete,
        State::Failed if message.is_some_and(|m| m.starts_with(EXECUTOR_FAILURE)) => {
            TesState::ExecutorError
        }
        State::Failed => TesState::SystemError,
        State::Cancelled => TesState::Canceled,
    }
}

/// Which submissions are in a TES state, as storage can ask for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ours {
    /// In any of these states.
    States(&'static [State]),
    /// Failed, by an executor (or not).
    Failed { by_executor: bool },
    /// None: the state is never shown.
    Nothing,
}

/// The submissions [`tes_state`] shows in `state`.
pub fn ours(state: TesState) -> Ours {
    match state {
        TesState::Queued => Ours::States(&[State::Waiting, State::Queued, State::Pending]),
        TesState::Running => Ours::States(&[State::Running]),
        TesState::Complete => Ours::States(&[State::Succeeded]),
        TesState::Canceled => Ours::States(&[State::Cancelled]),
        TesState::ExecutorError => Ours::Failed { by_executor: true },
        TesState::SystemError => Ours::Failed { by_executor: false },
        TesState::Unknown
        | TesState::Initializing
        | TesState::Paused
        | TesState::Preempted
        | TesState::Canceling => Ours::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_or_pending_submission_is_queued() {
        for state in [State::Waiting, State::Queued, State::Pending] {
            assert_eq!(tes_state(state, None), TesState::Queued);
        }
    }

    #[test]
    fn running_succeeded_and_cancelled_have_their_tes_names() {
        assert_eq!(tes_state(State::Running, None), TesState::Running);
        assert_eq!(tes_state(State::Succeeded, None), TesState::Complete);
        assert_eq!(
            tes_state(State::Cancelled, Some("cancelled by request")),
            TesState::Canceled
        );
    }

    #[test]
    fn a_failed_executor_is_an_executor_error() {
        let state = tes_state(
            State::Failed,
            Some("BackoffLimitExceeded: Job has reached the specified backoff limit"),
        );

        assert_eq!(state, TesState::ExecutorError);
    }

    #[test]
    fn every_other_failure_is_a_system_error() {
        for message in [
            None,
            Some("DeadlineExceeded: Job was active longer than specified deadline"),
            Some("the API server refused the Job"),
        ] {
            assert_eq!(
                tes_state(State::Failed, message),
                TesState::SystemError,
                "{message:?}"
            );
        }
    }

    #[test]
    fn each_state_shown_is_found_by_its_filter_and_no_other() {
        let messages = [None, Some("BackoffLimitExceeded"), Some("DeadlineExceeded")];
        for state in State::ALL {
            for message in messages {
                let shown = tes_state(state, message);
                for asked in TesState::ALL {
                    let found = match ours(asked) {
                        Ours::States(states) => states.contains(&state),
                        Ours::Failed { by_executor } => {
                            state == State::Failed
                                && message.is_some_and(|m| m.starts_with(EXECUTOR_FAILURE))
                                    == by_executor
                        }
                        Ours::Nothing => false,
                    };
                    assert_eq!(
                        found,
                        asked == shown,
                        "{state:?} {message:?} asked {asked:?}"
                    );
                }
            }
        }
    }
}
