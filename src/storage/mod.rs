//! Storage: every SQL statement the service runs, against SQLite or PostgreSQL.
//!
//! One set of statements serves both databases through sqlx's `Any` driver: the SQL is the common
//! subset (`RETURNING`, `ON CONFLICT`, text and bigint columns), so the same test suite proves
//! both. Rows are written with optimistic locking (a `version` column) so the watchers, the
//! dispatcher and request handlers can update one submission concurrently without losing a write.
//!
//! This module owns the [`Store`] (the pool, migrations, the error type and how a statement is
//! sent); each table has its own file:
//! - `submissions`: submissions and their labels (insert, list, update, cancel);
//! - `dependencies`: which submissions wait for which, and what their ends do to the waiting;
//! - `events`: every change of a submission's state, under a revision streams resume from;
//! - `dispatch`: the queued submissions the dispatcher takes, within their limits;
//! - `idempotency`: `Idempotency-Key`s and the submissions each one stored;
//! - `logs`: logs of finished pods, archived so they outlive the pods;
//! - `tokens`: API tokens, stored as hashes, and their webhook signing secrets;
//! - `token_grants`: creating tokens with their terms (expiry, description), and their last use;
//! - `webhooks`: the outbox of notifications to submissions' `notify_url`;
//! - `wal`: keeping SQLite's write-ahead log from growing without bound.
//!
//! Fixed statements are string literals with `$n` placeholders. Statements whose shape depends on
//! a request (filters, multi-row inserts) are assembled with sqlx's [`QueryBuilder`] from our own
//! SQL fragments and `push_bind`, so every value a user sent is bound, never spliced.

mod commits;
mod dependencies;
mod dispatch;
mod events;
mod idempotency;
mod logs;
mod lookups;
mod submissions;
mod token_grants;
mod tokens;
mod wal;
mod webhooks;

use std::sync::Arc;

use sqlx::any::{AnyArguments, AnyPoolOptions};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, AssertSqlSafe, Execute as _, QueryBuilder};

use crate::domain::SubmissionId;

pub use dispatch::{CLAIM_LEASE, Queued};
pub use events::{Event, EventFilter, EventPage, Revisions};
pub use idempotency::{IdempotencyKey, Stored};
pub use logs::ArchivedLog;
pub use submissions::{Cancelled, Filter, Page, Updated};
pub use token_grants::NewToken;
pub use tokens::Token;
pub use wal::Checkpoint;
pub use webhooks::{Attempt, Delivery};

/// How long a statement waits for a connection before it fails: a database that is down makes
/// requests answer 500/503 and the watchers hand their changes to the reconcile queue within
/// seconds, instead of everything hanging for sqlx's default half minute.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What can go wrong in storage. Never shown to clients as is: the HTTP layer logs it and
/// answers with a generic 500.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored row {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("submission {0} kept changing under concurrent updates")]
    Contended(SubmissionId),
    #[error("the request was abandoned before its submissions were stored")]
    Abandoned,
}

impl StorageError {
    /// Whether the database could not be reached or had no free connection in time (it is
    /// down, or overloaded): worth retrying shortly, unlike a statement that failed.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StorageError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
            )
        )
    }
}

type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Which database the pool talks to. The SQL is the same; only the spelling of a built
/// statement's placeholders, the upkeep of SQLite's write-ahead log and the shape of a list
/// of one state (for Postgres's planner) differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The database, shared by every part of the service (cloning shares the pool).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    wal: Arc<wal::Upkeep>,
    /// SQLite lets one connection write at a time; the others wait in its busy handler, which
    /// sleeps and retries, so under load most of a write's time went to sleeping (1,700
    /// one-row inserts a second from 16 writers). This process's writers queue here instead,
    /// in order, and only another process (the token command) meets SQLite's lock.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Where one-submission inserts wait for the next group commit (none in the writers'
    /// own store).
    commits: Option<commits::Committer>,
    /// Where token lookups wait for the next shared statement (none in the workers' own store).
    lookups: Option<lookups::Lookups>,
    /// Wakes this process's dispatcher when something may be dispatched: submissions were
    /// queued, or an active one ended and freed a slot under a limit.
    dispatch: Arc<tokio::sync::Notify>,
    /// Changes after each commit that recorded events, waking this process's event feed.
    events: Arc<tokio::sync::watch::Sender<u64>>,
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

    /// Connects, creating an SQLite file if needed, and runs the migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let url = sqlite_creates_file(url);
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // An SQLite connection is a file in this process: it cannot have gone away, and
            // asking its worker thread whether it has costs a wake-up of that thread per query.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    if conn.backend_name() == "SQLite" {
                        sqlx::raw_sql(wal::SQLITE_PRAGMAS)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let mut store = Store {
            pool,
            backend,
            wal: Arc::default(),
            writer: Arc::default(),
            commits: None,
            lookups: None,
            dispatch: Arc::default(),
            events: Arc::new(tokio::sync::watch::Sender::new(0)),
        };
        store.commits = Some(commits::Committer::start(store.clone()));
        store.lookups = Some(lookups::Lookups::start(store.clone()));
        Ok(store)
    }

    /// Held while writing: this process's turn to write on SQLite (nothing on Postgres, whose
    /// writers do not block one another). Taken before a connection, so no connection idles
    /// waiting for its turn.
    async fn turn_to_write(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        }
    }

    /// What the dispatcher waits on between rounds (see [`Store::wake_dispatcher`]).
    pub fn dispatcher_wakes(&self) -> Arc<tokio::sync::Notify> {
        self.dispatch.clone()
    }

    /// Tells this process's dispatcher to look again (other replicas look within seconds).
    fn wake_dispatcher(&self) {
        self.dispatch.notify_one();
    }

    /// Wakes the dispatcher if any of these newly stored submissions is queued.
    fn dispatchable(&self, stored: &[crate::domain::Submission]) {
        if stored
            .iter()
            .any(|submission| submission.progress.state == crate::domain::State::Queued)
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
    fn built<'q>(
        &self,
        builder: &'q mut QueryBuilder<Any>,
    ) -> Result<Query<'q, Any, AnyArguments>> {
        let mut query = builder.build();
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
        Ok(sqlx::query_with(AssertSqlSafe(sql), arguments))
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

/// Makes a plain SQLite URL create its file on first start, as users of the default expect.
fn sqlite_creates_file(url: &str) -> String {
    if !url.starts_with("sqlite:") || url.contains("mode=") || url.contains(":memory:") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}mode=rwc")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_placeholders_are_numbered_in_the_order_values_were_bound() {
        assert_eq!(
            postgres_placeholders("a = ? AND b IN (?, ?) AND c = 'x?' AND d = ?"),
            "a = $1 AND b IN ($2, $3) AND c = 'x?' AND d = $4"
        );
    }

    #[test]
    fn sqlite_urls_create_their_file_unless_told_otherwise() {
        assert_eq!(
            sqlite_creates_file("sqlite://a.db"),
            "sqlite://a.db?mode=rwc"
        );
        assert_eq!(
            sqlite_creates_file("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
        assert_eq!(
            sqlite_creates_file("postgres://u@h/db"),
            "postgres://u@h/db"
        );
    }
}
