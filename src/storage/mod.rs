//! Storage: every SQL statement the service runs, against SQLite or PostgreSQL.
//!
//! One set of statements serves both databases through sqlx's `Any` driver: the SQL is the common
//! subset (`RETURNING`, `ON CONFLICT`, text and bigint columns), so the same test suite proves
//! both. Rows are written with optimistic locking (a `version` column) so the watchers, the
//! dispatcher and request handlers can update one submission concurrently without losing a write.
//!
//! The [`Store`] (the pool, what its clones share, and how a built statement is sent) is in
//! `store`, its error type in `error`, and opening the database (pool settings, migrations,
//! the queues below) in `connect`. Each table has its own file, or folder:
//! - `submissions/`: submissions, their labels and their dependencies (insert, list, update,
//!   cancel, and what the end of a dependency does to the submissions waiting for it);
//! - `tes_tasks`: GA4GH TES tasks, each with the submission that runs it, and their tags;
//! - `tes_executor_logs`: what each executor of a task's pod did, recorded when the pod ended;
//! - `events`: every change of a submission's state, under a revision streams resume from;
//!   `throughput` counts them by minute;
//! - `dispatch`: the queued submissions the dispatcher takes, within their limits; `created`
//!   records the Jobs it created, many in one transaction;
//! - `queue_place`: where a queued or waiting submission stands, and what holds it;
//! - `idempotency`: `Idempotency-Key`s and the submissions each one stored;
//! - `logs`: logs of finished pods, archived so they outlive the pods;
//! - `attempts`: each pod as it ended (exit code, reason, memory, whether it used a retry);
//! - `tokens`: API tokens, stored as hashes, with their terms (rights, expiry, description),
//!   their last use and their webhook signing secrets; `token_row` has the [`Token`] a row is
//!   read into;
//! - `webhooks`: the outbox of notifications to submissions' `notify_url`;
//! - `wal`: keeping SQLite's write-ahead log from growing without bound;
//! - `service_lock`: one running service per SQLite file (a lock beside the database).
//!
//! Requests arriving together share work through one queue (`batcher`): single submissions
//! share a transaction (`commits`), so do the controller's progress writes
//! (`progress_commits`, each a `progress_write`), and token lookups (`lookups`) and reads of
//! one submission (`reads`) a statement.
//!
//! Fixed statements are string literals with `$n` placeholders. Statements whose shape depends
//! on a request (filters, multi-row inserts) are assembled with sqlx's
//! [`QueryBuilder`](sqlx::QueryBuilder) from our own SQL fragments and `push_bind`, so every
//! value a user sent is bound, never spliced.

mod attempts;
mod batcher;
mod commits;
mod connect;
mod created;
mod dispatch;
mod error;
mod events;
mod final_counts;
mod gates;
mod idempotency;
mod limits;
mod logs;
mod lookups;
mod placing;
mod progress_commits;
mod progress_write;
mod queue_place;
mod reads;
mod service_lock;
mod store;
mod submissions;
mod tes_executor_logs;
mod tes_tasks;
mod throughput;
mod token_row;
mod tokens;
mod wal;
mod webhooks;

pub use dispatch::{CLAIM_LEASE, Claiming, Queued};
pub use error::StorageError;
pub use events::{Event, EventFilter, EventPage, Revisions};
pub use final_counts::FinalCounts;
pub use idempotency::{IdempotencyKey, Stored};
pub use logs::ArchivedLog;
pub use placing::Placing;
pub use queue_place::Unfinished;
pub use service_lock::{ServiceLock, ServiceLockError};
pub use store::{PoolStats, Store};
pub use submissions::{Cancelled, Filter, Group, Next, Page, Read, Reran, RerunStored, Updated};
pub use tes_tasks::StoredTask;
pub use throughput::PerMinute;
pub use token_row::Token;
pub use tokens::NewToken;
pub use wal::Checkpoint;
pub use webhooks::{Attempt, Delivery};
