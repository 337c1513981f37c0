//! gRPC client side of the host tests: reading the agent's info file, connecting over
//! TCP or a unix socket, running marker processes, fetching metrics.
#![allow(dead_code)] // each test file uses its own part

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tetra_proto::tetragon::fine_guidance_sensors_client::FineGuidanceSensorsClient;
use tetra_proto::tetragon::GetEventsResponse;
use tonic::transport::{Channel, Endpoint};
use tonic::Streaming;

pub type Client = FineGuidanceSensorsClient<Channel>;

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// `key` of `<run_dir>/tetragon-info.json`.
pub fn info(run_dir: &Path, key: &str) -> String {
    let path = run_dir.join("tetragon-info.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {text}")).to_string()
}

pub async fn connect(address: &str) -> Client {
    connect_with_window(address, None).await
}

/// `window`: HTTP/2 flow-control windows (stream and connection) of the client, which
/// bound how much a client that stops reading leaves buffered in transit.
pub async fn connect_with_window(address: &str, window: Option<u32>) -> Client {
    let channel = if let Some(w) = window {
        Endpoint::from_shared(format!("http://{address}"))
            .unwrap()
            .initial_stream_window_size(w)
            .initial_connection_window_size(w)
            .connect()
            .await
            .unwrap()
    } else if let Some(path) = address.strip_prefix("unix://") {
        let path = path.to_string();
        Endpoint::from_static("http://localhost")
            .connect_with_connector(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await
            .unwrap()
    } else {
        Endpoint::from_shared(format!("http://{address}")).unwrap().connect().await.unwrap()
    };
    FineGuidanceSensorsClient::new(channel)
}

/// Runs `binary args...` to completion.
pub fn run(binary: &str, args: &[&str]) {
    let status = Command::new(binary)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success() || binary.ends_with("false"), "{binary} {args:?}: {status}");
}

/// Reads the stream until `pred` holds for an event (or panics after `secs`); returns
/// every event read, the matching one last.
pub async fn read_until(
    stream: &mut Streaming<GetEventsResponse>,
    secs: u64,
    what: &str,
    pred: impl Fn(&GetEventsResponse) -> bool,
) -> Vec<GetEventsResponse> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.message()).await {
            Ok(Ok(Some(ev))) => {
                let done = pred(&ev);
                seen.push(ev);
                if done {
                    return seen;
                }
            }
            Ok(Ok(None)) => panic!("stream ended before {what}; read {}", seen.len()),
            Ok(Err(status)) => panic!("stream failed before {what}: {status}"),
            Err(_) => panic!("no {what} within {secs}s; read {} events", seen.len()),
        }
    }
}

pub fn args_contain(ev: &GetEventsResponse, needle: &str) -> bool {
    ev.process().is_some_and(|p| p.arguments.contains(needle))
}

/// Plain HTTP/1.0 GET, returning (status line, body).
pub fn http_get(address: &str, path: &str) -> (String, String) {
    try_http_get(address, path).unwrap_or_else(|e| panic!("GET {address}{path}: {e}"))
}

pub fn try_http_get(address: &str, path: &str) -> std::io::Result<(String, String)> {
    let mut conn = TcpStream::connect(address)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut raw = String::new();
    conn.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    Ok((head.lines().next().unwrap_or("").to_string(), body.to_string()))
}

/// Value of one sample in a Prometheus text exposition (`name{labels}` exactly).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.rsplit_once(' ').filter(|(s, _)| *s == series).and_then(|(_, v)| v.parse().ok())
    })
}
