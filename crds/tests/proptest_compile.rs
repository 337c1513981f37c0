//! Property tests: the blob encoding round-trips, and parse/validate/compile never panic
//! on generated policies, whose compiled blobs always decode back to their selectors.

use proptest::prelude::*;
use serde_json::{json, Value};
use tetra_crds::check_policy_yaml;
use tetra_crds::compile::encoding::*;

fn arg_values() -> impl Strategy<Value = ArgValues> {
    prop_oneof![
        Just(ArgValues::None),
        prop::collection::vec(any::<u64>(), 0..6).prop_map(ArgValues::Inline),
        prop::collection::vec(any::<u32>(), 0..6).prop_map(ArgValues::Maps),
    ]
}

fn arg_filter() -> impl Strategy<Value = ArgFilter> {
    (any::<u32>(), any::<u32>(), any::<u32>(), arg_values()).prop_map(
        |(slot, op, type_code, values)| ArgFilter {
            slot,
            op,
            type_code,
            values,
        },
    )
}

fn action() -> impl Strategy<Value = ActionConfig> {
    (any::<u32>(), prop::collection::vec(any::<u64>(), 0..4))
        .prop_map(|(code, params)| ActionConfig { code, params })
}

fn selector() -> impl Strategy<Value = SelectorConfig> {
    let v32 = || prop::collection::vec(any::<u32>(), 0..5);
    (
        prop::collection::vec(
            (any::<u32>(), any::<u32>(), v32()).prop_map(|(op, flags, pids)| PidFilter {
                op,
                flags,
                pids,
            }),
            0..3,
        ),
        prop::collection::vec(
            (any::<u32>(), any::<u32>(), v32()).prop_map(|(ns, op, inodes)| NamespaceFilter {
                ns,
                op,
                inodes,
            }),
            0..3,
        ),
        prop::collection::vec(
            (any::<u32>(), any::<u32>(), any::<u32>(), any::<u64>()).prop_map(
                |(set, op, flags, mask)| CapabilityFilter {
                    set,
                    op,
                    flags,
                    mask,
                },
            ),
            0..3,
        ),
        prop::collection::vec(
            (any::<u32>(), any::<u32>(), v32()).prop_map(|(op, flags, map_ids)| BinaryFilter {
                op,
                flags,
                map_ids,
            }),
            0..2,
        ),
        prop::collection::vec(arg_filter(), 0..5),
        prop::collection::vec(action(), 0..3),
        prop::collection::vec(arg_filter(), 0..2),
        prop::collection::vec(action(), 0..3),
    )
        .prop_map(
            |(
                pids,
                namespaces,
                capabilities,
                binaries,
                args,
                actions,
                return_args,
                return_actions,
            )| SelectorConfig {
                pids,
                namespaces,
                capabilities,
                binaries,
                args,
                actions,
                return_args,
                return_actions,
                ..Default::default()
            },
        )
}

const TYPES: &[&str] = &[
    "int", "uint32", "uint64", "size_t", "fd", "file", "path", "string", "char_buf", "sock", "skb",
    "sockaddr", "nop", "auto", "cred",
];
const OPS: &[&str] = &[
    "Equal",
    "NotEqual",
    "Prefix",
    "NotPrefix",
    "Postfix",
    "NotPostfix",
    "GT",
    "LT",
    "GreaterThan",
    "Mask",
    "InMap",
    "NotInMap",
    "SPort",
    "NotDPort",
    "SPortPriv",
    "SAddr",
    "DAddr",
    "NotDAddr",
    "Protocol",
    "Family",
    "State",
    "CelExpr",
    "InRange",
];
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "0x10",
    "010",
    "65535",
    "70000",
    "1:5",
    "5:1",
    "/etc/",
    "/etc/passwd",
    "10.0.0.0/8",
    "::1",
    "AF_INET",
    "IPPROTO_TCP",
    "TCP_LISTEN",
    "",
    "list:x",
    "18446744073709551615",
    "0:18446744073709551615",
    "0:65535",
];
const ACTIONS: &[&str] = &[
    "Post",
    "NoPost",
    "Sigkill",
    "Signal",
    "Override",
    "FollowFD",
    "UnfollowFD",
    "CopyFD",
    "GetUrl",
    "DnsLookup",
    "TrackSock",
    "UntrackSock",
    "Set",
    "NotifyEnforcer",
];

fn pick(items: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    prop::sample::select(items)
}

fn match_arg() -> impl Strategy<Value = Value> {
    (
        0u32..6,
        pick(OPS),
        prop::collection::vec(pick(VALUES), 0..6),
    )
        .prop_map(|(index, op, values)| json!({"index": index, "operator": op, "values": values}))
}

fn match_action() -> impl Strategy<Value = Value> {
    (pick(ACTIONS), 0u32..6, 0u32..6, -5i32..70, prop::option::of(pick(&["5", "1m", "x"]))).prop_map(|(action, fd, name, n, rate)| {
        let mut a = json!({"action": action, "argFd": fd, "argName": name, "argSig": n, "argError": -n, "argSock": fd, "argUrl": "http://x", "argFqdn": "x.io"});
        if let Some(r) = rate {
            a["rateLimit"] = json!(r);
        }
        a
    })
}

fn policy() -> impl Strategy<Value = Value> {
    let args = prop::collection::vec(
        (0u32..6, pick(TYPES)).prop_map(|(i, t)| json!({"index": i, "type": t})),
        0..6,
    );
    let sel = (
        prop::collection::vec(match_arg(), 0..3),
        prop::collection::vec(match_action(), 0..4),
        prop::option::of(prop::collection::vec(0u32..5, 1..6)),
        prop::option::of((
            pick(&["In", "NotIn", "Prefix", "Postfix"]),
            pick(&["/bin/sh", "/usr/", ""]),
        )),
    )
        .prop_map(|(args, actions, pids, bin)| {
            let mut s = json!({"matchArgs": args, "matchActions": actions});
            if let Some(p) = pids {
                s["matchPIDs"] = json!([{"operator": "NotIn", "values": p}]);
            }
            if let Some((op, v)) = bin {
                s["matchBinaries"] = json!([{"operator": op, "values": [v]}]);
            }
            s
        });
    let hook = (
        pick(&["sys_read", "fd_install", "write", "list:x"]),
        any::<bool>(),
        any::<bool>(),
        args,
        prop::collection::vec(sel, 0..7),
    );
    (prop::collection::vec(hook, 1..3), pick(&["kprobes", "lsmhooks", "tracepoints"])).prop_map(|(hooks, field)| {
        let hooks: Vec<Value> = hooks
            .into_iter()
            .map(|(call, syscall, ret, args, selectors)| match field {
                "lsmhooks" => json!({"hook": "file_open", "args": args, "selectors": selectors}),
                "tracepoints" => json!({"subsystem": "syscalls", "event": "sys_enter_kill", "args": args, "selectors": selectors}),
                _ => json!({"call": call, "syscall": syscall, "return": ret, "returnArg": {"index": 0, "type": "int"}, "args": args, "selectors": selectors}),
            })
            .collect();
        json!({"apiVersion": "cilium.io/v1alpha1", "kind": "TracingPolicy", "metadata": {"name": "p"},
               "spec": {field: hooks, "lists": [{"name": "x", "type": "syscalls", "values": ["sys_dup"]}]}})
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn blob_round_trips(sels in prop::collection::vec(selector(), 0..6)) {
        let blob = encode(&sels);
        prop_assert_eq!(blob.len() % 4, 0);
        prop_assert_eq!(decode(&blob), Ok(sels));
    }

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn compile_never_panics_and_blobs_round_trip(doc in policy()) {
        let text = serde_yaml_ng::to_string(&doc).unwrap();
        match check_policy_yaml(&text) {
            Ok(p) => for h in &p.hooks {
                prop_assert_eq!(decode(&h.selector_blob), Ok(h.selectors.clone()));
                let maps = h.maps.len() as u32;
                for s in &h.selectors {
                    for f in s.args.iter().chain(&s.return_args) {
                        if let ArgValues::Maps(ids) = &f.values {
                            prop_assert!(ids.iter().all(|i| *i < maps), "map id out of range");
                        }
                    }
                }
            },
            Err(errors) => for e in errors {
                let line = e.to_string();
                prop_assert!(!line.contains('\n'), "multi-line error {}", line);
                prop_assert!(!line.is_empty());
            },
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,300}") {
        let _ = check_policy_yaml(&text);
    }
}

#[test]
fn generated_policies_are_sometimes_valid() {
    // Guards the generator: if nothing it makes ever compiles, the property above is empty.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = policy();
    let ok = (0..400)
        .filter(|_| {
            let doc = strategy.new_tree(&mut runner).unwrap().current();
            check_policy_yaml(&serde_yaml_ng::to_string(&doc).unwrap()).is_ok()
        })
        .count();
    assert!(ok >= 10, "only {ok}/400 generated policies compiled");
}
