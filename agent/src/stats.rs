//! Counters of what the agent received, exported and lost, by cause.
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::abi::DROP_CAUSES;

#[derive(Default)]
pub struct Stats {
    pub ringbuf_received: AtomicU64,
    /// Records the reader could not hand on because the event queue was full.
    pub queue_full: AtomicU64,
    pub decode_errors: AtomicU64,
    /// Events lost in the kernel, per `enum tetra_drop`, as last read from the map.
    pub kernel_drops: [AtomicU64; DROP_CAUSES.len()],
    pub exec_events: AtomicU64,
    pub exit_events: AtomicU64,
    pub exported: AtomicU64,
    pub exported_bytes: AtomicU64,
    pub export_errors: AtomicU64,
    pub cache_misses: AtomicU64,
    pub cache_evictions: AtomicU64,
    pub cache_size: AtomicU64,
}

impl Stats {
    /// Every lost event, whatever the cause.
    pub fn lost(&self) -> u64 {
        self.queue_full.load(Relaxed)
            + self.decode_errors.load(Relaxed)
            + self.kernel_drops.iter().map(|c| c.load(Relaxed)).sum::<u64>()
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = |c: &AtomicU64| c.load(Relaxed);
        write!(
            f,
            "received={} exec={} exit={} exported={} exported_bytes={} export_errors={} \
             cache_size={} cache_misses={} cache_evictions={} lost={}",
            v(&self.ringbuf_received),
            v(&self.exec_events),
            v(&self.exit_events),
            v(&self.exported),
            v(&self.exported_bytes),
            v(&self.export_errors),
            v(&self.cache_size),
            v(&self.cache_misses),
            v(&self.cache_evictions),
            self.lost(),
        )?;
        for (name, c) in DROP_CAUSES.iter().zip(&self.kernel_drops) {
            write!(f, " lost_{name}={}", v(c))?;
        }
        write!(f, " lost_queue_full={} lost_decode_error={}", v(&self.queue_full), v(&self.decode_errors))
    }
}
