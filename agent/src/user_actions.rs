//! GetUrl and DnsLookup: actions a selector asks of user space, as Tetragon runs them. The
//! kernel reports the hit (the event's action is KPROBE_ACTION_GETURL/DNSLOOKUP); the agent
//! then fetches the URL (HTTP GET) or resolves the name (a DNS query for its A record).
//!
//! Requests never run on the event path: the event thread hands them to a bounded queue
//! served by a few worker threads, each request with a timeout. A full queue skips the
//! request; skipped and failed requests are counted (`Stats`, metrics) and logged.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use crate::stats::Stats;

/// Requests run at once (worker threads).
pub const WORKERS: usize = 4;
/// Requests waiting for a worker; more are skipped.
pub const QUEUE: usize = 256;
/// Each request's bound: connecting, sending and waiting for the answer.
pub const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    GetUrl(String),
    DnsLookup(String),
}

impl Request {
    /// Its place in [`crate::stats::USER_ACTION_KINDS`] and the `Stats` arrays.
    fn index(&self) -> usize {
        match self {
            Request::GetUrl(_) => 0,
            Request::DnsLookup(_) => 1,
        }
    }
}

/// An `http://host[:port][/path]` URL: (host, port, path).
pub fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("argUrl {url:?}: only http:// URLs are fetched"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let bad_port = |p: &str| format!("argUrl {url:?}: bad port {p:?}");
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| format!("argUrl {url:?}: unclosed [ in the host"))?;
        match after.strip_prefix(':') {
            Some(p) => (host, p.parse::<u16>().map_err(|_| bad_port(p))?),
            None if after.is_empty() => (host, 80),
            None => return Err(bad_port(after)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, p)) => (host, p.parse::<u16>().map_err(|_| bad_port(p))?),
            None => (authority, 80),
        }
    };
    if host.is_empty() || authority.contains('@') || path.contains(char::is_whitespace) {
        return Err(format!("argUrl {url:?}: not a URL with a host (and no user or spaces)"));
    }
    Ok((host.to_string(), port, path.to_string()))
}

/// The DNS query (id `id`, recursion desired) for the A record of `name`.
pub fn dns_query(name: &str, id: u16) -> Result<Vec<u8>, String> {
    let name = name.trim_end_matches('.');
    if name.is_empty() || name.len() > 253 {
        return Err(format!("argFqdn {name:?}: a name is 1 to 253 characters"));
    }
    let mut q = Vec::with_capacity(18 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 || !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(format!("argFqdn {name:?}: label {label:?} is not 1 to 63 letters, digits, '-' or '_'"));
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]); // root; type A; class IN
    Ok(q)
}

/// The first `nameserver` of resolv.conf, port 53.
pub fn system_dns_server(resolv_conf: &str) -> Option<SocketAddr> {
    resolv_conf.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some("nameserver")).then(|| words.next()).flatten()?.parse::<std::net::IpAddr>().ok()
    }).map(|ip| SocketAddr::new(ip, 53))
}

/// Hands requests to the workers; dropping it lets them finish what is queued and end.
pub struct UserActions {
    tx: Sender<Request>,
    stats: Arc<Stats>,
}

impl UserActions {
    /// Starts the workers. `dns_server`: where DnsLookup queries go (None: the first
    /// nameserver of /etc/resolv.conf, read per lookup).
    pub fn start(dns_server: Option<SocketAddr>, stats: Arc<Stats>) -> std::io::Result<UserActions> {
        let (tx, rx) = bounded::<Request>(QUEUE);
        for i in 0..WORKERS {
            let (rx, stats): (Receiver<Request>, _) = (rx.clone(), stats.clone());
            std::thread::Builder::new().name(format!("tetrad-action{i}")).spawn(move || {
                for req in rx {
                    let result = match &req {
                        Request::GetUrl(url) => get_url(url),
                        Request::DnsLookup(name) => dns_lookup(name, dns_server),
                    };
                    match result {
                        Ok(answer) => {
                            stats.user_actions_done[req.index()].fetch_add(1, Relaxed);
                            tracing::info!("{req:?}: {answer}");
                        }
                        Err(e) => {
                            stats.user_actions_failed[req.index()].fetch_add(1, Relaxed);
                            tracing::warn!("{req:?} failed: {e}");
                        }
                    }
                }
            })?;
        }
        Ok(UserActions { tx, stats })
    }

    /// Queues `req`, or skips it (counted, logged) when the queue is full.
    pub fn submit(&self, req: Request) {
        match self.tx.try_send(req) {
            Ok(()) => {}
            Err(TrySendError::Full(req) | TrySendError::Disconnected(req)) => {
                let n = self.stats.user_actions_skipped[req.index()].fetch_add(1, Relaxed);
                if n.is_power_of_two() || n == 0 {
                    tracing::warn!("{req:?} skipped: {QUEUE} requests already waiting ({} skipped so far)", n + 1);
                }
            }
        }
    }
}

/// GET of `url`; the answer's status line.
fn get_url(url: &str) -> Result<String, String> {
    let (host, port, path) = parse_url(url)?;
    let addrs: Vec<SocketAddr> =
        (host.as_str(), port).to_socket_addrs().map_err(|e| format!("resolving {host}: {e}"))?.collect();
    let mut last = format!("{host} has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(mut s) => {
                s.set_read_timeout(Some(TIMEOUT)).and_then(|_| s.set_write_timeout(Some(TIMEOUT))).map_err(|e| e.to_string())?;
                let host_header = if port == 80 { host.clone() } else { format!("{host}:{port}") };
                let request = format!("GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: tetrad\r\nAccept: */*\r\nConnection: close\r\n\r\n");
                s.write_all(request.as_bytes()).map_err(|e| format!("sending to {addr}: {e}"))?;
                let mut head = Vec::new();
                let mut buf = [0u8; 512];
                while !head.contains(&b'\n') && head.len() < 4096 {
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                        Err(e) => return Err(format!("reading from {addr}: {e}")),
                    }
                }
                let line = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_string();
                return if line.starts_with("HTTP/") { Ok(line) } else { Err(format!("{addr} did not answer HTTP: {line:?}")) };
            }
            Err(e) => last = format!("connecting to {addr}: {e}"),
        }
    }
    Err(last)
}

/// A query for the A record of `name`; the answer's response code and answer count.
fn dns_lookup(name: &str, server: Option<SocketAddr>) -> Result<String, String> {
    let server = match server {
        Some(s) => s,
        None => std::fs::read_to_string("/etc/resolv.conf")
            .ok()
            .and_then(|t| system_dns_server(&t))
            .ok_or("no nameserver in /etc/resolv.conf (set --dns-lookup-server)")?,
    };
    let id = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.subsec_nanos() as u16);
    let query = dns_query(name, id)?;
    let bind: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal address");
    let sock = UdpSocket::bind(bind).map_err(|e| format!("binding a UDP socket: {e}"))?;
    sock.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    sock.connect(server).and_then(|_| sock.send(&query)).map_err(|e| format!("sending to {server}: {e}"))?;
    let mut buf = [0u8; 1500];
    loop {
        let n = sock.recv(&mut buf).map_err(|e| format!("no answer from {server}: {e}"))?;
        // Another datagram (a late answer to someone else) is not ours: keep waiting.
        if n >= 12 && buf[..2] == id.to_be_bytes() && buf[2] & 0x80 != 0 {
            let rcode = buf[3] & 0x0f;
            let answers = u16::from_be_bytes([buf[6], buf[7]]);
            return Ok(format!("{server} answered rcode {rcode} with {answers} record(s)"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("http://ebpf.io"), Ok(("ebpf.io".into(), 80, "/".into())));
        assert_eq!(parse_url("http://127.0.0.1:8080/a/b?c=d"), Ok(("127.0.0.1".into(), 8080, "/a/b?c=d".into())));
        assert_eq!(parse_url("http://[::1]:81/x"), Ok(("::1".into(), 81, "/x".into())));
        assert_eq!(parse_url("http://[::1]"), Ok(("::1".into(), 80, "/".into())));
        assert_eq!(parse_url("https://ebpf.io").unwrap_err(), "argUrl \"https://ebpf.io\": only http:// URLs are fetched");
        assert!(parse_url("http://h:99999/").unwrap_err().contains("bad port"));
        assert!(parse_url("http:///x").is_err());
        assert!(parse_url("http://u@h/").is_err());
    }

    #[test]
    fn dns_queries() {
        let q = dns_query("ebpf.io.", 0x1234).unwrap();
        assert_eq!(q, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04ebpf\x02io\x00\x00\x01\x00\x01");
        assert!(dns_query("a..b", 1).unwrap_err().contains("label \"\""));
        assert!(dns_query(&"x".repeat(64), 1).is_err());
        assert!(dns_query("", 1).is_err());
    }

    #[test]
    fn resolv_conf_nameserver() {
        let text = "# comment\nsearch example\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n";
        assert_eq!(system_dns_server(text), Some("10.0.0.2:53".parse().unwrap()));
        assert_eq!(system_dns_server("nameserver ::1"), Some("[::1]:53".parse().unwrap()));
        assert_eq!(system_dns_server(""), None);
    }

    #[test]
    fn a_full_queue_skips_and_counts() {
        let stats = Arc::new(Stats::default());
        // No workers: the queue fills at QUEUE requests and the next ones are skipped.
        let (tx, _rx) = bounded::<Request>(QUEUE);
        let actions = UserActions { tx, stats: stats.clone() };
        for _ in 0..QUEUE + 3 {
            actions.submit(Request::DnsLookup("x.example".into()));
        }
        assert_eq!(stats.user_actions_skipped[1].load(Relaxed), 3);
        assert_eq!(stats.user_actions_skipped[0].load(Relaxed), 0);
    }
}
