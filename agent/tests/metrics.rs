//! `--metrics-server` scraped by a real Prometheus (Debian package `prometheus`, installed
//! here when missing), read back through its HTTP API; `promtool check metrics` accepts
//! the exposition.
mod common;
mod rpc;

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{marker, Agent};

/// Installs the Debian package when its binaries are missing (needs root and apt).
fn ensure_prometheus() {
    let have = |bin: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if have("prometheus") && have("promtool") {
        return;
    }
    let update = Command::new("apt-get").args(["update", "-qq"]).status().expect("apt-get");
    assert!(update.success(), "apt-get update failed");
    let install = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", "prometheus"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .expect("apt-get install");
    assert!(
        install.success() && have("prometheus") && have("promtool"),
        "installing prometheus failed"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Prometheus {
    child: Child,
    address: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(dir: &Path, target: &str) -> Prometheus {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: tetrad\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address={address}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("start prometheus");
    Prometheus { child, address }
}

/// One instant-vector value from Prometheus's query API, once it has one.
fn query(prom: &Prometheus, expr: &str) -> Option<f64> {
    let encoded: String = expr
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    // Not listening yet while Prometheus starts.
    let (status, body) =
        rpc::try_http_get(&prom.address, &format!("/api/v1/query?query={encoded}")).ok()?;
    if !status.contains("200") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    assert_eq!(v["status"], "success", "{body}");
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
#[ignore = "needs root: loads BPF programs and installs prometheus (the README test command runs it)"]
fn prometheus_scrapes_the_agent() {
    ensure_prometheus();
    let run_dir = tempfile::tempdir().unwrap();
    let run_arg = format!("--run-dir={}", run_dir.path().display());
    let mut agent = Agent::start(&["--metrics-server=127.0.0.1:0", &run_arg]);
    let metrics = rpc::info(run_dir.path(), "metrics_address");
    assert!(metrics.starts_with("127.0.0.1:"), "{metrics}");

    let runs = 25;
    let mark = marker("metrics");
    for i in 0..runs {
        rpc::run("/bin/true", &[&mark, &i.to_string()]);
    }
    agent.wait_for("last marker exit", |e| {
        common::with_arg(e, "process_exit", &format!("{mark} {}", runs - 1))
    });

    // The exposition itself: promtool's linter accepts it.
    let (status, text) = rpc::http_get(&metrics, "/metrics");
    assert!(status.contains("200"), "{status}");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool: {said}\n{text}");
    let direct = rpc::sample(&text, "tetragon_events_total{type=\"PROCESS_EXEC\"}").unwrap();
    assert!(direct >= runs as f64, "{text}");
    assert_eq!(rpc::sample(&text, "tetragon_process_cache_capacity"), Some(65536.0));

    // Prometheus scrapes every second; read the counters back through its API.
    let prom_dir = tempfile::tempdir().unwrap();
    let prom = start_prometheus(prom_dir.path(), &metrics);
    let deadline = Instant::now() + Duration::from_secs(60);
    let execs = loop {
        if let Some(v) = query(&prom, "tetragon_events_total{type=\"PROCESS_EXEC\"}") {
            break v;
        }
        let log =
            std::fs::read_to_string(prom_dir.path().join("prometheus.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "prometheus never had the metric; its log:\n{log}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(execs >= runs as f64, "PROCESS_EXEC events seen by Prometheus: {execs}");
    assert_eq!(query(&prom, "up{job=\"tetrad\"}"), Some(1.0));
    let exported = query(&prom, "tetragon_events_exported_total").unwrap();
    assert!(exported >= 2.0 * runs as f64, "exported: {exported}");
    assert_eq!(query(&prom, "tetragon_tracingpolicy_loaded{state=\"enabled\"}"), Some(0.0));
    let lost = query(&prom, "sum(tetragon_events_lost_total)").expect("loss counters scraped");
    assert!(lost >= 0.0);
    agent.stop();
}
