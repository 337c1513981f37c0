//! JSON lines of published events, with the `process` and `parent` objects of a process
//! encoded once and reused while the process is unchanged.
//!
//! Those two objects (credentials, capabilities, namespaces) are most of a line's bytes
//! and of its encoding time, and every event of one process repeats them. The line is the
//! event encoded without them, with their cached text put back in front of the other
//! fields: `process` and `parent` are fields 1 and 2 of every event kind that has them,
//! so the result is byte for byte [`tetra_proto::json::to_line`] (tests check it).
use std::collections::HashMap;

use tetra_proto::tetragon::{get_events_response::Event, GetEventsResponse, Process};

/// Processes whose encoding is kept; when full the cache starts over (a few long-lived
/// busy processes make most events, so the memory stays small).
const CACHED: usize = 256;

#[derive(Default)]
pub struct LineEncoder {
    /// By exec id: the process as last encoded, and its JSON text.
    cache: HashMap<String, (Process, String)>,
}

/// The event's `process` and `parent` fields and its JSON key, for the kinds having them.
fn processes(
    event: &mut Event,
) -> Option<(&'static str, &mut Option<Process>, &mut Option<Process>)> {
    Some(match event {
        Event::ProcessExec(e) => ("process_exec", &mut e.process, &mut e.parent),
        Event::ProcessExit(e) => ("process_exit", &mut e.process, &mut e.parent),
        Event::ProcessKprobe(e) => ("process_kprobe", &mut e.process, &mut e.parent),
        Event::ProcessTracepoint(e) => ("process_tracepoint", &mut e.process, &mut e.parent),
        Event::ProcessUprobe(e) => ("process_uprobe", &mut e.process, &mut e.parent),
        Event::ProcessLsm(e) => ("process_lsm", &mut e.process, &mut e.parent),
        Event::ProcessUsdt(e) => ("process_usdt", &mut e.process, &mut e.parent),
        _ => return None,
    })
}

impl LineEncoder {
    /// The JSON text of `p`, encoded now or taken from the cache.
    fn process_json(&mut self, p: &Process) -> &str {
        let fresh = match self.cache.get(&p.exec_id) {
            Some((cached, _)) => cached != p,
            None => true,
        };
        if fresh {
            if self.cache.len() >= CACHED {
                self.cache.clear();
            }
            // Encoding a generated message cannot fail (string keys, no custom impls).
            let text = serde_json::to_string(p).unwrap_or_default();
            self.cache.insert(p.exec_id.clone(), (p.clone(), text));
        }
        self.cache
            .get(&p.exec_id)
            .map_or("", |(_, text)| text.as_str())
    }

    /// The event as one JSON line (no newline), equal to [`tetra_proto::json::to_line`].
    pub fn encode(&mut self, event: &mut GetEventsResponse) -> String {
        let Some((key, process, parent)) = event.event.as_mut().and_then(processes) else {
            return tetra_proto::json::to_line(event);
        };
        let (process, parent) = (process.take(), parent.take());
        let rest = tetra_proto::json::to_line(event);
        let line = self.splice(key, rest, process.as_ref(), parent.as_ref());
        // Put the objects back: the event is published with them.
        if let Some((_, p, q)) = event.event.as_mut().and_then(processes) {
            (*p, *q) = (process, parent);
        }
        // Not expected (the key is always there), but then the plain encoding is right.
        line.unwrap_or_else(|| tetra_proto::json::to_line(event))
    }

    /// `rest` (the event encoded without its processes) with the processes put back in
    /// front of the fields of its `key` object.
    fn splice(
        &mut self,
        key: &str,
        rest: String,
        process: Option<&Process>,
        parent: Option<&Process>,
    ) -> Option<String> {
        if process.is_none() && parent.is_none() {
            return Some(rest);
        }
        // The object opens with `"KEY":{`: only a key can be followed by `":{` (inside a
        // string value the quote would be escaped).
        let open = format!("\"{key}\":{{");
        let at = rest.find(&open)? + open.len();
        let mut line = String::with_capacity(rest.len() + 8192);
        line.push_str(&rest[..at]);
        for (name, p) in [("process", process), ("parent", parent)] {
            let Some(p) = p else { continue };
            if !line.ends_with('{') {
                line.push(',');
            }
            line.push('"');
            line.push_str(name);
            line.push_str("\":");
            line.push_str(self.process_json(p));
        }
        if !rest[at..].starts_with('}') {
            line.push(',');
        }
        line.push_str(&rest[at..]);
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tetra_proto::tetragon::{
        kprobe_argument::Arg, Capabilities, KprobeArgument, Namespace, Namespaces, ProcessExec,
        ProcessExit, ProcessKprobe, ProcessLsm, ProcessTracepoint, ProcessUprobe, ProcessUsdt,
        RateLimitInfo,
    };

    fn process(binary: &str, pid: u32) -> Process {
        let ns = Some(Namespace {
            inum: 4026531836,
            is_host: true,
        });
        Process {
            exec_id: format!("id-{pid}"),
            pid: Some(pid),
            uid: Some(0),
            binary: binary.into(),
            arguments: "if=\"/dev/zero\" \\ é".into(),
            flags: "execve clone".into(),
            start_time: Some(std::time::SystemTime::UNIX_EPOCH.into()),
            refcnt: 1,
            cap: Some(Capabilities {
                permitted: vec![0, 21],
                effective: vec![21],
                inheritable: vec![],
            }),
            ns: Some(Namespaces {
                uts: ns,
                pid: ns,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn envelope(event: Event) -> GetEventsResponse {
        GetEventsResponse {
            event: Some(event),
            node_name: "node \"process_kprobe\":{".into(),
            time: Some(std::time::SystemTime::UNIX_EPOCH.into()),
            ..Default::default()
        }
    }

    fn events(p: Option<Process>, q: Option<Process>) -> Vec<GetEventsResponse> {
        let args = vec![KprobeArgument {
            arg: Some(Arg::IntArg(0)),
            label: String::new(),
        }];
        [
            Event::ProcessExec(ProcessExec {
                process: p.clone(),
                parent: q.clone(),
                ..Default::default()
            }),
            Event::ProcessExit(ProcessExit {
                process: p.clone(),
                parent: q.clone(),
                status: 3,
                ..Default::default()
            }),
            Event::ProcessKprobe(ProcessKprobe {
                process: p.clone(),
                parent: q.clone(),
                function_name: "fd_install".into(),
                args: args.clone(),
                ..Default::default()
            }),
            Event::ProcessTracepoint(ProcessTracepoint {
                process: p.clone(),
                parent: q.clone(),
                subsys: "syscalls".into(),
                args,
                ..Default::default()
            }),
            Event::ProcessUprobe(ProcessUprobe {
                process: p.clone(),
                parent: q.clone(),
                ..Default::default()
            }),
            Event::ProcessLsm(ProcessLsm {
                process: p.clone(),
                parent: q.clone(),
                ..Default::default()
            }),
            Event::ProcessUsdt(ProcessUsdt {
                process: p,
                parent: q,
                name: "probe".into(),
                ..Default::default()
            }),
            Event::RateLimitInfo(RateLimitInfo {
                number_of_dropped_process_events: 2,
            }),
        ]
        .into_iter()
        .map(envelope)
        .collect()
    }

    #[test]
    fn lines_equal_the_plain_encoding_and_events_are_unchanged() {
        let mut enc = LineEncoder::default();
        let (p, q) = (process("/usr/bin/dd", 10), process("/bin/sh", 1));
        for _ in 0..2 {
            for (p, q) in [
                (Some(p.clone()), Some(q.clone())),
                (Some(p.clone()), None),
                (None, Some(q.clone())),
                (None, None),
            ] {
                for mut event in events(p, q) {
                    let before = event.clone();
                    assert_eq!(enc.encode(&mut event), tetra_proto::json::to_line(&before));
                    assert_eq!(event, before);
                }
            }
        }
        // An empty event object (no field besides the processes).
        let mut bare = envelope(Event::ProcessUprobe(ProcessUprobe::default()));
        assert_eq!(enc.encode(&mut bare), tetra_proto::json::to_line(&bare));
    }

    #[test]
    fn a_changed_process_is_encoded_again() {
        let mut enc = LineEncoder::default();
        let mut p = process("/usr/bin/dd", 10);
        for refcnt in [1, 2, 1] {
            p.refcnt = refcnt;
            let mut event = events(Some(p.clone()), None).remove(3);
            let line = enc.encode(&mut event);
            assert_eq!(line, tetra_proto::json::to_line(&event));
            assert!(line.contains(&format!("\"refcnt\":{refcnt}")), "{line}");
        }
        // More processes than the cache keeps: it starts over, lines stay right.
        for pid in 0..(CACHED as u32 + 10) {
            let mut event = events(Some(process("/bin/true", pid)), None).remove(0);
            assert_eq!(enc.encode(&mut event), tetra_proto::json::to_line(&event));
        }
        assert!(enc.cache.len() <= CACHED);
    }
}
