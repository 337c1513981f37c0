//! Seed 002 end to end on Debian's kernel (`TETRA_VM_KERNEL`) (tier 3): the agent runs in the guest with
//! exactly the user's two policies (tests/fixtures/seed002: `sys-read-follow-prefix`,
//! fd_install FollowFD + sys_read returnCopy + sys_write + sys_close UnfollowFD, and
//! `connect`, tcp_connect/tcp_sendmsg/tcp_close), and `seed002_workload` opens, reads,
//! writes and closes files under /etc and elsewhere, then talks TCP over 127.0.0.1.
//!
//! The exported events of the worker process are checked in JSON (Tetragon's field names)
//! and through the real `tetra getevents -o compact` run in the guest, line by line, in
//! the seed's form: `📚 read ... /etc/... 4096 bytes`, `📪 close ...`,
//! `📤 sendmsg ... tcp 127.0.0.1:P -> 127.0.0.1:Q bytes N`.
use std::time::Duration;

use serde_json::Value;
use tetra_tests::require_vm;
use tetra_tests::vm::{cargo_build_binary, Vm};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/seed002");

const SCRIPT: &str = r#"
mkdir -p /etc/tetra-seed
# 5000 bytes: reads of 4096 return 4096, 904, then 0.
head -c 5000 /dev/zero | tr '\0' 'p' > /etc/tetra-seed/passwd
/bin/tetrad --export-filename /tmp/events.json --enable-process-cred=false \
    --enable-process-ns=false --tracing-policy /policies/sys-read-follow-prefix.yaml \
    --tracing-policy /policies/connect.yaml > /tmp/tetrad.log 2>&1 &
agent=$!
tetra_wait 120 grep -q "tetrad ready" /tmp/tetrad.log
/bin/seed002_workload > /tmp/workload.out 2>&1; echo "rc=$?" >> /tmp/workload.out
sleep 2
kill -INT $agent
wait $agent
for who in worker nsinit; do
    pid=$(sed -n "s/^$who=//p" /tmp/workload.out)
    grep "\"pid\":$pid," /tmp/events.json > /tmp/$who.json
    /bin/tetra getevents -o compact --color never < /tmp/$who.json > /tmp/$who.compact 2>&1
done
tetra_section agentlog cat /tmp/tetrad.log
tetra_section workload cat /tmp/workload.out
tetra_section worker cat /tmp/worker.json
tetra_section workercompact cat /tmp/worker.compact
tetra_section nsinit cat /tmp/nsinit.json
tetra_section nsinitcompact cat /tmp/nsinit.compact
"#;

#[test]
fn seed002_file_and_tcp_policies_on_debian_kernel() {
    require_vm!();
    let tetrad = cargo_build_binary("tetra-agent", "tetrad").expect("build tetrad");
    let tetra = cargo_build_binary("tetra-cli", "tetra").expect("build tetra");
    let workload = cargo_build_binary("tetra-tests", "seed002_workload").expect("build the workload");
    let out = Vm::new()
        .binary(&tetrad, "/bin/tetrad")
        .binary(&tetra, "/bin/tetra")
        .binary(&workload, "/bin/seed002_workload")
        .dir(FIXTURES, "/policies")
        .memory_mb(1536)
        .script(SCRIPT)
        .timeout(Duration::from_secs(420))
        .run()
        .unwrap_or_else(|e| panic!("VM run failed: {e}"));
    out.ensure_success().unwrap_or_else(|e| panic!("{e}"));
    let section = |name: &str| out.require_section(name).unwrap();
    let log = section("agentlog");
    for (name, hooks) in [("sys-read-follow-prefix", 4), ("connect", 3)] {
        assert!(log.contains(&format!("tracing policy \"{name}\" enabled: {hooks} hook(s) attached")), "{name} not loaded; agent log:\n{log}");
    }
    assert!(log.contains("lost=0"), "agent log:\n{log}");
    let value = |key: &str| -> u32 {
        out.section_value("workload", key).unwrap_or_else(|e| panic!("{e}")).try_into().unwrap()
    };
    assert_eq!(value("rc"), 0, "{}", section("workload"));
    let (worker, nsinit, listen, connect) = (value("worker"), value("nsinit"), value("listen"), value("connect"));

    // The worker's events in JSON: the grep in the guest kept exactly its own.
    let events = out.json_section("worker").unwrap_or_else(|e| panic!("{e}"));
    let bodies: Vec<(&str, &Value)> = events
        .iter()
        .map(|e| {
            let (kind, body) = e.as_object().unwrap().iter().find(|(k, _)| k.starts_with("process_")).unwrap();
            assert_eq!(body["process"]["pid"], worker, "{e:#}");
            (kind.as_str(), body)
        })
        .collect();
    let node = events[0]["node_name"].as_str().unwrap().to_string();
    let kprobes: Vec<&Value> = bodies.iter().filter(|(k, _)| *k == "process_kprobe").map(|(_, b)| *b).collect();
    let calls: Vec<&str> = kprobes.iter().map(|b| b["function_name"].as_str().unwrap()).collect();
    assert_eq!(
        calls,
        [
            "fd_install", "__x64_sys_read", "__x64_sys_read", "__x64_sys_read", "__x64_sys_close",
            "__x64_sys_close", "__x64_sys_close", "fd_install", "__x64_sys_write", "__x64_sys_close",
            "tcp_connect", "tcp_sendmsg", "__x64_sys_close", "tcp_close", "__x64_sys_close",
            "tcp_close", "__x64_sys_close", "tcp_close",
        ],
        "{kprobes:#?}"
    );
    // fd_install of the /etc file, as Tetragon records it (fd int, file path).
    assert_eq!(kprobes[0]["policy_name"], "sys-read-follow-prefix");
    assert_eq!(kprobes[0]["args"][1]["file_arg"]["path"], "/etc/tetra-seed/passwd");
    assert!(kprobes[0]["args"][0]["int_arg"].is_number(), "{:#}", kprobes[0]);
    assert!(kprobes[0].get("return_action").is_none(), "an entry probe's event: {:#}", kprobes[0]);
    // sys_read: the followed path, the bytes read at return (as many as returned, the
    // first 1024 kept with the full size in orig_size), the size asked for.
    for (read, got) in kprobes[1..4].iter().zip([4096usize, 904, 0]) {
        assert_eq!(read["args"][0]["file_arg"]["path"], "/etc/tetra-seed/passwd", "{read:#}");
        assert_eq!(read["args"][2]["size_arg"], "4096", "{read:#}");
        // Posted by the return probe, as Tetragon marks it; no returnArg, no `return`.
        assert_eq!(read["return_action"], "KPROBE_ACTION_POST", "{read:#}");
        assert!(read.get("return").is_none(), "{read:#}");
        let buf = &read["args"][1];
        let bytes = if got > 1024 {
            assert_eq!(buf["truncated_bytes_arg"]["orig_size"], got.to_string(), "{read:#}");
            buf["truncated_bytes_arg"]["bytes_arg"].as_str().unwrap()
        } else {
            buf["bytes_arg"].as_str().unwrap_or_default()
        };
        assert_eq!(base64(bytes), vec![b'p'; got.min(1024)], "the file's bytes: {read:#}");
    }
    assert_eq!(kprobes[8]["args"][0]["file_arg"]["path"], "/etc/tetra-seed/out");
    assert_eq!(base64(kprobes[8]["args"][1]["bytes_arg"].as_str().unwrap()), b"hello /etc\n");
    assert_eq!(kprobes[8]["args"][2]["size_arg"], "11");
    let sock = |b: &Value| {
        let s = &b["args"][0]["sock_arg"];
        (s["saddr"].as_str().unwrap_or("").to_string(), s["sport"].as_u64().unwrap_or(0), s["daddr"].as_str().unwrap_or("").to_string(), s["dport"].as_u64().unwrap_or(0))
    };
    let lo = "127.0.0.1".to_string();
    let client = (lo.clone(), u64::from(connect), lo.clone(), u64::from(listen));
    assert_eq!(sock(kprobes[10]), client);
    assert_eq!(kprobes[10]["args"][0]["sock_arg"]["protocol"], "IPPROTO_TCP");
    assert_eq!(sock(kprobes[11]), client);
    assert_eq!(kprobes[11]["args"][1]["int_arg"], 1234);
    // Closes: the client, the accepted socket, the listener.
    assert_eq!(sock(kprobes[13]), client);
    assert_eq!(sock(kprobes[15]), (lo.clone(), u64::from(listen), lo.clone(), u64::from(connect)));
    assert_eq!(sock(kprobes[17]), (lo.clone(), u64::from(listen), "0.0.0.0".to_string(), 0));
    assert!(bodies.iter().all(|(k, _)| *k == "process_kprobe" || *k == "process_exit"), "{bodies:#?}");
    // Nothing about the file outside /etc (its open, write, read).
    assert!(!section("worker").contains("tetra-seed-outside"));

    // The same through `tetra getevents -o compact`, as the seed shows it.
    let bin = "/bin/seed002_workload";
    let file = |w: &str, rest: &str| format!("{w} {node} {bin} {rest}");
    let tcp_line = |w: &str, a: (String, u64, String, u64), tail: &str| {
        format!("{w} {node} {bin} tcp {}:{} -> {}:{}{tail}", a.0, a.1, a.2, a.3)
    };
    let close = format!("📪 close {node} {bin}");
    let expected = vec![
        file("📬 open", "/etc/tetra-seed/passwd"),
        file("📚 read", "/etc/tetra-seed/passwd 4096 bytes"),
        file("📚 read", "/etc/tetra-seed/passwd 4096 bytes"),
        file("📚 read", "/etc/tetra-seed/passwd 4096 bytes"),
        close.clone(),
        close.clone(),
        close.clone(),
        file("📬 open", "/etc/tetra-seed/out"),
        file("📝 write", "/etc/tetra-seed/out 11 bytes"),
        close.clone(),
        tcp_line("🔌 connect", client.clone(), ""),
        tcp_line("📤 sendmsg", client.clone(), " bytes 1234"),
        close.clone(),
        tcp_line("🧹 close", client.clone(), ""),
        close.clone(),
        tcp_line("🧹 close", (lo.clone(), u64::from(listen), lo.clone(), u64::from(connect)), ""),
        close.clone(),
        tcp_line("🧹 close", (lo.clone(), u64::from(listen), "0.0.0.0".into(), 0), ""),
        format!("💥 exit {node} {bin} 0"),
    ];
    let compact = out.compact_section("workercompact").unwrap();
    assert_eq!(compact, expected);

    // Pid 1 of a new pid namespace did the same file work, but the seed's matchPIDs
    // (NotIn 1, isNamespacePID) hides its opens. Its fds are then not followed, so its
    // reads and writes are not reported either; sys_close has no selector and reports
    // every close.
    let compact = out.compact_section("nsinitcompact").unwrap();
    let mut expected = vec![format!("📪 close {node} {bin}"); 4];
    expected.push(format!("💥 exit {node} {bin} 0"));
    assert_eq!(compact, expected, "nsinit worker {nsinit}");
}

/// Decodes protojson's base64 (standard alphabet, padded).
fn base64(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().take_while(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).unwrap_or_else(|| panic!("not base64: {s}"));
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
