//! Reads of one submission by id, asked for at the same moment, share one statement.
//!
//! Each reconcile reads its submission's row before it decides what to write, and most find
//! nothing to write (nine in ten while Jobs are being created, BENCHMARKS.md): one statement
//! per reconcile, each a hand-off to a connection's thread and back on SQLite, a round trip on
//! Postgres. The reconciles that a burst of events makes due start together, and their reads,
//! waiting at the same moment, are answered by one `IN` query. Each read is still sent after it
//! was asked for, so it sees every commit made before it, as a read of its own would. The queue
//! is a [`Batcher`].

use std::collections::HashMap;

use sqlx::QueryBuilder;

use super::batcher::{BatchSize, Batcher, Waiting, again};
use super::error::{Result, StorageError};
use super::progress_write::Read;
use super::store::{Backend, Store};
use super::submissions::row::{columns, from_row};
use crate::domain::SubmissionId;

/// Rows one statement reads at most: its arguments stay few enough to be kept prepared.
const BATCH: usize = 64;

/// Starts the workers, which read through `store` (one without a queue of reads of its own)
/// and stop when every handle to the queue is gone.
pub(super) fn start(store: Store) -> Batcher<SubmissionId, Option<Read>> {
    // As for token lookups: on SQLite one worker, so that the reads asked for while it waits
    // for its connection's thread share its next statement.
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

/// Answers every read of `group` from one statement.
async fn answer(store: Store, group: Vec<Waiting<SubmissionId, Option<Read>>>) {
    let ids: Vec<SubmissionId> = group.iter().map(|waiting| waiting.request).collect();
    let shared = match store.read_many(&ids).await {
        // A row that cannot be read fails its own read only: each is read again apart.
        Err(
            StorageError::Corrupt { .. }
            | StorageError::Database(sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_)),
        ) => {
            for waiting in group {
                let read = store.read_one(waiting.request).await;
                waiting.answer.send(read);
            }
            return;
        }
        shared => shared,
    };
    match shared {
        Ok(mut found) => {
            // The same id twice in a batch (two reconciles of one submission never run at
            // once, but requests may ask for it): the last to be answered takes the row.
            let mut asked: HashMap<SubmissionId, usize> = HashMap::with_capacity(ids.len());
            for id in &ids {
                *asked.entry(*id).or_default() += 1;
            }
            for waiting in group {
                let id = waiting.request;
                let left = asked.get_mut(&id).map_or(0, |left| {
                    *left -= 1;
                    *left
                });
                let read = if left == 0 {
                    found.remove(&id)
                } else {
                    found.get(&id).cloned()
                };
                waiting.answer.send(Ok(read));
            }
        }
        Err(error) => {
            for waiting in group {
                waiting.answer.send(Err(again(&error)));
            }
        }
    }
}

impl Store {
    /// The rows of `ids` that exist, in one statement.
    async fn read_many(&self, ids: &[SubmissionId]) -> Result<HashMap<SubmissionId, Read>> {
        if let [id] = ids {
            return Ok(self
                .read_one(*id)
                .await?
                .map(|read| (*id, read))
                .into_iter()
                .collect());
        }
        let mut builder = QueryBuilder::new(concat!(
            "SELECT ",
            columns!(),
            " FROM submissions WHERE id IN ("
        ));
        let mut separated = builder.separated(", ");
        for id in ids {
            separated.push_bind(id.to_string());
        }
        builder.push(")");
        let rows = self.built(&mut builder)?.fetch_all(&self.pool).await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let (submission, version) = from_row(row)?;
            found.insert(
                submission.id,
                Read {
                    submission,
                    version,
                },
            );
        }
        Ok(found)
    }
}
