//! Hook-overhead and delivery benchmark on Debian's 6.1 kernel (the kernel with kprobes),
//! one VM boot, every figure measured in the same run:
//!
//! `cargo run --release -p tetra-tests --bin vm_bench [-- CALLS ROUNDS]`
//!
//! The measured call is `close(-1)` (hookbench). Per round, in this order:
//! 1. no hook on `__x64_sys_close`;
//! 2. an empty BPF kprobe program on it (what any kprobe costs);
//! 3. a TracingPolicy on `sys_close` whose matchBinaries rejects hookbench (the selector's
//!    task filters run, no argument is read, nothing sent);
//! 4. the same hook whose matchArgs never matches (the argument read, the selector
//!    evaluated in the kernel, nothing sent);
//! 5. the same hook whose matchArgs matches but whose action is NoPost (the argument
//!    recorded, the selector matched and its actions run, nothing sent);
//! 6. the same policy with a matching selector (Post): every call becomes a
//!    process_kprobe event, and hookbench waits until all are in the JSON export.
//!
//! Steps 2 to 6 add one part of the work each, so their differences are the breakdown of
//! a hook's cost: the probe itself, the task filters, the argument and its filter, the
//! match and its actions, the event. Each step prints the wall time per call and, measured in a second loop with the
//! kernel's BPF statistics on, the program's own run time per call (hookbench says how).
//! Policies are added and removed through a running tetrad with `tetra tracingpolicy`.
//! The medians over the rounds are printed with their ratios, then the agent's loss count.
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use tetra_tests::vm::{cargo_build_binary, ensure_ready, Vm};

/// A policy on `sys_close` whose one selector is `selector` (YAML lines under `- `).
fn policy(name: &str, selector: &str) -> String {
    format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: {name}
spec:
  kprobes:
  - call: sys_close
    syscall: true
    args:
    - index: 0
      type: int
    selectors:
    - {selector}
"
    )
}

fn args_equal(fd: i64) -> String {
    format!("matchArgs:\n      - index: 0\n        operator: Equal\n        values: [\"{fd}\"]")
}

fn script(calls: u64, rounds: u32) -> String {
    format!(
        r#"
/bin/tetrad --export-filename /tmp/events.json --enable-process-cred=false \
    --enable-process-ns=false --export-file-max-size-mb 100 --export-file-max-backups 1 \
    --server-address unix:///run/tetra.sock > /tmp/tetrad.log 2>&1 &
agent=$!
i=0
until grep -q "tetrad ready" /tmp/tetrad.log || [ $i -gt 1200 ]; do sleep 0.1; i=$((i + 1)); done
tp() {{ /bin/tetra --server-address unix:///run/tetra.sock tracingpolicy "$@" > /dev/null || echo "tetra tracingpolicy $* failed"; }}
# Warm-up: page in the binaries and caches once.
/bin/hookbench loop {calls} > /dev/null
for r in $(seq 1 {rounds}); do
  echo "bench round=$r base $(/bin/hookbench loop {calls})"
  echo "bench round=$r empty $(/bin/hookbench empty __x64_sys_close {calls})"
  tp add /policies/nobinary.yaml
  echo "bench round=$r nobinary $(/bin/hookbench loop {calls})"
  tp delete bench-nobinary
  tp add /policies/nomatch.yaml
  echo "bench round=$r nomatch $(/bin/hookbench loop {calls})"
  tp delete bench-nomatch
  tp add /policies/nopost.yaml
  echo "bench round=$r nopost $(/bin/hookbench loop {calls})"
  tp delete bench-nopost
  tp add /policies/match.yaml
  echo "bench round=$r match $(/bin/hookbench deliver /tmp/events.json {calls})"
  tp delete bench-match
done
kill -INT $agent
wait $agent
tetra_section agentlog grep -E "final stats|lost|error" /tmp/tetrad.log
"#
    )
}

/// `key=value` fields of one result line.
fn fields(line: &str) -> BTreeMap<&str, f64> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| v.parse().ok().map(|v| (k, v)))
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run(calls: u64, rounds: u32) -> Result<(), String> {
    if !ensure_ready().map_err(|e| e.to_string())? {
        return Err("the VM test bed is disabled (TETRA_SKIP_VM)".into());
    }
    let build = |pkg: &str, bin: &str| cargo_build_binary(pkg, bin).map_err(|e| e.to_string());
    let out = Vm::new()
        .binary(build("tetra-agent", "tetrad")?, "/bin/tetrad")
        .binary(build("tetra-cli", "tetra")?, "/bin/tetra")
        .binary(build("tetra-tests", "hookbench")?, "/bin/hookbench")
        .file_bytes(
            policy("bench-nobinary", "matchBinaries:\n      - operator: In\n        values: [\"/bin/no-such-binary\"]"),
            "/policies/nobinary.yaml",
            0o644,
        )
        .file_bytes(policy("bench-nomatch", &args_equal(-7)), "/policies/nomatch.yaml", 0o644)
        .file_bytes(
            policy("bench-nopost", &format!("{}\n      matchActions:\n      - action: NoPost", args_equal(-1))),
            "/policies/nopost.yaml",
            0o644,
        )
        .file_bytes(policy("bench-match", &args_equal(-1)), "/policies/match.yaml", 0o644)
        .memory_mb(1536)
        .cpus(2)
        .script(&script(calls, rounds))
        .timeout(Duration::from_secs(1800))
        .run()
        .map_err(|e| e.to_string())?;
    out.ensure_success().map_err(|e| e.to_string())?;
    let mut by_kind: BTreeMap<String, Vec<BTreeMap<&str, f64>>> = BTreeMap::new();
    for line in out.console.lines() {
        if line.contains("failed") && line.contains("tetra tracingpolicy") {
            return Err(format!("policy step failed in the guest: {line}"));
        }
        let Some(rest) = line.trim().strip_prefix("bench round=") else { continue };
        let mut words = rest.split_whitespace();
        let (_, Some(kind)) = (words.next(), words.next()) else { continue };
        by_kind.entry(kind.to_string()).or_default().push(fields(rest));
    }
    let median_of = |kind: &str, field: &str| -> Result<f64, String> {
        let rows = by_kind.get(kind).ok_or(format!("no {kind} result in the guest output:\n{}", out.console))?;
        let values: Vec<f64> = rows.iter().filter_map(|r| r.get(field).copied()).collect();
        if values.is_empty() {
            return Err(format!("no {field} in the {kind} results:\n{}", out.console));
        }
        Ok(median(values))
    };
    let kernel = tetra_tests::vm::kernel_info().ok().and_then(|i| i.get("KERNEL_PACKAGE_VERSION").cloned()).unwrap_or_default();
    println!("close(-1) hooked on __x64_sys_close, kernel {kernel} under qemu, {calls} calls x {rounds} rounds (medians):");
    let base = median_of("base", "ns_per_call")?;
    let empty = median_of("empty", "ns_per_call")?;
    let empty_run = median_of("empty", "bpf_ns_per_run")?;
    println!("  step                     wall ns/call  vs no hook  vs empty | BPF run ns  vs empty");
    println!("  no hook                  {base:>12.1}       x1.00          |");
    for (kind, label) in [
        ("empty", "empty BPF kprobe"),
        ("nobinary", "policy, binary rejected"),
        ("nomatch", "policy, selector misses"),
        ("nopost", "policy, matches, NoPost"),
        ("match", "policy, Post matches"),
    ] {
        let wall = median_of(kind, "ns_per_call")?;
        let run = median_of(kind, "bpf_ns_per_run")?;
        println!(
            "  {label:<24} {wall:>12.1}  {:>10}  {:>8} | {run:>10.1}  {:>8}",
            format!("x{:.2}", wall / base),
            format!("x{:.2}", wall / empty),
            format!("x{:.2}", run / empty_run)
        );
    }
    let deliveries = &by_kind["match"];
    for (i, d) in deliveries.iter().enumerate() {
        println!(
            "  round {}: {} of {} events in the JSON export, {:.0} events/s",
            i + 1,
            d.get("delivered").copied().unwrap_or(0.0),
            d.get("expected").copied().unwrap_or(0.0),
            d.get("events_per_s").copied().unwrap_or(0.0)
        );
    }
    let rate = median(deliveries.iter().filter_map(|d| d.get("events_per_s").copied()).collect());
    println!("  delivery to the JSON file: median {rate:.0} events/s");
    let log = out.require_section("agentlog").map_err(|e| e.to_string())?;
    let stats = log.lines().find(|l| l.contains("final stats")).ok_or(format!("no final stats in the agent log:\n{log}"))?;
    println!("  agent: {}", stats.trim());
    let complete = deliveries.iter().all(|d| d.get("delivered") == d.get("expected"));
    if !complete || !stats.contains(" lost=0") {
        return Err("events were lost: the delivery figure is not a zero-loss rate".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let calls = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rounds = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    match run(calls, rounds) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vm_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
