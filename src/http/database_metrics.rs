//! What `/metrics` reads from the database and the connection pool: submissions by state, the
//! webhook notifications still to be sent (both the same on every replica), and the pool's
//! connections. A [`Collector`] of the one registry `/metrics` encodes, so these are written
//! with the rest in whichever format the scraper asked for.
//!
//! A collector encodes without waiting, so each scrape reads the counts first
//! ([`DatabaseMetrics::read`]) and the collector writes what was read last. Active states are
//! counted on every scrape (they are few, and what alerts watch). Counting the final states
//! reads most of the table (75 ms at a million rows on SQLite), so those counts are kept for
//! [`FINAL_COUNTS_TTL`] and recounted in the background when older: a scrape never waits for
//! that count, except the very first.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::domain::State;
use crate::storage::{StorageError, Store};

/// How old the final states' counts may be before a scrape starts a recount.
pub const FINAL_COUNTS_TTL: Duration = Duration::from_secs(15);

/// The counts read from the database for `/metrics`, and the collector that encodes them.
#[derive(Clone)]
pub struct DatabaseMetrics {
    store: Store,
    final_counts: FinalCounts,
    last: Arc<Mutex<Counts>>,
}

/// What the last scrape read.
#[derive(Clone, Debug, Default)]
struct Counts {
    by_state: Vec<(State, i64)>,
    outbox_pending: i64,
}

impl std::fmt::Debug for DatabaseMetrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DatabaseMetrics")
            .field("last", &*lock(&self.last))
            .finish_non_exhaustive()
    }
}

impl DatabaseMetrics {
    pub fn new(store: Store) -> Self {
        DatabaseMetrics {
            store,
            final_counts: FinalCounts::default(),
            last: Arc::default(),
        }
    }

    /// Reads the counts the next encoding writes: active states and the outbox now, final
    /// states as [`FinalCounts`] keeps them.
    pub async fn read(&self) -> Result<(), StorageError> {
        let mut by_state = self.store.count_by_state(&State::ACTIVE).await?;
        by_state.extend(self.final_counts.get(&self.store).await?);
        let (outbox_pending, _) = self.store.delivery_counts().await?;
        *lock(&self.last) = Counts {
            by_state,
            outbox_pending,
        };
        Ok(())
    }
}

impl Collector for DatabaseMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let counts = lock(&self.last).clone();
        let mut submissions = encoder.encode_descriptor(
            "submissions",
            "Submissions by state.",
            None,
            MetricType::Gauge,
        )?;
        for state in State::ALL {
            let count = counts
                .by_state
                .iter()
                .find(|(counted, _)| *counted == state)
                .map_or(0, |(_, count)| *count);
            let labels = [("state", state.as_str())];
            ConstGauge::new(count).encode(submissions.encode_family(&labels)?)?;
        }
        let pool = self.store.pool_stats();
        for (name, help, value) in [
            (
                "db_pool_connections",
                "Database connections open now (in use or idle).",
                i64::from(pool.open),
            ),
            (
                "db_pool_idle_connections",
                "Open database connections waiting for a statement.",
                i64::try_from(pool.idle).unwrap_or(i64::MAX),
            ),
            (
                "db_pool_max_connections",
                "The most database connections the pool opens.",
                i64::from(pool.max),
            ),
            (
                "webhook_outbox_pending",
                "Webhook notifications still to be sent (of every replica).",
                counts.outbox_pending,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

/// The last count of submissions in final states, shared by every scrape.
#[derive(Clone, Default)]
struct FinalCounts {
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
    async fn get(&self, store: &Store) -> Result<Vec<(State, i64)>, StorageError> {
        let stale = {
            let mut cached = lock(&self.last);
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
        let mut cached = lock(&self.last);
        cached.recounting = false;
        if let Some(counts) = counts {
            cached.counts = Some((Instant::now(), counts));
        }
    }
}

/// A lock that a panic elsewhere does not poison: the counts stay readable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
