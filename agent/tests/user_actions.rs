//! GetUrl and DnsLookup actions on this host's kernel (a tracepoint hook): the real tetrad
//! fetches a URL from an HTTP listener and queries a DNS responder, both run by the test
//! on 127.0.0.1, once per matching hit; the events say which action ran, and a request
//! that fails is counted, never retried or blocking.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{kind, marker, Agent};

/// Accepts HTTP connections and records each request line and Host header.
fn http_listener() -> (u16, Arc<Mutex<Vec<(String, String)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut host = String::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                if let Some(h) = line.strip_prefix("Host: ") {
                    host = h.trim().to_string();
                }
                line.clear();
            }
            sink.lock().unwrap().push((request.trim().to_string(), host));
            let _ = (&conn).write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        }
    });
    (port, seen)
}

/// Answers DNS queries with NXDOMAIN and records each query's name and type.
fn dns_responder() -> (u16, Arc<Mutex<Vec<(String, u16)>>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let q = &buf[..n];
            let mut labels = Vec::new();
            let mut i = 12;
            while i < n && q[i] != 0 {
                let len = q[i] as usize;
                labels.push(String::from_utf8_lossy(&q[i + 1..(i + 1 + len).min(n)]).into_owned());
                i += 1 + len;
            }
            let qtype = q.get(i + 1..i + 3).map_or(0, |t| u16::from_be_bytes([t[0], t[1]]));
            sink.lock().unwrap().push((labels.join("."), qtype));
            let mut answer = q.to_vec();
            answer[2] |= 0x80; // a response
            answer[3] = (answer[3] & 0xf0) | 3; // NXDOMAIN
            let _ = sock.send_to(&answer, from);
        }
    });
    (port, seen)
}

fn wait_until(what: &str, timeout: Duration, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn get_url_and_dns_lookup_run_once_per_hit() {
    let (http_port, requests) = http_listener();
    let (dns_port, queries) = dns_responder();
    // A port nothing listens on: the GetUrl there fails (refused) and is counted.
    let closed_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let tag = marker("actions");
    let [fetch, lookup, refused, other] = ["fetch", "lookup", "refused", "other"].map(|n| {
        let p = dir.path().join(format!("{tag}-{n}"));
        std::fs::write(&p, "x").unwrap();
        p
    });
    let fqdn = format!("{}.tetra.example", tag.to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "-"));
    let policy = dir.path().join("actions.yaml");
    std::fs::write(
        &policy,
        format!(
            "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {{name: user-actions}}
spec:
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_openat
    args: [{{index: 6, type: string}}]
    selectors:
    - matchArgs: [{{index: 0, operator: Equal, values: [\"{}\"]}}]
      matchActions: [{{action: GetUrl, argUrl: \"http://127.0.0.1:{http_port}/hit/{tag}?n=1\"}}]
    - matchArgs: [{{index: 0, operator: Equal, values: [\"{}\"]}}]
      matchActions: [{{action: DnsLookup, argFqdn: \"{fqdn}\"}}]
    - matchArgs: [{{index: 0, operator: Equal, values: [\"{}\"]}}]
      matchActions: [{{action: GetUrl, argUrl: \"http://127.0.0.1:{closed_port}/\"}}]
",
            fetch.display(),
            lookup.display(),
            refused.display()
        ),
    )
    .unwrap();
    let mut agent = Agent::start(&[
        "--tracing-policy",
        policy.to_str().unwrap(),
        &format!("--dns-lookup-server=127.0.0.1:{dns_port}"),
    ]);
    agent.wait_log("tracing policy \"user-actions\" enabled: 1 hook(s) attached");
    for f in [&fetch, &other, &lookup, &refused] {
        assert!(Command::new("/bin/cat").arg(f).output().unwrap().status.success());
    }
    wait_until("the GET", Duration::from_secs(20), || !requests.lock().unwrap().is_empty());
    wait_until("the DNS query", Duration::from_secs(20), || !queries.lock().unwrap().is_empty());
    wait_until("the refused GET to be counted", Duration::from_secs(20), || agent.log_text().contains("failed: connecting to 127.0.0.1"));
    // Nothing more comes (one request per hit).
    std::thread::sleep(Duration::from_millis(500));
    let stats = agent.stop();
    assert_eq!(
        *requests.lock().unwrap(),
        [(format!("GET /hit/{tag}?n=1 HTTP/1.1"), format!("127.0.0.1:{http_port}"))]
    );
    assert_eq!(*queries.lock().unwrap(), [(fqdn.clone(), 1)], "one A query");
    assert_eq!(
        (stats["geturl_done"], stats["geturl_failed"], stats["geturl_skipped"]),
        (1, 1, 0),
        "{stats:?}"
    );
    assert_eq!((stats["dnslookup_done"], stats["dnslookup_failed"], stats["dnslookup_skipped"]), (1, 0, 0), "{stats:?}");
    assert_eq!(stats["lost"], 0, "{stats:?}");

    // One event per marker opened, each naming its action.
    let mut hits: Vec<(String, String)> = agent
        .events()
        .iter()
        .filter(|e| kind(e).0 == "process_tracepoint")
        .map(|e| {
            let tp = kind(e).1;
            (tp["args"][0]["string_arg"].as_str().unwrap().to_string(), tp["action"].as_str().unwrap_or("").to_string())
        })
        .collect();
    hits.sort();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let mut expected = vec![
        (path(&fetch), "KPROBE_ACTION_GETURL".to_string()),
        (path(&lookup), "KPROBE_ACTION_DNSLOOKUP".to_string()),
        (path(&refused), "KPROBE_ACTION_GETURL".to_string()),
    ];
    expected.sort();
    assert_eq!(hits, expected);
    let log = agent.log_text();
    assert!(log.contains(&format!("DnsLookup(\"{fqdn}\"): 127.0.0.1:{dns_port} answered rcode 3")), "{log}");
    assert!(log.contains("HTTP/1.1 204 No Content"), "{log}");
}
