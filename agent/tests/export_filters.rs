//! Export flags through the real agent: allow/deny lists, field filters, redaction (JSON
//! and gRPC), rate limit, and start-up errors for bad filter JSON.
mod common;
mod rpc;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{kind, marker, with_arg, Agent};
use rpc::{args_contain, read_until};
use serde_json::Value;
use tetra_proto::tetragon::{get_events_response::Event, Filter, GetEventsRequest};

fn args_of(e: &Value) -> &str {
    kind(e).1["process"]["arguments"].as_str().unwrap_or("")
}

#[test]
fn bad_filter_json_is_a_start_up_error_naming_flag_and_key() {
    let cases = [
        ("--export-allowlist", r#"{"namespaces":["x"]}"#, "namespaces"),
        ("--export-denylist", r#"{"event_set":["PROCESS_EXCE"]}"#, "PROCESS_EXCE"),
        ("--field-filters", r#"{"fields":"parent","action":"DROP"}"#, "DROP"),
        ("--redaction-filters", r#"{"redact":["(unclosed"]}"#, "(unclosed"),
        ("--export-allowlist", r#"{"binary_regex":["a"]} nope"#, "filter 2"),
    ];
    for (flag, value, needle) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_tetrad"))
            .args([flag, value, "--server-address="])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} {value} accepted");
        assert!(err.contains(flag) && err.contains(needle), "{flag} {value}: {err}");
        assert!(!err.contains("tetrad ready"), "{err}");
    }
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn allowlist_denylist_and_field_filters_shape_the_export() {
    let mark = marker("allow");
    let allow = format!(r#"{{"arguments_regex":["{mark}"]}}"#);
    let deny = r#"{"binary_regex":["/echo$"]}"#;
    let fields = r#"{"fields":"process.binary,process.arguments","action":"INCLUDE"}"#;
    let mut agent = Agent::start(&[
        "--export-allowlist",
        &allow,
        "--export-denylist",
        deny,
        "--field-filters",
        fields,
    ]);
    rpc::run("/bin/echo", &[&mark]);
    rpc::run("/bin/false", &["other", "args"]);
    rpc::run("/bin/true", &[&mark]);
    agent.wait_for("true exit", |e| with_arg(e, "process_exit", &mark));
    agent.stop();
    let events = agent.events();
    assert!(!events.is_empty());
    for e in &events {
        assert!(args_of(e).contains(&mark), "allowlist lets only the marker through: {e}");
        let process = kind(e).1["process"].as_object().unwrap();
        assert_eq!(process["binary"], "/bin/true", "denylist removes echo: {e}");
        let mut keys: Vec<&String> = process.keys().collect();
        keys.sort();
        assert_eq!(keys, ["arguments", "binary"], "field filter: {e}");
        assert!(kind(e).1.get("parent").is_none(), "{e}");
    }
    assert_eq!(events.iter().filter(|e| kind(e).0 == "process_exec").count(), 1);
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn redaction_applies_to_json_and_grpc() {
    let run_dir = tempfile::tempdir().unwrap();
    let run_arg = format!("--run-dir={}", run_dir.path().display());
    let redact = r#"{"redact":["--password(?:\\s+|=)(\\S*)"]}"#;
    let mut agent =
        Agent::start(&["--redaction-filters", redact, "--server-address=127.0.0.1:0", &run_arg]);
    let address = rpc::info(run_dir.path(), "server_address");
    let mark = marker("redact");
    rpc::runtime().block_on(async {
        let mut client = rpc::connect(&address).await;
        let req = GetEventsRequest {
            allow_list: vec![Filter { arguments_regex: vec![mark.clone()], ..Default::default() }],
            ..Default::default()
        };
        let mut stream = client.get_events(req).await.unwrap().into_inner();
        rpc::run("/bin/echo", &[&mark, "--password=hunter2", "--user", "bob"]);
        let seen = read_until(&mut stream, 20, "redacted exec", |e| {
            matches!(e.event, Some(Event::ProcessExec(_))) && args_contain(e, &mark)
        })
        .await;
        let args = &seen.last().unwrap().process().unwrap().arguments;
        assert_eq!(args, &format!("{mark} --password=***** --user bob"));
    });
    let exec = agent.wait_for("redacted exec", |e| with_arg(e, "process_exec", &mark));
    assert_eq!(args_of(&exec), format!("{mark} --password=***** --user bob"));
    agent.stop();
    let all = std::fs::read_to_string(&agent.export).unwrap();
    assert!(!all.contains("hunter2"), "the secret never reaches the export");
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn rate_limit_drops_counts_and_reports() {
    const LIMIT: usize = 5;
    let mark = marker("ratelimit");
    let allow = format!(r#"{{"arguments_regex":["{mark}"]}}"#);
    let limit = LIMIT.to_string();
    // A 1.5 s window stands in for Tetragon's minute.
    let mut agent = Agent::start(&[
        "--export-allowlist",
        &allow,
        "--export-rate-limit",
        &limit,
        "--export-rate-limit-window-ms",
        "1500",
    ]);
    let runs = 40;
    let started = Instant::now();
    for i in 0..runs {
        rpc::run("/bin/true", &[&mark, &i.to_string()]);
    }
    let burst = started.elapsed();
    // Wait past the window so its drops are reported.
    let info = agent.wait_for("rate_limit_info", |e| kind(e).0 == "rate_limit_info");
    std::thread::sleep(Duration::from_millis(1600));
    let stats = agent.stop();
    let events = agent.events();
    let reported: u64 = events
        .iter()
        .filter(|e| kind(e).0 == "rate_limit_info")
        // uint64 is a JSON string in protojson.
        .map(|e| {
            e["rate_limit_info"]["number_of_dropped_process_events"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    let exported = events.iter().filter(|e| args_of(e).contains(&mark)).count();
    assert!(info["node_name"].is_string());
    assert_eq!(
        exported as u64 + reported,
        2 * runs as u64,
        "every event exported or reported dropped"
    );
    assert_eq!(reported, stats["export_rate_limited"], "{stats:?}");
    // At most LIMIT per window the burst (and the drain) overlapped.
    let windows = (burst.as_millis() / 1500 + 2) as usize;
    assert!(exported <= LIMIT * windows, "{exported} exported in {windows} windows");
    assert!(reported > 0);
}
