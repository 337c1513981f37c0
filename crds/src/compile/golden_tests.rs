//! Golden vectors: exact selector blob bytes per operator and per action.

use super::encoding::*;
use crate::values::maps::{LpmEntry, LpmKind, ValueMap};
use crate::check_policy_yaml;
use std::collections::BTreeSet;

/// Compiles a one-hook kprobe policy with the given args and one selector.
fn hook(args: &str, selector: &str) -> super::CompiledHook {
    let text = format!(
        "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: golden\nspec:\n  kprobes:\n  - call: golden_fn\n    syscall: false\n    args: {args}\n    selectors:\n    - {selector}\n"
    );
    let mut p = check_policy_yaml(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    assert_eq!(p.hooks.len(), 1);
    p.hooks.remove(0)
}

fn le(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// A one-selector blob whose sections are empty except section `which` (0 pids .. 7
/// return_actions, 8 namespace_changes, 9 capability_changes) holding the given entries
/// (each entry's exact words).
fn blob(which: usize, entries: &[&[u32]]) -> Vec<u8> {
    let mut sel = Vec::new();
    for s in 0..10 {
        let body: Vec<u32> = if s == which {
            std::iter::once(entries.len() as u32)
                .chain(entries.iter().flat_map(|e| e.iter().copied()))
                .collect()
        } else {
            vec![0]
        };
        sel.push(body.len() as u32 * 4);
        sel.extend(body);
    }
    let mut words = vec![BLOB_VERSION, 1, (sel.len() as u32 + 1) * 4];
    words.extend(sel);
    le(&words)
}

const ARGS: usize = 4;
const ACTIONS: usize = 5;

#[test]
fn empty_selector_frame_is_exact() {
    let h = hook(
        "[{index: 0, type: int}]",
        "matchPIDs: [{operator: In, values: [1]}]",
    );
    #[rustfmt::skip]
    let expected = le(&[
        1, 1, 100,          // version, one selector of 100 bytes
        20, 1, 1, 0, 1, 1,  // pids: 20 bytes, 1 entry: In, no flags, 1 pid: 1
        4, 0, 4, 0, 4, 0,   // namespaces, capabilities, binaries: empty
        4, 0, 4, 0, 4, 0, 4, 0, // args, actions, return args, return actions: empty
        4, 0, 4, 0,         // namespace changes, capability changes: empty
    ]);
    assert_eq!(h.selector_blob, expected);
}

fn arg_case(ty: &str, op: &str, values: &str) -> super::CompiledHook {
    hook(
        &format!("[{{index: 0, type: {ty}}}]"),
        &format!("matchArgs: [{{index: 0, operator: {op}, values: {values}}}]"),
    )
}

#[test]
fn numeric_operators_inline_values() {
    // (operator, op code, values, expected u64s)
    let cases: [(&str, u32, &str, &[u64]); 7] = [
        ("Equal", 1, "['5', '0x10']", &[5, 16]),
        ("NotEqual", 2, "['-1']", &[u64::MAX]),
        ("GT", 9, "['100']", &[100]),
        ("GreaterThan", 9, "['100']", &[100]),
        ("LT", 10, "['010']", &[8]),
        ("LessThan", 10, "['7']", &[7]),
        ("Mask", 11, "['0x2']", &[2]),
    ];
    for (op, code, values, expected) in cases {
        let h = arg_case("int", op, values);
        let mut entry = vec![0, code, 1, 1, expected.len() as u32];
        entry.extend(expected.iter().flat_map(|v| [*v as u32, (*v >> 32) as u32]));
        assert_eq!(h.selector_blob, blob(ARGS, &[&entry]), "{op}");
        assert!(h.maps.is_empty());
    }
}

#[test]
fn string_equal_goes_to_length_buckets() {
    for (op, code) in [("Equal", 1), ("NotEqual", 2)] {
        let long = "/".to_string() + &"a".repeat(40);
        let h = arg_case("file", op, &format!("['/etc/passwd', '{long}']"));
        // file = type 26; two buckets (32 and 64) -> two map ids
        assert_eq!(
            h.selector_blob,
            blob(ARGS, &[&[0, code, 26, 2, 2, 0, 1]]),
            "{op}"
        );
        let mut k32 = b"/etc/passwd".to_vec();
        k32.resize(32, 0);
        let mut k64 = long.as_bytes().to_vec();
        k64.resize(64, 0);
        assert_eq!(
            h.maps,
            vec![
                ValueMap::Strings {
                    bucket: 32,
                    keys: BTreeSet::from([k32])
                },
                ValueMap::Strings {
                    bucket: 64,
                    keys: BTreeSet::from([k64])
                }
            ]
        );
    }
}

#[test]
fn prefix_and_postfix_go_to_lpm_tries() {
    for (op, code, kind, data) in [
        ("Prefix", 3, LpmKind::Prefix, b"/etc/".to_vec()),
        ("NotPrefix", 4, LpmKind::Prefix, b"/etc/".to_vec()),
        ("Postfix", 5, LpmKind::Postfix, b"/cte/".to_vec()),
        ("NotPostfix", 6, LpmKind::Postfix, b"/cte/".to_vec()),
    ] {
        let h = arg_case("string", op, "['/etc/']");
        assert_eq!(
            h.selector_blob,
            blob(ARGS, &[&[0, code, 24, 2, 1, 0]]),
            "{op}"
        );
        assert_eq!(
            h.maps,
            vec![ValueMap::Lpm {
                kind,
                entries: BTreeSet::from([LpmEntry {
                    prefix_bits: 40,
                    data
                }])
            }],
            "{op}"
        );
    }
}

#[test]
fn set_operators_fill_int_sets() {
    let cases: [(&str, &str, u32, &str, &[u64]); 10] = [
        ("uint64", "InMap", 27, "['1', '3:5']", &[1, 3, 4, 5]),
        ("uint64", "NotInMap", 28, "['7']", &[7]),
        (
            "sock",
            "SPort",
            12,
            "['80', '8080:8081']",
            &[80, 8080, 8081],
        ),
        ("sock", "NotSPort", 13, "['22']", &[22]),
        ("sock", "DPort", 16, "['443']", &[443]),
        ("sock", "NotDPort", 17, "['53']", &[53]),
        ("sock", "Protocol", 24, "['IPPROTO_TCP', '17']", &[6, 17]),
        ("sock", "Family", 25, "['AF_INET', 'AF_INET6']", &[2, 10]),
        ("sock", "State", 26, "['TCP_SYN_RECV']", &[3]),
        ("skb", "Family", 25, "['AF_INET']", &[2]),
    ];
    for (ty, op, code, values, expected) in cases {
        let h = arg_case(ty, op, values);
        let type_code = super::type_code(serde_json::from_value(serde_json::json!(ty)).unwrap());
        assert_eq!(
            h.selector_blob,
            blob(ARGS, &[&[0, code, type_code, 2, 1, 0]]),
            "{op}"
        );
        assert_eq!(
            h.maps,
            vec![ValueMap::IntSet(expected.iter().copied().collect())],
            "{op}"
        );
    }
}

#[test]
fn privileged_port_operators_take_no_values() {
    for (op, code) in [
        ("SPortPriv", 14),
        ("NotSportPriv", 15),
        ("DPortPriv", 18),
        ("NotDPortPriv", 19),
    ] {
        let h = arg_case("sock", op, "[]");
        assert_eq!(h.selector_blob, blob(ARGS, &[&[0, code, 20, 0, 0]]), "{op}");
    }
}

#[test]
fn address_operators_fill_v4_and_v6_tries() {
    for (op, code) in [
        ("SAddr", 20),
        ("NotSAddr", 21),
        ("DAddr", 22),
        ("NotDAddr", 23),
    ] {
        let h = arg_case("sock", op, "['10.0.0.0/8', '::1']");
        assert_eq!(
            h.selector_blob,
            blob(ARGS, &[&[0, code, 20, 2, 2, 0, 1]]),
            "{op}"
        );
        let v4 = LpmEntry {
            prefix_bits: 8,
            data: vec![10, 0, 0, 0],
        };
        let mut one = vec![0u8; 16];
        one[15] = 1;
        let v6 = LpmEntry {
            prefix_bits: 128,
            data: one,
        };
        assert_eq!(
            h.maps,
            vec![
                ValueMap::Lpm {
                    kind: LpmKind::Ipv4,
                    entries: BTreeSet::from([v4])
                },
                ValueMap::Lpm {
                    kind: LpmKind::Ipv6,
                    entries: BTreeSet::from([v6])
                }
            ]
        );
    }
}

#[test]
fn arg_slot_is_the_position_of_the_declared_index() {
    let h = hook(
        "[{index: 3, type: int}, {index: 1, type: fd}]",
        "matchArgs: [{index: 1, operator: Prefix, values: ['/tmp/']}]",
    );
    assert_eq!(h.selector_blob, blob(ARGS, &[&[1, 3, 25, 2, 1, 0]]));
}

fn action_case(yaml: &str) -> Vec<u8> {
    hook(
        "[{index: 0, type: int}, {index: 1, type: file}, {index: 2, type: sock}]",
        &format!("matchActions: [{yaml}]"),
    )
    .selector_blob
}

#[test]
fn every_supported_action_has_a_golden_encoding() {
    // (action yaml, code, params as u64)
    let cases: [(&str, u32, &[u64]); 12] = [
        ("{action: Post}", 1, &[0, 0]),
        (
            "{action: Post, rateLimit: '5', rateLimitScope: global}",
            1,
            &[5000, 2],
        ),
        ("{action: FollowFD, argFd: 0, argName: 1}", 2, &[0, 1]),
        ("{action: Sigkill}", 3, &[]),
        ("{action: UnfollowFD, argFd: 0}", 4, &[0, 0]),
        ("{action: Override, argError: -1}", 5, &[u64::MAX]),
        ("{action: CopyFD, argFd: 0, argName: 1}", 6, &[0, 1]),
        ("{action: GetUrl, argUrl: 'http://x'}", 7, &[0]),
        ("{action: DnsLookup, argFqdn: 'ebpf.io'}", 8, &[0]),
        ("{action: NoPost}", 9, &[]),
        ("{action: Signal, argSig: 19}", 10, &[19]),
        ("{action: TrackSock, argSock: 2}", 11, &[2]),
    ];
    for (yaml, code, params) in cases {
        let mut entry = vec![code, params.len() as u32];
        entry.extend(params.iter().flat_map(|v| [*v as u32, (*v >> 32) as u32]));
        assert_eq!(action_case(yaml), blob(ACTIONS, &[&entry]), "{yaml}");
    }
    assert_eq!(
        action_case("{action: UntrackSock, argSock: 2}"),
        blob(ACTIONS, &[&[12, 1, 2, 0]])
    );
}

#[test]
fn url_and_fqdn_go_to_the_string_table() {
    let h = hook("[{index: 0, type: int}]", "matchActions: [{action: GetUrl, argUrl: 'http://a'}, {action: DnsLookup, argFqdn: 'b.example'}]");
    assert_eq!(
        h.strings,
        vec!["http://a".to_string(), "b.example".to_string()]
    );
    assert_eq!(
        h.selector_blob,
        blob(ACTIONS, &[&[7, 1, 0, 0], &[8, 1, 1, 0]])
    );
}

#[test]
fn namespaces_capabilities_binaries_encode_exactly() {
    let h = hook(
        "[{index: 0, type: int}]",
        "matchNamespaces: [{namespace: Pid, operator: NotIn, values: [host_ns, '4026531836']}]",
    );
    assert_eq!(h.selector_blob, blob(1, &[&[3, 2, 2, HOST_NS, 4026531836]]));
    let h = hook("[{index: 0, type: int}]", "matchCapabilities: [{type: Permitted, operator: In, isNamespaceCapability: true, values: [CAP_CHOWN, CAP_SYS_ADMIN]}]");
    assert_eq!(h.selector_blob, blob(2, &[&[2, 1, 1, 1 | (1 << 21), 0]]));
    let h = hook(
        "[{index: 0, type: int}]",
        "matchBinaries: [{operator: In, followChildren: true, values: [/bin/sh]}]",
    );
    assert_eq!(h.selector_blob, blob(3, &[&[1, 1, 1, 0]]));
    let h = hook(
        "[{index: 0, type: int}]",
        "matchPIDs: [{operator: NotIn, isNamespacePID: true, followForks: true, values: [1, 2]}]",
    );
    assert_eq!(h.selector_blob, blob(0, &[&[2, 3, 2, 1, 2]]));
    let h = hook("[{index: 0, type: int}]", "matchNamespaceChanges: [{operator: NotIn, values: [Mnt, user]}]");
    assert_eq!(h.selector_blob, blob(8, &[&[2, (1 << 2) | (1 << 9)]]));
    let h = hook("[{index: 0, type: int}]", "matchCapabilityChanges: [{type: Effective, operator: In, values: [CAP_SYS_PTRACE]}]");
    assert_eq!(h.selector_blob, blob(9, &[&[0, 1, 0, 1 << 19, 0]]));
    assert_eq!(decode(&h.selector_blob).unwrap()[0].capability_changes[0].mask, 1 << 19);
}

#[test]
fn decode_rejects_corrupt_blobs() {
    let good = action_case("{action: Sigkill}");
    assert!(decode(&good).is_ok());
    assert!(matches!(
        decode(&good[..good.len() - 1]),
        Err(DecodeError::Truncated(_))
    ));
    let mut bad = good.clone();
    bad[0] = 9;
    assert_eq!(decode(&bad), Err(DecodeError::Version(9)));
    let mut trailing = good;
    trailing.extend([0, 0, 0, 0]);
    assert_eq!(decode(&trailing), Err(DecodeError::Trailing(4)));
}
