//! The tracing policies the agent was asked to load (`--tracing-policy`, gRPC
//! `AddTracingPolicy` & co).
//!
//! Each policy is parsed, validated and compiled with `tetra_crds`, then loaded into the
//! kernel by the generic sensors: all its hooks or none. A valid policy that cannot be
//! attached is kept with state `TP_STATE_LOAD_ERROR` and the reason; the registry never
//! reports a policy as enabled while nothing is attached. Loading one policy never touches
//! the others.
//!
//! Nothing given is invisible: a policy refused before it compiles (invalid, unsupported
//! feature) or because its name is taken is listed too, with state `TP_STATE_ERROR` and
//! the reason, as a "refusal" row. Refusals hold no name: only accepted policies do. A
//! refusal is replaced by the next attempt of the same submitter (domain and source file)
//! at that name, and deleted like any policy.
pub mod scope;

use std::sync::Arc;

use tetra_crds::compile::{AttachTarget, UprobeLocation};
use tetra_crds::CompiledPolicy;
use tetra_proto::tetragon::{
    HookState, HookStatus, TracingPolicyActionCounters, TracingPolicyMode,
    TracingPolicySelectorActionCounters, TracingPolicyState, TracingPolicyStats,
    TracingPolicyStatus,
};

use crate::sensors::generic::attach::program_for;
use crate::sensors::generic::{load_scoped_policy, GenericShared, LoadedPolicy, PolicyTable, ACTION_COUNTERS};
use scope::{is_scoped, PolicyScope};

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
    /// The file it was read from (`--tracing-policy`, `--tracing-policy-dir`), else empty.
    source: String,
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
    /// Why there are no sensors, when that is known (e.g. no kernel BTF).
    no_sensors: Option<String>,
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

/// Name and namespace of a policy document that may not validate, to list its refusal.
fn identity(yaml: &str) -> Option<(String, String)> {
    let doc = tetra_crds::validate::parse_yaml(yaml).ok()?;
    let text = |key: &str| doc.get("metadata")?.get(key)?.as_str().map(str::to_string);
    Some((text("name").filter(|n| !n.is_empty())?, text("namespace").unwrap_or_default()))
}

/// A file's policy whose document names none is listed under the file's name.
fn file_identity(source: &str) -> Option<(String, String)> {
    let file = std::path::Path::new(source).file_name()?.to_string_lossy().into_owned();
    Some((file, String::new()))
}

/// Where a policy came from, for messages: its file, else its domain.
fn origin(domain: &str, source: &str) -> String {
    if source.is_empty() {
        format!("domain {domain}")
    } else {
        source.to_string()
    }
}

impl PolicyRegistry {
    /// Policy `name`: the accepted one (which holds the name) before any refusal.
    fn find(&self, name: &str, namespace: &str, domain: &str) -> Option<usize> {
        let matches = |e: &Entry| {
            e.name == name && e.namespace == namespace && (domain.is_empty() || e.domain == domain)
        };
        let accepted = self.entries.iter().position(|e| matches(e) && e.compiled.is_some());
        accepted.or_else(|| self.entries.iter().position(matches))
    }

    /// The accepted policy holding `name` in `namespace`, whatever its domain.
    fn holder(&self, name: &str, namespace: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name && e.namespace == namespace && e.compiled.is_some())
    }

    /// Forgets the earlier refusals of (`domain`, `source`) at this name.
    fn forget_refusals(&mut self, name: &str, namespace: &str, domain: &str, source: &str) {
        self.entries.retain(|e| {
            e.compiled.is_some() || !(e.name == name && e.namespace == namespace && e.domain == domain && e.source == source)
        });
    }

    /// Lists a policy that was refused before loading, with the reason.
    fn refuse(&mut self, name: &str, namespace: &str, domain: &str, source: &str, reason: String) {
        self.forget_refusals(name, namespace, domain, source);
        self.put(name, namespace, domain, source, TracingPolicyState::TpStateError, reason);
    }

    pub fn with_sensors(sensors: PolicySensors) -> Self {
        PolicyRegistry { sensors: Some(sensors), ..Default::default() }
    }

    /// A registry that lists policies without loading them, each in an error state
    /// naming `reason` (the agent runs on a node where nothing BPF can load).
    pub fn without_sensors(reason: String) -> Self {
        PolicyRegistry { no_sensors: Some(reason), ..Default::default() }
    }

    /// Attaches an entry's hooks in its current mode; records the outcome in its state.
    fn load(&mut self, i: usize) {
        self.attach(i);
        // What a load allocated and freed (libbpf's object, the kernel BTF) leaves no pages.
        crate::sys::release_free_memory();
    }

    fn attach(&mut self, i: usize) {
        let entry = &mut self.entries[i];
        entry.loaded = None;
        let Some(sensors) = &self.sensors else {
            let reason = self.no_sensors.as_deref().unwrap_or(NO_SENSORS);
            entry.state = TracingPolicyState::TpStateLoadError;
            entry.error = format!("{reason}: {} hook(s) not attached", entry.hooks.len());
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
            drop(loaded);
            crate::sys::release_free_memory();
        }
    }

    /// Adds a policy from YAML and attaches it. `mode` overrides the policy's own
    /// `policy-mode` option. Returns the new policy's id; a valid policy whose hooks cannot
    /// be attached is kept (state `LOAD_ERROR`, listed with its reason) and reported as
    /// `CannotEnable`. A policy refused before loading (`Invalid`, `Exists`) is listed as a
    /// refusal when its document names it.
    pub fn add(
        &mut self,
        yaml: &str,
        domain: &str,
        mode: Option<TracingPolicyMode>,
    ) -> Result<u64, RegistryError> {
        self.add_from(yaml, domain, "", mode)
    }

    /// [`Self::add`] of a policy read from file `source`.
    pub fn add_from(
        &mut self,
        yaml: &str,
        domain: &str,
        source: &str,
        mode: Option<TracingPolicyMode>,
    ) -> Result<u64, RegistryError> {
        let domain = if domain.is_empty() { DEFAULT_DOMAIN } else { domain };
        let policy = match tetra_crds::check_policy_yaml(yaml) {
            Ok(policy) => policy,
            Err(errors) => {
                let errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                if let Some((name, namespace)) = identity(yaml).or_else(|| file_identity(source)) {
                    self.refuse(&name, &namespace, domain, source, format!("invalid tracing policy: {}", errors.join("; ")));
                }
                return Err(RegistryError::Invalid(errors));
            }
        };
        let namespace = policy.workloads.namespace.clone().unwrap_or_default();
        // Names are unique per namespace across domains, as upstream.
        if let Some(holder) = self.holder(&policy.name, &namespace) {
            let err = RegistryError::Exists(display_name(&policy.name, &namespace));
            // The same submitter giving its policy again adds nothing new to list.
            if holder.domain != domain || holder.source != source {
                let reason = format!(
                    "duplicate name: tracing policy {} is already loaded from {}; {} not loaded",
                    display_name(&policy.name, &namespace),
                    origin(&holder.domain, &holder.source),
                    if source.is_empty() { "this one is" } else { source },
                );
                tracing::error!("{reason}");
                self.refuse(&policy.name, &namespace, domain, source, reason);
            }
            return Err(err);
        }
        self.forget_refusals(&policy.name, &namespace, domain, source);
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
            source: source.to_string(),
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
    /// is left alone (`Exists`) and the object listed as refused.
    pub fn replace(
        &mut self,
        name: &str,
        namespace: &str,
        domain: &str,
        yaml: &str,
    ) -> Result<u64, RegistryError> {
        self.remove_all(name, namespace, domain);
        let result = self.add(yaml, domain, None);
        if let Err(RegistryError::Invalid(errors)) = &result {
            // Listed under the object's name even when the document's own is unreadable.
            let reason = format!("invalid tracing policy: {}", errors.join("; "));
            self.refuse(name, namespace, domain, "", reason);
        }
        result
    }

    /// Lists policy file `source` as refused, when it cannot even be read.
    pub fn refuse_file(&mut self, domain: &str, source: &str, reason: String) {
        if let Some((name, namespace)) = file_identity(source) {
            self.refuse(&name, &namespace, domain, source, reason);
        }
    }

    /// Unloads and forgets every entry of `domain` with that name (its policy and refusals).
    fn remove_all(&mut self, name: &str, namespace: &str, domain: &str) {
        while let Some(i) = self.find(name, namespace, domain) {
            self.unload(i);
            self.entries.remove(i);
        }
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
        self.remove_all(name, namespace, domain);
        self.put(name, namespace, domain, "", state, reason);
    }

    fn put(&mut self, name: &str, namespace: &str, domain: &str, source: &str, state: TracingPolicyState, reason: String) {
        self.next_id += 1;
        self.entries.push(Entry {
            id: self.next_id,
            name: name.to_string(),
            namespace: namespace.to_string(),
            domain: domain.to_string(),
            source: source.to_string(),
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
            .filter(|i| self.entries[*i].compiled.is_some())
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

    /// Removes the entries of exited tasks from the loaded policies' maps
    /// (`sensors::generic::sweep`); returns how many.
    pub fn sweep(&self, procfs: &std::path::Path) -> usize {
        self.entries.iter().filter_map(|e| e.loaded.as_ref()).map(|l| l.sweep(procfs)).sum()
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
        info: if e.source.is_empty() { String::new() } else { format!("file {}", e.source) },
        kernel_memory_bytes: e.loaded.as_ref().map_or(0, LoadedPolicy::kernel_memory),
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


/// [`PolicyRegistry::sweep`] every `period`, on the async runtime, for as long as it runs.
pub async fn sweep_every(policies: Arc<std::sync::Mutex<PolicyRegistry>>, procfs: std::path::PathBuf, period: std::time::Duration) {
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let removed = policies.lock().unwrap_or_else(|e| e.into_inner()).sweep(&procfs);
        if removed > 0 {
            tracing::debug!("removed {removed} policy map entries of exited tasks");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: writes\nspec:\n  kprobes:\n  - call: sys_write\n    syscall: true\n";

    #[test]
    fn without_sensors_the_reason_is_each_policys_error() {
        let mut r = PolicyRegistry::without_sensors(crate::sys::NO_BTF.into());
        assert!(matches!(r.add(GOOD, "", None), Err(RegistryError::CannotEnable { .. })));
        let p = &r.list("")[0];
        assert_eq!(p.state, TracingPolicyState::TpStateLoadError as i32);
        assert_eq!(p.error, format!("{}: 1 hook(s) not attached", crate::sys::NO_BTF));
    }

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
        let list = r.list("");
        assert_eq!(list.len(), 1, "listed as refused: {list:?}");
        assert_eq!((list[0].name.as_str(), list[0].state), ("bad", TracingPolicyState::TpStateError as i32));
        assert!(list[0].error.starts_with("invalid tracing policy: ") && list[0].error.contains("nosuchtype"), "{}", list[0].error);
        assert_eq!(r.count(TracingPolicyState::TpStateError), 1);
        // The next attempt replaces the refusal; a valid one under that name takes its place.
        assert!(r.add(bad, "", None).is_err());
        assert_eq!(r.list("").len(), 1);
        assert!(r.add(&GOOD.replace("writes", "bad"), "", None).is_err(), "no sensors");
        let list = r.list("");
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0].state, TracingPolicyState::TpStateLoadError as i32);
        // Unsupported features are refused before compiling, and listed the same way.
        let enforcer = "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: enf\nspec:\n  enforcers:\n  - calls: [sys_write]\n";
        assert!(matches!(r.add(enforcer, "", None), Err(RegistryError::Invalid(_))));
        let enf = r.list("").into_iter().find(|p| p.name == "enf").expect("listed");
        assert!(enf.error.contains("unsupported: enforcers at spec.enforcers"), "{}", enf.error);
        r.delete("enf", "", "").unwrap();
        // A document without a name: a file's is listed under the file name, gRPC's not.
        assert!(r.add("kind: [", "", None).is_err());
        assert!(r.add_from("kind: [", "static", "/etc/tp/broken.yaml", None).is_err());
        let names: Vec<String> = r.list("").into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["bad", "broken.yaml"]);
    }

    #[test]
    fn duplicate_names_are_listed_as_refused_naming_the_winner() {
        let mut r = PolicyRegistry::default();
        assert!(r.add_from(GOOD, "static", "/d/a.yaml", None).is_err(), "no sensors");
        assert_eq!(r.add_from(GOOD, "static", "/d/b.yaml", None), Err(RegistryError::Exists("\"writes\"".into())));
        assert_eq!(r.add_from(GOOD, "static", "/d/c.yaml", None), Err(RegistryError::Exists("\"writes\"".into())));
        let list = r.list("");
        assert_eq!(list.len(), 3, "{list:?}");
        assert_eq!(list[0].info, "file /d/a.yaml");
        assert_eq!(list[0].state, TracingPolicyState::TpStateLoadError as i32);
        for (p, file) in list[1..].iter().zip(["/d/b.yaml", "/d/c.yaml"]) {
            assert_eq!(p.state, TracingPolicyState::TpStateError as i32);
            assert_eq!(p.info, format!("file {file}"));
            assert_eq!(p.error, format!("duplicate name: tracing policy \"writes\" is already loaded from /d/a.yaml; {file} not loaded"));
        }
        // gRPC giving that name is refused and listed once; its own policy again adds nothing.
        assert!(r.add(GOOD, "", None).is_err());
        assert!(r.add(GOOD, "", None).is_err());
        assert_eq!(r.list("grpc").len(), 1);
        assert!(r.list("grpc")[0].error.contains("already loaded from /d/a.yaml; this one is not loaded"));
        // Delete by name takes the accepted policy first; configure never reaches a refusal.
        r.delete("writes", "", "").unwrap();
        assert_eq!(r.count(TracingPolicyState::TpStateLoadError), 0);
        assert!(matches!(r.configure("writes", "", "", Some(true), None), Err(RegistryError::NotFound(_))));
        assert_eq!(r.count(TracingPolicyState::TpStateError), 3);
        // Once the name is free, the refused file loads when given again (its refusal goes).
        assert!(matches!(r.add_from(GOOD, "static", "/d/b.yaml", None), Err(RegistryError::CannotEnable { .. })));
        assert_eq!(r.count(TracingPolicyState::TpStateError), 2);
        assert_eq!(r.count(TracingPolicyState::TpStateLoadError), 1);
    }

    #[test]
    fn kubernetes_object_whose_name_is_taken_is_listed_refused() {
        let mut r = PolicyRegistry::default();
        assert!(r.add(GOOD, "", None).is_err(), "no sensors");
        assert_eq!(r.replace("writes", "", K8S_DOMAIN, GOOD), Err(RegistryError::Exists("\"writes\"".into())));
        let k8s = r.list(K8S_DOMAIN);
        assert_eq!(k8s.len(), 1);
        assert!(k8s[0].error.contains("already loaded from domain grpc"), "{}", k8s[0].error);
        // The object's deletion removes its row, not the gRPC policy.
        r.delete("writes", "", K8S_DOMAIN).unwrap();
        assert_eq!(r.list("").len(), 1);
        assert_eq!(r.list("")[0].domain, "grpc");
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
