//! `--metrics-server`: Prometheus text exposition (format 0.0.4) at `/metrics`, with
//! Tetragon's metric names (namespace `tetragon_`). Written by hand: a handful of
//! counters and gauges read from [`Stats`], the bus and the policy registry.
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tetra_proto::tetragon::TracingPolicyState;

use crate::abi::DROP_CAUSES;
use crate::bus::{Bus, SubscriberKind};
use crate::policies::PolicyRegistry;
use crate::stats::Stats;

pub struct Metrics {
    pub stats: Arc<Stats>,
    pub bus: Arc<Bus>,
    pub policies: Arc<Mutex<PolicyRegistry>>,
    pub cache_capacity: u64,
}

/// Escapes a label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        let _ = write!(self.0, "{name}");
        if !labels.is_empty() {
            let inner: Vec<String> =
                labels.iter().map(|(k, v)| format!("{k}=\"{}\"", label(v))).collect();
            let _ = write!(self.0, "{{{}}}", inner.join(","));
        }
        let _ = writeln!(self.0, " {value}");
    }
    fn single(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

const POLICY_STATES: &[(TracingPolicyState, &str)] = &[
    (TracingPolicyState::TpStateEnabled, "enabled"),
    (TracingPolicyState::TpStateDisabled, "disabled"),
    (TracingPolicyState::TpStateLoadError, "load_error"),
    (TracingPolicyState::TpStateError, "error"),
    (TracingPolicyState::TpStateSkipped, "skipped"),
];

impl Metrics {
    /// The whole exposition.
    pub fn render(&self) -> String {
        let s = &self.stats;
        let v = |c: &std::sync::atomic::AtomicU64| c.load(Relaxed);
        let mut t = Text(String::with_capacity(4096));

        t.family("tetragon_build_info", "gauge", "Build information about the agent.");
        t.sample(
            "tetragon_build_info",
            &[("version", crate::VERSION), ("commit", ""), ("modified", "false")],
            1,
        );

        t.family("tetragon_events_total", "counter", "Events built by the agent, by type.");
        t.sample("tetragon_events_total", &[("type", "PROCESS_EXEC")], v(&s.exec_events));
        t.sample("tetragon_events_total", &[("type", "PROCESS_EXIT")], v(&s.exit_events));

        let clients = self.bus.subscribers();
        let mut lost: Vec<(String, u64)> =
            DROP_CAUSES.iter().zip(&s.kernel_drops).map(|(n, c)| (n.to_string(), v(c))).collect();
        lost.push(("queue_full".into(), v(&s.queue_full)));
        lost.push(("decode_error".into(), v(&s.decode_errors)));
        lost.push(("export_queue_full".into(), v(&s.export_queue_full)));
        lost.push(("export_rate_limit".into(), v(&s.export_rate_limited)));
        lost.push(("grpc_slow_client".into(), v(&s.grpc_client_drops)));
        t.family(
            "tetragon_events_lost_total",
            "counter",
            "Events lost or dropped, by cause (per exporter after the event bus).",
        );
        for (cause, n) in &lost {
            t.sample("tetragon_events_lost_total", &[("cause", cause)], *n);
        }
        t.family(
            "tetragon_user_actions_total",
            "counter",
            "GetUrl/DnsLookup requests of policy actions, by result (skipped: the request queue was full).",
        );
        for (i, action) in crate::user_actions::KINDS.iter().enumerate() {
            for (result, c) in [("done", &s.user_actions_done[i]), ("failed", &s.user_actions_failed[i]), ("skipped", &s.user_actions_skipped[i])] {
                t.sample("tetragon_user_actions_total", &[("action", action), ("result", result)], v(c));
            }
        }
        t.single(
            "tetragon_observer_ringbuf_events_received_total",
            "counter",
            "Records read from the kernel ring buffer.",
            v(&s.ringbuf_received),
        );
        t.single(
            "tetragon_observer_ringbuf_queue_events_lost_total",
            "counter",
            "Records lost because the event queue was full.",
            v(&s.queue_full),
        );
        t.single(
            "tetragon_export_ratelimit_events_dropped_total",
            "counter",
            "Events dropped by --export-rate-limit.",
            v(&s.export_rate_limited),
        );

        t.family(
            "tetragon_data_events_total",
            "counter",
            "maxData messages received and discarded, and arguments exported incomplete.",
        );
        t.sample("tetragon_data_events_total", &[("event", "received")], v(&s.data_messages));
        t.sample("tetragon_data_events_total", &[("event", "discarded")], v(&s.data_discarded));
        t.sample("tetragon_data_events_total", &[("event", "incomplete")], v(&s.data_incomplete));

        t.single(
            "tetragon_process_cache_size",
            "gauge",
            "Processes in the process cache.",
            v(&s.cache_size),
        );
        t.single(
            "tetragon_process_cache_capacity",
            "gauge",
            "Capacity of the process cache.",
            self.cache_capacity,
        );
        t.single(
            "tetragon_process_cache_misses_total",
            "counter",
            "Process cache lookups that found nothing.",
            v(&s.cache_misses),
        );
        t.single(
            "tetragon_process_cache_evictions_total",
            "counter",
            "Processes evicted from the process cache.",
            v(&s.cache_evictions),
        );
        t.single(
            "tetragon_event_cache_inserts_total",
            "counter",
            "Events held until the pod of their container was known.",
            v(&s.pod_held),
        );
        t.single(
            "tetragon_event_cache_fetch_failures_total",
            "counter",
            "Held events sent without pod information (the pod stayed unknown).",
            v(&s.pod_unenriched),
        );

        t.single(
            "tetragon_events_exported_total",
            "counter",
            "Events written to the JSON export.",
            v(&s.exported),
        );
        t.single(
            "tetragon_events_exported_bytes_total",
            "counter",
            "Bytes written to the JSON export.",
            v(&s.exported_bytes),
        );
        t.single(
            "tetragon_export_errors_total",
            "counter",
            "Failed writes to the JSON export.",
            v(&s.export_errors),
        );

        let grpc: Vec<_> =
            clients.iter().filter(|c| c.kind == SubscriberKind::GrpcClient).collect();
        t.single(
            "tetragon_grpc_clients",
            "gauge",
            "Connected GetEvents clients.",
            grpc.len() as u64,
        );
        t.single(
            "tetragon_grpc_clients_connected_total",
            "counter",
            "GetEvents streams opened.",
            v(&s.grpc_clients_total),
        );
        t.single(
            "tetragon_grpc_client_events_dropped_total",
            "counter",
            "Events not delivered to slow GetEvents clients.",
            v(&s.grpc_client_drops),
        );
        t.family(
            "tetragon_grpc_client_queue_events_dropped_total",
            "counter",
            "Events dropped per connected GetEvents client.",
        );
        for c in &grpc {
            let id = c.id.to_string();
            t.sample(
                "tetragon_grpc_client_queue_events_dropped_total",
                &[("client", &id), ("peer", &c.peer)],
                v(&c.dropped),
            );
        }

        t.family(
            "tetragon_policy_events_rate_limited_total",
            "counter",
            "Events of a loaded policy that its Post rateLimit suppressed in the kernel.",
        );
        for (policy, n) in self.policies.lock().unwrap_or_else(|e| e.into_inner()).rate_limited() {
            t.sample("tetragon_policy_events_rate_limited_total", &[("policy", &policy)], n);
        }
        t.family("tetragon_tracingpolicy_loaded", "gauge", "Tracing policies by state.");
        {
            let policies = self.policies.lock().unwrap_or_else(|e| e.into_inner());
            for (state, name) in POLICY_STATES {
                t.sample(
                    "tetragon_tracingpolicy_loaded",
                    &[("state", name)],
                    policies.count(*state) as u64,
                );
            }
        }
        t.0
    }

    /// Serves `/metrics` on `address` from a thread; returns the address really bound.
    pub fn serve(self, address: &str) -> io::Result<String> {
        let address = if address.starts_with(':') {
            format!("0.0.0.0{address}")
        } else {
            address.to_string()
        };
        let listener = TcpListener::bind(&address)?;
        let bound = listener.local_addr()?.to_string();
        std::thread::Builder::new().name("tetrad-metrics".into()).spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(conn) => {
                        if let Err(e) = self.answer(conn) {
                            log::debug!("metrics request: {e}");
                        }
                    }
                    Err(e) => log::debug!("metrics accept: {e}"),
                }
            }
        })?;
        Ok(bound)
    }

    fn answer(&self, mut conn: TcpStream) -> io::Result<()> {
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        conn.set_write_timeout(Some(Duration::from_secs(5)))?;
        let mut reader = BufReader::new(conn.try_clone()?.take(16 * 1024));
        let mut request = String::new();
        reader.read_line(&mut request)?;
        // Skip the headers; the request has no body we care about.
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
                break;
            }
        }
        let mut parts = request.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let path = path.split('?').next().unwrap_or("");
        let (status, ctype, body) = match (method, path) {
            ("GET", "/metrics") => {
                ("200 OK", "text/plain; version=0.0.4; charset=utf-8", self.render())
            }
            ("GET", _) => ("404 Not Found", "text/plain", "not found: try /metrics\n".to_string()),
            _ => ("405 Method Not Allowed", "text/plain", "GET only\n".to_string()),
        };
        write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        conn.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_help_type_and_values() {
        let stats = Arc::new(Stats::default());
        stats.exec_events.store(5, Relaxed);
        stats.export_rate_limited.store(2, Relaxed);
        stats.kernel_drops[4].store(6, Relaxed);
        stats.data_discarded.store(3, Relaxed);
        stats.data_incomplete.store(1, Relaxed);
        let m = Metrics {
            bus: Bus::new(stats.clone()),
            stats,
            policies: Arc::new(Mutex::new(PolicyRegistry::default())),
            cache_capacity: 10,
        };
        let text = m.render();
        assert!(text.contains("# TYPE tetragon_events_total counter\n"), "{text}");
        assert!(text.contains("tetragon_events_total{type=\"PROCESS_EXEC\"} 5\n"), "{text}");
        assert!(
            text.contains("tetragon_events_lost_total{cause=\"export_rate_limit\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("tetragon_tracingpolicy_loaded{state=\"load_error\"} 0\n"), "{text}");
        assert!(text.contains("tetragon_events_lost_total{cause=\"ringbuf_data\"} 6\n"), "{text}");
        assert!(text.contains("tetragon_data_events_total{event=\"discarded\"} 3\n"), "{text}");
        assert!(text.contains("tetragon_data_events_total{event=\"incomplete\"} 1\n"), "{text}");
        // Every sample belongs to a family declared just before it.
        let mut family = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap().to_string();
            } else if !line.starts_with('#') {
                assert!(line.starts_with(&family), "{line} outside {family}");
            }
        }
        assert_eq!(label("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }
}
