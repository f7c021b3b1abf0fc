//! How the service keeps glibc's allocator from holding memory it no longer uses.
//!
//! glibc's malloc gives a thread that meets contention an arena of its own, up to eight per
//! CPU, and gives freed memory back to the system only from the top of each heap. A tokio
//! service moves its tasks between worker threads, so what a burst of requests allocated ends
//! up spread over many arenas and stays resident long after the burst. The service therefore
//! limits itself to two arenas (an operator's `MALLOC_ARENA_MAX` still wins) and, once the
//! arenas hold much more freed memory than they did after the last trim, hands it back with
//! `malloc_trim`. BENCHMARKS.md ("Memory of the service process") has the figures.
//!
//! On other C libraries (musl) both are no-ops. The one module allowed `unsafe`: each block is
//! a call into glibc with no precondition on the caller's memory.
#![allow(unsafe_code)]

use std::time::Duration;

/// Arenas when the environment sets none: two measured as fast as glibc's default on the
/// accept benchmark, with less memory held.
const ARENAS: i32 = 2;

/// How often the allocator's figures are read (two reads of counters; a trim is rarer).
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Freed memory held beyond what the last trim left that is worth a trim.
const TRIM_ABOVE: u64 = 8 << 20;

/// Limits glibc to [`ARENAS`] malloc arenas unless `MALLOC_ARENA_MAX` says otherwise.
/// Call it first thing in `main`, before any thread is started.
pub fn limit_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of the allocator; it has no memory preconditions.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// What the allocator holds: bytes in use, and bytes resident but free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    resident: u64,
    in_use: u64,
}

impl Held {
    /// Resident bytes that are not in use: freed memory not yet given back, plus everything
    /// outside the heap (code, stacks), which no trim changes.
    fn slack(self) -> u64 {
        self.resident.saturating_sub(self.in_use)
    }
}

/// Whether to trim now, given the slack the last trim left: only when freed memory grew by
/// [`TRIM_ABOVE`] since, so a service at rest is never trimmed again and again.
fn worth_trimming(now: Held, after_last_trim: u64) -> bool {
    now.slack() > after_last_trim.saturating_add(TRIM_ABOVE)
}

/// Gives freed memory back to the system whenever enough of it piles up, until aborted.
pub async fn keep_trimmed() {
    let Some(first) = held() else {
        return;
    };
    let mut after_last_trim = first.slack();
    let mut every = tokio::time::interval(CHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(now) = held() else {
            return;
        };
        if !worth_trimming(now, after_last_trim) {
            // Memory in use may also have grown into the slack: keep the floor honest.
            after_last_trim = after_last_trim.min(now.slack());
            continue;
        }
        // A trim walks every arena's free chunks, holding each arena's lock: off the workers.
        let trimmed = tokio::task::spawn_blocking(|| {
            trim();
            held()
        })
        .await;
        if let Ok(Some(after)) = trimmed {
            tracing::debug!(
                before_mib = now.resident >> 20,
                after_mib = after.resident >> 20,
                "gave freed memory back to the system"
            );
            after_last_trim = after.slack();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn held() -> Option<Held> {
    // SAFETY: mallinfo2 only reads the allocator's own counters.
    let info = unsafe { libc::mallinfo2() };
    let in_use = u64::try_from(info.uordblks.saturating_add(info.hblkhd)).ok()?;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
    Some(Held {
        resident: pages.saturating_mul(page),
        in_use,
    })
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn held() -> Option<Held> {
    None
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only returns free pages of the allocator's own heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn held(resident: u64, in_use: u64) -> Held {
        Held {
            resident: resident * MIB,
            in_use: in_use * MIB,
        }
    }

    #[test]
    fn a_burst_freed_is_trimmed_and_a_service_at_rest_is_not_trimmed_again() {
        // After the last trim: 20 MiB resident, 8 in use (12 of code, stacks and fragments).
        let after_trim = held(20, 8).slack();
        assert!(!worth_trimming(held(20, 8), after_trim));
        // Busy: more in use, little freed.
        assert!(!worth_trimming(held(80, 70), after_trim));
        // The burst ended: 60 MiB freed and still resident.
        assert!(worth_trimming(held(80, 10), after_trim));
        // Just under the threshold.
        assert!(!worth_trimming(held(27, 8), after_trim));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn memory_freed_in_many_small_blocks_goes_back_to_the_system() {
        let before = super::held().expect("glibc's counters");
        let blocks: Vec<Vec<u8>> = (0..20_000).map(|i| vec![(i % 251) as u8; 4096]).collect();
        // Keep every tenth block, so no heap can shrink from its top alone.
        let kept: Vec<Vec<u8>> = blocks.into_iter().step_by(10).collect();
        let freed = super::held().expect("glibc's counters");
        trim();
        let trimmed = super::held().expect("glibc's counters");
        assert!(
            trimmed.resident + 40 * MIB < freed.resident,
            "before {before:?}, freed {freed:?}, trimmed {trimmed:?}"
        );
        drop(kept);
    }
}
