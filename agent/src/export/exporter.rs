//! The JSON export as a bus subscriber: its own thread and bounded queue, field filters,
//! `--export-rate-limit`, then the rotating [`JsonWriter`].
//!
//! Allow/deny lists are checked by the bus before enqueueing (see [`crate::bus`]);
//! redaction happened once before publishing. Lines are encoded here, on the export's
//! thread, with the `process`/`parent` text of recent processes reused
//! ([`LineEncoder`]).
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use tetra_proto::filter::FieldFilters;
use tetra_proto::tetragon::{get_events_response::Event, GetEventsResponse, RateLimitInfo};

use super::json::JsonWriter;
use super::line::LineEncoder;
use super::ratelimit::RateLimiter;
use crate::bus::{EventBatch, SharedEvent, Subscription};
use crate::stats::Stats;

pub struct JsonExporter {
    pub writer: JsonWriter,
    pub fields: FieldFilters,
    pub limiter: Option<RateLimiter>,
    pub node: String,
    pub stats: Arc<Stats>,
    pub lines: LineEncoder,
}

/// The event Tetragon emits when events were dropped on purpose or for lack of room.
pub fn rate_limit_info(node: &str, dropped: u64) -> GetEventsResponse {
    GetEventsResponse {
        event: Some(Event::RateLimitInfo(RateLimitInfo {
            number_of_dropped_process_events: dropped,
        })),
        node_name: node.to_string(),
        time: Some(SystemTime::now().into()),
        ..Default::default()
    }
}

impl JsonExporter {
    /// Runs on its own thread until the bus closes the queue and it is drained.
    pub fn spawn(
        self,
        queue: Receiver<EventBatch>,
        sub: Subscription,
    ) -> std::io::Result<JoinHandle<()>> {
        thread::Builder::new().name("tetrad-export".into()).spawn(move || self.run(queue, sub))
    }

    fn write(&mut self, event: &GetEventsResponse) {
        let line = tetra_proto::json::to_line(event);
        Self::write_line(&mut self.writer, &self.stats, &[line.as_bytes()]);
    }

    /// Writes the line given in pieces and counts it (an associated function, so the
    /// pieces may borrow the exporter's line encoder).
    fn write_line(writer: &mut JsonWriter, stats: &Stats, parts: &[&[u8]]) {
        let done = writer.write_parts(parts);
        // The line is taken either way: an error is of an earlier write.
        let bytes = parts.iter().map(|p| p.len() as u64).sum::<u64>() + 1;
        stats.exported.fetch_add(1, Relaxed);
        stats.exported_bytes.fetch_add(bytes, Relaxed);
        Self::count_failure(stats, done);
    }

    /// Counts a failed write of the export (logged the first time).
    fn count_failure(stats: &Stats, done: std::io::Result<()>) {
        if let Err(e) = done {
            if stats.export_errors.fetch_add(1, Relaxed) == 0 {
                tracing::error!("writing the JSON export: {e}");
            }
        }
    }

    /// Reports the drops of a finished window (or, at shutdown, of the current one).
    fn roll_window(&mut self, now: Instant, last: bool) {
        let dropped =
            self.limiter.as_mut().and_then(|l| if last { l.finish() } else { l.roll(now) });
        if let Some(dropped) = dropped {
            let info = rate_limit_info(&self.node, dropped);
            self.write(&info);
            self.stats.export_rate_limit_info.fetch_add(1, Relaxed);
        }
    }

    fn handle(&mut self, mut event: SharedEvent) {
        self.roll_window(Instant::now(), false);
        if let Some(limiter) = self.limiter.as_mut() {
            if !limiter.allow() {
                self.stats.export_rate_limited.fetch_add(1, Relaxed);
                return;
            }
        }
        // The event itself when no gRPC client holds it any more, else a copy.
        let published = Arc::make_mut(&mut event);
        if !self.fields.is_empty() {
            let event = published.event_mut();
            self.fields.apply(event);
            self.write(event);
        } else {
            let (event, shown) = published.parts_mut();
            let line = self.lines.encode(event, shown);
            Self::write_line(&mut self.writer, &self.stats, line.parts());
        }
    }

    fn run(mut self, queue: Receiver<EventBatch>, sub: Subscription) {
        loop {
            match queue.recv_timeout(Duration::from_millis(200)) {
                Ok(batch) => {
                    batch.items.into_iter().for_each(|event| self.handle(event));
                    drop(batch.room); // its room in the queue is free again
                    // Hand the lines over once the burst is over, so a quiet period is
                    // never buffered; having caught up, report what our own queue could
                    // not hold.
                    if queue.is_empty() {
                        let lost = sub.state.take_unreported();
                        if lost > 0 {
                            self.write(&rate_limit_info(&self.node, lost));
                        }
                        self.writer.hand_over();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.roll_window(Instant::now(), false);
                    Self::count_failure(&self.stats, self.writer.idle());
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.roll_window(Instant::now(), true);
        let lost = sub.state.dropped.load(Relaxed);
        if lost > 0 {
            tracing::warn!("the JSON export queue overflowed: {lost} events not exported");
        }
        Self::count_failure(&self.stats, self.writer.flush());
    }
}
