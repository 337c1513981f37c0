//! `--export-rate-limit`: at most N events per window (a minute in Tetragon), the excess
//! dropped and counted; the count of the finished window is reported once it rolls over.
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimiter {
    limit: u64,
    window: Duration,
    start: Instant,
    used: u64,
    dropped: u64,
}

impl RateLimiter {
    pub fn new(limit: u64, window: Duration, now: Instant) -> Self {
        RateLimiter {
            limit,
            window: window.max(Duration::from_millis(1)),
            start: now,
            used: 0,
            dropped: 0,
        }
    }

    /// Ends the current window if it is over; returns the events it dropped, if any.
    pub fn roll(&mut self, now: Instant) -> Option<u64> {
        if now.duration_since(self.start) < self.window {
            return None;
        }
        // Windows are aligned on the first one, so a quiet period does not shift them.
        let elapsed = now.duration_since(self.start).as_nanos();
        let windows = elapsed / self.window.as_nanos();
        let advance = self.window.as_nanos().saturating_mul(windows);
        self.start += Duration::from_nanos(u64::try_from(advance).unwrap_or(u64::MAX));
        self.used = 0;
        let dropped = std::mem::take(&mut self.dropped);
        (dropped > 0).then_some(dropped)
    }

    /// Drops of the current, unfinished window (at shutdown).
    pub fn finish(&mut self) -> Option<u64> {
        let dropped = std::mem::take(&mut self.dropped);
        (dropped > 0).then_some(dropped)
    }

    /// Whether one more event fits in the current window (call [`RateLimiter::roll`] first).
    /// A refused event is counted as dropped.
    pub fn allow(&mut self) -> bool {
        if self.used < self.limit {
            self.used += 1;
            true
        } else {
            self.dropped += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_window_and_reports_drops_once() {
        let t0 = Instant::now();
        let w = Duration::from_secs(60);
        let mut rl = RateLimiter::new(3, w, t0);
        let allowed = (0..10).filter(|_| rl.allow()).count();
        assert_eq!(allowed, 3);
        assert_eq!(rl.roll(t0 + Duration::from_secs(59)), None, "window not over");
        assert_eq!(rl.roll(t0 + w), Some(7));
        assert_eq!(rl.roll(t0 + w + Duration::from_secs(1)), None, "reported once");
        assert!(rl.allow() && rl.allow() && rl.allow() && !rl.allow());
        // Several idle windows later: the one drop is still reported, windows stay aligned.
        assert_eq!(rl.roll(t0 + 5 * w + Duration::from_secs(30)), Some(1));
        assert_eq!(rl.roll(t0 + 6 * w - Duration::from_secs(1)), None);
        assert_eq!(rl.roll(t0 + 6 * w), None, "nothing dropped in that window");
    }

    #[test]
    fn zero_limit_drops_everything() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(0, Duration::from_secs(1), t0);
        assert!(!rl.allow());
        assert_eq!(rl.roll(t0 + Duration::from_secs(1)), Some(1));
        assert!(!rl.allow() && !rl.allow());
        assert_eq!(rl.finish(), Some(2));
        assert_eq!(rl.finish(), None);
    }
}
