//! Contents of the per-hook BPF maps a selector refers to by id.

use std::collections::BTreeSet;

/// Key sizes of the exact-string hash maps. A string goes into the smallest bucket that
/// holds it; its key is the string's bytes zero-padded to the bucket size.
pub const STRING_BUCKETS: [u32; 8] = [32, 64, 128, 256, 512, 1024, 2048, 4096];

/// Most entries an integer set may hold after range expansion.
pub const MAX_INT_SET_ENTRIES: usize = 65536;

/// The bucket for a string of `len` bytes, if it fits any.
pub fn string_bucket(len: usize) -> Option<u32> {
    STRING_BUCKETS.iter().copied().find(|b| len <= *b as usize)
}

/// What an LPM trie holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LpmKind {
    /// String prefixes (Prefix/NotPrefix, binary Prefix).
    Prefix = 1,
    /// Reversed string suffixes (Postfix/NotPostfix, binary Postfix).
    Postfix = 2,
    /// IPv4 networks (4-byte keys).
    Ipv4 = 3,
    /// IPv6 networks (16-byte keys).
    Ipv6 = 4,
}

/// One LPM trie entry: `prefix_bits` leading bits of `data` must match.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LpmEntry {
    pub prefix_bits: u32,
    pub data: Vec<u8>,
}

/// Contents of one map, referenced by its position in [`super::CompiledHook::maps`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ValueMap {
    /// `BPF_MAP_TYPE_HASH` with u64 keys (InMap sets, ports, protocols, families, states).
    IntSet(BTreeSet<u64>),
    /// `BPF_MAP_TYPE_HASH` with `bucket`-byte zero-padded string keys.
    Strings {
        bucket: u32,
        keys: BTreeSet<Vec<u8>>,
    },
    /// `BPF_MAP_TYPE_LPM_TRIE`.
    Lpm {
        kind: LpmKind,
        entries: BTreeSet<LpmEntry>,
    },
}

impl ValueMap {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            ValueMap::IntSet(s) => s.len(),
            ValueMap::Strings { keys, .. } => keys.len(),
            ValueMap::Lpm { entries, .. } => entries.len(),
        }
    }

    /// True when the map holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
