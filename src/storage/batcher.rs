//! A queue whose requests are served in batches: the requests waiting at the same moment are
//! taken together, so that one statement or one transaction serves them all.
//!
//! The group commits of single submissions (`commits`) and of the controller's progress writes
//! (`progress_commits`), the token lookups (`lookups`) and the reads of one submission
//! (`reads`) are built on it. A worker takes the first request waiting, then every other one
//! already queued until the batch is full, and hands the batch to the function it was started
//! with, which answers each request. No request waits for others to arrive: under light load a
//! batch is one request, and batches grow only while requests queue up behind busy workers.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::error::{Result, StorageError};

/// Requests waiting at most; past it, senders wait for room (back-pressure, not memory).
const QUEUE: usize = 4096;

/// The queue of requests `R`, each answered with an `A`; shared by every clone of a store.
pub(super) struct Batcher<R, A> {
    queue: mpsc::Sender<Waiting<R, A>>,
}

impl<R, A> Clone for Batcher<R, A> {
    fn clone(&self) -> Self {
        Batcher {
            queue: self.queue.clone(),
        }
    }
}

/// A request in a batch, and where its answer goes.
pub(super) struct Waiting<R, A> {
    pub(super) request: R,
    pub(super) answer: Answer<A>,
}

/// Where the answer to one request goes.
pub(super) struct Answer<A>(oneshot::Sender<Result<A>>);

impl<A> Answer<A> {
    /// Whether the request's caller stopped waiting for it (its client went away, its time
    /// limit passed).
    pub(super) fn abandoned(&self) -> bool {
        self.0.is_closed()
    }

    /// Answers the request; an abandoned one hears nothing.
    pub(super) fn send(self, answer: Result<A>) {
        let _ = self.0.send(answer);
    }
}

/// How full a batch may get: requests are taken while the sum of their `weight` is under
/// `most` (the request that reaches it is the last one taken).
pub(super) struct BatchSize<R> {
    pub(super) most: usize,
    pub(super) weight: fn(&R) -> usize,
}

impl<R> Clone for BatchSize<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for BatchSize<R> {}

impl<R: Send + 'static, A: Send + 'static> Batcher<R, A> {
    /// Starts `workers` workers that serve batches of at most `size` with `serve`, one batch
    /// at a time each, and stop when every handle to this batcher is gone.
    pub(super) fn start<S, F>(workers: usize, size: BatchSize<R>, serve: S) -> Self
    where
        S: Fn(Vec<Waiting<R, A>>) -> F + Clone + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..workers {
            tokio::spawn(work(waiting.clone(), size, serve.clone()));
        }
        Batcher { queue }
    }

    /// Queues `request` for the next batch and waits for its answer.
    pub(super) async fn send(&self, request: R) -> Result<A> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Waiting {
                request,
                answer: Answer(answer),
            })
            .await
            .map_err(|_| StorageError::Database(sqlx::Error::PoolClosed))?;
        answered
            .await
            .map_err(|_| StorageError::Database(sqlx::Error::PoolClosed))?
    }
}

async fn work<R, A, S, F>(
    waiting: Arc<Mutex<mpsc::Receiver<Waiting<R, A>>>>,
    size: BatchSize<R>,
    serve: S,
) where
    S: Fn(Vec<Waiting<R, A>>) -> F,
    F: Future<Output = ()>,
{
    loop {
        let mut batch = Vec::new();
        {
            let mut waiting = waiting.lock().await;
            let Some(first) = waiting.recv().await else {
                return;
            };
            let mut weight = (size.weight)(&first.request);
            batch.push(first);
            while weight < size.most {
                let Ok(next) = waiting.try_recv() else { break };
                weight += (size.weight)(&next.request);
                batch.push(next);
            }
        }
        serve(batch).await;
    }
}

/// The same failure for every request a statement served: unavailable stays unavailable (a 503
/// with Retry-After), anything else is an error with the same text.
pub(super) fn again(error: &StorageError) -> StorageError {
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
