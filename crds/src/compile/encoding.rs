//! The selector filter blob: one per hook, written into the hook's filter map, read by the
//! BPF program to evaluate selectors in the kernel.
//!
//! All integers are little-endian; every field is a 32-bit word, 64-bit values are two
//! words (low word first), so every field is 4-byte aligned. Lengths are explicit so the
//! BPF side can skip what it does not need with bounded loops.
//!
//! ```text
//! blob      := u32 version (=1) | u32 n_selectors | selector * n_selectors
//! selector  := u32 selector_len (bytes, including this word)
//!              | section pids | section namespaces | section capabilities
//!              | section binaries | section args | section actions
//!              | section return_args | section return_actions
//!              | section namespace_changes | section capability_changes
//! section   := u32 body_len (bytes after this word) | u32 count | entry * count
//!
//! pids entry      := u32 op (1 In, 2 NotIn) | u32 flags (bit0 isNamespacePID, bit1 followForks)
//!                    | u32 n | u32 pid * n
//! namespace entry := u32 ns (Uts=0 Ipc Mnt Pid PidForChildren Net Time TimeForChildren Cgroup User=9)
//!                    | u32 op | u32 n | u32 inode * n          (0xFFFF_FFFF = host_ns, resolved at load)
//! capability entry:= u32 set (0 Effective, 1 Inheritable, 2 Permitted) | u32 op
//!                    | u32 flags (bit0 isNamespaceCapability) | u64 mask (bit N = capability N)
//! binary entry    := u32 op (1 In 2 NotIn 3 Prefix 4 NotPrefix 5 Postfix 6 NotPostfix)
//!                    | u32 flags (bit0 followChildren) | u32 n | u32 map_id * n
//! ns change entry := u32 op | u32 mask (bit N = namespace N, numbered as above)
//! capability change entry := as a capability entry (mask: the capabilities that matter)
//! arg entry       := u32 slot (position in the hook's args; 5 = return value) | u32 op
//!                    | u32 type_code | u32 kind (0 none, 1 inline u64s, 2 map ids) | u32 n
//!                    | (u64 value * n  if kind 1) | (u32 map_id * n  if kind 2)
//! action entry    := u32 code (KprobeAction numbers: Post=1 FollowFD=2 Sigkill=3 UnfollowFD=4
//!                    Override=5 CopyFD=6 GetUrl=7 DnsLookup=8 NoPost=9 Signal=10
//!                    TrackSock=11 UntrackSock=12) | u32 n | u64 param * n
//! ```
//!
//! Action parameters: Post `[rate_limit_ms, scope (0 thread, 1 process, 2 global)]`, plus
//! `stack_traces` (bit0 kernelStackTrace, bit1 userStackTrace) when one is asked for;
//! FollowFD/UnfollowFD/CopyFD `[fd_slot, name_slot]`; Signal `[signal]`; Sigkill `[]`;
//! Override `[errno as i64]`; GetUrl/DnsLookup `[string_id]` (index into the hook's
//! strings); TrackSock/UntrackSock `[sock_slot]`; NoPost `[]`.
//! Operator codes are [`crate::compile::op_code`]; type codes [`crate::compile::type_code`].

use thiserror::Error;

/// Version word at the start of every blob.
pub const BLOB_VERSION: u32 = 1;
/// Slot number meaning "the return value".
pub const RETURN_SLOT: u32 = 5;
/// Namespace value standing for the host's namespace.
pub const HOST_NS: u32 = u32::MAX;
/// Largest blob a hook's filter map value holds.
pub const MAX_BLOB_LEN: usize = 16 * 1024;

/// A PID filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PidFilter {
    pub op: u32,
    pub flags: u32,
    pub pids: Vec<u32>,
}
/// A namespace filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceFilter {
    pub ns: u32,
    pub op: u32,
    pub inodes: Vec<u32>,
}
/// A capability filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapabilityFilter {
    pub set: u32,
    pub op: u32,
    pub flags: u32,
    pub mask: u64,
}
/// A matchNamespaceChanges filter: In, a listed namespace changed since exec (or since
/// the last match); NotIn, an unlisted one did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceChangeFilter {
    pub op: u32,
    pub mask: u32,
}
/// A binary filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinaryFilter {
    pub op: u32,
    pub flags: u32,
    pub map_ids: Vec<u32>,
}

/// Values of an argument filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgValues {
    /// No values (privileged-port operators).
    None,
    /// Inline 64-bit values.
    Inline(Vec<u64>),
    /// Ids of maps in the hook's map list.
    Maps(Vec<u32>),
}

/// An argument filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgFilter {
    pub slot: u32,
    pub op: u32,
    pub type_code: u32,
    pub values: ArgValues,
}
/// An action with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionConfig {
    pub code: u32,
    pub params: Vec<u64>,
}

/// One selector as the kernel sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SelectorConfig {
    pub pids: Vec<PidFilter>,
    pub namespaces: Vec<NamespaceFilter>,
    pub capabilities: Vec<CapabilityFilter>,
    pub binaries: Vec<BinaryFilter>,
    pub args: Vec<ArgFilter>,
    pub actions: Vec<ActionConfig>,
    pub return_args: Vec<ArgFilter>,
    pub return_actions: Vec<ActionConfig>,
    /// Added for matchNamespaceChanges / matchCapabilityChanges (last in the selector).
    pub namespace_changes: Vec<NamespaceChangeFilter>,
    pub capability_changes: Vec<CapabilityFilter>,
}

/// Why a blob could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("blob truncated at byte {0}")]
    Truncated(usize),
    #[error("unsupported blob version {0}")]
    Version(u32),
    #[error("length {len} at byte {at} does not match the content ({actual} bytes)")]
    Length { at: usize, len: u32, actual: usize },
    #[error("unknown arg value kind {0}")]
    Kind(u32),
    #[error("{0} trailing bytes after the last selector")]
    Trailing(usize),
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.u32(v as u32);
        self.u32((v >> 32) as u32);
    }
    fn len(&mut self, v: usize) {
        self.u32(u32::try_from(v).unwrap_or(u32::MAX));
    }
    /// Writes a length word, then `body`, then patches the length.
    fn framed(&mut self, include_self: bool, body: impl FnOnce(&mut Writer)) {
        let at = self.0.len();
        self.u32(0);
        body(self);
        let len = self.0.len() - at - if include_self { 0 } else { 4 };
        self.0[at..at + 4].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    }
    fn section<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Writer, &T)) {
        self.framed(false, |w| {
            w.len(items.len());
            for it in items {
                each(w, it);
            }
        });
    }
}

fn write_args(w: &mut Writer, f: &ArgFilter) {
    w.u32(f.slot);
    w.u32(f.op);
    w.u32(f.type_code);
    match &f.values {
        ArgValues::None => {
            w.u32(0);
            w.u32(0);
        }
        ArgValues::Inline(v) => {
            w.u32(1);
            w.len(v.len());
            v.iter().for_each(|x| w.u64(*x));
        }
        ArgValues::Maps(v) => {
            w.u32(2);
            w.len(v.len());
            v.iter().for_each(|x| w.u32(*x));
        }
    }
}

fn write_capability(w: &mut Writer, f: &CapabilityFilter) {
    w.u32(f.set);
    w.u32(f.op);
    w.u32(f.flags);
    w.u64(f.mask);
}

fn read_capability(r: &mut Reader<'_>) -> Result<CapabilityFilter, DecodeError> {
    Ok(CapabilityFilter {
        set: r.u32()?,
        op: r.u32()?,
        flags: r.u32()?,
        mask: r.u64()?,
    })
}

fn write_action(w: &mut Writer, a: &ActionConfig) {
    w.u32(a.code);
    w.len(a.params.len());
    a.params.iter().for_each(|p| w.u64(*p));
}

/// Encodes selectors into the blob described in the module documentation.
pub fn encode(selectors: &[SelectorConfig]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(BLOB_VERSION);
    w.len(selectors.len());
    for s in selectors {
        w.framed(true, |w| {
            w.section(&s.pids, |w, f| {
                w.u32(f.op);
                w.u32(f.flags);
                w.len(f.pids.len());
                f.pids.iter().for_each(|p| w.u32(*p));
            });
            w.section(&s.namespaces, |w, f| {
                w.u32(f.ns);
                w.u32(f.op);
                w.len(f.inodes.len());
                f.inodes.iter().for_each(|p| w.u32(*p));
            });
            w.section(&s.capabilities, write_capability);
            w.section(&s.binaries, |w, f| {
                w.u32(f.op);
                w.u32(f.flags);
                w.len(f.map_ids.len());
                f.map_ids.iter().for_each(|p| w.u32(*p));
            });
            w.section(&s.args, write_args);
            w.section(&s.actions, write_action);
            w.section(&s.return_args, write_args);
            w.section(&s.return_actions, write_action);
            w.section(&s.namespace_changes, |w, f| {
                w.u32(f.op);
                w.u32(f.mask);
            });
            w.section(&s.capability_changes, write_capability);
        });
    }
    w.0
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let bytes = self
            .buf
            .get(self.pos..self.pos + 4)
            .ok_or(DecodeError::Truncated(self.pos))?;
        self.pos += 4;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let lo = self.u32()?;
        let hi = self.u32()?;
        Ok(u64::from(lo) | (u64::from(hi) << 32))
    }
    /// Reads `n` items; `n` comes from the blob, so cap preallocation by remaining bytes.
    fn many<T>(
        &mut self,
        n: u32,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let mut out =
            Vec::with_capacity((n as usize).min(self.buf.len().saturating_sub(self.pos) / 4));
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }
    fn section<T>(
        &mut self,
        item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let at = self.pos;
        let len = self.u32()?;
        let start = self.pos;
        let n = self.u32()?;
        let out = self.many(n, item)?;
        if self.pos - start != len as usize {
            return Err(DecodeError::Length {
                at,
                len,
                actual: self.pos - start,
            });
        }
        Ok(out)
    }
}

fn read_arg(r: &mut Reader<'_>) -> Result<ArgFilter, DecodeError> {
    let (slot, op, type_code, kind) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
    let n = r.u32()?;
    let values = match kind {
        0 if n == 0 => ArgValues::None,
        1 => ArgValues::Inline(r.many(n, Reader::u64)?),
        2 => ArgValues::Maps(r.many(n, Reader::u32)?),
        k => return Err(DecodeError::Kind(k)),
    };
    Ok(ArgFilter {
        slot,
        op,
        type_code,
        values,
    })
}

fn read_action(r: &mut Reader<'_>) -> Result<ActionConfig, DecodeError> {
    let code = r.u32()?;
    let n = r.u32()?;
    Ok(ActionConfig {
        code,
        params: r.many(n, Reader::u64)?,
    })
}

/// Decodes a blob produced by [`encode`].
pub fn decode(blob: &[u8]) -> Result<Vec<SelectorConfig>, DecodeError> {
    let mut r = Reader { buf: blob, pos: 0 };
    let version = r.u32()?;
    if version != BLOB_VERSION {
        return Err(DecodeError::Version(version));
    }
    let n = r.u32()?;
    let sels = r.many(n, |r| {
        let at = r.pos;
        let len = r.u32()?;
        let s = SelectorConfig {
            pids: r.section(|r| {
                let (op, flags, n) = (r.u32()?, r.u32()?, r.u32()?);
                Ok(PidFilter {
                    op,
                    flags,
                    pids: r.many(n, Reader::u32)?,
                })
            })?,
            namespaces: r.section(|r| {
                let (ns, op, n) = (r.u32()?, r.u32()?, r.u32()?);
                Ok(NamespaceFilter {
                    ns,
                    op,
                    inodes: r.many(n, Reader::u32)?,
                })
            })?,
            capabilities: r.section(read_capability)?,
            binaries: r.section(|r| {
                let (op, flags, n) = (r.u32()?, r.u32()?, r.u32()?);
                Ok(BinaryFilter {
                    op,
                    flags,
                    map_ids: r.many(n, Reader::u32)?,
                })
            })?,
            args: r.section(read_arg)?,
            actions: r.section(read_action)?,
            return_args: r.section(read_arg)?,
            return_actions: r.section(read_action)?,
            namespace_changes: r.section(|r| Ok(NamespaceChangeFilter { op: r.u32()?, mask: r.u32()? }))?,
            capability_changes: r.section(read_capability)?,
        };
        if r.pos - at != len as usize {
            return Err(DecodeError::Length {
                at,
                len,
                actual: r.pos - at,
            });
        }
        Ok(s)
    })?;
    if r.pos != blob.len() {
        return Err(DecodeError::Trailing(blob.len() - r.pos));
    }
    Ok(sels)
}
