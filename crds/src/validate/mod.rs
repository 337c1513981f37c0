//! Validation: YAML syntax, schema shape, and every semantic rule of the TracingPolicy API
//! (limits, operator/type compatibility, action parameters, cross references). All errors
//! of a policy are collected, each naming its field path. Features that are valid Tetragon
//! but not implemented here are reported as [`PolicyError::Unsupported`].

mod actions;
mod document;
mod hooks;
mod operators;
mod schema;
mod selectors;
mod spec;

pub use document::{check_spec_shape, parse_document, parse_yaml, PolicyDocument, PolicyKind};
pub(crate) use hooks::{HookCtx, HookKind};
pub(crate) use selectors::expand_macros;

use crate::error::PolicyError;
use crate::types::TracingPolicySpec;

/// Validates a typed spec; returns every problem found (empty = valid and supported).
pub fn validate_spec(kind: PolicyKind, spec: &TracingPolicySpec) -> Vec<PolicyError> {
    let mut errors = Vec::new();
    spec::check(kind, spec, &mut errors);
    // A macro used by several selectors reports its own problems once.
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(e.to_string()));
    errors
}
