//! Spec-level rules: workload selectors, lists, options, enforcers, USDTs, macros, and the
//! dispatch to every hook.

use super::hooks::{self, HookKind};
use super::PolicyKind;
use crate::error::{did_you_mean, FieldPath, PolicyError};
use crate::types::{LabelSelector, LabelSelectorOperator, ListType, TracingPolicySpec};

/// Options recognised in `spec.options`.
pub const OPTION_NAMES: [&str; 5] = [
    "disable-kprobe-multi",
    "disable-uprobe-multi",
    "override-method",
    "policy-mode",
    "sleepable-preload-size",
];

pub(super) fn check(kind: PolicyKind, spec: &TracingPolicySpec, errors: &mut Vec<PolicyError>) {
    let root = FieldPath::root("spec");
    if let Some(sel) = &spec.pod_selector {
        check_label_selector(sel, &root.field("podSelector"), errors);
    }
    if let Some(sel) = &spec.node_selector {
        check_label_selector(sel, &root.field("nodeSelector"), errors);
    }
    if let Some(sel) = &spec.container_selector {
        let path = root.field("containerSelector");
        check_label_selector(sel, &path, errors);
        check_container_keys(sel, &path, errors);
    }
    if let Some(sel) = &spec.host_selector {
        let path = root.field("hostSelector");
        if kind == PolicyKind::Namespaced {
            errors.push(PolicyError::invalid(&path, "set, but a TracingPolicyNamespaced must not have a hostSelector (it only applies to pods of its namespace)"));
        } else {
            check_host_selector(sel, &path, errors);
        }
    }
    check_lists(spec, &root, errors);
    check_options(spec, &root, errors);
    if spec.enforcers.as_ref().is_some_and(|e| !e.is_empty()) {
        errors.push(PolicyError::unsupported(
            &root.field("enforcers"),
            "enforcers",
        ));
    }
    if let Some(macros) = &spec.selectors_macros {
        for name in macros.keys() {
            if name.is_empty() {
                errors.push(PolicyError::invalid(
                    &root.field("selectorsMacros"),
                    "a macro has an empty name",
                ));
            }
        }
    }
    for (i, kp) in spec.kprobes.iter().flatten().enumerate() {
        hooks::check_kprobe(
            spec,
            HookKind::Kprobe,
            kp,
            &root.field("kprobes").index(i),
            errors,
        );
    }
    for (i, kp) in spec.fentries.iter().flatten().enumerate() {
        hooks::check_kprobe(
            spec,
            HookKind::Fentry,
            kp,
            &root.field("fentries").index(i),
            errors,
        );
    }
    for (i, tp) in spec.tracepoints.iter().flatten().enumerate() {
        hooks::check_tracepoint(spec, tp, &root.field("tracepoints").index(i), errors);
    }
    for (i, up) in spec.uprobes.iter().flatten().enumerate() {
        hooks::check_uprobe(spec, up, &root.field("uprobes").index(i), errors);
    }
    for (i, lsm) in spec.lsmhooks.iter().flatten().enumerate() {
        hooks::check_lsm(spec, lsm, &root.field("lsmhooks").index(i), errors);
    }
    for (i, usdt) in spec.usdts.iter().flatten().enumerate() {
        hooks::check_usdt(spec, usdt, &root.field("usdts").index(i), errors);
    }
}

fn is_label_value(v: &str) -> bool {
    let inner = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    v.is_empty()
        || (v.len() <= 63
            && v.chars().all(inner)
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// Label selector rules (values of matchLabels, operators of matchExpressions).
pub(crate) fn check_label_selector(
    sel: &LabelSelector,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    for (k, v) in sel.match_labels.iter().flatten() {
        let p = path.field("matchLabels").field(k);
        if k.is_empty() {
            errors.push(PolicyError::invalid(&p, "empty label key"));
        }
        if !is_label_value(v) {
            errors.push(PolicyError::invalid(&p, format!("{v:?}, but a label value is at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric")));
        }
    }
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        let p = path.field("matchExpressions").index(i);
        let n = req.values.as_ref().map_or(0, Vec::len);
        match req.operator {
            LabelSelectorOperator::In | LabelSelectorOperator::NotIn if n == 0 => {
                errors.push(PolicyError::invalid(
                    &p.field("values"),
                    format!(
                        "empty, but operator {:?} needs at least one value",
                        req.operator
                    ),
                ));
            }
            LabelSelectorOperator::Exists | LabelSelectorOperator::DoesNotExist if n > 0 => {
                errors.push(PolicyError::invalid(
                    &p.field("values"),
                    format!("{n} values, but operator {:?} takes none", req.operator),
                ));
            }
            _ => {}
        }
    }
}

fn check_container_keys(sel: &LabelSelector, path: &FieldPath, errors: &mut Vec<PolicyError>) {
    for k in sel.match_labels.iter().flatten().map(|(k, _)| k) {
        if k != "name" {
            errors.push(PolicyError::invalid(
                &path.field("matchLabels").field(k),
                format!("key {k:?}, but containerSelector only supports the key \"name\""),
            ));
        }
    }
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        if req.key != "name" {
            errors.push(PolicyError::invalid(
                &path.field("matchExpressions").index(i).field("key"),
                format!(
                    "{:?}, but containerSelector only supports the key \"name\"",
                    req.key
                ),
            ));
        }
    }
}

/// hostSelector: only `{}` (all host workloads) is allowed.
pub(crate) fn check_host_selector(
    sel: &LabelSelector,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    if sel.match_labels.is_some() || sel.match_expressions.is_some() {
        errors.push(PolicyError::invalid(path, "has matchLabels/matchExpressions, but a hostSelector must be null or {} (all host workloads)"));
    }
}

fn check_lists(spec: &TracingPolicySpec, root: &FieldPath, errors: &mut Vec<PolicyError>) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, list) in spec.lists.iter().flatten().enumerate() {
        let p = root.field("lists").index(i);
        if list.name.is_empty() {
            errors.push(PolicyError::invalid(
                &p.field("name"),
                "empty, but a list needs a name",
            ));
        } else if !seen.insert(list.name.as_str()) {
            errors.push(PolicyError::invalid(
                &p.field("name"),
                format!("{:?} is defined twice", list.name),
            ));
        }
        match list.ty {
            Some(ListType::GeneratedSyscalls) => errors.push(PolicyError::unsupported(
                &p.field("type"),
                "generated_syscalls list",
            )),
            Some(ListType::GeneratedFtrace) => errors.push(PolicyError::unsupported(
                &p.field("type"),
                "generated_ftrace list",
            )),
            Some(ListType::Syscalls) | None => {
                if list.pattern.is_some() {
                    errors.push(PolicyError::invalid(
                        &p.field("pattern"),
                        "set, but pattern is only used by generated_ftrace lists",
                    ));
                }
                let values = list.values.as_deref().unwrap_or_default();
                if values.is_empty() {
                    errors.push(PolicyError::invalid(
                        &p.field("values"),
                        "empty, but a list needs values",
                    ));
                }
                if list.ty == Some(ListType::Syscalls) {
                    for (j, v) in values.iter().enumerate() {
                        if let Err(m) = crate::values::arch::syscall_symbol(v) {
                            errors.push(PolicyError::invalid(&p.field("values").index(j), m));
                        }
                    }
                }
            }
        }
    }
}

fn check_options(spec: &TracingPolicySpec, root: &FieldPath, errors: &mut Vec<PolicyError>) {
    for (i, opt) in spec.options.iter().flatten().enumerate() {
        let p = root.field("options").index(i);
        let value = opt.value.as_deref().unwrap_or("");
        let bad = |allowed: &str| {
            PolicyError::invalid(
                &p.field("value"),
                format!("{value:?}, but option {} takes {allowed}", opt.name),
            )
        };
        match opt.name.as_str() {
            "disable-kprobe-multi" | "disable-uprobe-multi" => {
                if !matches!(value, "" | "true" | "false" | "1" | "0") {
                    errors.push(bad("true or false"));
                }
            }
            "override-method" => {
                if !matches!(value, "fmod-ret" | "override-return") {
                    errors.push(bad("fmod-ret or override-return"));
                }
            }
            "policy-mode" => {
                if !matches!(value, "enforce" | "monitor") {
                    errors.push(bad("enforce or monitor"));
                }
            }
            "sleepable-preload-size" => {
                if !value.parse::<u32>().is_ok_and(|v| v > 0) {
                    errors.push(bad("a positive integer"));
                }
            }
            other => errors.push(PolicyError::invalid(
                &p.field("name"),
                format!(
                    "unknown option {other:?}{} (known: {})",
                    did_you_mean(other, OPTION_NAMES),
                    OPTION_NAMES.join(", ")
                ),
            )),
        }
    }
}
