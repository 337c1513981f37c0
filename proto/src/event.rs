//! Accessors over the `GetEventsResponse.event` oneof, so that filters and
//! printers need not match on every variant themselves.

use crate::tetragon::{get_events_response::Event, EventType, GetEventsResponse, Process};

impl GetEventsResponse {
    /// The `EventType` matching the oneof variant (`UNDEF` when empty).
    pub fn event_type(&self) -> EventType {
        match &self.event {
            None => EventType::Undef,
            Some(Event::ProcessExec(_)) => EventType::ProcessExec,
            Some(Event::ProcessExit(_)) => EventType::ProcessExit,
            Some(Event::ProcessKprobe(_)) => EventType::ProcessKprobe,
            Some(Event::ProcessTracepoint(_)) => EventType::ProcessTracepoint,
            Some(Event::ProcessLoader(_)) => EventType::ProcessLoader,
            Some(Event::ProcessUprobe(_)) => EventType::ProcessUprobe,
            Some(Event::ProcessThrottle(_)) => EventType::ProcessThrottle,
            Some(Event::ProcessLsm(_)) => EventType::ProcessLsm,
            Some(Event::ProcessUsdt(_)) => EventType::ProcessUsdt,
            Some(Event::Test(_)) => EventType::Test,
            Some(Event::RateLimitInfo(_)) => EventType::RateLimitInfo,
        }
    }

    /// The process the event is about, if the event type carries one.
    pub fn process(&self) -> Option<&Process> {
        match self.event.as_ref()? {
            Event::ProcessExec(e) => e.process.as_ref(),
            Event::ProcessExit(e) => e.process.as_ref(),
            Event::ProcessKprobe(e) => e.process.as_ref(),
            Event::ProcessTracepoint(e) => e.process.as_ref(),
            Event::ProcessLoader(e) => e.process.as_ref(),
            Event::ProcessUprobe(e) => e.process.as_ref(),
            Event::ProcessLsm(e) => e.process.as_ref(),
            Event::ProcessUsdt(e) => e.process.as_ref(),
            Event::ProcessThrottle(_) | Event::Test(_) | Event::RateLimitInfo(_) => None,
        }
    }

    /// The parent of [`Self::process`], if present.
    pub fn parent(&self) -> Option<&Process> {
        match self.event.as_ref()? {
            Event::ProcessExec(e) => e.parent.as_ref(),
            Event::ProcessExit(e) => e.parent.as_ref(),
            Event::ProcessKprobe(e) => e.parent.as_ref(),
            Event::ProcessTracepoint(e) => e.parent.as_ref(),
            Event::ProcessLoader(e) => e.parent.as_ref(),
            Event::ProcessUprobe(e) => e.parent.as_ref(),
            Event::ProcessLsm(e) => e.parent.as_ref(),
            Event::ProcessUsdt(e) => e.parent.as_ref(),
            Event::ProcessThrottle(_) | Event::Test(_) | Event::RateLimitInfo(_) => None,
        }
    }

    /// Ancestors beyond the parent (empty unless the agent enables them).
    pub fn ancestors(&self) -> &[Process] {
        match &self.event {
            Some(Event::ProcessExec(e)) => &e.ancestors,
            Some(Event::ProcessExit(e)) => &e.ancestors,
            Some(Event::ProcessKprobe(e)) => &e.ancestors,
            Some(Event::ProcessTracepoint(e)) => &e.ancestors,
            Some(Event::ProcessLoader(e)) => &e.ancestors,
            Some(Event::ProcessUprobe(e)) => &e.ancestors,
            Some(Event::ProcessLsm(e)) => &e.ancestors,
            Some(Event::ProcessUsdt(e)) => &e.ancestors,
            _ => &[],
        }
    }

    /// Process, parent and ancestors, mutably (used by redaction).
    pub fn processes_mut(&mut self) -> Vec<&mut Process> {
        fn collect<'a>(
            p: &'a mut Option<Process>,
            q: &'a mut Option<Process>,
            a: &'a mut [Process],
        ) -> Vec<&'a mut Process> {
            p.iter_mut().chain(q.iter_mut()).chain(a.iter_mut()).collect()
        }
        match &mut self.event {
            Some(Event::ProcessExec(e)) => collect(&mut e.process, &mut e.parent, &mut e.ancestors),
            Some(Event::ProcessExit(e)) => collect(&mut e.process, &mut e.parent, &mut e.ancestors),
            Some(Event::ProcessKprobe(e)) => collect(&mut e.process, &mut e.parent, &mut e.ancestors),
            Some(Event::ProcessTracepoint(e)) => collect(&mut e.process, &mut e.parent, &mut e.ancestors),
            Some(Event::ProcessLoader(e)) => collect(&mut e.process, &mut e.parent, &mut e.ancestors),
            Some(Event::ProcessUprobe(e)) => collect(&mut e.process, &mut e.parent, &mut e.ancestors),
            Some(Event::ProcessLsm(e)) => collect(&mut e.process, &mut e.parent, &mut e.ancestors),
            Some(Event::ProcessUsdt(e)) => collect(&mut e.process, &mut e.parent, &mut e.ancestors),
            _ => Vec::new(),
        }
    }

    /// The tracing policy that produced the event (policy-driven events only).
    pub fn policy_name(&self) -> Option<&str> {
        match self.event.as_ref()? {
            Event::ProcessKprobe(e) => Some(&e.policy_name),
            Event::ProcessTracepoint(e) => Some(&e.policy_name),
            Event::ProcessUprobe(e) => Some(&e.policy_name),
            Event::ProcessLsm(e) => Some(&e.policy_name),
            Event::ProcessUsdt(e) => Some(&e.policy_name),
            _ => None,
        }
    }
}
