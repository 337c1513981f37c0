//! The operator's state as Prometheus text, and the readiness it implies.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::crds::Outcome;

/// How the install of one CRD ended at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrdState {
    Applied(Outcome),
    Failed,
}

impl CrdState {
    fn label(self) -> &'static str {
        match self {
            CrdState::Applied(o) => o.as_str(),
            CrdState::Failed => "failed",
        }
    }
}

const CRD_STATES: [&str; 4] = ["created", "upgraded", "unchanged", "failed"];

#[derive(Debug, Default)]
struct CrdEntry {
    name: String,
    state: Option<CrdState>,
    established: bool,
}

/// Shared between the install step, the election loop and the HTTP servers.
#[derive(Debug, Default)]
pub struct Metrics {
    crds: Mutex<Vec<CrdEntry>>,
    leader: AtomicBool,
    acquisitions: AtomicU64,
    losses: AtomicU64,
    lease_errors: AtomicU64,
}

impl Metrics {
    fn with_crd(&self, name: &str, f: impl FnOnce(&mut CrdEntry)) {
        let mut crds = self.crds.lock().unwrap_or_else(|e| e.into_inner());
        match crds.iter_mut().find(|c| c.name == name) {
            Some(entry) => f(entry),
            None => {
                let mut entry = CrdEntry {
                    name: name.to_string(),
                    ..CrdEntry::default()
                };
                f(&mut entry);
                crds.push(entry);
            }
        }
    }

    pub fn set_crd_state(&self, name: &str, state: CrdState) {
        self.with_crd(name, |e| e.state = Some(state));
    }

    pub fn set_crd_established(&self, name: &str) {
        self.with_crd(name, |e| e.established = true);
    }

    pub fn set_leader(&self, leader: bool) {
        let was = self.leader.swap(leader, Ordering::SeqCst);
        if leader && !was {
            self.acquisitions.fetch_add(1, Ordering::Relaxed);
        } else if !leader && was {
            self.losses.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    pub fn count_lease_error(&self) {
        self.lease_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Ready once every CRD we know of is Established (and there is at least one).
    pub fn ready(&self) -> bool {
        let crds = self.crds.lock().unwrap_or_else(|e| e.into_inner());
        !crds.is_empty() && crds.iter().all(|c| c.established)
    }

    /// Prometheus text exposition format, version 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP tetra_operator_crd_install_result How the install of each CRD at start \
             ended (1 for the current result).\n# TYPE tetra_operator_crd_install_result gauge\n",
        );
        let crds = self.crds.lock().unwrap_or_else(|e| e.into_inner());
        for c in crds.iter() {
            for result in CRD_STATES {
                let v = u8::from(c.state.map(CrdState::label) == Some(result));
                let _ = writeln!(
                    out,
                    "tetra_operator_crd_install_result{{crd=\"{}\",result=\"{result}\"}} {v}",
                    c.name
                );
            }
        }
        out.push_str(
            "# HELP tetra_operator_crd_established Whether each CRD is Established.\n\
             # TYPE tetra_operator_crd_established gauge\n",
        );
        for c in crds.iter() {
            let _ = writeln!(
                out,
                "tetra_operator_crd_established{{crd=\"{}\"}} {}",
                c.name,
                u8::from(c.established)
            );
        }
        drop(crds);
        let _ = write!(
            out,
            "# HELP tetra_operator_leader Whether this replica holds the leader lease.\n\
             # TYPE tetra_operator_leader gauge\n\
             tetra_operator_leader {}\n\
             # HELP tetra_operator_leader_acquisitions_total Times this replica became leader.\n\
             # TYPE tetra_operator_leader_acquisitions_total counter\n\
             tetra_operator_leader_acquisitions_total {}\n\
             # HELP tetra_operator_leader_losses_total Times this replica stopped being leader.\n\
             # TYPE tetra_operator_leader_losses_total counter\n\
             tetra_operator_leader_losses_total {}\n\
             # HELP tetra_operator_lease_errors_total Lease requests that failed.\n\
             # TYPE tetra_operator_lease_errors_total counter\n\
             tetra_operator_lease_errors_total {}\n",
            u8::from(self.is_leader()),
            self.acquisitions.load(Ordering::Relaxed),
            self.losses.load(Ordering::Relaxed),
            self.lease_errors.load(Ordering::Relaxed),
        );
        out
    }
}
