//! The cgroup map of a pod-scoped policy: a TracingPolicyNamespaced applies to the pods of
//! its namespace, `podSelector` and `containerSelector` to matching pods and containers. The
//! registry gives each such policy a BPF hash map of the cgroup ids of its containers, shared
//! by its hooks and checked first by the generic programs (`cfg.cgroup_filter`); the
//! Kubernetes side (`crate::k8s::scope`) writes the ids into it.
use std::collections::HashSet;
use std::sync::Mutex;

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};
use tetra_crds::compile::WorkloadFilter;

/// Containers one policy can cover on a node.
const MAX_CGROUPS: u32 = 32768;

/// The allowed-cgroup map of one pod-scoped policy and what was last written to it.
pub struct PolicyScope {
    pub filter: WorkloadFilter,
    pub map: MapHandle,
    written: Mutex<HashSet<u64>>,
}

/// Whether a policy is limited to some pods (and so needs a cgroup map).
pub fn is_scoped(filter: &WorkloadFilter) -> bool {
    filter.namespace.is_some()
        || filter.pod_selector.is_some()
        || filter.container_selector.is_some()
}

impl PolicyScope {
    pub fn new(filter: &WorkloadFilter) -> Result<PolicyScope, String> {
        let opts = libbpf_rs::libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        };
        let map = MapHandle::create(MapType::Hash, Some("tetra_scope"), 8, 1, MAX_CGROUPS, &opts)
            .map_err(|e| format!("creating the policy's cgroup map: {e}"))?;
        Ok(PolicyScope {
            filter: filter.clone(),
            map,
            written: Mutex::new(HashSet::new()),
        })
    }

    /// Makes the map hold exactly `wanted`; returns the ids whose update failed.
    pub fn write(&self, wanted: &HashSet<u64>) -> usize {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let mut failed = 0;
        for id in written.difference(wanted) {
            if self.map.delete(&id.to_ne_bytes()).is_err() {
                failed += 1;
            }
        }
        for id in wanted.difference(&written) {
            if self
                .map
                .update(&id.to_ne_bytes(), &[1], MapFlags::ANY)
                .is_err()
            {
                failed += 1;
            }
        }
        *written = wanted.clone();
        failed
    }
}
