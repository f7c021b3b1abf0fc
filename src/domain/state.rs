//! The life of a submission, as an explicit state machine.
//!
//! A submission is `queued` once it is stored (or `waiting`, while submissions it depends on have
//! not succeeded), `pending` once its Job exists, `running` once a pod of it runs, and ends
//! `succeeded`, `failed` or `cancelled`. Final states never change again, and
//! a submission never moves backwards (a retried pod that is pending again leaves it `running`),
//! so events that arrive late or twice cannot undo what users already saw.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a submission is in its life. Stored as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Stored; waits for submissions it depends on to succeed before it is queued.
    Waiting,
    /// Stored; its Job has not been created yet.
    Queued,
    /// Its Job exists; no pod of it has started running.
    Pending,
    /// A pod of its Job is running (or has run and is being retried).
    Running,
    /// The Job completed.
    Succeeded,
    /// The Job failed, or the API server refused to create it.
    Failed,
    /// Cancelled by a user; its Job and pods are deleted.
    Cancelled,
}

impl State {
    pub const ALL: [State; 7] = [
        State::Waiting,
        State::Queued,
        State::Pending,
        State::Running,
        State::Succeeded,
        State::Failed,
        State::Cancelled,
    ];

    /// The states a user can still cancel.
    pub const ACTIVE: [State; 4] = [
        State::Waiting,
        State::Queued,
        State::Pending,
        State::Running,
    ];
    /// The states a submission ends in.
    pub const FINAL: [State; 3] = [State::Succeeded, State::Failed, State::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Queued => "queued",
            State::Pending => "pending",
            State::Running => "running",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        match self {
            State::Waiting | State::Queued | State::Pending | State::Running => false,
            State::Succeeded | State::Failed | State::Cancelled => true,
        }
    }

    /// Order along the normal path, used to refuse moving backwards.
    fn rank(self) -> u8 {
        match self {
            State::Waiting => 0,
            State::Queued => 1,
            State::Pending => 2,
            State::Running => 3,
            State::Succeeded | State::Failed | State::Cancelled => 4,
        }
    }

    /// Whether a submission in `self` may move to `next`.
    ///
    /// Staying put is not a transition. Any active state may end in any final state
    /// (a fast pod can finish before we ever see it running; a Job refused by the API server
    /// fails straight from `queued`).
    pub fn can_become(self, next: State) -> bool {
        !self.is_final() && next.rank() > self.rank()
    }

    /// The one step back: a running submission whose Job Kueue evicts (a higher priority
    /// workload preempts it, its queue's quota shrinks) is suspended and waits in its queue
    /// again, `pending`, until Kueue admits it again. It neither failed nor was cancelled.
    pub fn can_be_evicted(self) -> bool {
        self == State::Running
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is not the name of a state.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown state {0:?}; expected one of waiting, queued, pending, running, succeeded, failed, cancelled"
)]
pub struct UnknownState(pub String);

impl std::str::FromStr for State {
    type Err = UnknownState;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| UnknownState(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::State::{self, *};

    #[test]
    fn every_state_is_either_active_or_final() {
        for state in State::ALL {
            assert_eq!(State::FINAL.contains(&state), state.is_final(), "{state}");
            assert_eq!(State::ACTIVE.contains(&state), !state.is_final(), "{state}");
        }
    }

    #[test]
    fn every_state_round_trips_through_its_text() {
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>().ok(), Some(state));
        }
        assert!("Running".parse::<State>().is_err());
    }

    #[test]
    fn only_a_running_submission_can_be_evicted_back_to_pending() {
        let evictable: Vec<State> = State::ALL
            .into_iter()
            .filter(|state| state.can_be_evicted())
            .collect();

        assert_eq!(evictable, [Running]);
    }

    #[test]
    fn the_normal_path_moves_forward_only() {
        assert!(Waiting.can_become(Queued));
        assert!(!Queued.can_become(Waiting));
        assert!(Queued.can_become(Pending));
        assert!(Pending.can_become(Running));
        assert!(Running.can_become(Succeeded));
        assert!(!Running.can_become(Pending));
        assert!(!Running.can_become(Running));
    }

    #[test]
    fn any_active_state_can_end_in_any_final_state() {
        for from in State::ACTIVE {
            for to in [Succeeded, Failed, Cancelled] {
                assert!(from.can_become(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn final_states_never_change() {
        for from in [Succeeded, Failed, Cancelled] {
            for to in State::ALL {
                assert!(!from.can_become(to), "{from} -> {to}");
            }
        }
    }
}
