//! USDT probes on Debian's 6.1 kernel (tier 3): the usdt entry program, with libbpf's
//! argument specs, is verified and run by an older kernel than the development one.
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

const SCRIPT: &str = r#"
/bin/tetrad --export-filename /tmp/events.json --enable-process-cred=false \
    --enable-process-ns=false --tracing-policy /policies/usdt.yaml > /tmp/tetrad.log 2>&1 &
agent=$!
i=0
until grep -q "tetrad ready" /tmp/tetrad.log || [ $i -gt 1200 ]; do sleep 0.1; i=$((i + 1)); done
/bin/usdt_marker 1 2 3; echo "rc=$?"
sleep 1
kill -INT $agent
wait $agent
tetra_section agentlog cat /tmp/tetrad.log
tetra_section events cat /tmp/events.json
"#;

#[test]
fn usdt_policy_on_debian_kernel() {
    require_vm!();
    let tetrad = cargo_build_binary("tetra-agent", "tetrad").expect("build tetrad");
    let marker = cargo_build_binary("tetra-tests", "usdt_marker").expect("build usdt_marker");
    let out = Vm::new()
        .binary(&tetrad, "/bin/tetrad")
        .binary(&marker, "/bin/usdt_marker")
        .file_bytes(USDT, "/policies/usdt.yaml", 0o644)
        .memory_mb(1024)
        .script(SCRIPT)
        .timeout(Duration::from_secs(300))
        .run()
        .unwrap_or_else(|e| panic!("VM run failed: {e}"));
    out.ensure_success().unwrap_or_else(|e| panic!("{e}"));
    let log = out.require_section("agentlog").unwrap();
    assert!(log.contains("tracing policy \"vm-usdt\" enabled: 1 hook(s) attached"), "agent log:\n{log}");
    assert!(log.contains("lost=0"), "agent log:\n{log}");
    let hits: Vec<Value> = out
        .require_json_lines("events")
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter_map(|e| e.get("process_usdt").cloned())
        .collect();
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
}
