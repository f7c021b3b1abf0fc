//! Rate limiting: a token bucket per key, in memory, so one client (or one runaway script)
//! cannot starve the others. Keyed by token for authenticated requests, and by client address
//! for unknown tokens (checked before the token is looked up). Each replica limits on its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Keys kept before idle ones (whose bucket has refilled) are dropped, so a stream of new keys
/// (addresses sending unknown tokens) cannot grow the map without bound.
const PRUNE_ABOVE: usize = 10_000;

/// Allows `per_minute` requests a minute per key, in bursts of up to a minute's worth.
#[derive(Clone)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl RateLimiter {
    /// `per_minute` of 0 turns limiting off.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            buckets: Arc::default(),
        }
    }

    /// How long until `key` may send again, if its budget is spent now; takes nothing.
    pub fn exhausted(&self, key: &str, now: Instant) -> Option<Duration> {
        if self.per_minute == 0 {
            return None;
        }
        let per_second = f64::from(self.per_minute) / 60.0;
        let buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.get(key)?;
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        let tokens = bucket.tokens + elapsed * per_second;
        (tokens < 1.0).then(|| Duration::from_secs_f64((1.0 - tokens) / per_second))
    }

    /// Takes one request from `key`'s budget, or says how long until one is available.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        // A panic elsewhere while holding the lock leaves the buckets as they were: keep using
        // them rather than letting every request through.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            let full = Duration::from_secs(60);
            buckets.retain(|_, bucket| now.saturating_duration_since(bucket.refilled) < full);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_gets_its_budget_then_waits_for_the_refill() {
        let limiter = RateLimiter::new(60);
        let start = Instant::now();

        for _ in 0..60 {
            assert!(limiter.check("a", start).is_ok());
        }
        let wait = limiter.check("a", start).expect_err("limited");

        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert!(
            limiter.check("b", start).is_ok(),
            "tokens have their own budgets"
        );
        assert!(limiter.check("a", start + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn a_poisoned_lock_still_limits() {
        let limiter = RateLimiter::new(1);
        let start = Instant::now();
        let buckets = limiter.buckets.clone();
        let poisoned = std::thread::spawn(move || {
            let _held = buckets.lock();
            panic!("poisoning the lock on purpose");
        })
        .join();
        assert!(poisoned.is_err() && limiter.buckets.is_poisoned());

        assert!(limiter.check("a", start).is_ok());

        assert!(limiter.check("a", start).is_err(), "the budget still holds");
    }

    #[test]
    fn an_exhausted_key_is_told_so_without_spending_anything() {
        let limiter = RateLimiter::new(2);
        let start = Instant::now();

        assert_eq!(limiter.exhausted("a", start), None, "an unknown key is not");
        assert!(limiter.check("a", start).is_ok() && limiter.check("a", start).is_ok());
        let wait = limiter.exhausted("a", start).expect("spent");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(
            limiter.exhausted("a", start + Duration::from_secs(30)),
            None
        );
    }

    #[test]
    fn idle_keys_are_dropped_once_there_are_many() {
        let limiter = RateLimiter::new(60);
        let start = Instant::now();
        for n in 0..=PRUNE_ABOVE {
            let _ = limiter.check(&format!("address-{n}"), start);
        }

        let _ = limiter.check("late", start + Duration::from_secs(120));

        assert_eq!(limiter.buckets.lock().map(|b| b.len()).unwrap_or(0), 1);
    }

    #[test]
    fn zero_turns_limiting_off() {
        let limiter = RateLimiter::new(0);
        let now = Instant::now();

        assert!((0..10_000).all(|_| limiter.check("a", now).is_ok()));
    }
}
