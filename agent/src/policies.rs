//! The tracing policies the agent was asked to load (gRPC `AddTracingPolicy` & co).
//!
//! Each policy is parsed, validated and compiled with `tetra_crds`. The kernel side
//! (generic kprobe/tracepoint/uprobe/LSM sensors) does not exist yet, so a valid policy
//! is kept with state `TP_STATE_LOAD_ERROR` and an error saying so: the registry never
//! reports a policy as enabled while nothing is attached.
use tetra_crds::compile::{AttachTarget, UprobeLocation};
use tetra_crds::CompiledPolicy;
use tetra_proto::tetragon::{
    HookState, HookStatus, TracingPolicyMode, TracingPolicyState, TracingPolicyStatus,
};

/// Why the hooks of a valid policy are not attached.
pub const NO_SENSORS: &str = "kernel policy sensors are not available yet";
pub const DEFAULT_DOMAIN: &str = "grpc";

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
}

#[derive(Debug, Clone)]
struct Entry {
    id: u64,
    name: String,
    namespace: String,
    domain: String,
    mode: TracingPolicyMode,
    state: TracingPolicyState,
    error: String,
    hooks: Vec<String>,
}

#[derive(Debug, Default)]
pub struct PolicyRegistry {
    entries: Vec<Entry>,
    next_id: u64,
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
    }
}

impl PolicyRegistry {
    fn find(&self, name: &str, namespace: &str, domain: &str) -> Option<usize> {
        self.entries.iter().position(|e| {
            e.name == name && e.namespace == namespace && (domain.is_empty() || e.domain == domain)
        })
    }

    /// What loading a compiled policy does today: nothing can be attached.
    fn load(policy: &CompiledPolicy) -> (TracingPolicyState, String) {
        let what = match policy.hooks.len() {
            0 => "the policy has no hooks".to_string(),
            1 => "1 hook not attached".to_string(),
            n => format!("{n} hooks not attached"),
        };
        (TracingPolicyState::TpStateLoadError, format!("{NO_SENSORS}: {what}"))
    }

    /// Adds a policy from YAML. `mode` overrides the policy's own `policy-mode` option.
    /// Returns the new policy's id.
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
        let (state, error) = Self::load(&policy);
        self.next_id += 1;
        self.entries.push(Entry {
            id: self.next_id,
            name: policy.name.clone(),
            namespace,
            domain: domain.to_string(),
            mode,
            state,
            error,
            hooks: policy
                .hooks
                .iter()
                .map(|h| format!("{}: {}", h.source, describe(&h.attach)))
                .collect(),
        });
        Ok(self.next_id)
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
        self.entries.remove(i);
        Ok(())
    }

    /// Enable/disable and/or change the mode. Enabling fails while nothing can be attached;
    /// disabling records the wish (there is nothing to detach).
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
        let entry = &mut self.entries[i];
        if let Some(mode) = mode {
            entry.mode = mode;
        }
        match enable {
            Some(false) => {
                entry.state = TracingPolicyState::TpStateDisabled;
                entry.error.clear();
            }
            Some(true) => {
                let n = entry.hooks.len();
                entry.state = TracingPolicyState::TpStateLoadError;
                entry.error =
                    format!("{NO_SENSORS}: {n} hook{} not attached", if n == 1 { "" } else { "s" });
                return Err(RegistryError::CannotEnable {
                    name: display_name(name, namespace),
                    reason: NO_SENSORS.to_string(),
                });
            }
            None => {}
        }
        Ok(())
    }

    /// Policies of `domain` (all when empty), oldest first.
    pub fn list(&self, domain: &str) -> Vec<TracingPolicyStatus> {
        self.entries
            .iter()
            .filter(|e| domain.is_empty() || e.domain == domain)
            .map(|e| TracingPolicyStatus {
                id: e.id,
                name: e.name.clone(),
                namespace: e.namespace.clone(),
                state: e.state as i32,
                error: e.error.clone(),
                mode: e.mode as i32,
                domain: e.domain.clone(),
                hook_statuses: e
                    .hooks
                    .iter()
                    .enumerate()
                    .map(|(i, h)| HookStatus {
                        section: h.split(':').next().unwrap_or_default().to_string(),
                        state: HookState::StatusUnspecified as i32,
                        hook_description: h.clone(),
                        hook_idx: i as u32,
                    })
                    .collect(),
                ..Default::default()
            })
            .collect()
    }

    /// Number of policies per state, for `tetragon_tracingpolicy_loaded{state}`.
    pub fn count(&self, state: TracingPolicyState) -> usize {
        self.entries.iter().filter(|e| e.state == state).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: writes\nspec:\n  kprobes:\n  - call: sys_write\n    syscall: true\n";

    #[test]
    fn valid_policy_is_kept_with_an_honest_load_error() {
        let mut r = PolicyRegistry::default();
        let id = r.add(GOOD, "", None).unwrap();
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
        let Err(RegistryError::Invalid(errors)) = r.add(bad, "", None) else { panic!("accepted") };
        assert!(errors.len() >= 2, "{errors:?}");
        assert!(r.list("").is_empty());
    }

    #[test]
    fn configure_and_delete() {
        let mut r = PolicyRegistry::default();
        r.add(GOOD, "grpc", None).unwrap();
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
