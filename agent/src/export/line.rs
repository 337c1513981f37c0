//! JSON lines of published events, with the `process` and `parent` objects of a process
//! encoded once and reused while the process is unchanged.
//!
//! Those two objects (credentials, capabilities, namespaces) are most of a line's bytes
//! and of its encoding time, and every event of one process repeats them. The line is the
//! event encoded without them, with their cached text put back in front of the other
//! fields: `process` and `parent` are fields 1 and 2 of every event kind that has them,
//! so the result is byte for byte [`tetra_proto::json::to_line`] (tests check it).
use std::collections::HashMap;
use std::sync::Arc;

use memchr::memmem::Finder;
use tetra_proto::tetragon::{GetEventsResponse, Process};

use crate::events::published::processes_mut;
use crate::process::cache::Shown;

/// Processes whose encoding is kept; when full the cache starts over (a few long-lived
/// busy processes make most events, so the memory stays small).
const CACHED: usize = 256;

#[derive(Default)]
pub struct LineEncoder {
    /// By exec id: the process as last encoded, and its JSON text.
    cache: HashMap<String, (Process, String)>,
    /// The event encoded without its processes (kept to reuse its memory).
    rest: Vec<u8>,
    /// For [`fields_start`].
    key_finder: Option<(&'static str, Finder<'static>)>,
}

/// Appends the JSON of `event` to `out`, as [`tetra_proto::json::to_line`] encodes it.
fn append_json(out: &mut Vec<u8>, event: &GetEventsResponse) {
    // Encoding a generated message cannot fail (string keys, no custom impls), and
    // writing to a Vec neither.
    let _ = serde_json::to_writer(out, event);
}

/// Makes the cached JSON text of `p` current: encoded again unless the process is the
/// one encoded last under its exec id.
fn refresh(cache: &mut HashMap<String, (Process, String)>, p: &Process) {
    if cache.get(&p.exec_id).is_some_and(|(cached, _)| cached == p) {
        return;
    }
    let text = serde_json::to_string(p).unwrap_or_default();
    cache.insert(p.exec_id.clone(), (p.clone(), text));
}

/// Finds where the `key` object's fields begin in `rest`: just after `"KEY":{` (inside a
/// string value the quotes would be escaped, so only the key matches). The finder of the
/// last key is kept: a burst is mostly events of one kind.
fn fields_start(
    finder: &mut Option<(&'static str, Finder<'static>)>,
    rest: &[u8],
    key: &'static str,
) -> Option<usize> {
    if finder.as_ref().is_none_or(|(last, _)| *last != key) {
        let needle = format!("\"{key}\":{{");
        *finder = Some((key, Finder::new(needle.as_bytes()).into_owned()));
    }
    let (_, f) = finder.as_ref()?;
    f.find(rest).map(|at| at + f.needle().len())
}

/// One encoded line, as the pieces to write one after the other (no newline).
pub struct Line<'a> {
    parts: [&'a [u8]; 7],
    count: usize,
}

impl<'a> Line<'a> {
    fn whole(text: &'a [u8]) -> Line<'a> {
        let mut line = Line { parts: [&[]; 7], count: 0 };
        line.push(text);
        line
    }

    fn push(&mut self, part: &'a [u8]) {
        self.parts[self.count] = part;
        self.count += 1;
    }

    pub fn parts(&self) -> &[&'a [u8]] {
        &self.parts[..self.count]
    }
}

/// Puts `process` and `parent` back in the event they were taken from.
fn restore(event: &mut GetEventsResponse, [process, parent]: [Option<Process>; 2]) {
    if let Some((_, [p, q])) = processes_mut(event) {
        (*p, *q) = (process, parent);
    }
}

impl LineEncoder {
    /// The event as one JSON line, byte for byte [`tetra_proto::json::to_line`] of the
    /// whole event, as pieces borrowed from the encoder and from `shown` (the process texts
    /// are not copied). `shown`: the processes held apart from `event`
    /// ([`crate::events::Published`]), whose texts are written as they are; the event's own
    /// processes are compared with the ones encoded last. The event is left as it was.
    pub fn encode<'a>(
        &'a mut self,
        event: &mut GetEventsResponse,
        shown: &'a [Option<Arc<Shown>>; 2],
    ) -> Line<'a> {
        self.rest.clear();
        let Some((key, [process, parent])) = processes_mut(event) else {
            append_json(&mut self.rest, event);
            return Line::whole(&self.rest);
        };
        let own = [process.take(), parent.take()];
        append_json(&mut self.rest, event);
        let present = |i: usize| own[i].is_some() || shown[i].is_some();
        let at = match fields_start(&mut self.key_finder, &self.rest, key) {
            Some(at) if present(0) || present(1) => at,
            _ => {
                // No process to put in, or (not expected) no key: the plain encoding of
                // the whole event is right.
                let whole = |i: usize| {
                    own[i].clone().or_else(|| shown[i].as_ref().map(|s| s.process.clone()))
                };
                restore(event, [whole(0), whole(1)]);
                self.rest.clear();
                append_json(&mut self.rest, event);
                restore(event, own);
                return Line::whole(&self.rest);
            }
        };
        // Room for both before either is refreshed, so neither text goes with a clear.
        if self.cache.len() + 2 > CACHED {
            self.cache.clear();
        }
        own.iter().flatten().for_each(|p| refresh(&mut self.cache, p));
        let cache = &self.cache;
        let text = |i: usize| match (&shown[i], &own[i]) {
            (Some(s), _) => Some(s.json().as_bytes()),
            (None, Some(p)) => cache.get(&p.exec_id).map(|(_, t)| t.as_bytes()),
            (None, None) => None,
        };
        let texts = (text(0), text(1));
        restore(event, own);
        let rest = &self.rest[..];
        let mut line = Line::whole(&rest[..at]);
        if let Some(text) = texts.0 {
            line.push(b"\"process\":");
            line.push(text);
        }
        if let Some(text) = texts.1 {
            line.push(if texts.0.is_some() { b",\"parent\":" } else { b"\"parent\":" });
            line.push(text);
        }
        if rest.get(at) != Some(&b'}') {
            line.push(b",");
        }
        line.push(&rest[at..]);
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tetra_proto::tetragon::{
        get_events_response::Event, kprobe_argument::Arg, Capabilities, KprobeArgument, Namespace,
        Namespaces, ProcessExec, ProcessExit, ProcessKprobe, ProcessLsm, ProcessTracepoint,
        ProcessUprobe, ProcessUsdt, RateLimitInfo,
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

    /// The line `enc` encodes, its pieces joined.
    fn encoded(enc: &mut LineEncoder, event: &mut GetEventsResponse) -> String {
        let line = enc.encode(event, &[None, None]).parts().concat();
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
    fn processes_held_apart_are_written_from_their_renderings() {
        let mut enc = LineEncoder::default();
        let (p, q) = (process("/usr/bin/dd", 10), process("/bin/sh", 1));
        let shared = |p: &Process| Some(Arc::new(Shown::new(p.clone())));
        for _ in 0..2 {
            // Both held apart, only the process (its parent in the event), only the parent.
            for (shown, own) in [
                ([shared(&p), shared(&q)], (None, None)),
                ([shared(&p), None], (None, Some(q.clone()))),
                ([None, shared(&q)], (None, None)),
            ] {
                let wholes = events(
                    shown[0].as_ref().map(|s| s.process.clone()),
                    shown[1].as_ref().map(|s| s.process.clone()).or(own.1.clone()),
                );
                let bare = events(own.0.clone(), own.1.clone());
                for (mut event, whole) in bare.into_iter().zip(wholes) {
                    let before = event.clone();
                    let line = String::from_utf8(enc.encode(&mut event, &shown).parts().concat());
                    let has_processes = processes_mut(&mut event).is_some();
                    let expected = if has_processes { &whole } else { &before };
                    assert_eq!(line.unwrap(), tetra_proto::json::to_line(expected));
                    assert_eq!(event, before);
                }
            }
        }
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
