//! How a client command ended, as its exit code says it.

use std::process::ExitCode;

/// How a command ended, as its exit code says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; for a wait, every submission succeeded.
    Success,
    /// Some submissions failed or were cancelled.
    SomeFailed,
    /// The wait's timeout passed first.
    TimedOut,
}

/// The exit code of an error: usage, refused or unreachable alike.
pub const ERROR_EXIT: u8 = 2;

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        ExitCode::from(match outcome {
            Outcome::Success => 0,
            Outcome::SomeFailed => 1,
            Outcome::TimedOut => 3,
        })
    }
}
