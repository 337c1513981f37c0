//! Hook-level rules: call names, messages, tags, argument declarations, return handling,
//! and the per-hook context selectors are checked against.

use crate::values::limits::*;
use super::selectors;
use crate::error::{FieldPath, PolicyError};
use crate::types::{
    ArgType, KProbeArg, KProbeSelector, KProbeSpec, LsmHookSpec, TracepointSpec, TracingPolicySpec,
    UProbeSpec, UsdtSpec,
};

/// The kinds of hooks a policy can declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    Kprobe,
    Fentry,
    Tracepoint,
    Uprobe,
    Lsm,
    Usdt,
}

impl HookKind {
    /// The hook kind as a policy section names it.
    pub fn noun_kind(self) -> &'static str {
        match self {
            HookKind::Kprobe => "kprobe",
            HookKind::Fentry => "fentry",
            HookKind::Tracepoint => "tracepoint",
            HookKind::Uprobe => "uprobe",
            HookKind::Lsm => "LSM hook",
            HookKind::Usdt => "USDT probe",
        }
    }

    /// Human name used in messages.
    pub fn noun(self) -> &'static str {
        match self {
            HookKind::Tracepoint => "tracepoint",
            HookKind::Lsm => "LSM hook",
            HookKind::Usdt => "USDT probe",
            _ => "call",
        }
    }
}

/// "1 arg (0)" / "3 args (0-2)".
fn arg_count(n: usize) -> String {
    match n {
        1 => "1 arg (0)".to_string(),
        _ => format!("{n} args (0-{})", n.saturating_sub(1)),
    }
}

/// What selectors of one hook are checked against.
pub struct HookCtx<'a> {
    pub kind: HookKind,
    pub args: &'a [KProbeArg],
    pub return_arg: Option<&'a KProbeArg>,
}

impl HookCtx<'_> {
    /// Resolves a selector's `index` to (slot in `args`, type). Kprobe-like hooks refer to
    /// the declared arg whose `index` matches; tracepoints refer to the position in `args`.
    pub fn arg(&self, index: u32) -> Result<(usize, ArgType), String> {
        let n = self.args.len();
        if self.kind == HookKind::Tracepoint {
            return match self.args.get(index as usize) {
                Some(a) => Ok((index as usize, a.ty)),
                None if n == 0 => Err(format!("{index}, but the tracepoint declares no args")),
                None => Err(format!("{index}, but the tracepoint has {}", arg_count(n))),
            };
        }
        if let Some(slot) = self.args.iter().position(|a| a.index == index) {
            return Ok((slot, self.args[slot].ty));
        }
        let declared: Vec<u32> = self.args.iter().map(|a| a.index).collect();
        let contiguous = declared.iter().enumerate().all(|(i, d)| *d as usize == i);
        Err(match (n, contiguous) {
            (0, _) => format!("{index}, but the {} declares no args", self.kind.noun()),
            (_, true) => format!("{index}, but the {} has {}", self.kind.noun(), arg_count(n)),
            _ => format!(
                "{index}, but the {} declares args with index {}",
                self.kind.noun(),
                declared
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }
}

pub(super) fn check_kprobe(
    spec: &TracingPolicySpec,
    kind: HookKind,
    kp: &KProbeSpec,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    check_call(spec, kp, path, errors);
    check_common(kp.message.as_deref(), kp.tags.as_deref(), path, errors);
    let args = kp.args.as_deref().unwrap_or_default();
    check_args(kind, args, &path.field("args"), errors);
    if let Some(data) = kp.data.as_ref().filter(|d| !d.is_empty()) {
        errors.push(PolicyError::unsupported(
            &path.field("data"),
            "data (extra BTF-resolved data)",
        ));
        if args.len() + data.len() > MAX_ARGS {
            errors.push(PolicyError::invalid(
                &path.field("data"),
                format!(
                    "{} args + {} data, but at most {MAX_ARGS} in total are allowed",
                    args.len(),
                    data.len()
                ),
            ));
        }
    }
    let ret = kp.return_.unwrap_or(false);
    check_return(kind, ret, kp.return_arg.as_ref(), path, errors);
    if let Some(action) = &kp.return_arg_action {
        let p = path.field("returnArgAction");
        if !matches!(action.as_str(), "TrackSock" | "UntrackSock") {
            errors.push(PolicyError::invalid(
                &p,
                format!("{action:?}, but only TrackSock or UntrackSock are allowed"),
            ));
        } else if !ret {
            errors.push(PolicyError::invalid(
                &p,
                format!("{action}, but it needs `return: true` and a returnArg"),
            ));
        } else if kp
            .return_arg
            .as_ref()
            .is_some_and(|a| a.ty != ArgType::Sock)
        {
            errors.push(PolicyError::invalid(
                &p,
                format!("{action}, but it needs a returnArg of type sock"),
            ));
        }
    }
    let ctx = HookCtx {
        kind,
        args,
        return_arg: if ret { kp.return_arg.as_ref() } else { None },
    };
    check_selectors(spec, &ctx, kp.selectors.as_deref(), path, errors);
}

fn check_call(
    spec: &TracingPolicySpec,
    kp: &KProbeSpec,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    let p = path.field("call");
    if kp.call.trim().is_empty() {
        errors.push(PolicyError::invalid(
            &p,
            "empty, but a kprobe needs a function name or list:NAME",
        ));
        return;
    }
    if let Some(name) = kp.call.strip_prefix("list:") {
        let list = spec.lists.iter().flatten().find(|l| l.name == name);
        if list.is_none() {
            let names: Vec<&str> = spec
                .lists
                .iter()
                .flatten()
                .map(|l| l.name.as_str())
                .collect();
            errors.push(PolicyError::invalid(
                &p,
                format!(
                    "{:?}, but spec.lists has no list named {name:?}{}",
                    kp.call,
                    crate::error::did_you_mean(name, names)
                ),
            ));
        }
        return;
    }
    if kp.syscall.unwrap_or(true) {
        if let Err(m) = crate::values::arch::syscall_symbol(&kp.call) {
            errors.push(PolicyError::invalid(&p, m));
        }
    }
}

fn check_common(
    message: Option<&str>,
    tags: Option<&[String]>,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    if let Some(m) = message {
        let n = m.chars().count();
        if !MESSAGE_LEN.contains(&n) {
            errors.push(PolicyError::invalid(
                &path.field("message"),
                format!(
                    "{n} characters, but a message must have {}..={} characters",
                    MESSAGE_LEN.start(),
                    MESSAGE_LEN.end()
                ),
            ));
        }
    }
    let tags = tags.unwrap_or_default();
    if tags.len() > MAX_TAGS {
        errors.push(PolicyError::invalid(
            &path.field("tags"),
            format!("{} tags, but at most {MAX_TAGS} are allowed", tags.len()),
        ));
    }
    for (i, t) in tags.iter().enumerate() {
        if t.trim().is_empty() {
            errors.push(PolicyError::invalid(
                &path.field("tags").index(i),
                "empty tag",
            ));
        }
    }
}

fn check_args(kind: HookKind, args: &[KProbeArg], path: &FieldPath, errors: &mut Vec<PolicyError>) {
    if args.len() > MAX_ARGS {
        errors.push(PolicyError::invalid(
            path,
            format!("{} args, but at most {MAX_ARGS} are allowed", args.len()),
        ));
    }
    for (i, a) in args.iter().enumerate() {
        check_arg(kind, a, &path.index(i), errors);
    }
}

/// What a USDT argument can be: its note gives a value (register, memory or constant) of
/// the traced program, so integers, or pointers to the program's strings and buffers.
fn usdt_arg_type(ty: ArgType) -> bool {
    ty.is_integer() || matches!(ty, ArgType::String | ArgType::CharBuf)
}

fn check_arg(kind: HookKind, a: &KProbeArg, path: &FieldPath, errors: &mut Vec<PolicyError>) {
    let max_index = if kind == HookKind::Usdt { MAX_USDT_ARG_INDEX } else { MAX_ARG_INDEX };
    if kind != HookKind::Tracepoint && a.index > max_index {
        errors.push(PolicyError::invalid(
            &path.field("index"),
            format!(
                "{}, but a {} argument index must be 0..={max_index}",
                a.index,
                kind.noun()
            ),
        ));
    }
    if kind == HookKind::Usdt && !usdt_arg_type(a.ty) {
        errors.push(PolicyError::invalid(
            &path.field("type"),
            format!(
                "{}, but a USDT argument is a user-space value: an integer type, size_t, string or char_buf",
                a.ty.name()
            ),
        ));
    }
    if kind != HookKind::Tracepoint && matches!(a.ty, ArgType::Auto | ArgType::Syscall64) {
        errors.push(PolicyError::invalid(&path.field("type"), format!("{}, but {} arguments need an explicit type (auto and syscall64 are for tracepoints)", a.ty.name(), kind.noun())));
    }
    let buffer = matches!(a.ty, ArgType::CharBuf | ArgType::CharIovec);
    if let Some(s) = a.size_arg_index.filter(|s| *s > 0) {
        if s > MAX_SIZE_ARG_INDEX {
            errors.push(PolicyError::invalid(
                &path.field("sizeArgIndex"),
                format!("{s}, but sizeArgIndex must be 1..={MAX_SIZE_ARG_INDEX}"),
            ));
        }
        if !buffer {
            errors.push(PolicyError::invalid(
                &path.field("sizeArgIndex"),
                format!(
                    "set on a {} argument, but it is only valid for char_buf and char_iovec",
                    a.ty.name()
                ),
            ));
        }
    }
    if a.return_copy == Some(true) && !buffer {
        errors.push(PolicyError::invalid(
            &path.field("returnCopy"),
            format!(
                "set on a {} argument, but it is only valid for char_buf and char_iovec",
                a.ty.name()
            ),
        ));
    }
    if a.max_data == Some(true)
        && !matches!(
            a.ty,
            ArgType::CharBuf | ArgType::CharIovec | ArgType::IovIter
        )
    {
        errors.push(PolicyError::invalid(
            &path.field("maxData"),
            format!(
                "set on a {} argument, but it is only valid for char_buf, char_iovec and iov_iter",
                a.ty.name()
            ),
        ));
    }
    if a.resolve.as_ref().is_some_and(|r| !r.is_empty()) {
        errors.push(PolicyError::unsupported(
            &path.field("resolve"),
            "resolve (BTF field walk)",
        ));
    } else if a.btf_type.is_some() || a.btf_type_module.is_some() {
        errors.push(PolicyError::invalid(
            &path.field("btfType"),
            "set, but btfType/btfTypeModule are only used together with resolve",
        ));
    }
    if a.source.is_some() {
        errors.push(PolicyError::invalid(
            &path.field("source"),
            "set, but source is only valid in data entries",
        ));
    }
}

fn check_return(
    kind: HookKind,
    ret: bool,
    return_arg: Option<&KProbeArg>,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    match (ret, return_arg) {
        (true, None) => errors.push(PolicyError::invalid(
            &path.field("returnArg"),
            "missing, but `return: true` requires a returnArg",
        )),
        // Upstream ignores a returnArg without `return: true`; so do we.
        (true, Some(a)) => check_arg(kind, a, &path.field("returnArg"), errors),
        (false, _) => {}
    }
}

fn check_selectors(
    spec: &TracingPolicySpec,
    ctx: &HookCtx<'_>,
    sels: Option<&[KProbeSelector]>,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    let sels = sels.unwrap_or_default();
    let p = path.field("selectors");
    if sels.len() > MAX_SELECTORS {
        errors.push(PolicyError::invalid(
            &p,
            format!(
                "{} selectors, but at most {MAX_SELECTORS} are allowed per hook",
                sels.len()
            ),
        ));
    }
    for (i, sel) in sels.iter().enumerate() {
        selectors::check(spec, ctx, sel, &p.index(i), errors);
    }
}

pub(super) fn check_tracepoint(
    spec: &TracingPolicySpec,
    tp: &TracepointSpec,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    for (name, v) in [("subsystem", &tp.subsystem), ("event", &tp.event)] {
        if v.trim().is_empty() {
            errors.push(PolicyError::invalid(
                &path.field(name),
                format!("empty, but a tracepoint needs a {name}"),
            ));
        }
    }
    check_common(tp.message.as_deref(), tp.tags.as_deref(), path, errors);
    let args = tp.args.as_deref().unwrap_or_default();
    check_args(HookKind::Tracepoint, args, &path.field("args"), errors);
    let ctx = HookCtx {
        kind: HookKind::Tracepoint,
        args,
        return_arg: None,
    };
    check_selectors(spec, &ctx, tp.selectors.as_deref(), path, errors);
}

pub(super) fn check_uprobe(
    spec: &TracingPolicySpec,
    up: &UProbeSpec,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    if up.path.trim().is_empty() {
        errors.push(PolicyError::invalid(
            &path.field("path"),
            "empty, but a uprobe needs the binary path",
        ));
    }
    let given: Vec<&str> = [
        ("symbols", up.symbols.is_some()),
        ("offsets", up.offsets.is_some()),
        ("addrs", up.addrs.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, set)| set.then_some(n))
    .collect();
    match given.len() {
        0 => errors.push(PolicyError::invalid(
            path,
            "no symbols, offsets or addrs, but a uprobe needs exactly one of them",
        )),
        1 => {}
        _ => errors.push(PolicyError::invalid(
            &path.field(given[1]),
            format!(
                "{} are all set, but a uprobe takes at most one of symbols, offsets or addrs",
                given.join(" and ")
            ),
        )),
    }
    if let (Some(refs), Some(syms)) = (&up.ref_ctr_offsets, &up.symbols) {
        if refs.len() != syms.len() {
            errors.push(PolicyError::invalid(
                &path.field("refCtrOffsets"),
                format!(
                    "{} entries, but there must be one per symbol ({})",
                    refs.len(),
                    syms.len()
                ),
            ));
        }
    }
    for (i, s) in up.symbols.iter().flatten().enumerate() {
        if s.trim().is_empty() {
            errors.push(PolicyError::invalid(
                &path.field("symbols").index(i),
                "empty symbol name",
            ));
        }
    }
    if up.binary_digests.as_ref().is_some_and(|d| !d.is_empty()) {
        errors.push(PolicyError::unsupported(
            &path.field("binaryDigests"),
            "binaryDigests (uprobe digest verification)",
        ));
    }
    if up.btf_path.is_some() {
        errors.push(PolicyError::unsupported(
            &path.field("btfPath"),
            "btfPath (user space BTF)",
        ));
    }
    check_common(up.message.as_deref(), up.tags.as_deref(), path, errors);
    let args = up.args.as_deref().unwrap_or_default();
    check_args(HookKind::Uprobe, args, &path.field("args"), errors);
    if up.data.as_ref().is_some_and(|d| !d.is_empty()) {
        errors.push(PolicyError::unsupported(
            &path.field("data"),
            "data (extra BTF-resolved data)",
        ));
    }
    let ret = up.return_.unwrap_or(false);
    check_return(HookKind::Uprobe, ret, up.return_arg.as_ref(), path, errors);
    let ctx = HookCtx {
        kind: HookKind::Uprobe,
        args,
        return_arg: if ret { up.return_arg.as_ref() } else { None },
    };
    check_selectors(spec, &ctx, up.selectors.as_deref(), path, errors);
}

pub(super) fn check_usdt(
    spec: &TracingPolicySpec,
    usdt: &UsdtSpec,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    for (field, value, what) in [
        ("path", &usdt.path, "the binary path"),
        ("provider", &usdt.provider, "the provider of the probe"),
        ("name", &usdt.name, "the name of the probe"),
    ] {
        if value.trim().is_empty() {
            errors.push(PolicyError::invalid(
                &path.field(field),
                format!("empty, but a USDT probe needs {what}"),
            ));
        }
    }
    if usdt.btf_path.is_some() {
        errors.push(PolicyError::unsupported(
            &path.field("btfPath"),
            "btfPath (user space BTF)",
        ));
    }
    check_common(usdt.message.as_deref(), usdt.tags.as_deref(), path, errors);
    let args = usdt.args.as_deref().unwrap_or_default();
    check_args(HookKind::Usdt, args, &path.field("args"), errors);
    let ctx = HookCtx {
        kind: HookKind::Usdt,
        args,
        return_arg: None,
    };
    check_selectors(spec, &ctx, usdt.selectors.as_deref(), path, errors);
}

pub(super) fn check_lsm(
    spec: &TracingPolicySpec,
    lsm: &LsmHookSpec,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    if lsm.hook.trim().is_empty() {
        errors.push(PolicyError::invalid(
            &path.field("hook"),
            "empty, but an lsmhook needs a hook name (e.g. file_open)",
        ));
    }
    check_common(lsm.message.as_deref(), lsm.tags.as_deref(), path, errors);
    let args = lsm.args.as_deref().unwrap_or_default();
    check_args(HookKind::Lsm, args, &path.field("args"), errors);
    let ctx = HookCtx {
        kind: HookKind::Lsm,
        args,
        return_arg: None,
    };
    check_selectors(spec, &ctx, lsm.selectors.as_deref(), path, errors);
}
