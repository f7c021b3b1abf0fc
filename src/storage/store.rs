//! The [`Store`]: the pool every statement runs on, and what its clones share besides (this
//! process's turn to write on SQLite, the queues that share statements, the wake-ups of the
//! dispatcher, the event feed and the write-ahead log's upkeep); and how a statement built from
//! fragments is sent to either database.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyPool, AssertSqlSafe, Execute as _, QueryBuilder};
use tokio::sync::Notify;

use super::batcher::Batcher;
use super::error::Result;
use super::progress_write::{ProgressWrite, Read, Written};
use super::token_row::Token;
use crate::domain::{State, Submission, SubmissionId};

/// Arguments of the largest built statement kept prepared (see [`Store::built`]).
const KEPT_PREPARED_ARGUMENTS: usize = 64;

/// Rows stored since the last checkpoint that make the next one start at once (see `wal`).
const LARGE_BATCH: usize = 1000;

/// Which database the pool talks to. The SQL is the same; only the spelling of a built
/// statement's placeholders, the upkeep of SQLite's write-ahead log and the shape of a list
/// of one state (for Postgres's planner) differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    Sqlite,
    Postgres,
}

/// The database, shared by every part of the service (cloning shares the pool).
#[derive(Clone)]
pub struct Store {
    pub(super) pool: AnyPool,
    pub(super) backend: Backend,
    pub(super) wal: Arc<WalUpkeep>,
    /// SQLite lets one connection write at a time; the others wait in its busy handler, which
    /// sleeps and retries, so under load most of a write's time went to sleeping (1,700
    /// one-row inserts a second from 16 writers). This process's writers queue here instead,
    /// in order, and only another process (the token command) meets SQLite's lock.
    pub(super) writer: Arc<tokio::sync::Mutex<()>>,
    /// Where one-submission inserts wait for the next group commit (none in the writers'
    /// own store; see `commits`).
    pub(super) commits: Option<Batcher<Vec<Submission>, Vec<Submission>>>,
    /// Where the controller's progress writes wait for the next group commit (none in the
    /// writers' own store; see `progress_commits`).
    pub(super) progress_commits: Option<Batcher<ProgressWrite, Written>>,
    /// Where token lookups wait for the next shared statement, by the hash of the secret
    /// (none in the workers' own store; see `lookups`).
    pub(super) lookups: Option<Batcher<String, Option<Token>>>,
    /// Where reads of one submission wait for the next shared statement (none in the
    /// workers' own store; see `reads`).
    pub(super) reads: Option<Batcher<SubmissionId, Option<Read>>>,
    /// Wakes this process's dispatcher when something may be dispatched: submissions were
    /// queued, or an active one ended and freed a slot under a limit.
    pub(super) dispatch: Arc<Notify>,
    /// The newest event revision committed by this process or seen committed by another,
    /// raised after each commit that recorded events; the event feed waits on it.
    pub(super) events: Arc<tokio::sync::watch::Sender<i64>>,
    /// Changes after each commit that queued notifications, waking the webhook sender.
    pub(super) deliveries: Arc<tokio::sync::watch::Sender<u64>>,
    /// Counts the writes of this process that took a queued submission out of the queue for
    /// another reason than its Job (a cancel, a failure): see [`Store::withdrawals`].
    pub(super) withdrawals: Arc<AtomicU64>,
}

/// How busy the connection pool is: for `/metrics`, read without touching the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open now, in use or idle.
    pub open: u32,
    /// Open connections waiting for a statement.
    pub idle: usize,
    /// The most the pool opens.
    pub max: u32,
}

impl Store {
    /// The connection pool's use right now.
    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            open: self.pool.size(),
            idle: self.pool.num_idle(),
            max: self.pool.options().get_max_connections(),
        }
    }

    /// Held while writing: this process's turn to write on SQLite (nothing on Postgres, whose
    /// writers do not block one another). Taken before a connection, so no connection idles
    /// waiting for its turn.
    pub(super) async fn turn_to_write(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        }
    }

    /// Begins a transaction that writes. On SQLite it takes the write lock as it begins
    /// (`BEGIN IMMEDIATE`): one begun deferred that reads before it writes cannot wait for
    /// another process's lock (SQLite calls no busy handler then, as what it read may be
    /// stale) and failed at once with "database is locked"; taking the lock first waits for it
    /// as every other write does.
    pub(super) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// How many times this process has taken a queued submission out of the queue for another
    /// reason than its Job. A claim notes it ([`Queued::withdrawals`]); while it has not
    /// changed, no claimed submission can have been cancelled here since, and the dispatcher
    /// creates its Job without reading its row again. (A cancel by another replica is caught
    /// when the creation is recorded: the Job is deleted.)
    ///
    /// [`Queued::withdrawals`]: super::Queued::withdrawals
    pub fn withdrawals(&self) -> u64 {
        self.withdrawals.load(Ordering::SeqCst)
    }

    /// What the dispatcher waits on between rounds (see [`Store::wake_dispatcher`]).
    pub fn dispatcher_wakes(&self) -> Arc<Notify> {
        self.dispatch.clone()
    }

    /// Tells this process's dispatcher to look again (other replicas look within seconds).
    pub(super) fn wake_dispatcher(&self) {
        self.dispatch.notify_one();
    }

    /// The newest event revision known committed: raised each time this process commits
    /// events, or sees another replica's. The event feed waits on it between reads.
    pub fn event_wakes(&self) -> tokio::sync::watch::Receiver<i64> {
        self.events.subscribe()
    }

    /// Changes when notifications may have been queued: by this process's commits, or (for
    /// all this process knows) by another replica's. The webhook sender waits on it.
    pub fn delivery_wakes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.deliveries.subscribe()
    }

    /// Wakes the dispatcher if any of these newly stored submissions is queued.
    pub(super) fn dispatchable(&self, stored: &[Submission]) {
        if stored
            .iter()
            .any(|submission| submission.progress.state == State::Queued)
        {
            self.wake_dispatcher();
        }
    }

    /// Checks the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The statement `builder` assembled, ready to run on this store's database.
    ///
    /// `QueryBuilder<Any>` writes every placeholder as `?`, which SQLite reads but PostgreSQL
    /// refuses (sqlx issue #3000: the `Any` driver does not know the backend until the statement
    /// runs). For PostgreSQL the placeholders are renamed `$1, $2, ...` in the order they were
    /// pushed, which is the order `push_bind` recorded the values in.
    pub(super) fn built<'q>(
        &self,
        builder: &'q mut QueryBuilder<Any>,
    ) -> Result<Query<'q, Any, AnyArguments>> {
        // A large statement is not kept prepared: its text varies with its rows (a group
        // commit of up to 64 submissions, a batch of 1,000 with 7,000 event values), and
        // SQLite keeps every prepared statement in this process, up to 100 per connection, the
        // largest hundreds of KiB each. Small ones (the lists' few shapes) stay prepared.
        let keep = builder.sql().as_str().matches('?').count() <= KEPT_PREPARED_ARGUMENTS;
        let mut query = builder.build().persistent(keep);
        if self.backend == Backend::Sqlite {
            return Ok(query);
        }
        let arguments = query
            .take_arguments()
            .map_err(sqlx::Error::Encode)?
            .unwrap_or_default();
        let sql = postgres_placeholders(query.sql().as_str());
        // The text is the builder's: our own SQL fragments and its placeholders, nothing a user
        // sent, so it is as safe as the builder's own output.
        Ok(sqlx::query_with(AssertSqlSafe(sql), arguments).persistent(keep))
    }
}

/// Counts rows stored since the last checkpoint of SQLite's write-ahead log and wakes
/// [`Store::keep_wal_bounded`] after a large batch. Shared by every clone of a store.
#[derive(Debug, Default)]
pub(super) struct WalUpkeep {
    written: AtomicUsize,
    large_batch: Notify,
}

impl WalUpkeep {
    /// Records that `rows` rows were committed.
    pub(super) fn wrote(&self, rows: usize) {
        let total = self.written.fetch_add(rows, Ordering::Relaxed) + rows;
        if total >= LARGE_BATCH {
            // Keeps a permit if the upkeep task is busy, so the batch is not forgotten.
            self.large_batch.notify_one();
        }
    }

    /// Resolves once a large batch was stored (at once if one was while nobody waited).
    pub(super) async fn large_batch(&self) {
        self.large_batch.notified().await;
    }

    /// Counts from zero again: a checkpoint is starting.
    pub(super) fn checkpointing(&self) {
        self.written.store(0, Ordering::Relaxed);
    }
}

/// `sql` with each `?` placeholder renamed `$1`, `$2`, ... in order; a `?` inside a quoted
/// literal is left alone (our fragments hold none, but a literal is never a placeholder).
fn postgres_placeholders(sql: &str) -> String {
    let mut numbered = String::with_capacity(sql.len() + sql.len() / 4);
    let mut quoted = false;
    let mut next = 1_usize;
    for character in sql.chars() {
        match character {
            '\'' => {
                quoted = !quoted;
                numbered.push(character);
            }
            '?' if !quoted => {
                numbered.push('$');
                numbered.push_str(&next.to_string());
                next += 1;
            }
            _ => numbered.push(character),
        }
    }
    numbered
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn postgres_placeholders_are_numbered_in_the_order_values_were_bound() {
        assert_eq!(
            postgres_placeholders("a = ? AND b IN (?, ?) AND c = 'x?' AND d = ?"),
            "a = $1 AND b IN ($2, $3) AND c = 'x?' AND d = $4"
        );
    }

    /// Whether the upkeep task would wake now (a permit is waiting).
    async fn woken(upkeep: &WalUpkeep) -> bool {
        tokio::time::timeout(Duration::ZERO, upkeep.large_batch.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn small_writes_add_up_until_they_make_a_large_batch() {
        let upkeep = WalUpkeep::default();

        upkeep.wrote(LARGE_BATCH - 1);
        let early = woken(&upkeep).await;
        upkeep.wrote(1);
        let late = woken(&upkeep).await;

        assert!(!early, "{} rows are not a large batch", LARGE_BATCH - 1);
        assert!(late, "{LARGE_BATCH} rows are");
    }
}
