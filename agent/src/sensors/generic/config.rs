//! What one hook's BPF program is told before load (`struct generic_config` in
//! bpf/lib/generic.h), and the check that the kernel side evaluates every part of the
//! hook's compiled selectors: a policy using something it does not is refused at load,
//! never silently half-enforced.
use tetra_crds::compile::encoding::{self, ArgValues, BinaryFilter};
use tetra_crds::compile::{AttachTarget, CompiledHook, ValueMap};
use tetra_crds::compile::op_code;
use tetra_crds::types::{ArgOperator, ArgType};
use tetra_crds::values::limits::{MAX_NUMERIC_VALUES, MAX_SELECTORS};

use super::maps;

/// Mirror of `struct generic_config`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenericConfig {
    pub policy_id: u32,
    pub hook_id: u32,
    pub agent_tgid: u32,
    pub n_args: u32,
    pub syscall: u32,
    pub can_override: u32,
    pub monitor_only: u32,
    pub needs_binary: u32,
    pub arg_reader: [u32; 5],
    pub arg_pos: [u32; 5],
    pub arg_size: [u32; 5],
    pub size_pos: [u32; 5],
    pub size_size: [u32; 5],
    pub has_return: u32,
    pub ret_reader: u32,
    pub return_copy: u32,
    pub follow_fd: u32,
    /// Pod-scoped policy: only tasks whose cgroup is in the `policy_cgroups` map.
    pub cgroup_filter: u32,
    /// Some Post of the hook asks for kernel or user stack traces.
    pub stack_traces: u32,
    /// The policy tracks sockets (TrackSock/UntrackSock): a tracked sock argument
    /// attributes the event to the socket's owner.
    pub sock_track: u32,
    /// returnArgAction: ACTION_TRACKSOCK or ACTION_UNTRACKSOCK on the returned sock, or 0.
    pub ret_sock_action: u32,
    /// Bit i: argument i is a maxData char_buf, its bytes sent in data messages.
    pub max_data: u32,
    /// Some selector filters on the task (see [`has_task_filters`]).
    pub task_filters: u32,
    /// The pre-check (see [`set_pre_check`]): selectors it covers (0: off), then per
    /// selector one integer filter's slot ([`NO_PRE_SLOT`]: none), operator, type code,
    /// value count and values.
    pub pre_selectors: u32,
    pub pre_slot: [u32; MAX_SELECTORS],
    pub pre_op: [u32; MAX_SELECTORS],
    pub pre_type: [u32; MAX_SELECTORS],
    pub pre_count: [u32; MAX_SELECTORS],
    /// Explicit padding: the values start 8-byte aligned.
    pub pre_pad: u32,
    pub pre_values: [[u64; MAX_NUMERIC_VALUES]; MAX_SELECTORS],
    /// Some selector's pre-check has a binary part.
    pub pre_binaries: u32,
    /// Explicit padding: the struct's size stays a multiple of 8.
    pub pre_bin_pad: u32,
    /// Per selector: the matchBinaries In/NotIn filter's operator (0: none), and the
    /// numbers of its paths.
    pub pre_bin_op: [u32; MAX_SELECTORS],
    pub pre_bin_count: [u32; MAX_SELECTORS],
    pub pre_bin_ids: [[u32; PRE_BIN_VALUES]; MAX_SELECTORS],
}

/// `PRE_BIN_VALUES` in bpf/lib/generic.h: most paths of a binary filter the pre-check
/// compares.
pub const PRE_BIN_VALUES: usize = 8;

/// `pre_slot` of a selector whose pre-check has no integer part.
pub const NO_PRE_SLOT: u32 = u32::MAX;

impl GenericConfig {
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: #[repr(C)] struct of u32s, u64s at an 8-byte aligned offset, then u32s
        // (no padding, checked by a test); the slice borrows self.
        unsafe {
            std::slice::from_raw_parts((self as *const Self).cast::<u8>(), std::mem::size_of::<Self>())
        }
    }
}

/// Reader codes (`READ_*` in bpf/lib/generic.h).
pub mod reader {
    pub const U64: u32 = 1;
    pub const S32: u32 = 2;
    pub const U32: u32 = 3;
    pub const S16: u32 = 4;
    pub const U16: u32 = 5;
    pub const S8: u32 = 6;
    pub const U8: u32 = 7;
    pub const STRING: u32 = 8;
    pub const CHAR_BUF: u32 = 9;
    pub const FD: u32 = 10;
    pub const FILE: u32 = 11;
    pub const PATH: u32 = 12;
    pub const FILENAME: u32 = 13;
    pub const BINPRM: u32 = 14;
    pub const SOCK: u32 = 15;
    pub const SOCKADDR: u32 = 16;
    pub const CRED: u32 = 17;
    pub const CAPS: u32 = 18;
    pub const SKB: u32 = 19;
    pub const IOVEC: u32 = 20;
    pub const NOP: u32 = 21;
    pub const DENTRY: u32 = 22;
    pub const KIOCB: u32 = 23;
    pub const NET_DEVICE: u32 = 24;
    pub const BPF_ATTR: u32 = 25;
    pub const PERF_EVENT: u32 = 26;
    pub const BPF_MAP: u32 = 27;
    pub const USER_NS: u32 = 28;
    pub const MODULE: u32 = 29;
    pub const LOAD_INFO: u32 = 30;
}

/// How the kernel reads an argument of type `ty`, or `None` when it cannot yet.
pub fn reader_for(ty: ArgType) -> Option<u32> {
    use ArgType::*;
    Some(match ty {
        Int | Sint32 | Int32 | Capability => reader::S32,
        Uint32 => reader::U32,
        Sint16 | Int16 => reader::S16,
        Uint16 => reader::U16,
        Sint8 | Int8 => reader::S8,
        Uint8 => reader::U8,
        Ulong | Uint64 | SizeT | Long | Sint64 | Int64 | Auto | Syscall64 => reader::U64,
        String => reader::STRING,
        CharBuf => reader::CHAR_BUF,
        Fd => reader::FD,
        File => reader::FILE,
        Path => reader::PATH,
        Filename => reader::FILENAME,
        LinuxBinprm => reader::BINPRM,
        Sock => reader::SOCK,
        Sockaddr => reader::SOCKADDR,
        Cred => reader::CRED,
        KernelCapT | CapInheritable | CapPermitted | CapEffective => reader::CAPS,
        Skb => reader::SKB,
        CharIovec => reader::IOVEC,
        Nop => reader::NOP,
        Dentry => reader::DENTRY,
        Kiocb => reader::KIOCB,
        NetDevice => reader::NET_DEVICE,
        BpfAttr => reader::BPF_ATTR,
        PerfEvent => reader::PERF_EVENT,
        BpfMap => reader::BPF_MAP,
        UserNamespace => reader::USER_NS,
        Module => reader::MODULE,
        LoadInfo => reader::LOAD_INFO,
        _ => return None,
    })
}

const BYTES_READERS: [u32; 10] = [
    reader::STRING,
    reader::CHAR_BUF,
    reader::FD,
    reader::FILE,
    reader::PATH,
    reader::FILENAME,
    reader::BINPRM,
    reader::DENTRY,
    reader::KIOCB,
    reader::NET_DEVICE,
];


/// Operator codes the kernel evaluates (crds `op_code`).
mod op {
    pub const EQUAL: u32 = 1;
    pub const NOT_EQUAL: u32 = 2;
    pub const NOT_POSTFIX: u32 = 6;
    pub const GT: u32 = 9;
    pub const LT: u32 = 10;
    pub const MASK: u32 = 11;
    /// SPort (12) to State (26): socket operators on sock and sockaddr arguments.
    pub const SPORT: u32 = 12;
    pub const PRIV_PORTS: [u32; 4] = [14, 15, 18, 19];
    pub const SADDR: u32 = 20;
    pub const NOT_DADDR: u32 = 23;
    pub const STATE: u32 = 26;
    pub const IN_MAP: u32 = 27;
    pub const NOT_IN_MAP: u32 = 28;
}

/// Action codes the kernel runs.
pub const ACTION_POST: u32 = 1;
pub const ACTION_FOLLOWFD: u32 = 2;
pub const ACTION_SIGKILL: u32 = 3;
pub const ACTION_UNFOLLOWFD: u32 = 4;
pub const ACTION_OVERRIDE: u32 = 5;
pub const ACTION_COPYFD: u32 = 6;
pub const ACTION_GETURL: u32 = 7;
pub const ACTION_DNSLOOKUP: u32 = 8;
pub const ACTION_NOPOST: u32 = 9;
pub const ACTION_SIGNAL: u32 = 10;
pub const ACTION_TRACKSOCK: u32 = 11;
pub const ACTION_UNTRACKSOCK: u32 = 12;

/// Longest exact string the kernel compares (`TETRA_ARG_STR_MAX`).
pub const MAX_EXACT_STRING: u32 = 1024;

/// Does the hook need a return program: `return: true`, or an argument read at return?
pub fn has_return(hook: &CompiledHook) -> bool {
    let ret = matches!(
        hook.attach,
        AttachTarget::Kprobe { return_probe: true, .. }
            | AttachTarget::Uprobe { return_probe: true, .. }
            | AttachTarget::Fentry { return_probe: true, .. }
    );
    ret || hook.args.iter().any(|a| a.return_copy)
}

/// Does some Post of the hook ask for stack traces (its third parameter)?
pub fn wants_stack_traces(hook: &CompiledHook) -> bool {
    hook.actions().any(|a| a.code == ACTION_POST && a.params.get(2).is_some_and(|flags| *flags != 0))
}

/// Does any selector of the policy run one of `codes`?
fn uses_action(hooks: &[CompiledHook], codes: &[u32]) -> bool {
    hooks.iter().flat_map(CompiledHook::actions).any(|a| codes.contains(&a.code))
}

/// Does any selector of the policy use FollowFD? Then every `fd` argument of the policy
/// resolves through the followed fds only.
pub fn uses_follow_fd(hooks: &[CompiledHook]) -> bool {
    uses_action(hooks, &[ACTION_FOLLOWFD])
}

/// Does the policy track sockets (TrackSock/UntrackSock as an action or a
/// returnArgAction)? Then its hooks share a socket -> owner map, and an event with a
/// tracked sock argument belongs to the socket's owner.
pub fn uses_sock_track(hooks: &[CompiledHook]) -> bool {
    hooks.iter().any(|h| h.return_arg_action.is_some()) || uses_action(hooks, &[ACTION_TRACKSOCK, ACTION_UNTRACKSOCK])
}

fn is_int_reader(r: u32) -> bool {
    (reader::U64..=reader::U8).contains(&r) || r == reader::CAPS
}

/// `UntrackSock` for code 12: the KprobeAction name, in the policy's spelling.
fn action_name(code: u32) -> String {
    use tetra_proto::tetragon::KprobeAction;
    match i32::try_from(code).ok().and_then(|c| KprobeAction::try_from(c).ok()) {
        Some(a) => a.as_str_name().trim_start_matches("KPROBE_ACTION_").to_string(),
        None => format!("code {code}"),
    }
}

/// Why a hook cannot run on the kernel side as compiled; the message is for the user.
pub fn check_hook(hook: &CompiledHook, can_override: bool) -> Result<(), String> {
    let is_kprobe = matches!(hook.attach, AttachTarget::Kprobe { .. });
    let is_lsm = matches!(hook.attach, AttachTarget::Lsm { .. });
    let is_probe = is_kprobe || matches!(hook.attach, AttachTarget::Uprobe { .. } | AttachTarget::Fentry { .. });
    match &hook.attach {
        AttachTarget::Uprobe { location: tetra_crds::compile::UprobeLocation::Address(_), .. } => {
            return Err("uprobe addrs are not supported yet; use symbols or offsets".into())
        }
        _ => {}
    }
    if hook.args.len() > 5 {
        return Err(format!("{} args, but at most 5 are recorded", hook.args.len()));
    }
    // Readers by slot; the return value (slot 5) is the last one when recorded.
    let mut readers = Vec::new();
    for (i, a) in hook.args.iter().enumerate() {
        let r = reader_for(a.ty).ok_or_else(|| format!("argument type {} is not supported yet", a.ty.name()))?;
        if a.return_copy && !is_probe {
            return Err(format!("args[{i}]: returnCopy needs a return probe, which only kprobes, fentries and uprobes have"));
        }
        if r == reader::IOVEC && a.size_arg_index == 0 {
            return Err(format!("args[{i}]: char_iovec needs sizeArgIndex (the argument holding the iovec count)"));
        }
        if a.max_data && r != reader::CHAR_BUF {
            return Err(format!("args[{i}]: maxData on {} is not supported yet (only on char_buf)", a.ty.name()));
        }
        if a.max_data && a.size_arg_index == 0 && !a.return_copy {
            return Err(format!("args[{i}]: maxData needs sizeArgIndex or returnCopy (the buffer's size)"));
        }
        readers.push(r);
    }
    while readers.len() < 5 {
        readers.push(0);
    }
    if let Some(ret) = &hook.return_arg {
        let r = reader_for(ret.ty)
            .filter(|r| *r != reader::CHAR_BUF)
            .ok_or_else(|| format!("returnArg of type {} is not supported yet", ret.ty.name()))?;
        readers.push(r);
    }
    match (hook.return_arg_action, readers.get(5)) {
        (None, _) | (Some(ACTION_TRACKSOCK | ACTION_UNTRACKSOCK), Some(&reader::SOCK)) => {}
        (Some(code), _) => {
            return Err(format!("returnArgAction {} needs a returnArg of type sock", action_name(code)))
        }
    }
    for (i, m) in hook.maps.iter().enumerate() {
        if let ValueMap::Strings { bucket, .. } = m {
            if *bucket > MAX_EXACT_STRING {
                return Err(format!("value map {i} holds strings longer than {MAX_EXACT_STRING} bytes, which the kernel side does not compare yet"));
            }
        }
        if let ValueMap::Lpm { kind: tetra_crds::compile::LpmKind::Prefix, entries } = m {
            if entries.iter().any(|e| e.data.len() > super::maps::PREFIX_LEN) {
                return Err(format!("value map {i} holds prefixes longer than {} bytes, which the kernel side does not compare", super::maps::PREFIX_LEN));
            }
        }
    }
    let sels = encoding::decode(&hook.selector_blob).map_err(|e| format!("selector blob: {e}"))?;
    if sels.len() > 5 {
        return Err(format!("{} selectors, but at most 5 are evaluated", sels.len()));
    }
    let type_name = |slot: u32| match hook.args.get(slot as usize) {
        Some(a) => a.ty.name(),
        None => hook.return_arg.as_ref().map(|r| r.ty.name()).unwrap_or_else(|| "unknown".into()),
    };
    for (i, s) in sels.iter().enumerate() {
        let at = |m: String| format!("selectors[{i}]: {m}");
        if s.namespaces.len() > 5 || s.namespaces.iter().any(|n| n.inodes.len() > 16) {
            return Err(at("matchNamespaces with more than 5 filters, or more than 16 values in one, is not evaluated in the kernel".into()));
        }
        if s.capabilities.len() > 5 {
            return Err(at("more than 5 matchCapabilities filters are not evaluated in the kernel".into()));
        }
        if let Some(c) = s.capabilities.iter().find(|c| c.flags & !1 != 0) {
            return Err(at(format!("matchCapabilities flags {:#x} are not evaluated in the kernel", c.flags)));
        }
        if s.namespace_changes.len() > 5 || s.capability_changes.len() > 5 {
            return Err(at("more than 5 matchNamespaceChanges or matchCapabilityChanges filters are not evaluated in the kernel".into()));
        }
        if s.capability_changes.iter().any(|c| c.flags != 0) {
            return Err(at("matchCapabilityChanges isNamespaceCapability is not supported yet".into()));
        }
        if s.pids.len() > 5 || s.pids.iter().any(|p| p.pids.len() > 16) {
            return Err(at("matchPIDs with more than 5 filters or more than 16 values is not supported".into()));
        }
        if s.binaries.iter().any(|b| b.map_ids.len() > 16) {
            return Err(at("matchBinaries with more than 16 value maps is not evaluated in the kernel".into()));
        }
        for (what, filters) in [("matchArgs", &s.args), ("matchReturnArgs", &s.return_args)] {
            if filters.len() > 5 {
                return Err(at(format!("{} {what} filters, but at most 5 are evaluated", filters.len())));
            }
            for f in filters {
                let r = readers
                    .get(f.slot as usize)
                    .copied()
                    .filter(|r| *r != 0)
                    .ok_or_else(|| at(format!("{what} filter on unknown slot {}", f.slot)))?;
                let sock = [reader::SOCK, reader::SOCKADDR, reader::SKB].contains(&r);
                if r == reader::SKB && f.op == op::STATE {
                    return Err(at(format!("{what}: State on an skb argument is not evaluated in the kernel (an skb has no TCP state)")));
                }
                let ok = match (&f.values, f.op) {
                    (ArgValues::Maps(ids), op::SADDR..=op::NOT_DADDR) => sock && ids.len() == 2,
                    (ArgValues::Maps(ids), op::SPORT..=op::STATE) => sock && ids.len() == 1,
                    (ArgValues::None, o) => sock && op::PRIV_PORTS.contains(&o),
                    (ArgValues::Inline(v), o) => is_int_reader(r) && v.len() <= 16 && matches!(o, op::EQUAL | op::NOT_EQUAL | op::GT | op::LT | op::MASK),
                    (ArgValues::Maps(ids), o) if is_int_reader(r) => ids.len() <= 16 && matches!(o, op::IN_MAP | op::NOT_IN_MAP),
                    (ArgValues::Maps(ids), o) => {
                        BYTES_READERS.contains(&r) && ids.len() <= 16 && (op::EQUAL..=op::NOT_POSTFIX).contains(&o)
                    }
                };
                if !ok {
                    return Err(at(format!("{what}: operator code {} on a {} argument is not evaluated in the kernel yet", f.op, type_name(f.slot))));
                }
            }
        }
        for (what, actions) in [("matchActions", &s.actions), ("matchReturnActions", &s.return_actions)] {
            if actions.len() > 3 {
                return Err(at(format!("more than 3 {what}")));
            }
            for a in actions {
                let slot = |k: usize| a.params.get(k).and_then(|p| readers.get(*p as usize).copied()).unwrap_or(0);
                match a.code {
                    ACTION_POST | ACTION_NOPOST | ACTION_SIGKILL | ACTION_SIGNAL => {}
                    // The validator checks argFd is an integer or fd and FollowFD's argName a
                    // name; the kernel reads CopyFD's new fd as an integer too.
                    ACTION_COPYFD if !(is_int_reader(slot(1)) || slot(1) == reader::FD) => {
                        return Err(at(format!("{what}: CopyFD argName {} (the new fd) is not an integer or fd argument of the hook", a.params.get(1).copied().unwrap_or(0))));
                    }
                    ACTION_FOLLOWFD | ACTION_UNFOLLOWFD | ACTION_COPYFD => {}
                    ACTION_TRACKSOCK | ACTION_UNTRACKSOCK if slot(0) != reader::SOCK => {
                        return Err(at(format!("{what}: {} argSock is not a sock argument of the hook", action_name(a.code))));
                    }
                    ACTION_TRACKSOCK | ACTION_UNTRACKSOCK => {}
                    ACTION_GETURL | ACTION_DNSLOOKUP if what == "matchReturnActions" => {
                        return Err(at(format!("{what}: action {} is not supported yet (only in matchActions)", action_name(a.code))));
                    }
                    // The agent makes the request when the hit's event arrives.
                    ACTION_GETURL | ACTION_DNSLOOKUP if actions.iter().any(|b| b.code == ACTION_NOPOST) => {
                        return Err(at(format!("{what}: {} with NoPost: the agent acts on the posted event", action_name(a.code))));
                    }
                    ACTION_GETURL | ACTION_DNSLOOKUP => {
                        let text = hook.action_string(a).unwrap_or("");
                        let valid = if a.code == ACTION_GETURL {
                            crate::user_actions::parse_url(text).map(|_| ())
                        } else {
                            crate::user_actions::dns_query(text, 0).map(|_| ())
                        };
                        valid.map_err(|e| at(format!("{what}: {e}")))?;
                    }
                    ACTION_OVERRIDE if what == "matchReturnActions" => {
                        return Err(at("Override in matchReturnActions: the call has already happened".into()))
                    }
                    ACTION_OVERRIDE if is_lsm => {}
                    ACTION_OVERRIDE if is_kprobe && can_override => {}
                    ACTION_OVERRIDE if is_kprobe && fmod_ret_target(hook) && has_return(hook) => {
                        return Err(at("Override on a security_* function of a kernel without bpf_override_return runs as fmod_ret, which cannot be combined with a return probe".into()))
                    }
                    ACTION_OVERRIDE if is_kprobe && fmod_ret_target(hook) => {}
                    ACTION_OVERRIDE if is_kprobe => {
                        return Err(at("Override on a kprobe needs bpf_override_return (CONFIG_BPF_KPROBE_OVERRIDE), which this kernel lacks, or a security_* function (fmod_ret); use an lsmhooks entry".into()))
                    }
                    ACTION_OVERRIDE => return Err(at("Override works on kprobes and LSM hooks only".into())),
                    code => return Err(at(format!("{what}: action {} is not supported yet", action_name(code)))),
                }
            }
        }
    }
    Ok(())
}

/// Does any selector of the hook post with a rateLimit?
pub fn uses_rate_limit(hook: &CompiledHook) -> bool {
    hook.selectors
        .iter()
        .flat_map(|s| &s.actions)
        .any(|a| a.code == ACTION_POST && a.params.first().is_some_and(|ms| *ms != 0))
}

/// Does any selector of the hook filter on the binary?
/// A kprobe on a security_* function: the kernel lets an fmod_ret program (a BPF
/// trampoline) return an error in its place, which is how Override runs there on kernels
/// without bpf_override_return.
pub fn fmod_ret_target(hook: &CompiledHook) -> bool {
    matches!(&hook.attach, AttachTarget::Kprobe { symbol, .. } if symbol.starts_with("security_"))
}

/// Does the hook run as fmod_ret: an Override on a security_* function, and no
/// bpf_override_return on this kernel (check_hook accepted it).
pub fn uses_fmod_ret(hook: &CompiledHook, can_override: bool) -> bool {
    !can_override
        && fmod_ret_target(hook)
        && hook.selectors.iter().any(|s| s.actions.iter().any(|a| a.code == ACTION_OVERRIDE))
}

/// `NEEDS_BINARY` in bpf/lib/generic.h: some selector has matchBinaries.
pub const NEEDS_BINARY: u32 = 1;
/// `NEEDS_BINARY_PATH`: one of them compares the path (Prefix/Postfix and their negations;
/// In/NotIn compare the binary's number).
pub const NEEDS_BINARY_PATH: u32 = 2;

/// `generic_config.needs_binary`: what the kernel reads about the executable.
pub fn needs_binary(hook: &CompiledHook) -> u32 {
    let filters = || hook.selectors.iter().flat_map(|s| &s.binaries);
    let mut needs = 0;
    if filters().next().is_some() {
        needs |= NEEDS_BINARY;
    }
    if filters().any(|f| !maps::binary_by_number(f.op)) {
        needs |= NEEDS_BINARY_PATH;
    }
    needs
}

/// The pre-check, which the kernel evaluates before it looks up its scratch or reads
/// anything but what it compares: for each selector, its first matchArgs filter comparing
/// an argument read as an integer with inline values (Equal, NotEqual, GT, LT, Mask),
/// tested on the call's registers, and its matchBinaries In/NotIn filter (without
/// followChildren, at most [`PRE_BIN_VALUES`] paths), tested on the process's binary
/// number; a call no selector passes there is rejected at once. Left off unless every
/// selector has one of the two (a selector with neither could match any call).
/// `cfg.arg_reader` must be set; `numbers` gives a binary filter's path numbers.
pub fn set_pre_check(
    hook: &CompiledHook,
    cfg: &mut GenericConfig,
    numbers: impl Fn(&BinaryFilter) -> Option<Vec<u32>>,
) {
    let ops = [ArgOperator::Equal, ArgOperator::NotEqual, ArgOperator::Gt, ArgOperator::Lt, ArgOperator::Mask]
        .map(op_code);
    let integer_slot = |slot: u32| {
        (slot as usize) < hook.args.len().min(cfg.arg_reader.len())
            && (reader::U64..=reader::U8).contains(&cfg.arg_reader[slot as usize])
    };
    const FOLLOW_CHILDREN: u32 = 1;
    let mut chosen = Vec::new();
    for selector in &hook.selectors {
        let integer = selector.args.iter().find_map(|f| match &f.values {
            ArgValues::Inline(values)
                if ops.contains(&f.op) && values.len() <= MAX_NUMERIC_VALUES && integer_slot(f.slot) =>
            {
                Some((f, values))
            }
            _ => None,
        });
        let binary = selector
            .binaries
            .iter()
            .find(|f| maps::binary_by_number(f.op) && f.flags & FOLLOW_CHILDREN == 0)
            .and_then(|f| Some((f.op, numbers(f)?)))
            .filter(|(_, ids)| ids.len() <= PRE_BIN_VALUES);
        if integer.is_none() && binary.is_none() {
            return;
        }
        chosen.push((integer, binary));
    }
    if chosen.len() > MAX_SELECTORS {
        return;
    }
    cfg.pre_selectors = chosen.len() as u32;
    for (i, (integer, binary)) in chosen.into_iter().enumerate() {
        cfg.pre_slot[i] = NO_PRE_SLOT;
        if let Some((f, values)) = integer {
            (cfg.pre_slot[i], cfg.pre_op[i], cfg.pre_type[i]) = (f.slot, f.op, f.type_code);
            cfg.pre_count[i] = values.len() as u32;
            cfg.pre_values[i][..values.len()].copy_from_slice(values);
        }
        if let Some((op, ids)) = binary {
            cfg.pre_binaries = 1;
            (cfg.pre_bin_op[i], cfg.pre_bin_count[i]) = (op, ids.len() as u32);
            cfg.pre_bin_ids[i][..ids.len()].copy_from_slice(&ids);
        }
    }
}

/// Does any selector filter on the task (pids, namespaces, capabilities, binary)? Without
/// one the kernel skips the selectors' first phase.
pub fn has_task_filters(hook: &CompiledHook) -> bool {
    hook.selectors.iter().any(|s| {
        !(s.pids.is_empty() && s.namespaces.is_empty() && s.capabilities.is_empty() && s.binaries.is_empty())
    })
}

/// One field of a tracepoint's format file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpField {
    pub name: String,
    pub offset: u32,
    pub size: u32,
}

/// Parses `events/<subsystem>/<event>/format`: every `field:` line, in order (the common
/// fields included, as Tetragon counts tracepoint argument indexes).
pub fn parse_tp_format(text: &str) -> Vec<TpField> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("field:") else { continue };
        let mut parts = rest.split(';').map(str::trim);
        let decl = parts.next().unwrap_or("");
        let name = decl
            .split_whitespace()
            .last()
            .unwrap_or("")
            .split('[')
            .next()
            .unwrap_or("")
            .to_string();
        let mut offset = None;
        let mut size = None;
        for p in parts {
            if let Some(v) = p.strip_prefix("offset:") {
                offset = v.parse().ok();
            } else if let Some(v) = p.strip_prefix("size:") {
                size = v.parse().ok();
            }
        }
        if let (Some(offset), Some(size)) = (offset, size) {
            out.push(TpField { name, offset, size });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAT: &str = "name: sys_enter_openat
ID: 700
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;

print fmt: \"dfd: 0x%08lx\"
";

    #[test]
    fn tracepoint_fields_by_index() {
        let f = parse_tp_format(OPENAT);
        assert_eq!(f.len(), 9);
        assert_eq!(f[6], TpField { name: "filename".into(), offset: 24, size: 8 });
        assert_eq!(f[4], TpField { name: "__syscall_nr".into(), offset: 8, size: 4 });
    }

    #[test]
    fn config_matches_btf() {
        use libbpf_rs::btf::types::Struct;
        use libbpf_rs::btf::{Btf, HasSize};
        let btf = Btf::from_path(concat!(env!("OUT_DIR"), "/generic.bpf.o")).unwrap();
        let s = btf.type_by_name::<Struct>("generic_config").expect("generic_config in BTF");
        assert_eq!(s.size(), std::mem::size_of::<GenericConfig>());
        // No padding for as_bytes: 66 u32s (pre_pad included), the u64 values, then the
        // binary part's u32s (an even number of them: the struct ends 8-byte aligned).
        let bin_u32s = 2 + 2 * MAX_SELECTORS + MAX_SELECTORS * PRE_BIN_VALUES;
        assert_eq!(bin_u32s % 2, 0);
        assert_eq!(
            std::mem::size_of::<GenericConfig>(),
            66 * 4 + MAX_SELECTORS * MAX_NUMERIC_VALUES * 8 + bin_u32s * 4
        );
        let names: Vec<String> =
            s.iter().map(|m| m.name.unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, [
            "policy_id", "hook_id", "agent_tgid", "n_args", "syscall", "can_override",
            "monitor_only", "needs_binary", "arg_reader", "arg_pos", "arg_size", "size_pos",
            "size_size", "has_return", "ret_reader", "return_copy", "follow_fd", "cgroup_filter",
            "stack_traces",
            "sock_track", "ret_sock_action",
            "max_data", "task_filters", "pre_selectors", "pre_slot", "pre_op", "pre_type",
            "pre_count", "pre_pad", "pre_values", "pre_binaries", "pre_bin_pad", "pre_bin_op", "pre_bin_count",
            "pre_bin_ids"
        ]);
        let bin = btf.type_by_name::<Struct>("binary_entry").unwrap();
        assert_eq!(bin.size(), crate::sensors::process::BINARY_ENTRY_SIZE);
        let key = btf.type_by_name::<Struct>("fd_key").unwrap();
        assert_eq!(key.size(), super::super::FD_KEY_SIZE as usize);
        let value = btf.type_by_name::<Struct>("fd_value").unwrap();
        assert_eq!(value.size(), super::super::FD_VALUE_SIZE as usize);
        let chunk = btf.type_by_name::<Struct>("max_data_buf").unwrap();
        assert_eq!(chunk.size(), super::super::DATA_CHUNK_SIZE as usize);
    }

    fn hook(yaml: &str) -> CompiledHook {
        let compiled = tetra_crds::check_policy_yaml(yaml).expect("policy compiles");
        compiled.hooks.into_iter().next().unwrap()
    }

    #[test]
    fn pre_check_takes_one_integer_filter_of_every_selector() {
        let pre = |selectors: &str| {
            let h = hook(&format!("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {{name: t}}\nspec:\n  kprobes:\n  - call: sys_openat\n    syscall: true\n    args: [{{index: 0, type: int}}, {{index: 1, type: string}}, {{index: 2, type: uint32}}, {{index: 3, type: fd}}]\n    selectors:\n{selectors}"));
            let mut cfg = GenericConfig::default();
            for (i, a) in h.args.iter().enumerate() {
                cfg.arg_reader[i] = reader_for(a.ty).unwrap();
            }
            set_pre_check(&h, &mut cfg, |f| Some(fake_numbers(&h, f)));
            cfg
        };
        // The first integer filter of each selector; a string filter before it is skipped.
        let cfg = pre("    - matchArgs: [{index: 1, operator: Prefix, values: [/etc]}, {index: 2, operator: Mask, values: [\"3\", \"64\"]}]\n    - matchArgs: [{index: 0, operator: NotEqual, values: [\"-100\"]}]\n");
        assert_eq!(cfg.pre_selectors, 2);
        assert_eq!((cfg.pre_slot[0], cfg.pre_op[0], cfg.pre_count[0]), (2, op_code(ArgOperator::Mask), 2));
        assert_eq!(cfg.pre_values[0][..2], [3, 64]);
        assert_eq!((cfg.pre_slot[1], cfg.pre_op[1], cfg.pre_type[1]), (0, op_code(ArgOperator::NotEqual), ArgType::Int as u32));
        assert_eq!(cfg.pre_values[1][0], -100i64 as u64);
        // A selector without one (a string filter, an fd, none at all) could match any
        // call: no pre-check.
        for off in [
            "    - matchArgs: [{index: 0, operator: Equal, values: [\"1\"]}]\n    - matchArgs: [{index: 1, operator: Equal, values: [/etc/passwd]}]\n",
            "    - matchArgs: [{index: 3, operator: Equal, values: [\"1\"]}]\n",
            "    - matchArgs: [{index: 0, operator: Equal, values: [\"1\"]}]\n    - matchPIDs: [{operator: In, values: [1]}]\n",
        ] {
            assert_eq!(pre(off).pre_selectors, 0, "{off}");
        }
    }

    /// Numbers 10, 11, ... for the paths of a binary filter's value maps.
    fn fake_numbers(h: &CompiledHook, f: &BinaryFilter) -> Vec<u32> {
        let paths: usize = f
            .map_ids
            .iter()
            .map(|&m| match &h.maps[m as usize] {
                ValueMap::Strings { keys, .. } => keys.len(),
                _ => 0,
            })
            .sum();
        (10..10 + paths as u32).collect()
    }

    #[test]
    fn pre_check_takes_the_binary_filter_by_number() {
        let pre = |selectors: &str| {
            let h = hook(&format!("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {{name: t}}\nspec:\n  tracepoints:\n  - subsystem: syscalls\n    event: sys_enter_read\n    args: [{{index: 5, type: int}}]\n    selectors:\n{selectors}"));
            let mut cfg = GenericConfig::default();
            cfg.arg_reader[0] = reader::S32;
            set_pre_check(&h, &mut cfg, |f| Some(fake_numbers(&h, f)));
            cfg
        };
        // Binary only, binary and integer, and a selector with the integer part alone.
        let cfg = pre("    - matchBinaries: [{operator: In, values: [/usr/bin/dd, /bin/cat]}]\n    - matchBinaries: [{operator: NotIn, values: [/bin/sh]}]\n      matchArgs: [{index: 0, operator: Equal, values: [\"3\"]}]\n    - matchArgs: [{index: 0, operator: Equal, values: [\"4\"]}]\n");
        assert_eq!((cfg.pre_selectors, cfg.pre_binaries), (3, 1));
        assert_eq!(cfg.pre_slot[0], NO_PRE_SLOT);
        assert_eq!((cfg.pre_bin_op[0], cfg.pre_bin_count[0]), (1, 2));
        assert_eq!(cfg.pre_bin_ids[0][..2], [10, 11]);
        assert_eq!((cfg.pre_slot[1], cfg.pre_values[1][0]), (0, 3));
        assert_eq!((cfg.pre_bin_op[1], cfg.pre_bin_count[1], cfg.pre_bin_ids[1][0]), (2, 1, 10));
        assert_eq!((cfg.pre_slot[2], cfg.pre_bin_op[2]), (0, 0));
        // followChildren (ancestors), Prefix (the path), more paths than are inlined, or a
        // path without a number: that selector has no binary part, so no pre-check.
        let many: Vec<String> = (0..=PRE_BIN_VALUES).map(|i| format!("/bin/b{i}")).collect();
        for off in [
            "    - matchBinaries: [{operator: In, values: [/bin/sh], followChildren: true}]\n".to_string(),
            "    - matchBinaries: [{operator: Prefix, values: [/usr/]}]\n".to_string(),
            format!("    - matchBinaries: [{{operator: NotIn, values: [{}]}}]\n", many.join(", ")),
        ] {
            assert_eq!(pre(&off).pre_selectors, 0, "{off}");
        }
        let h = hook("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: t}\nspec:\n  tracepoints:\n  - subsystem: syscalls\n    event: sys_enter_read\n    selectors:\n    - matchBinaries: [{operator: In, values: [/bin/sh]}]\n");
        let mut cfg = GenericConfig::default();
        set_pre_check(&h, &mut cfg, |_| None);
        assert_eq!(cfg.pre_selectors, 0);
    }

    #[test]
    fn refuses_what_the_kernel_does_not_evaluate() {
        let base = "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: t}\nspec:\n";
        let ok = hook(&format!("{base}  kprobes:\n  - call: fd_install\n    syscall: false\n    args: [{{index: 0, type: int}}, {{index: 1, type: file}}]\n    selectors:\n    - matchArgs: [{{index: 1, operator: Prefix, values: [/etc/]}}]\n      matchBinaries: [{{operator: In, values: [/bin/cat]}}]\n"));
        assert_eq!(check_hook(&ok, false), Ok(()));
        assert_eq!(needs_binary(&ok), NEEDS_BINARY, "In compares numbers, not the path");
        let prefix = hook(&format!("{base}  kprobes:\n  - call: fd_install\n    syscall: false\n    selectors:\n    - matchBinaries: [{{operator: In, values: [/bin/cat]}}]\n    - matchBinaries: [{{operator: NotPostfix, values: [/cat]}}]\n"));
        assert_eq!(needs_binary(&prefix), NEEDS_BINARY | NEEDS_BINARY_PATH);
        let ns = hook(&format!("{base}  kprobes:\n  - call: fd_install\n    syscall: false\n    selectors:\n    - matchNamespaces: [{{namespace: Pid, operator: In, values: [host_ns]}}]\n      matchCapabilities: [{{type: Permitted, operator: NotIn, values: [CAP_SYS_ADMIN]}}]\n"));
        assert_eq!(check_hook(&ns, false), Ok(()));
        assert!(has_task_filters(&ok) && has_task_filters(&ns) && needs_binary(&ns) == 0);
        let ns_cap = hook(&format!("{base}  kprobes:\n  - call: fd_install\n    syscall: false\n    selectors:\n    - matchCapabilities: [{{operator: In, isNamespaceCapability: true, values: [CAP_SYS_ADMIN]}}]\n"));
        assert_eq!(check_hook(&ns_cap, false), Ok(()));
        // Filters on the kernel-object types are refused when the policy is validated.
        for ty in ["bpf_attr", "perf_event", "bpf_map", "user_namespace", "module", "load_info", "nop"] {
            let yaml = format!("{base}  kprobes:\n  - call: bpf_check\n    syscall: false\n    args: [{{index: 1, type: {ty}}}]\n    selectors:\n    - matchArgs: [{{index: 1, operator: Equal, values: [\"1\"]}}]\n");
            let err = format!("{:?}", tetra_crds::check_policy_yaml(&yaml).unwrap_err());
            assert!(err.contains(&format!(" {ty} argument (allowed: ")), "{err}");
            let plain = hook(&yaml.replace("    selectors:\n    - matchArgs: [{index: 1, operator: Equal, values: [\"1\"]}]\n", ""));
            assert_eq!(check_hook(&plain, false), Ok(()), "{ty}");
        }
        let netdev = hook(&format!("{base}  kprobes:\n  - call: dev_hard_start_xmit\n    syscall: false\n    args: [{{index: 1, type: net_device}}]\n    selectors:\n    - matchArgs: [{{index: 1, operator: Equal, values: [lo]}}]\n"));
        assert_eq!(check_hook(&netdev, false), Ok(()));
        let dentry = hook(&format!("{base}  kprobes:\n  - call: security_inode_follow_link\n    syscall: false\n    args: [{{index: 0, type: dentry}}]\n    selectors:\n    - matchArgs: [{{index: 0, operator: Prefix, values: [/tmp/]}}]\n"));
        assert_eq!(check_hook(&dentry, false), Ok(()));
        assert!(!has_task_filters(&dentry), "matchArgs alone is no task filter");
        let changes = hook(&format!("{base}  kprobes:\n  - call: fd_install\n    syscall: false\n    selectors:\n    - matchNamespaceChanges: [{{operator: In, values: [Mnt, Net]}}]\n      matchCapabilityChanges: [{{type: Effective, operator: NotIn, values: [CAP_SYS_ADMIN]}}]\n"));
        assert_eq!(check_hook(&changes, false), Ok(()));
        let ns_cap_change = hook(&format!("{base}  kprobes:\n  - call: fd_install\n    syscall: false\n    selectors:\n    - matchCapabilityChanges: [{{operator: In, isNamespaceCapability: true, values: [CAP_SYS_ADMIN]}}]\n"));
        assert_eq!(check_hook(&ns_cap_change, false), Err("selectors[0]: matchCapabilityChanges isNamespaceCapability is not supported yet".into()));
        let tcp = tetra_crds::check_policy_yaml(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/tracingpolicy/tcp-connections.yaml")).unwrap()).unwrap();
        for h in &tcp.hooks {
            assert_eq!(check_hook(h, false), Ok(()), "{}", h.source);
        }
        let sock = hook(&format!("{base}  kprobes:\n  - call: tcp_connect\n    syscall: false\n    args: [{{index: 0, type: sock}}]\n    selectors:\n    - matchArgs: [{{index: 0, operator: DPortPriv}}, {{index: 0, operator: SPort, values: [\"80:90\"]}}, {{index: 0, operator: State, values: [TCP_SYN_SENT]}}, {{index: 0, operator: Protocol, values: [IPPROTO_TCP]}}, {{index: 0, operator: SAddr, values: [10.0.0.0/8]}}]\n      matchActions: [{{action: Post, rateLimit: 1m, rateLimitScope: process}}]\n"));
        assert_eq!(check_hook(&sock, false), Ok(()));
        assert!(uses_rate_limit(&sock));
        assert!(!uses_rate_limit(&ok));
        let skb = hook(&format!("{base}  kprobes:\n  - call: ip_rcv\n    syscall: false\n    args: [{{index: 0, type: skb}}]\n    selectors:\n    - matchArgs: [{{index: 0, operator: State, values: [TCP_ESTABLISHED]}}]\n"));
        assert_eq!(check_hook(&skb, false), Err("selectors[0]: matchArgs: State on an skb argument is not evaluated in the kernel (an skb has no TCP state)".into()));
        let cred = hook(&format!("{base}  kprobes:\n  - call: cap_capset\n    syscall: false\n    args: [{{index: 0, type: cred}}, {{index: 2, type: kernel_cap_t}}]\n    selectors:\n    - matchArgs: [{{index: 2, operator: Mask, values: [\"0x200000\"]}}]\n"));
        assert_eq!(check_hook(&cred, false), Ok(()));
        let fentry = hook(&format!("{base}  fentries:\n  - call: tcp_connect\n    syscall: false\n    args: [{{index: 0, type: sock}}]\n"));
        assert_eq!(check_hook(&fentry, false), Ok(()));
        let fexit = hook(&format!("{base}  fentries:\n  - call: tcp_connect\n    syscall: false\n    return: true\n    returnArg: {{index: 0, type: int}}\n"));
        assert_eq!(check_hook(&fexit, false), Ok(()));
        assert!(has_return(&fexit));
        let ovr = hook(&format!("{base}  kprobes:\n  - call: sys_openat\n    selectors:\n    - matchActions: [{{action: Override, argError: -1}}]\n"));
        assert!(check_hook(&ovr, false).unwrap_err().contains("bpf_override_return"));
        assert_eq!(check_hook(&ovr, true), Ok(()));
        assert!(!uses_fmod_ret(&ovr, false));
        let fmod = hook(&format!("{base}  kprobes:\n  - call: security_file_open\n    syscall: false\n    args: [{{index: 0, type: file}}]\n    selectors:\n    - matchActions: [{{action: Override, argError: -13}}]\n"));
        assert_eq!(check_hook(&fmod, false), Ok(()));
        assert!(uses_fmod_ret(&fmod, false));
        assert!(!uses_fmod_ret(&fmod, true), "bpf_override_return keeps the kprobe");
        let ret = hook(&format!("{base}  kprobes:\n  - call: sys_dup\n    return: true\n    args: [{{index: 0, type: int}}]\n    returnArg: {{index: 0, type: int}}\n    selectors:\n    - matchReturnArgs: [{{index: 0, operator: GT, values: [\"0\"]}}]\n      matchReturnActions: [{{action: UnfollowFD, argFd: 0}}]\n"));
        assert_eq!(check_hook(&ret, false), Ok(()));
        assert!(has_return(&ret));
        let copy = hook(&format!("{base}  kprobes:\n  - call: sys_dup2\n    args: [{{index: 0, type: int}}, {{index: 1, type: string}}]\n    selectors:\n    - matchActions: [{{action: CopyFD, argFd: 0, argName: 1}}]\n"));
        assert_eq!(check_hook(&copy, false).unwrap_err(), "selectors[0]: matchActions: CopyFD argName 1 (the new fd) is not an integer or fd argument of the hook");
        let read = hook(&format!("{base}  kprobes:\n  - call: sys_read\n    args: [{{index: 0, type: fd}}, {{index: 1, type: char_buf, returnCopy: true}}, {{index: 2, type: size_t}}]\n"));
        assert_eq!(check_hook(&read, false), Ok(()));
        assert!(has_return(&read));
        let copy_tp = hook(&format!("{base}  tracepoints:\n  - subsystem: syscalls\n    event: sys_enter_read\n    args: [{{index: 6, type: char_buf, returnCopy: true}}]\n"));
        assert_eq!(check_hook(&copy_tp, false).unwrap_err(), "args[0]: returnCopy needs a return probe, which only kprobes, fentries and uprobes have");
        let iov = hook(&format!("{base}  kprobes:\n  - call: sys_readv\n    args: [{{index: 0, type: fd}}, {{index: 1, type: char_iovec, sizeArgIndex: 3, returnCopy: true}}]\n"));
        assert_eq!(check_hook(&iov, false), Ok(()));
        let iov = hook(&format!("{base}  kprobes:\n  - call: sys_writev\n    args: [{{index: 1, type: char_iovec}}]\n"));
        assert_eq!(check_hook(&iov, false).unwrap_err(), "args[0]: char_iovec needs sizeArgIndex (the argument holding the iovec count)");
        let max = hook(&format!("{base}  kprobes:\n  - call: sys_write\n    args: [{{index: 1, type: char_buf, sizeArgIndex: 3, maxData: true}}, {{index: 2, type: size_t}}]\n"));
        assert_eq!(check_hook(&max, false), Ok(()));
        let max_read = hook(&format!("{base}  kprobes:\n  - call: sys_read\n    args: [{{index: 1, type: char_buf, returnCopy: true, maxData: true}}]\n"));
        assert_eq!(check_hook(&max_read, false), Ok(()));
        let max_unsized = hook(&format!("{base}  kprobes:\n  - call: sys_write\n    args: [{{index: 1, type: char_buf, maxData: true}}]\n"));
        assert_eq!(check_hook(&max_unsized, false).unwrap_err(), "args[0]: maxData needs sizeArgIndex or returnCopy (the buffer's size)");
        let max_iov = hook(&format!("{base}  kprobes:\n  - call: sys_writev\n    args: [{{index: 1, type: char_iovec, sizeArgIndex: 3, maxData: true}}]\n"));
        assert_eq!(check_hook(&max_iov, false).unwrap_err(), "args[0]: maxData on char_iovec is not supported yet (only on char_buf)");
        let follow = hook(&format!("{base}  kprobes:\n  - call: fd_install\n    syscall: false\n    args: [{{index: 0, type: int}}, {{index: 1, type: file}}]\n    selectors:\n    - matchPIDs: [{{operator: NotIn, followForks: true, isNamespacePID: true, values: [1]}}]\n      matchActions: [{{action: FollowFD, argFd: 0, argName: 1}}]\n"));
        assert_eq!(check_hook(&follow, false), Ok(()));
        assert!(uses_follow_fd(std::slice::from_ref(&follow)));
        assert!(!uses_sock_track(std::slice::from_ref(&follow)));
        let track = hook(&format!("{base}  kprobes:\n  - call: sk_alloc\n    syscall: false\n    return: true\n    args: [{{index: 1, type: int}}]\n    returnArg: {{index: 0, type: sock}}\n    returnArgAction: TrackSock\n"));
        assert_eq!(check_hook(&track, false), Ok(()));
        assert_eq!(track.return_arg_action, Some(ACTION_TRACKSOCK));
        assert!(uses_sock_track(std::slice::from_ref(&track)));
        let untrack = hook(&format!("{base}  kprobes:\n  - call: __sk_free\n    syscall: false\n    args: [{{index: 0, type: sock}}]\n    selectors:\n    - matchActions: [{{action: UntrackSock, argSock: 0}}]\n"));
        assert_eq!(check_hook(&untrack, false), Ok(()));
        assert!(uses_sock_track(std::slice::from_ref(&untrack)));
        let get = |actions: &str| hook(&format!("{base}  kprobes:\n  - call: fd_install\n    syscall: false\n    args: [{{index: 0, type: int}}]\n    selectors:\n    - matchActions: {actions}\n"));
        assert_eq!(check_hook(&get("[{action: GetUrl, argUrl: 'http://ebpf.io'}, {action: DnsLookup, argFqdn: ebpf.io}]"), false), Ok(()));
        assert_eq!(check_hook(&get("[{action: GetUrl, argUrl: 'https://ebpf.io'}]"), false).unwrap_err(), "selectors[0]: matchActions: argUrl \"https://ebpf.io\": only http:// URLs are fetched");
        assert!(check_hook(&get("[{action: DnsLookup, argFqdn: 'a..b'}]"), false).unwrap_err().contains("argFqdn \"a..b\""));
        assert_eq!(check_hook(&get("[{action: GetUrl, argUrl: 'http://x'}, {action: NoPost}]"), false).unwrap_err(), "selectors[0]: matchActions: GETURL with NoPost: the agent acts on the posted event");
    }
}

#[cfg(test)]
mod conformance {
    use super::check_hook;
    use tetra_crds::conformance::corpus_files;

    const BEGIN: &str = "<!-- kernel-refusals:begin -->";
    const END: &str = "<!-- kernel-refusals:end -->";

    /// The Tetragon example policies that compile but that this agent refuses at load,
    /// each hook with its reason, as the README lists them (regenerate with
    /// `UPDATE_CONFORMANCE=1`). Override counts as available, as on kernels with
    /// bpf_override_return.
    #[test]
    fn corpus_refusals_on_the_kernel_side_are_listed() {
        let Some(dir) = tetra_corpus::dir_for("corpus_refusals_on_the_kernel_side_are_listed", tetra_corpus::Part::Policies)
        else {
            return;
        };
        let mut table = String::from("| file | hook | refused because |\n|---|---|---|\n");
        for file in corpus_files(&dir).unwrap() {
            let Ok(policy) = tetra_crds::check_policy_yaml(&std::fs::read_to_string(&file).unwrap()) else { continue };
            let name = file.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
            for h in &policy.hooks {
                if let Err(e) = check_hook(h, true) {
                    table.push_str(&format!("| {name} | {} | {} |\n", h.source, e.replace('|', "\\|")));
                }
            }
        }
        let readme_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&readme_path).unwrap();
        let (Some(a), Some(b)) = (readme.find(BEGIN), readme.find(END)) else {
            panic!("README.md lacks the {BEGIN} ... {END} section");
        };
        let current = &readme[a + BEGIN.len()..b];
        if current.trim() != table.trim() {
            if std::env::var_os("UPDATE_CONFORMANCE").is_some() {
                let updated = format!("{}{BEGIN}\n{table}{}", &readme[..a], &readme[b..]);
                std::fs::write(&readme_path, updated).unwrap();
            } else {
                panic!("README.md's kernel refusal table is stale; run UPDATE_CONFORMANCE=1 cargo test -p tetra-agent --lib corpus_refusals\nwant:\n{table}");
            }
        }
    }
}
