//! Action rules: parameters each action needs, where actions may run, Post-only options.
//! Parameters an action does not use are ignored (as upstream does), except the Post-only
//! options, which are errors anywhere else.

use crate::values::limits::MAX_ACTIONS;
use super::{HookCtx, HookKind};
use crate::values::parse_rate_limit;
use crate::error::{FieldPath, PolicyError};
use crate::types::{ActionSelector, ActionType, ArgType, TracingPolicySpec};

pub(super) fn check_list(
    spec: &TracingPolicySpec,
    ctx: &HookCtx<'_>,
    actions: Option<&[ActionSelector]>,
    on_return: bool,
    path: &FieldPath,
    item_path: &dyn Fn(usize) -> FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    let actions = actions.unwrap_or_default();
    if actions.len() > MAX_ACTIONS {
        errors.push(PolicyError::invalid(
            path,
            format!(
                "{} actions, but at most {MAX_ACTIONS} are allowed per selector",
                actions.len()
            ),
        ));
    }
    for (i, a) in actions.iter().enumerate() {
        check(spec, ctx, a, on_return, &item_path(i), errors);
    }
}

/// Checks that `index` names a declared argument, optionally of an accepted type.
fn arg_ref(
    ctx: &HookCtx<'_>,
    index: Option<u32>,
    field: &str,
    accept: impl Fn(ArgType) -> bool,
    wanted: &str,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    let p = path.field(field);
    let Some(index) = index else {
        errors.push(PolicyError::invalid(
            &p,
            "missing, but this action needs it",
        ));
        return;
    };
    match ctx.arg(index) {
        Ok((_, ty)) if !accept(ty) => errors.push(PolicyError::invalid(
            &p,
            format!(
                "{index} refers to {} {} argument, but it must be {wanted}",
                crate::error::article(&ty.name()),
                ty.name()
            ),
        )),
        Ok(_) => {}
        Err(m) => errors.push(PolicyError::invalid(&p, m)),
    }
}

fn fd_like(ty: ArgType) -> bool {
    ty.is_integer() || ty == ArgType::Fd || ty == ArgType::Auto
}

fn name_like(ty: ArgType) -> bool {
    ty.is_stringy() || ty.is_file()
}

fn check(
    _spec: &TracingPolicySpec,
    ctx: &HookCtx<'_>,
    a: &ActionSelector,
    on_return: bool,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    let name = a.action.name();
    if a.action != ActionType::Post {
        for (field, set) in [
            ("rateLimit", a.rate_limit.is_some()),
            ("rateLimitScope", a.rate_limit_scope.is_some()),
            ("kernelStackTrace", a.kernel_stack_trace == Some(true)),
            ("userStackTrace", a.user_stack_trace == Some(true)),
            ("imaHash", a.ima_hash == Some(true)),
        ] {
            if set {
                errors.push(PolicyError::invalid(
                    &path.field(field),
                    format!("set on action {name}, but {field} is only valid with action Post"),
                ));
            }
        }
    }
    match a.action {
        ActionType::Post => {
            if let Some(r) = &a.rate_limit {
                if let Err(m) = parse_rate_limit(r) {
                    errors.push(PolicyError::invalid(&path.field("rateLimit"), m));
                }
            }
            if let Some(s) = &a.rate_limit_scope {
                if !matches!(s.as_str(), "thread" | "process" | "global") {
                    errors.push(PolicyError::invalid(
                        &path.field("rateLimitScope"),
                        format!("{s:?}, but the scope must be thread, process or global"),
                    ));
                }
            }
            for (field, set) in [
                ("kernelStackTrace", a.kernel_stack_trace),
                ("userStackTrace", a.user_stack_trace),
            ] {
                // Only process_kprobe events have stack trace fields.
                if set == Some(true) && !matches!(ctx.kind, HookKind::Kprobe | HookKind::Fentry) {
                    errors.push(PolicyError::invalid(
                        &path.field(field),
                        format!("set on a {}, but only kprobes and fentries (process_kprobe events) carry stack traces", ctx.kind.noun_kind()),
                    ));
                }
            }
            if a.ima_hash == Some(true) {
                errors.push(PolicyError::unsupported(&path.field("imaHash"), "Post with imaHash"));
            }
        }
        ActionType::FollowFd | ActionType::CopyFd | ActionType::UnfollowFd => {
            if matches!(ctx.kind, HookKind::Uprobe | HookKind::Usdt) {
                let on = if ctx.kind == HookKind::Usdt { "a USDT probe" } else { "a uprobe" };
                errors.push(PolicyError::invalid(
                    &path.field("action"),
                    format!("{name} on {on}, but fd tracking needs a kernel hook"),
                ));
                return;
            }
            arg_ref(
                ctx,
                a.arg_fd,
                "argFd",
                fd_like,
                "an integer or fd",
                path,
                errors,
            );
            if a.action == ActionType::FollowFd {
                arg_ref(
                    ctx,
                    a.arg_name,
                    "argName",
                    name_like,
                    "a file, path or string argument",
                    path,
                    errors,
                );
            } else if a.action == ActionType::CopyFd || a.arg_name.is_some() {
                arg_ref(ctx, a.arg_name, "argName", |_| true, "", path, errors);
            }
        }
        ActionType::Sigkill | ActionType::NoPost => {}
        ActionType::Signal => match a.arg_sig {
            Some(1..=64) => {}
            Some(s) => errors.push(PolicyError::invalid(
                &path.field("argSig"),
                format!("{s}, but a signal number is 1..=64"),
            )),
            None => errors.push(PolicyError::invalid(
                &path.field("argSig"),
                "missing, but action Signal needs the signal number",
            )),
        },
        ActionType::Override => {
            if ctx.kind == HookKind::Tracepoint {
                errors.push(PolicyError::invalid(&path.field("action"), "Override on a tracepoint, but a tracepoint cannot change a return value (use an lsmhook or kprobe, or Sigkill)"));
            }
            if ctx.kind == HookKind::Usdt {
                errors.push(PolicyError::invalid(&path.field("action"), "Override on a USDT probe, but a probe point is not a function and has no return value (use a uprobe, or Sigkill)"));
            }
            if on_return {
                errors.push(PolicyError::invalid(&path.field("action"), "Override in matchReturnActions, but the call has already run; use matchActions"));
            }
            let redirects = [
                ("argRegs", a.arg_regs.is_some()),
                ("argNewSymbol", a.arg_new_symbol.is_some()),
                ("argNewAddr", a.arg_new_addr.is_some()),
                ("argNewOffset", a.arg_new_offset.is_some()),
            ];
            let set: Vec<&str> = redirects
                .iter()
                .filter(|(_, s)| *s)
                .map(|(n, _)| *n)
                .collect();
            if set.iter().filter(|n| **n != "argRegs").count() > 1 {
                errors.push(PolicyError::invalid(path, format!("{} are all set, but Override takes at most one of argNewSymbol, argNewAddr or argNewOffset", set.join(", "))));
            }
            if let Some(first) = set.first() {
                if ctx.kind == HookKind::Uprobe {
                    errors.push(PolicyError::unsupported(
                        &path.field(first),
                        format!("uprobe Override with {first}"),
                    ));
                } else {
                    errors.push(PolicyError::invalid(
                        &path.field(first),
                        "set, but registers and call redirection only apply to uprobes",
                    ));
                }
            }
            if let Some(e) = a.arg_error {
                if !(-4095..=4095).contains(&e) {
                    errors.push(PolicyError::invalid(
                        &path.field("argError"),
                        format!("{e}, but an error value is -4095..=4095"),
                    ));
                }
            }
        }
        ActionType::GetUrl => {
            if a.arg_url.as_deref().is_none_or(str::is_empty) {
                errors.push(PolicyError::invalid(
                    &path.field("argUrl"),
                    "missing, but action GetUrl needs the URL to fetch",
                ));
            }
        }
        ActionType::DnsLookup => {
            if a.arg_fqdn.as_deref().is_none_or(str::is_empty) {
                errors.push(PolicyError::invalid(
                    &path.field("argFqdn"),
                    "missing, but action DnsLookup needs the name to resolve",
                ));
            }
        }
        ActionType::TrackSock | ActionType::UntrackSock => {
            let index = a.arg_sock.unwrap_or(0);
            match u32::try_from(index) {
                Ok(i) => arg_ref(
                    ctx,
                    Some(i),
                    "argSock",
                    |t| t == ArgType::Sock,
                    "a sock argument",
                    path,
                    errors,
                ),
                Err(_) => errors.push(PolicyError::invalid(
                    &path.field("argSock"),
                    format!("{index}, but an argument index is not negative"),
                )),
            }
        }
        ActionType::NotifyEnforcer | ActionType::CleanupEnforcerNotification | ActionType::Set => {
            errors.push(PolicyError::unsupported(
                &path.field("action"),
                format!("{name} action"),
            ));
        }
    }
}
