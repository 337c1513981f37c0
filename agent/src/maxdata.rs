//! maxData: a char_buf argument recorded up to `DATA_MAX` bytes arrives in pieces. The
//! kernel sends the bytes after the first 1024 as data messages, then the event, whose
//! argument (`ArgValue::Data`) holds the first bytes and a descriptor naming the messages
//! (thread id + id). This joins them back into one `ArgValue::Bytes` before the event is
//! built.
//!
//! Memory is bounded: pending messages are capped in bytes and forgotten after a timeout
//! (their event was lost, or its policy went away). What is thrown away is counted, and
//! an argument whose bytes are not all there goes out as truncated (`orig_size` = the real
//! size) with the bytes that are, in order, never with a hole in the middle.
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::abi::{ArgValue, DataRecord, GenericRecord, ARG_TRUNCATED, DATA_MAX};
use crate::stats::Stats;

/// Bytes of data messages held at once while waiting for their events.
pub const PENDING_BYTES_MAX: usize = 64 << 20;
/// How long data messages wait for their event. The kernel sends the event right after
/// them, so only a lost event (or an unloaded policy) leaves them waiting this long.
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(10);

struct Pending {
    /// Chunks by their offset in the whole buffer.
    chunks: BTreeMap<u32, Vec<u8>>,
    bytes: usize,
    since: Instant,
}

pub struct Reassembly {
    /// By (thread id, data id).
    pending: HashMap<(u32, u64), Pending>,
    bytes: usize,
    max_bytes: usize,
    timeout: Duration,
}

impl Default for Reassembly {
    fn default() -> Self {
        Reassembly::new(PENDING_BYTES_MAX, PENDING_TIMEOUT)
    }
}

impl Reassembly {
    pub fn new(max_bytes: usize, timeout: Duration) -> Self {
        Reassembly { pending: HashMap::new(), bytes: 0, max_bytes, timeout }
    }

    /// Bytes held now.
    pub fn pending_bytes(&self) -> usize {
        self.bytes
    }

    /// Holds a data message until its event comes. Over the cap, the oldest pending
    /// buffers are discarded first (counted in `data_discarded`, per message).
    pub fn add(&mut self, rec: DataRecord, now: Instant, stats: &Stats) {
        stats.data_messages.fetch_add(1, Relaxed);
        let len = rec.bytes.len();
        if len > self.max_bytes {
            stats.data_discarded.fetch_add(1, Relaxed);
            return;
        }
        while self.bytes + len > self.max_bytes {
            let oldest = self.pending.iter().min_by_key(|(_, p)| p.since).map(|(k, _)| *k);
            match oldest {
                Some(key) => self.discard(key, stats),
                None => break,
            }
        }
        let entry = self.pending.entry((rec.tid, rec.id)).or_insert_with(|| Pending {
            chunks: BTreeMap::new(),
            bytes: 0,
            since: now,
        });
        entry.bytes += len;
        self.bytes += len;
        if let Some(old) = entry.chunks.insert(rec.offset, rec.bytes) {
            // The kernel never sends an offset twice; count the replaced one as discarded.
            entry.bytes -= old.len();
            self.bytes -= old.len();
            stats.data_discarded.fetch_add(1, Relaxed);
        }
    }

    fn discard(&mut self, key: (u32, u64), stats: &Stats) {
        if let Some(p) = self.pending.remove(&key) {
            self.bytes -= p.bytes;
            stats.data_discarded.fetch_add(p.chunks.len() as u64, Relaxed);
        }
    }

    /// Forgets data messages whose event did not come within the timeout.
    pub fn expire(&mut self, now: Instant, stats: &Stats) {
        let timeout = self.timeout;
        let old: Vec<_> =
            self.pending.iter().filter(|(_, p)| now.duration_since(p.since) >= timeout).map(|(k, _)| *k).collect();
        for key in old {
            self.discard(key, stats);
        }
    }

    /// Replaces every maxData argument of the event by its whole bytes: the inline ones,
    /// then the data messages in offset order up to the first gap. A buffer shorter than
    /// its real size is marked truncated with that size; one that is short of what the
    /// kernel meant to send (`min(size, DATA_MAX)`) counts in `data_incomplete`.
    pub fn complete(&mut self, rec: &mut GenericRecord, stats: &Stats) {
        for arg in &mut rec.args {
            let ArgValue::Data(desc, inline) = &mut arg.value else { continue };
            let mut bytes = std::mem::take(inline);
            let mut chunks = BTreeMap::new();
            if let Some(p) = self.pending.remove(&(rec.msg.tid, desc.id)) {
                self.bytes -= p.bytes;
                chunks = p.chunks;
            }
            let mut unused = 0;
            for (offset, chunk) in chunks {
                if offset as usize == bytes.len() {
                    bytes.extend_from_slice(&chunk);
                } else {
                    unused += 1; // after a gap (or overlapping): it cannot be placed
                }
            }
            stats.data_discarded.fetch_add(unused, Relaxed);
            let wanted = desc.size.min(DATA_MAX);
            if (bytes.len() as u64) < wanted {
                if stats.data_incomplete.fetch_add(1, Relaxed) == 0 {
                    tracing::warn!(
                        "maxData argument incomplete: {} of {wanted} bytes (kernel sent {} after the inline ones, error {})",
                        bytes.len(),
                        desc.sent,
                        desc.error
                    );
                }
            }
            if (bytes.len() as u64) < desc.size {
                arg.flags |= ARG_TRUNCATED;
            }
            arg.aux = u32::try_from(desc.size).unwrap_or(u32::MAX);
            arg.value = ArgValue::Bytes(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{ArgData, MsgGeneric, RecordedArg};

    /// A buffer of `n` bytes that does not repeat within 256 KiB.
    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i * 7 + i / 251) % 256) as u8).collect()
    }

    fn event(tid: u32, desc: ArgData, inline: &[u8]) -> GenericRecord {
        GenericRecord {
            msg: MsgGeneric { tid, ..Default::default() },
            args: vec![
                RecordedArg { value: ArgValue::Int(3), flags: 0, aux: 0 },
                RecordedArg { value: ArgValue::Data(desc, inline.to_vec()), flags: 0, aux: 0 },
            ],
            kernel_stack: Vec::new(),
            user_stack: Vec::new(),
        }
    }

    fn chunk(tid: u32, id: u64, buf: &[u8], from: usize, to: usize) -> DataRecord {
        DataRecord { tid, id, offset: from as u32, bytes: buf[from..to].to_vec() }
    }

    fn counters(s: &Stats) -> (u64, u64, u64) {
        (s.data_messages.load(Relaxed), s.data_discarded.load(Relaxed), s.data_incomplete.load(Relaxed))
    }

    #[test]
    fn joins_chunks_in_offset_order_whatever_their_arrival() {
        let stats = Stats::default();
        let mut r = Reassembly::default();
        let buf = pattern(100_000);
        let now = Instant::now();
        // Out of order, and another thread's buffer in between.
        r.add(chunk(7, 1, &buf, 33_760, 66_496), now, &stats);
        r.add(chunk(8, 1, &buf, 1024, 2000), now, &stats);
        r.add(chunk(7, 1, &buf, 66_496, 100_000), now, &stats);
        r.add(chunk(7, 1, &buf, 1024, 33_760), now, &stats);
        let desc = ArgData { id: 1, size: 100_000, sent: 98_976, error: 0 };
        let mut ev = event(7, desc, &buf[..1024]);
        r.complete(&mut ev, &stats);
        assert_eq!(ev.args[0].value, ArgValue::Int(3), "other arguments are untouched");
        assert_eq!(ev.args[1].value, ArgValue::Bytes(buf.clone()));
        assert_eq!((ev.args[1].flags, ev.args[1].aux), (0, 100_000));
        assert_eq!(counters(&stats), (4, 0, 0));
        assert_eq!(r.pending_bytes(), 976, "thread 8's chunk waits for its own event");
    }

    #[test]
    fn a_missing_chunk_cuts_the_buffer_there_and_is_counted() {
        let stats = Stats::default();
        let mut r = Reassembly::default();
        let buf = pattern(80_000);
        let now = Instant::now();
        r.add(chunk(7, 2, &buf, 1024, 33_760), now, &stats);
        r.add(chunk(7, 2, &buf, 66_496, 80_000), now, &stats); // 33_760..66_496 never came
        let mut ev = event(7, ArgData { id: 2, size: 80_000, sent: 78_976, error: 0 }, &buf[..1024]);
        r.complete(&mut ev, &stats);
        assert_eq!(ev.args[1].value, ArgValue::Bytes(buf[..33_760].to_vec()));
        assert_eq!((ev.args[1].flags, ev.args[1].aux), (ARG_TRUNCATED, 80_000));
        assert_eq!(counters(&stats), (2, 1, 1), "the chunk after the gap is discarded");
        assert_eq!(r.pending_bytes(), 0);
    }

    #[test]
    fn a_kernel_side_failure_gives_what_was_sent_marked_truncated() {
        let stats = Stats::default();
        let mut r = Reassembly::default();
        let buf = pattern(50_000);
        r.add(chunk(9, 3, &buf, 1024, 33_760), Instant::now(), &stats);
        // The ring buffer refused the second chunk (-EAGAIN): 32,736 bytes were sent.
        let mut ev = event(9, ArgData { id: 3, size: 50_000, sent: 32_736, error: -11 }, &buf[..1024]);
        r.complete(&mut ev, &stats);
        assert_eq!(ev.args[1].value, ArgValue::Bytes(buf[..33_760].to_vec()));
        assert_eq!((ev.args[1].flags, ev.args[1].aux), (ARG_TRUNCATED, 50_000));
        assert_eq!(counters(&stats), (1, 0, 1));
    }

    #[test]
    fn beyond_the_limit_is_truncated_but_complete() {
        let stats = Stats::default();
        let mut r = Reassembly::default();
        let buf = pattern(DATA_MAX as usize);
        let mut from = 1024;
        while from < buf.len() {
            let to = (from + 32_736).min(buf.len());
            r.add(chunk(4, 5, &buf, from, to), Instant::now(), &stats);
            from = to;
        }
        let mut ev = event(4, ArgData { id: 5, size: 400_000, sent: DATA_MAX as u32 - 1024, error: 0 }, &buf[..1024]);
        r.complete(&mut ev, &stats);
        assert_eq!(ev.args[1].value, ArgValue::Bytes(buf));
        assert_eq!((ev.args[1].flags, ev.args[1].aux), (ARG_TRUNCATED, 400_000));
        assert_eq!(counters(&stats), (10, 0, 0), "cut at the limit, as asked: not incomplete");
    }

    #[test]
    fn orphans_time_out_and_the_cap_discards_the_oldest() {
        let stats = Stats::default();
        let mut r = Reassembly::new(10_000, Duration::from_secs(10));
        let buf = pattern(20_000);
        let t0 = Instant::now();
        r.add(chunk(1, 1, &buf, 0, 4000), t0, &stats);
        r.add(chunk(2, 1, &buf, 0, 4000), t0 + Duration::from_secs(1), &stats);
        // Over the cap: thread 1's buffer (the oldest) goes.
        r.add(chunk(3, 1, &buf, 0, 4000), t0 + Duration::from_secs(2), &stats);
        assert_eq!((r.pending_bytes(), counters(&stats)), (8000, (3, 1, 0)));
        r.add(chunk(4, 1, &buf, 0, 20_000), t0, &stats); // larger than the cap: dropped
        assert_eq!((r.pending_bytes(), counters(&stats)), (8000, (4, 2, 0)));
        r.expire(t0 + Duration::from_millis(11_500), &stats);
        assert_eq!((r.pending_bytes(), counters(&stats)), (4000, (4, 3, 0)), "thread 2's timed out");
        r.expire(t0 + Duration::from_secs(12), &stats);
        assert_eq!((r.pending_bytes(), counters(&stats)), (0, (4, 4, 0)));
        // The event of a discarded buffer still goes out, marked truncated.
        let mut ev = event(1, ArgData { id: 1, size: 5000, sent: 3976, error: 0 }, &buf[..1024]);
        r.complete(&mut ev, &stats);
        assert_eq!(ev.args[1].value, ArgValue::Bytes(buf[..1024].to_vec()));
        assert_eq!((ev.args[1].flags, ev.args[1].aux), (ARG_TRUNCATED, 5000));
        assert_eq!(counters(&stats), (4, 4, 1));
    }
}
