//! Waits that double after each failure in a row, up to a bound: how the service backs off
//! everywhere it retries (reconciles, the dispatcher when the cluster cannot be reached, creates
//! the API server refused, webhook deliveries).
//!
//! A pure function of how many attempts failed in a row, so a count kept anywhere (a loop's
//! variable, a row's `attempts` column that outlives restarts) gives the same schedule.

use std::time::Duration;

/// A doubling backoff: `first` after the first failure, twice as long after each further one,
/// never longer than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn doubling(first: Duration, max: Duration) -> Self {
        Backoff { first, max }
    }

    /// The wait after the `failures`-th failure in a row (1 for the first; 0 counts as 1).
    pub fn after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1);
        self.first
            .saturating_mul(2_u32.saturating_pow(doublings))
            .min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(backoff: Backoff, failures: u32) -> Vec<Duration> {
        (1..=failures).map(|failed| backoff.after(failed)).collect()
    }

    #[test]
    fn each_failure_doubles_the_wait_until_the_bound() {
        let backoff = Backoff::doubling(Duration::from_millis(500), Duration::from_secs(30));

        let waits = schedule(backoff, 8);

        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000].map(Duration::from_millis)
        );
    }

    #[test]
    fn no_count_of_failures_overflows_past_the_bound() {
        let backoff = Backoff::doubling(Duration::from_secs(5), Duration::from_secs(3600));

        assert_eq!(backoff.after(32), Duration::from_secs(3600));
        assert_eq!(backoff.after(u32::MAX), Duration::from_secs(3600));
    }

    #[test]
    fn a_count_of_zero_waits_as_long_as_the_first_failure() {
        let backoff = Backoff::doubling(Duration::from_secs(1), Duration::from_secs(30));

        assert_eq!(backoff.after(0), Duration::from_secs(1));
    }

    #[test]
    fn a_bound_below_the_first_wait_wins() {
        let backoff = Backoff::doubling(Duration::from_secs(10), Duration::from_secs(3));

        assert_eq!(schedule(backoff, 3), [Duration::from_secs(3); 3]);
    }
}
