//! kprobe and LSM TracingPolicy hooks on Debian's kernel (`TETRA_VM_KERNEL`) (tier 3): the development
//! kernel has no kprobes and refuses BPF LSM, so these program variants are only ever
//! verified, attached and exercised here. The agent runs in the guest with three policies:
//!
//! - kprobe `fd_install` reporting files opened under /etc/ (path in args[1]);
//! - LSM `file_open` denying one file to /usr/bin/cat (Override -1), not to busybox head;
//! - kprobe `security_file_permission` killing /usr/bin/cat when it reads another file;
//! - syscall kprobe `sys_openat` reporting one path (string argument);
//! - kprobe Override, which this kernel cannot run: refused alone, with the reason;
//! - a return probe on `sys_openat` reporting failed opens under /tmp/ret/ with the
//!   return value (matchReturnArgs);
//! - FollowFD on fd_install and CopyFD on dup2: a read through the duplicate fd reports
//!   the path the original was opened with.
//!
//! The guest's own applets are busybox symlinks (their executable is /bin/busybox), so the
//! host's coreutils `cat` is copied in as /usr/bin/cat to have a binary of its own.
use std::time::Duration;

use serde_json::Value;
use tetra_tests::require_vm;
use tetra_tests::vm::{self, cargo_build_binary, kernel_info, Vm};

const FD_INSTALL: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-fd-install
spec:
  kprobes:
  - call: fd_install
    syscall: false
    args:
    - index: 0
      type: int
    - index: 1
      type: file
    selectors:
    - matchArgs:
      - index: 1
        operator: Prefix
        values: ["/etc/"]
"#;

const LSM_DENY: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-lsm-deny
spec:
  lsmhooks:
  - hook: file_open
    args:
    - index: 0
      type: file
    selectors:
    - matchBinaries:
      - operator: In
        values: ["/usr/bin/cat"]
      matchArgs:
      - index: 0
        operator: Equal
        values: ["/etc/tetra-secret/key"]
      matchActions:
      - action: Override
        argError: -1
"#;

const SIGKILL: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-sigkill
spec:
  kprobes:
  - call: security_file_permission
    syscall: false
    args:
    - index: 0
      type: file
    - index: 1
      type: int
    selectors:
    - matchBinaries:
      - operator: In
        values: ["/usr/bin/cat"]
      matchArgs:
      - index: 0
        operator: Prefix
        values: ["/etc/tetra-kill/"]
      matchActions:
      - action: Sigkill
"#;

/// The syscall variant of the kprobe program: arguments come from the inner pt_regs.
const SYSCALL: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-openat
spec:
  kprobes:
  - call: sys_openat
    syscall: true
    args:
    - index: 1
      type: string
    selectors:
    - matchArgs:
      - index: 1
        operator: Equal
        values: ["/tmp/outside/file"]
"#;

/// Refused on this kernel (no bpf_override_return): must fail alone, with the reason.
const KPROBE_OVERRIDE: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-kprobe-override
spec:
  kprobes:
  - call: sys_openat
    syscall: true
    selectors:
    - matchActions:
      - action: Override
        argError: -1
"#;

/// Override on a security_* kprobe of a kernel without bpf_override_return: runs as fmod_ret,
/// so cat's open fails with EACCES before the file is opened; busybox head is not named.
const FMOD_OVERRIDE: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-fmod-override
spec:
  kprobes:
  - call: security_file_open
    syscall: false
    args:
    - index: 0
      type: file
    selectors:
    - matchBinaries:
      - operator: In
        values: ["/usr/bin/cat"]
      matchArgs:
      - index: 0
        operator: Equal
        values: ["/etc/tetra-fmod/key"]
      matchActions:
      - action: Override
        argError: -13
"#;

/// The BPF LSM hook of map creation under its two names: `bpf_map_alloc_security` until
/// Linux 6.8, `bpf_map_create` from 6.9. Each kernel runs one and refuses the other, naming
/// the hook and the kernel.
const LSM_MAP_HOOKS: [(&str, &str); 2] = [("vm-lsm-map-alloc", "bpf_map_alloc_security"), ("vm-lsm-map-create", "bpf_map_create")];

fn lsm_map_policy(name: &str, hook: &str) -> String {
    format!(
        "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: {name}\nspec:\n  lsmhooks:\n  \
         - hook: {hook}\n    selectors:\n    - matchBinaries:\n      - operator: In\n        values: [\"/usr/bin/cat\"]\n"
    )
}

/// A kretprobe on a syscall: only failed opens under /tmp/ret/, with the return value.
const RETURN: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-return
spec:
  kprobes:
  - call: sys_openat
    syscall: true
    return: true
    args:
    - index: 1
      type: string
    returnArg:
      index: 0
      type: int
    selectors:
    - matchArgs:
      - index: 1
        operator: Prefix
        values: ["/tmp/ret/"]
      matchReturnArgs:
      - index: 0
        operator: LT
        values: ["0"]
"#;

/// Reads are reported on followed fds only; dup2 makes the new fd follow the old one's path.
const COPY_FD: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-copyfd
spec:
  kprobes:
  - call: fd_install
    syscall: false
    args:
    - index: 0
      type: int
    - index: 1
      type: file
    selectors:
    - matchArgs:
      - index: 1
        operator: Equal
        values: ["/etc/tetra-test/hostname"]
      matchActions:
      - action: FollowFD
        argFd: 0
        argName: 1
  - call: sys_dup2
    syscall: true
    args:
    - index: 0
      type: int
    - index: 1
      type: int
    selectors:
    - matchActions:
      - action: CopyFD
        argFd: 0
        argName: 1
  - call: sys_read
    syscall: true
    args:
    - index: 0
      type: fd
    - index: 2
      type: size_t
"#;

const SCRIPT: &str = r#"
mkdir -p /etc/tetra-test /etc/tetra-secret /etc/tetra-kill /etc/tetra-fmod /tmp/outside
echo FMOD-SECRET > /etc/tetra-fmod/key
echo etc-hostname-content > /etc/tetra-test/hostname
echo outside-content > /tmp/outside/file
echo TOPSECRET-CONTENT > /etc/tetra-secret/key
echo kill-content > /etc/tetra-kill/file
/bin/tetrad --export-filename /tmp/events.json --enable-process-cred=false \
    --enable-process-ns=false --tracing-policy /policies/fd.yaml \
    --tracing-policy /policies/lsm.yaml --tracing-policy /policies/kill.yaml \
    --tracing-policy /policies/openat.yaml --tracing-policy /policies/override.yaml \
    --tracing-policy /policies/return.yaml --tracing-policy /policies/copyfd.yaml \
    --tracing-policy /policies/fmod.yaml --tracing-policy /policies/vm-lsm-map-alloc.yaml \
    --tracing-policy /policies/vm-lsm-map-create.yaml > /tmp/tetrad.log 2>&1 &
agent=$!
tetra_wait 120 grep -q "tetrad ready" /tmp/tetrad.log
/usr/bin/cat /etc/tetra-test/hostname > /tmp/etc.out 2>&1; echo "rc=$?" >> /tmp/etc.out
/usr/bin/cat /tmp/outside/file > /tmp/outside.out 2>&1; echo "rc=$?" >> /tmp/outside.out
/usr/bin/cat /etc/tetra-secret/key > /tmp/deny.out 2>&1; echo "rc=$?" >> /tmp/deny.out
/usr/bin/head /etc/tetra-secret/key > /tmp/head.out 2>&1; echo "rc=$?" >> /tmp/head.out
/usr/bin/cat /etc/tetra-kill/file > /tmp/kill.out 2>&1; echo "rc=$?" >> /tmp/kill.out
/usr/bin/head /etc/tetra-kill/file > /tmp/headkill.out 2>&1; echo "rc=$?" >> /tmp/headkill.out
/usr/bin/cat /etc/tetra-fmod/key > /tmp/fmod.out 2>&1; echo "rc=$?" >> /tmp/fmod.out
/usr/bin/head /etc/tetra-fmod/key > /tmp/fmodhead.out 2>&1; echo "rc=$?" >> /tmp/fmodhead.out
mkdir -p /tmp/ret && echo present > /tmp/ret/present
/usr/bin/cat /tmp/ret/present /tmp/ret/missing > /tmp/ret.out 2>&1; echo "rc=$?" >> /tmp/ret.out
/bin/seed002_workload dup /etc/tetra-test/hostname > /tmp/dup.out 2>&1; echo "rc=$?" >> /tmp/dup.out
sleep 2
kill -INT $agent
wait $agent
tetra_section agentlog cat /tmp/tetrad.log
tetra_section etc cat /tmp/etc.out
tetra_section outside cat /tmp/outside.out
tetra_section deny cat /tmp/deny.out
tetra_section head cat /tmp/head.out
tetra_section kill cat /tmp/kill.out
tetra_section headkill cat /tmp/headkill.out
tetra_section fmod cat /tmp/fmod.out
tetra_section fmodhead cat /tmp/fmodhead.out
tetra_section ret cat /tmp/ret.out
tetra_section dup cat /tmp/dup.out
tetra_section events cat /tmp/events.json
"#;

fn bodies<'a>(events: &'a [Value], kind: &str) -> impl Iterator<Item = &'a Value> + 'a {
    let kind = kind.to_string();
    events.iter().filter_map(move |e| e.get(&kind))
}

fn args_of(body: &Value) -> String {
    body["process"]["arguments"].as_str().unwrap_or_default().to_string()
}

#[test]
fn kprobe_and_lsm_policies_on_debian_kernel() {
    require_vm!();
    let tetrad = cargo_build_binary("tetra-agent", "tetrad").expect("build tetrad");
    let workload = cargo_build_binary("tetra-tests", "seed002_workload").expect("build the workload");
    let mut vm = Vm::new();
    for (name, hook) in LSM_MAP_HOOKS {
        vm = vm.file_bytes(lsm_map_policy(name, hook), &format!("/policies/{name}.yaml"), 0o644);
    }
    let out = vm
        .binary(&tetrad, "/bin/tetrad")
        .binary(&workload, "/bin/seed002_workload")
        .binary("/usr/bin/cat", "/usr/bin/cat")
        .file_bytes(FD_INSTALL, "/policies/fd.yaml", 0o644)
        .file_bytes(LSM_DENY, "/policies/lsm.yaml", 0o644)
        .file_bytes(SIGKILL, "/policies/kill.yaml", 0o644)
        .file_bytes(SYSCALL, "/policies/openat.yaml", 0o644)
        .file_bytes(KPROBE_OVERRIDE, "/policies/override.yaml", 0o644)
        .file_bytes(RETURN, "/policies/return.yaml", 0o644)
        .file_bytes(COPY_FD, "/policies/copyfd.yaml", 0o644)
        .file_bytes(FMOD_OVERRIDE, "/policies/fmod.yaml", 0o644)
        .memory_mb(1536)
        .script(SCRIPT)
        .timeout(Duration::from_secs(420))
        .run()
        .unwrap_or_else(|e| panic!("VM run failed: {e}"));
    out.ensure_success().unwrap_or_else(|e| panic!("{e}"));
    let log = out.require_section("agentlog").unwrap();
    assert!(log.contains("tetrad ready"), "agent log:\n{log}");
    for (name, hooks) in [("vm-fd-install", 1), ("vm-lsm-deny", 1), ("vm-sigkill", 1), ("vm-openat", 1), ("vm-return", 1), ("vm-copyfd", 3), ("vm-fmod-override", 1)] {
        assert!(log.contains(&format!("tracing policy \"{name}\" enabled: {hooks} hook(s) attached")), "{name} not loaded; agent log:\n{log}");
    }
    let refused = log
        .lines()
        .find(|l| l.contains("tracing policy \"vm-kprobe-override\" not loaded"))
        .unwrap_or_else(|| panic!("kprobe Override was not refused; agent log:\n{log}"));
    assert!(refused.contains("bpf_override_return"), "{refused}");
    // The LSM hook this kernel lacks is refused by name, before any BPF is loaded.
    let release = kernel_info().unwrap()["KERNEL_RELEASE"].clone();
    let (present, absent) = if vm::kernel_at_least(6, 9) { (LSM_MAP_HOOKS[1], LSM_MAP_HOOKS[0]) } else { (LSM_MAP_HOOKS[0], LSM_MAP_HOOKS[1]) };
    assert!(log.contains(&format!("tracing policy \"{}\" enabled: 1 hook(s) attached", present.0)), "{present:?}; agent log:\n{log}");
    let refused = log
        .lines()
        .find(|l| l.contains(&format!("tracing policy \"{}\" not loaded", absent.0)))
        .unwrap_or_else(|| panic!("{absent:?} was not refused; agent log:\n{log}"));
    let reason = format!(
        "spec.lsmhooks[0] {hook}: LSM hook {hook} does not exist in kernel {release} (no bpf_lsm_{hook} in /proc/kallsyms)",
        hook = absent.1
    );
    assert!(refused.contains(&reason), "{refused}\nexpected: {reason}");
    assert!(log.contains("lost=0"), "agent log:\n{log}");
    let section = |name: &str| out.require_section(name).unwrap();
    let events: Vec<Value> = out.json_section("events").unwrap_or_else(|e| panic!("{e}"));

    // The shell's view of each command.
    assert_eq!(section("etc").trim(), "etc-hostname-content\nrc=0");
    assert_eq!(section("outside").trim(), "outside-content\nrc=0");
    let deny = section("deny");
    assert!(!deny.contains("TOPSECRET"), "cat read the protected file:\n{deny}");
    assert!(deny.contains("Operation not permitted") && deny.contains("rc=1"), "cat of the protected file:\n{deny}");
    assert_eq!(section("head").trim(), "TOPSECRET-CONTENT\nrc=0", "busybox head must not be denied");
    let kill = section("kill");
    assert!(!kill.contains("kill-content") && kill.contains("rc=137"), "cat must be killed:\n{kill}");
    // The kprobe Override on security_file_open, as fmod_ret: denied before the open.
    let fmod = section("fmod");
    assert!(!fmod.contains("FMOD-SECRET"), "cat read the protected file:\n{fmod}");
    assert!(fmod.contains("Permission denied") && fmod.contains("rc=1"), "cat under fmod_ret:\n{fmod}");
    assert_eq!(section("fmodhead").trim(), "FMOD-SECRET\nrc=0", "busybox head must not be denied");
    let fmod_hits: Vec<&Value> =
        bodies(&events, "process_kprobe").filter(|b| b["policy_name"] == "vm-fmod-override").collect();
    assert_eq!(fmod_hits.len(), 1, "{fmod_hits:#?}");
    assert_eq!(fmod_hits[0]["function_name"], "security_file_open");
    assert_eq!(fmod_hits[0]["action"], "KPROBE_ACTION_OVERRIDE");
    assert_eq!(fmod_hits[0]["process"]["binary"], "/usr/bin/cat");
    assert_eq!(fmod_hits[0]["args"][0]["file_arg"]["path"], "/etc/tetra-fmod/key");

    // The executable the kernel sees for each process (what matchBinaries compares).
    let cat_exec = bodies(&events, "process_exec")
        .find(|b| args_of(b) == "/etc/tetra-test/hostname")
        .unwrap_or_else(|| panic!("no exec of cat; events: {events:#?}"));
    assert_eq!(cat_exec["process"]["binary"], "/usr/bin/cat");
    let head_exec = bodies(&events, "process_exec")
        .find(|b| args_of(b) == "/etc/tetra-secret/key" && b["process"]["binary"] != "/usr/bin/cat")
        .unwrap_or_else(|| panic!("no exec of head; events: {events:#?}"));
    assert_eq!(head_exec["process"]["binary"], "/usr/bin/head");

    // 1. fd_install: opens under /etc/ are reported with the path, others are not.
    let kprobes: Vec<&Value> =
        bodies(&events, "process_kprobe").filter(|b| b["policy_name"] == "vm-fd-install").collect();
    let etc_hit = kprobes
        .iter()
        .find(|b| args_of(b) == "/etc/tetra-test/hostname" && b["args"][1]["file_arg"]["path"] == "/etc/tetra-test/hostname")
        .unwrap_or_else(|| panic!("no fd_install event for /etc/tetra-test/hostname; kprobe events: {kprobes:#?}"));
    assert_eq!(etc_hit["function_name"], "fd_install");
    assert_eq!(etc_hit["process"]["binary"], "/usr/bin/cat");
    assert!(etc_hit["args"][0]["int_arg"].is_number(), "fd argument: {etc_hit:#}");
    for b in &kprobes {
        let path = b["args"][1]["file_arg"]["path"].as_str().unwrap_or_default();
        assert!(path.starts_with("/etc/"), "fd_install event outside /etc/: {b:#}");
    }
    assert!(
        !kprobes.iter().any(|b| args_of(b) == "/tmp/outside/file" && b["args"][1]["file_arg"]["path"] == "/tmp/outside/file"),
        "open outside /etc/ reported"
    );

    // 2. LSM file_open: the denial is exported with the Override action, for cat only.
    let lsm: Vec<&Value> = bodies(&events, "process_lsm").filter(|b| b["policy_name"] == "vm-lsm-deny").collect();
    let denied = lsm
        .iter()
        .find(|b| b["process"]["binary"] == "/usr/bin/cat")
        .unwrap_or_else(|| panic!("no process_lsm event for cat; events: {events:#?}"));
    assert_eq!(denied["action"], "KPROBE_ACTION_OVERRIDE");
    assert_eq!(denied["function_name"], "file_open");
    assert_eq!(denied["args"][0]["file_arg"]["path"], "/etc/tetra-secret/key");
    assert!(lsm.iter().all(|b| b["process"]["binary"] == "/usr/bin/cat"), "LSM hits: {lsm:#?}");
    // The denied open never reached fd_install.
    assert!(!kprobes.iter().any(|b| b["args"][1]["file_arg"]["path"] == "/etc/tetra-secret/key"
        && b["process"]["binary"] == "/usr/bin/cat"));

    // 3. Sigkill on security_file_permission: reported, and the process died of SIGKILL.
    let kill_hit = bodies(&events, "process_kprobe")
        .find(|b| b["policy_name"] == "vm-sigkill")
        .unwrap_or_else(|| panic!("no vm-sigkill event; events: {events:#?}"));
    assert_eq!(kill_hit["action"], "KPROBE_ACTION_SIGKILL");
    assert_eq!(kill_hit["function_name"], "security_file_permission");
    assert_eq!(kill_hit["args"][0]["file_arg"]["path"], "/etc/tetra-kill/file");
    let killed_id = kill_hit["process"]["exec_id"].clone();
    let exit = bodies(&events, "process_exit")
        .find(|b| b["process"]["exec_id"] == killed_id)
        .unwrap_or_else(|| panic!("no exit of the killed cat; events: {events:#?}"));
    assert_eq!(exit["signal"], "SIGKILL");
    assert_eq!(args_of(exit), "/etc/tetra-kill/file");
    // Another binary reading the same file is neither killed nor reported.
    assert_eq!(section("headkill").trim(), "kill-content\nrc=0");
    assert_eq!(bodies(&events, "process_kprobe").filter(|b| b["policy_name"] == "vm-sigkill").count(), 1);

    // 4. A syscall kprobe reads its arguments from the syscall's own pt_regs.
    let openat: Vec<&Value> =
        bodies(&events, "process_kprobe").filter(|b| b["policy_name"] == "vm-openat").collect();
    let hit = openat
        .iter()
        .find(|b| args_of(b) == "/tmp/outside/file")
        .unwrap_or_else(|| panic!("no openat event of cat; events: {openat:#?}"));
    assert_eq!(hit["function_name"], "__x64_sys_openat");
    assert_eq!(hit["process"]["binary"], "/usr/bin/cat");
    assert_eq!(hit["args"][0]["string_arg"], "/tmp/outside/file");
    assert!(openat.iter().all(|b| b["args"][0]["string_arg"] == "/tmp/outside/file"), "{openat:#?}");

    // 5. The return probe: the failed open only, with its return value (-ENOENT).
    let ret = section("ret");
    assert!(ret.starts_with("present\n") && ret.contains("rc=1"), "{ret}");
    let returns: Vec<&Value> =
        bodies(&events, "process_kprobe").filter(|b| b["policy_name"] == "vm-return").collect();
    assert_eq!(returns.len(), 1, "{returns:#?}");
    assert_eq!(returns[0]["function_name"], "__x64_sys_openat");
    assert_eq!(returns[0]["args"][0]["string_arg"], "/tmp/ret/missing");
    assert_eq!(returns[0]["return"]["int_arg"], -2, "{:#}", returns[0]);
    assert_eq!(returns[0]["return_action"], "KPROBE_ACTION_POST");
    assert_eq!(returns[0]["process"]["binary"], "/usr/bin/cat");

    // 6. CopyFD: the workload reads the file only through fd 20, a dup2 of the followed
    // fd it closed: its reads are reported with the path only because dup2 copied it.
    // Reads of other fds are not reported at all (cat's read the file it opened itself).
    assert_eq!(section("dup").trim(), "etc-hostname-content\nrc=0");
    let copy: Vec<&Value> =
        bodies(&events, "process_kprobe").filter(|b| b["policy_name"] == "vm-copyfd").collect();
    let calls: Vec<&str> = copy.iter().map(|b| b["function_name"].as_str().unwrap()).collect();
    let reads: Vec<&&Value> = copy.iter().filter(|b| b["function_name"] == "__x64_sys_read").collect();
    for r in &reads {
        assert_eq!(r["args"][0]["file_arg"]["path"], "/etc/tetra-test/hostname", "{r:#}");
    }
    assert!(
        reads.iter().any(|r| r["process"]["binary"] == "/bin/seed002_workload"),
        "no read through the duplicated fd: {copy:#?}"
    );
    let dup = copy
        .iter()
        .find(|b| b["function_name"] == "__x64_sys_dup2" && b["process"]["binary"] == "/bin/seed002_workload")
        .unwrap_or_else(|| panic!("no dup2 event: {calls:?}"));
    assert_eq!(dup["args"][1]["int_arg"], 20);
}

const EXAMPLES_SCRIPT: &str = r#"
mkdir -p /etc/tetra-secret /etc/tetra-protected
echo example-secret > /etc/tetra-secret/key
echo protected > /etc/tetra-protected/file
/bin/tetrad --export-filename /tmp/events.json --enable-process-cred=false \
    --enable-process-ns=false --tracing-policy-dir /policies > /tmp/tetrad.log 2>&1 &
agent=$!
tetra_wait 120 grep -q "tetrad ready" /tmp/tetrad.log
/bin/cat /etc/tetra-secret/key > /tmp/deny.out 2>&1; echo "rc=$?" >> /tmp/deny.out
/bin/sh -c 'echo more >> /etc/tetra-protected/file; echo survived' > /tmp/write.out 2>&1
echo "rc=$?" >> /tmp/write.out
/bin/cat /etc/tetra-protected/file > /tmp/read.out 2>&1; echo "rc=$?" >> /tmp/read.out
sleep 2
kill -INT $agent
wait $agent
tetra_section agentlog cat /tmp/tetrad.log
tetra_section deny cat /tmp/deny.out
tetra_section write cat /tmp/write.out
tetra_section read cat /tmp/read.out
tetra_section events cat /tmp/events.json
"#;

/// No example policy of the repository fails in the kernel (verifier, attach) on Debian's
/// 6.1, and the enforcing ones do what their comments say (busybox's cat is /bin/cat to
/// matchBinaries, its execve path).
#[test]
fn example_policies_on_debian_kernel() {
    require_vm!();
    let tetrad = cargo_build_binary("tetra-agent", "tetrad").expect("build tetrad");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tracingpolicy");
    let out = Vm::new()
        .binary(&tetrad, "/bin/tetrad")
        // The USDT example's binary: its probes are only attached here, not fired.
        .binary("/usr/bin/python3", "/usr/bin/python3")
        .dir(&root, "/policies")
        .memory_mb(1536)
        .script(EXAMPLES_SCRIPT)
        .timeout(Duration::from_secs(420))
        .run()
        .unwrap_or_else(|e| panic!("VM run failed: {e}"));
    out.ensure_success().unwrap_or_else(|e| panic!("{e}"));
    let log = out.require_section("agentlog").unwrap();
    assert!(log.contains("tetrad ready"), "agent log:\n{log}");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = text
            .lines()
            .skip_while(|l| !l.starts_with("metadata:"))
            .find_map(|l| l.trim().strip_prefix("name: "))
            .unwrap_or_else(|| panic!("no metadata.name in {}", path.display()))
            .trim()
            .to_string();
        names.push(name);
    }
    assert!(names.len() >= 6, "{names:?}");
    // Kernel-side failures (verifier, attach, missing kernel feature) fail the test; a
    // policy user space refuses for a feature the agent lacks is reported as such only.
    for name in &names {
        let loaded = format!("tracing policy \"{name}\" enabled");
        let refused = format!("tracing policy \"{name}\" not loaded");
        match log.lines().find(|l| l.contains(&loaded) || l.contains(&refused)) {
            Some(l) if l.contains(&loaded) => {}
            Some(l) if l.contains("not supported yet") => eprintln!("example {name}: {l}"),
            _ => panic!("{name} failed to load; agent log:\n{log}"),
        }
    }
    for name in ["lsm-deny-open", "sigkill-protected-writes", "tracepoint-kill-signal"] {
        assert!(names.iter().any(|n| n == name), "{names:?}");
        assert!(log.contains(&format!("tracing policy \"{name}\" enabled")), "{name} not loaded; agent log:\n{log}");
    }
    let section = |name: &str| out.require_section(name).unwrap();
    let deny = section("deny");
    assert!(!deny.contains("example-secret") && deny.contains("Operation not permitted"), "{deny}");
    let write = section("write");
    assert!(!write.contains("survived") && write.contains("rc=137"), "{write}");
    let read = section("read");
    assert!(read.starts_with("protected\n") && read.trim_end().ends_with("rc=0"), "reads of the protected file are allowed:\n{read}");
    let events: Vec<Value> = out.json_section("events").unwrap_or_else(|e| panic!("{e}"));
    let lsm = bodies(&events, "process_lsm")
        .find(|b| b["policy_name"] == "lsm-deny-open")
        .unwrap_or_else(|| panic!("no lsm-deny-open event; events: {events:#?}"));
    assert_eq!(lsm["action"], "KPROBE_ACTION_OVERRIDE");
    let kill = bodies(&events, "process_kprobe")
        .find(|b| b["policy_name"] == "sigkill-protected-writes")
        .unwrap_or_else(|| panic!("no sigkill-protected-writes event; events: {events:#?}"));
    assert_eq!(kill["action"], "KPROBE_ACTION_SIGKILL");
    let exit = bodies(&events, "process_exit")
        .find(|b| b["process"]["exec_id"] == kill["process"]["exec_id"])
        .unwrap_or_else(|| panic!("no exit of the killed writer; events: {events:#?}"));
    assert_eq!(exit["signal"], "SIGKILL");
}
