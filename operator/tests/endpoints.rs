//! The metrics and health endpoints over a real localhost socket, and the binary's
//! refusal of bad flags.
use std::process::Command;
use std::sync::Arc;

use tetra_operator::crd_state::{CrdState, Outcome};
use tetra_operator::http::{self, Endpoints};
use tetra_operator::metrics::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const TP: &str = "tracingpolicies.cilium.io";
const TPN: &str = "tracingpoliciesnamespaced.cilium.io";

/// The value of header `name` (any case) in a response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Sends `request` raw (its last header line included, the blank line not) with
/// `Connection: close`, and returns (status line, content type, body).
async fn call(addr: std::net::SocketAddr, request: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("{request}Connection: close\r\n\r\n").as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let (head, body) = out.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.lines().next().unwrap_or("").to_string();
    let content_type = header(head, "content-type").unwrap_or("").to_string();
    let length: usize = header(head, "content-length").and_then(|v| v.parse().ok()).expect("a Content-Length");
    if !request.starts_with("HEAD ") {
        assert_eq!(length, body.len(), "Content-Length of {request:?}");
    }
    (status, content_type, body.to_string())
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n")
}

async fn start(
    endpoints: Endpoints,
    metrics: Arc<Metrics>,
) -> (
    std::net::SocketAddr,
    watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(http::serve(listener, endpoints, metrics, rx));
    (addr, tx, task)
}

#[tokio::test]
async fn health_and_readiness_follow_the_crd_install() {
    let metrics = Arc::new(Metrics::default());
    let (addr, stop, task) = start(
        Endpoints {
            metrics: false,
            health: true,
        },
        metrics.clone(),
    )
    .await;

    let ok = (
        "HTTP/1.1 200 OK".to_string(),
        "text/plain; charset=utf-8".to_string(),
        "ok\n".to_string(),
    );
    assert_eq!(call(addr, &get("/healthz")).await, ok);
    let not_ready = (
        "HTTP/1.1 503 Service Unavailable".to_string(),
        "text/plain; charset=utf-8".to_string(),
        "CRDs are not Established yet\n".to_string(),
    );
    assert_eq!(call(addr, &get("/readyz")).await, not_ready);
    metrics.set_crd_state(TP, CrdState::Applied(Outcome::Created));
    metrics.set_crd_state(TPN, CrdState::Applied(Outcome::Created));
    metrics.set_crd_established(TP);
    assert_eq!(
        call(addr, &get("/readyz")).await,
        not_ready,
        "one CRD is not Established"
    );
    metrics.set_crd_established(TPN);
    assert_eq!(call(addr, &get("/readyz?verbose")).await, ok);

    // This listener serves health only.
    let (status, _, body) = call(addr, &get("/metrics")).await;
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 404 Not Found", "not found\n")
    );
    let (status, _, _) = call(addr, "POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n").await;
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    let (status, _, body) = call(addr, "HEAD /healthz HTTP/1.1\r\n").await;
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", ""));
    let (status, _, _) = call(addr, "\u{1}\u{2}garbage\r\n").await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");

    stop.send(true).expect("stop");
    task.await.expect("server task");
    // Nothing accepts any more. A connection can still form on Linux when the client's
    // ephemeral port happens to equal the freed port (TCP simultaneous open to itself);
    // that is no listener, and it shows as local address == peer address.
    if let Ok(stream) = TcpStream::connect(addr).await {
        assert_eq!(
            stream.local_addr().expect("local"),
            stream.peer_addr().expect("peer"),
            "still listening after shutdown"
        );
    }
}

#[tokio::test]
async fn metrics_show_install_results_and_leader_status() {
    let metrics = Arc::new(Metrics::default());
    let (addr, stop, task) = start(
        Endpoints {
            metrics: true,
            health: false,
        },
        metrics.clone(),
    )
    .await;
    metrics.set_crd_state(TP, CrdState::Applied(Outcome::Upgraded));
    metrics.set_crd_established(TP);
    metrics.set_crd_state(TPN, CrdState::Failed);
    metrics.set_leader(true);
    metrics.count_lease_error();

    let (status, content_type, body) = call(addr, &get("/metrics")).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    // Label sets of one family come in no fixed order: compare sorted lines.
    let expected = format!(
        "# HELP tetra_operator_crd_install_result How the install of each CRD at start ended (1 for the current result).
# TYPE tetra_operator_crd_install_result gauge
tetra_operator_crd_install_result{{crd=\"{TP}\",result=\"created\"}} 0
tetra_operator_crd_install_result{{crd=\"{TP}\",result=\"upgraded\"}} 1
tetra_operator_crd_install_result{{crd=\"{TP}\",result=\"unchanged\"}} 0
tetra_operator_crd_install_result{{crd=\"{TP}\",result=\"failed\"}} 0
tetra_operator_crd_install_result{{crd=\"{TPN}\",result=\"created\"}} 0
tetra_operator_crd_install_result{{crd=\"{TPN}\",result=\"upgraded\"}} 0
tetra_operator_crd_install_result{{crd=\"{TPN}\",result=\"unchanged\"}} 0
tetra_operator_crd_install_result{{crd=\"{TPN}\",result=\"failed\"}} 1
# HELP tetra_operator_crd_established Whether each CRD is Established.
# TYPE tetra_operator_crd_established gauge
tetra_operator_crd_established{{crd=\"{TP}\"}} 1
tetra_operator_crd_established{{crd=\"{TPN}\"}} 0
# HELP tetra_operator_leader Whether this replica holds the leader lease.
# TYPE tetra_operator_leader gauge
tetra_operator_leader 1
# HELP tetra_operator_leader_acquisitions_total Times this replica became leader.
# TYPE tetra_operator_leader_acquisitions_total counter
tetra_operator_leader_acquisitions_total 1
# HELP tetra_operator_leader_losses_total Times this replica stopped being leader.
# TYPE tetra_operator_leader_losses_total counter
tetra_operator_leader_losses_total 0
# HELP tetra_operator_lease_errors_total Lease requests that failed.
# TYPE tetra_operator_lease_errors_total counter
tetra_operator_lease_errors_total 1
"
    );
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    assert_eq!(sorted(&body), sorted(&expected), "{body}");
    // Each family's HELP and TYPE come before its samples.
    for family in ["tetra_operator_crd_install_result", "tetra_operator_leader_acquisitions_total"] {
        let type_line = body.find(&format!("# TYPE {family} ")).expect("a TYPE line");
        let first_sample = body.find(&format!("\n{family}")).expect("a sample");
        assert!(type_line < first_sample, "{body}");
    }
    let (status, _, _) = call(addr, &get("/healthz")).await;
    assert_eq!(
        status, "HTTP/1.1 404 Not Found",
        "this listener serves metrics only"
    );
    stop.send(true).expect("stop");
    task.await.expect("server task");
}

#[test]
fn the_binary_refuses_inconsistent_lease_flags_before_contacting_the_cluster() {
    let out = Command::new(env!("CARGO_BIN_EXE_tetra-operator"))
        .args([
            "--leader-election-lease-duration",
            "10s",
            "--leader-election-renew-deadline",
            "10s",
        ])
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .expect("running tetra-operator");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "tetra-operator: --leader-election-renew-deadline 10s must be shorter than \
         --leader-election-lease-duration 10s\n"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tetra-operator"))
        .args(["--leader-election-retry-period", "soon"])
        .output()
        .expect("running tetra-operator");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "invalid value 'soon' for '--leader-election-retry-period <LEADER_ELECTION_RETRY_PERIOD>': \"soon\" is not a duration like 500ms, 15s or 2m"
    ), "{}", String::from_utf8_lossy(&out.stderr));
}
