//! Event fan-out: the processing thread publishes each finished event once; every
//! exporter (the JSON writer, each gRPC client) is a subscriber with its own bounded queue.
//!
//! Publishing never blocks. When a subscriber's queue is full the event is dropped for
//! that subscriber only and counted (per subscriber, and globally by subscriber kind), so
//! a stuck client never stalls the agent, the JSON export or the other clients. The
//! publisher may wait for the JSON export before publishing, though
//! ([`Bus::wait_for_export`]): while the export keeps writing, a burst it lags behind waits
//! in the kernel ring buffer (~100 bytes a record) instead of its queue (a few KB an
//! event) and is not dropped for it; an export that stops freeing room is given up on.
//!
//! The events of one publishing call reach each subscriber as one [`Batch`]: one
//! wake-up of its consumer per burst instead of one per event. A queue is an unbounded
//! channel (memory taken as it fills, given back as it drains) bounded by a [`Room`].
//! A subscriber may carry an allow/deny filter, checked before enqueueing, so a queue
//! only ever holds (and only ever drops) events its consumer asked for.
//!
//! Events are shared read-only; a consumer holding the last reference takes or changes
//! the event itself ([`Arc::unwrap_or_clone`], [`Arc::make_mut`]) instead of a copy. The publishing thread only
//! matches and hands over: rendering (JSON lines, gRPC messages) happens on the
//! consumers' threads, so the one processing thread is not the limit of a burst.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tetra_proto::filter::EventFilters;
use tetra_proto::tetragon::GetEventsResponse;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::events::Published;
use crate::stats::Stats;

/// A finished event, as the subscribers share it (read-only).
pub type SharedEvent = Arc<Published>;

/// Items handed over at once, with the room they take in their queue: the room is given
/// back when the batch is dropped (consumed, or discarded with its queue).
pub struct Batch<T> {
    pub items: Vec<T>,
    pub room: OwnedSemaphorePermit,
}

pub type EventBatch = Batch<SharedEvent>;

/// The bound of a queue, in items. The queues are unbounded channels, which allocate as
/// they fill and free as they drain, so an idle queue costs (almost) no memory whatever
/// its bound; a [`Batch`] holds one permit of this semaphore per item.
#[derive(Clone)]
pub struct Room {
    free: Arc<Semaphore>,
    capacity: usize,
}

impl Room {
    pub fn new(capacity: usize) -> Room {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        Room { free: Arc::new(Semaphore::new(capacity)), capacity }
    }

    /// Nothing queued (or being consumed).
    pub fn is_empty(&self) -> bool {
        self.free.available_permits() == self.capacity
    }

    /// Room for one more item, if there is any.
    pub fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        self.free.clone().try_acquire_owned().ok()
    }

    /// Waits until `n` items (at most the capacity) fit, for as long as the consumer keeps
    /// freeing room; false once it has freed none for `patience`.
    pub fn wait_for(&self, n: usize, patience: Duration) -> bool {
        let n = n.min(self.capacity);
        let (mut free, mut progress) = (self.free.available_permits(), Instant::now());
        while free < n {
            if progress.elapsed() >= patience {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
            let now_free = self.free.available_permits();
            if now_free > free {
                progress = Instant::now();
            }
            free = now_free;
        }
        true
    }

    /// Room for `n` items (at most the capacity), waiting until consumers free it.
    pub fn take_blocking(&self, n: usize) -> OwnedSemaphorePermit {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        match self.free.clone().try_acquire_many_owned(n) {
            Ok(room) => room,
            Err(_) => futures::executor::block_on(self.free.clone().acquire_many_owned(n))
                .expect("a Room's semaphore is never closed"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberKind {
    JsonExport,
    GrpcClient,
}

/// What the bus knows about one subscriber; shared with its consumer and the metrics.
#[derive(Debug)]
pub struct SubscriberState {
    pub id: u64,
    pub kind: SubscriberKind,
    /// Who is reading (e.g. the gRPC peer address).
    pub peer: String,
    pub queued: AtomicU64,
    pub dropped: AtomicU64,
    /// Drops the consumer has not reported yet (see [`SubscriberState::take_unreported`]).
    unreported: AtomicU64,
    /// A JSON export that froze: not waited for again until its queue is empty.
    stalled: AtomicBool,
}

impl SubscriberState {
    /// Drops since the last call; the consumer tells its reader about them.
    pub fn take_unreported(&self) -> u64 {
        self.unreported.swap(0, Relaxed)
    }

    pub fn has_unreported(&self) -> bool {
        self.unreported.load(Relaxed) > 0
    }
}

enum Tx {
    Blocking(crossbeam_channel::Sender<EventBatch>),
    Async(tokio::sync::mpsc::UnboundedSender<EventBatch>),
}

impl Tx {
    /// False when the consumer is gone.
    fn send(&self, batch: EventBatch) -> bool {
        match self {
            Tx::Blocking(tx) => tx.send(batch).is_ok(),
            Tx::Async(tx) => tx.send(batch).is_ok(),
        }
    }
}

struct Entry {
    tx: Tx,
    room: Room,
    filter: EventFilters,
    state: Arc<SubscriberState>,
}

#[derive(Default)]
struct Inner {
    entries: Vec<Entry>,
    closed: bool,
    /// Indexes of the entries taking the event being published (kept to reuse its memory).
    takers: Vec<usize>,
    /// The batch of each entry (same index) while events are published.
    batches: Vec<Option<EventBatch>>,
}

pub struct Bus {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    stats: Arc<Stats>,
}

/// Keeps a subscription alive; dropping it unsubscribes.
pub struct Subscription {
    bus: Arc<Bus>,
    pub state: Arc<SubscriberState>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.bus.lock().entries.retain(|e| e.state.id != self.state.id);
    }
}

impl Bus {
    pub fn new(stats: Arc<Stats>) -> Arc<Bus> {
        Arc::new(Bus { inner: Mutex::new(Inner::default()), next_id: AtomicU64::new(1), stats })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the list consistent (only push/retain).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(
        self: &Arc<Self>,
        tx: Tx,
        capacity: usize,
        kind: SubscriberKind,
        peer: &str,
        filter: EventFilters,
    ) -> Option<Subscription> {
        let state = Arc::new(SubscriberState {
            id: self.next_id.fetch_add(1, Relaxed),
            kind,
            peer: peer.to_string(),
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
        });
        let mut inner = self.lock();
        if inner.closed {
            return None;
        }
        inner.entries.push(Entry { tx, room: Room::new(capacity), filter, state: state.clone() });
        Some(Subscription { bus: self.clone(), state })
    }

    /// A subscriber read from a plain thread. `None` once the bus is closed.
    pub fn subscribe_blocking(
        self: &Arc<Self>,
        kind: SubscriberKind,
        peer: &str,
        capacity: usize,
        filter: EventFilters,
    ) -> Option<(crossbeam_channel::Receiver<EventBatch>, Subscription)> {
        let (tx, rx) = crossbeam_channel::unbounded();
        Some((rx, self.add(Tx::Blocking(tx), capacity, kind, peer, filter)?))
    }

    /// A subscriber read from async code. `None` once the bus is closed.
    pub fn subscribe_async(
        self: &Arc<Self>,
        kind: SubscriberKind,
        peer: &str,
        capacity: usize,
        filter: EventFilters,
    ) -> Option<(tokio::sync::mpsc::UnboundedReceiver<EventBatch>, Subscription)> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Some((rx, self.add(Tx::Async(tx), capacity, kind, peer, filter)?))
    }

    /// Waits until the JSON export has room for `n` more events, as long as it keeps
    /// writing (it frees room at least every `patience`). An export that froze (a pipe
    /// nobody reads) is not waited for again until it has emptied its queue, so it costs
    /// the agent one `patience` and then only its own drops.
    pub fn wait_for_export(&self, n: usize, patience: Duration) {
        let exports: Vec<(Room, Arc<SubscriberState>)> = self
            .lock()
            .entries
            .iter()
            .filter(|e| e.state.kind == SubscriberKind::JsonExport)
            .map(|e| (e.room.clone(), e.state.clone()))
            .collect();
        for (room, state) in exports {
            if state.stalled.load(Relaxed) {
                state.stalled.store(!room.is_empty(), Relaxed);
                continue;
            }
            let start = Instant::now();
            if !room.wait_for(n, patience) {
                state.stalled.store(true, Relaxed);
            }
            let waited = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.stats.export_waited_us.fetch_add(waited, Relaxed);
        }
    }

    /// Hands the event to every subscriber whose filter matches; never blocks.
    pub fn publish(&self, event: GetEventsResponse) {
        self.publish_all([Arc::new(event.into())]);
    }

    /// Hands each event to every subscriber whose filter matches, in one batch per
    /// subscriber; never blocks.
    pub fn publish_all(&self, events: impl IntoIterator<Item = SharedEvent>) {
        let mut inner = self.lock();
        let Inner { entries, takers, batches, .. } = &mut *inner;
        batches.clear();
        batches.resize_with(entries.len(), || None);
        let filtering = entries.iter().any(|e| !e.filter.is_empty());
        for event in events {
            takers.clear();
            // The whole event only when a subscriber filters: a copy when processes are
            // held apart.
            let whole = filtering.then(|| event.event());
            let passes = |i: usize| whole.as_ref().is_none_or(|w| entries[i].filter.matches(w));
            takers.extend((0..entries.len()).filter(|&i| passes(i)));
            if takers.is_empty() {
                continue;
            }
            for &i in takers.iter() {
                let e = &entries[i];
                match (e.room.try_take(), &mut batches[i]) {
                    (Some(room), Some(batch)) => {
                        batch.items.push(event.clone());
                        batch.room.merge(room);
                    }
                    (Some(room), slot @ None) => {
                        *slot = Some(Batch { items: vec![event.clone()], room });
                    }
                    (None, _) => {
                        e.state.dropped.fetch_add(1, Relaxed);
                        e.state.unreported.fetch_add(1, Relaxed);
                        let global = match e.state.kind {
                            SubscriberKind::JsonExport => &self.stats.export_queue_full,
                            SubscriberKind::GrpcClient => &self.stats.grpc_client_drops,
                        };
                        global.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        let mut closed = Vec::new();
        for (e, batch) in entries.iter().zip(batches.drain(..)) {
            let Some(batch) = batch else { continue };
            let n = batch.items.len() as u64;
            if e.tx.send(batch) {
                e.state.queued.fetch_add(n, Relaxed);
            } else {
                closed.push(e.state.id);
            }
        }
        if !closed.is_empty() {
            entries.retain(|e| !closed.contains(&e.state.id));
        }
    }

    /// Ends every subscription: queues are drained by their consumers, then end.
    /// Later subscriptions are refused.
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.entries.clear();
    }

    /// Every subscriber has consumed all it was given.
    pub fn drained(&self) -> bool {
        self.lock().entries.iter().all(|e| e.room.is_empty())
    }

    /// The current subscribers, for metrics.
    pub fn subscribers(&self) -> Vec<Arc<SubscriberState>> {
        self.lock().entries.iter().map(|e| e.state.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tetra_proto::tetragon::{
        get_events_response::Event, EventType, Filter, Process, ProcessExec,
    };

    fn exec(binary: &str) -> GetEventsResponse {
        GetEventsResponse {
            event: Some(Event::ProcessExec(ProcessExec {
                process: Some(Process { binary: binary.into(), ..Default::default() }),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn full_subscriber_drops_alone_and_counts() {
        let stats = Arc::new(Stats::default());
        let bus = Bus::new(stats.clone());
        let (fast_rx, _fast) = bus
            .subscribe_blocking(SubscriberKind::JsonExport, "json", 100, EventFilters::default())
            .unwrap();
        let (mut slow_rx, slow) = bus
            .subscribe_async(SubscriberKind::GrpcClient, "c1", 3, EventFilters::default())
            .unwrap();
        for i in 0..10 {
            bus.publish(exec(&format!("/bin/{i}")));
        }
        assert_eq!(fast_rx.len(), 10);
        assert_eq!(slow.state.dropped.load(Relaxed), 7);
        assert_eq!(stats.grpc_client_drops.load(Relaxed), 7);
        assert_eq!(stats.export_queue_full.load(Relaxed), 0);
        assert_eq!(slow.state.take_unreported(), 7);
        assert_eq!(slow.state.take_unreported(), 0);
        // The slow queue kept the oldest events.
        let first = slow_rx.try_recv().unwrap();
        assert_eq!(first.items[0].event().process().unwrap().binary, "/bin/0");
    }

    #[test]
    fn filters_apply_before_the_queue_and_unsubscribe_on_drop() {
        let bus = Bus::new(Arc::new(Stats::default()));
        let allow = Filter { binary_regex: vec!["true$".into()], ..Default::default() };
        let filter = EventFilters::new(&[allow], &[]).unwrap();
        let (rx, sub) = bus.subscribe_blocking(SubscriberKind::GrpcClient, "c", 1, filter).unwrap();
        bus.publish(exec("/bin/false"));
        bus.publish(exec("/bin/true"));
        assert_eq!(rx.len(), 1);
        assert_eq!(sub.state.dropped.load(Relaxed), 0);
        assert_eq!(rx.recv().unwrap().items[0].event().event_type(), EventType::ProcessExec);
        assert_eq!(bus.subscribers().len(), 1);
        drop(sub);
        assert!(bus.subscribers().is_empty());
    }

    #[test]
    fn one_batch_per_call_and_room_given_back_when_consumed() {
        let stats = Arc::new(Stats::default());
        let bus = Bus::new(stats.clone());
        let (rx, sub) = bus
            .subscribe_blocking(SubscriberKind::JsonExport, "json", 3, EventFilters::default())
            .unwrap();
        bus.publish_all((0..5).map(|i| Arc::new(exec(&format!("/bin/{i}")).into())));
        assert_eq!(rx.len(), 1, "one hand-over for the whole call");
        let batch = rx.try_recv().unwrap();
        let binary = |e: &SharedEvent| e.event().process().unwrap().binary.clone();
        let names: Vec<_> = batch.items.iter().map(binary).collect();
        assert_eq!(names, ["/bin/0", "/bin/1", "/bin/2"], "the queue kept the oldest");
        assert_eq!(stats.export_queue_full.load(Relaxed), 2);
        // Still held by the consumer: the queue has no room.
        bus.publish(exec("/bin/5"));
        assert_eq!(sub.state.dropped.load(Relaxed), 3);
        drop(batch);
        bus.publish_all((6..9).map(|i| Arc::new(exec(&format!("/bin/{i}")).into())));
        assert!(!bus.drained());
        assert_eq!(rx.try_recv().unwrap().items.len(), 3, "consumed: its room is back");
        assert!(bus.drained());
        assert_eq!(sub.state.queued.load(Relaxed), 6);
    }

    #[test]
    fn the_publisher_waits_for_a_writing_export_and_gives_up_on_a_frozen_one() {
        let stats = Arc::new(Stats::default());
        let bus = Bus::new(stats.clone());
        let (rx, sub) = bus
            .subscribe_blocking(SubscriberKind::JsonExport, "json", 4, EventFilters::default())
            .unwrap();
        let patience = Duration::from_millis(300);
        // A slow export: takes a batch every 20 ms. Nothing is dropped.
        let consumer = std::thread::spawn(move || {
            let mut got = 0;
            while got < 40 {
                std::thread::sleep(Duration::from_millis(20));
                got += rx.recv().unwrap().items.len();
            }
            rx
        });
        for i in 0..20 {
            bus.wait_for_export(2, patience);
            bus.publish_all((0..2).map(|j| Arc::new(exec(&format!("/bin/{i}-{j}")).into())));
        }
        let rx = consumer.join().unwrap();
        assert_eq!(stats.export_queue_full.load(Relaxed), 0);
        // 40 events taken 2 at a time every 20 ms through a queue of 4: the publisher waited.
        let waited = stats.export_waited_us.load(Relaxed);
        assert!(waited >= 200_000, "waited {waited} us");

        // A frozen export: one wait of `patience`, then drops (counted) without waiting.
        bus.publish_all((0..4).map(|i| Arc::new(exec(&format!("/bin/{i}")).into())));
        let start = Instant::now();
        bus.wait_for_export(1, patience);
        assert!(start.elapsed() >= patience);
        bus.publish(exec("/bin/dropped"));
        let start = Instant::now();
        bus.wait_for_export(1, patience);
        assert!(start.elapsed() < patience, "not waited for again");
        bus.publish(exec("/bin/dropped"));
        assert_eq!(sub.state.dropped.load(Relaxed), 2);
        // Once it has caught up it is waited for again.
        drop(rx.try_recv().unwrap());
        bus.wait_for_export(1, patience);
        bus.wait_for_export(1, patience);
        assert!(!sub.state.stalled.load(Relaxed));
    }

    #[test]
    fn close_ends_queues_and_refuses_new_subscribers() {
        let bus = Bus::new(Arc::new(Stats::default()));
        let (rx, _sub) = bus
            .subscribe_blocking(SubscriberKind::JsonExport, "json", 4, EventFilters::default())
            .unwrap();
        bus.publish(exec("/bin/a"));
        bus.close();
        assert!(rx.recv().is_ok(), "queued events are still delivered");
        assert!(rx.recv().is_err(), "then the queue ends");
        assert!(bus
            .subscribe_blocking(SubscriberKind::JsonExport, "x", 1, EventFilters::default())
            .is_none());
    }
}
