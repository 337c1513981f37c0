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
    /// The event encoded without its processes (kept to reuse its memory).
    rest: Vec<u8>,
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

/// Appends the JSON of `event` to `out`, as [`tetra_proto::json::to_line`] encodes it.
fn append_json(out: &mut Vec<u8>, event: &GetEventsResponse) {
    // Encoding a generated message cannot fail (string keys, no custom impls), and
    // writing to a Vec neither.
    let _ = serde_json::to_writer(out, event);
}

/// The JSON text of `p`, encoded now or taken from `cache`.
fn process_text<'c>(cache: &'c mut HashMap<String, (Process, String)>, p: &Process) -> &'c str {
    let fresh = match cache.get(&p.exec_id) {
        Some((cached, _)) => cached != p,
        None => true,
    };
    if fresh {
        if cache.len() >= CACHED {
            cache.clear();
        }
        let text = serde_json::to_string(p).unwrap_or_default();
        cache.insert(p.exec_id.clone(), (p.clone(), text));
    }
    cache.get(&p.exec_id).map_or("", |(_, text)| text.as_str())
}

impl LineEncoder {
    /// Puts the event as one JSON line (no newline) in `line`, byte for byte
    /// [`tetra_proto::json::to_line`]; `line` is the caller's, reused from line to line.
    pub fn encode(&mut self, event: &mut GetEventsResponse, line: &mut Vec<u8>) {
        line.clear();
        let Some((key, process, parent)) = event.event.as_mut().and_then(processes) else {
            return append_json(line, event);
        };
        let (process, parent) = (process.take(), parent.take());
        self.rest.clear();
        append_json(&mut self.rest, event);
        let spliced = self.splice(key, process.as_ref(), parent.as_ref(), line);
        // Put the objects back: the event is the caller's.
        if let Some((_, p, q)) = event.event.as_mut().and_then(processes) {
            (*p, *q) = (process, parent);
        }
        if !spliced {
            // Not expected (the key is always there), but then the plain encoding is right.
            line.clear();
            append_json(line, event);
        }
    }

    /// `self.rest` (the event encoded without its processes) with the processes put back
    /// in front of the fields of its `key` object, into `line`; false if the key is missing.
    fn splice(
        &mut self,
        key: &str,
        process: Option<&Process>,
        parent: Option<&Process>,
        line: &mut Vec<u8>,
    ) -> bool {
        let rest = &self.rest[..];
        if process.is_none() && parent.is_none() {
            line.extend_from_slice(rest);
            return true;
        }
        // The object opens with `"KEY":{`: only a key can be followed by `":{` (inside a
        // string value the quote would be escaped).
        let open = format!("\"{key}\":{{");
        let Some(at) = rest.windows(open.len()).position(|w| w == open.as_bytes()) else {
            return false;
        };
        let at = at + open.len();
        line.extend_from_slice(&rest[..at]);
        for (name, p) in [("process", process), ("parent", parent)] {
            let Some(p) = p else { continue };
            if line.last() != Some(&b'{') {
                line.push(b',');
            }
            line.push(b'"');
            line.extend_from_slice(name.as_bytes());
            line.extend_from_slice(b"\":");
            line.extend_from_slice(process_text(&mut self.cache, p).as_bytes());
        }
        if rest.get(at) != Some(&b'}') {
            line.push(b',');
        }
        line.extend_from_slice(&rest[at..]);
        true
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

    /// The line `enc` encodes, through a buffer that held a longer line before.
    fn encoded(enc: &mut LineEncoder, event: &mut GetEventsResponse) -> String {
        let mut line = vec![b'x'; 10_000];
        enc.encode(event, &mut line);
        String::from_utf8(line).expect("JSON is UTF-8")
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
                    assert_eq!(encoded(&mut enc, &mut event), tetra_proto::json::to_line(&before));
                    assert_eq!(event, before);
                }
            }
        }
        // An empty event object (no field besides the processes).
        let mut bare = envelope(Event::ProcessUprobe(ProcessUprobe::default()));
        assert_eq!(encoded(&mut enc, &mut bare), tetra_proto::json::to_line(&bare));
    }

    #[test]
    fn a_changed_process_is_encoded_again() {
        let mut enc = LineEncoder::default();
        let mut p = process("/usr/bin/dd", 10);
        for refcnt in [1, 2, 1] {
            p.refcnt = refcnt;
            let mut event = events(Some(p.clone()), None).remove(3);
            let line = encoded(&mut enc, &mut event);
            assert_eq!(line, tetra_proto::json::to_line(&event));
            assert!(line.contains(&format!("\"refcnt\":{refcnt}")), "{line}");
        }
        // More processes than the cache keeps: it starts over, lines stay right.
        for pid in 0..(CACHED as u32 + 10) {
            let mut event = events(Some(process("/bin/true", pid)), None).remove(0);
            assert_eq!(encoded(&mut enc, &mut event), tetra_proto::json::to_line(&event));
        }
        assert!(enc.cache.len() <= CACHED);
    }
}
