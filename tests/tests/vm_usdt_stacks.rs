//! USDT probes and stack traces on Debian's kernel (`TETRA_VM_KERNEL`) (tier 3): the usdt entry program,
//! with libbpf's argument specs, and a kprobe whose Post records kernel and user stack
//! traces, verified and run by an older kernel than the development one (which has no
//! kprobes).
use std::time::Duration;

use serde_json::Value;
use tetra_tests::require_vm;
use tetra_tests::vm::{cargo_build_binary, Vm};

const USDT: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-usdt
spec:
  usdts:
  - path: /bin/usdt_marker
    provider: tetra_vm
    name: marker
    args:
    - index: 0
      type: int64
    - index: 1
      type: string
    selectors:
    - matchArgs:
      - index: 0
        operator: Equal
        values: ["2"]
"#;

const STACKS: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-stacks
spec:
  kprobes:
  - call: sys_getcwd
    syscall: true
    selectors:
    - matchBinaries:
      - operator: In
        values: ["/bin/usdt_marker"]
      matchActions:
      - action: Post
        kernelStackTrace: true
        userStackTrace: true
"#;

const SCRIPT: &str = r#"
/bin/tetrad --export-filename /tmp/events.json --enable-process-cred=false \
    --enable-process-ns=false --tracing-policy /policies/usdt.yaml \
    --tracing-policy /policies/stacks.yaml > /tmp/tetrad.log 2>&1 &
agent=$!
tetra_wait 120 grep -q "tetrad ready" /tmp/tetrad.log
/bin/usdt_marker 1 2 3; echo "rc=$?"
sleep 1
kill -INT $agent
wait $agent
tetra_section agentlog cat /tmp/tetrad.log
tetra_section events cat /tmp/events.json
"#;

#[test]
fn usdt_and_stack_traces_on_debian_kernel() {
    require_vm!();
    let tetrad = cargo_build_binary("tetra-agent", "tetrad").expect("build tetrad");
    let marker = cargo_build_binary("tetra-tests", "usdt_marker").expect("build usdt_marker");
    let out = Vm::new()
        .binary(&tetrad, "/bin/tetrad")
        .binary(&marker, "/bin/usdt_marker")
        .file_bytes(USDT, "/policies/usdt.yaml", 0o644)
        .file_bytes(STACKS, "/policies/stacks.yaml", 0o644)
        .memory_mb(1024)
        .script(SCRIPT)
        .timeout(Duration::from_secs(300))
        .run()
        .unwrap_or_else(|e| panic!("VM run failed: {e}"));
    out.ensure_success().unwrap_or_else(|e| panic!("{e}"));
    let log = out.require_section("agentlog").unwrap();
    for name in ["vm-usdt", "vm-stacks"] {
        assert!(log.contains(&format!("tracing policy \"{name}\" enabled: 1 hook(s) attached")), "agent log:\n{log}");
    }
    assert!(log.contains("lost=0"), "agent log:\n{log}");
    let events = out.json_section("events").unwrap_or_else(|e| panic!("{e}"));
    let hits: Vec<&Value> = events.iter().filter_map(|e| e.get("process_usdt")).collect();
    assert_eq!(hits.len(), 1, "only the probe hit with 2: {hits:#?}");
    let hit = &hits[0];
    assert_eq!(hit["path"], "/bin/usdt_marker");
    assert_eq!(hit["provider"], "tetra_vm");
    assert_eq!(hit["name"], "marker");
    assert_eq!(hit["policy_name"], "vm-usdt");
    assert_eq!(hit["process"]["binary"], "/bin/usdt_marker");
    assert_eq!(hit["process"]["arguments"], "1 2 3");
    assert_eq!(hit["args"][0]["long_arg"], "2", "int64 is a JSON string, as protobuf maps it");
    assert_eq!(hit["args"][1]["string_arg"], "marker-2");

    // The getcwd kprobe: the kernel stack from the syscall wrapper down to the entry code,
    // every frame named from kallsyms; the user stack starts in libc's getcwd.
    let kprobes: Vec<&Value> = events.iter().filter_map(|e| e.get("process_kprobe")).collect();
    assert_eq!(kprobes.len(), 1, "one getcwd of usdt_marker: {kprobes:#?}");
    let kernel = kprobes[0]["kernel_stack_trace"].as_array().expect("kernel_stack_trace");
    let symbols: Vec<&str> = kernel.iter().map(|f| f["symbol"].as_str().unwrap_or_default()).collect();
    assert!(symbols.contains(&"do_syscall_64"), "{kernel:#?}");
    assert!(symbols.iter().all(|s| !s.is_empty()), "every kernel frame named: {kernel:#?}");
    for frame in kernel {
        let address = frame["address"].as_str().and_then(|a| a.parse::<u64>().ok()).expect("address");
        assert!(address >= 0xffff_8000_0000_0000, "a kernel address: {frame}");
    }
    let user = kprobes[0]["user_stack_trace"].as_array().expect("user_stack_trace");
    assert!(user[0]["symbol"].as_str().unwrap_or_default().contains("getcwd"), "{user:#?}");
    assert!(user[0]["module"].as_str().unwrap_or_default().ends_with("libc.so.6"), "{user:#?}");
}
