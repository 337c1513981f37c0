//! A finished event as it is published, with its processes shared with the process cache.
use std::borrow::Cow;
use std::sync::Arc;

use tetra_proto::tetragon::{get_events_response::Event, GetEventsResponse, Process};

use crate::process::cache::Shown;

/// An event whose `process` and `parent` may be held apart, as the process cache's shared
/// renderings ([`Shown`]), instead of copied into it: the events of a busy process then
/// cost no copy of its two `Process` messages (a few dozen strings and vectors), and the
/// JSON export writes the rendering's text as it is. A consumer that needs the whole
/// message gets it from [`Published::event`] or [`Published::into_event`]; changing the
/// event ([`Published::event_mut`]) puts copies back in first.
#[derive(Clone, Debug)]
pub struct Published {
    /// Without the processes `shown` holds.
    event: GetEventsResponse,
    shown: [Option<Arc<Shown>>; 2],
}

/// The `process` and `parent` fields of the event kinds having them, with the kind's
/// JSON key.
pub fn processes_mut(
    event: &mut GetEventsResponse,
) -> Option<(&'static str, [&mut Option<Process>; 2])> {
    Some(match event.event.as_mut()? {
        Event::ProcessExec(e) => ("process_exec", [&mut e.process, &mut e.parent]),
        Event::ProcessExit(e) => ("process_exit", [&mut e.process, &mut e.parent]),
        Event::ProcessKprobe(e) => ("process_kprobe", [&mut e.process, &mut e.parent]),
        Event::ProcessTracepoint(e) => ("process_tracepoint", [&mut e.process, &mut e.parent]),
        Event::ProcessUprobe(e) => ("process_uprobe", [&mut e.process, &mut e.parent]),
        Event::ProcessLsm(e) => ("process_lsm", [&mut e.process, &mut e.parent]),
        Event::ProcessUsdt(e) => ("process_usdt", [&mut e.process, &mut e.parent]),
        _ => return None,
    })
}

impl Published {
    /// `event` without `process` and `parent`, which are `shown` (`None`: the event has
    /// none, or has its own in `event`).
    pub fn new(event: GetEventsResponse, shown: [Option<Arc<Shown>>; 2]) -> Published {
        Published { event, shown }
    }

    /// The event without the processes held apart, and those processes (for the JSON
    /// export, which writes their texts).
    pub fn parts_mut(&mut self) -> (&mut GetEventsResponse, &[Option<Arc<Shown>>; 2]) {
        (&mut self.event, &self.shown)
    }

    /// The whole event: borrowed when no process is held apart, else a copy.
    pub fn event(&self) -> Cow<'_, GetEventsResponse> {
        if self.shown.iter().all(Option::is_none) {
            return Cow::Borrowed(&self.event);
        }
        let mut event = self.event.clone();
        Self::put_back(&mut event, &self.shown);
        Cow::Owned(event)
    }

    /// The whole event, to change.
    pub fn event_mut(&mut self) -> &mut GetEventsResponse {
        let shown = std::mem::take(&mut self.shown);
        Self::put_back(&mut self.event, &shown);
        &mut self.event
    }

    pub fn into_event(mut self) -> GetEventsResponse {
        self.event_mut();
        self.event
    }

    fn put_back(event: &mut GetEventsResponse, shown: &[Option<Arc<Shown>>; 2]) {
        let Some((_, slots)) = processes_mut(event) else { return };
        for (slot, shown) in slots.into_iter().zip(shown) {
            if let Some(s) = shown {
                *slot = Some(s.process.clone());
            }
        }
    }
}

impl From<GetEventsResponse> for Published {
    fn from(event: GetEventsResponse) -> Published {
        Published { event, shown: [None, None] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tetra_proto::tetragon::ProcessTracepoint;

    fn process(binary: &str) -> Process {
        Process { binary: binary.into(), exec_id: binary.into(), ..Default::default() }
    }

    #[test]
    fn every_way_out_shows_the_processes_held_apart() {
        let bare = GetEventsResponse {
            event: Some(Event::ProcessTracepoint(ProcessTracepoint {
                subsys: "syscalls".into(),
                ..Default::default()
            })),
            node_name: "n".into(),
            ..Default::default()
        };
        let mut whole = bare.clone();
        let (_, [p, q]) = processes_mut(&mut whole).unwrap();
        (*p, *q) = (Some(process("/usr/bin/dd")), Some(process("/bin/sh")));
        let shared = |binary| Some(Arc::new(Shown::new(process(binary))));
        let shown = [shared("/usr/bin/dd"), shared("/bin/sh")];
        let published = Published::new(bare.clone(), shown);

        assert_eq!(*published.event(), whole);
        assert_eq!(published.clone().into_event(), whole);
        let mut changed = published.clone();
        changed.event_mut().node_name = "m".into();
        assert!(changed.parts_mut().1.iter().all(Option::is_none), "copies are back in the event");
        let renamed = GetEventsResponse { node_name: "m".into(), ..whole.clone() };
        assert_eq!(changed.into_event(), renamed);
        let mut apart = published;
        assert_eq!(*apart.parts_mut().0, bare, "the export sees the event without them");

        let plain = Published::from(whole.clone());
        assert!(matches!(plain.event(), Cow::Borrowed(_)), "nothing held apart: no copy");
    }
}
