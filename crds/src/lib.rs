//! TracingPolicy types, validation and the pure policy compiler.
//!
//! Data flow: YAML text -> [`validate`] (syntax, schema shape, semantic rules, unsupported
//! features; every error with its field path) -> typed [`types::TracingPolicySpec`] ->
//! [`compile()`] -> [`compile::CompiledPolicy`], the plain configuration BPF programs read.
//! Both steps share [`values`] (value parsing, syscall names, operator classes, limits),
//! which depends on neither.
//!
//! The CLI's offline validator and the agent both enter through [`check_policy_yaml`] (text)
//! or [`compile::compile`] / [`compile::compile_namespaced`] (typed objects from the API).
//!
//! # What the agent loads
//!
//! A [`CompiledPolicy`] holds one [`CompiledHook`] per attach point (a `call: list:NAME`
//! kprobe or a multi-symbol uprobe fans out into several hooks). For each hook:
//!
//! - [`compile::AttachTarget`]: kprobe/fentry symbol (syscalls already arch-prefixed,
//!   e.g. `__x64_sys_read`), tracepoint `subsystem/event` (raw or not), uprobe path +
//!   symbol/offset/address, or LSM hook name; plus whether a return probe is needed.
//! - `args` / `return_arg`: [`compile::CompiledArg`] with the numeric `type_code`
//!   ([`compile::type_code`]), size-arg index, returnCopy and maxData flags.
//! - `selector_blob`: bytes for the hook's filter map, format documented in
//!   [`compile::encoding`]; `selectors` is the same content in structured form and
//!   [`compile::decode`] turns the blob back into it.
//! - `maps`: contents of the per-hook hash maps and LPM tries ([`compile::ValueMap`]), indexed
//!   by the map ids in the blob; `strings`: the GetUrl/DnsLookup arguments indexed by the
//!   string ids in action parameters.
//! - `return_arg_action`, `message`, `tags`, `ignore_missing`.
//!
//! Policy-wide: [`compile::PolicyOptions`], `loader`, and [`compile::WorkloadFilter`] (pod,
//! container, host and node selectors plus the namespace of namespaced policies), which the
//! agent resolves against its pod cache.

pub mod compile;
pub mod conformance;
pub mod crd;
pub mod error;
pub mod types;
pub mod validate;
pub mod values;

pub use compile::{compile, compile_namespaced, CompiledHook, CompiledPolicy};
pub use error::{FieldPath, PolicyError};
pub use types::{
    TracingPolicy, TracingPolicyNamespaced, TracingPolicyNamespacedSpec, TracingPolicySpec,
};

/// Parses, validates and compiles one policy document. On failure returns every problem
/// found; each error displays as one line (`path: message`, `line L column C: message`
/// for YAML syntax, or `unsupported: <feature> at <path>`).
pub fn check_policy_yaml(text: &str) -> Result<CompiledPolicy, Vec<PolicyError>> {
    let doc = validate::parse_document(text)?;
    compile::compile_spec(doc.kind, &doc.name, doc.namespace.as_deref(), &doc.spec)
}
