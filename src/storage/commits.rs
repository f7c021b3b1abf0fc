//! Group commit: submissions stored one per request that arrive together share a transaction.
//!
//! Each transaction costs the same whether it holds one row or a hundred (a commit, a turn at
//! SQLite's single writer), so under load one-row transactions were the limit of the accept
//! path (BENCHMARKS.md). Requests queue their rows here; a writer takes every request waiting,
//! stores them in one transaction and answers each. Each request stays all or none: when the
//! shared transaction fails, each request is stored on its own, so one bad request cannot fail
//! the others. A request abandoned while it waited (its client gone, its time limit passed) is
//! left out, so a request answered with an error has stored nothing.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::error::{Result, StorageError};
use super::store::{Backend, Store};
use crate::domain::Submission;

/// Requests waiting at most; past it, senders wait for room (back-pressure, not memory).
const QUEUE: usize = 4096;
/// Rows in one shared transaction at most.
const GROUP_ROWS: usize = 1000;

struct Waiting {
    submissions: Vec<Submission>,
    stored: oneshot::Sender<Result<Vec<Submission>>>,
}

/// The queue of requests waiting to be stored, shared by every clone of a [`Store`].
#[derive(Clone)]
pub(super) struct Committer {
    queue: mpsc::Sender<Waiting>,
}

impl Committer {
    /// Starts the writers, which store through `store` (a store without a committer of its
    /// own) and stop when every handle to this committer is gone.
    pub(super) fn start(store: Store) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let waiting = Arc::new(Mutex::new(waiting));
        // SQLite has one writer at a time; Postgres overlaps a few round trips.
        let writers = match store.backend {
            Backend::Sqlite => 1,
            Backend::Postgres => 4,
        };
        for _ in 0..writers {
            tokio::spawn(write_groups(store.clone(), waiting.clone()));
        }
        Committer { queue }
    }

    /// Stores `submissions` (all or none) in the next group; returns them as stored.
    pub(super) async fn store(&self, submissions: Vec<Submission>) -> Result<Vec<Submission>> {
        let (stored, answer) = oneshot::channel();
        self.queue
            .send(Waiting {
                submissions,
                stored,
            })
            .await
            .map_err(|_| StorageError::Database(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| StorageError::Database(sqlx::Error::PoolClosed))?
    }
}

async fn write_groups(store: Store, waiting: Arc<Mutex<mpsc::Receiver<Waiting>>>) {
    loop {
        let mut group = Vec::new();
        {
            let mut waiting = waiting.lock().await;
            let Some(first) = waiting.recv().await else {
                return;
            };
            let mut rows = first.submissions.len();
            group.push(first);
            while rows < GROUP_ROWS {
                let Ok(next) = waiting.try_recv() else { break };
                rows += next.submissions.len();
                group.push(next);
            }
        }
        store_group(&store, group).await;
    }
}

/// Stores a group in one transaction, or each request on its own if that fails.
async fn store_group(store: &Store, group: Vec<Waiting>) {
    let mut group: Vec<Waiting> = group
        .into_iter()
        .filter(|waiting| !waiting.stored.is_closed())
        .collect();
    if group.is_empty() {
        return;
    }
    if group.len() > 1 {
        let mut rows: Vec<Submission> = group
            .iter()
            .flat_map(|waiting| waiting.submissions.iter().cloned())
            .collect();
        if store
            .insert_unless(&mut rows, || group.iter().any(|w| w.stored.is_closed()))
            .await
            .is_ok()
        {
            let mut rows = rows.into_iter();
            for waiting in group {
                let stored: Vec<Submission> =
                    rows.by_ref().take(waiting.submissions.len()).collect();
                let _ = waiting.stored.send(Ok(stored));
            }
            return;
        }
    }
    for waiting in &mut group {
        if waiting.stored.is_closed() {
            continue;
        }
        let result = store
            .insert_unless(&mut waiting.submissions, || waiting.stored.is_closed())
            .await;
        let stored = std::mem::take(&mut waiting.submissions);
        let (answer, _) = oneshot::channel();
        let sender = std::mem::replace(&mut waiting.stored, answer);
        let _ = sender.send(result.map(|()| stored));
    }
}
