//! Event fan-out: the processing thread publishes each finished event once; every
//! exporter (the JSON writer, each gRPC client) is a subscriber with its own bounded queue.
//!
//! Publishing never blocks. When a subscriber's queue is full the event is dropped for
//! that subscriber only and counted (per subscriber, and globally by subscriber kind), so
//! a stuck client never stalls the agent, the JSON export or the other clients.
//! A subscriber may carry an allow/deny filter, checked before enqueueing, so a queue
//! only ever holds (and only ever drops) events its consumer asked for.
//!
//! When a JSON export takes the event, its line is encoded here, once, on the publishing
//! thread, where the event is still owned (see [`crate::export::line`]).
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use tetra_proto::filter::EventFilters;
use tetra_proto::tetragon::GetEventsResponse;

use crate::export::line::LineEncoder;
use crate::stats::Stats;

/// A finished event, as the subscribers share it (read-only).
#[derive(Debug)]
pub struct Published {
    pub event: GetEventsResponse,
    /// Its JSON line (no newline), when a JSON export subscriber took it.
    pub line: Option<String>,
}

pub type SharedEvent = Arc<Published>;

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
    Blocking(crossbeam_channel::Sender<SharedEvent>),
    Async(tokio::sync::mpsc::Sender<SharedEvent>),
}

enum Sent {
    Ok,
    Full,
    Closed,
}

impl Tx {
    fn try_send(&self, ev: &SharedEvent) -> Sent {
        match self {
            Tx::Blocking(tx) => match tx.try_send(ev.clone()) {
                Ok(()) => Sent::Ok,
                Err(crossbeam_channel::TrySendError::Full(_)) => Sent::Full,
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => Sent::Closed,
            },
            Tx::Async(tx) => match tx.try_send(ev.clone()) {
                Ok(()) => Sent::Ok,
                Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => Sent::Full,
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => Sent::Closed,
            },
        }
    }
}

struct Entry {
    tx: Tx,
    filter: EventFilters,
    state: Arc<SubscriberState>,
}

#[derive(Default)]
struct Inner {
    entries: Vec<Entry>,
    closed: bool,
    encoder: LineEncoder,
    /// Indexes of the entries taking the event being published (kept to reuse its memory).
    takers: Vec<usize>,
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
        });
        let mut inner = self.lock();
        if inner.closed {
            return None;
        }
        inner.entries.push(Entry { tx, filter, state: state.clone() });
        Some(Subscription { bus: self.clone(), state })
    }

    /// A subscriber read from a plain thread. `None` once the bus is closed.
    pub fn subscribe_blocking(
        self: &Arc<Self>,
        kind: SubscriberKind,
        peer: &str,
        capacity: usize,
        filter: EventFilters,
    ) -> Option<(crossbeam_channel::Receiver<SharedEvent>, Subscription)> {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        Some((rx, self.add(Tx::Blocking(tx), kind, peer, filter)?))
    }

    /// A subscriber read from async code. `None` once the bus is closed.
    pub fn subscribe_async(
        self: &Arc<Self>,
        kind: SubscriberKind,
        peer: &str,
        capacity: usize,
        filter: EventFilters,
    ) -> Option<(tokio::sync::mpsc::Receiver<SharedEvent>, Subscription)> {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        Some((rx, self.add(Tx::Async(tx), kind, peer, filter)?))
    }

    /// Hands the event to every subscriber whose filter matches; never blocks.
    pub fn publish(&self, mut event: GetEventsResponse) {
        let mut inner = self.lock();
        let Inner { entries, encoder, takers, .. } = &mut *inner;
        takers.clear();
        takers.extend((0..entries.len()).filter(|&i| entries[i].filter.matches(&event)));
        if takers.is_empty() {
            return;
        }
        let line = takers
            .iter()
            .any(|&i| entries[i].state.kind == SubscriberKind::JsonExport)
            .then(|| encoder.encode(&mut event));
        let event = Arc::new(Published { event, line });
        let mut closed = Vec::new();
        for e in takers.iter().map(|&i| &entries[i]) {
            match e.tx.try_send(&event) {
                Sent::Ok => {
                    e.state.queued.fetch_add(1, Relaxed);
                }
                Sent::Full => {
                    e.state.dropped.fetch_add(1, Relaxed);
                    e.state.unreported.fetch_add(1, Relaxed);
                    let global = match e.state.kind {
                        SubscriberKind::JsonExport => &self.stats.export_queue_full,
                        SubscriberKind::GrpcClient => &self.stats.grpc_client_drops,
                    };
                    global.fetch_add(1, Relaxed);
                }
                Sent::Closed => closed.push(e.state.id),
            }
        }
        if !closed.is_empty() {
            inner.entries.retain(|e| !closed.contains(&e.state.id));
        }
    }

    /// Ends every subscription: queues are drained by their consumers, then end.
    /// Later subscriptions are refused.
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.entries.clear();
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
        assert_eq!(first.event.process().unwrap().binary, "/bin/0");
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
        assert_eq!(rx.recv().unwrap().event.event_type(), EventType::ProcessExec);
        assert_eq!(bus.subscribers().len(), 1);
        drop(sub);
        assert!(bus.subscribers().is_empty());
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
