//! Hook specs: kprobes/fentries, tracepoints, uprobes, LSM hooks, USDTs, plus lists,
//! enforcers and options.

use super::{KProbeArg, KProbeSelector};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

fn default_true() -> Option<bool> {
    Some(true)
}

/// A kernel function hook (`kprobes` and `fentries`).
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KProbeSpec {
    /// Function name, or `list:NAME`.
    pub call: String,
    /// Also hook the return of the call (requires `returnArg`).
    #[serde(rename = "return")]
    pub return_: Option<bool>,
    /// The call is a system call (arch prefix added at attach time). Defaults to true.
    #[serde(default = "default_true")]
    pub syscall: Option<bool>,
    /// Message attached to events (2..256 characters).
    pub message: Option<String>,
    /// Arguments to record.
    pub args: Option<Vec<KProbeArg>>,
    /// Extra data to record (`source` + `resolve`).
    pub data: Option<Vec<KProbeArg>>,
    /// Return value to record.
    pub return_arg: Option<KProbeArg>,
    /// Action on the return value: TrackSock or UntrackSock.
    pub return_arg_action: Option<String>,
    /// Selectors (ORed).
    pub selectors: Option<Vec<KProbeSelector>>,
    /// Tags attached to events (at most 16).
    #[schemars(length(max = 16))]
    pub tags: Option<Vec<String>>,
    /// What to ignore when attaching.
    pub ignore: Option<KProbeIgnore>,
}

/// Attach-time tolerances of a kprobe.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KProbeIgnore {
    /// Skip the hook when the symbol does not exist.
    pub call_not_found: Option<bool>,
}

/// A kernel tracepoint.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TracepointSpec {
    /// Tracepoint subsystem, e.g. `syscalls`.
    pub subsystem: String,
    /// Tracepoint event, e.g. `sys_enter_openat`.
    pub event: String,
    /// Message attached to events.
    pub message: Option<String>,
    /// Format fields to record (index = format field index).
    pub args: Option<Vec<KProbeArg>>,
    /// Selectors (ORed).
    pub selectors: Option<Vec<KProbeSelector>>,
    /// Tags attached to events (at most 16).
    #[schemars(length(max = 16))]
    pub tags: Option<Vec<String>>,
    /// Attach as a raw tracepoint.
    pub raw: Option<bool>,
}

/// A user space function hook.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UProbeSpec {
    /// Path of the binary or library.
    pub path: String,
    /// Path of the BTF file describing the binary.
    pub btf_path: Option<String>,
    /// Symbols to hook.
    pub symbols: Option<Vec<String>>,
    /// File offsets to hook.
    pub offsets: Option<Vec<u64>>,
    /// Addresses to hook.
    pub addrs: Option<Vec<u64>>,
    /// Reference counter offsets (semaphores), one per symbol.
    pub ref_ctr_offsets: Option<Vec<u64>>,
    /// Message attached to events.
    pub message: Option<String>,
    /// Selectors (ORed).
    pub selectors: Option<Vec<KProbeSelector>>,
    /// Arguments to record.
    pub args: Option<Vec<KProbeArg>>,
    /// Extra data to record.
    pub data: Option<Vec<KProbeArg>>,
    /// Tags attached to events (at most 16).
    #[schemars(length(max = 16))]
    pub tags: Option<Vec<String>>,
    /// Also hook the return (requires `returnArg`).
    #[serde(rename = "return")]
    pub return_: Option<bool>,
    /// Return value to record.
    pub return_arg: Option<KProbeArg>,
    /// Attach only if the binary has one of these digests.
    pub binary_digests: Option<Vec<String>>,
    /// What to ignore when attaching.
    pub ignore: Option<UProbeIgnore>,
}

/// Attach-time tolerances of a uprobe.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UProbeIgnore {
    /// Attach even when digest verification fails.
    pub digest_verification_failure: Option<bool>,
}

/// A USDT probe.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsdtSpec {
    /// Path of the binary.
    pub path: String,
    /// Path of the BTF file describing the binary.
    pub btf_path: Option<String>,
    /// USDT provider.
    pub provider: String,
    /// USDT name.
    pub name: String,
    /// Tags attached to events (at most 16).
    #[schemars(length(max = 16))]
    pub tags: Option<Vec<String>>,
    /// Message attached to events.
    pub message: Option<String>,
    /// Arguments to record.
    pub args: Option<Vec<KProbeArg>>,
    /// Selectors (ORed).
    pub selectors: Option<Vec<KProbeSelector>>,
}

/// A BPF LSM hook.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LsmHookSpec {
    /// LSM hook name, e.g. `file_open`.
    pub hook: String,
    /// Message attached to events.
    pub message: Option<String>,
    /// Arguments to record.
    pub args: Option<Vec<KProbeArg>>,
    /// Selectors (ORed).
    pub selectors: Option<Vec<KProbeSelector>>,
    /// Tags attached to events (at most 16).
    #[schemars(length(max = 16))]
    pub tags: Option<Vec<String>>,
}

/// A named list of values (`call: list:NAME`, `values: [list:NAME]`).
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListSpec {
    /// List name.
    pub name: String,
    /// List entries.
    pub values: Option<Vec<String>>,
    /// Kind of list.
    #[serde(rename = "type")]
    pub ty: Option<ListType>,
    /// Pattern for generated lists.
    pub pattern: Option<String>,
    /// Whether the list was validated (internal upstream flag).
    pub validated: Option<bool>,
}

/// Kinds of lists.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListType {
    Syscalls,
    GeneratedSyscalls,
    GeneratedFtrace,
}

/// Syscalls an enforcer program runs on.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct EnforcerSpec {
    /// Syscall names or `list:NAME`.
    pub calls: Vec<String>,
}

/// A policy option.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct OptionSpec {
    /// Option name.
    pub name: String,
    /// Option value.
    pub value: Option<String>,
}
