//! Lowering of validated hooks and selectors into [`CompiledHook`]s.

use super::encoding::*;
use crate::values::filters::{classify, lower_values, Lowered, OpClass};
use crate::values::{namespace_index, parse_capability, parse_rate_limit};
use super::{
    op_code, syscall_symbol, type_code, AttachTarget, CompiledArg, CompiledHook, UprobeLocation,
    ValueMap,
};
use crate::error::{FieldPath, PolicyError};
use crate::types::*;
use crate::validate::{expand_macros, HookCtx, HookKind};

/// Shared, attach-independent parts of a hook.
struct HookParts<'a> {
    kind: HookKind,
    path: FieldPath,
    args: &'a [KProbeArg],
    return_arg: Option<&'a KProbeArg>,
    selectors: &'a [KProbeSelector],
    message: Option<&'a String>,
    tags: Option<&'a Vec<String>>,
    return_arg_action: Option<&'a String>,
    ignore_missing: bool,
}

/// Lowers every hook of a validated spec (list calls and uprobe symbols fan out).
pub(super) fn hooks(spec: &TracingPolicySpec) -> Result<Vec<CompiledHook>, Vec<PolicyError>> {
    let mut out = Vec::new();
    let root = FieldPath::root("spec");
    let mut push =
        |parts: HookParts<'_>, targets: Vec<AttachTarget>| -> Result<(), Vec<PolicyError>> {
            for t in targets {
                out.push(build(spec, &parts, t).map_err(|e| vec![e])?);
            }
            Ok(())
        };
    for (field, kind, list) in [
        ("kprobes", HookKind::Kprobe, &spec.kprobes),
        ("fentries", HookKind::Fentry, &spec.fentries),
    ] {
        for (i, kp) in list.iter().flatten().enumerate() {
            let path = root.field(field).index(i);
            let ret = kp.return_.unwrap_or(false);
            let targets = kprobe_symbols(spec, kp)
                .map_err(|m| vec![PolicyError::invalid(&path.field("call"), m)])?;
            let targets = targets
                .into_iter()
                .map(|(symbol, syscall)| match kind {
                    HookKind::Fentry => AttachTarget::Fentry {
                        symbol,
                        syscall,
                        return_probe: ret,
                    },
                    _ => AttachTarget::Kprobe {
                        symbol,
                        syscall,
                        return_probe: ret,
                    },
                })
                .collect();
            let parts = HookParts {
                kind,
                path,
                args: kp.args.as_deref().unwrap_or_default(),
                return_arg: kp.return_arg.as_ref().filter(|_| ret),
                selectors: kp.selectors.as_deref().unwrap_or_default(),
                message: kp.message.as_ref(),
                tags: kp.tags.as_ref(),
                return_arg_action: kp.return_arg_action.as_ref(),
                ignore_missing: kp
                    .ignore
                    .as_ref()
                    .and_then(|i| i.call_not_found)
                    .unwrap_or(false),
            };
            push(parts, targets)?;
        }
    }
    for (i, tp) in spec.tracepoints.iter().flatten().enumerate() {
        let target = AttachTarget::Tracepoint {
            subsystem: tp.subsystem.clone(),
            event: tp.event.clone(),
            raw: tp.raw.unwrap_or(false),
        };
        let parts = HookParts {
            kind: HookKind::Tracepoint,
            path: root.field("tracepoints").index(i),
            args: tp.args.as_deref().unwrap_or_default(),
            return_arg: None,
            selectors: tp.selectors.as_deref().unwrap_or_default(),
            message: tp.message.as_ref(),
            tags: tp.tags.as_ref(),
            return_arg_action: None,
            ignore_missing: false,
        };
        push(parts, vec![target])?;
    }
    for (i, up) in spec.uprobes.iter().flatten().enumerate() {
        let ret = up.return_.unwrap_or(false);
        let locations: Vec<(UprobeLocation, Option<u64>)> = if let Some(syms) = &up.symbols {
            syms.iter()
                .enumerate()
                .map(|(j, s)| {
                    (
                        UprobeLocation::Symbol(s.clone()),
                        up.ref_ctr_offsets.as_ref().and_then(|r| r.get(j).copied()),
                    )
                })
                .collect()
        } else if let Some(offs) = &up.offsets {
            offs.iter()
                .map(|o| (UprobeLocation::Offset(*o), None))
                .collect()
        } else {
            up.addrs
                .iter()
                .flatten()
                .map(|a| (UprobeLocation::Address(*a), None))
                .collect()
        };
        let targets = locations
            .into_iter()
            .map(|(location, ref_ctr_offset)| AttachTarget::Uprobe {
                path: up.path.clone(),
                location,
                ref_ctr_offset,
                return_probe: ret,
            })
            .collect();
        let parts = HookParts {
            kind: HookKind::Uprobe,
            path: root.field("uprobes").index(i),
            args: up.args.as_deref().unwrap_or_default(),
            return_arg: up.return_arg.as_ref().filter(|_| ret),
            selectors: up.selectors.as_deref().unwrap_or_default(),
            message: up.message.as_ref(),
            tags: up.tags.as_ref(),
            return_arg_action: None,
            ignore_missing: false,
        };
        push(parts, targets)?;
    }
    for (i, lsm) in spec.lsmhooks.iter().flatten().enumerate() {
        let parts = HookParts {
            kind: HookKind::Lsm,
            path: root.field("lsmhooks").index(i),
            args: lsm.args.as_deref().unwrap_or_default(),
            return_arg: None,
            selectors: lsm.selectors.as_deref().unwrap_or_default(),
            message: lsm.message.as_ref(),
            tags: lsm.tags.as_ref(),
            return_arg_action: None,
            ignore_missing: false,
        };
        push(
            parts,
            vec![AttachTarget::Lsm {
                hook: lsm.hook.clone(),
            }],
        )?;
    }
    for (i, usdt) in spec.usdts.iter().flatten().enumerate() {
        let parts = HookParts {
            kind: HookKind::Usdt,
            path: root.field("usdts").index(i),
            args: usdt.args.as_deref().unwrap_or_default(),
            return_arg: None,
            selectors: usdt.selectors.as_deref().unwrap_or_default(),
            message: usdt.message.as_ref(),
            tags: usdt.tags.as_ref(),
            return_arg_action: None,
            ignore_missing: false,
        };
        let target = AttachTarget::Usdt {
            path: usdt.path.clone(),
            provider: usdt.provider.clone(),
            name: usdt.name.clone(),
        };
        push(parts, vec![target])?;
    }
    Ok(out)
}

/// (symbol, is_syscall) pairs a kprobe attaches to.
fn kprobe_symbols(
    spec: &TracingPolicySpec,
    kp: &KProbeSpec,
) -> Result<Vec<(String, bool)>, String> {
    let syscall = kp.syscall.unwrap_or(true);
    let resolve = |name: &str, is_sys: bool| {
        if is_sys {
            syscall_symbol(name).map(|s| (s, true))
        } else {
            Ok((name.to_string(), false))
        }
    };
    match kp.call.strip_prefix("list:") {
        Some(list) => {
            let list = spec
                .lists
                .iter()
                .flatten()
                .find(|l| l.name == list)
                .ok_or_else(|| format!("unknown list {list:?}"))?;
            let is_sys = list.ty == Some(ListType::Syscalls) || syscall;
            list.values
                .iter()
                .flatten()
                .map(|v| resolve(v, is_sys))
                .collect()
        }
        None => Ok(vec![resolve(&kp.call, syscall)?]),
    }
}

fn compile_arg(a: &KProbeArg) -> CompiledArg {
    CompiledArg {
        index: a.index,
        ty: a.ty,
        type_code: type_code(a.ty),
        size_arg_index: a.size_arg_index.unwrap_or(0),
        return_copy: a.return_copy.unwrap_or(false),
        max_data: a.max_data.unwrap_or(false),
        label: a.label.clone(),
    }
}

fn build(
    spec: &TracingPolicySpec,
    parts: &HookParts<'_>,
    attach: AttachTarget,
) -> Result<CompiledHook, PolicyError> {
    let ctx = HookCtx {
        kind: parts.kind,
        args: parts.args,
        return_arg: parts.return_arg,
    };
    let mut maps = Vec::new();
    let mut strings = Vec::new();
    let mut selectors = Vec::new();
    for (i, sel) in parts.selectors.iter().enumerate() {
        let path = parts.path.field("selectors").index(i);
        let sel = expand_macros(spec, sel)
            .map_err(|_| PolicyError::invalid(&path.field("macros"), "unknown macro"))?;
        let lowered = lower_selector(spec, &ctx, &sel, &mut maps, &mut strings)
            .map_err(|m| PolicyError::invalid(&path, m))?;
        selectors.push(lowered);
    }
    let selector_blob = encode(&selectors);
    if selector_blob.len() > MAX_BLOB_LEN {
        return Err(PolicyError::invalid(&parts.path.field("selectors"), format!("selectors encode to {} bytes, but a hook's filter holds at most {MAX_BLOB_LEN}; move values into InMap lists", selector_blob.len())));
    }
    Ok(CompiledHook {
        source: parts.path.to_string(),
        attach,
        message: parts.message.cloned(),
        tags: parts.tags.cloned().unwrap_or_default(),
        args: parts.args.iter().map(compile_arg).collect(),
        return_arg: parts.return_arg.map(compile_arg),
        return_arg_action: parts
            .return_arg_action
            .map(|a| if a == "UntrackSock" { 12 } else { 11 }),
        selectors,
        selector_blob,
        maps,
        strings,
        ignore_missing: parts.ignore_missing,
    })
}

fn set_op(op: SetOperator) -> u32 {
    match op {
        SetOperator::In => 1,
        SetOperator::NotIn => 2,
    }
}

fn add_maps(maps: &mut Vec<ValueMap>, new: Vec<ValueMap>) -> Vec<u32> {
    new.into_iter()
        .map(|m| {
            maps.push(m);
            (maps.len() - 1) as u32
        })
        .collect()
}

fn problems(p: Vec<(Option<usize>, String)>) -> String {
    p.into_iter().map(|(_, m)| m).collect::<Vec<_>>().join("; ")
}

fn lower_filter(
    spec: &TracingPolicySpec,
    ctx: &HookCtx<'_>,
    f: &ArgSelector,
    on_return: bool,
    maps: &mut Vec<ValueMap>,
) -> Result<ArgFilter, String> {
    let (slot, ty) = match (on_return, ctx.return_arg) {
        (true, Some(r)) => (RETURN_SLOT, r.ty),
        (true, None) => return Err("matchReturnArgs without a return probe".into()),
        (false, _) => ctx.arg(f.index.unwrap_or(0)).map(|(s, t)| (s as u32, t))?,
    };
    let class = classify(f.operator, ty)?;
    let values = match lower_values(spec, class, ty, f.values.as_deref().unwrap_or_default())
        .map_err(problems)?
    {
        Lowered::None => ArgValues::None,
        Lowered::Ints(v) => ArgValues::Inline(v),
        Lowered::Maps(m) => ArgValues::Maps(add_maps(maps, m)),
    };
    Ok(ArgFilter {
        slot,
        op: op_code(f.operator),
        type_code: type_code(ty),
        values,
    })
}

fn lower_action(
    ctx: &HookCtx<'_>,
    a: &ActionSelector,
    strings: &mut Vec<String>,
) -> Result<ActionConfig, String> {
    let slot =
        |i: Option<u32>| -> Result<u64, String> { ctx.arg(i.unwrap_or(0)).map(|(s, _)| s as u64) };
    let mut string_id = |s: &Option<String>| -> u64 {
        strings.push(s.clone().unwrap_or_default());
        (strings.len() - 1) as u64
    };
    let (code, params) = match a.action {
        ActionType::Post => {
            let rate = a
                .rate_limit
                .as_deref()
                .map(parse_rate_limit)
                .transpose()?
                .unwrap_or(0);
            let scope = match a.rate_limit_scope.as_deref() {
                Some("process") => 1,
                Some("global") => 2,
                _ => 0,
            };
            let stacks = u64::from(a.kernel_stack_trace == Some(true))
                | u64::from(a.user_stack_trace == Some(true)) << 1;
            if stacks == 0 {
                (1, vec![rate, scope])
            } else {
                (1, vec![rate, scope, stacks])
            }
        }
        ActionType::FollowFd => (2, vec![slot(a.arg_fd)?, slot(a.arg_name)?]),
        ActionType::Sigkill => (3, vec![]),
        ActionType::UnfollowFd => (4, vec![slot(a.arg_fd)?, slot(a.arg_name.or(a.arg_fd))?]),
        ActionType::Override => (5, vec![i64::from(a.arg_error.unwrap_or(0)) as u64]),
        ActionType::CopyFd => (6, vec![slot(a.arg_fd)?, slot(a.arg_name)?]),
        ActionType::GetUrl => (7, vec![string_id(&a.arg_url)]),
        ActionType::DnsLookup => (8, vec![string_id(&a.arg_fqdn)]),
        ActionType::NoPost => (9, vec![]),
        ActionType::Signal => (10, vec![a.arg_sig.unwrap_or(0) as u64]),
        ActionType::TrackSock => (11, vec![slot(Some(a.arg_sock.unwrap_or(0) as u32))?]),
        ActionType::UntrackSock => (12, vec![slot(Some(a.arg_sock.unwrap_or(0) as u32))?]),
        other => return Err(format!("action {} cannot be compiled", other.name())),
    };
    Ok(ActionConfig { code, params })
}

fn binary_op(op: BinaryOperator) -> (u32, OpClass) {
    match op {
        BinaryOperator::In => (1, OpClass::StringEq { max_values: None }),
        BinaryOperator::NotIn => (2, OpClass::StringEq { max_values: None }),
        BinaryOperator::Prefix => (3, OpClass::Prefix { max_values: None }),
        BinaryOperator::NotPrefix => (4, OpClass::Prefix { max_values: None }),
        BinaryOperator::Postfix => (5, OpClass::Postfix { max_values: None }),
        BinaryOperator::NotPostfix => (6, OpClass::Postfix { max_values: None }),
    }
}

/// A matchCapabilities / matchCapabilityChanges filter.
fn capability_filter(f: &CapabilitiesSelector) -> Result<CapabilityFilter, String> {
    let mut mask = 0u64;
    for v in &f.values {
        mask |= 1u64 << parse_capability(v)?;
    }
    Ok(CapabilityFilter {
        set: f.ty.unwrap_or_default() as u32,
        op: set_op(f.operator),
        flags: u32::from(f.is_namespace_capability == Some(true)),
        mask,
    })
}

fn lower_selector(
    spec: &TracingPolicySpec,
    ctx: &HookCtx<'_>,
    sel: &KProbeSelector,
    maps: &mut Vec<ValueMap>,
    strings: &mut Vec<String>,
) -> Result<SelectorConfig, String> {
    let mut out = SelectorConfig::default();
    for f in sel.match_pids.iter().flatten() {
        let flags = u32::from(f.is_namespace_pid == Some(true))
            | (u32::from(f.follow_forks == Some(true)) << 1);
        out.pids.push(PidFilter {
            op: set_op(f.operator),
            flags,
            pids: f.values.clone(),
        });
    }
    for f in sel.match_namespaces.iter().flatten() {
        let inodes = f
            .values
            .iter()
            .map(|v| {
                if v == "host_ns" {
                    Ok(HOST_NS)
                } else {
                    v.trim().parse::<u32>().map_err(|e| e.to_string())
                }
            })
            .collect::<Result<_, _>>()?;
        out.namespaces.push(NamespaceFilter {
            ns: f.namespace as u32,
            op: set_op(f.operator),
            inodes,
        });
    }
    for f in sel.match_capabilities.iter().flatten() {
        out.capabilities.push(capability_filter(f)?);
    }
    for f in sel.match_namespace_changes.iter().flatten() {
        let mut mask = 0u32;
        for v in &f.values {
            mask |= 1 << namespace_index(v)?;
        }
        out.namespace_changes.push(NamespaceChangeFilter { op: set_op(f.operator), mask });
    }
    for f in sel.match_capability_changes.iter().flatten() {
        out.capability_changes.push(capability_filter(f)?);
    }
    for f in sel.match_binaries.iter().flatten() {
        let (op, class) = binary_op(f.operator);
        let map_ids =
            match lower_values(spec, class, ArgType::String, &f.values).map_err(problems)? {
                Lowered::Maps(m) => add_maps(maps, m),
                _ => Vec::new(),
            };
        out.binaries.push(BinaryFilter {
            op,
            flags: u32::from(f.follow_children == Some(true)),
            map_ids,
        });
    }
    for f in sel.match_args.iter().flatten() {
        out.args.push(lower_filter(spec, ctx, f, false, maps)?);
    }
    for f in sel.match_return_args.iter().flatten() {
        out.return_args
            .push(lower_filter(spec, ctx, f, true, maps)?);
    }
    for a in sel.match_actions.iter().flatten() {
        out.actions.push(lower_action(ctx, a, strings)?);
    }
    for a in sel.match_return_actions.iter().flatten() {
        out.return_actions.push(lower_action(ctx, a, strings)?);
    }
    Ok(out)
}
