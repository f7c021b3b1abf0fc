//! A submission's next progress, decided on the row as it was read, on its way to the next
//! group commit of progress (`progress_commits`), and what came of it.

use crate::domain::{Progress, Submission};

/// A submission as it was read, and the version a write of it must still find.
#[derive(Debug, Clone)]
pub struct Read {
    pub submission: Submission,
    pub(super) version: i64,
}

/// `progress` for `submission`, to be written only if its row is still at `version`.
pub(super) struct ProgressWrite {
    pub(super) submission: Submission,
    pub(super) version: i64,
    pub(super) progress: Progress,
}

/// The submission as it is after the write: with the new progress if `written`; as it was
/// read if another writer changed the row first (the caller reads it again and decides again).
pub(super) struct Written {
    pub(super) submission: Submission,
    pub(super) written: bool,
}

impl ProgressWrite {
    /// What became of this write, given whether its row was still at its version.
    pub(super) fn outcome(self, written: bool) -> Written {
        let mut submission = self.submission;
        if written {
            submission.progress = self.progress;
        }
        Written {
            submission,
            written,
        }
    }
}
