//! Group commit of progress: the progress the controller decides for many submissions at
//! once (a burst of Jobs and pods changing) is written in one transaction.
//!
//! Each write used to be a transaction of its own: its turn at SQLite's single writer, a
//! begin, the row, the event counter, the event, a commit, and the event feed's read after it,
//! each a hand-off to a connection's thread. Writes that queue behind a busy writer now share
//! all but the row's own statement. Each write keeps its optimistic lock: a row another writer
//! changed since it was read is left alone, and its caller reads it again and decides again,
//! as before. When the shared transaction fails, each write is made on its own, so one
//! failing write cannot fail the others. The queue is a [`Batcher`].

use super::batcher::{BatchSize, Batcher, Waiting};
use super::progress_write::{ProgressWrite, Written};
use super::store::{Backend, Store};

/// Writes in one shared transaction at most.
const GROUP: usize = 256;

/// Starts the writers, which write through `store` (a store without a queue of its own) and
/// stop when every handle to the queue is gone.
pub(super) fn start(store: Store) -> Batcher<ProgressWrite, Written> {
    // SQLite has one writer at a time; Postgres overlaps a round trip or two.
    let writers = match store.backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 2,
    };
    let size = BatchSize {
        most: GROUP,
        weight: |_| 1,
    };
    Batcher::start(writers, size, move |group| {
        write_group(store.clone(), group)
    })
}

/// Writes a group in one transaction, or each write on its own if that fails.
async fn write_group(store: Store, group: Vec<Waiting<ProgressWrite, Written>>) {
    if group.len() > 1 {
        let writes: Vec<&ProgressWrite> = group.iter().map(|waiting| &waiting.request).collect();
        match store.write_progress(&writes).await {
            Ok(written) => {
                for (waiting, written) in group.into_iter().zip(written) {
                    waiting.answer.send(Ok(waiting.request.outcome(written)));
                }
                return;
            }
            // Each write's own error, if it has one, reaches its caller below.
            Err(error) => {
                tracing::debug!(%error, writes = group.len(), "a shared commit of progress failed; writing each on its own")
            }
        }
    }
    for waiting in group {
        let written = store.write_one(waiting.request).await;
        waiting.answer.send(written);
    }
}
