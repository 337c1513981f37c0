//! The tracing policies the agent was asked to load (`--tracing-policy`, gRPC
//! `AddTracingPolicy` & co).
//!
//! Each policy is parsed, validated and compiled with `tetra_crds`, then loaded into the
//! kernel by the generic sensors: all its hooks or none. A valid policy that cannot be
//! attached is kept with state `TP_STATE_LOAD_ERROR` and the reason; the registry never
//! reports a policy as enabled while nothing is attached. Loading one policy never touches
//! the others.
use std::sync::Arc;

use tetra_crds::compile::{AttachTarget, UprobeLocation};
use tetra_crds::CompiledPolicy;
use tetra_proto::tetragon::{
    HookState, HookStatus, TracingPolicyActionCounters, TracingPolicyMode,
    TracingPolicySelectorActionCounters, TracingPolicyState, TracingPolicyStats,
    TracingPolicyStatus,
};

use crate::k8s::scope::{is_scoped, PolicyScope};
use crate::sensors::generic::attach::program_for;
use crate::sensors::generic::{load_scoped_policy, GenericShared, LoadedPolicy, PolicyTable, ACTION_COUNTERS};

/// Why the hooks of a valid policy are not attached when the registry has no sensors.
pub const NO_SENSORS: &str = "kernel policy sensors are not available";
pub const DEFAULT_DOMAIN: &str = "grpc";
/// Policies of TracingPolicy objects; only the Kubernetes controller adds or deletes them.
pub const K8S_DOMAIN: &str = "k8s";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("invalid tracing policy:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[error("tracing policy {0} already exists")]
    Exists(String),
    #[error("tracing policy {0} not found")]
    NotFound(String),
    #[error("cannot enable tracing policy {name}: {reason}")]
    CannotEnable { name: String, reason: String },
    #[error("tracing policy {0} belongs to the Kubernetes object of that name: delete the object instead")]
    Owned(String),
}

struct Entry {
    id: u64,
    name: String,
    namespace: String,
    domain: String,
    mode: TracingPolicyMode,
    state: TracingPolicyState,
    error: String,
    hooks: Vec<String>,
    /// None for an object listed only to report why it is not loaded (invalid, skipped).
    compiled: Option<CompiledPolicy>,
    /// Present exactly while the state is enabled; dropping it detaches the hooks.
    loaded: Option<LoadedPolicy>,
    /// The allowed-cgroup map of a pod-scoped policy, kept up to date by the pod scope.
    scope: Option<Arc<PolicyScope>>,
}

/// The kernel side: what loads policies, and where the event thread finds them.
pub struct PolicySensors {
    pub shared: GenericShared,
    pub table: Arc<PolicyTable>,
}

#[derive(Default)]
pub struct PolicyRegistry {
    entries: Vec<Entry>,
    next_id: u64,
    sensors: Option<PolicySensors>,
}

fn display_name(name: &str, namespace: &str) -> String {
    if namespace.is_empty() {
        format!("{name:?}")
    } else {
        format!("{namespace}/{name}")
    }
}

fn describe(target: &AttachTarget) -> String {
    match target {
        AttachTarget::Kprobe { symbol, return_probe, .. } => {
            format!("kprobe {symbol}{}", if *return_probe { " (+kretprobe)" } else { "" })
        }
        AttachTarget::Fentry { symbol, .. } => format!("fentry {symbol}"),
        AttachTarget::Tracepoint { subsystem, event, raw } => {
            format!("{} {subsystem}/{event}", if *raw { "raw_tracepoint" } else { "tracepoint" })
        }
        AttachTarget::Uprobe { path, location, .. } => match location {
            UprobeLocation::Symbol(s) => format!("uprobe {path}:{s}"),
            UprobeLocation::Offset(o) => format!("uprobe {path}+{o:#x}"),
            UprobeLocation::Address(a) => format!("uprobe {path}@{a:#x}"),
        },
        AttachTarget::Lsm { hook } => format!("lsm {hook}"),
        AttachTarget::Usdt { path, provider, name } => format!("usdt {path}:{provider}:{name}"),
    }
}

impl PolicyRegistry {
    fn find(&self, name: &str, namespace: &str, domain: &str) -> Option<usize> {
        self.entries.iter().position(|e| {
            e.name == name && e.namespace == namespace && (domain.is_empty() || e.domain == domain)
        })
    }

    pub fn with_sensors(sensors: PolicySensors) -> Self {
        PolicyRegistry { sensors: Some(sensors), ..Default::default() }
    }

    /// Attaches an entry's hooks in its current mode; records the outcome in its state.
    fn load(&mut self, i: usize) {
        let entry = &mut self.entries[i];
        entry.loaded = None;
        let Some(sensors) = &self.sensors else {
            entry.state = TracingPolicyState::TpStateLoadError;
            entry.error = format!("{NO_SENSORS}: {} hook(s) not attached", entry.hooks.len());
            return;
        };
        let Some(mut compiled) = entry.compiled.clone() else { return };
        compiled.options.monitor_only = entry.mode == TracingPolicyMode::TpModeMonitor;
        if compiled.workloads.host_selector.is_some() {
            // Selecting host processes needs a "not in any container" test in the kernel.
            entry.state = TracingPolicyState::TpStateLoadError;
            entry.error = "spec.hostSelector: selecting host workloads is not supported yet".into();
            return;
        }
        if entry.scope.is_none() && is_scoped(&compiled.workloads) {
            match PolicyScope::new(&compiled.workloads) {
                Ok(scope) => entry.scope = Some(Arc::new(scope)),
                Err(e) => {
                    entry.state = TracingPolicyState::TpStateLoadError;
                    entry.error = e;
                    return;
                }
            }
        }
        let cgroups = entry.scope.as_ref().map(|s| &s.map);
        let started = std::time::Instant::now();
        match load_scoped_policy(&sensors.shared, &compiled, cgroups) {
            Ok(loaded) => {
                sensors.table.insert(loaded.info().clone());
                tracing::info!(
                    "tracing policy {} enabled: {} hook(s) attached in {} ms",
                    display_name(&entry.name, &entry.namespace),
                    loaded.hook_count(),
                    started.elapsed().as_millis()
                );
                entry.loaded = Some(loaded);
                entry.state = TracingPolicyState::TpStateEnabled;
                entry.error.clear();
            }
            Err(e) => {
                tracing::error!(
                    "tracing policy {} not loaded: {e}",
                    display_name(&entry.name, &entry.namespace)
                );
                entry.state = TracingPolicyState::TpStateLoadError;
                entry.error = e.to_string();
            }
        }
    }

    /// Detaches an entry's hooks, if attached.
    fn unload(&mut self, i: usize) {
        if let Some(loaded) = self.entries[i].loaded.take() {
            if let Some(sensors) = &self.sensors {
                sensors.table.remove(loaded.info().id);
            }
        }
    }

    /// Adds a policy from YAML and attaches it. `mode` overrides the policy's own
    /// `policy-mode` option. Returns the new policy's id; a valid policy whose hooks cannot
    /// be attached is kept (state `LOAD_ERROR`, listed with its reason) and reported as
    /// `CannotEnable`.
    pub fn add(
        &mut self,
        yaml: &str,
        domain: &str,
        mode: Option<TracingPolicyMode>,
    ) -> Result<u64, RegistryError> {
        let policy = tetra_crds::check_policy_yaml(yaml).map_err(|errors| {
            RegistryError::Invalid(errors.iter().map(|e| e.to_string()).collect())
        })?;
        let namespace = policy.workloads.namespace.clone().unwrap_or_default();
        let domain = if domain.is_empty() { DEFAULT_DOMAIN } else { domain };
        // Names are unique per namespace across domains, as upstream.
        if self.find(&policy.name, &namespace, "").is_some() {
            return Err(RegistryError::Exists(display_name(&policy.name, &namespace)));
        }
        let mode = mode.unwrap_or(if policy.options.monitor_only {
            TracingPolicyMode::TpModeMonitor
        } else {
            TracingPolicyMode::TpModeEnforce
        });
        self.next_id += 1;
        self.entries.push(Entry {
            id: self.next_id,
            name: policy.name.clone(),
            namespace,
            domain: domain.to_string(),
            mode,
            state: TracingPolicyState::TpStateLoading,
            error: String::new(),
            hooks: policy
                .hooks
                .iter()
                .map(|h| format!("{}: {}", h.source, describe(&h.attach)))
                .collect(),
            compiled: Some(policy),
            loaded: None,
            scope: None,
        });
        let i = self.entries.len() - 1;
        self.load(i);
        match self.entries[i].state {
            TracingPolicyState::TpStateEnabled => Ok(self.next_id),
            _ => Err(RegistryError::CannotEnable {
                name: display_name(&self.entries[i].name, &self.entries[i].namespace),
                reason: self.entries[i].error.clone(),
            }),
        }
    }

    pub fn delete(
        &mut self,
        name: &str,
        namespace: &str,
        domain: &str,
    ) -> Result<(), RegistryError> {
        let i = self
            .find(name, namespace, domain)
            .ok_or_else(|| RegistryError::NotFound(display_name(name, namespace)))?;
        if self.entries[i].domain == K8S_DOMAIN && domain != K8S_DOMAIN {
            return Err(RegistryError::Owned(display_name(name, namespace)));
        }
        self.unload(i);
        self.entries.remove(i);
        Ok(())
    }

    /// Adds or replaces policy `name` of `domain` (the Kubernetes controller's view of one
    /// object). The old version is unloaded first. A policy that does not validate is listed
    /// with state `TP_STATE_ERROR` and its errors. A policy of another domain with that name
    /// is left alone (`Exists`).
    pub fn replace(
        &mut self,
        name: &str,
        namespace: &str,
        domain: &str,
        yaml: &str,
    ) -> Result<u64, RegistryError> {
        if let Some(i) = self.find(name, namespace, "") {
            if self.entries[i].domain != domain {
                return Err(RegistryError::Exists(display_name(name, namespace)));
            }
            self.unload(i);
            self.entries.remove(i);
        }
        let result = self.add(yaml, domain, None);
        if let Err(RegistryError::Invalid(errors)) = &result {
            self.put_state(name, namespace, domain, TracingPolicyState::TpStateError, errors.join("; "));
        }
        result
    }

    /// Lists policy `name` of `domain` as not loaded, in `state` because of `reason`
    /// (replacing and unloading any previous version of it).
    pub fn put_state(
        &mut self,
        name: &str,
        namespace: &str,
        domain: &str,
        state: TracingPolicyState,
        reason: String,
    ) {
        if let Some(i) = self.find(name, namespace, domain) {
            self.unload(i);
            self.entries.remove(i);
        }
        self.next_id += 1;
        self.entries.push(Entry {
            id: self.next_id,
            name: name.to_string(),
            namespace: namespace.to_string(),
            domain: domain.to_string(),
            mode: TracingPolicyMode::TpModeEnforce,
            state,
            error: reason,
            hooks: Vec::new(),
            compiled: None,
            loaded: None,
            scope: None,
        });
    }

    /// Names and namespaces of the policies of `domain`.
    pub fn names(&self, domain: &str) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter(|e| e.domain == domain)
            .map(|e| (e.name.clone(), e.namespace.clone()))
            .collect()
    }

    /// The cgroup maps of the loaded pod-scoped policies.
    pub fn scopes(&self) -> Vec<Arc<PolicyScope>> {
        self.entries.iter().filter(|e| e.loaded.is_some()).filter_map(|e| e.scope.clone()).collect()
    }

    /// Enable/disable and/or change the mode; a mode change on an enabled policy reloads it.
    pub fn configure(
        &mut self,
        name: &str,
        namespace: &str,
        domain: &str,
        enable: Option<bool>,
        mode: Option<TracingPolicyMode>,
    ) -> Result<(), RegistryError> {
        let i = self
            .find(name, namespace, domain)
            .ok_or_else(|| RegistryError::NotFound(display_name(name, namespace)))?;
        let was_enabled = self.entries[i].state == TracingPolicyState::TpStateEnabled;
        let mode_changed = mode.is_some_and(|m| m != self.entries[i].mode);
        if let Some(mode) = mode {
            self.entries[i].mode = mode;
        }
        let enable = enable.unwrap_or(was_enabled);
        if !enable {
            self.unload(i);
            self.entries[i].state = TracingPolicyState::TpStateDisabled;
            self.entries[i].error.clear();
            return Ok(());
        }
        if was_enabled && !mode_changed {
            return Ok(());
        }
        self.unload(i);
        self.load(i);
        match self.entries[i].state {
            TracingPolicyState::TpStateEnabled => Ok(()),
            _ => Err(RegistryError::CannotEnable {
                name: display_name(name, namespace),
                reason: self.entries[i].error.clone(),
            }),
        }
    }

    /// Policies of `domain` (all when empty), oldest first.
    pub fn list(&self, domain: &str) -> Vec<TracingPolicyStatus> {
        self.entries.iter().filter(|e| domain.is_empty() || e.domain == domain).map(status).collect()
    }

    /// Number of policies per state, for `tetragon_tracingpolicy_loaded{state}`.
    pub fn count(&self, state: TracingPolicyState) -> usize {
        self.entries.iter().filter(|e| e.state == state).count()
    }

    /// Per loaded policy (by name): events its Post rateLimit suppressed so far.
    pub fn rate_limited(&self) -> Vec<(String, u64)> {
        self.entries.iter().filter_map(|e| Some((e.name.clone(), e.loaded.as_ref()?.rate_limited()))).collect()
    }
}

/// One policy as ListTracingPolicies shows it: hook states, the sensors (entry programs)
/// it uses and, while attached, what its selectors did (from the kernel's counters).
fn status(e: &Entry) -> TracingPolicyStatus {
    let hook_state = if e.loaded.is_some() { HookState::StatusLoaded } else { HookState::StatusUnspecified };
    let mut sensors: Vec<String> = Vec::new();
    for hook in e.compiled.iter().flat_map(|c| &c.hooks) {
        let program = program_for(&hook.attach).to_string();
        if !sensors.contains(&program) {
            sensors.push(program);
        }
    }
    TracingPolicyStatus {
        id: e.id,
        name: e.name.clone(),
        namespace: e.namespace.clone(),
        state: e.state as i32,
        error: e.error.clone(),
        mode: e.mode as i32,
        domain: e.domain.clone(),
        sensors,
        hook_statuses: e
            .hooks
            .iter()
            .enumerate()
            .map(|(i, h)| HookStatus {
                section: h.split(':').next().unwrap_or_default().to_string(),
                state: hook_state as i32,
                hook_description: h.clone(),
                hook_idx: i as u32,
            })
            .collect(),
        stats: e.loaded.as_ref().map(|loaded| action_stats(&e.hooks, loaded)),
        ..Default::default()
    }
}

/// The kernel's per-selector action counts of a loaded policy, and their sum.
fn action_stats(hooks: &[String], loaded: &LoadedPolicy) -> TracingPolicyStats {
    let counters = |c: &[u64; ACTION_COUNTERS]| TracingPolicyActionCounters {
        post: c[0],
        signal: c[1],
        monitor_signal: c[2],
        r#override: c[3],
        monitor_override: c[4],
        notify_enforcer: c[5],
        monitor_notify_enforcer: c[6],
        set: c[7],
        monitor_set: c[8],
        nopost: c[9],
    };
    let mut total = [0u64; ACTION_COUNTERS];
    let mut per_selector = Vec::new();
    for (hook, selectors) in hooks.iter().zip(loaded.action_counts()) {
        for (index, c) in selectors.iter().enumerate() {
            if c.iter().all(|n| *n == 0) {
                continue;
            }
            total.iter_mut().zip(c).for_each(|(t, n)| *t += n);
            per_selector.push(TracingPolicySelectorActionCounters {
                hook: hook.clone(),
                selector_index: Some(index as u32),
                action_counters: Some(counters(c)),
            });
        }
    }
    TracingPolicyStats { action_counters: Some(counters(&total)), selector_action_counters: per_selector }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: writes\nspec:\n  kprobes:\n  - call: sys_write\n    syscall: true\n";

    #[test]
    fn valid_policy_is_kept_with_an_honest_load_error() {
        let mut r = PolicyRegistry::default();
        assert!(matches!(r.add(GOOD, "", None), Err(RegistryError::CannotEnable { .. })));
        let id = 1;
        let list = r.list("");
        assert_eq!(list.len(), 1);
        let p = &list[0];
        assert_eq!((p.id, p.name.as_str(), p.domain.as_str()), (id, "writes", "grpc"));
        assert_eq!(p.state, TracingPolicyState::TpStateLoadError as i32);
        assert!(p.error.contains(NO_SENSORS), "{}", p.error);
        assert_eq!(p.mode, TracingPolicyMode::TpModeEnforce as i32);
        assert!(p.hook_statuses[0].hook_description.contains("kprobe"), "{:?}", p.hook_statuses);
        assert_eq!(r.count(TracingPolicyState::TpStateEnabled), 0);
        assert_eq!(r.count(TracingPolicyState::TpStateLoadError), 1);
        assert_eq!(r.add(GOOD, "", None), Err(RegistryError::Exists("\"writes\"".into())));
        assert!(r.list("k8s").is_empty());
    }

    #[test]
    fn invalid_policy_reports_every_error() {
        let mut r = PolicyRegistry::default();
        let bad = "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: bad\nspec:\n  kprobes:\n  - call: sys_write\n    args:\n    - index: 9\n      type: nosuchtype\n    selectors:\n    - matchActions:\n      - action: Explode\n";
        let Err(RegistryError::Invalid(errors)) = r.add(bad, "", None) else {
            panic!("accepted")
        };
        assert!(errors.len() >= 2, "{errors:?}");
        assert!(r.list("").is_empty());
    }

    #[test]
    fn configure_and_delete() {
        let mut r = PolicyRegistry::default();
        assert!(r.add(GOOD, "grpc", None).is_err(), "no sensors: kept, not enabled");
        r.configure("writes", "", "", Some(false), Some(TracingPolicyMode::TpModeMonitor)).unwrap();
        let p = &r.list("")[0];
        assert_eq!(p.state, TracingPolicyState::TpStateDisabled as i32);
        assert_eq!(p.mode, TracingPolicyMode::TpModeMonitor as i32);
        assert!(matches!(
            r.configure("writes", "", "", Some(true), None),
            Err(RegistryError::CannotEnable { .. })
        ));
        assert_eq!(r.list("")[0].state, TracingPolicyState::TpStateLoadError as i32);
        assert_eq!(
            r.delete("writes", "", "k8s"),
            Err(RegistryError::NotFound("\"writes\"".into()))
        );
        r.delete("writes", "", "").unwrap();
        assert!(r.list("").is_empty());
    }
}
