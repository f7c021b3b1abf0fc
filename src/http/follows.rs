//! A cap on the log follows each token user keeps open at once.
//!
//! A follow holds a connection to the API server (and one of ours) for as long as the pod runs;
//! without a cap, one script opening follows in a loop could hold them all. Past the cap a
//! follow is refused with 429 until one of the open ones ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open follows per token user.
#[derive(Clone)]
pub struct FollowLimits {
    per_user: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open follow; the count goes down when it is dropped (the follow's body ended or its
/// client went away).
pub struct FollowSlot {
    user: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl FollowLimits {
    /// `per_user` follows at once for each token user; 0 for no cap.
    pub fn new(per_user: usize) -> Self {
        FollowLimits {
            per_user,
            open: Arc::default(),
        }
    }

    /// A slot for one more follow of `user`'s, or `None` if they have as many open as allowed.
    pub fn take(&self, user: &str) -> Option<FollowSlot> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(user.to_owned()).or_default();
        if self.per_user != 0 && *count >= self.per_user {
            return None;
        }
        *count += 1;
        Some(FollowSlot {
            user: user.to_owned(),
            open: self.open.clone(),
        })
    }

    pub fn limit(&self) -> usize {
        self.per_user
    }

    /// Follows open now, of every user (for `/metrics`).
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .sum()
    }
}

impl Drop for FollowSlot {
    fn drop(&mut self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_gets_the_cap_and_a_closed_follow_frees_its_slot() {
        let limits = FollowLimits::new(2);

        let first = limits.take("alice");
        let second = limits.take("alice");
        let third = limits.take("alice");
        let bobs = limits.take("bob");

        assert!(first.is_some() && second.is_some() && bobs.is_some());
        assert!(third.is_none(), "a third follow of alice's is refused");
        assert_eq!(limits.open(), 3);
        drop(first);
        assert_eq!(limits.open(), 2);
        assert!(
            limits.take("alice").is_some(),
            "a closed follow frees its slot"
        );
    }

    #[test]
    fn no_cap_when_the_limit_is_zero() {
        let limits = FollowLimits::new(0);

        let slots: Vec<_> = (0..100).filter_map(|_| limits.take("alice")).collect();

        assert_eq!(slots.len(), 100);
    }
}
