//! Whether the cluster answers, as its watches find: the first failure of a watch with no
//! answer since marks it failing, and any answer (an event, a list) clears the mark. A cluster
//! failing for `unreachable_after` is unreachable: its live submissions keep their state (never
//! failed nor cancelled for that alone), and their views say since when it has not answered.

use std::time::Duration;

use jiff::Timestamp;
use kube::runtime::watcher;
use parking_lot::Mutex;

/// How long a cluster fails before it counts as unreachable, unless the server says otherwise
/// (`--cluster-unreachable-after`).
pub const UNREACHABLE_AFTER: Duration = Duration::from_secs(60);
/// How long a cluster fails before it counts as lost, and its live submissions are run again
/// elsewhere (`--cluster-lost-after`): long enough that an API server's restart or a short
/// network outage never kills healthy work.
pub const LOST_AFTER: Duration = Duration::from_secs(15 * 60);

/// The cluster's failing watches, shared by the handle's clones.
#[derive(Debug)]
pub struct Reachability {
    failing_since: Mutex<Option<Timestamp>>,
    unreachable_after: Duration,
    lost_after: Duration,
}

impl Default for Reachability {
    fn default() -> Self {
        Reachability::new(UNREACHABLE_AFTER)
    }
}

impl Reachability {
    pub fn new(unreachable_after: Duration) -> Self {
        Reachability {
            failing_since: Mutex::new(None),
            unreachable_after,
            lost_after: LOST_AFTER,
        }
    }

    /// The same, lost once it has failed for `lost_after`.
    pub fn lost_after(mut self, lost_after: Duration) -> Self {
        self.lost_after = lost_after;
        self
    }

    /// A watch failed at `now` (the first failure since the last answer counts).
    pub fn failed(&self, now: Timestamp) {
        self.failing_since.lock().get_or_insert(now);
    }

    /// The cluster answered.
    pub fn answered(&self) {
        *self.failing_since.lock() = None;
    }

    /// Since when the cluster has not answered, if that is `unreachable_after` or longer
    /// before `now`.
    pub fn unreachable_since(&self, now: Timestamp) -> Option<Timestamp> {
        let since = (*self.failing_since.lock())?;
        let failing = Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO);
        (failing >= self.unreachable_after).then_some(since)
    }

    /// Since when the cluster has not answered, if that is `lost_after` or longer before
    /// `now`: its live submissions may be run again elsewhere.
    pub fn lost_since(&self, now: Timestamp) -> Option<Timestamp> {
        let since = (*self.failing_since.lock())?;
        let failing = Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO);
        (failing >= self.lost_after).then_some(since)
    }

    /// What a watch calls with each item it yields.
    pub fn observe<K>(&self, item: &Result<watcher::Event<K>, watcher::Error>) {
        match item {
            Ok(_) => self.answered(),
            Err(_) => self.failed(Timestamp::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("a time")
    }

    #[test]
    fn a_cluster_is_unreachable_once_it_has_failed_for_the_whole_limit_and_since_its_first_failure()
    {
        let reachability = Reachability::new(Duration::from_secs(60));

        reachability.failed(at(1_000));
        reachability.failed(at(1_030));

        assert_eq!(reachability.unreachable_since(at(1_059)), None);
        assert_eq!(reachability.unreachable_since(at(1_060)), Some(at(1_000)));
    }

    #[test]
    fn an_answer_clears_the_failure_and_a_later_one_counts_afresh() {
        let reachability = Reachability::new(Duration::from_secs(60));
        reachability.failed(at(1_000));

        reachability.answered();
        reachability.failed(at(2_000));

        assert_eq!(reachability.unreachable_since(at(2_030)), None);
        assert_eq!(reachability.unreachable_since(at(2_060)), Some(at(2_000)));
    }

    #[test]
    fn a_cluster_is_lost_only_after_failing_for_the_longer_limit() {
        let reachability =
            Reachability::new(Duration::from_secs(60)).lost_after(Duration::from_secs(900));
        reachability.failed(at(1_000));

        assert!(reachability.unreachable_since(at(1_100)).is_some());
        assert_eq!(reachability.lost_since(at(1_899)), None);
        assert_eq!(reachability.lost_since(at(1_900)), Some(at(1_000)));
        reachability.answered();
        assert_eq!(reachability.lost_since(at(5_000)), None);
    }

    #[test]
    fn a_cluster_that_never_failed_is_reachable() {
        assert_eq!(Reachability::default().unreachable_since(at(10_000)), None);
    }
}
