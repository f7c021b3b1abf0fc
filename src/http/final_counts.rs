//! The count of submissions in final states that `/metrics` serves: it reads most of the table,
//! so it is kept for [`FINAL_COUNTS_TTL`] and recounted in the background when older.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::State;
use crate::storage::{StorageError, Store};

/// How old the final states' counts may be before a scrape starts a recount.
pub const FINAL_COUNTS_TTL: Duration = Duration::from_secs(15);

/// The last count of submissions in final states, shared by every scrape.
#[derive(Clone, Default)]
pub struct FinalCounts {
    last: Arc<Mutex<Cached>>,
}

#[derive(Default)]
struct Cached {
    counts: Option<(Instant, Vec<(State, i64)>)>,
    recounting: bool,
}

impl FinalCounts {
    /// The counts, counted now if there are none yet; stale ones are served while a
    /// background recount replaces them.
    pub(super) async fn get(&self, store: &Store) -> Result<Vec<(State, i64)>, StorageError> {
        let stale = {
            let mut cached = self
                .last
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match &cached.counts {
                Some((at, counts)) if at.elapsed() < FINAL_COUNTS_TTL => {
                    return Ok(counts.clone());
                }
                Some((_, counts)) => {
                    let counts = counts.clone();
                    let start = !cached.recounting;
                    cached.recounting = true;
                    Some((counts, start))
                }
                None => None,
            }
        };
        match stale {
            Some((counts, start_recount)) => {
                if start_recount {
                    let this = self.clone();
                    let store = store.clone();
                    tokio::spawn(async move {
                        let counted = store.count_by_state(&State::FINAL).await;
                        this.store(counted.ok());
                    });
                }
                Ok(counts)
            }
            None => {
                let counts = store.count_by_state(&State::FINAL).await?;
                self.store(Some(counts.clone()));
                Ok(counts)
            }
        }
    }

    /// Keeps a fresh count (a failed recount keeps the old one, retried at the next scrape).
    fn store(&self, counts: Option<Vec<(State, i64)>>) {
        let mut cached = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cached.recounting = false;
        if let Some(counts) = counts {
            cached.counts = Some((Instant::now(), counts));
        }
    }
}
