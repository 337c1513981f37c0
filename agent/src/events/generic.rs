//! Policy hits -> `process_kprobe` / `process_tracepoint` / `process_uprobe` /
//! `process_lsm` / `process_usdt` events, with arguments rendered as Tetragon renders each type.
use std::net::{Ipv4Addr, Ipv6Addr};

use tetra_crds::types::ArgType;
use tetra_proto::tetragon::{self, get_events_response::Event, kprobe_argument::Arg, GetEventsResponse};

use crate::abi::{
    c_name, ArgCred, ArgModule, ArgPerfEvent, ArgSkb, ArgSock, ArgSockaddr, ArgValue, GenericRecord, RecordedArg,
    ARG_READ_ERROR, ARG_TRUNCATED, MODULE_SIG_UNKNOWN,
};
use crate::process::cap_list;
use crate::events::EventBuilder;

/// Where a hook is attached, as its event names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookSite {
    Kprobe { function: String },
    Tracepoint { subsys: String, event: String },
    Uprobe { path: String, symbol: String, offset: u64 },
    Lsm { function: String },
    Usdt { path: String, provider: String, name: String },
}

/// What the event needs about one hook besides the kernel record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookInfo {
    pub site: HookSite,
    pub args: Vec<(ArgType, Option<String>)>,
    /// The return value's type and label (returnArg); the kernel records it last.
    pub ret: Option<(ArgType, Option<String>)>,
    pub message: String,
    pub tags: Vec<String>,
}

/// `-rw-r--r--` from an inode mode, as Tetragon prints file permissions.
pub fn permission(mode: u32) -> String {
    let kind = match mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o020000 => 'c',
        0o060000 => 'b',
        0o010000 => 'p',
        0o140000 => 's',
        _ => '-',
    };
    let mut s = String::from(kind);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn family(f: u16) -> String {
    match f {
        1 => "AF_UNIX".into(),
        2 => "AF_INET".into(),
        10 => "AF_INET6".into(),
        n => n.to_string(),
    }
}

fn addr(family: u16, bytes: &[u8; 16]) -> String {
    if family == 10 {
        Ipv6Addr::from(*bytes).to_string()
    } else {
        Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()
    }
}

fn protocol(p: u16) -> String {
    match p {
        6 => "IPPROTO_TCP".into(),
        17 => "IPPROTO_UDP".into(),
        1 => "IPPROTO_ICMP".into(),
        n => n.to_string(),
    }
}

fn sock(s: &ArgSock) -> tetragon::KprobeSock {
    let ty = match s.ty {
        1 => "SOCK_STREAM".into(),
        2 => "SOCK_DGRAM".into(),
        3 => "SOCK_RAW".into(),
        n => n.to_string(),
    };
    let protocol = protocol(s.protocol);
    const STATES: [&str; 13] = [
        "", "TCP_ESTABLISHED", "TCP_SYN_SENT", "TCP_SYN_RECV", "TCP_FIN_WAIT1", "TCP_FIN_WAIT2",
        "TCP_TIME_WAIT", "TCP_CLOSE", "TCP_CLOSE_WAIT", "TCP_LAST_ACK", "TCP_LISTEN",
        "TCP_CLOSING", "TCP_NEW_SYN_RECV",
    ];
    tetragon::KprobeSock {
        family: family(s.family),
        r#type: ty,
        protocol,
        mark: s.mark,
        priority: s.priority,
        saddr: addr(s.family, &s.saddr),
        daddr: addr(s.family, &s.daddr),
        sport: u32::from(s.sport),
        dport: u32::from(s.dport),
        cookie: s.cookie,
        state: STATES.get(s.state as usize).unwrap_or(&"").to_string(),
    }
}

fn sockaddr(s: &ArgSockaddr) -> tetragon::KprobeSockaddr {
    tetragon::KprobeSockaddr { family: family(s.family), addr: addr(s.family, &s.addr), port: u32::from(s.port) }
}

/// An skb's family is named for IPv4 and IPv6 only (empty otherwise), as Tetragon does.
fn skb(s: &ArgSkb) -> tetragon::KprobeSkb {
    let family = if matches!(s.family, 2 | 10) { family(s.family) } else { String::new() };
    tetragon::KprobeSkb {
        hash: s.hash,
        len: s.len,
        priority: s.priority,
        mark: s.mark,
        saddr: addr(s.family, &s.saddr),
        daddr: addr(s.family, &s.daddr),
        sport: u32::from(s.sport),
        dport: u32::from(s.dport),
        proto: u32::from(s.proto),
        sec_path_len: 0,
        sec_path_olen: 0,
        protocol: protocol(s.proto),
        family,
    }
}

fn cred(c: &ArgCred) -> tetragon::ProcessCredentials {
    tetragon::ProcessCredentials {
        uid: Some(c.uid),
        gid: Some(c.gid),
        euid: Some(c.euid),
        egid: Some(c.egid),
        suid: Some(c.suid),
        sgid: Some(c.sgid),
        fsuid: Some(c.fsuid),
        fsgid: Some(c.fsgid),
        // SecureBitsType values are the bits themselves.
        securebits: (0..8).map(|b| 1 << b).filter(|bit| c.securebits & bit != 0).map(|bit| bit as i32).collect(),
        caps: Some(tetragon::Capabilities {
            permitted: cap_list(c.cap_permitted),
            effective: cap_list(c.cap_effective),
            inheritable: cap_list(c.cap_inheritable),
        }),
        user_ns: Some(tetragon::UserNamespace {
            level: Some(c.userns_level as i32),
            uid: Some(c.userns_uid),
            gid: Some(c.userns_gid),
            ns: Some(tetragon::Namespace { inum: c.userns_inum, is_host: c.userns_level == 0 }),
        }),
    }
}

/// `enum bpf_prog_type` names, by value (include/uapi/linux/bpf.h).
const PROG_TYPES: [&str; 33] = [
    "UNSPEC", "SOCKET_FILTER", "KPROBE", "SCHED_CLS", "SCHED_ACT", "TRACEPOINT", "XDP", "PERF_EVENT",
    "CGROUP_SKB", "CGROUP_SOCK", "LWT_IN", "LWT_OUT", "LWT_XMIT", "SOCK_OPS", "SK_SKB", "CGROUP_DEVICE",
    "SK_MSG", "RAW_TRACEPOINT", "CGROUP_SOCK_ADDR", "LWT_SEG6LOCAL", "LIRC_MODE2", "SK_REUSEPORT",
    "FLOW_DISSECTOR", "CGROUP_SYSCTL", "RAW_TRACEPOINT_WRITABLE", "CGROUP_SOCKOPT", "TRACING", "STRUCT_OPS",
    "EXT", "LSM", "SK_LOOKUP", "SYSCALL", "NETFILTER",
];

/// `enum bpf_map_type` names, by value.
const MAP_TYPES: [&str; 34] = [
    "UNSPEC", "HASH", "ARRAY", "PROG_ARRAY", "PERF_EVENT_ARRAY", "PERCPU_HASH", "PERCPU_ARRAY", "STACK_TRACE",
    "CGROUP_ARRAY", "LRU_HASH", "LRU_PERCPU_HASH", "LPM_TRIE", "ARRAY_OF_MAPS", "HASH_OF_MAPS", "DEVMAP",
    "SOCKMAP", "CPUMAP", "XSKMAP", "SOCKHASH", "CGROUP_STORAGE", "REUSEPORT_SOCKARRAY",
    "PERCPU_CGROUP_STORAGE", "QUEUE", "STACK", "SK_STORAGE", "DEVMAP_HASH", "STRUCT_OPS", "RINGBUF",
    "INODE_STORAGE", "TASK_STORAGE", "BLOOM_FILTER", "USER_RINGBUF", "CGRP_STORAGE", "ARENA",
];

/// Perf event types as Tetragon names them: the uapi enum, whose end marker PERF_TYPE_MAX
/// (6) is named too although dynamic PMUs such as kprobe take that number; else decimal.
const PERF_TYPES: [&str; 7] = [
    "PERF_TYPE_HARDWARE", "PERF_TYPE_SOFTWARE", "PERF_TYPE_TRACEPOINT", "PERF_TYPE_HW_CACHE", "PERF_TYPE_RAW",
    "PERF_TYPE_BREAKPOINT", "PERF_TYPE_MAX",
];

/// `BPF_PROG_TYPE_KPROBE` for 2: a kernel enum value by its name, or the number.
fn enum_name(names: &[&str], prefix: &str, v: u32) -> String {
    names.get(v as usize).map_or_else(|| v.to_string(), |n| format!("{prefix}{n}"))
}

fn perf_event(e: &ArgPerfEvent) -> tetragon::KprobePerfEvent {
    tetragon::KprobePerfEvent {
        kprobe_func: c_name(&e.kprobe_func),
        r#type: enum_name(&PERF_TYPES, "", e.ty),
        config: e.config,
        probe_offset: e.probe_offset,
    }
}

/// The module taint bits TaintedBitsType names, in its order; other bits are not listed.
fn module(m: &ArgModule) -> tetragon::KernelModule {
    use tetragon::TaintedBitsType as T;
    const MODULE_TAINTS: [T; 8] = [
        T::TaintProprietaryModule,
        T::TaintForcedModule,
        T::TaintForcedUnloadModule,
        T::TaintStagedModule,
        T::TaintOutOfTreeModule,
        T::TaintUnsignedModule,
        T::TaintKernelLivePatchModule,
        T::TaintTestModule,
    ];
    tetragon::KernelModule {
        name: c_name(&m.name),
        signature_ok: (m.sig_ok != MODULE_SIG_UNKNOWN).then_some(m.sig_ok != 0),
        tainted: MODULE_TAINTS.iter().filter(|t| m.taints & (**t as u64) != 0).map(|t| *t as i32).collect(),
    }
}

/// Renders one recorded argument of declared type `ty`.
pub fn render_arg(ty: ArgType, label: Option<&str>, rec: &RecordedArg) -> tetragon::KprobeArgument {
    use ArgType::*;
    let text = |b: &[u8]| std::string::String::from_utf8_lossy(b).into_owned();
    let arg = match (&rec.value, ty) {
        (ArgValue::Int(v), Capability) => Arg::CapabilityArg(tetragon::KprobeCapability {
            value: Some(*v as i32),
            name: tetra_crds::values::CAPABILITIES.get(*v as usize).map_or_else(std::string::String::new, |n| n.to_string()),
        }),
        (ArgValue::Int(v), KernelCapT) => Arg::KernelCapTArg(format!("{v:016x}")),
        (ArgValue::Int(v), CapInheritable) => Arg::CapInheritableArg(format!("{v:016x}")),
        (ArgValue::Int(v), CapPermitted) => Arg::CapPermittedArg(format!("{v:016x}")),
        (ArgValue::Int(v), CapEffective) => Arg::CapEffectiveArg(format!("{v:016x}")),
        (ArgValue::Int(v), Int | Sint32 | Int32 | Sint16 | Int16 | Sint8 | Int8) => Arg::IntArg(*v as i64 as i32),
        (ArgValue::Int(v), Uint32 | Uint16 | Uint8) => Arg::UintArg(*v as u32),
        (ArgValue::Int(v), Long | Sint64 | Int64) => Arg::LongArg(*v as i64),
        (ArgValue::Int(v), _) => Arg::SizeArg(*v),
        (ArgValue::Bytes(b), CharBuf | CharIovec) if rec.flags & ARG_TRUNCATED != 0 => {
            Arg::TruncatedBytesArg(tetragon::KprobeTruncatedBytes { bytes_arg: b.clone(), orig_size: u64::from(rec.aux) })
        }
        (ArgValue::Bytes(b), CharBuf | CharIovec) => Arg::BytesArg(b.clone()),
        (ArgValue::Bytes(b), NetDevice) => Arg::NetDevArg(tetragon::KprobeNetDev { name: text(b) }),
        (ArgValue::Bytes(b), _) => Arg::StringArg(text(b)),
        (ArgValue::Path(p), Path | Dentry) => Arg::PathArg(tetragon::KprobePath {
            path: text(p),
            permission: permission(rec.aux),
            ..Default::default()
        }),
        (ArgValue::Path(p), LinuxBinprm) => Arg::LinuxBinprmArg(tetragon::KprobeLinuxBinprm {
            path: text(p),
            permission: permission(rec.aux),
            ..Default::default()
        }),
        (ArgValue::Path(p), _) => Arg::FileArg(tetragon::KprobeFile {
            path: text(p),
            permission: permission(rec.aux),
            ..Default::default()
        }),
        (ArgValue::Sock(s), _) => Arg::SockArg(sock(s)),
        (ArgValue::Sockaddr(s), _) => Arg::SockaddrArg(sockaddr(s)),
        (ArgValue::Cred(c), _) => Arg::ProcessCredentialsArg(cred(c)),
        (ArgValue::Skb(s), _) => Arg::SkbArg(skb(s)),
        (ArgValue::BpfAttr(a), _) => Arg::BpfAttrArg(tetragon::KprobeBpfAttr {
            prog_type: enum_name(&PROG_TYPES, "BPF_PROG_TYPE_", a.prog_type),
            insn_cnt: a.insn_cnt,
            prog_name: c_name(&a.prog_name),
        }),
        (ArgValue::PerfEvent(e), _) => Arg::PerfEventArg(perf_event(e)),
        (ArgValue::BpfMap(m), _) => Arg::BpfMapArg(tetragon::KprobeBpfMap {
            map_type: enum_name(&MAP_TYPES, "BPF_MAP_TYPE_", m.map_type),
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            map_name: c_name(&m.name),
        }),
        (ArgValue::UserNs(n), _) => Arg::UserNsArg(tetragon::UserNamespace {
            level: Some(n.level as i32),
            uid: Some(n.uid),
            gid: Some(n.gid),
            ns: Some(tetragon::Namespace { inum: n.inum, is_host: n.level == 0 }),
        }),
        (ArgValue::Module(m), _) => Arg::ModuleArg(module(m)),
        // Not joined with its data messages (crate::maxdata does that): the first bytes.
        (ArgValue::Data(d, inline), _) => {
            Arg::TruncatedBytesArg(tetragon::KprobeTruncatedBytes { bytes_arg: inline.clone(), orig_size: d.size })
        }
        (ArgValue::None, _) => Arg::ErrorArg(tetragon::KprobeError {
            message: if rec.flags & ARG_READ_ERROR != 0 {
                format!("could not read the {} argument", ty.name())
            } else {
                format!("{} argument not recorded", ty.name())
            },
        }),
    };
    tetragon::KprobeArgument { arg: Some(arg), label: label.unwrap_or_default().to_string() }
}

impl EventBuilder {
    /// The event of a policy hit; `policy` names the policy, `hook` describes the hook.
    /// Without `process` and `parent`: the caller holds them apart ([`super::Published`]).
    pub fn generic(&self, policy: &str, hook: &HookInfo, rec: &GenericRecord) -> GetEventsResponse {
        let mut args: Vec<tetragon::KprobeArgument> = rec
            .args
            .iter()
            .zip(&hook.args)
            // A nop argument is a placeholder for the argument positions: never shown.
            .filter(|(_, (ty, _))| *ty != ArgType::Nop)
            .map(|(r, (ty, label))| render_arg(*ty, label.as_deref(), r))
            .collect();
        let ret = match (&hook.ret, rec.args.get(hook.args.len())) {
            (Some((ty, label)), Some(r)) => Some(render_arg(*ty, label.as_deref(), r)),
            _ => None,
        };
        let action = rec.msg.action as i32;
        // User frames first: the process's memory map must be read while it still exists,
        // and the first kernel trace loads kallsyms, which takes a while.
        let user_stack_trace = self.stacks.user_frames(rec.msg.pid, &rec.user_stack);
        let kernel_stack_trace = self.stacks.kernel_frames(&rec.kernel_stack);
        let event = match &hook.site {
            HookSite::Kprobe { function } => Event::ProcessKprobe(tetragon::ProcessKprobe {
                function_name: function.clone(),
                args,
                r#return: ret,
                action,
                return_action: rec.msg.return_action as i32,
                kernel_stack_trace,
                user_stack_trace,
                policy_name: policy.to_string(),
                message: hook.message.clone(),
                tags: hook.tags.clone(),
                ..Default::default()
            }),
            HookSite::Tracepoint { subsys, event } => Event::ProcessTracepoint(tetragon::ProcessTracepoint {
                subsys: subsys.clone(),
                event: event.clone(),
                args,
                policy_name: policy.to_string(),
                action,
                message: hook.message.clone(),
                tags: hook.tags.clone(),
                ..Default::default()
            }),
            HookSite::Uprobe { path, symbol, offset } => Event::ProcessUprobe(tetragon::ProcessUprobe {
                // ProcessUprobe has no `return` field: the return value ends the args.
                args: {
                    args.extend(ret);
                    args
                },
                path: path.clone(),
                symbol: symbol.clone(),
                policy_name: policy.to_string(),
                message: hook.message.clone(),
                tags: hook.tags.clone(),
                offset: *offset,
                action,
                ..Default::default()
            }),
            HookSite::Lsm { function } => Event::ProcessLsm(tetragon::ProcessLsm {
                function_name: function.clone(),
                policy_name: policy.to_string(),
                message: hook.message.clone(),
                args,
                action,
                tags: hook.tags.clone(),
                ..Default::default()
            }),
            HookSite::Usdt { path, provider, name } => Event::ProcessUsdt(tetragon::ProcessUsdt {
                path: path.clone(),
                provider: provider.clone(),
                name: name.clone(),
                policy_name: policy.to_string(),
                message: hook.message.clone(),
                args,
                action,
                tags: hook.tags.clone(),
                ..Default::default()
            }),
        };
        GetEventsResponse {
            event: Some(event),
            node_name: self.node.clone(),
            time: Some(self.render.clock.wall(rec.msg.hdr.ktime).into()),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_and_args_render_like_tetragon() {
        assert_eq!(permission(0o100644), "-rw-r--r--");
        assert_eq!(permission(0o040755), "drwxr-xr-x");
        let int = RecordedArg { value: ArgValue::Int(-2i64 as u64), flags: 0, aux: 0 };
        assert_eq!(render_arg(ArgType::Int, None, &int).arg, Some(Arg::IntArg(-2)));
        assert_eq!(render_arg(ArgType::SizeT, None, &int).arg, Some(Arg::SizeArg(-2i64 as u64)));
        let file = RecordedArg { value: ArgValue::Path(b"/etc/passwd".to_vec()), flags: 0, aux: 0o100600 };
        let a = render_arg(ArgType::File, Some("f"), &file);
        assert_eq!(a.label, "f");
        let Some(Arg::FileArg(f)) = a.arg else { panic!("not a file arg: {a:?}") };
        assert_eq!((f.path.as_str(), f.permission.as_str()), ("/etc/passwd", "-rw-------"));
        let buf = RecordedArg { value: ArgValue::Bytes(b"ab".to_vec()), flags: ARG_TRUNCATED, aux: 9000 };
        let Some(Arg::TruncatedBytesArg(t)) = render_arg(ArgType::CharBuf, None, &buf).arg else { panic!() };
        assert_eq!((t.bytes_arg.as_slice(), t.orig_size), (&b"ab"[..], 9000));
        let sa = ArgSockaddr { family: 2, port: 443, addr: [1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], pad: 0 };
        let rec = RecordedArg { value: ArgValue::Sockaddr(sa), flags: 0, aux: 0 };
        let Some(Arg::SockaddrArg(s)) = render_arg(ArgType::Sockaddr, None, &rec).arg else { panic!() };
        assert_eq!((s.family.as_str(), s.addr.as_str(), s.port), ("AF_INET", "1.2.3.4", 443));
    }

    fn name<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0; N];
        out[..s.len()].copy_from_slice(s.as_bytes());
        out
    }

    /// The JSON of one rendered argument inside a process_kprobe event.
    fn arg_json(ty: ArgType, value: ArgValue) -> String {
        let arg = render_arg(ty, None, &RecordedArg { value, flags: 0, aux: 0o120777 });
        let event = GetEventsResponse {
            event: Some(Event::ProcessKprobe(tetragon::ProcessKprobe { args: vec![arg], ..Default::default() })),
            ..Default::default()
        };
        let line = tetra_proto::json::to_line(&event);
        let start = line.find("\"args\":[").expect("args in the line") + 8;
        let end = line[start..].find("}]").expect("end of args") + start + 1;
        line[start..end].to_string()
    }

    #[test]
    fn kernel_objects_render_like_tetragon() {
        use crate::abi::{ArgBpfAttr, ArgBpfMap, ArgUserNs};
        let attr = ArgBpfAttr { prog_type: 2, insn_cnt: 2, prog_name: name("tetra_probe") };
        assert_eq!(
            arg_json(ArgType::BpfAttr, ArgValue::BpfAttr(attr)),
            r#"{"bpf_attr_arg":{"ProgType":"BPF_PROG_TYPE_KPROBE","InsnCnt":2,"ProgName":"tetra_probe"}}"#
        );
        let unknown = ArgBpfAttr { prog_type: 99, ..attr };
        assert!(arg_json(ArgType::BpfAttr, ArgValue::BpfAttr(unknown)).contains(r#""ProgType":"99""#));
        let map = ArgBpfMap { map_type: 1, key_size: 4, value_size: 8, max_entries: 16, name: name("tetra_map") };
        assert_eq!(
            arg_json(ArgType::BpfMap, ArgValue::BpfMap(map)),
            r#"{"bpf_map_arg":{"MapType":"BPF_MAP_TYPE_HASH","KeySize":4,"ValueSize":8,"MaxEntries":16,"MapName":"tetra_map"}}"#
        );
        let perf = ArgPerfEvent { config: 0, probe_offset: 0, ty: 6, pad: 0, kprobe_func: name("do_sys_openat2") };
        assert_eq!(
            arg_json(ArgType::PerfEvent, ArgValue::PerfEvent(Box::new(perf))),
            r#"{"perf_event_arg":{"KprobeFunc":"do_sys_openat2","Type":"PERF_TYPE_MAX"}}"#
        );
        let sw = ArgPerfEvent { config: 1, ty: 1, kprobe_func: [0; 128], ..perf };
        assert_eq!(
            arg_json(ArgType::PerfEvent, ArgValue::PerfEvent(Box::new(sw))),
            r#"{"perf_event_arg":{"Type":"PERF_TYPE_SOFTWARE","Config":"1"}}"#
        );
        let ns = ArgUserNs { level: 1, uid: 1000, gid: 1000, inum: 4026532001 };
        assert_eq!(
            arg_json(ArgType::UserNamespace, ArgValue::UserNs(ns)),
            r#"{"user_ns_arg":{"level":1,"uid":1000,"gid":1000,"ns":{"inum":4026532001}}}"#
        );
        let host = ArgUserNs { level: 0, uid: 0, gid: 0, inum: 4026531837 };
        assert_eq!(
            arg_json(ArgType::UserNamespace, ArgValue::UserNs(host)),
            r#"{"user_ns_arg":{"level":0,"uid":0,"gid":0,"ns":{"inum":4026531837,"is_host":true}}}"#
        );
        // Out-of-tree (4096) and unsigned (8192) modules, plus bit 9 (TAINT_WARN, not a
        // module taint), which is not listed.
        let m = ArgModule { taints: 4096 | 8192 | 512, sig_ok: 0, pad: 0, name: name("tetra_mod") };
        assert_eq!(
            arg_json(ArgType::Module, ArgValue::Module(m)),
            r#"{"module_arg":{"name":"tetra_mod","signature_ok":false,"tainted":["TAINT_OUT_OF_TREE_MODULE","TAINT_UNSIGNED_MODULE"]}}"#
        );
        let unknown_sig = ArgModule { taints: 0, sig_ok: MODULE_SIG_UNKNOWN, ..m };
        assert_eq!(arg_json(ArgType::LoadInfo, ArgValue::Module(unknown_sig)), r#"{"module_arg":{"name":"tetra_mod"}}"#);
        assert_eq!(arg_json(ArgType::NetDevice, ArgValue::Bytes(b"lo".to_vec())), r#"{"net_dev_arg":{"name":"lo"}}"#);
        assert_eq!(
            arg_json(ArgType::Dentry, ArgValue::Path(b"/tmp/link".to_vec())),
            r#"{"path_arg":{"path":"/tmp/link","permission":"lrwxrwxrwx"}}"#
        );
        assert_eq!(
            arg_json(ArgType::Kiocb, ArgValue::Path(b"/dev/ttyS0".to_vec())),
            r#"{"file_arg":{"path":"/dev/ttyS0","permission":"lrwxrwxrwx"}}"#
        );
    }

    #[test]
    fn credentials_and_capabilities_render_like_tetragon() {
        let cap = RecordedArg { value: ArgValue::Int(21), flags: 0, aux: 0 };
        assert_eq!(
            render_arg(ArgType::Capability, None, &cap).arg,
            Some(Arg::CapabilityArg(tetragon::KprobeCapability { value: Some(21), name: "CAP_SYS_ADMIN".into() }))
        );
        let set = RecordedArg { value: ArgValue::Int(0x1ff_ffff_ffff), flags: 0, aux: 0 };
        assert_eq!(render_arg(ArgType::CapEffective, None, &set).arg, Some(Arg::CapEffectiveArg("000001ffffffffff".into())));
        assert_eq!(render_arg(ArgType::KernelCapT, None, &set).arg, Some(Arg::KernelCapTArg("000001ffffffffff".into())));
        let c = ArgCred {
            uid: 1000,
            euid: 0,
            securebits: 0b1_0001,
            userns_level: 1,
            userns_uid: 1000,
            userns_inum: 4026532000,
            cap_permitted: 1 << 21,
            ..Default::default()
        };
        let rec = RecordedArg { value: ArgValue::Cred(c), flags: 0, aux: 0 };
        let Some(Arg::ProcessCredentialsArg(p)) = render_arg(ArgType::Cred, None, &rec).arg else { panic!() };
        assert_eq!((p.uid, p.euid, p.fsgid), (Some(1000), Some(0), Some(0)));
        assert_eq!(p.securebits, [1, 16], "SecBitNoRoot, SecBitKeepCaps");
        let caps = p.caps.unwrap();
        assert_eq!((caps.permitted, caps.effective), (vec![21], vec![]));
        let ns = p.user_ns.unwrap();
        assert_eq!((ns.level, ns.uid, ns.ns), (Some(1), Some(1000), Some(tetragon::Namespace { inum: 4026532000, is_host: false })));
    }
}
