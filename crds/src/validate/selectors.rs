//! Selector rules: PID, namespace, capability and binary filters, filter counts, macros.

use crate::values::limits::*;
use super::{actions, operators, HookCtx};
use crate::error::{did_you_mean, FieldPath, PolicyError};
use crate::types::{BinaryOperator, KProbeSelector, TracingPolicySpec};

/// Appends the filters of every macro named in `sel.macros` to a copy of `sel`.
/// Unknown macro names are returned as errors (name, closest known name hint).
pub fn expand_macros(
    spec: &TracingPolicySpec,
    sel: &KProbeSelector,
) -> Result<KProbeSelector, Vec<(usize, String)>> {
    let mut out = sel.clone();
    out.macros = None;
    let mut unknown = Vec::new();
    for (i, name) in sel.macros.iter().flatten().enumerate() {
        let Some(m) = spec.selectors_macros.as_ref().and_then(|m| m.get(name)) else {
            let known = spec
                .selectors_macros
                .iter()
                .flat_map(|m| m.keys().map(String::as_str));
            unknown.push((
                i,
                format!(
                    "{name:?}, but spec.selectorsMacros has no such macro{}",
                    did_you_mean(name, known)
                ),
            ));
            continue;
        };
        fn extend<T: Clone>(dst: &mut Option<Vec<T>>, src: &Option<Vec<T>>) {
            if let Some(src) = src {
                dst.get_or_insert_with(Vec::new).extend(src.iter().cloned());
            }
        }
        extend(&mut out.match_pids, &m.match_pids);
        extend(&mut out.match_args, &m.match_args);
        extend(&mut out.match_data, &m.match_data);
        extend(&mut out.match_actions, &m.match_actions);
        extend(&mut out.match_return_args, &m.match_return_args);
        extend(&mut out.match_return_actions, &m.match_return_actions);
        extend(&mut out.match_binaries, &m.match_binaries);
        extend(&mut out.match_parent_binaries, &m.match_parent_binaries);
        extend(&mut out.match_namespaces, &m.match_namespaces);
        extend(&mut out.match_namespace_changes, &m.match_namespace_changes);
        extend(&mut out.match_capabilities, &m.match_capabilities);
        extend(
            &mut out.match_capability_changes,
            &m.match_capability_changes,
        );
        if out.match_workloads.is_none() {
            out.match_workloads = m.match_workloads.clone();
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(unknown)
    }
}

fn non_empty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

/// Maps an index into an expanded (macro-appended) filter list back to where the user
/// wrote that filter: the selector itself or `spec.selectorsMacros.NAME`.
struct Origins<'a> {
    sources: Vec<(FieldPath, &'a KProbeSelector)>,
}

impl Origins<'_> {
    fn count(s: &KProbeSelector, field: &str) -> usize {
        fn n<T>(v: &Option<Vec<T>>) -> usize {
            v.as_ref().map_or(0, Vec::len)
        }
        match field {
            "matchPIDs" => n(&s.match_pids),
            "matchArgs" => n(&s.match_args),
            "matchReturnArgs" => n(&s.match_return_args),
            "matchActions" => n(&s.match_actions),
            "matchReturnActions" => n(&s.match_return_actions),
            "matchBinaries" => n(&s.match_binaries),
            "matchNamespaces" => n(&s.match_namespaces),
            "matchCapabilities" => n(&s.match_capabilities),
            _ => 0,
        }
    }

    fn locate(&self, field: &str, mut i: usize) -> FieldPath {
        for (p, s) in &self.sources {
            let n = Self::count(s, field);
            if i < n {
                return p.field(field).index(i);
            }
            i -= n;
        }
        self.sources[0].0.field(field).index(i)
    }
}

pub(super) fn check(
    spec: &TracingPolicySpec,
    ctx: &HookCtx<'_>,
    raw: &KProbeSelector,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    let sel = match expand_macros(spec, raw) {
        Ok(sel) => sel,
        Err(unknown) => {
            for (i, m) in unknown {
                errors.push(PolicyError::invalid(&path.field("macros").index(i), m));
            }
            return;
        }
    };
    let mut sources = vec![(path.clone(), raw)];
    for name in raw.macros.iter().flatten() {
        if let Some(m) = spec.selectors_macros.as_ref().and_then(|m| m.get(name)) {
            sources.push((
                FieldPath::root("spec").field("selectorsMacros").field(name),
                m,
            ));
        }
    }
    let origins = Origins { sources };
    let at = |field: &str, i: usize| origins.locate(field, i);
    for (i, f) in sel.match_pids.iter().flatten().enumerate() {
        let p = at("matchPIDs", i).field("values");
        if f.values.is_empty() || f.values.len() > MAX_PID_VALUES {
            errors.push(PolicyError::invalid(
                &p,
                format!(
                    "{} values, but a matchPIDs filter takes 1..={MAX_PID_VALUES}",
                    f.values.len()
                ),
            ));
        }
    }
    let n_args =
        sel.match_args.as_ref().map_or(0, Vec::len) + sel.match_data.as_ref().map_or(0, Vec::len);
    if n_args > MAX_ARG_FILTERS {
        errors.push(PolicyError::invalid(&path.field("matchArgs"), format!("{n_args} matchArgs+matchData filters, but at most {MAX_ARG_FILTERS} are allowed per selector")));
    }
    for (i, f) in sel.match_args.iter().flatten().enumerate() {
        operators::check(spec, ctx, f, false, &at("matchArgs", i), errors);
    }
    if non_empty(&sel.match_data) {
        errors.push(PolicyError::unsupported(
            &path.field("matchData"),
            "matchData",
        ));
    }
    if non_empty(&sel.match_return_args) {
        if ctx.return_arg.is_none() {
            errors.push(PolicyError::invalid(
                &path.field("matchReturnArgs"),
                "set, but the hook has no return probe (`return: true` with a returnArg)",
            ));
        } else {
            for (i, f) in sel.match_return_args.iter().flatten().enumerate() {
                operators::check(spec, ctx, f, true, &at("matchReturnArgs", i), errors);
            }
        }
    }
    actions::check_list(
        spec,
        ctx,
        sel.match_actions.as_deref(),
        false,
        &path.field("matchActions"),
        &|i| at("matchActions", i),
        errors,
    );
    if non_empty(&sel.match_return_actions) && ctx.return_arg.is_none() {
        errors.push(PolicyError::invalid(
            &path.field("matchReturnActions"),
            "set, but the hook has no return probe (`return: true` with a returnArg)",
        ));
    } else {
        actions::check_list(
            spec,
            ctx,
            sel.match_return_actions.as_deref(),
            true,
            &path.field("matchReturnActions"),
            &|i| at("matchReturnActions", i),
            errors,
        );
    }
    let binaries = sel.match_binaries.as_deref().unwrap_or_default();
    if binaries.len() > 1 {
        errors.push(PolicyError::invalid(
            &path.field("matchBinaries"),
            format!(
                "{} filters, but at most 1 is allowed per selector",
                binaries.len()
            ),
        ));
    }
    for (i, b) in binaries.iter().enumerate() {
        let p = at("matchBinaries", i);
        if b.values.is_empty() {
            errors.push(PolicyError::invalid(
                &p.field("values"),
                "empty, but a matchBinaries filter needs at least one path",
            ));
        }
        for (j, v) in b.values.iter().enumerate() {
            let n = v.len();
            if n == 0 || n > MAX_BINARY_PATH_LEN {
                errors.push(PolicyError::invalid(
                    &p.field("values").index(j),
                    format!("{n} bytes, but a binary path must be 1..={MAX_BINARY_PATH_LEN} bytes"),
                ));
            }
        }
        if b.follow_children == Some(true)
            && !matches!(b.operator, BinaryOperator::In | BinaryOperator::NotIn)
        {
            errors.push(PolicyError::invalid(
                &p.field("followChildren"),
                format!(
                    "set with operator {:?}, but followChildren only works with In and NotIn",
                    b.operator
                ),
            ));
        }
    }
    if non_empty(&sel.match_parent_binaries) {
        errors.push(PolicyError::unsupported(
            &path.field("matchParentBinaries"),
            "matchParentBinaries",
        ));
    }
    check_namespaces(&sel, path, &at, errors);
    for field in ["matchCapabilities", "matchCapabilityChanges"] {
        let filters = if field == "matchCapabilities" { &sel.match_capabilities } else { &sel.match_capability_changes };
        for (i, c) in filters.iter().flatten().enumerate() {
            let p = at(field, i).field("values");
            if c.values.is_empty() {
                errors.push(PolicyError::invalid(
                    &p,
                    format!("empty, but a {field} filter needs at least one CAP_* name"),
                ));
            }
            for (j, v) in c.values.iter().enumerate() {
                if let Err(m) = crate::values::parse_capability(v) {
                    errors.push(PolicyError::invalid(&p.index(j), m));
                }
            }
        }
    }
    for (i, f) in sel.match_namespace_changes.iter().flatten().enumerate() {
        let p = at("matchNamespaceChanges", i).field("values");
        if f.values.is_empty() {
            errors.push(PolicyError::invalid(&p, "empty, but a matchNamespaceChanges filter needs at least one namespace"));
        }
        for (j, v) in f.values.iter().enumerate() {
            if let Err(m) = crate::values::namespace_index(v) {
                errors.push(PolicyError::invalid(&p.index(j), m));
            }
        }
    }
    if sel.match_workloads.is_some() {
        errors.push(PolicyError::unsupported(
            &path.field("matchWorkloads"),
            "matchWorkloads (per-selector workload filter)",
        ));
    }
}

fn check_namespaces(
    sel: &KProbeSelector,
    path: &FieldPath,
    at: &dyn Fn(&str, usize) -> FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    let ns = sel.match_namespaces.as_deref().unwrap_or_default();
    if ns.len() > MAX_NAMESPACE_FILTERS {
        errors.push(PolicyError::invalid(
            &path.field("matchNamespaces"),
            format!(
                "{} filters, but at most {MAX_NAMESPACE_FILTERS} are allowed per selector",
                ns.len()
            ),
        ));
    }
    for (i, f) in ns.iter().enumerate() {
        let p = at("matchNamespaces", i).field("values");
        if f.values.is_empty() || f.values.len() > MAX_NAMESPACE_VALUES {
            errors.push(PolicyError::invalid(
                &p,
                format!(
                    "{} values, but a matchNamespaces filter takes 1..={MAX_NAMESPACE_VALUES}",
                    f.values.len()
                ),
            ));
        }
        for (j, v) in f.values.iter().enumerate() {
            if v != "host_ns" && v.trim().parse::<u32>().is_err() {
                errors.push(PolicyError::invalid(&p.index(j), format!("{v:?}, but a namespace value is an inode number (0..=4294967295) or \"host_ns\"")));
            }
        }
    }
}
