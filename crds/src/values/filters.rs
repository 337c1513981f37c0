//! Argument filter semantics: which operators apply to which argument types, how many
//! values they take, and how values become inline numbers or map contents.

use super::arch::syscall_number;
use super::limits::*;
use super::maps::{string_bucket, LpmEntry, LpmKind, ValueMap, MAX_INT_SET_ENTRIES};
use super::*;
use crate::types::{ArgOperator, ArgType, ListType, TracingPolicySpec};
use std::collections::BTreeSet;

/// What kind of values an operator takes on a given argument type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpClass {
    /// Exact strings, hashed into length buckets.
    StringEq { max_values: Option<usize> },
    /// String prefixes in an LPM trie.
    Prefix { max_values: Option<usize> },
    /// String suffixes (reversed) in an LPM trie.
    Postfix { max_values: Option<usize> },
    /// Inline integers (Equal/NotEqual/GT/LT/Mask on integers).
    Ints,
    /// Integers, ranges and lists in a hash set (InMap/NotInMap).
    IntSet,
    /// Ports and port ranges in a hash set.
    Ports,
    /// IP protocols in a hash set.
    Protocol,
    /// Address families in a hash set.
    Family,
    /// TCP states in a hash set.
    State,
    /// Addresses/CIDRs in IPv4 and IPv6 LPM tries.
    Addr,
    /// Privileged port operators: no values.
    NoValues,
}

/// The feature name when `op` is valid Tetragon but not implemented here.
pub fn unsupported_feature(op: ArgOperator) -> Option<String> {
    use ArgOperator::*;
    matches!(
        op,
        CapabilitiesGained
            | InRange
            | NotInRange
            | SubString
            | SubStringIgnCase
            | CelExpr
            | FileType
            | NotFileType
    )
    .then(|| format!("{} operator", op.name()))
}

fn type_error(op: ArgOperator, ty: ArgType, allowed: &str) -> String {
    format!(
        "{}, but {} does not apply to {} {} argument (allowed: {allowed})",
        op.name(),
        op.name(),
        crate::error::article(&ty.name()),
        ty.name()
    )
}

/// Classifies `op` on an argument of type `ty`, or explains why it does not apply.
pub fn classify(op: ArgOperator, ty: ArgType) -> Result<OpClass, String> {
    use ArgOperator::*;
    use ArgType::*;
    let file_limit = ty.is_file().then_some(MAX_FILE_VALUES);
    let numeric = ty.is_integer() || ty == Auto;
    const STRINGS: &str = "fd, file, path, dentry, string, char_buf, filename, linux_binprm, data_loc, net_device, sockaddr_un";
    const INTS: &str = "integer types";
    match op {
        Equal | NotEqual if ty.is_stringy() => Ok(OpClass::StringEq { max_values: file_limit }),
        Equal | NotEqual if numeric => Ok(OpClass::Ints),
        Equal | NotEqual if ty.is_socket() => Err(format!("{}, but {} {} argument cannot be compared with {}; use SAddr, DAddr, SPort, DPort, Protocol, Family or State", op.name(), crate::error::article(&ty.name()), ty.name(), op.name())),
        Equal | NotEqual => Err(type_error(op, ty, &format!("{STRINGS} and {INTS}"))),
        Prefix | NotPrefix if ty.is_stringy() => Ok(OpClass::Prefix { max_values: file_limit }),
        Postfix | NotPostfix if ty.is_stringy() => Ok(OpClass::Postfix { max_values: file_limit }),
        Prefix | NotPrefix | Postfix | NotPostfix => Err(type_error(op, ty, STRINGS)),
        GreaterThan | LessThan | Gt | Lt | Mask if numeric => Ok(OpClass::Ints),
        InMap | NotInMap if numeric => Ok(OpClass::IntSet),
        GreaterThan | LessThan | Gt | Lt | Mask | InMap | NotInMap => Err(type_error(op, ty, INTS)),
        SPort | NotSPort if matches!(ty, Sock | Skb | Socket | Sockaddr) => Ok(OpClass::Ports),
        SPortPriv | NotSportPriv if matches!(ty, Sock | Skb | Socket | Sockaddr) => Ok(OpClass::NoValues),
        SPort | NotSPort | SPortPriv | NotSportPriv => Err(type_error(op, ty, "sock, skb, socket, sockaddr")),
        DPort | NotDPort if matches!(ty, Sock | Skb | Socket) => Ok(OpClass::Ports),
        DPortPriv | NotDPortPriv if matches!(ty, Sock | Skb | Socket) => Ok(OpClass::NoValues),
        Protocol if matches!(ty, Sock | Skb | Socket) => Ok(OpClass::Protocol),
        State if matches!(ty, Sock | Skb | Socket) => Ok(OpClass::State),
        DAddr | NotDAddr if matches!(ty, Sock | Skb | Socket) => Ok(OpClass::Addr),
        DPort | NotDPort | DPortPriv | NotDPortPriv | Protocol | State | DAddr | NotDAddr => Err(type_error(op, ty, "sock, skb, socket")),
        Family if ty.is_socket() => Ok(OpClass::Family),
        Family => Err(type_error(op, ty, "sock, skb, socket, sockaddr, sockaddr_un")),
        SAddr | NotSAddr if matches!(ty, Sock | Skb | Socket | Sockaddr) => Ok(OpClass::Addr),
        SAddr | NotSAddr => Err(type_error(op, ty, "sock, skb, socket, sockaddr")),
        CapabilitiesGained | InRange | NotInRange | SubString | SubStringIgnCase | CelExpr | FileType | NotFileType => Err(format!("{} is not supported", op.name())),
    }
}

/// Values lowered for one filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Lowered {
    /// Inline 64-bit values.
    Ints(Vec<u64>),
    /// Map contents; the compiler assigns their ids.
    Maps(Vec<ValueMap>),
    /// No values.
    None,
}

type Problems = Vec<(Option<usize>, String)>;

fn count_check(n: usize, min: usize, max: Option<usize>, problems: &mut Problems) {
    if n < min {
        problems.push((
            None,
            format!("{n} values, but this operator needs at least {min}"),
        ));
    }
    if let Some(max) = max.filter(|m| n > *m) {
        problems.push((None, format!("{n} values, but this operator takes at most {max} here; consider InMap or NotInMap")));
    }
}

/// Parses values into a set, expanding ranges; `list:` references are skipped when
/// `skip_lists` (the caller expands them).
fn int_set(
    values: &[String],
    skip_lists: bool,
    parse: impl Fn(&str) -> Result<(u64, u64), String>,
    problems: &mut Problems,
) -> BTreeSet<u64> {
    let mut set = BTreeSet::new();
    for (j, v) in values
        .iter()
        .enumerate()
        .filter(|(_, v)| !(skip_lists && v.starts_with("list:")))
    {
        match parse(v) {
            Ok((lo, hi))
                if (hi - lo).saturating_add(set.len() as u64) >= MAX_INT_SET_ENTRIES as u64 =>
            {
                problems.push((
                    Some(j),
                    format!("{v:?} expands past {MAX_INT_SET_ENTRIES} map entries"),
                ));
            }
            Ok((lo, hi)) => set.extend(lo..=hi),
            Err(m) => problems.push((Some(j), m)),
        }
    }
    set
}

/// Parses and lowers the values of a filter of class `class` on a `ty` argument.
pub fn lower_values(
    spec: &TracingPolicySpec,
    class: OpClass,
    ty: ArgType,
    values: &[String],
) -> Result<Lowered, Problems> {
    let mut problems = Problems::new();
    let lowered = match class {
        OpClass::NoValues => {
            if !values.is_empty() {
                problems.push((
                    None,
                    format!("{} values, but this operator takes none", values.len()),
                ));
            }
            Lowered::None
        }
        OpClass::Ints => {
            count_check(values.len(), 1, Some(MAX_NUMERIC_VALUES), &mut problems);
            let (lo, hi) = int_range(ty);
            let mut out = Vec::new();
            for (j, v) in values.iter().enumerate() {
                match parse_int_in(v, lo, hi) {
                    Ok(n) => out.push(n as i64 as u64),
                    Err(m) => problems.push((Some(j), format!("{m} (type {})", ty.name()))),
                }
            }
            Lowered::Ints(out)
        }
        OpClass::StringEq { max_values } => {
            count_check(values.len(), 1, max_values, &mut problems);
            let mut maps: Vec<ValueMap> = Vec::new();
            for (j, v) in values.iter().enumerate() {
                let Some(bucket) = string_bucket(v.len()) else {
                    problems.push((
                        Some(j),
                        format!(
                            "{} bytes, but exact strings are at most {MAX_STRING_LEN} bytes",
                            v.len()
                        ),
                    ));
                    continue;
                };
                let mut key = v.as_bytes().to_vec();
                key.resize(bucket as usize, 0);
                match maps
                    .iter_mut()
                    .find(|m| matches!(m, ValueMap::Strings { bucket: b, .. } if *b == bucket))
                {
                    Some(ValueMap::Strings { keys, .. }) => {
                        keys.insert(key);
                    }
                    _ => maps.push(ValueMap::Strings {
                        bucket,
                        keys: BTreeSet::from([key]),
                    }),
                }
            }
            maps.sort_by_key(|m| match m {
                ValueMap::Strings { bucket, .. } => *bucket,
                _ => 0,
            });
            Lowered::Maps(maps)
        }
        OpClass::Prefix { max_values } | OpClass::Postfix { max_values } => {
            count_check(values.len(), 1, max_values, &mut problems);
            let (kind, max) = match class {
                OpClass::Prefix { .. } => (LpmKind::Prefix, MAX_PREFIX_LEN),
                _ => (LpmKind::Postfix, MAX_POSTFIX_LEN),
            };
            let mut entries = BTreeSet::new();
            for (j, v) in values.iter().enumerate() {
                if v.is_empty() || v.len() > max {
                    problems.push((
                        Some(j),
                        format!(
                            "{} bytes, but a {} is 1..={max} bytes",
                            v.len(),
                            if kind == LpmKind::Prefix {
                                "prefix"
                            } else {
                                "postfix"
                            }
                        ),
                    ));
                    continue;
                }
                let mut data = v.as_bytes().to_vec();
                if kind == LpmKind::Postfix {
                    data.reverse();
                }
                entries.insert(LpmEntry {
                    prefix_bits: (data.len() * 8) as u32,
                    data,
                });
            }
            Lowered::Maps(vec![ValueMap::Lpm { kind, entries }])
        }
        OpClass::IntSet => {
            count_check(values.len(), 1, None, &mut problems);
            let (lo, hi) = int_range(ty);
            let one = |p: &str| parse_int_in(p, lo.max(0), hi).map(|n| n as u64);
            let plain = |v: &str| -> Result<(u64, u64), String> {
                match v.split_once(':') {
                    Some((a, b)) => {
                        let (a, b) = (one(a)?, one(b)?);
                        if a > b {
                            return Err(format!("{v:?}: range start is greater than its end"));
                        }
                        Ok((a, b))
                    }
                    None => one(v).map(|n| (n, n)),
                }
            };
            // `list:NAME` expands to the list's entries (syscall numbers for syscall lists).
            let mut from_list: Vec<Vec<u64>> = Vec::new();
            for (j, v) in values.iter().enumerate() {
                let Some(name) = v.strip_prefix("list:") else {
                    continue;
                };
                let Some(list) = spec.lists.iter().flatten().find(|l| l.name == name) else {
                    problems.push((
                        Some(j),
                        format!("{v:?}, but spec.lists has no list named {name:?}"),
                    ));
                    continue;
                };
                let mut numbers = Vec::new();
                for entry in list.values.iter().flatten() {
                    let nr = if list.ty == Some(ListType::Syscalls) {
                        syscall_number(entry)
                    } else {
                        one(entry)
                    };
                    match nr {
                        Ok(n) => numbers.push(n),
                        Err(m) if m.starts_with("unsupported: ") => problems.push((Some(j), m)),
                        Err(m) => problems.push((Some(j), format!("{v}: {m}"))),
                    }
                }
                from_list.push(numbers);
            }
            let mut set = int_set(values, true, plain, &mut problems);
            set.extend(from_list.into_iter().flatten());
            Lowered::Maps(vec![ValueMap::IntSet(set)])
        }
        OpClass::Ports | OpClass::Protocol | OpClass::Family | OpClass::State => {
            count_check(values.len(), 1, None, &mut problems);
            let parse = match class {
                OpClass::Ports => parse_port,
                OpClass::Protocol => parse_protocol,
                OpClass::Family => parse_family,
                _ => parse_tcp_state,
            };
            Lowered::Maps(vec![ValueMap::IntSet(int_set(
                values,
                false,
                parse,
                &mut problems,
            ))])
        }
        OpClass::Addr => {
            count_check(values.len(), 1, None, &mut problems);
            let (mut v4, mut v6) = (BTreeSet::new(), BTreeSet::new());
            for (j, v) in values.iter().enumerate() {
                match parse_cidr(v) {
                    Ok((std::net::IpAddr::V4(a), len)) => {
                        v4.insert(LpmEntry {
                            prefix_bits: len,
                            data: a.octets().to_vec(),
                        });
                    }
                    Ok((std::net::IpAddr::V6(a), len)) => {
                        v6.insert(LpmEntry {
                            prefix_bits: len,
                            data: a.octets().to_vec(),
                        });
                    }
                    Err(m) => problems.push((Some(j), m)),
                }
            }
            Lowered::Maps(vec![
                ValueMap::Lpm {
                    kind: LpmKind::Ipv4,
                    entries: v4,
                },
                ValueMap::Lpm {
                    kind: LpmKind::Ipv6,
                    entries: v6,
                },
            ])
        }
    };
    if problems.is_empty() {
        Ok(lowered)
    } else {
        Err(problems)
    }
}
