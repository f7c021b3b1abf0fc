//! Group commit: submissions stored one per request that arrive together share a transaction.
//!
//! Each transaction costs the same whether it holds one row or a hundred (a commit, a turn at
//! SQLite's single writer), so under load one-row transactions were the limit of the accept
//! path (BENCHMARKS.md). Requests queue their rows here; a writer takes every request waiting,
//! stores them in one transaction and answers each. Each request stays all or none: when the
//! shared transaction fails, each request is stored on its own, so one bad request cannot fail
//! the others. A request abandoned while it waited (its client gone, its time limit passed) is
//! left out, so a request answered with an error has stored nothing. The queue is a
//! [`Batcher`].

use super::batcher::{BatchSize, Batcher, Waiting};
use super::store::{Backend, Store};
use crate::domain::Submission;

/// Rows in one shared transaction at most.
const GROUP_ROWS: usize = 1000;

/// The submissions of one request, and the same as stored.
type Request = Waiting<Vec<Submission>, Vec<Submission>>;

/// Starts the writers, which store through `store` (a store without a queue of its own) and
/// stop when every handle to the queue is gone.
pub(super) fn start(store: Store) -> Batcher<Vec<Submission>, Vec<Submission>> {
    // SQLite has one writer at a time; Postgres overlaps a few round trips.
    let writers = match store.backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 4,
    };
    let size = BatchSize {
        most: GROUP_ROWS,
        weight: Vec::len,
    };
    Batcher::start(writers, size, move |group| {
        store_group(store.clone(), group)
    })
}

/// Stores a group in one transaction, or each request on its own if that fails.
async fn store_group(store: Store, group: Vec<Request>) {
    let group: Vec<Request> = group
        .into_iter()
        .filter(|waiting| !waiting.answer.abandoned())
        .collect();
    if group.is_empty() {
        return;
    }
    if group.len() > 1 {
        let mut rows: Vec<Submission> = group
            .iter()
            .flat_map(|waiting| waiting.request.iter().cloned())
            .collect();
        if store
            .insert_unless(&mut rows, || group.iter().any(|w| w.answer.abandoned()))
            .await
            .is_ok()
        {
            let mut rows = rows.into_iter();
            for waiting in group {
                let stored: Vec<Submission> = rows.by_ref().take(waiting.request.len()).collect();
                waiting.answer.send(Ok(stored));
            }
            return;
        }
    }
    for mut waiting in group {
        if waiting.answer.abandoned() {
            continue;
        }
        let result = store
            .insert_unless(&mut waiting.request, || waiting.answer.abandoned())
            .await;
        waiting.answer.send(result.map(|()| waiting.request));
    }
}
