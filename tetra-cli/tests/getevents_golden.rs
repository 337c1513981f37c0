//! Golden tests: `tetra getevents` on the Tetragon conformance events.

use std::io::Write;
use std::process::{Command, Stdio};

/// Tetragon's exported events and upstream `tetra`'s compact rendering of them.
struct Corpus {
    events: String,
    golden: String,
}

/// The corpus for `test`, or None (the test is skipped, as printed) where it is absent.
fn corpus(test: &str) -> Option<Corpus> {
    let dir = tetra_corpus::dir_for(test, tetra_corpus::Part::Events)?;
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    Some(Corpus { events: read("all-events.jsonl"), golden: read("all-events.compact.txt") })
}

/// Runs `tetra getevents ARGS` with `input` on stdin; returns (stdout, stderr, success).
fn tetra(args: &[&str], input: &str) -> (String, String, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tetra"))
        .arg("getevents")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tetra");
    // tetra may exit before reading stdin (bad flags): ignore EPIPE here.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let out = child.wait_with_output().unwrap();
    (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap(), out.status.success())
}

fn golden_lines_where(golden: &str, pred: impl Fn(&str) -> bool) -> String {
    golden.lines().filter(|l| pred(l)).map(|l| format!("{l}\n")).collect()
}

#[test]
fn compact_matches_upstream_byte_for_byte() {
    let Some(c) = corpus("compact_matches_upstream_byte_for_byte") else { return };
    let (out, err, ok) = tetra(&["-o", "compact", "--color", "never"], &c.events);
    assert!(ok, "{err}");
    assert_eq!(err, "");
    assert_eq!(out, c.golden);
}

#[test]
fn namespace_and_pod_filters() {
    let Some(c) = corpus("namespace_and_pod_filters") else { return };
    let (out, _, ok) = tetra(&["-o", "compact", "--color", "never", "--namespaces", "default", "--pods", "deathstar"], &c.events);
    assert!(ok);
    let want = golden_lines_where(&c.golden, |l| l.contains(" default/deathstar-"));
    assert_eq!(want.lines().count(), 2);
    assert_eq!(out, want);

    let (out, _, _) = tetra(&["-o", "compact", "--color", "never", "-n", "tenant-jobs"], &c.events);
    assert_eq!(out, golden_lines_where(&c.golden, |l| l.contains(" tenant-jobs/")));

    // --host adds "" (non-pod processes) to the namespace list
    let (out, _, _) = tetra(&["-o", "compact", "--color", "never", "--host"], &c.events);
    assert_eq!(out, golden_lines_where(&c.golden, |l| l.contains(" minikube /")));
    assert!(out.lines().count() > 5);
}

#[test]
fn event_type_filter() {
    let Some(c) = corpus("event_type_filter") else { return };
    let (out, _, ok) = tetra(&["-o", "compact", "--color", "never", "-e", "PROCESS_EXIT,PROCESS_KPROBE"], &c.events);
    assert!(ok);
    assert_eq!(out, golden_lines_where(&c.golden, |l| !l.starts_with("🚀")));
    let (_, err, ok) = tetra(&["-e", "PROCESS_EXCE"], &c.events);
    assert!(!ok);
    assert!(err.contains("PROCESS_EXCE"), "{err}");
}

#[test]
fn timestamps_prefix() {
    let Some(c) = corpus("timestamps_prefix") else { return };
    let (out, _, ok) = tetra(&["-o", "compact", "--color", "never", "--timestamps", "-e", "PROCESS_EXIT", "--process", "curl$"], &c.events);
    assert!(ok);
    assert_eq!(out, "2022-01-19T16:29:02.515000000Z 💥 exit    tenant-jobs/elasticsearch-56f8fc6988-pb8c7 /usr/bin/curl www.google.com 0\n");
}

#[test]
fn exclude_and_include_fields() {
    let Some(c) = corpus("exclude_and_include_fields") else { return };
    let (out, _, ok) = tetra(&["-F", "parent,process.pod"], &c.events);
    assert!(ok);
    let inputs: Vec<serde_json::Value> = c.events.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let outputs: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(inputs.len(), outputs.len());
    for (mut i, o) in inputs.into_iter().zip(outputs) {
        let obj = i.as_object_mut().unwrap();
        let key = obj.keys().find(|k| k.starts_with("process_")).unwrap().clone();
        let payload = obj.get_mut(&key).unwrap().as_object_mut().unwrap();
        payload.remove("parent");
        payload.get_mut("process").unwrap().as_object_mut().unwrap().remove("pod");
        assert_eq!(i, o);
    }
    let (out, _, _) = tetra(&["-f", "process.binary", "-e", "PROCESS_EXIT"], &c.events);
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["process_exit"], serde_json::json!({"process": {"binary": "/usr/bin/curl"}}));
    assert_eq!(first["node_name"], "minikube");
}

#[test]
fn bad_lines_are_reported_and_skipped() {
    let Some(c) = corpus("bad_lines_are_reported_and_skipped") else { return };
    let mut lines = c.events.lines();
    let input = format!("{}\nnot json\n\n{{\"process_exec\": 5}}\n{}\n", lines.next().unwrap(), lines.next().unwrap());
    let (out, err, ok) = tetra(&["-o", "compact", "--color", "never"], &input);
    assert!(ok);
    assert_eq!(out, c.golden.lines().take(2).map(|l| format!("{l}\n")).collect::<String>());
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("line 4"), "{err}");
    assert_eq!(err.lines().count(), 2, "{err}");
}

#[test]
fn rate_limit_info_and_color() {
    let input = "{\"rate_limit_info\":{\"number_of_dropped_process_events\":\"42\"},\"node_name\":\"node-a\"}\n";
    let (out, _, ok) = tetra(&["-o", "compact", "--color", "never"], input);
    assert!(ok);
    assert_eq!(out, "🧬 rate_limit_info node-a dropped 42 events\n");
    let Some(c) = corpus("rate_limit_info_and_color") else { return };
    let (out, _, _) = tetra(&["-o", "compact", "--color", "always", "-e", "PROCESS_EXIT"], &c.events);
    assert!(out.starts_with("\x1b[34m💥 exit   \x1b[0m \x1b[32mtenant-jobs/elasticsearch-56f8fc6988-pb8c7\x1b[0m"), "{out:?}");
}

#[test]
fn json_output_round_trips() {
    let Some(c) = corpus("json_output_round_trips") else { return };
    let (out, _, ok) = tetra(&[], &c.events);
    assert!(ok);
    for (a, b) in c.events.lines().zip(out.lines()) {
        let a: serde_json::Value = serde_json::from_str(a).unwrap();
        let b: serde_json::Value = serde_json::from_str(b).unwrap();
        assert_eq!(a, b);
    }
    assert_eq!(out.lines().count(), c.events.lines().count());
}
