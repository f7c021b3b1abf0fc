//! The `submissions`, `submission_labels` and `submission_dependencies` tables: storing new
//! submissions (all or none), reading them back one at a time or as filtered, newest-first
//! pages, moving their progress forward with optimistic locking, cancelling every active one a
//! filter matches, and what the end of a dependency does to the submissions waiting for it.
//!
//! - `row`: the columns a submission is read from, and how;
//! - `insert`: new submissions, with their labels and dependencies;
//! - `filter`: the WHERE clause of a list, a count or a bulk cancel;
//! - `read`: one submission, pages of a filter, counts by state;
//! - `groups`: counts by state of each value of a label (a campaign's);
//! - `update`: a submission's next progress;
//! - `cancel`: bulk cancels;
//! - `rerun`: running final submissions again, with what ended because of them;
//! - `dependencies`: which submissions wait for which, and what their ends do to the waiting;
//! - `failover`: a lost cluster's live submissions run again elsewhere, and the Jobs they left.

mod cancel;
mod dependencies;
mod failover;
mod filter;
mod groups;
mod insert;
mod read;
mod rerun;
pub(in crate::storage) mod row;
mod update;

pub use cancel::Cancelled;
pub use filter::Filter;
pub use groups::Group;
pub use read::Page;
pub use rerun::{Reran, RerunStored};
pub use update::{Next, Read, Updated};
