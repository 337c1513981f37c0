//! `--metrics-server`: `/metrics` in the Prometheus text format (0.0.4), with Tetragon's
//! metric names (namespace `tetragon_`). `prometheus-client` encodes it and axum serves it
//! on the agent's tokio runtime. The values stay where they are counted ([`Stats`], the bus,
//! the policy registry): a [`Collector`] reads them at each scrape.
use std::fmt;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
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

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").field("cache_capacity", &self.cache_capacity).finish_non_exhaustive()
    }
}

/// Label pairs of one sample.
type Labels<'a> = Vec<(&'static str, &'a str)>;

/// Writes metric families into the scrape's encoder.
struct Families<'e>(DescriptorEncoder<'e>);

impl Families<'_> {
    /// One family: HELP and TYPE, then a sample per label set. Counter names are given
    /// without `_total`, which the encoder appends.
    fn family<'a>(
        &mut self,
        name: &str,
        kind: MetricType,
        help: &str,
        samples: impl IntoIterator<Item = (Labels<'a>, u64)>,
    ) -> fmt::Result {
        let mut metric = self.0.encode_descriptor(name, help, None, kind)?;
        for (labels, value) in samples {
            let sample = metric.encode_family(&labels)?;
            encode_value(kind, value, sample)?;
        }
        Ok(())
    }

    /// A family of one sample without labels.
    fn single(&mut self, name: &str, kind: MetricType, help: &str, value: u64) -> fmt::Result {
        let metric = self.0.encode_descriptor(name, help, None, kind)?;
        encode_value(kind, value, metric)
    }

    /// A counter of seconds, kept in microseconds (Prometheus wants the base unit).
    fn seconds(&mut self, name: &str, help: &str, micros: u64) -> fmt::Result {
        let metric = self.0.encode_descriptor(name, help, None, MetricType::Counter)?;
        ConstCounter::new(micros as f64 / 1e6).encode(metric)
    }
}

fn encode_value(kind: MetricType, value: u64, encoder: prometheus_client::encoding::MetricEncoder<'_>) -> fmt::Result {
    match kind {
        MetricType::Counter => ConstCounter::new(value).encode(encoder),
        _ => ConstGauge::new(value).encode(encoder),
    }
}

const POLICY_STATES: &[(TracingPolicyState, &str)] = &[
    (TracingPolicyState::TpStateEnabled, "enabled"),
    (TracingPolicyState::TpStateDisabled, "disabled"),
    (TracingPolicyState::TpStateLoadError, "load_error"),
    (TracingPolicyState::TpStateError, "error"),
    (TracingPolicyState::TpStateSkipped, "skipped"),
];

impl Collector for Metrics {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        use MetricType::{Counter, Gauge};
        let s = &self.stats;
        let v = |c: &std::sync::atomic::AtomicU64| c.load(Relaxed);
        let mut t = Families(encoder);

        t.family(
            "tetragon_build_info",
            Gauge,
            "Build information about the agent.",
            [(vec![("version", crate::VERSION), ("commit", ""), ("modified", "false")], 1)],
        )?;
        t.family(
            "tetragon_events",
            Counter,
            "Events built by the agent, by type.",
            [(vec![("type", "PROCESS_EXEC")], v(&s.exec_events)), (vec![("type", "PROCESS_EXIT")], v(&s.exit_events))],
        )?;

        let clients = self.bus.subscribers();
        let mut lost: Vec<(&str, u64)> = DROP_CAUSES.iter().zip(&s.kernel_drops).map(|(n, c)| (*n, v(c))).collect();
        lost.push(("queue_full", v(&s.queue_full)));
        lost.push(("decode_error", v(&s.decode_errors)));
        lost.push(("export_queue_full", v(&s.export_queue_full)));
        lost.push(("export_rate_limit", v(&s.export_rate_limited)));
        lost.push(("grpc_slow_client", v(&s.grpc_client_drops)));
        t.family(
            "tetragon_events_lost",
            Counter,
            "Events lost or dropped, by cause (per exporter after the event bus).",
            lost.iter().map(|(cause, n)| (vec![("cause", *cause)], *n)),
        )?;
        let mut actions = Vec::new();
        for (i, action) in crate::stats::USER_ACTION_KINDS.iter().enumerate() {
            for (result, c) in [("done", &s.user_actions_done[i]), ("failed", &s.user_actions_failed[i]), ("skipped", &s.user_actions_skipped[i])] {
                actions.push((vec![("action", *action), ("result", result)], v(c)));
            }
        }
        t.family(
            "tetragon_user_actions",
            Counter,
            "GetUrl/DnsLookup requests of policy actions, by result (skipped: the request queue was full).",
            actions,
        )?;
        t.single("tetragon_observer_ringbuf_events_received", Counter, "Records read from the kernel ring buffer.", v(&s.ringbuf_received))?;
        t.single("tetragon_observer_ringbuf_queue_events_lost", Counter, "Records lost because the event queue was full.", v(&s.queue_full))?;
        t.single("tetragon_export_ratelimit_events_dropped", Counter, "Events dropped by --export-rate-limit.", v(&s.export_rate_limited))?;
        t.family(
            "tetragon_data_events",
            Counter,
            "maxData messages received and discarded, and arguments exported incomplete.",
            [
                (vec![("event", "received")], v(&s.data_messages)),
                (vec![("event", "discarded")], v(&s.data_discarded)),
                (vec![("event", "incomplete")], v(&s.data_incomplete)),
            ],
        )?;
        t.single("tetragon_process_cache_size", Gauge, "Processes in the process cache.", v(&s.cache_size))?;
        t.single("tetragon_process_cache_capacity", Gauge, "Capacity of the process cache.", self.cache_capacity)?;
        t.single("tetragon_process_cache_misses", Counter, "Process cache lookups that found nothing.", v(&s.cache_misses))?;
        t.single("tetragon_process_cache_evictions", Counter, "Processes evicted from the process cache.", v(&s.cache_evictions))?;
        t.single("tetragon_event_cache_inserts", Counter, "Events held until the pod of their container was known.", v(&s.pod_held))?;
        t.single(
            "tetragon_event_cache_fetch_failures",
            Counter,
            "Held events sent without pod information (the pod stayed unknown).",
            v(&s.pod_unenriched),
        )?;
        t.single("tetragon_events_exported", Counter, "Events written to the JSON export.", v(&s.exported))?;
        t.single("tetragon_events_exported_bytes", Counter, "Bytes written to the JSON export.", v(&s.exported_bytes))?;
        t.single("tetragon_export_errors", Counter, "Failed writes to the JSON export.", v(&s.export_errors))?;
        t.seconds(
            "tetragon_export_wait_seconds",
            "Time the event thread waited for room in the JSON export's queue (the backlog waits in the ring buffer).",
            v(&s.export_waited_us),
        )?;

        let grpc: Vec<_> = clients.iter().filter(|c| c.kind == SubscriberKind::GrpcClient).collect();
        t.single("tetragon_grpc_clients", Gauge, "Connected GetEvents clients.", grpc.len() as u64)?;
        t.single("tetragon_grpc_clients_connected", Counter, "GetEvents streams opened.", v(&s.grpc_clients_total))?;
        t.single("tetragon_grpc_client_events_dropped", Counter, "Events not delivered to slow GetEvents clients.", v(&s.grpc_client_drops))?;
        let ids: Vec<String> = grpc.iter().map(|c| c.id.to_string()).collect();
        t.family(
            "tetragon_grpc_client_queue_events_dropped",
            Counter,
            "Events dropped per connected GetEvents client.",
            grpc.iter().zip(&ids).map(|(c, id)| (vec![("client", id.as_str()), ("peer", c.peer.as_str())], v(&c.dropped))),
        )?;

        let policies = self.policies.lock().unwrap_or_else(|e| e.into_inner());
        let rate_limited = policies.rate_limited();
        t.family(
            "tetragon_policy_events_rate_limited",
            Counter,
            "Events of a loaded policy that its Post rateLimit suppressed in the kernel.",
            rate_limited.iter().map(|(policy, n)| (vec![("policy", policy.as_str())], *n)),
        )?;
        t.family(
            "tetragon_tracingpolicy_loaded",
            Gauge,
            "Tracing policies by state.",
            POLICY_STATES.iter().map(|(state, name)| (vec![("state", *name)], policies.count(*state) as u64)),
        )
    }
}

/// The exposition of `registry`.
fn render(registry: &Registry) -> String {
    let mut out = String::with_capacity(8192);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, registry);
    out
}

impl Metrics {
    /// Serves `/metrics` on `address` from the runtime `rt`; returns the address really bound.
    pub fn serve(self, address: &str, rt: &tokio::runtime::Runtime) -> io::Result<String> {
        let address = if address.starts_with(':') { format!("0.0.0.0{address}") } else { address.to_string() };
        let listener = rt.block_on(tokio::net::TcpListener::bind(&address))?;
        let bound = listener.local_addr()?.to_string();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let registry = Arc::new(registry);
        let app = Router::new()
            .route(
                "/metrics",
                get(move || async move { ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], render(&registry)) }),
            )
            .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "not found: try /metrics\n") });
        rt.spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!("metrics server: {e}");
            }
        });
        Ok(bound)
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
        let mut registry = Registry::default();
        registry.register_collector(Box::new(m));
        let text = render(&registry);
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
    }
}
