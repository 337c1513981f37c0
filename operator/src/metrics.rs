//! The operator's state as Prometheus metrics (a `prometheus-client` registry, exposed in
//! the text format 0.0.4), and the readiness it implies.

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::crd_state::CrdState;

const CRD_STATES: [&str; 4] = ["created", "upgraded", "unchanged", "failed"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CrdResult {
    crd: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Crd {
    crd: String,
}

/// Shared between the install step, the election loop and the HTTP servers.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    crd_result: Family<CrdResult, Gauge>,
    crd_established: Family<Crd, Gauge>,
    leader: Gauge,
    acquisitions: Counter,
    losses: Counter,
    lease_errors: Counter,
    /// Every CRD we know of and whether it is Established: what readiness needs.
    established: Mutex<BTreeMap<String, bool>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let crd_result = Family::<CrdResult, Gauge>::default();
        let crd_established = Family::<Crd, Gauge>::default();
        let (leader, acquisitions, losses, lease_errors) =
            (Gauge::default(), Counter::default(), Counter::default(), Counter::default());
        let mut registry = Registry::default();
        registry.register(
            "tetra_operator_crd_install_result",
            "How the install of each CRD at start ended (1 for the current result)",
            crd_result.clone(),
        );
        registry.register("tetra_operator_crd_established", "Whether each CRD is Established", crd_established.clone());
        registry.register("tetra_operator_leader", "Whether this replica holds the leader lease", leader.clone());
        // Counters get their `_total` suffix from the encoder.
        registry.register("tetra_operator_leader_acquisitions", "Times this replica became leader", acquisitions.clone());
        registry.register("tetra_operator_leader_losses", "Times this replica stopped being leader", losses.clone());
        registry.register("tetra_operator_lease_errors", "Lease requests that failed", lease_errors.clone());
        Metrics {
            registry,
            crd_result,
            crd_established,
            leader,
            acquisitions,
            losses,
            lease_errors,
            established: Mutex::default(),
        }
    }
}

impl Metrics {
    fn established(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, bool>> {
        self.established.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn know_crd(&self, name: &str) {
        let mut crds = self.established();
        if !crds.contains_key(name) {
            crds.insert(name.to_string(), false);
            self.crd_established.get_or_create(&Crd { crd: name.to_string() }).set(0);
        }
    }

    pub fn set_crd_state(&self, name: &str, state: CrdState) {
        self.know_crd(name);
        for result in CRD_STATES {
            let labels = CrdResult { crd: name.to_string(), result };
            self.crd_result.get_or_create(&labels).set(i64::from(state.label() == result));
        }
    }

    pub fn set_crd_established(&self, name: &str) {
        self.established().insert(name.to_string(), true);
        self.crd_established.get_or_create(&Crd { crd: name.to_string() }).set(1);
    }

    pub fn set_leader(&self, leader: bool) {
        let was = self.leader.set(i64::from(leader)) == 1;
        if leader && !was {
            self.acquisitions.inc();
        } else if !leader && was {
            self.losses.inc();
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader.get() == 1
    }

    pub fn count_lease_error(&self) {
        self.lease_errors.inc();
    }

    /// Ready once every CRD we know of is Established (and there is at least one).
    pub fn ready(&self) -> bool {
        let crds = self.established();
        !crds.is_empty() && crds.values().all(|e| *e)
    }

    /// Prometheus text exposition format, version 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}
