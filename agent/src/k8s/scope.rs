//! Which containers a pod-scoped policy covers, and [`sync`], which keeps every such
//! policy's cgroup map (`crate::policies::scope`) in step with the pod cache and the host's
//! cgroups.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use tetra_crds::compile::WorkloadFilter;

use super::cgroup;
use super::pods::{bare_id, PodInfo, PodStore};
use super::selector::matches;
use crate::policies::scope::PolicyScope;

/// Whether `filter` covers container `container` of `pod`; the container selector sees the
/// container's name as label `name`.
pub fn covers(f: &WorkloadFilter, pod: &PodInfo, container: &str) -> bool {
    let name = BTreeMap::from([("name".to_string(), container.to_string())]);
    f.namespace.as_ref().is_none_or(|ns| *ns == pod.namespace)
        && f.pod_selector
            .as_ref()
            .is_none_or(|s| matches(s, &pod.labels))
        && f.container_selector
            .as_ref()
            .is_none_or(|s| matches(s, &name))
}

/// Fills each scope's map with the cgroup ids (under `root`) of the containers it covers.
pub fn sync(scopes: &[Arc<PolicyScope>], pods: &PodStore, root: &Path) {
    if scopes.is_empty() {
        return;
    }
    let mut by_container: HashMap<String, Vec<u64>> = HashMap::new();
    for (id, c) in cgroup::scan(root) {
        by_container.entry(c.id).or_default().push(id);
    }
    let pods = pods.all();
    for scope in scopes {
        let wanted: HashSet<u64> = pods
            .iter()
            .flat_map(|pod| pod.containers.iter().map(move |c| (pod, c)))
            .filter(|(pod, c)| covers(&scope.filter, pod, &c.name))
            .flat_map(|(_, c)| {
                by_container
                    .get(bare_id(&c.full_id))
                    .into_iter()
                    .flatten()
                    .copied()
            })
            .collect();
        let failed = scope.write(&wanted);
        if failed > 0 {
            tracing::warn!("policy cgroup map: {failed} update(s) failed (map full?)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policies::scope::is_scoped;

    fn pod(ns: &str, app: &str) -> PodInfo {
        PodInfo {
            namespace: ns.into(),
            name: "p".into(),
            uid: "u".into(),
            labels: BTreeMap::from([("app".to_string(), app.to_string())]),
            workload: "p".into(),
            workload_kind: "Pod".into(),
            containers: vec![],
        }
    }

    #[test]
    fn coverage_by_namespace_pod_and_container_selectors() {
        let filter = |yaml: &str| -> WorkloadFilter {
            let compiled = tetra_crds::check_policy_yaml(yaml).unwrap();
            compiled.workloads
        };
        let namespaced = filter("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicyNamespaced\nmetadata: {name: t, namespace: shop}\nspec:\n  tracepoints: [{subsystem: syscalls, event: sys_enter_openat}]\n");
        assert!(is_scoped(&namespaced));
        let selected = filter("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: t}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  containerSelector: {matchExpressions: [{key: name, operator: In, values: [main]}]}\n  tracepoints: [{subsystem: syscalls, event: sys_enter_openat}]\n");
        let plain = filter("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: t}\nspec:\n  tracepoints: [{subsystem: syscalls, event: sys_enter_openat}]\n");
        assert!(!is_scoped(&plain));
        assert!(covers(&namespaced, &pod("shop", "web"), "main"));
        assert!(!covers(&namespaced, &pod("default", "web"), "main"));
        assert!(covers(&selected, &pod("default", "web"), "main"));
        assert!(!covers(&selected, &pod("default", "web"), "sidecar"));
        assert!(!covers(&selected, &pod("default", "db"), "main"));
    }
}
