//! Socket selectors on kprobes, and matchNamespaces/matchCapabilities/rateLimit through
//! the 6.1 verifier, on Debian's kernel (tier 3: the development kernel has no kprobes).
//! One boot: the agent runs with the repository's tcp-connections example and a policy of
//! our own on tcp_connect, then a test program connects to five targets (refused
//! connections still pass through tcp_connect). 10.1.2.3 is an address added to lo, so
//! the only non-loopback destination. A second boot runs fentries.
use std::time::Duration;

use serde_json::{json, Value};
use tetra_tests::require_vm;
use tetra_tests::vm::{cargo_build_binary, Vm, VmOutput};

const SOCK: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-sock
spec:
  kprobes:
  - call: tcp_connect
    syscall: false
    message: "filtered connect"
    args:
    - index: 0
      type: sock
    selectors:
    - matchArgs:
      - index: 0
        operator: NotDAddr
        values: ["127.0.0.0/8", "::1/128"]
      - index: 0
        operator: DPort
        values: ["7000:7001"]
      - index: 0
        operator: Protocol
        values: ["IPPROTO_TCP"]
      - index: 0
        operator: State
        values: ["TCP_SYN_SENT"]
      - index: 0
        operator: NotSportPriv
    - matchArgs:
      - index: 0
        operator: DAddr
        values: ["::1"]
      - index: 0
        operator: DPortPriv
  - call: tcp_connect
    syscall: false
    message: "host namespaces with CAP_NET_RAW"
    args:
    - index: 0
      type: sock
    selectors:
    - matchArgs:
      - index: 0
        operator: DAddr
        values: ["10.1.2.3/32"]
      matchNamespaces:
      - namespace: Net
        operator: In
        values: ["host_ns"]
      - namespace: Pid
        operator: In
        values: ["host_ns"]
      matchCapabilities:
      - type: Effective
        operator: In
        values: ["CAP_NET_RAW"]
      matchActions:
      - action: Post
        rateLimit: "1m"
        rateLimitScope: global
  - call: tcp_connect
    syscall: false
    message: "without CAP_NET_RAW"
    args:
    - index: 0
      type: sock
    selectors:
    - matchCapabilities:
      - type: Permitted
        operator: NotIn
        values: ["CAP_NET_RAW"]
"#;

/// cred and capability arguments; matchBinaries on a busybox applet's execve path.
const CRED: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-cred
spec:
  kprobes:
  - call: cap_capable
    syscall: false
    args:
    - index: 0
      type: cred
    - index: 2
      type: capability
    selectors:
    - matchBinaries:
      - operator: In
        values: ["/bin/hostname"]
"#;

/// fentries: a kernel function, and a syscall (arguments in the wrapper's pt_regs).
const FENTRY: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-fentry
spec:
  fentries:
  - call: tcp_connect
    syscall: false
    message: "fentry connect"
    args:
    - index: 0
      type: sock
    selectors:
    - matchArgs:
      - index: 0
        operator: DAddr
        values: ["10.1.2.3"]
      - index: 0
        operator: DPort
        values: ["7003"]
  - call: sys_connect
    syscall: true
    message: "fentry sys_connect"
    args:
    - index: 1
      type: sockaddr
    selectors:
    - matchArgs:
      - index: 1
        operator: SAddr
        values: ["::1/128"]
"#;

/// fexit: an fentry with `return: true`, its return value filtered by matchReturnArgs.
const FEXIT: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-fexit
spec:
  fentries:
  - call: do_unlinkat
    syscall: false
    return: true
    message: "fexit unlinkat"
    args:
    - index: 1
      type: filename
    returnArg:
      index: 0
      type: int
    selectors:
    - matchArgs:
      - index: 1
        operator: Prefix
        values: ["/tmp/tetra-fexit-"]
      matchReturnArgs:
      - index: 0
        operator: NotEqual
        values: ["0"]
"#;

/// The guest script: start the agent with `policies` (files under /policies), wait until
/// it is ready, run `commands` (their output is the `connect` section), stop the agent.
fn script(policies: &[&str], commands: &str) -> String {
    let flags: Vec<String> = policies.iter().map(|p| format!("--tracing-policy /policies/{p}")).collect();
    format!(
        r#"
ip addr add 10.1.2.3/32 dev lo
/bin/tetrad --export-filename /tmp/events.json --enable-process-cred=false \
    --enable-process-ns=false {} > /tmp/tetrad.log 2>&1 &
agent=$!
tetra_wait 120 grep -q "tetrad ready" /tmp/tetrad.log
{{ {commands}; }} > /tmp/connect.out 2>&1
sleep 2
kill -INT $agent
wait $agent
tetra_section agentlog cat /tmp/tetrad.log
tetra_section connect cat /tmp/connect.out
tetra_section events cat /tmp/events.json
"#,
        flags.join(" ")
    )
}

/// The exported events, each line parsed.
fn exported(out: &VmOutput) -> Vec<Value> {
    out.json_section("events").unwrap_or_else(|e| panic!("{e}"))
}

/// (message, daddr, dport) of each process_kprobe event of `policy`, sorted.
fn connects(events: &[Value], policy: &str) -> Vec<(String, String, u64)> {
    let mut out: Vec<(String, String, u64)> = events
        .iter()
        .filter_map(|e| e.get("process_kprobe"))
        .filter(|b| b["policy_name"] == policy && b["function_name"] == "tcp_connect")
        .map(|b| {
            let s = &b["args"][0]["sock_arg"];
            (
                b["message"].as_str().unwrap_or_default().to_string(),
                s["daddr"].as_str().unwrap_or_default().to_string(),
                s["dport"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn socket_operators_on_kprobes_on_debian_kernel() {
    require_vm!();
    let tetrad = cargo_build_binary("tetra-agent", "tetrad").expect("build tetrad");
    let connect = cargo_build_binary("tetra-tests", "vm_connect").expect("build vm_connect");
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/tracingpolicy/tcp-connections.yaml");
    let out = Vm::new()
        .binary(&tetrad, "/bin/tetrad")
        .binary(&connect, "/bin/vm_connect")
        .file_bytes(SOCK, "/policies/sock.yaml", 0o644)
        .file_bytes(CRED, "/policies/cred.yaml", 0o644)
        .file_bytes(std::fs::read_to_string(&example).unwrap().as_str(), "/policies/tcp-connections.yaml", 0o644)
        .memory_mb(1536)
        .script(&script(
            &["sock.yaml", "tcp-connections.yaml", "cred.yaml"],
            "/bin/vm_connect 10.1.2.3:7001 127.0.0.1:7001 10.1.2.3:7003 '[::1]:81' '[::1]:7001'; \\
             echo \"rc=$?\"; /bin/hostname tetra-cred; /bin/busybox hostname tetra-other; \\
             echo \"hostname rc=$?\"",
        ))
        .timeout(Duration::from_secs(420))
        .run()
        .unwrap_or_else(|e| panic!("VM run failed: {e}"));
    out.ensure_success().unwrap_or_else(|e| panic!("{e}"));
    let log = out.require_section("agentlog").unwrap();
    for (name, hooks) in [("vm-sock", 3), ("tcp-connections", 3), ("vm-cred", 1)] {
        assert!(
            log.contains(&format!("tracing policy \"{name}\" enabled: {hooks} hook(s) attached")),
            "{name} not loaded; agent log:\n{log}"
        );
    }
    assert!(log.contains("lost=0"), "agent log:\n{log}");
    let section = |name: &str| out.require_section(name).unwrap();
    assert_eq!(
        section("connect").trim(),
        "connect 10.1.2.3:7001 ConnectionRefused\nconnect 127.0.0.1:7001 ConnectionRefused\n\
         connect 10.1.2.3:7003 ConnectionRefused\nconnect [::1]:81 ConnectionRefused\n\
         connect [::1]:7001 ConnectionRefused\nrc=0\nhostname rc=0"
    );
    let events = exported(&out);
    let hit = |m: &str, a: &str, p: u64| (m.to_string(), a.to_string(), p);
    assert_eq!(
        connects(&events, "vm-sock"),
        [
            hit("filtered connect", "10.1.2.3", 7001),
            hit("filtered connect", "::1", 81),
            hit("host namespaces with CAP_NET_RAW", "10.1.2.3", 7001),
            hit("host namespaces with CAP_NET_RAW", "10.1.2.3", 7003),
        ],
        "events: {events:#?}"
    );
    // The example: every connect except to loopback.
    assert_eq!(
        connects(&events, "tcp-connections"),
        [hit("TCP connect", "10.1.2.3", 7001), hit("TCP connect", "10.1.2.3", 7003)]
    );
    let first = events
        .iter()
        .filter_map(|e| e.get("process_kprobe"))
        .find(|b| b["policy_name"] == "vm-sock" && b["args"][0]["sock_arg"]["dport"] == 7001)
        .unwrap();
    let sock = &first["args"][0]["sock_arg"];
    let sport = sock["sport"].as_u64().unwrap();
    assert!(sport >= 1024, "{sock}");
    assert_eq!(
        sock,
        &json!({"family": "AF_INET", "type": "SOCK_STREAM", "protocol": "IPPROTO_TCP",
                "saddr": "10.1.2.3", "daddr": "10.1.2.3", "sport": sport, "dport": 7001,
                "state": "TCP_SYN_SENT"}),
        "mark, priority and the cookie (not yet made at connect) are 0, so left out"
    );
    assert_eq!(first["process"]["binary"], "/bin/vm_connect");

    // cap_capable(cred, ns, cap, opts) for the applet only (the compiler takes no Equal on
    // a capability argument); sethostname asks for CAP_SYS_ADMIN once.
    let creds: Vec<&Value> = events
        .iter()
        .filter_map(|e| e.get("process_kprobe"))
        .filter(|b| b["policy_name"] == "vm-cred")
        .collect();
    assert!(creds.iter().all(|b| b["process"]["binary"] == "/bin/hostname" && b["function_name"] == "cap_capable"), "{creds:#?}");
    let admin: Vec<&&Value> = creds.iter().filter(|b| b["args"][1]["capability_arg"]["value"] == 21).collect();
    assert_eq!(admin.len(), 1, "{creds:#?}");
    let hit = admin[0];
    assert_eq!(hit["args"][1], json!({"capability_arg": {"value": 21, "name": "CAP_SYS_ADMIN"}}));
    let cred = &hit["args"][0]["process_credentials_arg"];
    for id in ["uid", "gid", "euid", "egid", "suid", "sgid", "fsuid", "fsgid"] {
        assert_eq!(cred[id], 0, "{id}: {cred}");
    }
    assert_eq!(cred["user_ns"]["level"], 0, "{cred}");
    assert_eq!(cred["user_ns"]["ns"]["is_host"], true, "{cred}");
    let effective: Vec<&str> = cred["caps"]["effective"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(effective.len(), 41, "root has every capability (41 since Linux 5.9): {cred}");
    assert!(effective.contains(&"CAP_SYS_ADMIN"), "{cred}");
    assert_eq!(cred["caps"]["inheritable"], Value::Null, "none: {cred}");
}


/// fentries (refused by the development kernel) in a boot of their own.
#[test]
fn fentries_on_debian_kernel() {
    require_vm!();
    let tetrad = cargo_build_binary("tetra-agent", "tetrad").expect("build tetrad");
    let connect = cargo_build_binary("tetra-tests", "vm_connect").expect("build vm_connect");
    let out = Vm::new()
        .binary(&tetrad, "/bin/tetrad")
        .binary(&connect, "/bin/vm_connect")
        .file_bytes(FENTRY, "/policies/fentry.yaml", 0o644)
        .file_bytes(FEXIT, "/policies/fexit.yaml", 0o644)
        .memory_mb(1536)
        .script(&script(
            &["fentry.yaml", "fexit.yaml"],
            "touch /tmp/tetra-fexit-there; unlink /tmp/tetra-fexit-there; unlink /tmp/tetra-fexit-missing; \
             /bin/vm_connect 10.1.2.3:7001 10.1.2.3:7003 '[::1]:81' '[::1]:7001' 127.0.0.1:7003; echo \"rc=$?\"",
        ))
        .timeout(Duration::from_secs(420))
        .run()
        .unwrap_or_else(|e| panic!("VM run failed: {e}"));
    out.ensure_success().unwrap_or_else(|e| panic!("{e}"));
    let log = out.require_section("agentlog").unwrap();
    assert!(log.contains("tracing policy \"vm-fentry\" enabled: 2 hook(s) attached"), "agent log:\n{log}");
    assert!(log.contains("tracing policy \"vm-fexit\" enabled: 1 hook(s) attached"), "agent log:\n{log}");
    assert!(log.contains("lost=0"), "agent log:\n{log}");
    assert_eq!(out.require_section("connect").unwrap().lines().last(), Some("rc=0"));
    let events = exported(&out);
    // fentries: the same filtering and argument reading as kprobes.
    let fentries: Vec<(String, String, String)> = {
        let mut v: Vec<(String, String, String)> = events
            .iter()
            .filter_map(|e| e.get("process_kprobe"))
            .filter(|b| b["policy_name"] == "vm-fentry")
            .map(|b| {
                let a = &b["args"][0];
                let target = match (a.get("sock_arg"), a.get("sockaddr_arg")) {
                    (Some(s), _) => format!("{}:{}", s["daddr"].as_str().unwrap_or_default(), s["dport"]),
                    (_, Some(s)) => format!("[{}]:{}", s["addr"].as_str().unwrap_or_default(), s["port"]),
                    _ => format!("{a}"),
                };
                (b["function_name"].as_str().unwrap_or_default().to_string(), b["message"].as_str().unwrap_or_default().to_string(), target)
            })
            .collect();
        v.sort();
        v
    };
    let f = |func: &str, m: &str, t: &str| (func.to_string(), m.to_string(), t.to_string());
    assert_eq!(
        fentries,
        [
            f("__x64_sys_connect", "fentry sys_connect", "[::1]:7001"),
            f("__x64_sys_connect", "fentry sys_connect", "[::1]:81"),
            f("tcp_connect", "fentry connect", "10.1.2.3:7003"),
        ],
        "events: {events:#?}"
    );
    // fexit: of the two unlinks, only the failed one (ENOENT) passes matchReturnArgs; the
    // event has the argument read at entry and the return value.
    let fexits: Vec<&Value> = events.iter().filter_map(|e| e.get("process_kprobe")).filter(|b| b["policy_name"] == "vm-fexit").collect();
    assert_eq!(fexits.len(), 1, "events: {fexits:#?}");
    let hit = fexits[0];
    assert_eq!(hit["function_name"], "do_unlinkat");
    assert_eq!(hit["message"], "fexit unlinkat");
    assert_eq!(hit["args"], json!([{"string_arg": "/tmp/tetra-fexit-missing"}]), "{hit:#}");
    assert_eq!(hit["return"], json!({"int_arg": -2}), "{hit:#}");
    assert_eq!(hit["return_action"], "KPROBE_ACTION_POST", "{hit:#}");
    // busybox's shell runs the unlink applet in a fork of itself.
    assert_eq!(hit["process"]["binary"], "/bin/busybox", "{hit:#}");
}
