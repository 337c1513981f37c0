//! The contents of a hook's selector value maps (`ValueMap` by id) as BPF map entries,
//! keyed the way bpf/lib/selectors.h looks them up.
use tetra_crds::compile::{LpmKind, ValueMap};

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
