//! Rust types of the `cilium.io/v1alpha1` TracingPolicy CRDs.
//!
//! Field names follow the upstream JSON names exactly so that a policy written for Cilium
//! Tetragon deserializes unchanged. Everything optional upstream is an `Option` here so that
//! presence survives a round trip (the validator needs to know what the user wrote).

mod args;
mod hooks;
mod selectors;

/// The YAML spelling of a unit enum variant: what serde writes for it.
fn yaml_name<T: serde::Serialize + std::fmt::Debug>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{value:?}"),
    }
}

pub use args::{ArgType, KProbeArg};
pub use hooks::{
    EnforcerSpec, KProbeIgnore, KProbeSpec, ListSpec, ListType, LsmHookSpec, OptionSpec,
    TracepointSpec, UProbeIgnore, UProbeSpec, UsdtSpec,
};
pub use selectors::{
    ActionSelector, ActionType, ArgOperator, ArgSelector, BinaryOperator, BinarySelector,
    CapabilitiesSelector, CapabilityType, HostSelector, KProbeSelector, LabelSelector,
    LabelSelectorOperator, LabelSelectorRequirement, NamespaceChangesSelector, NamespaceSelector,
    NamespaceType, PidSelector, SetOperator, WorkloadSelector,
};

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use std::collections::BTreeMap;

/// API group of all our custom resources.
pub const GROUP: &str = "cilium.io";
/// API version of the TracingPolicy kinds.
pub const VERSION: &str = "v1alpha1";

/// The spec shared by `TracingPolicy` and `TracingPolicyNamespaced`.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "cilium.io",
    version = "v1alpha1",
    kind = "TracingPolicy",
    plural = "tracingpolicies",
    singular = "tracingpolicy",
    shortname = "tgtp",
    category = "tetragon"
)]
#[serde(rename_all = "camelCase")]
pub struct TracingPolicySpec {
    /// Kernel function hooks (kprobes / kretprobes).
    pub kprobes: Option<Vec<KProbeSpec>>,
    /// Kernel tracepoints (and raw tracepoints with `raw: true`).
    pub tracepoints: Option<Vec<TracepointSpec>>,
    /// Emit loader events (mmapped executables/libraries with build id).
    pub loader: Option<bool>,
    /// User space function hooks.
    pub uprobes: Option<Vec<UProbeSpec>>,
    /// BPF LSM hooks.
    pub lsmhooks: Option<Vec<LsmHookSpec>>,
    /// USDT probes.
    pub usdts: Option<Vec<UsdtSpec>>,
    /// Kernel functions attached with fentry/fexit; same schema as `kprobes`.
    pub fentries: Option<Vec<KProbeSpec>>,
    /// Pods the policy applies to (`{}` = all pods, absent = everything).
    pub pod_selector: Option<LabelSelector>,
    /// Containers the policy applies to (only the `name` key is supported).
    pub container_selector: Option<LabelSelector>,
    /// Host (non-pod) workloads: only absent or `{}` is allowed.
    pub host_selector: Option<HostSelector>,
    /// Nodes that load the policy.
    pub node_selector: Option<LabelSelector>,
    /// Named lists referenced as `list:NAME`.
    pub lists: Option<Vec<ListSpec>>,
    /// Enforcer programs fed by the NotifyEnforcer action.
    pub enforcers: Option<Vec<EnforcerSpec>>,
    /// Policy options (`name`/`value` pairs).
    pub options: Option<Vec<OptionSpec>>,
    /// Named selector fragments referenced from selectors via `macros`.
    pub selectors_macros: Option<BTreeMap<String, KProbeSelector>>,
}

/// Spec of the namespaced kind: the same fields as [`TracingPolicySpec`].
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "cilium.io",
    version = "v1alpha1",
    kind = "TracingPolicyNamespaced",
    plural = "tracingpoliciesnamespaced",
    singular = "tracingpolicynamespaced",
    shortname = "tgtpn",
    category = "tetragon",
    namespaced
)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct TracingPolicyNamespacedSpec(pub TracingPolicySpec);

impl std::ops::Deref for TracingPolicyNamespacedSpec {
    type Target = TracingPolicySpec;
    fn deref(&self) -> &TracingPolicySpec {
        &self.0
    }
}
