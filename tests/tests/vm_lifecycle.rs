//! The lifecycle sensor on Debian's kernel (`TETRA_VM_KERNEL`) (tier 3): the same CO-RE object that runs
//! on the development kernel must load there and report the same events.
use std::time::Duration;

use serde_json::Value;
use tetra_tests::require_vm;
use tetra_tests::vm::{cargo_build_binary, Vm};

const SCRIPT: &str = r#"
/bin/tetrad --export-filename /tmp/events.json --enable-process-cred=false \
    --enable-process-ns=false > /tmp/tetrad.log 2>&1 &
agent=$!
tetra_wait 60 grep -q "tetrad ready" /tmp/tetrad.log
/bin/sh -c 'cd /tmp && /bin/echo "a b" c; exit 3'
sleep 30 &
victim=$!
sleep 0.5
kill -9 $victim
wait $victim
sleep 1
kill -INT $agent
wait $agent
tetra_section agentlog cat /tmp/tetrad.log
tetra_section events cat /tmp/events.json
"#;

fn find<'a>(events: &'a [Value], kind: &str, pred: impl Fn(&Value) -> bool) -> &'a Value {
    events
        .iter()
        .filter_map(|e| e.get(kind))
        .find(|body| pred(&body["process"]))
        .unwrap_or_else(|| panic!("no {kind} event matching; events: {events:#?}"))
}

#[test]
fn lifecycle_events_on_debian_kernel() {
    require_vm!();
    let tetrad = cargo_build_binary("tetra-agent", "tetrad").expect("build tetrad");
    let out = Vm::new()
        .binary(&tetrad, "/bin/tetrad")
        .memory_mb(1536)
        .script(SCRIPT)
        .timeout(Duration::from_secs(300))
        .run()
        .unwrap_or_else(|e| panic!("VM run failed: {e}"));
    out.ensure_success().unwrap_or_else(|e| panic!("{e}"));
    let log = out.require_section("agentlog").unwrap();
    assert!(log.contains("tetrad ready"), "agent log:\n{log}");
    assert!(log.contains("lost=0"), "agent log:\n{log}");
    let events: Vec<Value> = out.json_section("events").unwrap_or_else(|e| panic!("{e}"));

    let sh = find(&events, "process_exec", |p| {
        p["arguments"] == "-c \"cd /tmp && /bin/echo \"a b\" c; exit 3\""
    });
    assert_eq!(sh["process"]["binary"], "/bin/sh");
    let sh_id = sh["process"]["exec_id"].clone();
    let echo = find(&events, "process_exec", |p| p["parent_exec_id"] == sh_id);
    assert_eq!(echo["process"]["binary"], "/bin/echo");
    assert_eq!(echo["process"]["arguments"], "\"a b\" c");
    assert_eq!(echo["process"]["cwd"], "/tmp");
    assert_eq!(echo["parent"]["binary"], "/bin/sh");
    let echo_id = echo["process"]["exec_id"].clone();
    let echo_exit = find(&events, "process_exit", |p| p["exec_id"] == echo_id);
    assert_eq!(echo_exit["status"], Value::Null);
    let sh_exit = find(&events, "process_exit", |p| p["exec_id"] == sh_id);
    assert_eq!(sh_exit["status"], 3);
    let killed = find(&events, "process_exit", |p| p["arguments"] == "30");
    assert_eq!(killed["signal"], "SIGKILL");
}
