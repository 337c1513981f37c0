//! Socket tracking (TrackSock/UntrackSock) on Debian's kernel (`TETRA_VM_KERNEL`) (tier 3): Tetragon's
//! `tcp-accept.yaml` and `tcp-listen.yaml` loaded unmodified (from the conformance corpus)
//! and `tests/fixtures/socktrack/untrack.yaml`, while `socktrack_workload` uses sockets
//! from processes other than the one that made them (see its doc).
//!
//! A tracked socket's events belong to the process that made it: listen() called by a
//! forked child is the parent's; the accepted connection, which the kernel creates and
//! moves to ESTABLISHED in softirq while the client runs, is the server's; the client's
//! socket freed when the server's FIN arrives is the client's. After UntrackSock the
//! closing process is reported as itself.
use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tetra_tests::require_vm;
use tetra_tests::vm::{cargo_build_binary, Vm};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/socktrack");

const SCRIPT: &str = r#"
/bin/tetrad --export-filename /tmp/events.json --enable-process-cred=false \
    --enable-process-ns=false --tracing-policy /policies/tcp-accept.yaml \
    --tracing-policy /policies/tcp-listen.yaml --tracing-policy /policies/untrack.yaml \
    > /tmp/tetrad.log 2>&1 &
agent=$!
tetra_wait 120 grep -q "tetrad ready" /tmp/tetrad.log
/bin/socktrack_workload > /tmp/workload.out 2>&1; echo "rc=$?" >> /tmp/workload.out
sleep 3
kill -INT $agent
wait $agent
grep '"process_kprobe"' /tmp/events.json > /tmp/kprobes.json
tetra_section agentlog cat /tmp/tetrad.log
tetra_section workload cat /tmp/workload.out
tetra_section kprobes cat /tmp/kprobes.json
"#;

/// One kprobe event: (policy, function, pid it is attributed to).
type Event = (String, String, u64);

#[test]
fn tracked_sockets_attribute_events_to_their_owner_on_debian_kernel() {
    require_vm!();
    let Some(corpus) = tetra_corpus::dir_for(
        "tracked_sockets_attribute_events_to_their_owner_on_debian_kernel",
        tetra_corpus::Part::Policies,
    ) else {
        return;
    };
    let policy = |name: &str| {
        let p = corpus.join(name);
        assert!(p.exists(), "{} is missing from the conformance corpus", p.display());
        p
    };
    let tetrad = cargo_build_binary("tetra-agent", "tetrad").expect("build tetrad");
    let workload = cargo_build_binary("tetra-tests", "socktrack_workload").expect("build the workload");
    let out = Vm::new()
        .binary(&tetrad, "/bin/tetrad")
        .binary(&workload, "/bin/socktrack_workload")
        .file(policy("tcp-accept.yaml"), "/policies/tcp-accept.yaml")
        .file(policy("tcp-listen.yaml"), "/policies/tcp-listen.yaml")
        .file(format!("{FIXTURES}/untrack.yaml"), "/policies/untrack.yaml")
        .memory_mb(1536)
        .script(SCRIPT)
        .timeout(Duration::from_secs(420))
        .run()
        .unwrap_or_else(|e| panic!("VM run failed: {e}"));
    out.ensure_success().unwrap_or_else(|e| panic!("{e}"));
    let section = |name: &str| out.require_section(name).unwrap();
    let log = section("agentlog");
    for (name, hooks) in [("accept", 5), ("tcp-listen", 3), ("untrack-on-listen", 3)] {
        assert!(log.contains(&format!("tracing policy \"{name}\" enabled: {hooks} hook(s) attached")), "{name} not loaded; agent log:\n{log}");
    }
    assert!(log.contains("lost=0"), "agent log:\n{log}");
    let value = |key: &str| out.section_value("workload", key).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value("rc"), 0, "{}", section("workload"));
    let (owner, listener, client) = (value("owner"), value("listener"), value("client"));
    let (port, client_port) = (value("port"), value("client_port"));

    let events: Vec<Value> = out
        .json_section("kprobes")
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|e| e["process_kprobe"].clone())
        .collect();
    let dump = || events.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n");
    let ours = [owner, listener, client];
    let summary: Vec<Event> = events
        .iter()
        .map(|e| {
            let pid = e["process"]["pid"].as_u64().unwrap_or(0);
            (e["policy_name"].as_str().unwrap_or("").to_string(), e["function_name"].as_str().unwrap_or("").to_string(), pid)
        })
        .collect();
    // Nothing else in the guest makes or frees IPv4 sockets while the agent runs (the
    // agent is never traced), so every event is the workload's.
    assert!(summary.iter().all(|(_, _, pid)| ours.contains(pid)), "events of other processes (owner {owner}, listener {listener}, client {client}):\n{}", dump());
    let mut counts: BTreeMap<Event, usize> = BTreeMap::new();
    for e in &summary {
        *counts.entry(e.clone()).or_default() += 1;
    }
    let ev = |p: &str, f: &str, pid: u64| (p.to_string(), f.to_string(), pid);
    let expected: BTreeMap<Event, usize> = [
        // tcp-accept.yaml: both phases' sockets made by sk_alloc (the listener of phase 1,
        // the server and client sockets of phase 2) and freed (selector 0 posts them).
        (ev("accept", "sk_alloc", owner), 2),
        (ev("accept", "sk_alloc", client), 1),
        (ev("accept", "__sk_free", owner), 3),
        (ev("accept", "__sk_free", client), 1),
        // The accepted connection: made from the listener and moved to ESTABLISHED in
        // softirq while the client runs, but the listener (and so the new socket) is the
        // server's.
        (ev("accept", "tcp_create_openreq_child", owner), 1),
        (ev("accept", "tcp_set_state", owner), 1),
        // Closes of connected sockets (DAddr 127.0.0.1), each by its own process.
        (ev("accept", "tcp_close", owner), 1),
        (ev("accept", "tcp_close", client), 1),
        // tcp-listen.yaml: the child called listen() on port 1337, on the parent's socket.
        (ev("tcp-listen", "inet_csk_listen_start", owner), 1),
        // untrack.yaml: the same listen() for the owner, which ends the tracking; the
        // child's close of the last fd is then its own.
        (ev("untrack-on-listen", "inet_csk_listen_start", owner), 1),
        (ev("untrack-on-listen", "tcp_close", listener), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, expected, "events:\n{}", dump());

    let find = |p: &str, f: &str| events.iter().filter(|e| e["policy_name"] == p && e["function_name"] == f).collect::<Vec<_>>();
    let sock = |s: &Value| {
        (s["saddr"].as_str().unwrap_or("").to_string(), s["sport"].as_u64().unwrap_or(0), s["daddr"].as_str().unwrap_or("").to_string(), s["dport"].as_u64().unwrap_or(0))
    };
    let lo = || "127.0.0.1".to_string();
    // The accepted connection's events carry the server's view of it.
    let child = find("accept", "tcp_create_openreq_child");
    assert_eq!(sock(&child[0]["args"][0]["sock_arg"]), (lo(), port, "0.0.0.0".into(), 0), "the listener: {:#}", child[0]);
    // The new socket as tcp_create_openreq_child returns it: the peer's port is set, its
    // address only later by the caller (tcp_v4_syn_recv_sock).
    assert_eq!(sock(&child[0]["return"]["sock_arg"]), (lo(), port, "0.0.0.0".into(), client_port), "the new socket: {:#}", child[0]);
    assert_eq!(child[0]["return"]["sock_arg"]["state"], "TCP_SYN_RECV", "{:#}", child[0]);
    let state = find("accept", "tcp_set_state");
    assert_eq!(sock(&state[0]["args"][0]["sock_arg"]), (lo(), port, lo(), client_port), "{:#}", state[0]);
    assert_eq!(state[0]["args"][1]["int_arg"], 1, "{:#}", state[0]);
    for e in find("accept", "tcp_close") {
        let expected = if e["process"]["pid"] == owner { (lo(), port, lo(), client_port) } else { (lo(), client_port, lo(), port) };
        assert_eq!(sock(&e["args"][0]["sock_arg"]), expected, "{e:#}");
    }
    for e in find("accept", "sk_alloc") {
        assert_eq!(e["args"][0]["int_arg"], 2, "{e:#}");
        assert!(e["return"]["sock_arg"].is_object(), "{e:#}");
    }
    for p in ["tcp-listen", "untrack-on-listen"] {
        let l = find(p, "inet_csk_listen_start");
        assert_eq!(sock(&l[0]["args"][0]["sock_arg"]), (lo(), 1337, "0.0.0.0".into(), 0), "{:#}", l[0]);
    }
    let close = find("untrack-on-listen", "tcp_close");
    assert_eq!(sock(&close[0]["args"][0]["sock_arg"]), (lo(), 1337, "0.0.0.0".into(), 0), "{:#}", close[0]);
}
