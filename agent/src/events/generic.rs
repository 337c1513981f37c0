//! Policy hits -> `process_kprobe` / `process_tracepoint` / `process_uprobe` /
//! `process_lsm` events, with arguments rendered as Tetragon renders each type.
use std::net::{Ipv4Addr, Ipv6Addr};

use tetra_crds::types::ArgType;
use tetra_proto::tetragon::{self, get_events_response::Event, kprobe_argument::Arg, GetEventsResponse};

use crate::abi::{
    ArgCred, ArgSkb, ArgSock, ArgSockaddr, ArgValue, GenericRecord, RecordedArg, ARG_READ_ERROR, ARG_TRUNCATED,
};
use crate::process::cap_list;
use crate::events::EventBuilder;
use crate::process::cache::Snapshot;

/// Where a hook is attached, as its event names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookSite {
    Kprobe { function: String },
    Tracepoint { subsys: String, event: String },
    Uprobe { path: String, symbol: String, offset: u64 },
    Lsm { function: String },
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

/// Renders one recorded argument of declared type `ty`.
pub fn render_arg(ty: ArgType, label: Option<&str>, rec: &RecordedArg) -> tetragon::KprobeArgument {
    use ArgType::*;
    let text = |b: &[u8]| std::string::String::from_utf8_lossy(b).into_owned();
    let arg = match (&rec.value, ty) {
        (ArgValue::Int(v), Capability) => Arg::CapabilityArg(tetragon::KprobeCapability {
            value: Some(*v as i32),
            name: tetra_crds::compile::values::CAPABILITIES.get(*v as usize).map_or_else(std::string::String::new, |n| n.to_string()),
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
        (ArgValue::Bytes(b), _) => Arg::StringArg(text(b)),
        (ArgValue::Path(p), Path) => Arg::PathArg(tetragon::KprobePath {
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
    pub fn generic(
        &self,
        policy: &str,
        hook: &HookInfo,
        rec: &GenericRecord,
        process: Option<&Snapshot>,
        parent: Option<&Snapshot>,
    ) -> GetEventsResponse {
        let mut args: Vec<tetragon::KprobeArgument> = rec
            .args
            .iter()
            .zip(&hook.args)
            .map(|(r, (ty, label))| render_arg(*ty, label.as_deref(), r))
            .collect();
        let ret = match (&hook.ret, rec.args.get(hook.args.len())) {
            (Some((ty, label)), Some(r)) => Some(render_arg(*ty, label.as_deref(), r)),
            _ => None,
        };
        let process = process.map(|p| self.render.process(&p.process, p.refcnt));
        let parent = parent.map(|p| self.render.process(&p.process, p.refcnt));
        let action = rec.msg.action as i32;
        let event = match &hook.site {
            HookSite::Kprobe { function } => Event::ProcessKprobe(tetragon::ProcessKprobe {
                process,
                parent,
                function_name: function.clone(),
                args,
                r#return: ret,
                action,
                return_action: rec.msg.return_action as i32,
                policy_name: policy.to_string(),
                message: hook.message.clone(),
                tags: hook.tags.clone(),
                ..Default::default()
            }),
            HookSite::Tracepoint { subsys, event } => Event::ProcessTracepoint(tetragon::ProcessTracepoint {
                process,
                parent,
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
                process,
                parent,
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
                process,
                parent,
                function_name: function.clone(),
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
