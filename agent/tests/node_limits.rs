//! Nodes that give the agent less than a development host: root without CAP_SYS_RESOURCE
//! and an 8 MiB RLIMIT_MEMLOCK (as measured on a real kubelet node), no BPF file system,
//! no kernel BTF (with and without `--btf`). Each runs the real agent in a child set up
//! that way by util-linux (`prlimit`, `setpriv`, `unshare`).
mod common;
mod rpc;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use common::{marker, Agent};

/// A tracepoint policy killing whoever opens a file named `name`.
fn kill_on_open(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let policy = dir.join("kill.yaml");
    std::fs::write(
        &policy,
        format!(
            "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {{name: kill-on-open}}\n\
             spec:\n  tracepoints:\n  - subsystem: syscalls\n    event: sys_enter_openat\n    \
             args: [{{index: 6, type: string}}]\n    selectors:\n    - matchArgs: [{{index: 0, operator: Postfix, values: [{name}]}}]\n      \
             matchActions: [{{action: Sigkill}}]\n"
        ),
    )
    .unwrap();
    policy
}

/// A status line of /proc/PID/status or a row of /proc/PID/limits.
fn proc_line(pid: u32, file: &str, prefix: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix} in {file}")).to_string()
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn policies_load_and_enforce_without_cap_sys_resource_under_8_mib_memlock() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join(marker("memlock"));
    std::fs::write(&target, "x\n").unwrap();
    let policy = kill_on_open(dir.path(), target.file_name().unwrap().to_str().unwrap());
    let policy_arg = format!("--tracing-policy={}", policy.display());
    let agent = Agent::start_in(
        &["prlimit", "--memlock=8388608:8388608", "setpriv", "--inh-caps=-sys_resource", "--bounding-set=-sys_resource", "--"],
        &[&policy_arg],
    );
    // The agent really runs so: 8 MiB locked memory, CAP_SYS_RESOURCE (bit 24) gone.
    let limits = proc_line(agent.pid(), "limits", "Max locked memory");
    assert_eq!(limits.split_whitespace().collect::<Vec<_>>()[3..5], ["8388608", "8388608"], "{limits}");
    for set in ["CapEff:", "CapBnd:"] {
        let line = proc_line(agent.pid(), "status", set);
        let caps = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
        assert_eq!(caps & (1 << 24), 0, "{line}");
    }
    assert!(
        agent.log_text().contains("RLIMIT_MEMLOCK is 8192 KiB: not needed, this kernel charges BPF memory to the memory cgroup"),
        "{}",
        agent.log_text()
    );
    agent.wait_log("tracing policy \"kill-on-open\" enabled");
    let status = Command::new("/bin/cat").arg(&target).output().unwrap().status;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "the policy kills the opener: {status:?}");
}

#[test]
#[ignore = "needs root: loads BPF programs and mounts in a private mount namespace (the README test command runs it)"]
fn without_a_bpf_file_system_one_error_and_events_still_flow() {
    // /sys/fs read-only and empty: /sys/fs/bpf cannot even be created to mount on.
    let agent = Agent::start_in(
        &["unshare", "--mount", "sh", "-c", "mount -t tmpfs -o ro tmpfs /sys/fs && exec \"$@\"", "sh"],
        &[],
    );
    let errors: Vec<String> = agent.log_text().lines().filter(|l| l.contains("ERROR")).map(String::from).collect();
    assert_eq!(errors.len(), 1, "{}", agent.log_text());
    assert!(
        errors[0].contains("no bpf file system at /sys/fs/bpf and mounting one failed: Read-only file system"),
        "{}",
        errors[0]
    );
    let mut child = Command::new("/bin/true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    agent.wait_for("exec of /bin/true", |e| common::is(e, "process_exec", pid));
}

/// A private mount namespace whose /sys/kernel/btf is an empty read-only tmpfs: the
/// kernel's BTF cannot be found there (libbpf's other places, /boot and /lib/modules, hold
/// none on this host either).
const HIDE_BTF: [&str; 5] = ["unshare", "--mount", "sh", "-c", "mount -t tmpfs -o ro tmpfs /sys/kernel/btf && exec \"$@\""];

fn hide_btf() -> Vec<&'static str> {
    let mut w = HIDE_BTF.to_vec();
    w.push("sh");
    w
}

#[test]
#[ignore = "needs root: loads BPF programs in a private mount namespace (the README test command runs it)"]
fn with_btf_flag_and_no_kernel_btf_events_and_policies_work() {
    // This kernel's BTF, copied where the agent is told to find it.
    let dir = tempfile::tempdir().unwrap();
    let btf = dir.path().join("vmlinux.btf");
    std::fs::copy("/sys/kernel/btf/vmlinux", &btf).unwrap();
    let target = dir.path().join(marker("btf-flag"));
    std::fs::write(&target, "x\n").unwrap();
    let policy = kill_on_open(dir.path(), target.file_name().unwrap().to_str().unwrap());
    let agent = Agent::start_in(
        &hide_btf(),
        &[&format!("--btf={}", btf.display()), &format!("--tracing-policy={}", policy.display())],
    );
    agent.wait_log("tracing policy \"kill-on-open\" enabled");
    let log = agent.log_text();
    assert!(log.contains(&format!("BPF programs are relocated against {} (--btf)", btf.display())), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    // The lifecycle sensor: an exec and its exit.
    let mut child = Command::new("/bin/true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let exec = agent.wait_for("exec of /bin/true", |e| common::is(e, "process_exec", pid));
    // Read by the raw tracepoint programs as by the BTF ones: binary, working directory.
    let p = &exec["process_exec"]["process"];
    assert_eq!(p["binary"], "/bin/true", "{exec}");
    let cwd = std::env::current_dir().unwrap().display().to_string();
    assert_eq!(p["cwd"].as_str().map(|c| c.trim_end_matches('/')), Some(cwd.trim_end_matches('/')), "{exec}");
    agent.wait_for("exit of /bin/true", |e| common::is(e, "process_exit", pid));
    // The tracepoint policy: it kills, and its event is exported.
    let victim = Command::new("/bin/cat").arg(&target).spawn().unwrap();
    let pid = victim.id();
    let status = victim.wait_with_output().unwrap().status;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "the policy kills the opener: {status:?}");
    let hit = agent.wait_for("the policy's event", |e| common::is(e, "process_tracepoint", pid));
    assert_eq!(hit["process_tracepoint"]["policy_name"], "kill-on-open", "{hit}");
    assert_eq!(hit["process_tracepoint"]["action"], "KPROBE_ACTION_SIGKILL", "{hit}");
}

#[test]
#[ignore = "needs root: runs the agent in a private mount namespace (the README test command runs it)"]
fn without_kernel_btf_the_agent_stays_up_says_why_and_lists_its_policies() {
    use tetra_proto::tetragon::{GetHealthStatusRequest, HealthStatusResult, ListTracingPoliciesRequest, TracingPolicyState};
    let dir = tempfile::tempdir().unwrap();
    let policy = kill_on_open(dir.path(), "never-opened");
    let agent = Agent::start_in(
        &hide_btf(),
        &["--server-address=127.0.0.1:0", "--metrics-server=127.0.0.1:0", &format!("--tracing-policy={}", policy.display())],
    );
    // Still there a while later, serving.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(Command::new("kill").arg("-0").arg(agent.pid().to_string()).status().unwrap().code(), Some(0), "{}", agent.log_text());
    let log = agent.log_text();
    let missing: Vec<&str> = log.lines().filter(|l| l.contains("no kernel BTF at /sys/kernel/btf/vmlinux")).collect();
    assert_eq!(missing.len(), 1, "{log}");
    assert!(missing[0].contains("ERROR") && missing[0].contains("--btf FILE") && missing[0].contains("CONFIG_DEBUG_INFO_BTF=y"), "{log}");
    assert!(!log.contains("panicked"), "{log}");

    let run = agent.dir.path().join("run");
    let (server, metrics) = (rpc::info(&run, "server_address"), rpc::info(&run, "metrics_address"));
    let rt = rpc::runtime();
    let (health, policies) = rt.block_on(async {
        let mut client = rpc::connect(&server).await;
        let health = client.get_health(GetHealthStatusRequest::default()).await.unwrap().into_inner();
        let list = client.list_tracing_policies(ListTracingPoliciesRequest::default()).await.unwrap().into_inner();
        (health, list.policies)
    });
    assert_eq!(health.health_status[0].status, HealthStatusResult::HealthStatusRunning as i32);
    let [p] = policies.as_slice() else { panic!("{policies:?}") };
    assert_eq!((p.name.as_str(), p.state), ("kill-on-open", TracingPolicyState::TpStateLoadError as i32), "{p:?}");
    assert_eq!(p.error, format!("{}: 1 hook(s) not attached", tetra_agent::sys::NO_BTF));
    let (_, text) = rpc::http_get(&metrics, "/metrics");
    assert_eq!(rpc::sample(&text, "tetragon_tracingpolicy_loaded{state=\"load_error\"}"), Some(1.0), "{text}");
    assert_eq!(rpc::sample(&text, "tetragon_tracingpolicy_loaded{state=\"enabled\"}"), Some(0.0), "{text}");
}

#[test]
fn a_btf_flag_naming_no_btf_file_is_refused_naming_it() {
    let run = tempfile::tempdir().unwrap();
    let missing = run.path().join("no-such-vmlinux");
    let out = Command::new(env!("CARGO_BIN_EXE_tetrad"))
        .arg(format!("--btf={}", missing.display()))
        .args(["--server-address=", &format!("--run-dir={}", run.path().display())])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("--btf {}: not a readable BTF file", missing.display())), "{err}");
}
