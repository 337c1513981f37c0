//! The pure policy compiler: a validated spec becomes per-hook configuration that BPF
//! programs read (attach target, argument type codes, selector blob, map contents).
//! No libbpf, no async runtime, no I/O.

pub mod encoding;
#[cfg(test)]
mod golden_tests;
mod lower;

pub use crate::values::arch::{syscall_number, syscall_symbol, syscall_symbol_for, Arch, TARGET_ARCH};
pub use crate::values::maps::{LpmEntry, LpmKind, ValueMap};
pub use encoding::{decode, encode, DecodeError, SelectorConfig};

use crate::error::PolicyError;
use crate::types::{
    ArgOperator, ArgType, LabelSelector, TracingPolicy, TracingPolicyNamespaced, TracingPolicySpec,
};
use crate::validate::{validate_spec, PolicyKind};

/// Where a hook attaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachTarget {
    /// kprobe (plus kretprobe when `return_probe`).
    Kprobe {
        symbol: String,
        syscall: bool,
        return_probe: bool,
    },
    /// fentry (plus fexit when `return_probe`).
    Fentry {
        symbol: String,
        syscall: bool,
        return_probe: bool,
    },
    /// Tracepoint `subsystem/event`, raw when `raw`.
    Tracepoint {
        subsystem: String,
        event: String,
        raw: bool,
    },
    /// uprobe on `path` at a symbol or offset/address (plus uretprobe).
    Uprobe {
        path: String,
        location: UprobeLocation,
        ref_ctr_offset: Option<u64>,
        return_probe: bool,
    },
    /// BPF LSM hook.
    Lsm { hook: String },
    /// USDT probe `provider:name` of the binary at `path` (its `.note.stapsdt` entries).
    Usdt {
        path: String,
        provider: String,
        name: String,
    },
}

/// Where in a binary a uprobe attaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UprobeLocation {
    Symbol(String),
    Offset(u64),
    Address(u64),
}

/// One recorded argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledArg {
    /// Argument position in the call (or tracepoint format field index).
    pub index: u32,
    pub ty: ArgType,
    /// [`type_code`] of `ty`.
    pub type_code: u32,
    /// 1-based index of the size argument (0 = none).
    pub size_arg_index: u32,
    pub return_copy: bool,
    pub max_data: bool,
    pub label: Option<String>,
}

/// Everything the sensors need for one attach point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledHook {
    /// Path of the spec entry this hook comes from, e.g. `spec.kprobes[2]`.
    pub source: String,
    pub attach: AttachTarget,
    pub message: Option<String>,
    pub tags: Vec<String>,
    /// Recorded arguments; selector `slot`s index this list.
    pub args: Vec<CompiledArg>,
    pub return_arg: Option<CompiledArg>,
    /// Action code run on the return value (TrackSock=11 / UntrackSock=12).
    pub return_arg_action: Option<u32>,
    /// Selectors in structured form (what `selector_blob` encodes).
    pub selectors: Vec<SelectorConfig>,
    /// The encoded selectors (see [`encoding`]).
    pub selector_blob: Vec<u8>,
    /// Map contents referenced by id from selectors.
    pub maps: Vec<ValueMap>,
    /// Strings referenced by id from actions (GetUrl URLs, DnsLookup names).
    pub strings: Vec<String>,
    /// Skip this hook when its symbol does not exist.
    pub ignore_missing: bool,
}

impl CompiledHook {
    /// Every action of the hook's selectors, matchActions and matchReturnActions.
    pub fn actions(&self) -> impl Iterator<Item = &encoding::ActionConfig> {
        self.selectors.iter().flat_map(|s| s.actions.iter().chain(&s.return_actions))
    }

    /// The string a GetUrl/DnsLookup action names by id (its first parameter).
    pub fn action_string(&self, action: &encoding::ActionConfig) -> Option<&str> {
        let id = usize::try_from(*action.params.first()?).ok()?;
        self.strings.get(id).map(String::as_str)
    }
}

/// Override implementation requested by `override-method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverrideMethod {
    FmodRet,
    OverrideReturn,
}

/// Recognised `spec.options`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyOptions {
    pub disable_kprobe_multi: bool,
    pub disable_uprobe_multi: bool,
    pub override_method: Option<OverrideMethod>,
    /// `policy-mode: monitor`: actions other than Post/NoPost are not enforced.
    pub monitor_only: bool,
    pub sleepable_preload_size: Option<u32>,
}

/// Which workloads the policy applies to; resolved by the agent (pod/container cache).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadFilter {
    /// Namespace of a namespaced policy.
    pub namespace: Option<String>,
    pub pod_selector: Option<LabelSelector>,
    pub container_selector: Option<LabelSelector>,
    /// `Some` = host workloads selected (`hostSelector: {}`).
    pub host_selector: Option<LabelSelector>,
    pub node_selector: Option<LabelSelector>,
}

/// A compiled policy, ready for the sensors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledPolicy {
    pub name: String,
    pub hooks: Vec<CompiledHook>,
    pub options: PolicyOptions,
    /// Emit loader events.
    pub loader: bool,
    pub workloads: WorkloadFilter,
}

/// Code of an argument type in the blob and in hook configs: its position in the CRD enum
/// (`auto` = 0, `int` = 1, ... `bpf_prog` = 51).
pub fn type_code(ty: ArgType) -> u32 {
    ty as u32
}

/// Code of an operator in the blob: its position in the CRD enum plus one (`Equal` = 1).
/// Aliases share a code (`GreaterThan` encodes as `GT`, `LessThan` as `LT`).
pub fn op_code(op: ArgOperator) -> u32 {
    let canonical = match op {
        ArgOperator::GreaterThan => ArgOperator::Gt,
        ArgOperator::LessThan => ArgOperator::Lt,
        other => other,
    };
    canonical as u32 + 1
}

/// Validates and compiles a cluster-scoped policy.
pub fn compile(policy: &TracingPolicy) -> Result<CompiledPolicy, Vec<PolicyError>> {
    let name = policy.metadata.name.clone().unwrap_or_default();
    compile_spec(PolicyKind::Cluster, &name, None, &policy.spec)
}

/// Validates and compiles a namespaced policy.
pub fn compile_namespaced(
    policy: &TracingPolicyNamespaced,
) -> Result<CompiledPolicy, Vec<PolicyError>> {
    let name = policy.metadata.name.clone().unwrap_or_default();
    compile_spec(
        PolicyKind::Namespaced,
        &name,
        policy.metadata.namespace.as_deref(),
        &policy.spec.0,
    )
}

/// Validates and compiles a spec. Returns every validation error, or the compiled policy.
pub fn compile_spec(
    kind: PolicyKind,
    name: &str,
    namespace: Option<&str>,
    spec: &TracingPolicySpec,
) -> Result<CompiledPolicy, Vec<PolicyError>> {
    let errors = validate_spec(kind, spec);
    if !errors.is_empty() {
        return Err(errors);
    }
    let hooks = lower::hooks(spec)?;
    let mut options = PolicyOptions::default();
    for opt in spec.options.iter().flatten() {
        let v = opt.value.as_deref().unwrap_or("");
        match opt.name.as_str() {
            "disable-kprobe-multi" => options.disable_kprobe_multi = matches!(v, "" | "true" | "1"),
            "disable-uprobe-multi" => options.disable_uprobe_multi = matches!(v, "" | "true" | "1"),
            "override-method" => {
                options.override_method = Some(if v == "fmod-ret" {
                    OverrideMethod::FmodRet
                } else {
                    OverrideMethod::OverrideReturn
                })
            }
            "policy-mode" => options.monitor_only = v == "monitor",
            "sleepable-preload-size" => options.sleepable_preload_size = v.parse().ok(),
            _ => {}
        }
    }
    Ok(CompiledPolicy {
        name: name.to_string(),
        hooks,
        options,
        loader: spec.loader.unwrap_or(false),
        workloads: WorkloadFilter {
            namespace: namespace.map(str::to_string),
            pod_selector: spec.pod_selector.clone(),
            container_selector: spec.container_selector.clone(),
            host_selector: spec.host_selector.clone(),
            node_selector: spec.node_selector.clone(),
        },
    })
}
