//! Token lookups of requests arriving together share one statement.
//!
//! Every request looks its token up, and nothing is cached: a revoked token must stop working
//! at once. On Postgres that lookup was a round trip of its own per request, beside the insert
//! the group commit already shares, and the largest part of the gap between the accept path
//! and its floor (BENCHMARKS.md). Lookups waiting at the same moment are answered by one `IN`
//! query; each is still sent after its request arrived, so a revocation committed before a
//! request is always seen by it.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::error::{Result, StorageError};
use super::store::{Backend, Store};
use super::tokens::Token;
use super::tokens::{TOKEN_COLUMNS, token_from_row};

/// Lookups waiting at most; past it, requests wait for room.
const QUEUE: usize = 4096;
/// Secrets one statement looks up at most.
const BATCH: usize = 128;

struct Waiting {
    hash: String,
    answer: oneshot::Sender<Result<Option<Token>>>,
}

/// The queue of lookups, shared by every clone of a [`Store`].
#[derive(Clone)]
pub(super) struct Lookups {
    queue: mpsc::Sender<Waiting>,
}

impl Lookups {
    /// Starts the workers, which look up through `store` (one without lookups of its own) and
    /// stop when every handle to this queue is gone.
    pub(super) fn start(store: Store) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let waiting = Arc::new(Mutex::new(waiting));
        let workers = match store.backend {
            Backend::Sqlite => 2,
            Backend::Postgres => 4,
        };
        for _ in 0..workers {
            tokio::spawn(answer_lookups(store.clone(), waiting.clone()));
        }
        Lookups { queue }
    }

    /// The unrevoked token whose secret hashes to `hash`.
    pub(super) async fn find(&self, hash: String) -> Result<Option<Token>> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Waiting { hash, answer })
            .await
            .map_err(|_| StorageError::Database(sqlx::Error::PoolClosed))?;
        answered
            .await
            .map_err(|_| StorageError::Database(sqlx::Error::PoolClosed))?
    }
}

async fn answer_lookups(store: Store, waiting: Arc<Mutex<mpsc::Receiver<Waiting>>>) {
    loop {
        let mut group = Vec::new();
        {
            let mut waiting = waiting.lock().await;
            let Some(first) = waiting.recv().await else {
                return;
            };
            group.push(first);
            while group.len() < BATCH {
                let Ok(next) = waiting.try_recv() else { break };
                group.push(next);
            }
        }
        let hashes: Vec<&str> = group.iter().map(|waiting| waiting.hash.as_str()).collect();
        match store.tokens_by_hash(&hashes).await {
            Ok(mut found) => {
                for waiting in group {
                    let token = found.get(&waiting.hash).cloned();
                    let _ = waiting.answer.send(Ok(token));
                }
                found.clear();
            }
            Err(error) => {
                for waiting in group {
                    let _ = waiting.answer.send(Err(again(&error)));
                }
            }
        }
    }
}

/// The same failure for every lookup of the statement: unavailable stays unavailable (a 503
/// with Retry-After), anything else is an error with the same text.
fn again(error: &StorageError) -> StorageError {
    match error {
        StorageError::Database(sqlx::Error::PoolTimedOut) => {
            StorageError::Database(sqlx::Error::PoolTimedOut)
        }
        StorageError::Database(sqlx::Error::PoolClosed) => {
            StorageError::Database(sqlx::Error::PoolClosed)
        }
        StorageError::Database(sqlx::Error::Io(io)) => StorageError::Database(sqlx::Error::Io(
            std::io::Error::new(io.kind(), io.to_string()),
        )),
        other => StorageError::Database(sqlx::Error::Protocol(other.to_string())),
    }
}

impl Store {
    /// The unrevoked tokens among these secret hashes, by hash.
    async fn tokens_by_hash(&self, hashes: &[&str]) -> Result<HashMap<String, Token>> {
        let mut builder = sqlx::QueryBuilder::new(format!(
            "SELECT secret_hash, {TOKEN_COLUMNS} FROM tokens WHERE revoked_at IS NULL AND \
             secret_hash IN ("
        ));
        let mut separated = builder.separated(", ");
        for hash in hashes {
            separated.push_bind((*hash).to_owned());
        }
        builder.push(")");
        let rows = self.built(&mut builder)?.fetch_all(&self.pool).await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let hash: String = sqlx::Row::try_get(row, "secret_hash")?;
            found.insert(hash, token_from_row(row)?);
        }
        Ok(found)
    }
}
