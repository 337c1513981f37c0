//! One GetEvents client: its bus queue turned into the gRPC response stream.
//!
//! Events the bus could not queue for this client (it read too slowly) are reported to it
//! as a `rate_limit_info` event carrying the dropped count, sent once the client has
//! caught up (its queue is empty), so it is not pushed behind the backlog it missed.
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tetra_proto::filter::FieldFilters;
use tetra_proto::tetragon::GetEventsResponse;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::OwnedSemaphorePermit;
use tokio_stream::Stream;

use crate::bus::{EventBatch, SharedEvent, Subscription};
use crate::events::Published;
use crate::export::exporter::rate_limit_info;

pub struct ClientStream {
    queue: UnboundedReceiver<EventBatch>,
    fields: FieldFilters,
    node: String,
    /// Unsubscribes when the client goes away and tonic drops the stream.
    sub: Subscription,
    /// What is left of the batch being sent, and its room in the queue (freed once sent).
    current: std::vec::IntoIter<SharedEvent>,
    room: Option<OwnedSemaphorePermit>,
}

impl ClientStream {
    pub fn new(
        queue: UnboundedReceiver<EventBatch>,
        fields: FieldFilters,
        node: String,
        sub: Subscription,
    ) -> ClientStream {
        ClientStream { queue, fields, node, sub, current: Vec::new().into_iter(), room: None }
    }

    /// The message for the client: the event itself when no other consumer holds it.
    fn render(&self, event: SharedEvent) -> GetEventsResponse {
        let mut event =
            Arc::try_unwrap(event).map_or_else(|e| e.event().into_owned(), Published::into_event);
        if !self.fields.is_empty() {
            self.fields.apply(&mut event);
        }
        event
    }
}

impl Stream for ClientStream {
    type Item = Result<GetEventsResponse, tonic::Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(event) = this.current.next() {
                return Poll::Ready(Some(Ok(this.render(event))));
            }
            this.room = None;
            // A full queue is the only cause of drops, so drops are always followed by
            // queued events: reporting when the queue is empty means the client caught up.
            if this.queue.is_empty() && this.sub.state.has_unreported() {
                let dropped = this.sub.state.take_unreported();
                return Poll::Ready(Some(Ok(rate_limit_info(&this.node, dropped))));
            }
            match this.queue.poll_recv(cx) {
                Poll::Ready(Some(batch)) => {
                    this.current = batch.items.into_iter();
                    this.room = Some(batch.room);
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
