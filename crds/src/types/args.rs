//! Hook argument descriptions (`args`, `data`, `returnArg`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// One argument to record (and possibly filter on).
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KProbeArg {
    /// Position of the argument in the call (or tracepoint format field index).
    #[schemars(range(min = 0))]
    pub index: u32,
    /// How to read the argument.
    #[serde(rename = "type", default)]
    pub ty: ArgType,
    /// BTF path through struct fields, e.g. `mm.owner.comm`.
    pub resolve: Option<String>,
    /// 1-based index of the argument holding the buffer size (char_buf/char_iovec).
    #[schemars(range(min = 0))]
    pub size_arg_index: Option<u32>,
    /// Read the buffer when the call returns (e.g. read(2)).
    pub return_copy: Option<bool>,
    /// Read up to 327360 bytes of a char_buf instead of 4096.
    pub max_data: Option<bool>,
    /// Label emitted with the argument in events.
    pub label: Option<String>,
    /// Source of `data` entries: `current_task` or `pt_regs`.
    pub source: Option<String>,
    /// Initial BTF type for `resolve`.
    pub btf_type: Option<String>,
    /// Kernel module exposing the BTF type.
    pub btf_type_module: Option<String>,
}

/// Argument type names, exactly as the CRD enum spells them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArgType {
    #[default]
    Auto,
    Int,
    Sint8,
    Int8,
    Uint8,
    Sint16,
    Int16,
    Uint16,
    Uint32,
    Sint32,
    Int32,
    Ulong,
    Uint64,
    SizeT,
    Long,
    Sint64,
    Int64,
    CharBuf,
    CharIovec,
    Skb,
    Sock,
    Sockaddr,
    Socket,
    SockaddrUn,
    String,
    Fd,
    File,
    Filename,
    Path,
    Nop,
    BpfAttr,
    PerfEvent,
    BpfMap,
    UserNamespace,
    Capability,
    Kiocb,
    IovIter,
    Cred,
    ConstBuf,
    LoadInfo,
    Module,
    Syscall64,
    KernelCapT,
    CapInheritable,
    CapPermitted,
    CapEffective,
    LinuxBinprm,
    DataLoc,
    NetDevice,
    BpfCmd,
    Dentry,
    BpfProg,
}

impl ArgType {
    /// The YAML spelling of this type.
    pub fn name(self) -> String {
        super::yaml_name(&self)
    }

    /// Integer types whose values compare numerically.
    pub fn is_integer(self) -> bool {
        use ArgType::*;
        matches!(
            self,
            Int | Sint8
                | Int8
                | Uint8
                | Sint16
                | Int16
                | Uint16
                | Uint32
                | Sint32
                | Int32
                | Ulong
                | Uint64
                | SizeT
                | Long
                | Sint64
                | Int64
                | Syscall64
                | KernelCapT
                | CapInheritable
                | CapPermitted
                | CapEffective
                | BpfCmd
        )
    }

    /// Types compared as strings (paths, names, buffers).
    pub fn is_stringy(self) -> bool {
        use ArgType::*;
        matches!(
            self,
            Fd | File
                | Path
                | Dentry
                | String
                | CharBuf
                | LinuxBinprm
                | DataLoc
                | NetDevice
                | SockaddrUn
                | Filename
        )
    }

    /// Types whose string value is a file path (fd, file, path, dentry, linux_binprm).
    pub fn is_file(self) -> bool {
        use ArgType::*;
        matches!(self, Fd | File | Path | Dentry | LinuxBinprm)
    }

    /// Socket-like types carrying addresses and ports.
    pub fn is_socket(self) -> bool {
        use ArgType::*;
        matches!(self, Sock | Skb | Sockaddr | Socket | SockaddrUn)
    }
}
