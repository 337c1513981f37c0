//! TracingPolicy types, validation and the pure policy compiler.
//!
//! Data flow: YAML text -> [`validate`] (syntax, schema shape, semantic rules, unsupported
//! features; every error with its field path) -> typed [`types::TracingPolicySpec`] ->
//! [`compile`] -> [`compile::CompiledPolicy`], the plain configuration BPF programs read.
//!
//! The CLI's offline validator and the agent both enter through [`check_policy_yaml`] (text)
//! or [`compile::compile`] / [`compile::compile_namespaced`] (typed objects from the API).

pub mod compile;
pub mod conformance;
pub mod crd;
pub mod error;
pub mod types;
pub mod validate;

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
