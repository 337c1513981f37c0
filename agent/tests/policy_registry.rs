//! Every policy handed to the real tetrad is listed (ListTracingPolicies, the per-state
//! metric), refused ones with their reason; and a policy that failed to load, or was
//! deleted, leaves no memory behind: neither in the agent's RSS nor in the kernel memory of
//! its BPF objects.
mod common;
mod rpc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};


use common::Agent;
use tetra_agent::sensors::memory;
use tetra_proto::tetragon::{
    AddTracingPolicyRequest, DeleteTracingPolicyRequest, ListTracingPoliciesRequest, TracingPolicyState,
    TracingPolicyStatus,
};

const MIB: i64 = 1 << 20;

fn tracepoint(name: &str) -> String {
    format!(
        "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {{name: {name}}}\nspec:\n  tracepoints:\n  - subsystem: syscalls\n    event: sys_enter_openat\n    args: [{{index: 6, type: string}}]\n    selectors:\n    - matchArgs: [{{index: 0, operator: Prefix, values: [\"/nonexistent/{name}\"]}}]\n"
    )
}

/// Fails at attach on this kernel (no kprobes); loads elsewhere.
fn kprobe(name: &str) -> String {
    format!(
        "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {{name: {name}}}\nspec:\n  kprobes:\n  - call: fd_install\n    syscall: false\n    args: [{{index: 0, type: int}}, {{index: 1, type: file}}]\n"
    )
}

/// Refused before compiling: an unsupported feature.
fn enforcer(name: &str) -> String {
    format!("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {{name: {name}}}\nspec:\n  enforcers:\n  - calls: [sys_write]\n")
}

/// The agent with its gRPC server on a free port and metrics; returns it, a client's
/// address and the metrics address.
fn start(extra: &[&str]) -> (Agent, String, String) {
    let mut args = vec!["--server-address=127.0.0.1:0", "--metrics-server=127.0.0.1:0"];
    args.extend(extra);
    let agent = Agent::start(&args);
    let run = agent.dir.path().join("run");
    let (server, metrics) = (rpc::info(&run, "server_address"), rpc::info(&run, "metrics_address"));
    (agent, server, metrics)
}

fn list(rt: &tokio::runtime::Runtime, client: &mut rpc::Client) -> Vec<TracingPolicyStatus> {
    rt.block_on(client.list_tracing_policies(ListTracingPoliciesRequest::default())).unwrap().into_inner().policies
}

fn state(p: &TracingPolicyStatus) -> TracingPolicyState {
    TracingPolicyState::try_from(p.state).unwrap()
}

/// `tetragon_tracingpolicy_loaded{state}` as scraped.
fn by_state(metrics: &str) -> BTreeMap<String, u64> {
    let (_, text) = rpc::http_get(metrics, "/metrics");
    ["enabled", "disabled", "load_error", "error", "skipped"]
        .iter()
        .map(|s| (s.to_string(), rpc::sample(&text, &format!("tetragon_tracingpolicy_loaded{{state=\"{s}\"}}")).unwrap_or_else(|| panic!("no {s} sample in\n{text}")) as u64))
        .collect()
}

fn counts(policies: &[TracingPolicyStatus]) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = ["enabled", "disabled", "load_error", "error", "skipped"].iter().map(|s| (s.to_string(), 0)).collect();
    for p in policies {
        *out.entry(state(p).as_str_name().trim_start_matches("TP_STATE_").to_ascii_lowercase()).or_default() += 1;
    }
    out
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn every_policy_of_a_directory_is_listed_with_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let write = |file: &str, text: &str| std::fs::write(dir.path().join(file), text).unwrap();
    write("a-open.yaml", &tracepoint("open-watch"));
    write("b-kprobe.yaml", &kprobe("fd-install"));
    write("c-enforcer.yaml", &enforcer("kill-syscalls"));
    write("d-open-again.yaml", &tracepoint("open-watch"));
    write("e-kprobe-again.yml", &kprobe("fd-install"));
    write("f-broken.yaml", "apiVersion: cilium.io/v1alpha1\nkind: [TracingPolicy\n");
    std::fs::write(dir.path().join("g-not-utf8.yaml"), [0xff, 0xfe, 0x00]).unwrap();
    write("notes.txt", "not a policy");
    let (mut agent, server, metrics) = start(&["--tracing-policy-dir", dir.path().to_str().unwrap()]);
    let rt = rpc::runtime();
    let mut client = rt.block_on(rpc::connect(&server));
    let policies = list(&rt, &mut client);
    let row = |file: &str| {
        let source = format!("file {}", dir.path().join(file).display());
        let rows: Vec<&TracingPolicyStatus> = policies.iter().filter(|p| p.info == source).collect();
        assert_eq!(rows.len(), 1, "{file}: {policies:#?}");
        rows[0].clone()
    };
    let open = row("a-open.yaml");
    assert_eq!((open.name.as_str(), state(&open)), ("open-watch", TracingPolicyState::TpStateEnabled));
    assert!(open.kernel_memory_bytes > 0 && open.kernel_memory_bytes <= 256 << 10, "{}", open.kernel_memory_bytes);
    let fd = row("b-kprobe.yaml");
    assert_eq!(state(&fd), TracingPolicyState::TpStateLoadError);
    assert!(fd.error.contains("this kernel has no kprobes") || std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists(), "{}", fd.error);
    let kill = row("c-enforcer.yaml");
    assert_eq!((kill.name.as_str(), state(&kill)), ("kill-syscalls", TracingPolicyState::TpStateError));
    assert!(kill.error.contains("unsupported: enforcers at spec.enforcers"), "{}", kill.error);
    for (file, winner) in [("d-open-again.yaml", "a-open.yaml"), ("e-kprobe-again.yml", "b-kprobe.yaml")] {
        let dup = row(file);
        assert_eq!(state(&dup), TracingPolicyState::TpStateError);
        let want = format!("is already loaded from {}; {} not loaded", dir.path().join(winner).display(), dir.path().join(file).display());
        assert!(dup.error.contains(&want), "{file}: {}", dup.error);
    }
    let broken = row("f-broken.yaml");
    assert_eq!((broken.name.as_str(), state(&broken)), ("f-broken.yaml", TracingPolicyState::TpStateError));
    let unreadable = row("g-not-utf8.yaml");
    assert!(unreadable.error.contains("reading") && unreadable.error.contains("UTF-8"), "{}", unreadable.error);
    assert_eq!(policies.len(), 7, "one row per policy file, none for notes.txt: {policies:#?}");
    let want = counts(&policies);
    assert_eq!(want["enabled"], 1);
    assert_eq!(want["load_error"] + want["enabled"], 2);
    assert_eq!(by_state(&metrics), want);
    // A refused row is deleted like any policy, and the metric follows.
    rt.block_on(client.delete_tracing_policy(DeleteTracingPolicyRequest { name: "kill-syscalls".into(), ..Default::default() })).unwrap();
    assert_eq!(by_state(&metrics)["error"], want["error"] - 1);
    agent.stop();
    let log = agent.log_text();
    assert!(log.contains("duplicate name: tracing policy \"open-watch\" is already loaded from"), "{log}");
}

/// The Tetragon example policies all in one directory, as a new user would try them: one
/// row per file, duplicates naming the file that won, and the per-state metric adding up.
#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn conformance_corpus_in_one_directory_is_listed_file_by_file() {
    let corpus = std::env::var("TETRA_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/tetragon"))
        .join("policies");
    if !corpus.is_dir() {
        eprintln!("skipped: no conformance corpus at {} (set TETRA_CONFORMANCE_DIR)", corpus.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = tetra_crds::conformance::corpus_files(&corpus).unwrap();
    for f in &files {
        let flat = f.strip_prefix(&corpus).unwrap().to_string_lossy().replace('/', "__");
        std::fs::copy(f, dir.path().join(flat)).unwrap();
    }
    let (mut agent, server, metrics) = start(&["--tracing-policy-dir", dir.path().to_str().unwrap()]);
    let rt = rpc::runtime();
    let mut client = rt.block_on(rpc::connect(&server));
    let policies = list(&rt, &mut client);
    assert_eq!(policies.len(), files.len(), "one row per file: {policies:#?}");
    let mut names: BTreeMap<&str, Vec<&TracingPolicyStatus>> = BTreeMap::new();
    for p in &policies {
        assert!(p.info.starts_with("file "), "{p:?}");
        if state(p) != TracingPolicyState::TpStateEnabled {
            assert!(!p.error.is_empty(), "{p:?}");
        }
        names.entry(&p.name).or_default().push(p);
    }
    // Per name, one file holds it (the first valid one); the other valid ones name it.
    for (name, rows) in &names {
        let duplicate = |p: &&&TracingPolicyStatus| p.error.starts_with("duplicate name");
        let holders: Vec<_> = rows.iter().filter(|p| !duplicate(p) && !p.error.starts_with("invalid tracing policy")).collect();
        assert!(holders.len() <= 1, "{name}: {rows:#?}");
        for dup in rows.iter().filter(duplicate) {
            let winner = holders.first().unwrap_or_else(|| panic!("{name}: refused as a duplicate of nothing: {rows:#?}"));
            assert!(dup.error.contains(&format!("already loaded from {}", &winner.info["file ".len()..])), "{dup:?}");
        }
    }
    assert_eq!(by_state(&metrics), counts(&policies));
    eprintln!("{} files, {} names: {:?}", files.len(), names.len(), counts(&policies));
    agent.stop();
}

/// Resident memory of `pid` in bytes.
fn rss(pid: u32) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: i64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB").parse().unwrap();
    kib << 10
}

struct Sample {
    rss: i64,
    kernel: i64,
    /// How many BPF maps and programs the agent holds.
    objects: (usize, usize),
}

fn sample(pid: u32) -> Sample {
    // Let the agent's threads settle (a gRPC reply is sent before its buffers are freed).
    std::thread::sleep(std::time::Duration::from_millis(300));
    let bpf = memory::of_process(pid).unwrap();
    Sample { rss: rss(pid), kernel: bpf.bytes as i64, objects: (bpf.maps, bpf.progs) }
}

fn round(rt: &tokio::runtime::Runtime, client: &mut rpc::Client, pid: u32, what: &str, yaml: fn(&str) -> String, n: usize) -> (Sample, Sample, Sample) {
    let before = sample(pid);
    for i in 0..n {
        let r = rt.block_on(client.add_tracing_policy(AddTracingPolicyRequest { yaml: yaml(&format!("{what}-{i}")), domain: String::new() }));
        let _ = r; // a kprobe policy is refused here (FAILED_PRECONDITION) and listed
    }
    let loaded = sample(pid);
    assert_eq!(list(rt, client).len(), n);
    for i in 0..n {
        let req = DeleteTracingPolicyRequest { name: format!("{what}-{i}"), ..Default::default() };
        rt.block_on(client.delete_tracing_policy(req)).unwrap();
    }
    assert!(list(rt, client).is_empty());
    let after = sample(pid);
    eprintln!(
        "{n} {what} policies: RSS {:.1} -> {:.1} -> {:.1} MiB, BPF kernel memory {:.1} -> {:.1} -> {:.1} MiB ({} KiB per policy)",
        before.rss as f64 / MIB as f64,
        loaded.rss as f64 / MIB as f64,
        after.rss as f64 / MIB as f64,
        before.kernel as f64 / MIB as f64,
        loaded.kernel as f64 / MIB as f64,
        after.kernel as f64 / MIB as f64,
        (loaded.kernel - before.kernel) / n as i64 / 1024,
    );
    (before, loaded, after)
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn failed_and_deleted_policies_release_their_memory() {
    let (agent, server, _) = start(&[]);
    let pid = agent.pid();
    let rt = rpc::runtime();
    let mut client = rt.block_on(rpc::connect(&server));
    // Warm-up: the first load pages in the loader's code (file-backed) and sizes the gRPC
    // connection's buffers once; what follows measures what policies themselves keep.
    round(&rt, &mut client, pid, "warm-kprobe", kprobe, 2);
    round(&rt, &mut client, pid, "warm-tracepoint", tracepoint, 2);
    let kprobes = std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
    let (before, loaded, after) = round(&rt, &mut client, pid, "failing", if kprobes { enforcer } else { kprobe }, 40);
    // RSS also moves with the host: the agent caches and encodes every process the host
    // runs, and the tests beside this one run storms of them (up to +1.3 MiB seen in a CI
    // run, 0-0.7 MiB alone). 2 MiB over 40 policies still catches 52 KiB kept per policy;
    // the leak this test was written for kept 1.4 MiB per policy.
    const RSS_SLACK: i64 = 2 * MIB;
    // The agent's own hash maps (processes, exec records) are charged by their current
    // entries, which other processes on the host change: compare objects, not bytes.
    assert_eq!(loaded.objects, before.objects, "a failed load holds no BPF map or program");
    assert!((loaded.kernel - before.kernel).abs() <= 64 << 10, "kernel {} -> {} bytes", before.kernel, loaded.kernel);
    assert!((after.rss - before.rss).abs() <= RSS_SLACK, "RSS {} -> {} bytes", before.rss, after.rss);
    assert!((after.kernel - before.kernel).abs() <= MIB);
    let (before, loaded, after) = round(&rt, &mut client, pid, "loaded", tracepoint, 40);
    let per_policy = (loaded.kernel - before.kernel) / 40;
    assert!(per_policy > 0 && per_policy <= 256 << 10, "{per_policy} bytes of kernel memory per policy");
    assert!((after.rss - before.rss).abs() <= RSS_SLACK, "RSS {} -> {} bytes", before.rss, after.rss);
    assert!((after.kernel - before.kernel).abs() <= MIB, "kernel {} -> {} bytes", before.kernel, after.kernel);
}
