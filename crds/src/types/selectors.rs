//! Selectors: in-kernel filters and the actions taken when they match.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use std::collections::BTreeMap;

/// One selector. Selectors of a hook are ORed; the filters inside one are ANDed.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KProbeSelector {
    /// Human-readable label used in status and metrics.
    pub label: Option<String>,
    /// PID filters.
    #[serde(rename = "matchPIDs")]
    pub match_pids: Option<Vec<PidSelector>>,
    /// Argument filters.
    pub match_args: Option<Vec<ArgSelector>>,
    /// Filters on `data` entries.
    pub match_data: Option<Vec<ArgSelector>>,
    /// Actions when the selector matches (at most 3).
    pub match_actions: Option<Vec<ActionSelector>>,
    /// Filters on the return value.
    pub match_return_args: Option<Vec<ArgSelector>>,
    /// Actions on return (at most 3).
    pub match_return_actions: Option<Vec<ActionSelector>>,
    /// Binary filter (at most 1).
    #[schemars(length(max = 1))]
    pub match_binaries: Option<Vec<BinarySelector>>,
    /// Parent binary filter (at most 1).
    #[schemars(length(max = 1))]
    pub match_parent_binaries: Option<Vec<BinarySelector>>,
    /// Namespace filters.
    pub match_namespaces: Option<Vec<NamespaceSelector>>,
    /// Namespace change filter.
    pub match_namespace_changes: Option<Vec<NamespaceChangesSelector>>,
    /// Capability filters.
    pub match_capabilities: Option<Vec<CapabilitiesSelector>>,
    /// Capability change filters.
    pub match_capability_changes: Option<Vec<CapabilitiesSelector>>,
    /// Workload filter.
    pub match_workloads: Option<WorkloadSelector>,
    /// Names of `selectorsMacros` whose filters are appended to this selector.
    pub macros: Option<Vec<String>>,
}

/// `In` / `NotIn`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SetOperator {
    In,
    NotIn,
}

/// A PID filter.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PidSelector {
    pub operator: SetOperator,
    pub values: Vec<u32>,
    /// Values are PIDs inside the task's PID namespace.
    #[serde(rename = "isNamespacePID")]
    pub is_namespace_pid: Option<bool>,
    /// Children of matching processes match too.
    pub follow_forks: Option<bool>,
}

/// An argument filter (`matchArgs`, `matchData`, `matchReturnArgs`).
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArgSelector {
    /// Which argument (its `index` for kprobes, its position in `args` for tracepoints).
    #[schemars(range(min = 0))]
    pub index: Option<u32>,
    /// Operand argument positions (CapabilitiesGained).
    pub args: Option<Vec<u32>>,
    pub operator: ArgOperator,
    pub values: Option<Vec<String>>,
}

/// Argument filter operators, spelled as the CRD enum spells them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ArgOperator {
    Equal,
    NotEqual,
    Prefix,
    NotPrefix,
    Postfix,
    NotPostfix,
    GreaterThan,
    LessThan,
    #[serde(rename = "GT")]
    Gt,
    #[serde(rename = "LT")]
    Lt,
    Mask,
    SPort,
    NotSPort,
    SPortPriv,
    NotSportPriv,
    DPort,
    NotDPort,
    DPortPriv,
    NotDPortPriv,
    SAddr,
    NotSAddr,
    DAddr,
    NotDAddr,
    Protocol,
    Family,
    State,
    InMap,
    NotInMap,
    CapabilitiesGained,
    InRange,
    NotInRange,
    SubString,
    SubStringIgnCase,
    CelExpr,
    FileType,
    NotFileType,
}

impl ArgOperator {
    /// The YAML spelling.
    pub fn name(self) -> String {
        super::yaml_name(&self)
    }
}

/// `matchBinaries` / `matchParentBinaries` operators.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum BinaryOperator {
    In,
    NotIn,
    Prefix,
    NotPrefix,
    Postfix,
    NotPostfix,
}

/// A binary path filter.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BinarySelector {
    pub operator: BinaryOperator,
    pub values: Vec<String>,
    /// Children of matching binaries match too (In/NotIn only).
    pub follow_children: Option<bool>,
}

/// Linux namespace types.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum NamespaceType {
    Uts,
    Ipc,
    Mnt,
    Pid,
    PidForChildren,
    Net,
    Time,
    TimeForChildren,
    Cgroup,
    User,
}

/// A namespace filter.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct NamespaceSelector {
    pub namespace: NamespaceType,
    pub operator: SetOperator,
    /// Namespace inode numbers or `host_ns`.
    pub values: Vec<String>,
}

/// A namespace change filter.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct NamespaceChangesSelector {
    pub operator: SetOperator,
    /// Namespace type names.
    pub values: Vec<String>,
}

/// Capability sets.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum CapabilityType {
    #[default]
    Effective,
    Inheritable,
    Permitted,
}

/// A capability filter.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapabilitiesSelector {
    #[serde(rename = "type")]
    pub ty: Option<CapabilityType>,
    pub operator: SetOperator,
    pub is_namespace_capability: Option<bool>,
    /// `CAP_*` names.
    pub values: Vec<String>,
}

/// Actions, spelled as the CRD enum spells them, plus the FollowFD family we keep.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ActionType {
    Post,
    Sigkill,
    Override,
    GetUrl,
    DnsLookup,
    NoPost,
    Signal,
    TrackSock,
    UntrackSock,
    NotifyEnforcer,
    CleanupEnforcerNotification,
    Set,
    #[serde(rename = "FollowFD")]
    FollowFd,
    #[serde(rename = "UnfollowFD")]
    UnfollowFd,
    #[serde(rename = "CopyFD")]
    CopyFd,
}

impl ActionType {
    /// The YAML spelling.
    pub fn name(self) -> String {
        super::yaml_name(&self)
    }
}

/// An action and its parameters.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionSelector {
    pub action: ActionType,
    /// FollowFD/UnfollowFD/CopyFD: index of the fd argument.
    pub arg_fd: Option<u32>,
    /// FollowFD/UnfollowFD/CopyFD: index of the name (file/path) argument.
    pub arg_name: Option<u32>,
    /// GetUrl: URL to fetch.
    pub arg_url: Option<String>,
    /// DnsLookup: name to resolve.
    pub arg_fqdn: Option<String>,
    /// Override/NotifyEnforcer: error to return.
    pub arg_error: Option<i32>,
    /// Signal/NotifyEnforcer: signal number.
    pub arg_sig: Option<i32>,
    /// TrackSock/UntrackSock: index of the socket argument.
    pub arg_sock: Option<i32>,
    /// Set: USDT argument index.
    pub arg_index: Option<i32>,
    /// Set: value to write.
    pub arg_value: Option<i32>,
    /// Uprobe Override: register assignments.
    pub arg_regs: Option<Vec<String>>,
    /// Uprobe Override: redirect to symbol.
    pub arg_new_symbol: Option<String>,
    /// Uprobe Override: redirect to address.
    pub arg_new_addr: Option<i64>,
    /// Uprobe Override: redirect to offset.
    pub arg_new_offset: Option<i64>,
    /// Post: at most one event per this period ("N", "Ns", "Nm", "Nh").
    pub rate_limit: Option<String>,
    /// Post: rate limit scope (thread, process, global).
    pub rate_limit_scope: Option<String>,
    /// Post: include the kernel stack trace.
    pub kernel_stack_trace: Option<bool>,
    /// Post: include the user stack trace.
    pub user_stack_trace: Option<bool>,
    /// Post: include the IMA hash (LSM).
    pub ima_hash: Option<bool>,
}

/// Label selector operators.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum LabelSelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// One label requirement.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: LabelSelectorOperator,
    pub values: Option<Vec<String>>,
}

/// A Kubernetes-style label selector.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    pub match_labels: Option<BTreeMap<String, String>>,
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
}

/// `hostSelector`: the same shape as a label selector, but only `{}` is meaningful.
pub type HostSelector = LabelSelector;

/// Per-selector workload filter.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSelector {
    pub pod_selector: Option<LabelSelector>,
    pub container_selector: Option<LabelSelector>,
    pub host_selector: Option<HostSelector>,
}
