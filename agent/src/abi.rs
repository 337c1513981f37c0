//! Rust view of `bpf/include/tetra_abi.h`, the only definition of the structs that cross
//! the kernel boundary, and the decoding of ring-buffer records into owned messages.
//!
//! The mirrors are checked against the compiled object's BTF by `tests::layout_matches_btf`.
//! They derive zerocopy's `FromBytes` and `IntoBytes`: records are read without `unsafe`,
//! and a mirror with padding of its own (not an explicit `pad` field) does not compile.

use thiserror::Error;
use zerocopy::{FromBytes, Immutable, IntoBytes};

pub const MSG_EXEC: u8 = 1;
pub const MSG_EXIT: u8 = 2;
pub const MSG_CLONE: u8 = 3;
pub const MSG_GENERIC: u8 = 4;
pub const MSG_DATA: u8 = 5;

pub const EXEC_TRUNC_FILENAME: u32 = 1 << 0;
pub const EXEC_TRUNC_ARGS: u32 = 1 << 1;
pub const EXEC_TRUNC_CWD: u32 = 1 << 2;
pub const EXEC_ERROR_ARGS: u32 = 1 << 3;
pub const EXEC_ERROR_CWD: u32 = 1 << 4;

/// Number of namespaces in `MsgExec::ns_inum`, in `enum tetra_ns` order.
pub const NS_COUNT: usize = 10;

/// `enum tetra_drop`: why the kernel side could not deliver an event.
pub const DROP_CAUSES: [&str; 7] = [
    "ringbuf_exec",
    "ringbuf_exit",
    "ringbuf_clone",
    "ringbuf_generic",
    "ringbuf_data",
    "stash_full",
    "follow_fd_full",
];

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
pub struct MsgHeader {
    pub op: u8,
    pub pad: [u8; 3],
    pub size: u32,
    pub ktime: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
pub struct MsgExec {
    pub hdr: MsgHeader,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub auid: u32,
    pub exec_flags: u32,
    pub cap_permitted: u64,
    pub cap_effective: u64,
    pub cap_inheritable: u64,
    pub cgroup_id: u64,
    pub ns_inum: [u32; NS_COUNT],
    pub filename_len: u16,
    pub args_len: u16,
    pub cwd_len: u16,
    pub pad: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
pub struct MsgExit {
    pub hdr: MsgHeader,
    pub pid: u32,
    pub tid: u32,
    pub exit_code: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
pub struct MsgClone {
    pub hdr: MsgHeader,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub pad: u32,
}

/// Most arguments a generic message records (`TETRA_ARGS_MAX_SLOTS`).
pub const ARGS_MAX_SLOTS: usize = 5;

/// `enum tetra_arg_kind`: how a recorded argument's value is encoded.
pub const ARG_NONE: u8 = 0;
pub const ARG_INT: u8 = 1;
pub const ARG_BYTES: u8 = 2;
pub const ARG_PATH: u8 = 3;
pub const ARG_SOCK: u8 = 4;
pub const ARG_SOCKADDR: u8 = 5;
pub const ARG_CRED: u8 = 6;
pub const ARG_SKB: u8 = 7;
pub const ARG_BPF_ATTR: u8 = 8;
pub const ARG_PERF_EVENT: u8 = 9;
pub const ARG_BPF_MAP: u8 = 10;
pub const ARG_USER_NS: u8 = 11;
pub const ARG_MODULE: u8 = 12;

/// `tetra_arg_module.sig_ok` of a kernel without CONFIG_MODULE_SIG.
pub const MODULE_SIG_UNKNOWN: u32 = 2;
pub const ARG_DATA: u8 = 13;

/// `TETRA_DATA_MAX`: most bytes a maxData char_buf records.
pub const DATA_MAX: u64 = 327_360;

/// `tetra_generic_arg.flags`
pub const ARG_TRUNCATED: u8 = 1 << 0;
pub const ARG_READ_ERROR: u8 = 1 << 1;

/// A policy hit: header of `TETRA_MSG_GENERIC`, followed by `args_len` bytes of arguments.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
pub struct MsgGeneric {
    pub hdr: MsgHeader,
    pub pid: u32,
    pub tid: u32,
    pub policy_id: u32,
    pub hook_id: u32,
    pub selector: u32,
    /// KprobeAction code of what the kernel did (Post 1, Sigkill 3, Override 5, Signal 10).
    pub action: u32,
    pub retval: i64,
    pub n_args: u32,
    pub args_len: u32,
    /// Return probes: KprobeAction code of what the return actions did; 0 otherwise.
    pub return_action: u32,
    /// Bytes of kernel and user stack return addresses after the arguments.
    pub kernel_stack_len: u16,
    pub user_stack_len: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
pub struct GenericArg {
    pub len: u16,
    pub kind: u8,
    pub flags: u8,
    /// Path: inode mode; bytes: size before truncation.
    pub aux: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct ArgSock {
    pub cookie: u64,
    pub mark: u32,
    pub priority: u32,
    pub family: u16,
    pub ty: u16,
    pub protocol: u16,
    pub sport: u16,
    pub dport: u16,
    pub state: u8,
    pub pad: u8,
    pub pad2: u32,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct ArgSockaddr {
    pub family: u16,
    pub port: u16,
    pub pad: u32,
    pub addr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct ArgCred {
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    pub suid: u32,
    pub sgid: u32,
    pub fsuid: u32,
    pub fsgid: u32,
    pub securebits: u32,
    pub userns_level: u32,
    pub userns_uid: u32,
    pub userns_gid: u32,
    pub userns_inum: u32,
    pub pad: u32,
    pub cap_permitted: u64,
    pub cap_effective: u64,
    pub cap_inheritable: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct ArgSkb {
    pub hash: u32,
    pub len: u32,
    pub priority: u32,
    pub mark: u32,
    pub family: u16,
    pub proto: u16,
    pub sport: u16,
    pub dport: u16,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct ArgBpfAttr {
    pub prog_type: u32,
    pub insn_cnt: u32,
    pub prog_name: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct ArgPerfEvent {
    pub config: u64,
    pub probe_offset: u64,
    pub ty: u32,
    pub pad: u32,
    pub kprobe_func: [u8; 128],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct ArgBpfMap {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub name: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct ArgUserNs {
    pub level: u32,
    pub uid: u32,
    pub gid: u32,
    pub inum: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct ArgModule {
    pub taints: u64,
    /// 0, 1, or [`MODULE_SIG_UNKNOWN`].
    pub sig_ok: u32,
    pub pad: u32,
    pub name: [u8; 56],
}

/// The text of a fixed-size kernel name: up to its first NUL.
pub fn c_name(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// A maxData char_buf (`struct tetra_arg_data`): the bytes after the inline ones came in
/// data messages with this `id`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct ArgData {
    pub id: u64,
    /// The buffer's real size.
    pub size: u64,
    /// Bytes the kernel put in data messages.
    pub sent: u32,
    /// 0, or the error that stopped the sending (a read fault, -EAGAIN: ring buffer full).
    pub error: i32,
}

/// Header of `TETRA_MSG_DATA`: bytes of a maxData argument, `offset` in the whole buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
pub struct MsgData {
    pub hdr: MsgHeader,
    pub tid: u32,
    pub offset: u32,
    pub id: u64,
}

/// A decoded data message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataRecord {
    pub tid: u32,
    pub id: u64,
    pub offset: u32,
    pub bytes: Vec<u8>,
}

/// One recorded argument of a generic message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgValue {
    /// Not readable in the kernel (`flags` say why).
    None,
    Int(u64),
    Bytes(Vec<u8>),
    Path(Vec<u8>),
    Sock(ArgSock),
    Sockaddr(ArgSockaddr),
    Cred(ArgCred),
    Skb(ArgSkb),
    BpfAttr(ArgBpfAttr),
    PerfEvent(Box<ArgPerfEvent>),
    BpfMap(ArgBpfMap),
    UserNs(ArgUserNs),
    Module(ArgModule),
    /// A maxData char_buf as the event carries it: the descriptor and the inline bytes.
    /// The reassembly (`crate::maxdata`) turns it into `Bytes` with the data messages.
    Data(ArgData, Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedArg {
    pub value: ArgValue,
    pub flags: u8,
    pub aux: u32,
}

/// A decoded policy hit.
#[derive(Clone, Debug)]
pub struct GenericRecord {
    pub msg: MsgGeneric,
    pub args: Vec<RecordedArg>,
    /// Return addresses of Post's kernelStackTrace / userStackTrace, innermost first.
    pub kernel_stack: Vec<u64>,
    pub user_stack: Vec<u64>,
}

/// An exec message with its variable-length strings, still as raw bytes.
#[derive(Clone, Debug)]
pub struct ExecRecord {
    pub msg: MsgExec,
    pub filename: Vec<u8>,
    /// argv, NUL-separated, argv[0] included.
    pub args: Vec<u8>,
    pub cwd: Vec<u8>,
}

/// One decoded kernel message.
#[derive(Clone, Debug)]
pub enum Record {
    Exec(ExecRecord),
    Exit(MsgExit),
    Clone(MsgClone),
    Generic(GenericRecord),
    Data(DataRecord),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than its {need}-byte {what}")]
    Short { what: &'static str, len: usize, need: usize },
    #[error("unknown message opcode {0}")]
    UnknownOp(u8),
}

/// The mirror at the start of `bytes`, and the bytes after it.
fn read<'b, T: FromBytes>(bytes: &'b [u8], what: &'static str) -> Result<(T, &'b [u8]), DecodeError> {
    T::read_from_prefix(bytes).map_err(|_| DecodeError::Short { what, len: bytes.len(), need: std::mem::size_of::<T>() })
}

/// Decodes one ring-buffer record. Lengths come from the kernel and are trusted only
/// after they are checked against the record's real size.
pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    let (header, _) = read::<MsgHeader>(bytes, "header")?;
    match header.op {
        MSG_EXEC => {
            let (msg, body) = read::<MsgExec>(bytes, "exec message")?;
            let lens = [msg.filename_len as usize, msg.args_len as usize, msg.cwd_len as usize];
            let need = lens.iter().sum::<usize>();
            if body.len() < need {
                return Err(DecodeError::Short {
                    what: "exec strings",
                    len: body.len(),
                    need,
                });
            }
            let (filename, rest) = body.split_at(lens[0]);
            let (args, rest) = rest.split_at(lens[1]);
            let cwd = &rest[..lens[2]];
            Ok(Record::Exec(ExecRecord {
                msg,
                filename: filename.to_vec(),
                args: args.to_vec(),
                cwd: cwd.to_vec(),
            }))
        }
        MSG_EXIT => Ok(Record::Exit(read(bytes, "exit message")?.0)),
        MSG_CLONE => Ok(Record::Clone(read(bytes, "clone message")?.0)),
        MSG_GENERIC => Ok(Record::Generic(decode_generic(bytes)?)),
        MSG_DATA => {
            let (msg, _) = read::<MsgData>(bytes, "data message")?;
            let end = msg.hdr.size as usize;
            let start = std::mem::size_of::<MsgData>();
            if end < start || bytes.len() < end {
                return Err(DecodeError::Short { what: "data bytes", len: bytes.len(), need: end.max(start) });
            }
            Ok(Record::Data(DataRecord {
                tid: msg.tid,
                id: msg.id,
                offset: msg.offset,
                bytes: bytes[start..end].to_vec(),
            }))
        }
        op => Err(DecodeError::UnknownOp(op)),
    }
}

/// Decodes a `TETRA_MSG_GENERIC` record (see `struct tetra_msg_generic` in tetra_abi.h).
pub fn decode_generic(bytes: &[u8]) -> Result<GenericRecord, DecodeError> {
    let (msg, body) = read::<MsgGeneric>(bytes, "generic message")?;
    if msg.hdr.op != MSG_GENERIC {
        return Err(DecodeError::UnknownOp(msg.hdr.op));
    }
    let need = msg.args_len as usize;
    if body.len() < need {
        return Err(DecodeError::Short { what: "generic arguments", len: body.len(), need });
    }
    let (mut rest, stacks) = body.split_at(need);
    let (kernel_len, user_len) = (usize::from(msg.kernel_stack_len), usize::from(msg.user_stack_len));
    if stacks.len() < kernel_len + user_len {
        return Err(DecodeError::Short { what: "stack traces", len: stacks.len(), need: kernel_len + user_len });
    }
    // A user stack whose frame-pointer chain ends early is padded with zeros: not frames.
    let addresses = |b: &[u8]| -> Vec<u64> {
        b.chunks_exact(8).map(|c| u64::from_ne_bytes(c.try_into().expect("chunks of 8"))).filter(|a| *a != 0).collect()
    };
    let kernel_stack = addresses(&stacks[..kernel_len]);
    let user_stack = addresses(&stacks[kernel_len..kernel_len + user_len]);
    let mut args = Vec::new();
    for _ in 0..msg.n_args.min(ARGS_MAX_SLOTS as u32 + 1) {
        let (h, after) = read::<GenericArg>(rest, "argument header")?;
        rest = after;
        let len = h.len as usize;
        if rest.len() < len {
            return Err(DecodeError::Short { what: "argument value", len: rest.len(), need: len });
        }
        let (v, tail) = rest.split_at(len);
        rest = tail;
        let value = match h.kind {
            ARG_INT => ArgValue::Int(read::<u64>(v, "integer argument")?.0),
            ARG_BYTES => ArgValue::Bytes(v.to_vec()),
            ARG_PATH => ArgValue::Path(v.to_vec()),
            ARG_SOCK => ArgValue::Sock(read(v, "sock argument")?.0),
            ARG_SOCKADDR => ArgValue::Sockaddr(read(v, "sockaddr argument")?.0),
            ARG_CRED => ArgValue::Cred(read(v, "cred argument")?.0),
            ARG_SKB => ArgValue::Skb(read(v, "skb argument")?.0),
            ARG_BPF_ATTR => ArgValue::BpfAttr(read(v, "bpf_attr argument")?.0),
            ARG_PERF_EVENT => ArgValue::PerfEvent(Box::new(read(v, "perf_event argument")?.0)),
            ARG_BPF_MAP => ArgValue::BpfMap(read(v, "bpf_map argument")?.0),
            ARG_USER_NS => ArgValue::UserNs(read(v, "user_namespace argument")?.0),
            ARG_MODULE => ArgValue::Module(read(v, "module argument")?.0),
            ARG_DATA => {
                let (d, inline) = read::<ArgData>(v, "data argument")?;
                ArgValue::Data(d, inline.to_vec())
            }
            _ => ArgValue::None,
        };
        args.push(RecordedArg { value, flags: h.flags, aux: h.aux });
    }
    Ok(GenericRecord { msg, args, kernel_stack, user_stack })
}

#[cfg(test)]
mod tests {
    use super::*;
    use libbpf_rs::btf::types::{MemberAttr, Struct};
    use libbpf_rs::btf::{Btf, HasSize};
    use std::mem::{offset_of, size_of};
    use zerocopy::FromZeros;

    fn as_bytes<T: IntoBytes + Immutable>(v: &T) -> Vec<u8> {
        v.as_bytes().to_vec()
    }

    /// Member name -> (byte offset, Rust size) for every field of a mirror.
    fn check(btf: &Btf, name: &str, size: usize, fields: &[(&str, usize)]) {
        let s = btf
            .type_by_name::<Struct>(name)
            .unwrap_or_else(|| panic!("struct {name} missing from the object's BTF"));
        assert_eq!(s.size(), size, "size of struct {name}");
        let members: Vec<(String, u32)> = s
            .iter()
            .map(|m| {
                let bits = match m.attr {
                    MemberAttr::Normal { offset } => offset,
                    MemberAttr::BitField { offset, .. } => offset,
                };
                (m.name.unwrap_or_default().to_string_lossy().into_owned(), bits / 8)
            })
            .collect();
        let expected: Vec<(String, u32)> =
            fields.iter().map(|(n, o)| (n.to_string(), *o as u32)).collect();
        assert_eq!(members, expected, "members of struct {name}");
    }

    #[test]
    fn layout_matches_btf() {
        let obj = concat!(env!("OUT_DIR"), "/process.bpf.o");
        let btf = Btf::from_path(obj).expect("BTF of process.bpf.o");
        check(&btf, "tetra_msg_header", size_of::<MsgHeader>(), &[
            ("op", offset_of!(MsgHeader, op)),
            ("pad", offset_of!(MsgHeader, pad)),
            ("size", offset_of!(MsgHeader, size)),
            ("ktime", offset_of!(MsgHeader, ktime)),
        ]);
        check(&btf, "tetra_msg_exec", size_of::<MsgExec>(), &[
            ("hdr", offset_of!(MsgExec, hdr)),
            ("pid", offset_of!(MsgExec, pid)),
            ("tid", offset_of!(MsgExec, tid)),
            ("ppid", offset_of!(MsgExec, ppid)),
            ("uid", offset_of!(MsgExec, uid)),
            ("gid", offset_of!(MsgExec, gid)),
            ("euid", offset_of!(MsgExec, euid)),
            ("auid", offset_of!(MsgExec, auid)),
            ("exec_flags", offset_of!(MsgExec, exec_flags)),
            ("cap_permitted", offset_of!(MsgExec, cap_permitted)),
            ("cap_effective", offset_of!(MsgExec, cap_effective)),
            ("cap_inheritable", offset_of!(MsgExec, cap_inheritable)),
            ("cgroup_id", offset_of!(MsgExec, cgroup_id)),
            ("ns_inum", offset_of!(MsgExec, ns_inum)),
            ("filename_len", offset_of!(MsgExec, filename_len)),
            ("args_len", offset_of!(MsgExec, args_len)),
            ("cwd_len", offset_of!(MsgExec, cwd_len)),
            ("pad", offset_of!(MsgExec, pad)),
        ]);
        check(&btf, "tetra_msg_exit", size_of::<MsgExit>(), &[
            ("hdr", offset_of!(MsgExit, hdr)),
            ("pid", offset_of!(MsgExit, pid)),
            ("tid", offset_of!(MsgExit, tid)),
            ("exit_code", offset_of!(MsgExit, exit_code)),
            ("pad", offset_of!(MsgExit, pad)),
        ]);
        check(&btf, "tetra_msg_clone", size_of::<MsgClone>(), &[
            ("hdr", offset_of!(MsgClone, hdr)),
            ("pid", offset_of!(MsgClone, pid)),
            ("tid", offset_of!(MsgClone, tid)),
            ("ppid", offset_of!(MsgClone, ppid)),
            ("pad", offset_of!(MsgClone, pad)),
        ]);
    }

    #[test]
    fn generic_layout_matches_btf() {
        let obj = concat!(env!("OUT_DIR"), "/generic.bpf.o");
        let btf = Btf::from_path(obj).expect("BTF of generic.bpf.o");
        check(&btf, "tetra_msg_generic", size_of::<MsgGeneric>(), &[
            ("hdr", offset_of!(MsgGeneric, hdr)),
            ("pid", offset_of!(MsgGeneric, pid)),
            ("tid", offset_of!(MsgGeneric, tid)),
            ("policy_id", offset_of!(MsgGeneric, policy_id)),
            ("hook_id", offset_of!(MsgGeneric, hook_id)),
            ("selector", offset_of!(MsgGeneric, selector)),
            ("action", offset_of!(MsgGeneric, action)),
            ("retval", offset_of!(MsgGeneric, retval)),
            ("n_args", offset_of!(MsgGeneric, n_args)),
            ("args_len", offset_of!(MsgGeneric, args_len)),
            ("return_action", offset_of!(MsgGeneric, return_action)),
            ("kernel_stack_len", offset_of!(MsgGeneric, kernel_stack_len)),
            ("user_stack_len", offset_of!(MsgGeneric, user_stack_len)),
        ]);
        check(&btf, "tetra_generic_arg", size_of::<GenericArg>(), &[
            ("len", offset_of!(GenericArg, len)),
            ("kind", offset_of!(GenericArg, kind)),
            ("flags", offset_of!(GenericArg, flags)),
            ("aux", offset_of!(GenericArg, aux)),
        ]);
        check(&btf, "tetra_arg_sock", size_of::<ArgSock>(), &[
            ("cookie", offset_of!(ArgSock, cookie)),
            ("mark", offset_of!(ArgSock, mark)),
            ("priority", offset_of!(ArgSock, priority)),
            ("family", offset_of!(ArgSock, family)),
            ("type", offset_of!(ArgSock, ty)),
            ("protocol", offset_of!(ArgSock, protocol)),
            ("sport", offset_of!(ArgSock, sport)),
            ("dport", offset_of!(ArgSock, dport)),
            ("state", offset_of!(ArgSock, state)),
            ("pad", offset_of!(ArgSock, pad)),
            ("pad2", offset_of!(ArgSock, pad2)),
            ("saddr", offset_of!(ArgSock, saddr)),
            ("daddr", offset_of!(ArgSock, daddr)),
        ]);
        check(&btf, "tetra_arg_sockaddr", size_of::<ArgSockaddr>(), &[
            ("family", offset_of!(ArgSockaddr, family)),
            ("port", offset_of!(ArgSockaddr, port)),
            ("pad", offset_of!(ArgSockaddr, pad)),
            ("addr", offset_of!(ArgSockaddr, addr)),
        ]);
        check(&btf, "tetra_arg_cred", size_of::<ArgCred>(), &[
            ("uid", offset_of!(ArgCred, uid)),
            ("gid", offset_of!(ArgCred, gid)),
            ("euid", offset_of!(ArgCred, euid)),
            ("egid", offset_of!(ArgCred, egid)),
            ("suid", offset_of!(ArgCred, suid)),
            ("sgid", offset_of!(ArgCred, sgid)),
            ("fsuid", offset_of!(ArgCred, fsuid)),
            ("fsgid", offset_of!(ArgCred, fsgid)),
            ("securebits", offset_of!(ArgCred, securebits)),
            ("userns_level", offset_of!(ArgCred, userns_level)),
            ("userns_uid", offset_of!(ArgCred, userns_uid)),
            ("userns_gid", offset_of!(ArgCred, userns_gid)),
            ("userns_inum", offset_of!(ArgCred, userns_inum)),
            ("pad", offset_of!(ArgCred, pad)),
            ("cap_permitted", offset_of!(ArgCred, cap_permitted)),
            ("cap_effective", offset_of!(ArgCred, cap_effective)),
            ("cap_inheritable", offset_of!(ArgCred, cap_inheritable)),
        ]);
        check(&btf, "tetra_arg_data", size_of::<ArgData>(), &[
            ("id", offset_of!(ArgData, id)),
            ("size", offset_of!(ArgData, size)),
            ("sent", offset_of!(ArgData, sent)),
            ("error", offset_of!(ArgData, error)),
        ]);
        check(&btf, "tetra_msg_data", size_of::<MsgData>(), &[
            ("hdr", offset_of!(MsgData, hdr)),
            ("tid", offset_of!(MsgData, tid)),
            ("offset", offset_of!(MsgData, offset)),
            ("id", offset_of!(MsgData, id)),
        ]);
        check(&btf, "tetra_arg_skb", size_of::<ArgSkb>(), &[
            ("hash", offset_of!(ArgSkb, hash)),
            ("len", offset_of!(ArgSkb, len)),
            ("priority", offset_of!(ArgSkb, priority)),
            ("mark", offset_of!(ArgSkb, mark)),
            ("family", offset_of!(ArgSkb, family)),
            ("proto", offset_of!(ArgSkb, proto)),
            ("sport", offset_of!(ArgSkb, sport)),
            ("dport", offset_of!(ArgSkb, dport)),
            ("saddr", offset_of!(ArgSkb, saddr)),
            ("daddr", offset_of!(ArgSkb, daddr)),
        ]);
        check(&btf, "tetra_arg_bpf_attr", size_of::<ArgBpfAttr>(), &[
            ("prog_type", offset_of!(ArgBpfAttr, prog_type)),
            ("insn_cnt", offset_of!(ArgBpfAttr, insn_cnt)),
            ("prog_name", offset_of!(ArgBpfAttr, prog_name)),
        ]);
        check(&btf, "tetra_arg_perf_event", size_of::<ArgPerfEvent>(), &[
            ("config", offset_of!(ArgPerfEvent, config)),
            ("probe_offset", offset_of!(ArgPerfEvent, probe_offset)),
            ("type", offset_of!(ArgPerfEvent, ty)),
            ("pad", offset_of!(ArgPerfEvent, pad)),
            ("kprobe_func", offset_of!(ArgPerfEvent, kprobe_func)),
        ]);
        check(&btf, "tetra_arg_bpf_map", size_of::<ArgBpfMap>(), &[
            ("map_type", offset_of!(ArgBpfMap, map_type)),
            ("key_size", offset_of!(ArgBpfMap, key_size)),
            ("value_size", offset_of!(ArgBpfMap, value_size)),
            ("max_entries", offset_of!(ArgBpfMap, max_entries)),
            ("name", offset_of!(ArgBpfMap, name)),
        ]);
        check(&btf, "tetra_arg_user_ns", size_of::<ArgUserNs>(), &[
            ("level", offset_of!(ArgUserNs, level)),
            ("uid", offset_of!(ArgUserNs, uid)),
            ("gid", offset_of!(ArgUserNs, gid)),
            ("inum", offset_of!(ArgUserNs, inum)),
        ]);
        check(&btf, "tetra_arg_module", size_of::<ArgModule>(), &[
            ("taints", offset_of!(ArgModule, taints)),
            ("sig_ok", offset_of!(ArgModule, sig_ok)),
            ("pad", offset_of!(ArgModule, pad)),
            ("name", offset_of!(ArgModule, name)),
        ]);
    }

    #[test]
    fn decodes_generic_args_in_order() {
        let mut args = Vec::new();
        let mut push = |kind: u8, flags: u8, aux: u32, v: &[u8]| {
            let h = GenericArg { len: v.len() as u16, kind, flags, aux };
            args.extend(as_bytes(&h));
            args.extend_from_slice(v);
        };
        push(ARG_INT, 0, 0, &(-3i64 as u64).to_ne_bytes());
        push(ARG_PATH, ARG_TRUNCATED, 0o100644, b"/etc/passwd");
        push(ARG_NONE, ARG_READ_ERROR, 0, b"");
        let sa = ArgSockaddr { family: 2, port: 80, addr: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], ..Default::default() };
        push(ARG_SOCKADDR, 0, 0, &as_bytes(&sa));
        let msg = MsgGeneric {
            hdr: MsgHeader { op: MSG_GENERIC, ..Default::default() },
            pid: 9,
            hook_id: 2,
            action: 3,
            n_args: 4,
            args_len: args.len() as u32,
            ..Default::default()
        };
        let mut bytes = as_bytes(&msg);
        bytes.extend(&args);
        let rec = decode_generic(&bytes).unwrap();
        assert_eq!((rec.msg.pid, rec.msg.hook_id, rec.msg.action), (9, 2, 3));
        assert_eq!(rec.args[0].value, ArgValue::Int(-3i64 as u64));
        assert_eq!(rec.args[1].value, ArgValue::Path(b"/etc/passwd".to_vec()));
        assert_eq!((rec.args[1].flags, rec.args[1].aux), (ARG_TRUNCATED, 0o100644));
        assert_eq!(rec.args[2].value, ArgValue::None);
        assert_eq!(rec.args[3].value, ArgValue::Sockaddr(sa));
        // A length past the record is an error, not a panic.
        let mut short = bytes.clone();
        short.truncate(bytes.len() - 3);
        assert!(matches!(decode_generic(&short), Err(DecodeError::Short { .. })));
    }

    #[test]
    fn decodes_stack_traces_after_the_args() {
        let arg = GenericArg { len: 8, kind: ARG_INT, flags: 0, aux: 0 };
        let mut body = as_bytes(&arg);
        body.extend(7u64.to_ne_bytes());
        let args_len = body.len() as u32;
        for address in [0xffff_ffff_8100_0010u64, 0xffff_ffff_8100_0020, 0x7f00_0000_1000, 0] {
            body.extend(address.to_ne_bytes());
        }
        let msg = MsgGeneric {
            hdr: MsgHeader { op: MSG_GENERIC, ..Default::default() },
            n_args: 1,
            args_len,
            kernel_stack_len: 16,
            user_stack_len: 16,
            ..Default::default()
        };
        let mut bytes = as_bytes(&msg);
        bytes.extend(&body);
        let rec = decode_generic(&bytes).unwrap();
        assert_eq!(rec.args[0].value, ArgValue::Int(7));
        assert_eq!(rec.kernel_stack, [0xffff_ffff_8100_0010, 0xffff_ffff_8100_0020]);
        assert_eq!(rec.user_stack, [0x7f00_0000_1000], "the zero padding of a short user stack is dropped");
        bytes.truncate(bytes.len() - 8);
        assert_eq!(
            decode_generic(&bytes).unwrap_err(),
            DecodeError::Short { what: "stack traces", len: 24, need: 32 }
        );
    }

    #[test]
    fn decodes_kernel_object_args() {
        let attr = ArgBpfAttr { prog_type: 2, insn_cnt: 2, prog_name: *b"tetra_probe\0\0\0\0\0" };
        let map = ArgBpfMap { map_type: 1, key_size: 4, value_size: 8, max_entries: 16, name: [0; 16] };
        let ns = ArgUserNs { level: 1, uid: 1000, gid: 100, inum: 7 };
        let mut perf = ArgPerfEvent { config: 3, probe_offset: 8, ty: 6, ..FromZeros::new_zeroed() };
        perf.kprobe_func[..4].copy_from_slice(b"vfs_");
        let mut module = ArgModule { taints: 4096, sig_ok: MODULE_SIG_UNKNOWN, ..FromZeros::new_zeroed() };
        module.name[..3].copy_from_slice(b"ext");
        let mut args = Vec::new();
        let parts: [(u8, Vec<u8>); 6] = [
            (ARG_BPF_ATTR, as_bytes(&attr)),
            (ARG_PERF_EVENT, as_bytes(&perf)),
            (ARG_BPF_MAP, as_bytes(&map)),
            (ARG_USER_NS, as_bytes(&ns)),
            (ARG_MODULE, as_bytes(&module)),
            (ARG_NONE, Vec::new()),
        ];
        for (kind, v) in &parts {
            args.extend(as_bytes(&GenericArg { len: v.len() as u16, kind: *kind, flags: 0, aux: 0 }));
            args.extend(v);
        }
        let msg = MsgGeneric {
            hdr: MsgHeader { op: MSG_GENERIC, ..Default::default() },
            n_args: 6,
            args_len: args.len() as u32,
            ..Default::default()
        };
        let mut bytes = as_bytes(&msg);
        bytes.extend(&args);
        let rec = decode_generic(&bytes).unwrap();
        let values: Vec<ArgValue> = rec.args.into_iter().map(|a| a.value).collect();
        assert_eq!(values, [
            ArgValue::BpfAttr(attr),
            ArgValue::PerfEvent(Box::new(perf)),
            ArgValue::BpfMap(map),
            ArgValue::UserNs(ns),
            ArgValue::Module(module),
            ArgValue::None,
        ]);
        assert_eq!(c_name(&attr.prog_name), "tetra_probe");
        assert_eq!(c_name(b"exactly16bytes!!"), "exactly16bytes!!");
        // A struct value shorter than its kind says is an error.
        let mut short = as_bytes(&MsgGeneric { n_args: 1, args_len: 12, ..msg });
        short.extend(as_bytes(&GenericArg { len: 4, kind: ARG_BPF_MAP, flags: 0, aux: 0 }));
        short.extend([0u8; 4]);
        assert_eq!(decode_generic(&short).unwrap_err(), DecodeError::Short { what: "bpf_map argument", len: 4, need: 32 });
    }

    #[test]
    fn decodes_data_messages_and_data_args() {
        let msg = MsgData {
            hdr: MsgHeader { op: MSG_DATA, size: 32 + 5, ..Default::default() },
            tid: 11,
            offset: 1024,
            id: 77,
        };
        let mut bytes = as_bytes(&msg);
        bytes.extend_from_slice(b"hello");
        let Record::Data(d) = decode(&bytes).unwrap() else { panic!("not data") };
        assert_eq!(d, DataRecord { tid: 11, id: 77, offset: 1024, bytes: b"hello".to_vec() });
        // A size past the record is an error.
        bytes.truncate(34);
        assert_eq!(decode(&bytes).unwrap_err(), DecodeError::Short { what: "data bytes", len: 34, need: 37 });

        let desc = ArgData { id: 77, size: 70_000, sent: 68_976, error: 0 };
        let mut v = as_bytes(&desc);
        v.extend_from_slice(b"inline");
        let mut args = as_bytes(&GenericArg { len: v.len() as u16, kind: ARG_DATA, flags: 0, aux: 0 });
        args.extend(&v);
        let msg = MsgGeneric {
            hdr: MsgHeader { op: MSG_GENERIC, ..Default::default() },
            n_args: 1,
            args_len: args.len() as u32,
            ..Default::default()
        };
        let mut bytes = as_bytes(&msg);
        bytes.extend(&args);
        let rec = decode_generic(&bytes).unwrap();
        assert_eq!(rec.args[0].value, ArgValue::Data(desc, b"inline".to_vec()));
    }

    #[test]
    fn decodes_exec_strings_by_their_lengths() {
        let msg = MsgExec {
            hdr: MsgHeader { op: MSG_EXEC, ..Default::default() },
            pid: 42,
            filename_len: 9,
            args_len: 7,
            cwd_len: 4,
            ..Default::default()
        };
        let mut bytes = as_bytes(&msg);
        bytes.extend_from_slice(b"/bin/echoecho\0a\0/tmp");
        let Record::Exec(e) = decode(&bytes).unwrap() else { panic!("not an exec") };
        assert_eq!(e.msg.pid, 42);
        assert_eq!(e.filename, b"/bin/echo");
        assert_eq!(e.args, b"echo\0a\0");
        assert_eq!(e.cwd, b"/tmp");
    }

    #[test]
    fn rejects_lengths_past_the_record() {
        let msg = MsgExec {
            hdr: MsgHeader { op: MSG_EXEC, ..Default::default() },
            filename_len: 100,
            ..Default::default()
        };
        let mut bytes = as_bytes(&msg);
        bytes.extend_from_slice(b"short");
        assert_eq!(
            decode(&bytes).unwrap_err(),
            DecodeError::Short { what: "exec strings", len: 5, need: 100 }
        );
        assert_eq!(decode(&[1, 2]).unwrap_err(), DecodeError::Short {
            what: "header",
            len: 2,
            need: 16
        });
        let mut unknown = as_bytes(&MsgHeader { op: 77, ..Default::default() });
        unknown.extend_from_slice(&[0; 16]);
        assert_eq!(decode(&unknown).unwrap_err(), DecodeError::UnknownOp(77));
    }

    #[test]
    fn decodes_exit_and_clone() {
        let exit = MsgExit {
            hdr: MsgHeader { op: MSG_EXIT, ..Default::default() },
            pid: 7,
            exit_code: 3 << 8,
            ..Default::default()
        };
        let Record::Exit(e) = decode(&as_bytes(&exit)).unwrap() else { panic!() };
        assert_eq!((e.pid, e.exit_code), (7, 768));
        let clone = MsgClone {
            hdr: MsgHeader { op: MSG_CLONE, ..Default::default() },
            pid: 8,
            ppid: 7,
            ..Default::default()
        };
        let Record::Clone(c) = decode(&as_bytes(&clone)).unwrap() else { panic!() };
        assert_eq!((c.pid, c.ppid), (8, 7));
    }
}
