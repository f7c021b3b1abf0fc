//! Opening the database: the connection pool and its settings for each backend, the
//! migrations, and the queues that let requests arriving together share a statement.

use std::sync::Arc;

use sqlx::AnyConnection;
use sqlx::Connection;
use sqlx::any::AnyPoolOptions;

use super::error::Result;
use super::store::{Backend, Store};
use super::{commits, lookups, progress_commits, reads, wal};

/// How long a statement waits for a connection before it fails: a database that is down makes
/// requests answer 500/503 and the watchers hand their changes to the reconcile queue within
/// seconds, instead of everything hanging for sqlx's default half minute.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Store {
    /// Connects, creating an SQLite file if needed, and runs the migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let url = sqlite_creates_file(url);
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        // Migrated on a connection of its own, closed before any other work: on SQLite a
        // statement of the migrator's left unfinished on a pooled connection would keep that
        // connection's old snapshot, and its next write would fail at once ("database is
        // locked", with no wait) if another process (a running service beside `token`)
        // wrote since.
        let mut migrating = AnyConnection::connect(&url).await?;
        if backend == Backend::Sqlite {
            sqlx::raw_sql(wal::SQLITE_PRAGMAS)
                .execute(&mut migrating)
                .await?;
        }
        sqlx::migrate!("./migrations").run(&mut migrating).await?;
        migrating.close().await?;
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
        let mut store = Store {
            pool,
            backend,
            wal: Arc::default(),
            writer: Arc::default(),
            commits: None,
            progress_commits: None,
            lookups: None,
            reads: None,
            dispatch: Arc::default(),
            events: Arc::new(tokio::sync::watch::Sender::new(0)),
            deliveries: Arc::new(tokio::sync::watch::Sender::new(0)),
            withdrawals: Arc::default(),
        };
        store.commits = Some(commits::start(store.clone()));
        store.progress_commits = Some(progress_commits::start(store.clone()));
        store.lookups = Some(lookups::start(store.clone()));
        store.reads = Some(reads::start(store.clone()));
        Ok(store)
    }
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
