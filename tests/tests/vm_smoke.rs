//! Smoke tests of the VM test bed (tier 3): the Debian kernel boots under qemu
//! and offers what the kprobe/LSM end-to-end tests need.
//!
//! Needs the test bed of `tests/vm/prepare.sh`; when it is missing the tests
//! run that script if they are root and fail otherwise. `TETRA_SKIP_VM=1`
//! skips them with a printed reason.

use std::time::{Duration, Instant};

use tetra_tests::require_vm;
use tetra_tests::vm::{self, kernel_info, Vm};

const SMOKE_SCRIPT: &str = r#"
tetra_section lsm cat /sys/kernel/security/lsm
echo
tetra_section btf ls -l /sys/kernel/btf/vmlinux

T=/sys/kernel/tracing
tetra_begin kprobe
echo 'p:tetra_smoke do_sys_openat2' >> $T/kprobe_events && echo "added"
cat $T/kprobe_events
echo 1 > $T/events/kprobes/tetra_smoke/enable
cat /etc/hostname-does-not-exist 2>/dev/null
cat /tetra/lib.sh > /dev/null
echo 0 > $T/events/kprobes/tetra_smoke/enable
echo "hits=$(grep -c 'tetra_smoke:' $T/trace)"
echo '-:tetra_smoke' >> $T/kprobe_events && echo "removed"
echo "remaining=$(grep -c tetra_smoke $T/kprobe_events)"
tetra_end kprobe

tetra_section mounts cat /proc/mounts
tetra_section host_file cat /etc/tetra/hello.txt
tetra_section probe /bin/vm_probe hello vm
probe_rc=$?

# Loopback TCP round trip with busybox nc: the server replies to one line and
# closes, which ends the client.
cat > /tmp/pong.sh <<'PONG'
#!/bin/sh
read line
echo "pong:$line"
PONG
chmod +x /tmp/pong.sh
nc -l -p 7777 -e /tmp/pong.sh &
tetra_begin tcp
i=0
while [ $i -lt 50 ]; do
    reply=$(echo ping | timeout 10 nc 127.0.0.1 7777 2>/dev/null) && [ -n "$reply" ] && break
    i=$((i + 1))
    sleep 0.1
done
echo "$reply"
tetra_end tcp

exit $probe_rc
"#;

#[test]
fn vm_boots_with_kprobes_bpf_lsm_btf_and_runs_host_binary() {
    require_vm!();
    let started = Instant::now();
    let out = Vm::new()
        .binary(env!("CARGO_BIN_EXE_vm_probe"), "/bin/vm_probe")
        .file_bytes("hello from the host\n", "/etc/tetra/hello.txt", 0o644)
        .script(SMOKE_SCRIPT)
        .timeout(Duration::from_secs(240))
        .run()
        .unwrap_or_else(|e| panic!("VM run failed: {e}"));
    let info = kernel_info().unwrap_or_default();
    eprintln!(
        "VM smoke: kernel {} {}, boot (qemu start -> /init ready) {:.2}s, guest uptime at ready {:?}s, total {:.2}s, test {:.2}s",
        info.get("KERNEL_PACKAGE").map(String::as_str).unwrap_or("?"),
        info.get("KERNEL_PACKAGE_VERSION").map(String::as_str).unwrap_or("?"),
        out.boot_time.map(|d| d.as_secs_f64()).unwrap_or(f64::NAN),
        out.guest_uptime_at_ready,
        out.total_time.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    if let Err(e) = out.ensure_success() {
        panic!("{e}");
    }
    let section = |name: &str| out.require_section(name).unwrap_or_else(|e| panic!("{e}"));

    let lsm = section("lsm");
    assert!(lsm.trim().split(',').any(|m| m == "bpf"), "BPF LSM not active: {lsm:?}");

    let btf = section("btf");
    assert!(btf.contains("/sys/kernel/btf/vmlinux"), "no vmlinux BTF: {btf:?}");

    let kprobe = section("kprobe");
    assert!(kprobe.contains("added"), "kprobe not created:\n{kprobe}");
    assert!(kprobe.contains("p:kprobes/tetra_smoke do_sys_openat2"), "kprobe not listed:\n{kprobe}");
    let hits: u32 = kprobe
        .lines()
        .find_map(|l| l.strip_prefix("hits="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(hits > 0, "the kprobe on do_sys_openat2 never fired:\n{kprobe}");
    assert!(kprobe.contains("removed") && kprobe.contains("remaining=0"), "kprobe not removed:\n{kprobe}");

    let mounts = section("mounts");
    for fs in ["tracefs", "debugfs", "bpf", "cgroup2", "securityfs", "devtmpfs"] {
        assert!(mounts.lines().any(|l| l.split_whitespace().nth(2) == Some(fs)), "{fs} not mounted:\n{mounts}");
    }

    assert_eq!(section("host_file"), "hello from the host\n");

    let probe = section("probe");
    assert!(probe.contains(r#"args=["hello", "vm"]"#), "vm_probe output wrong:\n{probe}");
    // The kernel TETRA_VM_KERNEL selected (prepare.sh recorded its release), unless
    // TETRA_VM_BZIMAGE boots another one.
    if std::env::var_os("TETRA_VM_BZIMAGE").is_none() {
        let release = info.get("KERNEL_RELEASE").expect("kernel.env has KERNEL_RELEASE");
        assert!(probe.contains(&format!("osrelease={release} ")), "not the kernel {release}:\n{probe}");
    }
    assert!(probe.contains("tcp reply=echo:ping"), "std TCP round trip failed:\n{probe}");

    assert_eq!(section("tcp").trim(), "pong:ping", "busybox nc round trip over loopback failed");

    let problems = out.kernel_problems();
    assert!(problems.is_empty(), "kernel reported problems: {problems:#?}");
}

#[test]
fn vm_reports_script_exit_code_and_basic_mounts_only() {
    require_vm!();
    let out = Vm::new()
        .basic_mounts_only()
        .dmesg(false)
        .script("tetra_section mounts cut -d' ' -f3 /proc/mounts\nexit 7")
        .run()
        .unwrap_or_else(|e| panic!("VM run failed: {e}"));
    assert_eq!(out.exit_code, Some(7), "{}", out.tail(40));
    assert!(out.ensure_success().is_err());
    let mounts = out.require_section("mounts").unwrap_or_else(|e| panic!("{e}"));
    assert!(mounts.lines().any(|l| l == "proc"), "{mounts}");
    for fs in ["tracefs", "bpf", "securityfs"] {
        assert!(!mounts.lines().any(|l| l == fs), "{fs} mounted despite basic_mounts_only:\n{mounts}");
    }
    assert!(out.section("dmesg").is_none());
}

#[test]
fn vm_timeout_kills_qemu_and_reports_console_tail() {
    require_vm!();
    let started = Instant::now();
    let err = Vm::new()
        .script("echo before-the-hang\nsleep 600")
        .timeout(Duration::from_secs(25))
        .run()
        .err()
        .unwrap_or_else(|| panic!("a hanging guest must time out"));
    let elapsed = started.elapsed();
    let text = err.to_string();
    assert!(text.contains("timed out"), "{text}");
    // Normally the guest reaches the script well within the limit; on a
    // very loaded host it may not, and the error must then say so.
    assert!(
        text.contains("before-the-hang") || text.contains("never reached"),
        "console tail missing from the error:\n{text}"
    );
    // The limit is 25 s times TETRA_VM_TIMEOUT_SCALE; killing and reporting is quick.
    let limit = Duration::from_secs(25).mul_f64(vm::timeout_scale().unwrap());
    assert!(text.contains(&format!("limit {:.0}s", limit.as_secs_f64())), "{text}");
    assert!(elapsed < limit + Duration::from_secs(35), "timeout took {elapsed:?}");
}
