//! Every validation rule reports the field path, the offending value and what is allowed.

use tetra_crds::check_policy_yaml;

fn doc(kind: &str, spec: &str) -> String {
    format!("apiVersion: cilium.io/v1alpha1\nkind: {kind}\nmetadata:\n  name: t\nspec:\n{spec}")
}

fn errors_of(text: &str) -> Vec<String> {
    match check_policy_yaml(text) {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn errors(spec: &str) -> Vec<String> {
    errors_of(&doc("TracingPolicy", spec))
}

/// A kprobe on `fn_x` with args int (0) and file (1) and the given selector body.
fn selector(body: &str) -> Vec<String> {
    errors(&format!("  kprobes:\n  - call: fn_x\n    syscall: false\n    args: [{{index: 0, type: int}}, {{index: 1, type: file}}]\n    selectors:\n    - {body}\n"))
}

fn assert_has(errors: &[String], expected: &str) {
    assert!(
        errors.iter().any(|e| e == expected),
        "expected {expected:?} among {errors:#?}"
    );
}

fn assert_contains(errors: &[String], needle: &str) {
    assert!(
        errors.iter().any(|e| e.contains(needle)),
        "expected an error containing {needle:?} among {errors:#?}"
    );
}

#[test]
fn yaml_syntax_errors_carry_line_and_column() {
    let e = errors_of("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nspec:\n  kprobes: [\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("line 5 column 1: "), "{e:?}");
    let e = errors_of("a: b\n c: d\n");
    assert!(e[0].starts_with("line 2 column 3: "), "{e:?}");
}

#[test]
fn unknown_fields_suggest_the_closest_name() {
    let e = errors("  kprobes:\n  - call: fn_x\n    syscall: false\n    selectrs: []\n");
    assert_has(
        &e,
        "spec.kprobes[0].selectrs: unknown field `selectrs`, did you mean `selectors`?",
    );
    assert_has(
        &errors("  kprobe: []\n"),
        "spec.kprobe: unknown field `kprobe`, did you mean `kprobes`?",
    );
    assert_has(
        &errors_of(
            "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: t}\nspce: {}\n",
        ),
        "spce: unknown field `spce`, did you mean `spec`?",
    );
    let e = selector("matchArgs: [{index: 0, operator: Equals, values: ['1']}]");
    assert_contains(&e, "spec.kprobes[0].selectors[0].matchArgs[0].operator: \"Equals\" is not allowed, did you mean `Equal`?");
    let e = errors_of(&doc("TracingPolicys", "  kprobes: []\n"));
    assert_has(&e, "kind: \"TracingPolicys\", did you mean `TracingPolicy`?, expected TracingPolicy or TracingPolicyNamespaced");
}

#[test]
fn the_documented_index_message() {
    let e = selector("matchArgs: [{index: 3, operator: Equal, values: ['1']}]");
    assert_has(
        &e,
        "spec.kprobes[0].selectors[0].matchArgs[0].index: 3, but the call has 2 args (0-1)",
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let e = selector("matchArgs: [{index: 3, operator: Equal, values: ['1']}, {index: 0, operator: Prefix, values: [x]}]\n      matchActions: [{action: Signal}]");
    assert_eq!(e.len(), 3, "{e:#?}");
    // Shape errors (unknown field) and semantic errors come together too.
    let e =
        selector("matchArgs: [{index: 3, operator: Equal, values: ['1']}]\n      matchPIDz: []");
    assert_has(&e, "spec.kprobes[0].selectors[0].matchPIDz: unknown field `matchPIDz`, did you mean `matchPIDs`?");
    assert_has(
        &e,
        "spec.kprobes[0].selectors[0].matchArgs[0].index: 3, but the call has 2 args (0-1)",
    );
    assert_eq!(e.len(), 2, "{e:#?}");
}

#[test]
fn selector_limits() {
    let sels = "    - matchPIDs: [{operator: In, values: [1]}]\n".repeat(6);
    let e = errors(&format!(
        "  kprobes:\n  - call: fn_x\n    syscall: false\n    selectors:\n{sels}"
    ));
    assert_has(
        &e,
        "spec.kprobes[0].selectors: 6 selectors, but at most 5 are allowed per hook",
    );
    let e = selector("matchArgs: [{index: 0, operator: Equal, values: ['1','2','3','4','5']}]");
    assert_has(&e, "spec.kprobes[0].selectors[0].matchArgs[0].values: 5 values, but this operator takes at most 4 here; consider InMap or NotInMap");
    let e = selector(
        "matchActions: [{action: Post}, {action: Post}, {action: Post}, {action: NoPost}]",
    );
    assert_has(&e, "spec.kprobes[0].selectors[0].matchActions: 4 actions, but at most 3 are allowed per selector");
    let e = selector("matchBinaries: [{operator: In, values: [/a]}, {operator: In, values: [/b]}]");
    assert_has(
        &e,
        "spec.kprobes[0].selectors[0].matchBinaries: 2 items, but at most 1 are allowed",
    );
    let e = selector("matchPIDs: [{operator: In, values: [1,2,3,4,5]}]");
    assert_has(&e, "spec.kprobes[0].selectors[0].matchPIDs[0].values: 5 values, but a matchPIDs filter takes 1..=4");
    let e = selector("matchArgs: [{index: 1, operator: Equal, values: [a,b,c,d,e,f,g,h,i]}]");
    assert_has(&e, "spec.kprobes[0].selectors[0].matchArgs[0].values: 9 values, but this operator takes at most 8 here; consider InMap or NotInMap");
    let six = "{index: 0, operator: Equal, values: ['1']},".repeat(6);
    assert_has(&selector(&format!("matchArgs: [{six}]")), "spec.kprobes[0].selectors[0].matchArgs: 6 matchArgs+matchData filters, but at most 5 are allowed per selector");
    let e = selector(
        "matchNamespaces: [{namespace: Pid, operator: In, values: [host_ns, '1', '2', '3', '4']}]",
    );
    assert_has(&e, "spec.kprobes[0].selectors[0].matchNamespaces[0].values: 5 values, but a matchNamespaces filter takes 1..=4");
}

#[test]
fn argument_limits() {
    let e = errors("  kprobes:\n  - call: fn_x\n    syscall: false\n    args: [{index: 5, type: int}, {index: 0, type: char_buf, sizeArgIndex: 16}, {index: 1, type: auto}]\n");
    assert_has(
        &e,
        "spec.kprobes[0].args[0].index: 5, but a call argument index must be 0..=4",
    );
    assert_has(
        &e,
        "spec.kprobes[0].args[1].sizeArgIndex: 16, but sizeArgIndex must be 1..=15",
    );
    assert_contains(
        &e,
        "spec.kprobes[0].args[2].type: auto, but call arguments need an explicit type",
    );
    let six = "{index: 0, type: int},".repeat(6);
    assert_has(
        &errors(&format!(
            "  kprobes:\n  - call: fn_x\n    syscall: false\n    args: [{six}]\n"
        )),
        "spec.kprobes[0].args: 6 args, but at most 5 are allowed",
    );
}

#[test]
fn message_and_tags() {
    let e = errors("  kprobes:\n  - call: fn_x\n    syscall: false\n    message: x\n");
    assert_has(
        &e,
        "spec.kprobes[0].message: 1 characters, but a message must have 2..=256 characters",
    );
    let long = "m".repeat(257);
    assert_has(
        &errors(&format!(
            "  lsmhooks:\n  - hook: file_open\n    message: {long}\n"
        )),
        "spec.lsmhooks[0].message: 257 characters, but a message must have 2..=256 characters",
    );
    let tags = (0..17)
        .map(|i| format!("t{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    assert_has(
        &errors(&format!(
            "  kprobes:\n  - call: fn_x\n    syscall: false\n    tags: [{tags}]\n"
        )),
        "spec.kprobes[0].tags: 17 items, but at most 16 are allowed",
    );
}

#[test]
fn string_lengths() {
    let p = "p".repeat(257);
    assert_has(&selector(&format!("matchArgs: [{{index: 1, operator: Prefix, values: [{p}]}}]")), "spec.kprobes[0].selectors[0].matchArgs[0].values[0]: 257 bytes, but a prefix is 1..=256 bytes");
    let p = "p".repeat(128);
    assert_has(&selector(&format!("matchArgs: [{{index: 1, operator: Postfix, values: [{p}]}}]")), "spec.kprobes[0].selectors[0].matchArgs[0].values[0]: 128 bytes, but a postfix is 1..=127 bytes");
    let p = "/".repeat(256);
    assert_has(&selector(&format!("matchBinaries: [{{operator: In, values: ['{p}']}}]")), "spec.kprobes[0].selectors[0].matchBinaries[0].values[0]: 256 bytes, but a binary path must be 1..=255 bytes");
}

#[test]
fn operator_type_rules() {
    assert_has(&selector("matchArgs: [{index: 0, operator: Prefix, values: [/a]}]"), "spec.kprobes[0].selectors[0].matchArgs[0].operator: Prefix, but Prefix does not apply to an int argument (allowed: fd, file, path, dentry, string, char_buf, filename, linux_binprm, data_loc, net_device, sockaddr_un)");
    assert_contains(&selector("matchArgs: [{index: 1, operator: SAddr, values: [10.0.0.1]}]"), "matchArgs[0].operator: SAddr, but SAddr does not apply to a file argument (allowed: sock, skb, socket, sockaddr)");
    assert_contains(
        &selector("matchArgs: [{index: 1, operator: Mask, values: ['1']}]"),
        "Mask does not apply to a file argument",
    );
    let sock = |body: &str| {
        errors(&format!("  kprobes:\n  - call: fn_x\n    syscall: false\n    args: [{{index: 0, type: sock}}, {{index: 1, type: sockaddr}}]\n    selectors:\n    - {body}\n"))
    };
    assert_contains(&sock("matchArgs: [{index: 0, operator: Equal, values: ['1']}]"), "a sock argument cannot be compared with Equal; use SAddr, DAddr, SPort, DPort, Protocol, Family or State");
    assert_contains(
        &sock("matchArgs: [{index: 1, operator: DPort, values: ['1']}]"),
        "DPort does not apply to a sockaddr argument",
    );
    assert_has(&sock("matchArgs: [{index: 0, operator: DPort, values: ['70000']}]"), "spec.kprobes[0].selectors[0].matchArgs[0].values[0]: \"70000\" is not a port (0..=65535) or a port range lo:hi");
    assert_contains(
        &sock("matchArgs: [{index: 0, operator: DAddr, values: ['10.0.0.0/33']}]"),
        "matchArgs[0].values[0]: \"10.0.0.0/33\" is not an IPv4/IPv6 address or CIDR",
    );
    assert_contains(
        &sock("matchArgs: [{index: 0, operator: SPortPriv, values: ['1']}]"),
        "matchArgs[0].values: 1 values, but this operator takes none",
    );
    assert_contains(
        &sock("matchArgs: [{index: 0, operator: Protocol, values: [IPPROTO_TPC]}]"),
        "is not a protocol",
    );
    assert_has(&selector("matchArgs: [{index: 0, operator: Equal, values: ['2147483648']}]"), "spec.kprobes[0].selectors[0].matchArgs[0].values[0]: \"2147483648\" is out of range -2147483648..=2147483647 (type int)");
}

#[test]
fn change_selectors() {
    assert_has(
        &selector("matchNamespaceChanges: [{operator: In, values: [Mnt, Nets]}]"),
        "spec.kprobes[0].selectors[0].matchNamespaceChanges[0].values[1]: \"Nets\", but a namespace is one of Uts, Ipc, Mnt, Pid, PidForChildren, Net, Time, TimeForChildren, Cgroup, User",
    );
    assert_has(
        &selector("matchNamespaceChanges: [{operator: In, values: []}]"),
        "spec.kprobes[0].selectors[0].matchNamespaceChanges[0].values: empty, but a matchNamespaceChanges filter needs at least one namespace",
    );
    assert_contains(&selector("matchCapabilityChanges: [{operator: In, values: [CAP_NOPE]}]"), "matchCapabilityChanges[0].values[0]");
    assert!(selector("matchCapabilityChanges: [{type: Effective, operator: NotIn, values: [CAP_SYS_ADMIN]}]").is_empty());
}

#[test]
fn return_rules() {
    assert_has(
        &errors("  kprobes:\n  - call: fn_x\n    syscall: false\n    return: true\n"),
        "spec.kprobes[0].returnArg: missing, but `return: true` requires a returnArg",
    );
    assert_has(
        &errors("  kprobes:\n  - call: fn_x\n    syscall: false\n    returnArgAction: Post\n"),
        "spec.kprobes[0].returnArgAction: \"Post\", but only TrackSock or UntrackSock are allowed",
    );
    assert_contains(
        &selector("matchReturnArgs: [{index: 0, operator: Equal, values: ['0']}]"),
        "matchReturnArgs: set, but the hook has no return probe",
    );
}

#[test]
fn workload_selector_rules() {
    assert_has(&errors("  hostSelector:\n    matchLabels: {a: b}\n"), "spec.hostSelector: has matchLabels/matchExpressions, but a hostSelector must be null or {} (all host workloads)");
    assert!(errors("  hostSelector: {}\n").is_empty());
    let e = errors_of(&doc("TracingPolicyNamespaced", "  hostSelector: {}\n"));
    assert_has(&e, "spec.hostSelector: set, but a TracingPolicyNamespaced must not have a hostSelector (it only applies to pods of its namespace)");
    assert_has(&errors("  containerSelector:\n    matchLabels: {app: x}\n"), "spec.containerSelector.matchLabels.app: key \"app\", but containerSelector only supports the key \"name\"");
    assert_contains(&errors("  podSelector:\n    matchExpressions: [{key: a, operator: In}]\n"), "spec.podSelector.matchExpressions[0].values: empty, but operator In needs at least one value");
}

#[test]
fn action_rules() {
    assert_has(&selector("matchActions: [{action: Sigkill, rateLimit: '5'}]"), "spec.kprobes[0].selectors[0].matchActions[0].rateLimit: set on action Sigkill, but rateLimit is only valid with action Post");
    assert_contains(
        &selector("matchActions: [{action: Post, rateLimit: 'often'}]"),
        "matchActions[0].rateLimit: \"often\" is not a rate limit",
    );
    assert_has(&selector("matchActions: [{action: Signal}]"), "spec.kprobes[0].selectors[0].matchActions[0].argSig: missing, but action Signal needs the signal number");
    assert_has(
        &selector("matchActions: [{action: FollowFD, argFd: 0, argName: 3}]"),
        "spec.kprobes[0].selectors[0].matchActions[0].argName: 3, but the call has 2 args (0-1)",
    );
    assert_has(&selector("matchActions: [{action: FollowFD, argFd: 1, argName: 1}]"), "spec.kprobes[0].selectors[0].matchActions[0].argFd: 1 refers to a file argument, but it must be an integer or fd");
    assert_contains(
        &selector("matchActions: [{action: GetUrl}]"),
        "argUrl: missing, but action GetUrl needs the URL to fetch",
    );
    assert_contains(
        &selector("matchActions: [{action: TrackSock, argSock: 0}]"),
        "argSock: 0 refers to an int argument, but it must be a sock argument",
    );
    let e = errors("  tracepoints:\n  - subsystem: syscalls\n    event: sys_enter_kill\n    args: [{index: 5, type: int}]\n    selectors:\n    - matchActions: [{action: Override, argError: -1}]\n");
    assert_contains(&e, "spec.tracepoints[0].selectors[0].matchActions[0].action: Override on a tracepoint, but a tracepoint cannot change a return value");
}

#[test]
fn cross_references() {
    assert_has(&errors("  kprobes:\n  - call: write\n"), "spec.kprobes[0].call: \"write\", but a syscall is written sys_<name> (e.g. sys_openat), optionally with an arch prefix such as __x64_ or an ABI such as i386/");
    assert_has(
        &errors("  kprobes:\n  - call: 'list:nope'\n"),
        "spec.kprobes[0].call: \"list:nope\", but spec.lists has no list named \"nope\"",
    );
    assert_has(&selector("macros: [nope]"), "spec.kprobes[0].selectors[0].macros[0]: \"nope\", but spec.selectorsMacros has no such macro");
    assert_has(&errors("  options: [{name: policy-mod, value: enforce}]\n"), "spec.options[0].name: unknown option \"policy-mod\", did you mean `policy-mode`? (known: disable-kprobe-multi, disable-uprobe-multi, override-method, policy-mode, sleepable-preload-size)");
    assert_has(&selector("matchCapabilities: [{operator: In, values: [CAP_SYS_ADMN]}]"), "spec.kprobes[0].selectors[0].matchCapabilities[0].values[0]: \"CAP_SYS_ADMN\" is not a capability name, did you mean `CAP_SYS_ADMIN`?");
    assert_contains(
        &selector("matchNamespaces: [{namespace: Pid, operator: In, values: [hostns]}]"),
        "matchNamespaces[0].values[0]: \"hostns\", but a namespace value is an inode number",
    );
    assert_contains(&errors("  uprobes:\n  - path: /bin/sh\n    symbols: [a]\n    offsets: [1]\n"), "spec.uprobes[0].offsets: symbols and offsets are all set, but a uprobe takes at most one of symbols, offsets or addrs");
}

#[test]
fn macros_are_expanded_into_selectors() {
    let spec = "  selectorsMacros:\n    etc:\n      matchArgs: [{index: 1, operator: Prefix, values: [/etc/]}]\n  kprobes:\n  - call: fn_x\n    syscall: false\n    args: [{index: 0, type: int}, {index: 1, type: file}]\n    selectors:\n    - macros: [etc]\n";
    let p = check_policy_yaml(&doc("TracingPolicy", spec)).expect("valid");
    assert_eq!(p.hooks[0].selectors[0].args.len(), 1);
}

#[test]
fn unsupported_features_are_precise() {
    assert_eq!(
        selector("matchArgs: [{index: 0, operator: CelExpr, values: ['arg0 > 1']}]"),
        vec!["unsupported: CelExpr operator at spec.kprobes[0].selectors[0].matchArgs[0].operator"]
    );
    assert_eq!(selector("matchWorkloads: {podSelector: {}}"), vec!["unsupported: matchWorkloads (per-selector workload filter) at spec.kprobes[0].selectors[0].matchWorkloads"]);
    assert_eq!(errors("  kprobes:\n  - call: fn_x\n    syscall: false\n    args: [{index: 0, type: file, resolve: f_path.dentry}]\n"), vec!["unsupported: resolve (BTF field walk) at spec.kprobes[0].args[0].resolve"]);
}

#[test]
fn huge_ranges_are_rejected_not_expanded() {
    let e = errors("  kprobes:\n  - call: fn_x\n    syscall: false\n    args: [{index: 0, type: uint64}]\n    selectors:\n    - matchArgs: [{index: 0, operator: InMap, values: ['1', '0:18446744073709551615']}]\n");
    assert_has(&e, "spec.kprobes[0].selectors[0].matchArgs[0].values[1]: \"0:18446744073709551615\" expands past 65536 map entries");
}

#[test]
fn document_level_problems() {
    assert_eq!(
        errors_of(""),
        vec!["(document): the document must be a mapping with apiVersion, kind, metadata and spec"]
    );
    let e = errors_of(
        "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\n---\nkind: TracingPolicy\n",
    );
    assert_eq!(
        e,
        vec!["line 3 column 1: a second YAML document starts here, but a file holds one policy"]
    );
    let e = errors_of("apiVersion: cilium.io/v1alpha1\napiVersion: cilium.io/v1alpha1\n");
    assert!(
        e[0].starts_with("line ") && e[0].contains("duplicate"),
        "{e:?}"
    );
    let e = errors("  tracepoints:\n  - subsystem: a\n    event: b\n    args: [{index: 4, type: int}]\n    selectors:\n    - matchArgs: [{index: 1, operator: Equal, values: ['1']}]\n");
    assert_has(
        &e,
        "spec.tracepoints[0].selectors[0].matchArgs[0].index: 1, but the tracepoint has 1 arg (0)",
    );
}

#[test]
fn errors_inside_macros_point_at_the_macro() {
    let spec = "  selectorsMacros:\n    bad:\n      matchArgs: [{index: 7, operator: Equal, values: ['1']}]\n  kprobes:\n  - call: fn_x\n    syscall: false\n    args: [{index: 0, type: int}]\n    selectors:\n    - matchArgs: [{index: 0, operator: Equal, values: ['1']}]\n      macros: [bad]\n    - macros: [bad]\n";
    let e = errors(spec);
    assert_eq!(
        e,
        vec![
            "spec.selectorsMacros.bad.matchArgs[0].index: 7, but the call has 1 arg (0)"
                .to_string()
        ]
    );
}

#[test]
fn a_missing_required_field_does_not_hide_other_errors() {
    let e = selector(
        "matchArgs: [{index: 3, operator: Equal, values: [\"1\"]}]\n      matchActions: [{actoin: Sigkill}]",
    );
    assert_contains(&e, "matchActions[0].actoin: unknown field `actoin`, did you mean `action`?");
    assert_contains(&e, "matchActions[0].action: missing");
    assert_contains(&e, "spec.kprobes[0].selectors[0].matchArgs[0].index: 3");
}

#[test]
fn usdt_probes_name_their_binary_probe_and_user_space_operands() {
    let e = errors("  usdts:\n  - path: /bin/x\n    provider: \"\"\n    name: p\n    args: [{index: 12, type: int}, {index: 1, type: file}]\n    selectors:\n    - matchActions: [{action: Override, argError: -1}, {action: FollowFD, argFd: 0, argName: 1}]\n");
    assert_has(&e, "spec.usdts[0].provider: empty, but a USDT probe needs the provider of the probe");
    assert_has(&e, "spec.usdts[0].args[0].index: 12, but a USDT probe argument index must be 0..=11");
    assert_has(&e, "spec.usdts[0].args[1].type: file, but a USDT argument is a user-space value: an integer type, size_t, string or char_buf");
    assert_contains(&e, "spec.usdts[0].selectors[0].matchActions[0].action: Override on a USDT probe, but a probe point is not a function");
    assert_has(&e, "spec.usdts[0].selectors[0].matchActions[1].action: FollowFD on a USDT probe, but fd tracking needs a kernel hook");
    let ok = "  usdts:\n  - path: /bin/x\n    provider: prov\n    name: p\n    args: [{index: 11, type: int64}, {index: 0, type: string}]\n    selectors:\n    - matchArgs: [{index: 11, operator: GT, values: [\"3\"]}]\n";
    assert_eq!(errors(ok), Vec::<String>::new());
}

#[test]
fn stack_traces_only_where_the_event_has_them() {
    let tp = errors("  tracepoints:\n  - subsystem: syscalls\n    event: sys_enter_openat\n    selectors:\n    - matchActions: [{action: Post, kernelStackTrace: true}]\n");
    assert_has(&tp, "spec.tracepoints[0].selectors[0].matchActions[0].kernelStackTrace: set on a tracepoint, but only kprobes and fentries (process_kprobe events) carry stack traces");
    let kp = selector("matchActions: [{action: Post, kernelStackTrace: true, userStackTrace: true}]");
    assert_eq!(kp, Vec::<String>::new());
    let other = selector("matchActions: [{action: Sigkill, userStackTrace: true}]");
    assert_contains(&other, "userStackTrace");
}
