//! Golden tests: `tetra getevents` on the Tetragon conformance events.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn events_dir() -> PathBuf {
    std::env::var_os("TETRA_CONFORMANCE_DIR")
        .map(PathBuf::from)
        // Default: `shared/` beside the repository clone (<crate>/../../shared).
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/tetragon"))
        .join("events")
}

fn all_events() -> String {
    let p = events_dir().join("all-events.jsonl");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn golden() -> String {
    let p = events_dir().join("all-events.compact.txt");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
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

fn golden_lines_where(pred: impl Fn(&str) -> bool) -> String {
    golden().lines().filter(|l| pred(l)).map(|l| format!("{l}\n")).collect()
}

#[test]
fn compact_matches_upstream_byte_for_byte() {
    let (out, err, ok) = tetra(&["-o", "compact", "--color", "never"], &all_events());
    assert!(ok, "{err}");
    assert_eq!(err, "");
    assert_eq!(out, golden());
}

#[test]
fn namespace_and_pod_filters() {
    let (out, _, ok) = tetra(&["-o", "compact", "--color", "never", "--namespaces", "default", "--pods", "deathstar"], &all_events());
    assert!(ok);
    let want = golden_lines_where(|l| l.contains(" default/deathstar-"));
    assert_eq!(want.lines().count(), 2);
    assert_eq!(out, want);

    let (out, _, _) = tetra(&["-o", "compact", "--color", "never", "-n", "tenant-jobs"], &all_events());
    assert_eq!(out, golden_lines_where(|l| l.contains(" tenant-jobs/")));

    // --host adds "" (non-pod processes) to the namespace list
    let (out, _, _) = tetra(&["-o", "compact", "--color", "never", "--host"], &all_events());
    assert_eq!(out, golden_lines_where(|l| l.contains(" minikube /")));
    assert!(out.lines().count() > 5);
}

#[test]
fn event_type_filter() {
    let (out, _, ok) = tetra(&["-o", "compact", "--color", "never", "-e", "PROCESS_EXIT,PROCESS_KPROBE"], &all_events());
    assert!(ok);
    assert_eq!(out, golden_lines_where(|l| !l.starts_with("🚀")));
    let (_, err, ok) = tetra(&["-e", "PROCESS_EXCE"], &all_events());
    assert!(!ok);
    assert!(err.contains("PROCESS_EXCE"), "{err}");
}

#[test]
fn timestamps_prefix() {
    let (out, _, ok) = tetra(&["-o", "compact", "--color", "never", "--timestamps", "-e", "PROCESS_EXIT", "--process", "curl$"], &all_events());
    assert!(ok);
    assert_eq!(out, "2022-01-19T16:29:02.515000000Z 💥 exit    tenant-jobs/elasticsearch-56f8fc6988-pb8c7 /usr/bin/curl www.google.com 0\n");
}

#[test]
fn exclude_and_include_fields() {
    let (out, _, ok) = tetra(&["-F", "parent,process.pod"], &all_events());
    assert!(ok);
    let input = all_events();
    let inputs: Vec<serde_json::Value> = input.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
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
    let (out, _, _) = tetra(&["-f", "process.binary", "-e", "PROCESS_EXIT"], &all_events());
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["process_exit"], serde_json::json!({"process": {"binary": "/usr/bin/curl"}}));
    assert_eq!(first["node_name"], "minikube");
}

#[test]
fn bad_lines_are_reported_and_skipped() {
    let events = all_events();
    let mut lines = events.lines();
    let input = format!("{}\nnot json\n\n{{\"process_exec\": 5}}\n{}\n", lines.next().unwrap(), lines.next().unwrap());
    let (out, err, ok) = tetra(&["-o", "compact", "--color", "never"], &input);
    assert!(ok);
    assert_eq!(out, golden().lines().take(2).map(|l| format!("{l}\n")).collect::<String>());
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
    let (out, _, _) = tetra(&["-o", "compact", "--color", "always", "-e", "PROCESS_EXIT"], &all_events());
    assert!(out.starts_with("\x1b[34m💥 exit   \x1b[0m \x1b[32mtenant-jobs/elasticsearch-56f8fc6988-pb8c7\x1b[0m"), "{out:?}");
}

#[test]
fn json_output_round_trips() {
    let (out, _, ok) = tetra(&[], &all_events());
    assert!(ok);
    for (a, b) in all_events().lines().zip(out.lines()) {
        let a: serde_json::Value = serde_json::from_str(a).unwrap();
        let b: serde_json::Value = serde_json::from_str(b).unwrap();
        assert_eq!(a, b);
    }
    assert_eq!(out.lines().count(), all_events().lines().count());
}
