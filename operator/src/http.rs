//! A minimal HTTP/1.1 server for `/metrics`, `/healthz` and `/readyz`: one request per
//! connection, GET or HEAD only. Probes and Prometheus need nothing more.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::metrics::Metrics;

/// Which endpoints a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    pub metrics: bool,
    pub health: bool,
}

const MAX_REQUEST: usize = 8192;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

struct Reply {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

fn text(status: &'static str, body: &str) -> Reply {
    Reply {
        status,
        content_type: "text/plain; charset=utf-8",
        body: format!("{body}\n"),
    }
}

fn route(method: &str, path: &str, endpoints: Endpoints, metrics: &Metrics) -> Reply {
    if method != "GET" && method != "HEAD" {
        return text("405 Method Not Allowed", "only GET and HEAD are served");
    }
    // Probes may add `?verbose`; the query changes nothing here.
    let path = path.split('?').next().unwrap_or(path);
    match path {
        "/metrics" if endpoints.metrics => Reply {
            status: "200 OK",
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: metrics.render(),
        },
        "/healthz" if endpoints.health => text("200 OK", "ok"),
        "/readyz" if endpoints.health => {
            if metrics.ready() {
                text("200 OK", "ok")
            } else {
                text("503 Service Unavailable", "CRDs are not Established yet")
            }
        }
        _ => text("404 Not Found", "not found"),
    }
}

/// Reads the request head (up to the blank line) and returns its method and path.
async fn read_request_line(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() >= MAX_REQUEST {
            return None;
        }
        let n = tokio::time::timeout(READ_TIMEOUT, stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = std::str::from_utf8(&buf).ok()?;
    let mut parts = head.lines().next()?.split(' ');
    Some((parts.next()?.to_string(), parts.next()?.to_string()))
}

async fn handle(mut stream: TcpStream, endpoints: Endpoints, metrics: Arc<Metrics>) {
    let reply = match read_request_line(&mut stream).await {
        Some((method, path)) => {
            let mut reply = route(&method, &path, endpoints, &metrics);
            if method == "HEAD" {
                reply.body.clear();
            }
            reply
        }
        None => text("400 Bad Request", "malformed request"),
    };
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.content_type,
        reply.body.len()
    );
    // A client that hung up gets nothing; there is no one to tell.
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(reply.body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Serves `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    endpoints: Endpoints,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(handle(stream, endpoints, metrics.clone()));
                }
                Err(e) => {
                    log::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = crate::stopped(&mut shutdown) => return,
        }
    }
}
