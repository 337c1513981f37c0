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

/// Limits of the API (reference §2.7).
pub mod limits {
    /// Selectors per hook.
    pub const MAX_SELECTORS: usize = 5;
    /// matchArgs + matchData per selector.
    pub const MAX_ARG_FILTERS: usize = 5;
    /// Values of a numeric Equal/NotEqual/GT/LT/Mask filter.
    pub const MAX_NUMERIC_VALUES: usize = 4;
    /// Values of a string filter on a file-like argument (fd, file, path, dentry, linux_binprm).
    pub const MAX_FILE_VALUES: usize = 8;
    /// Values of a matchPIDs filter.
    pub const MAX_PID_VALUES: usize = 4;
    /// Actions per matchActions / matchReturnActions.
    pub const MAX_ACTIONS: usize = 3;
    /// matchNamespaces filters per selector.
    pub const MAX_NAMESPACE_FILTERS: usize = 10;
    /// Values per matchNamespaces filter.
    pub const MAX_NAMESPACE_VALUES: usize = 4;
    /// Prefix string length.
    pub const MAX_PREFIX_LEN: usize = 256;
    /// Postfix string length.
    pub const MAX_POSTFIX_LEN: usize = 127;
    /// Exact string length (largest hash bucket).
    pub const MAX_STRING_LEN: usize = 4096;
    /// Binary path length.
    pub const MAX_BINARY_PATH_LEN: usize = 255;
    /// Tags per hook.
    pub const MAX_TAGS: usize = 16;
    /// Message length range.
    pub const MESSAGE_LEN: std::ops::RangeInclusive<usize> = 2..=256;
    /// args + data per hook.
    pub const MAX_ARGS: usize = 5;
    /// Highest argument index of kprobes, fentries, LSM hooks and uprobes.
    pub const MAX_ARG_INDEX: u32 = 4;
    /// Highest argument index of a USDT probe (libbpf reads at most 12 USDT arguments).
    pub const MAX_USDT_ARG_INDEX: u32 = 11;
    /// Highest sizeArgIndex.
    pub const MAX_SIZE_ARG_INDEX: u32 = 15;
}

/// Validates a typed spec; returns every problem found (empty = valid and supported).
pub fn validate_spec(kind: PolicyKind, spec: &TracingPolicySpec) -> Vec<PolicyError> {
    let mut errors = Vec::new();
    spec::check(kind, spec, &mut errors);
    // A macro used by several selectors reports its own problems once.
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(e.to_string()));
    errors
}
