//! The contents of a hook's selector value maps (`ValueMap` by id) as BPF map entries,
//! keyed the way bpf/lib/selectors.h looks them up, and the numbers of the paths
//! matchBinaries In/NotIn filters name.
use std::collections::{BTreeSet, HashMap};
use std::os::fd::AsFd;
use std::sync::Mutex;

use libbpf_rs::{MapCore, MapFlags, MapHandle};
use tetra_crds::compile::encoding::BinaryFilter;
use tetra_crds::compile::{CompiledHook, LpmKind, ValueMap};

use crate::sensors::process::BINARY_PATH_MAX;

/// Map names in generic.bpf.o.
pub const STR_EQ_BUCKETS: [u32; 6] = [32, 64, 128, 256, 512, 1024];
/// `PREFIX_MAX`: an LPM key holds 256 bytes after prefixlen, 4 of them the map id.
pub const PREFIX_LEN: usize = 252;
pub const POSTFIX_LEN: usize = 128;

/// Entries per BPF map name, for one hook.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MapEntries {
    pub entries: Vec<(String, Vec<u8>)>,
}

impl MapEntries {
    pub fn count(&self, map: &str) -> usize {
        self.entries.iter().filter(|(m, _)| m == map).count()
    }
}

fn lpm_key(map_id: u32, prefix_bits: u32, data: &[u8], width: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + width);
    key.extend_from_slice(&(32 + prefix_bits).to_ne_bytes());
    key.extend_from_slice(&map_id.to_ne_bytes());
    let mut d = data.to_vec();
    d.resize(width, 0);
    key.extend_from_slice(&d);
    key
}

/// Every key to insert (the value of each entry is one byte, 1).
pub fn entries(maps: &[ValueMap]) -> MapEntries {
    let mut out = MapEntries::default();
    for (id, m) in maps.iter().enumerate() {
        let id = id as u32;
        match m {
            ValueMap::IntSet(set) => {
                for v in set {
                    let mut key = Vec::with_capacity(16);
                    key.extend_from_slice(&id.to_ne_bytes());
                    key.extend_from_slice(&0u32.to_ne_bytes());
                    key.extend_from_slice(&v.to_ne_bytes());
                    out.entries.push(("int_set".into(), key));
                }
            }
            ValueMap::Strings { bucket, keys } => {
                for k in keys {
                    let mut key = id.to_ne_bytes().to_vec();
                    key.extend_from_slice(k);
                    out.entries.push((format!("str_eq_{bucket}"), key));
                }
            }
            ValueMap::Lpm { kind: LpmKind::Prefix, entries } => {
                for e in entries {
                    out.entries.push((
                        "str_prefix".into(),
                        lpm_key(id, e.prefix_bits, &e.data, PREFIX_LEN),
                    ));
                }
            }
            ValueMap::Lpm { kind: LpmKind::Postfix, entries } => {
                for e in entries {
                    out.entries.push((
                        "str_postfix".into(),
                        lpm_key(id, e.prefix_bits, &e.data, POSTFIX_LEN),
                    ));
                }
            }
            ValueMap::Lpm { kind: LpmKind::Ipv4, entries } => {
                for e in entries {
                    out.entries.push(("addr4".into(), lpm_key(id, e.prefix_bits, &e.data, 4)));
                }
            }
            ValueMap::Lpm { kind: LpmKind::Ipv6, entries } => {
                for e in entries {
                    out.entries.push(("addr6".into(), lpm_key(id, e.prefix_bits, &e.data, 16)));
                }
            }
        }
    }
    out
}

/// Binary filter operators (encoding.rs) the kernel tests by the binary's number: In, NotIn.
pub fn binary_by_number(op: u32) -> bool {
    op == 1 || op == 2
}

/// `BINARY_IDS_MAX` in bpf/lib/common.h.
const BINARY_IDS_MAX: usize = 4096;

/// The numbers of the paths matchBinaries In/NotIn filters name, kept in the lifecycle
/// sensor's `binary_ids` map (path zero-padded to BIN_MAX bytes -> number), which the
/// exec program looks each new executable up in. A path keeps its number while the agent
/// runs (unloading a policy leaves it: at most [`BINARY_IDS_MAX`] paths over the agent's
/// life), so a number a process entry holds never changes meaning.
pub struct BinaryIds {
    ids: MapHandle,
    /// `binary_ids_gen[0]`, incremented after paths are added: process entries resolved
    /// before look their path up again (bpf/lib/common.h resolve_binary_id).
    generation: MapHandle,
    known: Mutex<HashMap<Vec<u8>, u32>>,
}

impl BinaryIds {
    pub fn new(ids: MapHandle, generation: MapHandle) -> Self {
        BinaryIds { ids, generation, known: Mutex::new(HashMap::new()) }
    }

    /// The maps, for the policy objects to share by fd.
    pub fn ids_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.ids.as_fd()
    }

    pub fn generation_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.generation.as_fd()
    }

    /// The int_set keys of the hook's In/NotIn binary filters: (value map id, number) for
    /// every path of each filter's value maps. Paths not numbered yet are added to
    /// `binary_ids` first, then the generation is incremented, all before the hook is
    /// attached.
    pub fn entries(&self, hook: &CompiledHook) -> Result<Vec<(String, Vec<u8>)>, String> {
        let map_ids: BTreeSet<u32> = hook
            .selectors
            .iter()
            .flat_map(|s| &s.binaries)
            .filter(|f| binary_by_number(f.op))
            .flat_map(|f| f.map_ids.iter().copied())
            .collect();
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let mut added = false;
        let mut out = Vec::new();
        for map_id in map_ids {
            for path in filter_paths(hook, map_id)? {
                if path.len() >= BINARY_PATH_MAX {
                    return Err(format!("matchBinaries path of {} bytes: at most {} are compared", path.len(), BINARY_PATH_MAX - 1));
                }
                let number = match known.get(path) {
                    Some(&n) => n,
                    None => {
                        if known.len() >= BINARY_IDS_MAX {
                            return Err(format!("more than {BINARY_IDS_MAX} distinct matchBinaries paths since the agent started"));
                        }
                        let n = known.len() as u32 + 1; // 0 stands for "no number"
                        let mut padded = path.to_vec();
                        padded.resize(BINARY_PATH_MAX, 0);
                        self.ids
                            .update(&padded, &n.to_ne_bytes(), MapFlags::ANY)
                            .map_err(|e| format!("numbering matchBinaries path {:?}: {e}", String::from_utf8_lossy(path)))?;
                        known.insert(path.to_vec(), n);
                        added = true;
                        n
                    }
                };
                let mut int_key = Vec::with_capacity(16);
                int_key.extend_from_slice(&map_id.to_ne_bytes());
                int_key.extend_from_slice(&0u32.to_ne_bytes());
                int_key.extend_from_slice(&u64::from(number).to_ne_bytes());
                out.push(("int_set".to_string(), int_key));
            }
        }
        if added {
            let zero = 0u32.to_ne_bytes();
            let current = self
                .generation
                .lookup(&zero, MapFlags::ANY)
                .map_err(|e| format!("reading binary_ids_gen: {e}"))?
                .and_then(|v| v.get(..4).and_then(|b| b.try_into().ok()))
                .map_or(0, u32::from_ne_bytes);
            self.generation
                .update(&zero, &current.wrapping_add(1).max(1).to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| format!("writing binary_ids_gen: {e}"))?;
        }
        Ok(out)
    }

    /// The numbers of a binary filter's paths, once [`BinaryIds::entries`] has numbered
    /// them (`None` for a path without a number).
    pub fn numbers(&self, hook: &CompiledHook, filter: &BinaryFilter) -> Option<Vec<u32>> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let mut numbers = Vec::new();
        for &map_id in &filter.map_ids {
            for path in filter_paths(hook, map_id).ok()? {
                numbers.push(*known.get(path)?);
            }
        }
        Some(numbers)
    }
}

/// The paths of a matchBinaries value map (its keys without their zero padding).
fn filter_paths(hook: &CompiledHook, map_id: u32) -> Result<impl Iterator<Item = &[u8]>, String> {
    let Some(ValueMap::Strings { keys, .. }) = hook.maps.get(map_id as usize) else {
        return Err(format!("matchBinaries value map {map_id} is not a string set"));
    };
    Ok(keys.iter().map(|key| &key[..key.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use tetra_crds::compile::LpmEntry;

    #[test]
    fn keys_carry_the_map_id_first() {
        let maps = vec![
            ValueMap::Strings { bucket: 32, keys: BTreeSet::from([{
                let mut k = b"/etc/passwd".to_vec();
                k.resize(32, 0);
                k
            }]) },
            ValueMap::Lpm {
                kind: LpmKind::Postfix,
                entries: BTreeSet::from([LpmEntry { prefix_bits: 16, data: b"hs".to_vec() }]),
            },
            ValueMap::IntSet(BTreeSet::from([7u64])),
            ValueMap::Lpm {
                kind: LpmKind::Ipv4,
                entries: BTreeSet::from([LpmEntry { prefix_bits: 8, data: vec![127, 0, 0, 0] }]),
            },
        ];
        let e = entries(&maps);
        assert_eq!(e.count("str_eq_32"), 1);
        assert_eq!(e.entries[0].1.len(), 36);
        assert_eq!(&e.entries[0].1[..4], &0u32.to_ne_bytes());
        let (name, key) = &e.entries[1];
        assert_eq!(name, "str_postfix");
        assert_eq!(key.len(), 8 + POSTFIX_LEN);
        assert_eq!(&key[..4], &48u32.to_ne_bytes(), "32 bits of map id + 16 of data");
        assert_eq!(&key[4..8], &1u32.to_ne_bytes());
        assert_eq!(&key[8..10], b"hs");
        assert_eq!(e.entries[2].1[8..].to_vec(), 7u64.to_ne_bytes().to_vec());
        let (name, key) = &e.entries[3];
        assert_eq!(name, "addr4");
        assert_eq!(key[..], [&40u32.to_ne_bytes()[..], &3u32.to_ne_bytes(), &[127, 0, 0, 0]].concat());
    }
}
