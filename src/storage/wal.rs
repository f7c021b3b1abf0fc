//! Keeping SQLite's write-ahead log (the `-wal` file beside the database) bounded.
//!
//! SQLite copies the log back into the database at each automatic checkpoint, but it only starts
//! the log over when no reader still needs it, and it never shrinks the file by itself: under a
//! steady load of readers (watchers, list requests) a log once grew to 840 MiB beside a 250 MiB
//! database. Two things keep it small here: `journal_size_limit` cuts the file back whenever the
//! log starts over, and [`Store::keep_wal_bounded`] runs a `TRUNCATE` checkpoint (which waits for
//! readers, then empties the file) every [`CHECKPOINT_EVERY`] and soon after a large batch was
//! stored (the store counts the rows it writes). PostgreSQL manages its own log: all of this is
//! a no-op there.
//!
//! A `TRUNCATE` checkpoint holds SQLite's write lock while it waits for readers, so every writer
//! waits with it: one waiting out the whole busy timeout for a reader left open (an `sqlite3`
//! shell, a long list) held the `token` command's writes up until they failed with "database is
//! locked", and would fail the service's own transactions that read before they write at once.
//! It therefore copies what it can first without that lock, takes this process's turn to write,
//! and waits for readers only [`READERS_WAIT_MS`]; a reader still open then leaves it to the next.

use std::time::Duration;

use sqlx::{AssertSqlSafe, Row};
use tokio::time::MissedTickBehavior;

use super::error::Result;
use super::store::{Backend, Store};

/// Run on every new SQLite connection. WAL lets readers run beside the single writer;
/// `journal_size_limit` (64 MiB) caps what the log keeps after it starts over; the busy timeout
/// makes writers (and checkpoints) queue instead of failing; foreign keys are off by default.
pub(super) const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 30000; \
     PRAGMA journal_mode = WAL; PRAGMA journal_size_limit = 67108864; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

/// How often the log is emptied when nothing else asks for it.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_secs(45);

/// How long a `TRUNCATE` checkpoint waits for readers (and other processes' writers), holding
/// every writer up meanwhile.
const READERS_WAIT_MS: u32 = 200;

/// What a checkpoint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// Every change is in the database file and the log file is empty.
    Truncated,
    /// Readers or a writer kept it from finishing within the busy timeout; the next one retries.
    Busy,
    /// PostgreSQL manages its own write-ahead log: there was nothing to do.
    NotNeeded,
}

impl Store {
    /// Copies the SQLite write-ahead log into the database and truncates it to zero bytes,
    /// waiting for readers at most [`READERS_WAIT_MS`]. A no-op on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<Checkpoint> {
        if self.backend != Backend::Sqlite {
            return Ok(Checkpoint::NotNeeded);
        }
        // Copies what readers allow without holding writers up, so little is left below.
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&self.pool)
            .await?;
        // This process's writers wait for their turn rather than fail inside a transaction.
        let _turn = self.turn_to_write().await;
        let mut connection = self.pool.acquire().await?;
        let usual: i64 = sqlx::query("PRAGMA busy_timeout")
            .fetch_one(&mut *connection)
            .await?
            .try_get(0)?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "PRAGMA busy_timeout = {READERS_WAIT_MS}"
        )))
        .execute(&mut *connection)
        .await?;
        // Answers one row: busy (0 or 1), pages in the log, pages copied back.
        let checkpointed = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut *connection)
            .await;
        let restored = sqlx::raw_sql(AssertSqlSafe(format!("PRAGMA busy_timeout = {usual}")))
            .execute(&mut *connection)
            .await;
        if restored.is_err() {
            // Not back in the pool with writes that give up after 200 ms.
            connection.close_on_drop();
        }
        let busy: i64 = checkpointed?.try_get(0)?;
        Ok(if busy == 0 {
            Checkpoint::Truncated
        } else {
            Checkpoint::Busy
        })
    }

    /// Runs checkpoints for as long as it is polled (the service spawns it at start): at once,
    /// every 45 s, and as soon as 1000 rows were stored since the last one, so a large batch
    /// leaves no large log behind. Returns at once on PostgreSQL.
    pub async fn keep_wal_bounded(self) {
        if self.backend != Backend::Sqlite {
            return;
        }
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        every.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = self.wal.large_batch() => {}
            }
            self.wal.checkpointing();
            match self.checkpoint().await {
                Ok(Checkpoint::Busy) => {
                    tracing::debug!("WAL checkpoint postponed: the database stayed busy");
                }
                Ok(Checkpoint::Truncated | Checkpoint::NotNeeded) => {}
                Err(error) => tracing::warn!(%error, "WAL checkpoint failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_connections_keep_a_write_ahead_log_of_bounded_size() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("pragmas.db").display());
        let store = Store::connect(&url).await.expect("database");

        let mode = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .expect("journal_mode");
        let limit = sqlx::query("PRAGMA journal_size_limit")
            .fetch_one(&store.pool)
            .await
            .expect("journal_size_limit");

        assert_eq!(mode.try_get::<String, _>(0).expect("text"), "wal");
        assert_eq!(
            limit.try_get::<i64, _>(0).expect("number"),
            64 * 1024 * 1024
        );
    }
}
