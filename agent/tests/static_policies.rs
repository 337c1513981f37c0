//! Policies given to the real tetrad with `--tracing-policy`: hits flow through the whole
//! pipeline into the JSON export, and a policy that cannot attach disturbs nothing.
mod common;

use std::process::Command;

use common::{kind, marker, Agent};

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn tracepoint_policy_events_reach_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let name = marker("tp-e2e");
    let file = dir.path().join(&name);
    std::fs::write(&file, "x\n").unwrap();
    let good = dir.path().join("open-marker.yaml");
    std::fs::write(
        &good,
        format!(
            "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {{name: open-marker}}
spec:
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_openat
    message: marker opened
    tags: [e2e]
    args: [{{index: 6, type: string, label: path}}, {{index: 7, type: int}}]
    selectors:
    - matchArgs: [{{index: 0, operator: Postfix, values: [\"{name}\"]}}]
"
        ),
    )
    .unwrap();
    // This kernel has no kprobes: the policy must fail alone, with the reason.
    let unattachable = dir.path().join("kprobe.yaml");
    std::fs::write(
        &unattachable,
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: fd-install}
spec:
  kprobes:
  - call: fd_install
    syscall: false
    args: [{index: 0, type: int}, {index: 1, type: file}]
",
    )
    .unwrap();
    // BPF LSM: this machine's kernel lists it but refuses the programs; either way the
    // reason is named and nothing else is disturbed.
    let lsm = dir.path().join("lsm.yaml");
    std::fs::write(
        &lsm,
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: lsm-open}
spec:
  lsmhooks:
  - hook: file_open
    args: [{index: 0, type: file}]
",
    )
    .unwrap();
    let mut agent = Agent::start(&[
        "--tracing-policy",
        unattachable.to_str().unwrap(),
        "--tracing-policy",
        lsm.to_str().unwrap(),
        "--tracing-policy",
        good.to_str().unwrap(),
    ]);
    let other = dir.path().join("not-the-marker");
    std::fs::write(&other, "y\n").unwrap();
    for f in [&other, &file] {
        assert!(Command::new("/bin/cat").arg(f).output().unwrap().status.success());
    }
    let hit = agent.wait_for("tracepoint hit", |e| kind(e).0 == "process_tracepoint");
    let (_, tp) = kind(&hit);
    assert_eq!(tp["subsys"], "syscalls");
    assert_eq!(tp["event"], "sys_enter_openat");
    assert_eq!(tp["policy_name"], "open-marker");
    assert_eq!(tp["message"], "marker opened");
    assert_eq!(tp["tags"][0], "e2e");
    assert_eq!(tp["args"][0]["string_arg"], file.to_str().unwrap());
    assert_eq!(tp["args"][0]["label"], "path");
    assert_eq!(tp["process"]["binary"], "/bin/cat");
    assert_eq!(tp["process"]["arguments"], file.to_str().unwrap());
    assert_eq!(tp["parent"]["pid"], std::process::id());
    let stats = agent.stop();
    let hits = agent.events().iter().filter(|e| kind(e).0 == "process_tracepoint").count();
    assert_eq!(hits, 1, "only the marker's open is reported");
    assert_eq!(stats["lost"], 0, "{stats:?}");
    let log = agent.log_text();
    assert!(
        log.contains("tracing policy \"fd-install\" not loaded: spec.kprobes[0] fd_install"),
        "{log}"
    );
    assert!(log.contains("tracing policy \"open-marker\" enabled: 1 hook(s) attached"), "{log}");
    let lsm_line = log
        .lines()
        .find(|l| l.contains("tracing policy \"lsm-open\" not loaded: spec.lsmhooks[0] file_open"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        lsm_line.contains("this kernel refuses BPF LSM programs") || lsm_line.contains("BPF LSM is not enabled"),
        "{lsm_line}"
    );
}

/// The USDT example policy, unchanged: python3's `import__find__load__start` probe (its
/// semaphore is raised by the attach, or CPython would skip the probe) names each module
/// loaded, through the whole pipeline into the JSON export.
#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn usdt_example_policy_reports_python_imports() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/tracingpolicy/usdt-python-imports.yaml");
    let mut agent = Agent::start(&["--tracing-policy", example]);
    // `colorsys` is pure Python and not imported at start-up.
    let out = Command::new("/usr/bin/python3").args(["-S", "-c", "import colorsys"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let hit = agent.wait_for("usdt hit for colorsys", |e| {
        let (k, body) = kind(e);
        k == "process_usdt" && body["args"][0]["string_arg"] == "colorsys"
    });
    let (_, usdt) = kind(&hit);
    assert_eq!(usdt["path"], "/usr/bin/python3");
    assert_eq!(usdt["provider"], "python");
    assert_eq!(usdt["name"], "import__find__load__start");
    assert_eq!(usdt["policy_name"], "usdt-python-imports");
    assert_eq!(usdt["message"], "python module import");
    assert_eq!(usdt["args"][0]["label"], "module");
    assert_eq!(usdt["process"]["arguments"], "-S -c \"import colorsys\"");
    assert_eq!(usdt["parent"]["pid"], std::process::id());
    let stats = agent.stop();
    assert_eq!(stats["lost"], 0, "{stats:?}");
    let imports: Vec<String> = agent
        .events()
        .iter()
        .filter(|e| kind(e).0 == "process_usdt")
        .map(|e| kind(e).1["args"][0]["string_arg"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(imports.iter().filter(|m| *m == "colorsys").count(), 1, "{imports:?}");
}
