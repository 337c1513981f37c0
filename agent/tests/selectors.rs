//! Selectors evaluated in the kernel, through the real tetrad and its JSON export: socket
//! operators on a sockaddr argument, matchNamespaces, matchCapabilities and Post
//! rateLimit. Each test's policy keys on a marker of its own (a file name or a port), so
//! the host's other activity never counts; a matching call must give exactly one event with
//! the expected fields, a non-matching one none.
mod common;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{kind, marker, Agent};
use serde_json::Value;

/// Starts tetrad with `yaml` as its only policy; the temporary directory holds the file.
fn agent_with(name: &str, yaml: &str) -> (Agent, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    let agent = Agent::start(&["--tracing-policy", file.to_str().unwrap()]);
    let log = agent.log_text();
    assert!(log.contains(&format!("tracing policy \"{name}\" enabled")), "{log}");
    (agent, dir)
}

/// Waits until policy `name` has `n` tracepoint events exported (then stop and count
/// them all: a late extra one fails the test).
fn wait_count(agent: &Agent, name: &str, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let count = || {
        agent.events().iter().filter(|e| kind(e).0 == "process_tracepoint" && kind(e).1["policy_name"] == name).count()
    };
    while count() < n {
        assert!(std::time::Instant::now() < deadline, "{} of {n} events of {name}:\n{}", count(), agent.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops the agent and returns its final counters and its tracepoint events of policy
/// `name` (none may be lost).
fn hits_after_stop(agent: &mut Agent, name: &str) -> (std::collections::HashMap<String, u64>, Vec<Value>) {
    let stats = agent.stop();
    assert_eq!(stats["lost"], 0, "{stats:?}");
    let hits = agent
        .events()
        .iter()
        .filter(|e| kind(e).0 == "process_tracepoint" && kind(e).1["policy_name"] == name)
        .map(|e| kind(e).1.clone())
        .collect();
    (stats, hits)
}

/// A file named by a fresh marker, under a temporary directory.
fn marker_file(dir: &Path, tag: &str) -> PathBuf {
    let f = dir.join(marker(tag));
    std::fs::write(&f, "x\n").unwrap();
    f
}

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?}: {out:?}");
    out
}

fn messages(hits: &[Value]) -> Vec<(String, String)> {
    let mut m: Vec<(String, String)> = hits
        .iter()
        .map(|h| {
            (h["message"].as_str().unwrap().to_string(), h["process"]["arguments"].as_str().unwrap().to_string())
        })
        .collect();
    m.sort();
    m
}

/// A port nobody listens on (bound then released), for the calls that must not match.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn socket_operators_on_a_sockaddr() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let other = free_port();
    // Selector 0: IPv4 to the port, except 127.0.0.2. Selector 1: ::1 on the port. Both
    // apply the operators of a sockaddr (its one address and port are the "source" ones).
    let yaml = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {{name: connect-port}}
spec:
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_connect
    message: connect
    args: [{{index: 5, type: int}}, {{index: 6, type: sockaddr}}]
    selectors:
    - matchArgs:
      - {{index: 1, operator: Family, values: [AF_INET]}}
      - {{index: 1, operator: SPort, values: [\"{port}\"]}}
      - {{index: 1, operator: NotSAddr, values: [127.0.0.2/32, \"fd00::/8\"]}}
    - matchArgs:
      - {{index: 1, operator: SAddr, values: [\"::1/128\"]}}
      - {{index: 1, operator: NotSPort, values: [\"{other}\"]}}
"
    );
    let (mut agent, _dir) = agent_with("connect-port", &yaml);
    let connect = |a: SocketAddr| {
        let _ = TcpStream::connect_timeout(&a, Duration::from_secs(2));
    };
    connect(SocketAddr::from(([127, 0, 0, 1], port))); // selector 0
    connect(SocketAddr::from(([127, 0, 0, 2], port))); // excluded address
    connect(SocketAddr::from(([127, 0, 0, 1], other))); // other port
    connect(SocketAddr::from((Ipv6Addr::LOCALHOST, port))); // selector 1
    connect(SocketAddr::from((Ipv6Addr::LOCALHOST, other))); // other port
    wait_count(&agent, "connect-port", 2);
    let (_, mut hits) = hits_after_stop(&mut agent, "connect-port");
    hits.sort_by_key(|h| h["args"][1]["sockaddr_arg"]["family"].as_str().unwrap().to_string());
    let got: Vec<&Value> = hits.iter().map(|h| &h["args"][1]["sockaddr_arg"]).collect();
    assert_eq!(
        got,
        [
            &serde_json::json!({"family": "AF_INET", "addr": "127.0.0.1", "port": port}),
            &serde_json::json!({"family": "AF_INET6", "addr": "::1", "port": port}),
        ],
        "{hits:#?}"
    );
    for h in &hits {
        assert_eq!(h["process"]["pid"], std::process::id());
        assert_eq!(h["event"], "sys_enter_connect");
    }
    drop(listener);
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn match_namespaces_against_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let file = marker_file(dir.path(), "ns");
    let name = file.file_name().unwrap().to_str().unwrap();
    // This test runs in the host's namespaces: its mount namespace is the host's.
    let mnt_inode = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self/ns/mnt").unwrap().ino()
    };
    // Two hooks on the same call: one for processes outside the host's network namespace,
    // one for processes in the host's UTS namespace and mount namespace (this one given by inode).
    let yaml = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {{name: ns-marker}}
spec:
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_openat
    message: other net
    args: [{{index: 6, type: string}}]
    selectors:
    - matchArgs: [{{index: 0, operator: Postfix, values: [\"{name}\"]}}]
      matchNamespaces: [{{namespace: Net, operator: NotIn, values: [host_ns]}}]
  - subsystem: syscalls
    event: sys_enter_openat
    message: host uts and mnt
    args: [{{index: 6, type: string}}]
    selectors:
    - matchArgs: [{{index: 0, operator: Postfix, values: [\"{name}\"]}}]
      matchNamespaces:
      - {{namespace: Uts, operator: In, values: [host_ns]}}
      - {{namespace: Mnt, operator: In, values: [\"1\", \"{mnt_inode}\"]}}
"
    );
    let (mut agent, _d) = agent_with("ns-marker", &yaml);
    let f = file.to_str().unwrap();
    run("/bin/cat", &[f]); // host uts and mnt
    run("/usr/bin/unshare", &["--net", "/bin/cat", f]); // both
    run("/usr/bin/unshare", &["--uts", "/bin/cat", f]); // neither
    run("/usr/bin/unshare", &["--mount", "/bin/cat", f]); // neither
    wait_count(&agent, "ns-marker", 3);
    let (_, hits) = hits_after_stop(&mut agent, "ns-marker");
    assert_eq!(
        messages(&hits),
        [
            ("host uts and mnt".to_string(), f.to_string()),
            ("host uts and mnt".to_string(), f.to_string()),
            ("other net".to_string(), f.to_string()),
        ],
        "{hits:#?}"
    );
    for h in &hits {
        assert_eq!(h["process"]["binary"], "/bin/cat");
    }
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn match_capabilities_of_the_current_task() {
    let dir = tempfile::tempdir().unwrap();
    let file = marker_file(dir.path(), "caps");
    let name = file.file_name().unwrap().to_str().unwrap();
    let yaml = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {{name: caps-marker}}
spec:
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_openat
    message: admin
    args: [{{index: 6, type: string}}]
    selectors:
    - matchArgs: [{{index: 0, operator: Postfix, values: [\"{name}\"]}}]
      matchCapabilities: [{{type: Effective, operator: In, values: [CAP_SYS_ADMIN, CAP_BPF]}}]
  - subsystem: syscalls
    event: sys_enter_openat
    message: no admin
    args: [{{index: 6, type: string}}]
    selectors:
    - matchArgs: [{{index: 0, operator: Postfix, values: [\"{name}\"]}}]
      matchCapabilities:
      - {{type: Permitted, operator: NotIn, values: [CAP_SYS_ADMIN]}}
      - {{type: Effective, operator: In, values: [CAP_CHOWN]}}
"
    );
    let (mut agent, _d) = agent_with("caps-marker", &yaml);
    let f = file.to_str().unwrap();
    run("/bin/cat", &[f]); // admin
    // Root exec'ing with CAP_SYS_ADMIN and CAP_BPF out of the bounding set loses them.
    run("/usr/bin/setpriv", &["--bounding-set=-sys_admin,-bpf", "/bin/cat", f]); // no admin
    // Without CAP_CHOWN either: neither hook.
    run("/usr/bin/setpriv", &["--bounding-set=-sys_admin,-bpf,-chown", "/bin/cat", f]);
    wait_count(&agent, "caps-marker", 2);
    let (_, hits) = hits_after_stop(&mut agent, "caps-marker");
    assert_eq!(
        messages(&hits),
        [("admin".to_string(), f.to_string()), ("no admin".to_string(), f.to_string())],
        "{hits:#?}"
    );
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn post_rate_limit_per_scope_and_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let a = marker_file(dir.path(), "rate-a");
    let b = marker_file(dir.path(), "rate-b");
    let yaml = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {{name: rate-marker}}
spec:
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_openat
    message: global
    args: [{{index: 6, type: string}}]
    selectors:
    - matchArgs: [{{index: 0, operator: Equal, values: [\"{a}\", \"{b}\"]}}]
      matchBinaries: [{{operator: In, values: [/bin/cat]}}]
      matchActions: [{{action: Post, rateLimit: 1m, rateLimitScope: global}}]
  - subsystem: syscalls
    event: sys_enter_openat
    message: process
    args: [{{index: 6, type: string}}]
    selectors:
    - matchArgs: [{{index: 0, operator: Equal, values: [\"{a}\", \"{b}\"]}}]
      matchBinaries: [{{operator: In, values: [/bin/dash]}}]
      matchActions: [{{action: Post, rateLimit: 1m, rateLimitScope: process}}]
",
        a = a.display(),
        b = b.display()
    );
    let (mut agent, _d) = agent_with("rate-marker", &yaml);
    let (fa, fb) = (a.to_str().unwrap(), b.to_str().unwrap());
    // global: three cats of a give one event, the cat of b (other argument) another.
    for _ in 0..3 {
        run("/bin/cat", &[fa]);
    }
    run("/bin/cat", &[fb]);
    // process: each shell opens a three times, and is one event.
    let three = format!("read x < {fa}; read x < {fa}; read x < {fa}");
    run("/bin/dash", &["-c", &three]);
    run("/bin/dash", &["-c", &three]);
    wait_count(&agent, "rate-marker", 4);
    let (stats, hits) = hits_after_stop(&mut agent, "rate-marker");
    // Suppressed in the kernel and counted: two cats of a, two opens of a per shell.
    assert_eq!(stats["rate_limited"], 6, "{stats:?}");
    let got: Vec<(String, String, String)> = {
        let mut g: Vec<_> = hits
            .iter()
            .map(|h| {
                (
                    h["message"].as_str().unwrap().to_string(),
                    h["process"]["binary"].as_str().unwrap().to_string(),
                    h["args"][0]["string_arg"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        g.sort();
        g
    };
    let e = |m: &str, bin: &str, f: &str| (m.to_string(), bin.to_string(), f.to_string());
    assert_eq!(
        got,
        [
            e("global", "/bin/cat", fa),
            e("global", "/bin/cat", fb),
            e("process", "/bin/dash", fa),
            e("process", "/bin/dash", fa),
        ],
        "{hits:#?}"
    );
}

/// A `sys_enter_openat` hook (YAML list item) posting `message` for opens of a file whose
/// name ends with `name`, by the processes `binary_filter` (one matchBinaries entry) selects.
fn openat_hook(message: &str, name: &str, binary_filter: &str) -> String {
    format!(
        "  - subsystem: syscalls
    event: sys_enter_openat
    message: {message}
    args: [{{index: 6, type: string}}]
    selectors:
    - matchArgs: [{{index: 0, operator: Postfix, values: [\"{name}\"]}}]
      matchBinaries: [{binary_filter}]
"
    )
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn match_binaries_compares_the_execve_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = marker_file(dir.path(), "bin");
    let name = file.file_name().unwrap().to_str().unwrap();
    // Busybox applets through symlinks: their executable is /bin/busybox, their execve
    // path (process.binary) the link's.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for applet in ["cat", "sh"] {
        std::os::unix::fs::symlink("/bin/busybox", bin.join(applet)).unwrap();
    }
    let (cat, sh) = (bin.join("cat"), bin.join("sh"));
    let (cat, sh, b) = (cat.to_str().unwrap(), sh.to_str().unwrap(), bin.to_str().unwrap());
    let hook = |message: &str, filter: &str| openat_hook(message, name, filter);
    let yaml = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {{name: bin-marker}}
spec:
  tracepoints:
{}{}{}{}",
        hook("applet", &format!("{{operator: In, values: [\"{cat}\"]}}")),
        hook("not cat", "{operator: NotPostfix, values: [/cat]}"),
        hook("under dir", &format!("{{operator: Prefix, values: [\"{b}/\"]}}")),
        hook("sh and children", &format!("{{operator: In, values: [\"{sh}\"], followChildren: true}}")),
    );
    let (mut agent, _d) = agent_with("bin-marker", &yaml);
    let f = file.to_str().unwrap();
    run(cat, &[f]); // applet, under dir
    run("/bin/busybox", &["cat", f]); // not cat
    run("/bin/cat", &[f]); // none
    // A forked subshell (no exec of its own) opens the file: it runs the shell's binary
    // (not cat, under dir, sh and children). Then a child exec's /bin/cat (sh and children).
    run(sh, &["-c", &format!("(read x < {f}); /bin/cat {f}; true")]);
    wait_count(&agent, "bin-marker", 7);
    let (_, hits) = hits_after_stop(&mut agent, "bin-marker");
    let mut got: Vec<(String, String)> = hits
        .iter()
        .map(|h| (h["message"].as_str().unwrap().to_string(), h["process"]["binary"].as_str().unwrap().to_string()))
        .collect();
    got.sort();
    let e = |m: &str, bin: &str| (m.to_string(), bin.to_string());
    assert_eq!(
        got,
        [
            e("applet", cat),
            e("not cat", "/bin/busybox"),
            e("not cat", sh),
            e("sh and children", "/bin/cat"),
            e("sh and children", sh),
            e("under dir", cat),
            e("under dir", sh)
        ],
        "{hits:#?}"
    );
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn match_binaries_of_a_process_older_than_the_agent() {
    // In/NotIn compare the number the kernel gives each path a policy names: a shell that
    // exec'd before the agent (its entry seeded from the process cache, unnumbered) must
    // still be recognised once the policy is loaded.
    let dir = tempfile::tempdir().unwrap();
    let file = marker_file(dir.path(), "old");
    let go = dir.path().join("go");
    let (f, g) = (file.to_str().unwrap(), go.to_str().unwrap());
    let mut shell = Command::new("/bin/dash")
        .args(["-c", &format!("while [ ! -e {g} ]; do sleep 0.05; done; read x < {f}")])
        .spawn()
        .unwrap();
    // The execve path as the kernel saw it, and where it leads (the process cache's view
    // may be either), so the filters hold whichever the seeded entry has.
    let real = std::fs::canonicalize("/bin/dash").unwrap();
    let paths = format!("[/bin/dash, \"{}\"]", real.display());
    let name = file.file_name().unwrap().to_str().unwrap();
    let hook = |message: &str, op: &str| openat_hook(message, name, &format!("{{operator: {op}, values: {paths}}}"));
    let yaml = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {{name: old-bin}}
spec:
  tracepoints:
{}{}",
        hook("in", "In"),
        hook("not in", "NotIn"),
    );
    let (mut agent, _d) = agent_with("old-bin", &yaml);
    std::fs::write(&go, "").unwrap();
    assert!(shell.wait().unwrap().success());
    run("/bin/cat", &[f]); // NotIn only
    wait_count(&agent, "old-bin", 2);
    let (_, hits) = hits_after_stop(&mut agent, "old-bin");
    let mut got: Vec<(String, u64)> = hits
        .iter()
        .map(|h| (h["message"].as_str().unwrap().to_string(), h["process"]["pid"].as_u64().unwrap()))
        .collect();
    got.sort();
    assert_eq!(got, [("in".to_string(), u64::from(shell.id())), ("not in".to_string(), got[1].1)], "{hits:#?}");
    assert_ne!(got[1].1, u64::from(shell.id()), "the cat, not the shell: {hits:#?}");
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn skb_argument_of_a_raw_tracepoint() {
    use std::net::UdpSocket;
    let port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let p = port.local_addr().unwrap().port();
    let other = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
    let yaml = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {{name: skb-port}}
spec:
  tracepoints:
  - subsystem: net
    event: net_dev_queue
    raw: true
    message: udp out
    args: [{{index: 0, type: skb}}]
    selectors:
    - matchArgs:
      - {{index: 0, operator: DPort, values: [\"{p}\"]}}
      - {{index: 0, operator: DAddr, values: [127.0.0.1/32]}}
      - {{index: 0, operator: Protocol, values: [IPPROTO_UDP]}}
      - {{index: 0, operator: NotSportPriv}}
"
    );
    let (mut agent, _d) = agent_with("skb-port", &yaml);
    let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let sport = sender.local_addr().unwrap().port();
    sender.send_to(b"tetra", (Ipv4Addr::LOCALHOST, p)).unwrap(); // the one match
    sender.send_to(b"tetra", (Ipv4Addr::LOCALHOST, other)).unwrap(); // other port
    let v6 = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0));
    if let Ok(v6) = v6 {
        let _ = v6.send_to(b"tetra", (Ipv6Addr::LOCALHOST, p)); // other address family
    }
    wait_count(&agent, "skb-port", 1);
    let (_, hits) = hits_after_stop(&mut agent, "skb-port");
    assert_eq!(hits.len(), 1, "{hits:#?}");
    let skb = &hits[0]["args"][0]["skb_arg"];
    // On lo the packet has its Ethernet header: 14 + 20 (IP) + 8 (UDP) + 5 bytes.
    let mut want = serde_json::json!({"family": "AF_INET", "saddr": "127.0.0.1", "daddr": "127.0.0.1",
        "sport": sport, "dport": p, "proto": 17, "protocol": "IPPROTO_UDP", "len": 47});
    if let Some(hash) = skb.get("hash") {
        want["hash"] = hash.clone();
    }
    assert_eq!(skb, &want);
    assert_eq!(hits[0]["event"], "net_dev_queue");
    assert_eq!(hits[0]["process"]["pid"], std::process::id());
}

/// A net_device argument (its name, matched with Equal) after a nop argument, which is not
/// read and not shown, on the BTF tracepoint of every transmit.
#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn net_device_and_nop_arguments_of_a_raw_tracepoint() {
    use std::net::UdpSocket;
    let yaml = "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: netdev-lo}
spec:
  tracepoints:
  - subsystem: net
    event: net_dev_start_xmit
    raw: true
    args: [{index: 0, type: nop}, {index: 1, type: net_device}]
    selectors:
    - matchArgs: [{index: 1, operator: Equal, values: [lo]}]
      matchPIDs: [{operator: In, values: [@TEST_PID@]}]
"
    .replace("@TEST_PID@", &std::process::id().to_string());
    let (mut agent, _d) = agent_with("netdev-lo", &yaml);
    let rx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    tx.send_to(b"tetra", rx.local_addr().unwrap()).unwrap();
    wait_count(&agent, "netdev-lo", 1);
    let (_, hits) = hits_after_stop(&mut agent, "netdev-lo");
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(hits[0]["args"], serde_json::json!([{"net_dev_arg": {"name": "lo"}}]));
    assert_eq!(hits[0]["event"], "net_dev_start_xmit");
}

/// matchCapabilities with isNamespaceCapability holds only outside the host's user
/// namespace: root's head here has CAP_CHOWN too but is not reported; cat as root of a new
/// user namespace is.
#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn namespace_capability_only_outside_the_host_user_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let file = marker_file(dir.path(), "nscap");
    let name = file.file_name().unwrap().to_str().unwrap();
    let yaml = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {{name: ns-cap}}
spec:
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_openat
    args: [{{index: 6, type: string}}]
    selectors:
    - matchArgs: [{{index: 0, operator: Postfix, values: [\"{name}\"]}}]
      matchCapabilities:
      - {{type: Effective, operator: In, isNamespaceCapability: true, values: [CAP_CHOWN]}}
"
    );
    let (mut agent, _d) = agent_with("ns-cap", &yaml);
    let path = file.to_str().unwrap();
    run("/usr/bin/head", &[path]);
    run("/usr/bin/unshare", &["--user", "--map-root-user", "/bin/cat", path]);
    wait_count(&agent, "ns-cap", 1);
    let (_, hits) = hits_after_stop(&mut agent, "ns-cap");
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(hits[0]["args"], serde_json::json!([{"string_arg": path}]));
    assert_eq!(hits[0]["process"]["binary"], "/bin/cat");
}
