//! Token lookups of requests arriving together share one statement.
//!
//! Every request looks its token up, and nothing is cached: a revoked token must stop working
//! at once. On Postgres that lookup was a round trip of its own per request, beside the insert
//! the group commit already shares, and the largest part of the gap between the accept path
//! and its floor (BENCHMARKS.md). Lookups waiting at the same moment are answered by one `IN`
//! query; each is still sent after its request arrived, so a revocation committed before a
//! request is always seen by it. The queue is a [`Batcher`].

use super::batcher::{BatchSize, Batcher, Waiting, again};
use super::store::{Backend, Store};
use super::token_row::Token;

/// Secrets one statement looks up at most.
const BATCH: usize = 128;

/// Starts the workers, which look up through `store` (one without lookups of its own) and
/// stop when every handle to the queue is gone. Each request is the hash of a secret.
pub(super) fn start(store: Store) -> Batcher<String, Option<Token>> {
    // On SQLite a lookup is no round trip but a hand-off to a connection's thread and back:
    // one worker lets the lookups that arrive meanwhile share its next statement.
    let workers = match store.backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 4,
    };
    let size = BatchSize {
        most: BATCH,
        weight: |_| 1,
    };
    Batcher::start(workers, size, move |group| answer(store.clone(), group))
}

/// Answers every lookup of `group` from one statement.
async fn answer(store: Store, group: Vec<Waiting<String, Option<Token>>>) {
    let hashes: Vec<&str> = group
        .iter()
        .map(|waiting| waiting.request.as_str())
        .collect();
    match store.tokens_by_hash(&hashes).await {
        Ok(found) => {
            for waiting in group {
                let token = found.get(&waiting.request).cloned();
                waiting.answer.send(Ok(token));
            }
        }
        Err(error) => {
            for waiting in group {
                waiting.answer.send(Err(again(&error)));
            }
        }
    }
}
