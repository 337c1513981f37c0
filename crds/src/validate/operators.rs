//! matchArgs / matchReturnArgs rules: the argument exists, the operator suits its type, the
//! values parse and respect the per-operator limits. The value rules live in
//! [`crate::values::filters`] so that validation and compilation can never disagree.

use super::HookCtx;
use crate::values::filters::{classify, lower_values, unsupported_feature};
use crate::error::{FieldPath, PolicyError};
use crate::types::{ArgOperator, ArgSelector, TracingPolicySpec};

pub(super) fn check(
    spec: &TracingPolicySpec,
    ctx: &HookCtx<'_>,
    f: &ArgSelector,
    on_return: bool,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    if let Some(feature) = unsupported_feature(f.operator) {
        errors.push(PolicyError::unsupported(&path.field("operator"), feature));
        return;
    }
    if f.args.as_ref().is_some_and(|a| !a.is_empty())
        && f.operator != ArgOperator::CapabilitiesGained
    {
        errors.push(PolicyError::invalid(
            &path.field("args"),
            "set, but args is only used by the CapabilitiesGained operator",
        ));
    }
    let ty = if on_return {
        match (f.index, ctx.return_arg) {
            (Some(0) | None, Some(r)) => r.ty,
            (Some(i), Some(_)) => {
                errors.push(PolicyError::invalid(
                    &path.field("index"),
                    format!("{i}, but matchReturnArgs refers to the return value (index 0)"),
                ));
                return;
            }
            (_, None) => return,
        }
    } else {
        let Some(index) = f.index else {
            errors.push(PolicyError::invalid(
                &path.field("index"),
                "missing, but a matchArgs filter needs the index of the argument it tests",
            ));
            return;
        };
        match ctx.arg(index) {
            Ok((_, ty)) => ty,
            Err(m) => {
                errors.push(PolicyError::invalid(&path.field("index"), m));
                return;
            }
        }
    };
    let class = match classify(f.operator, ty) {
        Ok(c) => c,
        Err(m) => {
            errors.push(PolicyError::invalid(&path.field("operator"), m));
            return;
        }
    };
    let values = f.values.as_deref().unwrap_or_default();
    if let Err(problems) = lower_values(spec, class, ty, values) {
        for (j, m) in problems {
            let p = match j {
                Some(j) => path.field("values").index(j),
                None => path.field("values"),
            };
            let is_unsupported = m.starts_with("unsupported: ");
            errors.push(if is_unsupported {
                PolicyError::unsupported(&p, m.trim_start_matches("unsupported: "))
            } else {
                PolicyError::invalid(&p, m)
            });
        }
    }
}
