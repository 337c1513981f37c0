//! The event pipeline: ring buffer reader (this thread) -> bounded queue -> processing
//! thread (process cache, event building, redaction) -> event bus (fan-out to the JSON
//! export and gRPC clients, see [`crate::bus`]).
//!
//! A full queue makes the reader wait: the backlog then stays in the kernel ring buffer,
//! which is far larger, and what it cannot hold is refused there and counted per kind.
//! Dropping in user space instead would lose events the ring buffer still had room for.
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};
use libbpf_rs::RingBufferBuilder;
use tetra_proto::filter::Redactor;
use tetra_proto::tetragon::GetEventsResponse;

use crate::abi::{self, Record};
use crate::bus::Bus;
use crate::events::EventBuilder;
use crate::k8s::enrich::{Enricher, Subject};
use crate::maxdata::Reassembly;
use crate::process::cache::{ProcessCache, Snapshot};
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
}

fn subject(s: &Snapshot) -> Option<Subject> {
    Some(Subject {
        cgroup_id: s.process.cgroup_id,
        pid: s.process.pid,
        start_ktime: s.process.start_ktime,
    })
}

impl Processor {
    /// Publishes `event` (`whom`: its process and parent), once enriched.
    fn export(&mut self, event: GetEventsResponse, whom: [Option<Subject>; 2]) {
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

    fn publish(&mut self, mut event: GetEventsResponse) {
        if !self.redactor.is_empty() {
            self.redactor.apply(&mut event);
        }
        self.bus.publish(event);
    }

    pub fn handle(&mut self, record: Record) {
        match record {
            Record::Clone(m) => self.cache.on_clone(m.pid, m.ppid, m.hdr.ktime),
            Record::Exec(rec) => {
                let process = Process::from_exec(&self.builder.node, &rec);
                let (process, parent) = self.cache.on_exec(process);
                let event = self.builder.exec(&process, parent.as_ref());
                self.stats.exec_events.fetch_add(1, Relaxed);
                self.export(event, [subject(&process), parent.as_ref().and_then(subject)]);
            }
            Record::Exit(m) => {
                if let Some((process, parent)) = self.cache.on_exit(m.pid) {
                    let event =
                        self.builder.exit(&process, parent.as_ref(), m.exit_code, m.hdr.ktime);
                    self.stats.exit_events.fetch_add(1, Relaxed);
                    self.export(event, [subject(&process), parent.as_ref().and_then(subject)]);
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
                            let process = self.cache.get_pid(rec.msg.pid);
                            let parent = process
                                .as_ref()
                                .and_then(|p| self.cache.get(&p.process.parent_exec_id));
                            [process.as_ref().and_then(subject), parent.as_ref().and_then(subject)]
                        }
                    };
                    self.export(event, whom);
                }
            }
        }
        let cs = self.cache.stats();
        self.stats.cache_size.store(cs.size as u64, Relaxed);
        self.stats.cache_misses.store(cs.misses, Relaxed);
        self.stats.cache_evictions.store(cs.evictions, Relaxed);
    }

    /// Runs until the queue's sender is gone and the queue is drained; held events are
    /// looked at between records and at least every 100 ms.
    fn run(mut self, queue: Receiver<Record>) {
        let tick = Duration::from_millis(100);
        let mut last_release = Instant::now();
        loop {
            match queue.recv_timeout(tick) {
                Ok(record) => self.handle(record),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_release.elapsed() >= tick {
                self.release_held(false);
                self.data.expire(Instant::now(), &self.stats);
                last_release = Instant::now();
            }
        }
        self.release_held(true);
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
    let (tx, rx) = bounded::<Record>(queue_size.max(1));
    let worker = thread::Builder::new()
        .name("tetrad-events".into())
        .spawn(move || processor.run(rx))
        .context("starting the event thread")?;

    let reader_stats = stats.clone();
    let mut builder = RingBufferBuilder::new();
    builder
        .add(sensor.events_map(), move |data: &[u8]| {
            reader_stats.ringbuf_received.fetch_add(1, Relaxed);
            match abi::decode(data) {
                Ok(record) => {
                    if let Record::Data(d) = &record {
                        wait_for_data_room(&reader_stats, d.bytes.len() as u64);
                    }
                    if tx.send(record).is_err() {
                        // The event thread is gone: nothing will take this record.
                        reader_stats.queue_full.fetch_add(1, Relaxed);
                    }
                }
                Err(e) => {
                    if reader_stats.decode_errors.fetch_add(1, Relaxed) == 0 {
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
    while !stop.load(Relaxed) {
        match ring.poll(Duration::from_millis(100)) {
            Ok(()) => {}
            Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("polling the ring buffer"),
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            update_kernel_drops(sensor, &stats);
            let lost = stats.lost();
            if lost > reported_lost {
                tracing::warn!("events lost so far: {} ({stats})", lost);
                reported_lost = lost;
            }
            last_report = Instant::now();
        }
    }
    ring.consume().context("draining the ring buffer")?;
    update_kernel_drops(sensor, &stats);
    drop(ring); // drops the queue sender: the worker drains and ends
    worker.join().map_err(|_| anyhow::anyhow!("the event thread panicked"))?;
    Ok(())
}

/// Most bytes of maxData messages in the queue: the queue bounds records, not bytes, and
/// a data message holds up to 32 KiB.
const QUEUED_DATA_MAX: u64 = 64 << 20;

/// Waits (at most a second, so a stuck event thread cannot hang the reader) until the
/// queue has room for `len` more data bytes; meanwhile the backlog stays in the kernel's
/// ring buffer, as when the queue is full.
fn wait_for_data_room(stats: &Stats, len: u64) {
    let deadline = Instant::now() + Duration::from_secs(1);
    while stats.data_queued_bytes.load(Relaxed) + len > QUEUED_DATA_MAX && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    stats.data_queued_bytes.fetch_add(len, Relaxed);
}

fn update_kernel_drops(sensor: &ProcessSensor, stats: &Stats) {
    for (counter, value) in stats.kernel_drops.iter().zip(sensor.kernel_drops()) {
        counter.store(value, Relaxed);
    }
}
