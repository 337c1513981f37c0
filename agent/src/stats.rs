//! Counters of what the agent received, exported and lost, by cause.
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::abi::DROP_CAUSES;

/// GetUrl and DnsLookup (`user_actions`), as metrics label them; the `user_actions_*`
/// arrays of [`Stats`] are in this order.
pub const USER_ACTION_KINDS: [&str; 2] = ["geturl", "dnslookup"];

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
    /// Events the JSON exporter lost because its own queue was full.
    pub export_queue_full: AtomicU64,
    /// Microseconds the event thread waited for room in the JSON export's queue (while
    /// it waits, a burst's backlog stays in the kernel ring buffer).
    pub export_waited_us: AtomicU64,
    /// Events the JSON exporter dropped to stay under `--export-rate-limit`.
    pub export_rate_limited: AtomicU64,
    /// `rate_limit_info` events written to the JSON export.
    pub export_rate_limit_info: AtomicU64,
    /// Events not delivered to slow gRPC clients (all clients together).
    pub grpc_client_drops: AtomicU64,
    /// GetEvents streams ever opened.
    pub grpc_clients_total: AtomicU64,
    /// Events held until the pod of their container was known.
    pub pod_held: AtomicU64,
    /// Events of a container whose pod stayed unknown (hold timed out or full): sent bare.
    pub pod_unenriched: AtomicU64,
    /// GetUrl and DnsLookup requests ([`USER_ACTION_KINDS`] order): answered, failed
    /// (error or timeout), skipped (the request queue was full).
    pub user_actions_done: [AtomicU64; 2],
    pub user_actions_failed: [AtomicU64; 2],
    pub user_actions_skipped: [AtomicU64; 2],
    /// Events Post's rateLimit suppressed in the kernel, all loaded policies (read from
    /// the policies' counters when the agent stops).
    pub rate_limited: AtomicU64,
    /// maxData: data messages received, those thrown away (their event never came in
    /// time, the pending cap, or not placeable after a gap), and arguments exported
    /// with fewer bytes than the kernel meant to send (marked truncated).
    pub data_messages: AtomicU64,
    pub data_discarded: AtomicU64,
    pub data_incomplete: AtomicU64,
    /// Bytes of data messages between the reader and the event thread (a gauge).
    pub data_queued_bytes: AtomicU64,
}

impl Stats {
    /// Every event lost before the bus (kernel, reader queue, decoding): these never reach
    /// any exporter. Per-subscriber losses after the bus are counted separately.
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
        write!(f, " lost_queue_full={} lost_decode_error={}", v(&self.queue_full), v(&self.decode_errors))?;
        write!(
            f,
            " export_queue_full={} export_waited_us={} export_rate_limited={} grpc_client_drops={} \
             grpc_clients_total={}",
            v(&self.export_queue_full),
            v(&self.export_waited_us),
            v(&self.export_rate_limited),
            v(&self.grpc_client_drops),
            v(&self.grpc_clients_total),
        )?;
        write!(f, " pod_held={} pod_unenriched={}", v(&self.pod_held), v(&self.pod_unenriched))?;
        write!(f, " rate_limited={}", v(&self.rate_limited))?;
        for (i, kind) in USER_ACTION_KINDS.iter().enumerate() {
            write!(
                f,
                " {kind}_done={} {kind}_failed={} {kind}_skipped={}",
                v(&self.user_actions_done[i]),
                v(&self.user_actions_failed[i]),
                v(&self.user_actions_skipped[i]),
            )?;
        }
        write!(
            f,
            " data_messages={} data_discarded={} data_incomplete={}",
            v(&self.data_messages),
            v(&self.data_discarded),
            v(&self.data_incomplete)
        )
    }
}
