//! Nodes that give the agent less than a development host: root without CAP_SYS_RESOURCE
//! and an 8 MiB RLIMIT_MEMLOCK (as measured on a real kubelet node), no BPF file system,
//! no kernel BTF. Each runs the real agent in a child set up that way by util-linux
//! (`prlimit`, `setpriv`, `unshare`).
mod common;

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

#[test]
#[ignore = "needs root: runs the agent in a private mount namespace (the README test command runs it)"]
fn without_kernel_btf_the_agent_says_so_and_exits() {
    // An empty /sys/kernel/btf: no vmlinux. Nothing the agent loads can be relocated without
    // it, so it stops at once, saying why, instead of running blind.
    let run = tempfile::tempdir().unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "sh", "-c", "mount -t tmpfs -o ro tmpfs /sys/kernel/btf && exec \"$@\"", "sh"])
        .arg(env!("CARGO_BIN_EXE_tetrad"))
        .args(["--server-address=", &format!("--run-dir={}", run.path().display())])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{log}");
    let missing: Vec<&str> = log.lines().filter(|l| l.contains("no kernel BTF at /sys/kernel/btf/vmlinux")).collect();
    assert_eq!(missing.len(), 1, "{log}");
    assert!(missing[0].contains("CONFIG_DEBUG_INFO_BTF=y"), "{log}");
    assert!(log.contains("loading the process lifecycle programs"), "{log}");
}
