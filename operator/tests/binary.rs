//! The `tetra-operator` binary end to end against a small fake API server over plain HTTP
//! on localhost (a kubeconfig points at it): CRDs applied and Established, /readyz turns
//! ready, metrics show the install and the leadership, SIGTERM releases the Lease.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";

#[derive(Default)]
struct Cluster {
    crds: BTreeMap<String, Value>,
    lease: Option<Value>,
    version: u64,
    /// "METHOD path?query" of every request, in order.
    log: Vec<String>,
}

fn status(code: u16, reason: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": reason}),
    )
}

/// The API server's answer to one request.
fn answer(c: &mut Cluster, method: &str, path: &str, body: Value) -> (u16, Value) {
    c.version += 1;
    let rv = c.version.to_string();
    if let Some(name) = path.strip_prefix(CRDS) {
        return match method {
            "GET" => c
                .crds
                .get(name)
                .map_or_else(|| status(404, "NotFound"), |v| (200, v.clone())),
            "PATCH" => {
                let mut crd = body;
                crd["metadata"]["generation"] = json!(1);
                crd["metadata"]["resourceVersion"] = json!(rv);
                crd["status"] = json!({"conditions": [{"type": "Established", "status": "True"}]});
                let code = if c.crds.contains_key(name) { 200 } else { 201 };
                c.crds.insert(name.to_string(), crd.clone());
                (code, crd)
            }
            _ => status(405, "MethodNotAllowed"),
        };
    }
    match (method, path) {
        ("POST", LEASES) if c.lease.is_some() => status(409, "AlreadyExists"),
        ("POST", LEASES) => {
            let mut lease = body;
            lease["metadata"]["resourceVersion"] = json!(rv);
            c.lease = Some(lease.clone());
            (201, lease)
        }
        ("GET", p) if p.starts_with(LEASES) => c
            .lease
            .clone()
            .map_or_else(|| status(404, "NotFound"), |l| (200, l)),
        ("PUT", p) if p.starts_with(LEASES) => {
            let current = c
                .lease
                .as_ref()
                .map(|l| l["metadata"]["resourceVersion"].clone());
            if current.as_ref() != Some(&body["metadata"]["resourceVersion"]) {
                return status(409, "Conflict");
            }
            let mut lease = body;
            lease["metadata"]["resourceVersion"] = json!(rv);
            c.lease = Some(lease.clone());
            (200, lease)
        }
        _ => status(404, "NotFound"),
    }
}

fn serve_one(mut stream: TcpStream, cluster: Arc<Mutex<Cluster>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut length = 0;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).expect("JSON body")
    };
    let path = target.split('?').next().unwrap_or("").to_string();
    let (code, reply) = {
        let mut c = cluster.lock().expect("lock");
        c.log.push(format!("{method} {target}"));
        answer(&mut c, &method, &path, body)
    };
    let text = reply.to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// GET `path` on `port`: (status code, body).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, out.split_once("\r\n\r\n")?.1.to_string()))
}

/// Kills the operator if the test fails before it is stopped by SIGTERM.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool, child: &mut Child) {
    let start = Instant::now();
    while !f() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("tetra-operator exited ({status}) while waiting for {what}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn operator_installs_crds_leads_and_releases_on_sigterm() {
    let api = TcpListener::bind("127.0.0.1:0").expect("bind");
    let api_port = api.local_addr().expect("addr").port();
    let cluster = Arc::new(Mutex::new(Cluster::default()));
    let c = cluster.clone();
    std::thread::spawn(move || {
        for stream in api.incoming().flatten() {
            let c = c.clone();
            std::thread::spawn(move || serve_one(stream, c));
        }
    });
    let dir = std::env::temp_dir().join(format!("tetra-operator-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{api_port}\n\
             users:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c\n  context:\n    cluster: fake\n    user: u\n\
             current-context: c\n"
        ),
    )
    .expect("kubeconfig");
    let (metrics_port, health_port) = (free_port(), free_port());
    let mut running = Running(
        Command::new(env!("CARGO_BIN_EXE_tetra-operator"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                &format!("--metrics-bind-address=127.0.0.1:{metrics_port}"),
                &format!("--health-probe-bind-address=127.0.0.1:{health_port}"),
                "--leader-election-namespace=kube-system",
                "--leader-election-lease-name=tetra-test",
                "--leader-election-lease-duration=3s",
                "--leader-election-renew-deadline=2s",
                "--leader-election-retry-period=500ms",
                "--identity=op-1",
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tetra-operator"),
    );
    let child = &mut running.0;

    wait_for(
        "/readyz",
        || http_get(health_port, "/readyz").is_some_and(|(code, _)| code == 200),
        child,
    );
    wait_for(
        "leadership",
        || {
            http_get(metrics_port, "/metrics")
                .is_some_and(|(_, b)| b.contains("tetra_operator_leader 1\n"))
        },
        child,
    );
    let (_, metrics) = http_get(metrics_port, "/metrics").expect("metrics");
    for crd in [
        "tracingpolicies.cilium.io",
        "tracingpoliciesnamespaced.cilium.io",
    ] {
        assert!(
            metrics.contains(&format!(
                "tetra_operator_crd_install_result{{crd=\"{crd}\",result=\"created\"}} 1\n"
            )),
            "{metrics}"
        );
        assert!(
            metrics.contains(&format!(
                "tetra_operator_crd_established{{crd=\"{crd}\"}} 1\n"
            )),
            "{metrics}"
        );
    }
    // Renewals keep the same holder; let a few pass.
    std::thread::sleep(Duration::from_millis(1200));
    {
        let c = cluster.lock().expect("lock");
        let applies: Vec<_> = c.log.iter().filter(|l| l.starts_with("PATCH")).collect();
        assert_eq!(applies.len(), 2, "{:?}", c.log);
        for (apply, crd) in applies.iter().zip([
            "tracingpolicies.cilium.io",
            "tracingpoliciesnamespaced.cilium.io",
        ]) {
            assert_eq!(
                **apply,
                format!("PATCH {CRDS}{crd}?&force=true&fieldManager=tetra-operator")
            );
        }
        assert!(
            c.log.iter().filter(|l| l.starts_with("PUT")).count() >= 2,
            "renewals: {:?}",
            c.log
        );
        assert_eq!(
            c.lease.as_ref().expect("lease")["spec"]["holderIdentity"],
            "op-1"
        );
    }

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("log");
    assert!(status.success(), "exit {status}; log:\n{log}");
    let c = cluster.lock().expect("lock");
    let lease = c.lease.as_ref().expect("lease");
    assert_eq!(
        lease["spec"].get("holderIdentity"),
        None,
        "not released: {lease}"
    );
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 1);
    assert!(
        log.contains("CRD tracingpolicies.cilium.io: created"),
        "{log}"
    );
    assert!(
        log.contains("lease kube-system/tetra-test: op-1 is now the leader"),
        "{log}"
    );
    assert!(
        log.contains("lease kube-system/tetra-test: released"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
