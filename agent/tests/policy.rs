//! Host BPF tests of policy enforcement: the lifecycle sensor plus policy programs loaded
//! from TracingPolicy YAML, with the shared ring buffer read directly (this test process
//! plays the agent, so the kernel never reports the test's own calls).
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libbpf_rs::RingBufferBuilder;
use tetra_agent::abi::{self, ArgValue, GenericRecord};
use tetra_agent::sensors::generic::{load_policy, GenericShared, LoadedPolicy, SensorError};
use tetra_agent::sensors::process::ProcessSensor;

struct Harness {
    process: ProcessSensor,
    shared: GenericShared,
}

impl Harness {
    fn new() -> Harness {
        tetra_agent::sys::ensure_mounts();
        let process = ProcessSensor::load(1 << 22, None).expect("lifecycle sensor");
        let shared = GenericShared::new(&process, None).expect("shared policy maps");
        Harness { process, shared }
    }

    fn load(&self, yaml: &str) -> Result<LoadedPolicy, SensorError> {
        let compiled = tetra_crds::check_policy_yaml(yaml).expect("policy compiles");
        load_policy(&self.shared, &compiled)
    }

    /// Runs `act`, then collects generic records until `done` holds (or 10 s pass).
    fn records(&self, act: impl FnOnce(), done: impl Fn(&[GenericRecord]) -> bool) -> Vec<GenericRecord> {
        let got: Arc<Mutex<Vec<GenericRecord>>> = Arc::default();
        let sink = got.clone();
        let mut builder = RingBufferBuilder::new();
        builder
            .add(self.process.events_map(), move |data: &[u8]| {
                if data.first() == Some(&abi::MSG_GENERIC) {
                    sink.lock().unwrap().push(abi::decode_generic(data).expect("generic record decodes"));
                }
                0
            })
            .unwrap();
        let ring = builder.build().unwrap();
        ring.consume().unwrap();
        got.lock().unwrap().clear();
        act();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !done(&got.lock().unwrap()) {
            ring.poll(Duration::from_millis(50)).unwrap();
        }
        // Late records of what we did must show up too.
        std::thread::sleep(Duration::from_millis(200));
        ring.consume().unwrap();
        let out = got.lock().unwrap().clone();
        out
    }
}

fn marker(tag: &str) -> std::path::PathBuf {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    std::env::temp_dir().join(format!("tetra-{tag}-{}-{}", std::process::id(), t.as_nanos()))
}

fn path_arg(r: &GenericRecord, i: usize) -> String {
    match &r.args[i].value {
        ArgValue::Bytes(b) | ArgValue::Path(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("arg {i} is not a string: {other:?}"),
    }
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn tracepoint_policy_reports_only_matching_opens() {
    let h = Harness::new();
    let wanted = marker("tp-open");
    let other = marker("tp-other");
    std::fs::write(&wanted, "x").unwrap();
    std::fs::write(&other, "y").unwrap();
    let name = wanted.file_name().unwrap().to_str().unwrap();
    let yaml = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {{name: open-marker}}
spec:
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_openat
    args: [{{index: 6, type: string}}, {{index: 7, type: int}}]
    selectors:
    - matchArgs: [{{index: 0, operator: Postfix, values: [\"{name}\"]}}]
"
    );
    let policy = h.load(&yaml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(policy.hook_count(), 1);
    let mut pids = Vec::new();
    let recs = h.records(
        || {
            // Our own opens are never reported: this process is the agent here.
            std::fs::read(&wanted).unwrap();
            for f in [&other, &wanted] {
                let out = Command::new("/bin/cat").arg(f).output().unwrap();
                assert!(out.status.success());
            }
            pids.push(0);
        },
        |r| !r.is_empty(),
    );
    let ours: Vec<&GenericRecord> =
        recs.iter().filter(|r| path_arg(r, 0).contains("tetra-tp-")).collect();
    assert_eq!(ours.len(), 1, "exactly the cat of the marker: {recs:#?}");
    let r = ours[0];
    assert_eq!(path_arg(r, 0), wanted.to_str().unwrap());
    assert_eq!(r.args[1].value, ArgValue::Int(0), "O_RDONLY");
    assert_ne!(r.msg.pid, std::process::id());
    assert_eq!((r.msg.hook_id, r.msg.selector, r.msg.action), (0, 0, 1));
    assert_eq!(r.msg.policy_id, policy.info().id);
    drop(policy);
    // Dropped: nothing more is reported.
    let after = h.records(
        || {
            Command::new("/bin/cat").arg(&wanted).output().unwrap();
        },
        |_| false,
    );
    assert!(after.iter().all(|r| !path_arg(r, 0).contains("tetra-tp-")), "{after:#?}");
    let _ = std::fs::remove_file(&wanted);
    let _ = std::fs::remove_file(&other);
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn sigkill_from_tracepoint_kills_only_the_matching_binary() {
    let h = Harness::new();
    let file = marker("kill");
    std::fs::write(&file, "x\n").unwrap();
    let name = file.file_name().unwrap().to_str().unwrap();
    let yaml = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {{name: kill-cat}}
spec:
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_openat
    args: [{{index: 6, type: string}}]
    selectors:
    - matchArgs: [{{index: 0, operator: Postfix, values: [\"{name}\"]}}]
      matchBinaries: [{{operator: In, values: [/bin/cat]}}]
      matchActions: [{{action: Sigkill}}]
"
    );
    let _policy = h.load(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let mut statuses = Vec::new();
    let recs = h.records(
        || {
            statuses.push(Command::new("/bin/cat").arg(&file).output().unwrap());
            statuses.push(Command::new("/usr/bin/head").arg("-n1").arg(&file).output().unwrap());
        },
        |r| !r.is_empty(),
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(statuses[0].status.signal(), Some(9), "cat was killed: {:?}", statuses[0]);
    assert!(statuses[0].stdout.is_empty(), "killed before it printed");
    assert!(statuses[1].status.success(), "head is not selected: {:?}", statuses[1]);
    assert_eq!(statuses[1].stdout, b"x\n");
    let ours: Vec<&GenericRecord> = recs.iter().filter(|r| path_arg(r, 0).ends_with(name)).collect();
    assert_eq!(ours.len(), 1, "{recs:#?}");
    assert_eq!(ours[0].msg.action, 3, "Sigkill");
    let _ = std::fs::remove_file(&file);
}

/// A policy of uprobes on this test binary: `hooks` are `spec.uprobes` entries, where
/// `EXE` stands for the binary's path.
fn uprobe_policy(name: &str, hooks: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    format!(
        "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {{name: {name}}}\nspec:\n  uprobes:\n{}",
        hooks.replace("EXE", &exe.display().to_string())
    )
}

/// The uprobe target: a function of this test binary, called by a child copy of it.
#[no_mangle]
#[inline(never)]
pub extern "C" fn tetra_uprobe_target(a: u64, b: i32) -> u64 {
    std::hint::black_box(a.wrapping_add(b as u64))
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn uprobe_policy_reports_matching_calls() {
    if let Ok(arg) = std::env::var("TETRA_UPROBE_CALL") {
        // Child mode: call the target with the values asked for.
        for a in arg.split(',') {
            tetra_uprobe_target(a.parse().unwrap(), -5);
        }
        return;
    }
    let h = Harness::new();
    let yaml = uprobe_policy(
        "uprobe-target",
        "  - path: EXE
    symbols: [tetra_uprobe_target]
    args: [{index: 0, type: uint64}, {index: 1, type: int}]
    selectors:
    - matchArgs: [{index: 0, operator: Equal, values: [\"42\"]}]
",
    );
    let _policy = h.load(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let mut child_pid = 0;
    let recs = h.records(
        || {
            child_pid = run_child("uprobe_policy_reports_matching_calls", ("TETRA_UPROBE_CALL", "41,42,43"), false);
        },
        |r| !r.is_empty(),
    );
    assert_eq!(recs.len(), 1, "only the call with 42: {recs:#?}");
    assert_eq!(recs[0].msg.pid, child_pid);
    assert_eq!(recs[0].args[0].value, ArgValue::Int(42));
    assert_eq!(recs[0].args[1].value, ArgValue::Int(-5i64 as u64), "int is sign-extended");
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn missing_hooks_fail_the_whole_policy_with_the_hook_named() {
    let h = Harness::new();
    let yaml = "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: half}
spec:
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_openat
    args: [{index: 6, type: string}]
  - subsystem: syscalls
    event: sys_enter_no_such_call
    args: [{index: 6, type: string}]
";
    let err = h.load(yaml).err().expect("the second hook cannot attach");
    let text = err.to_string();
    assert!(text.starts_with("spec.tracepoints[1] syscalls/sys_enter_no_such_call"), "{text}");
}

/// Child mode of the change-selector test: TETRA_CHANGE_CHILD=`what:path` changes what
/// this thread has since exec ("uts": a new UTS namespace; "caps": CAP_SYS_PTRACE out of
/// the effective set; "none": nothing), then opens `path-ns` and `path-caps` twice each.
fn change_child() -> bool {
    let Ok(spec) = std::env::var("TETRA_CHANGE_CHILD") else { return false };
    let (what, path) = spec.split_once(':').unwrap();
    match what {
        // SAFETY: unshare of this thread's UTS namespace; we are root.
        "uts" => assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWUTS) }, 0, "{}", std::io::Error::last_os_error()),
        "caps" => {
            #[repr(C)]
            struct Header {
                version: u32,
                pid: i32,
            }
            #[repr(C)]
            #[derive(Clone, Copy, Default)]
            struct Data {
                effective: u32,
                permitted: u32,
                inheritable: u32,
            }
            let mut header = Header { version: 0x2008_0522, pid: 0 };
            let mut data = [Data::default(); 2];
            // SAFETY: capget/capset (version 3) with a header and two data words.
            unsafe {
                assert_eq!(libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()), 0);
                data[0].effective &= !(1 << 19); // CAP_SYS_PTRACE
                assert_eq!(libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()), 0);
            }
        }
        _ => {}
    }
    for _ in 0..2 {
        for suffix in ["ns", "caps"] {
            std::fs::File::open(format!("{path}-{suffix}")).unwrap();
        }
    }
    true
}

/// matchNamespaceChanges / matchCapabilityChanges: a process whose namespace or
/// capabilities changed since its exec matches, once (the match records the new values);
/// a process that changed nothing never does.
#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn namespace_and_capability_changes_since_exec() {
    if change_child() {
        return;
    }
    let h = Harness::new();
    let base = marker("changes");
    let base = base.to_str().unwrap();
    for suffix in ["ns", "caps"] {
        std::fs::write(format!("{base}-{suffix}"), "x").unwrap();
    }
    let yaml = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {{name: changes}}
spec:
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_openat
    args: [{{index: 6, type: string}}]
    selectors:
    - matchArgs: [{{index: 0, operator: Equal, values: [\"{base}-ns\"]}}]
      matchNamespaceChanges: [{{operator: In, values: [Uts]}}]
    - matchArgs: [{{index: 0, operator: Equal, values: [\"{base}-caps\"]}}]
      matchCapabilityChanges: [{{type: Effective, operator: In, values: [CAP_SYS_PTRACE]}}]
"
    );
    let _policy = h.load(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let test = "namespace_and_capability_changes_since_exec";
    let mut pids = Vec::new();
    let recs = h.records(
        || {
            for what in ["none", "uts", "caps"] {
                pids.push(run_child(test, ("TETRA_CHANGE_CHILD", &format!("{what}:{base}")), false));
            }
        },
        |r| r.len() >= 2,
    );
    let got: Vec<(u32, u32, String)> = recs
        .iter()
        .filter(|r| path_arg(r, 0).starts_with(base))
        .map(|r| (r.msg.pid, r.msg.selector, path_arg(r, 0)))
        .collect();
    assert_eq!(
        got,
        [(pids[1], 0, format!("{base}-ns")), (pids[2], 1, format!("{base}-caps"))],
        "none {}, uts {}, caps {}: {recs:#?}",
        pids[0],
        pids[1],
        pids[2]
    );
    for suffix in ["ns", "caps"] {
        let _ = std::fs::remove_file(format!("{base}-{suffix}"));
    }
}

/// This host's kernel refuses fentry/fexit programs: an fexit hook (`return: true` on an
/// fentry) fails to load, saying so and naming the hook.
#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn fexit_is_refused_by_this_kernel_with_the_reason() {
    let h = Harness::new();
    let yaml = "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: fexit}
spec:
  fentries:
  - call: do_unlinkat
    syscall: false
    return: true
    args: [{index: 1, type: filename}]
    returnArg: {index: 0, type: int}
";
    let text = h.load(yaml).err().expect("this kernel refuses fexit").to_string();
    assert!(text.starts_with("spec.fentries[0] do_unlinkat: loading failed"), "{text}");
    assert!(text.contains("this kernel refuses fentry/fexit programs; use kprobes"), "{text}");
}

/// The return-probe target: writes `text` into `buf` when `n` leaves room, returns the
/// bytes written (or -1), like read(2) fills a buffer.
#[no_mangle]
#[inline(never)]
pub extern "C" fn tetra_uprobe_fill(buf: *mut u8, n: u64, text: *const u8, len: u64) -> i64 {
    if len > n {
        return -1;
    }
    // SAFETY: the callers below pass a buffer of `n` bytes and a text of `len` bytes.
    unsafe { std::ptr::copy_nonoverlapping(text, buf, len as usize) };
    std::hint::black_box(len as i64)
}

/// Child mode of the tests below: calls the targets as TETRA_UPROBE_FILL asks
/// (`n:text` items) and returns true, or returns false when not a child.
fn uprobe_child() -> bool {
    let Ok(spec) = std::env::var("TETRA_UPROBE_FILL") else { return false };
    for item in spec.split(',') {
        let (n, text) = item.split_once(':').unwrap();
        let mut buf = vec![0u8; 64];
        tetra_uprobe_fill(buf.as_mut_ptr(), n.parse().unwrap(), text.as_ptr(), text.len() as u64);
    }
    true
}

/// Runs this test binary's `test` in child mode (`var`=`value` in its environment),
/// in a new pid namespace (as pid 1 there, under `unshare`) when asked; returns the
/// child's pid.
fn run_child(test: &str, (var, value): (&str, &str), new_pid_ns: bool) -> u32 {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = if new_pid_ns {
        let mut c = Command::new("unshare");
        c.args(["--pid", "--fork", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let child = cmd
        .args(["--exact", test, "--include-ignored", "--nocapture"])
        .env(var, value)
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    pid
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn uprobe_return_probe_reads_the_buffer_at_return() {
    if uprobe_child() {
        return;
    }
    let h = Harness::new();
    // Entry filter: n == 64. Return filter: a positive return value. The buffer is read
    // at return, as many bytes as returned.
    let yaml = uprobe_policy(
        "uprobe-return",
        "  - path: EXE
    symbols: [tetra_uprobe_fill]
    return: true
    args: [{index: 0, type: char_buf, returnCopy: true}, {index: 1, type: uint64}]
    returnArg: {index: 0, type: int64}
    selectors:
    - matchArgs: [{index: 1, operator: Equal, values: [\"64\"]}]
      matchReturnArgs: [{index: 0, operator: GT, values: [\"0\"]}]
",
    );
    let _policy = h.load(&yaml).unwrap_or_else(|e| panic!("{e}"));
    // 64:hello matches both; 32:entry fails matchArgs; 3:toolong returns -1 (NotEqual GT 0).
    let recs = h.records(
        || {
            let spec = "32:skipped,64:hello,3:toolong,64:world!";
            run_child("uprobe_return_probe_reads_the_buffer_at_return", ("TETRA_UPROBE_FILL", spec), false);
        },
        |r| r.len() >= 2,
    );
    assert_eq!(recs.len(), 2, "{recs:#?}");
    for (r, text) in recs.iter().zip(["hello", "world!"]) {
        assert_eq!(r.args.len(), 3, "two args and the return value: {r:#?}");
        assert_eq!(r.msg.return_action, 1, "posted by the return probe (Post)");
        assert_eq!(r.args[0].value, ArgValue::Bytes(text.as_bytes().to_vec()));
        assert_eq!(r.args[1].value, ArgValue::Int(64));
        assert_eq!(r.args[2].value, ArgValue::Int(text.len() as u64));
    }
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn match_pids_namespace_pid_and_follow_forks() {
    if uprobe_child() {
        return;
    }
    let h = Harness::new();
    let me = std::process::id();
    // Selector 0: pid 1 of its own pid namespace. Selector 1: descendants of this test
    // process (followForks), never a direct pid match for the children.
    let yaml = uprobe_policy(
        "uprobe-pids",
        &format!(
            "  - path: EXE
    symbols: [tetra_uprobe_fill]
    args: [{{index: 1, type: uint64}}]
    selectors:
    - matchPIDs: [{{operator: In, isNamespacePID: true, values: [1]}}]
      matchArgs: [{{index: 1, operator: Equal, values: [\"11\"]}}]
    - matchPIDs: [{{operator: In, followForks: true, values: [{me}]}}]
      matchArgs: [{{index: 1, operator: Equal, values: [\"22\"]}}]
    - matchPIDs: [{{operator: In, values: [{me}]}}]
      matchArgs: [{{index: 1, operator: Equal, values: [\"33\"]}}]
"
        ),
    );
    let _policy = h.load(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let test = "match_pids_namespace_pid_and_follow_forks";
    let mut pids = (0, 0);
    let recs = h.records(
        || {
            // Same calls from a plain child and from pid 1 of a new pid namespace.
            pids.0 = run_child(test, ("TETRA_UPROBE_FILL", "11:a,22:b,33:c"), false);
            pids.1 = run_child(test, ("TETRA_UPROBE_FILL", "11:a,22:b,33:c"), true);
        },
        |r| r.len() >= 3,
    );
    let got: Vec<(u32, u32, u64)> = recs
        .iter()
        .map(|r| {
            let ArgValue::Int(n) = r.args[0].value else { panic!("{r:#?}") };
            (r.msg.pid, r.msg.selector, n)
        })
        .collect();
    // The plain child: only followForks (22). The namespaced one (a grandchild, under
    // unshare): its pid 1 (11) and followForks (22). The plain pid filter (33) never
    // matches a child.
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0], (pids.0, 1, 22), "{got:?}");
    assert_eq!((got[1].1, got[1].2), (0, 11), "{got:?}");
    assert_eq!((got[2].1, got[2].2), (1, 22), "{got:?}");
    assert_eq!(got[1].0, got[2].0);
    assert_ne!(got[1].0, pids.1, "the namespaced caller is unshare's child");
}

/// The char_iovec target: like readv(2), fills the first `fill` bytes of the buffers
/// with `b'a'..` and returns `fill`.
#[no_mangle]
#[inline(never)]
pub extern "C" fn tetra_uprobe_gather(iov: *const libc::iovec, count: u64, fill: u64) -> i64 {
    let mut left = fill as usize;
    let mut c = b'a';
    for i in 0..count as usize {
        // SAFETY: the caller passes `count` iovecs over buffers it owns.
        let v = unsafe { &*iov.add(i) };
        for j in 0..v.iov_len.min(left) {
            unsafe { *(v.iov_base as *mut u8).add(j) = c };
            c += 1;
        }
        left -= v.iov_len.min(left);
    }
    std::hint::black_box(fill as i64)
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn char_iovec_at_entry_and_at_return() {
    if std::env::var("TETRA_UPROBE_GATHER").is_ok() {
        // Child mode: three buffers of 2, 3 and 4 bytes holding 'x', 7 bytes filled.
        let mut bufs = [vec![b'x'; 2], vec![b'x'; 3], vec![b'x'; 4]];
        let iov: Vec<libc::iovec> =
            bufs.iter_mut().map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() }).collect();
        tetra_uprobe_gather(iov.as_ptr(), iov.len() as u64, 7);
        return;
    }
    let h = Harness::new();
    // Hook 0 reads the buffers at entry (9 bytes of 'x'); hook 1 at return, as many bytes
    // as returned (7).
    let yaml = uprobe_policy(
        "uprobe-iovec",
        "  - path: EXE
    symbols: [tetra_uprobe_gather]
    args: [{index: 0, type: char_iovec, sizeArgIndex: 2}]
  - path: EXE
    symbols: [tetra_uprobe_gather]
    return: true
    args: [{index: 0, type: char_iovec, sizeArgIndex: 2, returnCopy: true}]
    returnArg: {index: 0, type: int64}
",
    );
    let _policy = h.load(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let recs = h.records(
        || {
            run_child("char_iovec_at_entry_and_at_return", ("TETRA_UPROBE_GATHER", "1"), false);
        },
        |r| r.len() >= 2,
    );
    assert_eq!(recs.len(), 2, "{recs:#?}");
    let entry = recs.iter().find(|r| r.msg.hook_id == 0).unwrap();
    assert_eq!(entry.args[0].value, ArgValue::Bytes(b"xxxxxxxxx".to_vec()));
    assert_eq!(entry.args[0].aux, 9, "total size");
    let ret = recs.iter().find(|r| r.msg.hook_id == 1).unwrap();
    assert_eq!(ret.args[0].value, ArgValue::Bytes(b"abcdefg".to_vec()));
    assert_eq!(ret.args[1].value, ArgValue::Int(7));
}

/// The USDT target: the `tetra_test:usdt3` probe point of this test binary, with a 32-bit,
/// a 64-bit and a string operand, called by a child copy of it.
#[inline(never)]
fn fire_usdt(a: i32, b: i64, text: &std::ffi::CStr) {
    probe::probe!(tetra_test, usdt3, a, b, text.as_ptr());
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn usdt_policy_reads_operands_and_filters_in_the_kernel() {
    if let Ok(arg) = std::env::var("TETRA_USDT_CALL") {
        // Child mode: fire the probe with each value asked for.
        for a in arg.split(',') {
            fire_usdt(a.parse().unwrap(), -(1 << 40), c"usdt-hello");
        }
        return;
    }
    let h = Harness::new();
    let exe = std::env::current_exe().unwrap().display().to_string();
    let policy = |name: &str, probe: &str| {
        format!(
            "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {{name: {name}}}\nspec:
  usdts:
  - path: {exe}
    provider: tetra_test
    name: {probe}
    args: [{{index: 0, type: int32}}, {{index: 1, type: int64}}, {{index: 2, type: string}}]
    selectors:
    - matchArgs: [{{index: 0, operator: Equal, values: [\"7\"]}}]
"
        )
    };
    let err = h.load(&policy("usdt-missing", "no_such_probe")).err().expect("no such probe");
    assert_eq!(
        err.to_string(),
        format!("spec.usdts[0] {exe} tetra_test:no_such_probe: attaching failed: {exe} has no USDT probe tetra_test:no_such_probe (its .note.stapsdt lists none by that name)")
    );
    let gone = policy("usdt-gone", "usdt3").replace(&format!("path: {exe}"), "path: /nonexistent/tetra-bin");
    assert_eq!(
        h.load(&gone).err().expect("no such binary").to_string(),
        "spec.usdts[0] /nonexistent/tetra-bin tetra_test:usdt3: attaching failed: /nonexistent/tetra-bin does not exist"
    );
    let _policy = h.load(&policy("usdt-target", "usdt3")).unwrap_or_else(|e| panic!("{e}"));
    let mut child_pid = 0;
    let recs = h.records(
        || {
            child_pid = run_child(
                "usdt_policy_reads_operands_and_filters_in_the_kernel",
                ("TETRA_USDT_CALL", "6,7,8"),
                false,
            );
        },
        |r| !r.is_empty(),
    );
    assert_eq!(recs.len(), 1, "only the probe hit with 7: {recs:#?}");
    assert_eq!(recs[0].msg.pid, child_pid);
    assert_eq!(recs[0].args[0].value, ArgValue::Int(7));
    assert_eq!(recs[0].args[1].value, ArgValue::Int(-(1i64 << 40) as u64), "int64 operand");
    assert_eq!(recs[0].args[2].value, ArgValue::Bytes(b"usdt-hello".to_vec()), "string operand");
}
