//! maxData on Debian's kernel (`TETRA_VM_KERNEL`) (kprobes): a syscall kprobe on sys_write records the
//! whole 100,000-byte buffer a program writes, and a sys_read kretprobe with returnCopy
//! the whole 50,000 bytes it read from a file; the export must hold them byte for byte
//! (the host kernel has no kprobes; `agent/tests/max_data.rs` covers uprobes there).
//! Then 100 more such writes measure the delivered throughput of these events.
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use tetra_tests::vm::{cargo_build_binary, Vm};
use tetra_tests::{pattern, require_vm};

const WRITE: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-maxdata-write
spec:
  kprobes:
  - call: sys_write
    syscall: true
    args:
    - index: 0
      type: fd
    - index: 1
      type: char_buf
      sizeArgIndex: 3
      maxData: true
    - index: 2
      type: size_t
    selectors:
    - matchBinaries:
      - operator: In
        values: ["/bin/vm_maxdata"]
      matchArgs:
      - index: 0
        operator: Equal
        values: ["/dev/null"]
"#;

const READ: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-maxdata-read
spec:
  kprobes:
  - call: sys_read
    syscall: true
    return: true
    args:
    - index: 0
      type: fd
    - index: 1
      type: char_buf
      returnCopy: true
      maxData: true
    - index: 2
      type: size_t
    returnArg:
      index: 0
      type: int
    selectors:
    - matchBinaries:
      - operator: In
        values: ["/bin/vm_maxdata"]
      matchArgs:
      - index: 0
        operator: Prefix
        values: ["/tmp/maxdata-"]
"#;

/// Writes of the bench, each a 100,000-byte maxData event.
const BENCH_EVENTS: u64 = 100;

const SCRIPT: &str = r#"
/bin/tetrad --export-filename /tmp/events.json --enable-process-cred=false \
    --enable-process-ns=false --export-file-max-size-mb 0 --rb-size 33554432 --tracing-policy /policies/write.yaml \
    --tracing-policy /policies/read.yaml > /tmp/tetrad.log 2>&1 &
agent=$!
tetra_wait 120 grep -q "tetrad ready" /tmp/tetrad.log
/bin/vm_maxdata write 100000 1 > /tmp/run.out 2>&1; echo "write rc=$?" >> /tmp/run.out
/bin/vm_maxdata read /tmp/maxdata-file 50000 3 >> /tmp/run.out 2>&1; echo "read rc=$?" >> /tmp/run.out
# Both events exported (a slow emulated guest may take more than a few seconds).
both_exported() { [ "$(grep -c '"process_kprobe":{' /tmp/events.json)" -ge 2 ]; }
tetra_wait 60 both_exported
grep '"process_kprobe":{' /tmp/events.json > /tmp/check.json
/bin/vm_maxdata bench @N@ 100000 /tmp/events.json '"process_kprobe":{' > /tmp/bench.out 2>&1
echo "bench rc=$?" >> /tmp/bench.out
kill -INT $agent
wait $agent
tetra_section agentlog cat /tmp/tetrad.log
tetra_section run cat /tmp/run.out
tetra_section bench cat /tmp/bench.out
tetra_section check cat /tmp/check.json
tetra_section heads cut -c1-600 /tmp/events.json
"#;

fn decode(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_else(|| panic!("not a base64 string: {v}")))
        .unwrap()
}

#[test]
fn max_data_on_sys_write_and_sys_read_on_debian_kernel() {
    require_vm!();
    let tetrad = cargo_build_binary("tetra-agent", "tetrad").expect("build tetrad");
    let program = cargo_build_binary("tetra-tests", "vm_maxdata").expect("build vm_maxdata");
    let out = Vm::new()
        .binary(&tetrad, "/bin/tetrad")
        .binary(&program, "/bin/vm_maxdata")
        .file_bytes(WRITE, "/policies/write.yaml", 0o644)
        .file_bytes(READ, "/policies/read.yaml", 0o644)
        .memory_mb(1536)
        .script(&SCRIPT.replace("@N@", &BENCH_EVENTS.to_string()))
        .timeout(Duration::from_secs(600))
        .run()
        .unwrap_or_else(|e| panic!("VM run failed: {e}"));
    out.ensure_success().unwrap_or_else(|e| panic!("{e}"));
    let log = out.require_section("agentlog").unwrap();
    for name in ["vm-maxdata-write", "vm-maxdata-read"] {
        assert!(log.contains(&format!("tracing policy \"{name}\" enabled: 1 hook(s) attached")), "{name} not loaded; agent log:\n{log}");
    }
    assert_eq!(out.require_section("run").unwrap().trim(), "write rc=0\nread rc=0");
    let events = out.json_section("check").unwrap_or_else(|e| panic!("{e}"));
    let hits = |policy: &str| -> Vec<&Value> {
        events.iter().filter_map(|e| e.get("process_kprobe")).filter(|b| b["policy_name"] == policy).collect()
    };

    // sys_write: the whole 100,000 bytes, not truncated.
    let writes = hits("vm-maxdata-write");
    let context = || {
        let section = |n: &str| out.section(n).unwrap_or_default();
        format!("agent log:\n{log}\nbench:\n{}\nexport, lines cut:\n{}", section("bench"), section("heads"))
    };
    assert_eq!(writes.len(), 1, "{writes:#?}\n{}", context());
    let w = writes[0];
    assert_eq!(w["function_name"], "__x64_sys_write");
    assert_eq!(w["args"][0]["file_arg"]["path"], "/dev/null");
    assert_eq!(w["args"][2]["size_arg"], "100000");
    assert!(w["args"][1].get("truncated_bytes_arg").is_none(), "{}", w["args"][1]);
    assert!(decode(&w["args"][1]["bytes_arg"]) == pattern(100_000, 1), "the written bytes differ");

    // sys_read with returnCopy: the 50,000 bytes read, taken at return.
    let reads = hits("vm-maxdata-read");
    assert_eq!(reads.len(), 1, "{reads:#?}\n{}", context());
    let r = reads[0];
    assert_eq!(r["function_name"], "__x64_sys_read");
    assert_eq!(r["args"][0]["file_arg"]["path"], "/tmp/maxdata-file");
    assert_eq!(r["args"][2]["size_arg"], "54096", "the buffer's size");
    assert_eq!(r["return"]["int_arg"], 50_000);
    assert!(decode(&r["args"][1]["bytes_arg"]) == pattern(50_000, 3), "the read bytes differ");

    // The bench: every event delivered, nothing lost or incomplete.
    let bench = out.require_section("bench").unwrap();
    let line = bench
        .lines()
        .find(|l| l.starts_with("bench events="))
        .unwrap_or_else(|| panic!("bench did not finish:\n{bench}\nagent log:\n{log}"));
    eprintln!("maxData bench (100,000-byte writes): {line}");
    let stats = log.lines().find(|l| l.contains("final stats:")).unwrap_or_else(|| panic!("{log}"));
    eprintln!("agent {stats}");
    for counter in ["lost=0 ", "lost_ringbuf_data=0 ", "data_discarded=0 ", "data_incomplete=0"] {
        assert!(stats.contains(counter), "{counter}: {stats}");
    }
    // 100,000 - 1024 inline bytes: 4 data messages per write; 50,000 - 1024: 2 for the read.
    let messages = 4 * (BENCH_EVENTS + 1) + 2;
    assert!(stats.contains(&format!("data_messages={messages} ")), "{messages} data messages: {stats}");
}
