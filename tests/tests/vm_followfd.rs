//! Seed 002's file policy (FollowFD) on programs we did not write, on Debian's kernel (`TETRA_VM_KERNEL`)
//! (tier 3): the seed's `sys-read-follow-prefix` with its matchPIDs removed, as a new user
//! runs it, and `other-read-calls`, the same FollowFD on the read calls the seed has no
//! hook for (tests/fixtures/followfd). One VM run, each program reading the 5000-byte
//! /etc/tetra-ffd/passwd:
//!
//! - busybox `head`: read(2) on the fd it opened: open, three reads, close reported;
//! - coreutils `cat` (dynamically linked, with its libraries): read(2) into a pipe, and
//!   copy_file_range(2) into a regular file, which only `other-read-calls` sees;
//! - busybox `cat`: sendfile(2), which only `other-read-calls` sees;
//! - busybox `dd`: opens the file, dup2()s it to fd 0 and reads fd 0, an fd never
//!   installed under that number: no read is reported (as Tetragon: dup2 does not go
//!   through fd_install, and the policy has no CopyFD on dup2);
//! - busybox `head < file`: the fd was opened by the shell's child before exec, moved to
//!   0; reads of it are not reported;
//! - `seed002_workload pread|readv`: pread64(2) and readv(2), which no program of the VM
//!   uses on a file, seen by `other-read-calls` only;
//! - busybox `head` of /tmp/outside/passwd: nothing but its closes.
//!
//! Every close of every process is reported by the seed's sys_close hook: its selector
//! has no filter, so it matches every call and posts, as Tetragon's does (the seed's own
//! compact output has more `📪 close` lines than `📬 open` lines).
//!
//! Busybox's shell runs `cat` and `sh` by exec'ing /proc/self/exe: process.binary is
//! then "/proc/self/exe", the path given to execve, as Tetragon reports it, and
//! matchBinaries sees that same path (`other-read-calls` only posts sendfile for it).
//! `head` and `dd` run in the forked shell without an exec, as /bin/busybox.
//!
//! Events are checked in JSON and through `tetra getevents -o compact` run in the guest.
use std::time::Duration;

use serde_json::Value;
use tetra_tests::require_vm;
use tetra_tests::vm::{cargo_build_binary, Vm, VmOutput};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/followfd");
const FILE: &str = "/etc/tetra-ffd/passwd";
/// The programs run, in order, each under its own pid (the script's `run` names).
const PROGRAMS: [&str; 9] = ["bbhead", "bbcat", "bbdd", "cucat", "cucopy", "pread", "readv", "outside", "stdin"];

const SCRIPT: &str = r#"
mkdir -p /etc/tetra-ffd /tmp/outside
head -c 5000 /dev/zero | tr '\0' 'p' > /etc/tetra-ffd/passwd
cp /etc/tetra-ffd/passwd /tmp/outside/passwd
/bin/tetrad --export-filename /tmp/events.json --enable-process-cred=false \
    --enable-process-ns=false --tracing-policy /policies/sys-read-follow-prefix.yaml \
    --tracing-policy /policies/other-read-calls.yaml > /tmp/tetrad.log 2>&1 &
agent=$!
tetra_wait 120 grep -q "tetrad ready" /tmp/tetrad.log
F=/etc/tetra-ffd/passwd
# name, where its stdout goes, then the command: its pid and exit code go to /tmp/pids.
run() {
    name=$1; out=$2; shift 2
    "$@" > $out 2>/tmp/$name.err &
    pid=$!
    wait $pid
    rc=$?
    echo "$name=$pid" >> /tmp/pids
    echo "${name}_rc=$rc" >> /tmp/pids
}
run bbhead /tmp/bbhead.out head -n 1 $F
run bbcat /tmp/bbcat.out cat $F
run bbdd /tmp/bbdd.out dd if=$F of=/dev/null bs=4096
run cucat /dev/null /usr/bin/cat $F
run cucopy /tmp/cucopy.out /usr/bin/cat $F
run pread /tmp/pread.out /bin/seed002_workload pread $F
run readv /tmp/readv.out /bin/seed002_workload readv $F
run outside /tmp/outside.out head -n 1 /tmp/outside/passwd
run stdin /tmp/stdin.out sh -c "exec head -n 1 < $F"
sleep 2
kill -INT $agent
wait $agent
for name in PROGRAMS; do
    pid=$(sed -n "s/^$name=//p" /tmp/pids)
    grep "\"pid\":$pid," /tmp/events.json > /tmp/$name.json
    /bin/tetra getevents -o compact --color never < /tmp/$name.json > /tmp/$name.compact 2>&1
    tetra_section $name cat /tmp/$name.json
    tetra_section ${name}compact cat /tmp/$name.compact
done
tetra_section agentlog cat /tmp/tetrad.log
tetra_section pids cat /tmp/pids
tetra_section errors cat /tmp/*.err
tetra_section preadout cat /tmp/pread.out
tetra_section readvout cat /tmp/readv.out
tetra_section kprobes grep process_kprobe /tmp/events.json
"#;

/// The kprobe events of program `name`: (policy, function, binary, args).
fn kprobes(out: &VmOutput, name: &str) -> Vec<(String, String, String, Value)> {
    out.json_section(name)
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .filter_map(|e| e.get("process_kprobe"))
        .map(|k| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (s(&k["policy_name"]), s(&k["function_name"]), s(&k["process"]["binary"]), k["args"].clone())
        })
        .collect()
}

/// How many bytes a (padded) base64 text decodes to.
fn decoded_len(b64: &str) -> usize {
    b64.len() / 4 * 3 - b64.bytes().rev().take_while(|c| *c == b'=').count()
}

/// The bytes a sys_read event copied at return, and the size the call returned.
fn read_bytes(args: &Value) -> (usize, usize) {
    let buf = &args[1];
    if let Some(t) = buf.get("truncated_bytes_arg") {
        (decoded_len(t["bytes_arg"].as_str().unwrap()), t["orig_size"].as_str().unwrap().parse().unwrap())
    } else {
        let n = decoded_len(buf["bytes_arg"].as_str().unwrap_or_default());
        (n, n)
    }
}

#[test]
fn followfd_on_busybox_and_coreutils_programs() {
    require_vm!();
    let tetrad = cargo_build_binary("tetra-agent", "tetrad").expect("build tetrad");
    let tetra = cargo_build_binary("tetra-cli", "tetra").expect("build tetra");
    let workload = cargo_build_binary("tetra-tests", "seed002_workload").expect("build the workload");
    let out = Vm::new()
        .binary(&tetrad, "/bin/tetrad")
        .binary(&tetra, "/bin/tetra")
        .binary(&workload, "/bin/seed002_workload")
        // A dynamically linked program of the host, with its libraries and loader.
        .binary("/usr/bin/cat", "/usr/bin/cat")
        .dir(FIXTURES, "/policies")
        .memory_mb(1536)
        .script(&SCRIPT.replace("PROGRAMS", &PROGRAMS.join(" ")))
        .timeout(Duration::from_secs(600))
        .run()
        .unwrap_or_else(|e| panic!("VM run failed: {e}"));
    out.ensure_success().unwrap_or_else(|e| panic!("{e}"));
    let section = |name: &str| out.require_section(name).unwrap();
    let log = section("agentlog");
    for (name, hooks) in [("sys-read-follow-prefix", 4), ("other-read-calls", 6)] {
        assert!(log.contains(&format!("tracing policy \"{name}\" enabled: {hooks} hook(s) attached")), "{name} not loaded; agent log:\n{log}");
    }
    assert!(log.contains("lost=0"), "agent log:\n{log}");
    for name in PROGRAMS {
        assert_eq!(out.section_value("pids", &format!("{name}_rc")).unwrap(), 0, "{name}: {}", section("errors"));
    }
    assert_eq!(section("preadout").trim(), "pread=100");
    assert_eq!(section("readvout").trim(), "readv=128");
    let node = "tetra-vm";
    let compact = |name: &str| out.compact_section(&format!("{name}compact")).unwrap();
    let lines = |bin: &str, spec: &[(&str, usize)]| -> Vec<String> {
        spec.iter()
            .flat_map(|(what, n)| std::iter::repeat_n(what.replace("NODE", node).replace("BIN", bin), *n))
            .collect()
    };
    let file_path = |a: &Value, i: usize| a[i]["file_arg"]["path"].as_str().unwrap_or_default().to_string();

    // busybox head: read(2) of the fd it opened, 4096 + 904 + 0 bytes.
    let k = kprobes(&out, "bbhead");
    let calls: Vec<&str> = k.iter().map(|e| e.1.as_str()).collect();
    let mut want = vec!["__x64_sys_close"; 6];
    want.extend(["fd_install", "__x64_sys_read", "__x64_sys_read", "__x64_sys_read", "__x64_sys_close"]);
    assert_eq!(calls, want, "{k:#?}");
    assert!(k.iter().all(|e| e.0 == "sys-read-follow-prefix" && e.2 == "/bin/busybox"), "{k:#?}");
    assert_eq!(k[6].3[0]["int_arg"], 3);
    assert_eq!(file_path(&k[6].3, 1), FILE);
    for (read, got) in k[7..10].iter().zip([4096usize, 904, 0]) {
        assert_eq!(file_path(&read.3, 0), FILE);
        assert_eq!(read.3[2]["size_arg"], "4096");
        assert_eq!(read_bytes(&read.3), (got.min(1024), got), "{read:#?}");
    }
    assert_eq!(k[10].3[0]["int_arg"], 3);
    let mut want = lines("/bin/busybox", &[("📪 close NODE BIN", 6), ("📬 open NODE BIN /etc/tetra-ffd/passwd", 1)]);
    want.extend(lines("/bin/busybox", &[("📚 read NODE BIN /etc/tetra-ffd/passwd 4096 bytes", 3), ("📪 close NODE BIN", 1)]));
    want.push(format!("💥 exit {node} /bin/busybox /tetra/script.sh 0"));
    assert_eq!(compact("bbhead"), want);

    // busybox cat: sendfile(2), which the seed's policy has no hook for; exec'd as
    // /proc/self/exe, which is what process.binary says and matchBinaries sees.
    let k = kprobes(&out, "bbcat");
    let own: Vec<(&str, &str)> = k[4..].iter().map(|e| (e.0.as_str(), e.1.as_str())).collect();
    assert_eq!(
        own,
        [
            ("sys-read-follow-prefix", "fd_install"),
            ("other-read-calls", "__x64_sys_sendfile64"),
            ("other-read-calls", "__x64_sys_sendfile64"),
            ("sys-read-follow-prefix", "__x64_sys_close"),
        ],
        "{k:#?}"
    );
    assert!(k[4..].iter().all(|e| e.2 == "/proc/self/exe"), "{k:#?}");
    for sendfile in &k[5..7] {
        assert_eq!(sendfile.3[0]["int_arg"], 1, "{sendfile:#?}");
        assert_eq!(file_path(&sendfile.3, 1), FILE);
    }
    let bin = "/proc/self/exe";
    let mut want = lines("/bin/busybox", &[("📪 close NODE BIN", 4)]);
    want.push(format!("🚀 process {node} {bin} {FILE}"));
    want.extend(lines(bin, &[("📬 open NODE BIN /etc/tetra-ffd/passwd", 1), ("❓ syscall NODE BIN __x64_sys_sendfile64", 2), ("📪 close NODE BIN", 1)]));
    want.push(format!("💥 exit {node} {bin} {FILE} 0"));
    assert_eq!(compact("bbcat"), want);

    // busybox dd: opens fd 3, dup2()s it to 0, closes 3 (unfollowed), reads fd 0: an fd
    // never installed by fd_install under that number, so no read is reported.
    let k = kprobes(&out, "bbdd");
    let calls: Vec<&str> = k.iter().map(|e| e.1.as_str()).collect();
    let mut want = vec!["__x64_sys_close"; 6];
    want.push("fd_install");
    want.extend(["__x64_sys_close"; 4]);
    assert_eq!(calls, want, "{k:#?}");
    let closed: Vec<&Value> = k[7..].iter().map(|e| &e.3[0]["int_arg"]).collect();
    assert_eq!(closed, [3, 3, 0, 1], "the opened fd, /dev/null's, then stdin and stdout at exit");
    let mut want = lines("/bin/busybox", &[("📪 close NODE BIN", 6), ("📬 open NODE BIN /etc/tetra-ffd/passwd", 1), ("📪 close NODE BIN", 4)]);
    want.push(format!("💥 exit {node} /bin/busybox /tetra/script.sh 0"));
    assert_eq!(compact("bbdd"), want);

    // coreutils cat (dynamically linked): read(2) of 131072 bytes, into /dev/null; into a
    // regular file it tries copy_file_range(2) first (only `other-read-calls` sees it;
    // across filesystems the kernel refuses it and cat falls back to read(2)).
    for (name, copy) in [("cucat", false), ("cucopy", true)] {
        let k = kprobes(&out, name);
        let own: Vec<&str> = k[4..].iter().map(|e| e.1.as_str()).collect();
        let mut want = vec!["__x64_sys_close", "fd_install"];
        if copy {
            want.push("__x64_sys_copy_file_range");
        }
        want.extend(["__x64_sys_read", "__x64_sys_read", "__x64_sys_close", "__x64_sys_close", "__x64_sys_close"]);
        assert_eq!(own, want, "{name}: {k:#?}");
        assert!(k[4..].iter().all(|e| e.2 == "/usr/bin/cat"), "{k:#?}");
        let reads: Vec<&(String, String, String, Value)> = k.iter().filter(|e| e.1 == "__x64_sys_read").collect();
        for (read, got) in reads.iter().zip([5000usize, 0]) {
            assert_eq!(file_path(&read.3, 0), FILE);
            assert_eq!(read.3[2]["size_arg"], "131072");
            assert_eq!(read_bytes(&read.3), (got.min(1024), got), "{read:#?}");
        }
        if copy {
            let c = &k[6].3;
            assert_eq!((file_path(c, 0), &c[1]["int_arg"]), (FILE.to_string(), &Value::from(1)), "{c:#}");
        }
        let bin = "/usr/bin/cat";
        let mut want = lines("/bin/busybox", &[("📪 close NODE BIN", 4)]);
        want.push(format!("🚀 process {node} {bin} {FILE}"));
        want.extend(lines(bin, &[("📪 close NODE BIN", 1), ("📬 open NODE BIN /etc/tetra-ffd/passwd", 1)]));
        if copy {
            want.push(format!("❓ syscall {node} {bin} __x64_sys_copy_file_range"));
        }
        want.extend(lines(bin, &[("📚 read NODE BIN /etc/tetra-ffd/passwd 131072 bytes", 2), ("📪 close NODE BIN", 3)]));
        want.push(format!("💥 exit {node} {bin} {FILE} 0"));
        assert_eq!(compact(name), want, "{name}");
    }

    // pread64 and readv: only `other-read-calls` sees them, with the followed path.
    for (name, call) in [("pread", "__x64_sys_pread64"), ("readv", "__x64_sys_readv")] {
        let k = kprobes(&out, name);
        let own: Vec<&str> = k[4..].iter().map(|e| e.1.as_str()).collect();
        assert_eq!(own, ["__x64_sys_close", "__x64_sys_close", "__x64_sys_close", "fd_install", call, "__x64_sys_close"], "{k:#?}");
        let a = &k[8].3;
        assert_eq!(file_path(a, 0), FILE);
        if name == "pread" {
            assert_eq!((&a[1]["size_arg"], &a[2]["long_arg"]), (&Value::from("100"), &Value::from("10")), "{a:#}");
        } else {
            assert_eq!(a[1]["int_arg"], 2, "two iovecs: {a:#}");
        }
        let bin = "/bin/seed002_workload";
        let mut want = lines("/bin/busybox", &[("📪 close NODE BIN", 4)]);
        want.push(format!("🚀 process {node} {bin} \"{name} {FILE}\""));
        want.extend(lines(bin, &[("📪 close NODE BIN", 3), ("📬 open NODE BIN /etc/tetra-ffd/passwd", 1)]));
        want.push(format!("❓ syscall {node} {bin} {call}"));
        want.push(format!("📪 close {node} {bin}"));
        want.push(format!("💥 exit {node} {bin} \"{name} {FILE}\" 0"));
        assert_eq!(compact(name), want, "{name}");
    }

    // A file outside /etc: nothing followed, so only closes.
    assert!(kprobes(&out, "outside").iter().all(|e| e.1 == "__x64_sys_close"));
    let mut want = lines("/bin/busybox", &[("📪 close NODE BIN", 7)]);
    want.push(format!("💥 exit {node} /bin/busybox /tetra/script.sh 0"));
    assert_eq!(compact("outside"), want);

    // `head < file`: the shell's redirection opened the file as fd 3 and moved it to 0;
    // head's reads of fd 0 are not reported.
    let k = kprobes(&out, "stdin");
    let own: Vec<&str> = k[4..].iter().map(|e| e.1.as_str()).collect();
    assert_eq!(own, ["fd_install", "__x64_sys_close", "__x64_sys_close"], "{k:#?}");
    let bin = "/proc/self/exe";
    let cmd = format!("\"-c \\\"exec head -n 1 < {FILE}\\\"\"");
    let mut want = lines("/bin/busybox", &[("📪 close NODE BIN", 4)]);
    want.push(format!("🚀 process {node} {bin} {cmd}"));
    want.extend(lines(bin, &[("📬 open NODE BIN /etc/tetra-ffd/passwd", 1), ("📪 close NODE BIN", 2)]));
    want.push(format!("💥 exit {node} {bin} {cmd} 0"));
    assert_eq!(compact("stdin"), want);

    // Across the whole export (every process of the VM): reads and writes are reported for
    // followed /etc fds only, and nothing names the file outside /etc.
    let all = section("kprobes");
    assert!(!all.contains("/tmp/outside"), "{all}");
    for line in all.lines().filter(|l| !l.trim().is_empty()) {
        let e: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let k = &e["process_kprobe"];
        let f = k["function_name"].as_str().unwrap();
        if f != "__x64_sys_close" {
            let path = k["args"].as_array().unwrap().iter().find_map(|a| a["file_arg"]["path"].as_str());
            assert_eq!(path, Some(FILE), "{line}");
        }
    }
}
