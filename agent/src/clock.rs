//! Kernel time (bpf_ktime_get_ns, CLOCK_MONOTONIC) to wall-clock time.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Converts monotonic kernel timestamps to wall-clock time with an offset taken once.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Wall-clock nanoseconds at monotonic zero.
    offset_ns: i128,
}

impl Clock {
    pub fn new() -> Self {
        let mono = monotonic_ns();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        Clock { offset_ns: wall as i128 - mono as i128 }
    }

    pub fn wall(&self, ktime: u64) -> SystemTime {
        let ns = (self.offset_ns + ktime as i128).max(0) as u128;
        UNIX_EPOCH + Duration::from_nanos(ns.min(u64::MAX as u128) as u64)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// The clock bpf_ktime_get_ns() reads.
pub fn monotonic_ns() -> u64 {
    // CLOCK_MONOTONIC always exists; the error arm cannot happen.
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map_or(0, |ts| ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
}
