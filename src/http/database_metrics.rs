//! What `/metrics` reads from the database and the connection pool: submissions by state, the
//! webhook notifications still to be sent (both the same on every replica), and the pool's
//! connections. A [`Collector`] of the one registry `/metrics` encodes, so these are written
//! with the rest in whichever format the scraper asked for.
//!
//! A collector encodes without waiting, so each scrape reads the counts first
//! ([`DatabaseMetrics::read`]) and the collector writes what was read last. Active states are
//! counted on every scrape (they are few, and what alerts watch). Counting the final states
//! would read most of the table (75 ms at a million rows on SQLite, seconds on a busy
//! machine), so they are the last counts brought forward by the events since (see
//! `storage::final_counts`): exact at every scrape, the first after a start included, and
//! saved every [`SAVE_EVERY`] so a start reads only the events of those last seconds.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::domain::State;
use crate::storage::{FinalCounts, StorageError, Store};

/// How often the final states' counts are brought forward and saved, scraped or not.
pub const SAVE_EVERY: Duration = Duration::from_secs(10);

/// The counts read from the database for `/metrics`, and the collector that encodes them.
#[derive(Clone)]
pub struct DatabaseMetrics {
    store: Store,
    /// The final states' counts as last brought forward.
    final_counts: Arc<Mutex<Option<FinalCounts>>>,
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
            final_counts: Arc::default(),
            last: Arc::default(),
        }
    }

    /// Reads the counts the next encoding writes: active states and the outbox now, final
    /// states brought forward by the events since they were last read.
    pub async fn read(&self) -> Result<(), StorageError> {
        let mut by_state = self.store.count_by_state(&State::ACTIVE).await?;
        by_state.extend(self.bring_final_counts_forward().await?.by_state());
        let (outbox_pending, _) = self.store.delivery_counts().await?;
        *lock(&self.last) = Counts {
            by_state,
            outbox_pending,
        };
        Ok(())
    }

    /// The final states' counts now, kept for the next read.
    async fn bring_final_counts_forward(&self) -> Result<FinalCounts, StorageError> {
        let known = lock(&self.final_counts).clone();
        let now = self.store.final_counts(known).await?;
        let mut kept = lock(&self.final_counts);
        // Two scrapes at once: the newer counts stay.
        if kept
            .as_ref()
            .is_none_or(|kept| kept.revision <= now.revision)
        {
            *kept = Some(now.clone());
        }
        Ok(now)
    }

    /// Brings the final states' counts forward and saves them now and every [`SAVE_EVERY`],
    /// so the next start, scraped at once, reads only the events of the last seconds. Runs
    /// until dropped.
    pub async fn keep_final_counts_saved(self) {
        let mut every = tokio::time::interval(SAVE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut saved = None;
        loop {
            every.tick().await;
            let counts = match self.bring_final_counts_forward().await {
                Ok(counts) => counts,
                Err(error) => {
                    tracing::debug!(%error, "could not bring the final states' counts forward");
                    continue;
                }
            };
            if saved == Some(counts.revision) {
                continue;
            }
            match self.store.save_final_counts(&counts).await {
                Ok(_) => saved = Some(counts.revision),
                Err(error) => tracing::debug!(%error, "could not save the final states' counts"),
            }
        }
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

/// A lock that a panic elsewhere does not poison: the counts stay readable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
