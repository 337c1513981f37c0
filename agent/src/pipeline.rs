//! The event pipeline: ring buffer reader (this thread) -> bounded queue -> processing
//! thread (process cache, event building, redaction) -> event bus (fan-out to the JSON
//! export and gRPC clients, see [`crate::bus`]).
//!
//! A full queue makes the reader wait: the backlog then stays in the kernel ring buffer,
//! and what it cannot hold is refused there and counted per kind. Dropping in user space
//! instead would lose events the ring buffer still had room for.
//!
//! Records cross to the processing thread in batches (those of one ring buffer poll, up
//! to [`BATCH_MAX`]), and the events of one batch go to the bus together: a burst costs
//! one wake-up per batch instead of one per record, and a lone record still goes at once.
//! The queue only takes memory for what it holds (see [`crate::bus::Room`]).
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use libbpf_rs::RingBufferBuilder;
use tetra_proto::filter::Redactor;

use crate::abi::{self, Record};
use crate::bus::{Batch, Bus, Room, SharedEvent};
use crate::events::{EventBuilder, Published};
use crate::k8s::enrich::{Enricher, Subject};
use crate::maxdata::Reassembly;
use crate::process::cache::ProcessCache;
use crate::process::Process;
use crate::sensors::generic::{handle_generic, PolicyTable};
use crate::sensors::process::ProcessSensor;
use crate::stats::Stats;
use crate::user_actions::UserActions;

pub struct Processor {
    pub cache: ProcessCache,
    pub builder: EventBuilder,
    /// `--redaction-filters`, applied once here so every exporter sees the redacted event.
    pub redactor: Redactor,
    pub bus: Arc<Bus>,
    pub stats: Arc<Stats>,
    /// Loaded policies, to name the policy and hook of a `Record::Generic`.
    pub policies: Arc<PolicyTable>,
    /// Container (`process.docker`) and, with `--enable-k8s-api`, pod enrichment.
    pub enrich: Option<Enricher>,
    /// Runs the GetUrl/DnsLookup actions of policy hits, off this thread.
    pub user_actions: Option<UserActions>,
    /// maxData arguments waiting for their data messages' events.
    pub data: Reassembly,
    /// Events of the batch being handled, published together once it is done.
    pub published: Vec<SharedEvent>,
}

fn subject(p: &Process) -> Option<Subject> {
    Some(Subject { cgroup_id: p.cgroup_id, pid: p.pid, start_ktime: p.start_ktime })
}

impl Processor {
    /// Publishes `event` (`whom`: its process and parent), once enriched.
    fn export(&mut self, event: Published, whom: [Option<Subject>; 2]) {
        // Shared from here on, so the ~2.7 KB message is not copied again on its way
        // through enrichment, the batch and the bus to the exporters.
        let event = Arc::new(event);
        match &mut self.enrich {
            None => self.publish(event),
            Some(k8s) => {
                let mut ready = Vec::new();
                k8s.submit(event, whom, &mut ready);
                ready.into_iter().for_each(|e| self.publish(e));
            }
        }
    }

    /// Publishes held events that are ready (or all of them, when `flush`).
    fn release_held(&mut self, flush: bool) {
        let Some(k8s) = &mut self.enrich else { return };
        let mut ready = Vec::new();
        k8s.release(Instant::now(), flush, &mut ready);
        ready.into_iter().for_each(|e| self.publish(e));
    }

    fn publish(&mut self, mut event: SharedEvent) {
        if !self.redactor.is_empty() {
            self.redactor.apply(Arc::make_mut(&mut event).event_mut());
        }
        self.published.push(event);
    }

    /// Hands the events of the batch to the bus, and the process cache's figures to the
    /// metrics.
    fn flush(&mut self) {
        if !self.published.is_empty() {
            self.bus.wait_for_export(self.published.len(), EXPORT_PATIENCE);
            self.bus.publish_all(self.published.drain(..));
        }
        let cs = self.cache.stats();
        self.stats.cache_size.store(cs.size as u64, Relaxed);
        self.stats.cache_misses.store(cs.misses, Relaxed);
        self.stats.cache_evictions.store(cs.evictions, Relaxed);
    }

    /// Handles one record; its events are published by the next [`Processor::flush`].
    pub fn handle(&mut self, record: Record) {
        match record {
            Record::Clone(m) => self.cache.on_clone(m.pid, m.ppid, m.hdr.ktime),
            Record::Exec(rec) => {
                let process = Process::from_exec(&self.builder.node, &rec);
                let (process, parent) = self.cache.on_exec(process);
                let event = self.builder.exec(&process, parent.as_ref());
                self.stats.exec_events.fetch_add(1, Relaxed);
                let parent = parent.and_then(|p| subject(&p.process));
                self.export(event.into(), [subject(&process.process), parent]);
            }
            Record::Exit(m) => {
                if let Some((process, parent)) = self.cache.on_exit(m.pid) {
                    let event =
                        self.builder.exit(&process, parent.as_ref(), m.exit_code, m.hdr.ktime);
                    self.stats.exit_events.fetch_add(1, Relaxed);
                    let parent = parent.and_then(|p| subject(&p.process));
                    self.export(event.into(), [subject(&process.process), parent]);
                }
            }
            Record::Data(d) => {
                self.stats.data_queued_bytes.fetch_sub(d.bytes.len() as u64, Relaxed);
                self.data.add(d, Instant::now(), &self.stats);
            }
            Record::Generic(mut rec) => {
                self.data.complete(&mut rec, &self.stats);
                // None: the policy was unloaded while its hit was still in the ring buffer.
                if let Some(event) =
                    handle_generic(&self.policies, &self.cache, &self.builder, &rec)
                {
                    if let Some(actions) = &self.user_actions {
                        self.policies.requests(&rec).into_iter().for_each(|r| actions.submit(r));
                    }
                    // Only pod enrichment needs them: no copies of the processes otherwise.
                    let whom = match self.enrich {
                        None => [None, None],
                        Some(_) => {
                            let process = self.cache.process_pid(rec.msg.pid);
                            let parent =
                                process.and_then(|p| self.cache.process(&p.parent_exec_id));
                            [process.and_then(subject), parent.and_then(subject)]
                        }
                    };
                    self.export(event, whom);
                }
            }
        }
    }

    /// Runs until the queue's sender is gone and the queue is drained; held events are
    /// looked at between batches and at least every 100 ms.
    fn run(mut self, queue: Receiver<Batch<Record>>) {
        let tick = Duration::from_millis(100);
        let mut last_release = Instant::now();
        loop {
            match queue.recv_timeout(tick) {
                Ok(Batch { items, room }) => {
                    items.into_iter().for_each(|record| self.handle(record));
                    drop(room); // handled: the reader may queue as many again
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_release.elapsed() >= tick {
                self.release_held(false);
                self.data.expire(Instant::now(), &self.stats);
                last_release = Instant::now();
            }
            self.flush();
        }
        self.release_held(true);
        self.flush();
    }
}

/// How long the processing thread waits for a JSON export that frees no room in its
/// queue before it gives up on it (see [`Bus::wait_for_export`]).
const EXPORT_PATIENCE: Duration = Duration::from_secs(1);

/// Most records in one hand-over: a long poll is handed over in parts, so the processing
/// thread starts on a burst while the reader is still reading it.
const BATCH_MAX: usize = 256;

/// Records received between two returns of free memory to the system (at most one a
/// second, when every queue is empty).
const TRIM_AFTER: u64 = 10_000;

/// The reader's side of the queue: gathers decoded records and hands them over.
struct HandOver<'a> {
    tx: Sender<Batch<Record>>,
    room: Room,
    records: Vec<Record>,
    /// [`BATCH_MAX`], or the queue's capacity if smaller (a batch must fit the queue).
    max: usize,
    stats: &'a Stats,
}

impl HandOver<'_> {
    fn push(&mut self, record: Record) {
        self.records.push(record);
        if self.records.len() >= self.max {
            self.send();
        }
    }

    /// Hands over what was gathered, waiting while the queue is full.
    fn send(&mut self) {
        if self.records.is_empty() {
            return;
        }
        let room = self.room.take_blocking(self.records.len());
        let batch = Batch { items: std::mem::take(&mut self.records), room };
        if let Err(lost) = self.tx.send(batch) {
            // The event thread is gone: nothing will take these records.
            self.stats.queue_full.fetch_add(lost.0.items.len() as u64, Relaxed);
        }
    }
}

/// Polls the ring buffer until `stop` is set, then drains what is left.
pub fn run(
    sensor: &ProcessSensor,
    processor: Processor,
    queue_size: usize,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let stats = processor.stats.clone();
    let bus = processor.bus.clone();
    let (tx, rx) = unbounded::<Batch<Record>>();
    let worker = thread::Builder::new()
        .name("tetrad-events".into())
        .spawn(move || processor.run(rx))
        .context("starting the event thread")?;

    let queue_size = queue_size.max(1);
    let hand = RefCell::new(HandOver {
        tx,
        room: Room::new(queue_size),
        records: Vec::new(),
        max: BATCH_MAX.min(queue_size),
        stats: &stats,
    });
    let mut builder = RingBufferBuilder::new();
    builder
        .add(sensor.events_map(), |data: &[u8]| {
            stats.ringbuf_received.fetch_add(1, Relaxed);
            match abi::decode(data) {
                Ok(record) => {
                    let mut hand = hand.borrow_mut();
                    if let Record::Data(d) = &record {
                        let len = d.bytes.len() as u64;
                        if !data_room(&stats, len) {
                            // Handling what was gathered is what frees data room.
                            hand.send();
                            wait_for_data_room(&stats, len);
                        }
                        stats.data_queued_bytes.fetch_add(len, Relaxed);
                    }
                    hand.push(record);
                }
                Err(e) => {
                    if stats.decode_errors.fetch_add(1, Relaxed) == 0 {
                        tracing::error!("undecodable kernel record: {e}");
                    }
                }
            }
            0
        })
        .context("registering the ring buffer")?;
    let ring = builder.build().context("creating the ring buffer reader")?;

    let mut last_report = Instant::now();
    let mut reported_lost = 0;
    let mut trimmed_at = 0;
    while !stop.load(Relaxed) {
        match ring.poll(Duration::from_millis(100)) {
            Ok(()) => {}
            Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("polling the ring buffer"),
        }
        hand.borrow_mut().send();
        if last_report.elapsed() >= Duration::from_secs(1) {
            update_kernel_drops(sensor, &stats);
            let lost = stats.lost();
            if lost > reported_lost {
                tracing::warn!("events lost so far: {} ({stats})", lost);
                reported_lost = lost;
            }
            // Once a burst is over and every queue is empty, give the memory it took back
            // to the system: glibc keeps freed memory in its arenas otherwise.
            let received = stats.ringbuf_received.load(Relaxed);
            if received - trimmed_at >= TRIM_AFTER && hand.borrow().room.is_empty() && bus.drained() {
                crate::sys::release_free_memory();
                trimmed_at = received;
            }
            last_report = Instant::now();
        }
    }
    ring.consume().context("draining the ring buffer")?;
    hand.borrow_mut().send();
    update_kernel_drops(sensor, &stats);
    drop(ring);
    drop(hand); // drops the queue sender: the worker drains and ends
    worker.join().map_err(|_| anyhow::anyhow!("the event thread panicked"))?;
    Ok(())
}

/// Most bytes of maxData messages in the queue: the queue bounds records, not bytes, and
/// a data message holds up to 32 KiB.
const QUEUED_DATA_MAX: u64 = 64 << 20;

fn data_room(stats: &Stats, len: u64) -> bool {
    stats.data_queued_bytes.load(Relaxed) + len <= QUEUED_DATA_MAX
}

/// Waits (at most a second, so a stuck event thread cannot hang the reader) until the
/// queue has room for `len` more data bytes; meanwhile the backlog stays in the kernel's
/// ring buffer, as when the queue is full.
fn wait_for_data_room(stats: &Stats, len: u64) {
    let deadline = Instant::now() + Duration::from_secs(1);
    while !data_room(stats, len) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
}

fn update_kernel_drops(sensor: &ProcessSensor, stats: &Stats) {
    for (counter, value) in stats.kernel_drops.iter().zip(sensor.kernel_drops()) {
        counter.store(value, Relaxed);
    }
}
