//! Tetragon's example policies that use the kernel-object argument types (bpf_attr,
//! perf_event, bpf_map, net_device, module, load_info, nop, dentry, user_namespace) and
//! matchCapabilities isNamespaceCapability, loaded unmodified from the conformance corpus
//! into the agent on Debian's kernel (`TETRA_VM_KERNEL`) (tier 3), plus a kiocb hook (Tetragon's tty.yaml
//! also reads an iov_iter, which the agent does not read yet). The workload
//! (tests/src/bin/vm_argtypes.rs) makes each hooked call with a known object and the test
//! asserts the exported arguments field by field.
use std::time::Duration;

use serde_json::{json, Value};
use tetra_tests::require_vm;
use tetra_tests::vm::{self, cargo_build_binary, Vm};

/// The corpus policies this suite loads, with the name and hook count each must reach (0:
/// refused by this kernel, see the test).
const CORPUS: [(&str, &str, usize); 10] = [
    ("bpf.yaml", "bpf", 3),
    ("dev_hard_start_xmit.yaml", "dev-hard-start-xmit", 1),
    ("host-changes/monitor-kernel-modules.yaml", "monitor-kernel-modules", 4),
    ("host-changes/monitor-signed-kernel-modules.yaml", "monitor-signed-kernel-modules", 0),
    ("filename_monitoring.yaml", "file-monitoring", 3),
    ("process-exec/process-exec-elf-begin.yaml", "process-exec-elf-begin", 1),
    ("sandbox/linux-namespaces/kill_unprivileged_user_namespace.yaml", "kill-unprivileged-user-namespace", 1),
    ("security_inode_follow_link.yaml", "follow-symlink", 1),
    ("process-credentials/creds-capability-usage.yaml", "creds-capability-checks", 1),
    ("fd_install_caps.yaml", "fd-install", 1),
];

const KIOCB: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-kiocb
spec:
  kprobes:
  - call: tty_write
    syscall: false
    args:
    - index: 0
      type: kiocb
    selectors:
    - matchBinaries:
      - operator: In
        values: ["/bin/vm_argtypes"]
"#;

/// A load_info argument where this kernel has one as a symbol: module_sig_check runs first
/// in load_module, before the image is parsed (no name, no module yet, not verified).
const LOAD_INFO: &str = r#"apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: vm-load-info
spec:
  kprobes:
  - call: module_sig_check
    syscall: false
    args:
    - index: 0
      type: load_info
    - index: 1
      type: int
"#;

const SCRIPT: &str = r#"
mkdir -p /srv /tmp/argtypes
echo link-target > /srv/target
ln -s /srv/target /srv/argtypes-link
ln -s /srv/target /tmp/argtypes/link
echo userns-content > /tmp/argtypes/userns-file
echo mapped-content > /etc/argtypes-mmap
/bin/tetrad --export-filename /tmp/events.json --enable-process-cred=false \
    --enable-process-ns=false --tracing-policy-dir /policies > /tmp/tetrad.log 2>&1 &
agent=$!
tetra_wait 120 grep -q "tetrad ready" /tmp/tetrad.log
/bin/vm_argtypes bpf > /tmp/bpf.out 2>&1; echo "rc=$?" >> /tmp/bpf.out
/bin/vm_argtypes userns /tmp/argtypes/userns-file > /tmp/userns.out 2>&1; echo "rc=$?" >> /tmp/userns.out
/bin/vm_argtypes nosysadmin-userns > /tmp/nosysadmin.out 2>&1; echo "rc=$?" >> /tmp/nosysadmin.out
/bin/vm_argtypes udp > /tmp/udp.out 2>&1; echo "rc=$?" >> /tmp/udp.out
/bin/vm_argtypes tty > /tmp/tty.out 2>&1; echo "rc=$?" >> /tmp/tty.out
/bin/vm_argtypes mmap /etc/argtypes-mmap > /tmp/mmap.out 2>&1; echo "rc=$?" >> /tmp/mmap.out
/bin/vm_argtypes init-module > /tmp/module.out 2>&1; echo "rc=$?" >> /tmp/module.out
cat /srv/argtypes-link /tmp/argtypes/link > /tmp/link.out 2>&1; echo "rc=$?" >> /tmp/link.out
sleep 2
kill -INT $agent
wait $agent
tetra_section agentlog cat /tmp/tetrad.log
for s in bpf userns nosysadmin udp tty mmap module link; do tetra_section $s cat /tmp/$s.out; done
tetra_section events cat /tmp/events.json
"#;

fn kprobes<'a>(events: &'a [Value], policy: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    events.iter().filter_map(|e| e.get("process_kprobe")).filter(move |b| b["policy_name"] == policy)
}

/// The number a workload printed as `key=N`.
fn printed<T: std::str::FromStr>(output: &str, key: &str) -> T {
    let prefix = format!("{key}=");
    output
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in:\n{output}"))
}

/// The perf event type as Tetragon names it (its table ends with PERF_TYPE_MAX, 6).
fn perf_type(n: u32) -> String {
    match n {
        6 => "PERF_TYPE_MAX".into(),
        n => n.to_string(),
    }
}

#[test]
fn kernel_object_argument_types_on_debian_kernel() {
    require_vm!();
    let Some(dir) = tetra_corpus::dir_for("kernel_object_argument_types_on_debian_kernel", tetra_corpus::Part::Policies)
    else {
        return;
    };
    let tetrad = cargo_build_binary("tetra-agent", "tetrad").expect("build tetrad");
    let workload = cargo_build_binary("tetra-tests", "vm_argtypes").expect("build the workload");
    let mut vm = Vm::new()
        .binary(&tetrad, "/bin/tetrad")
        .binary(&workload, "/bin/vm_argtypes")
        .file_bytes(KIOCB, "/policies/kiocb.yaml", 0o644)
        .file_bytes(LOAD_INFO, "/policies/load-info.yaml", 0o644);
    for (i, (file, _, _)) in CORPUS.iter().enumerate() {
        vm = vm.file(dir.join(file), &format!("/policies/{i:02}.yaml"));
    }
    let out = vm
        .memory_mb(1536)
        .script(SCRIPT)
        .timeout(Duration::from_secs(420))
        .run()
        .unwrap_or_else(|e| panic!("VM run failed: {e}"));
    out.ensure_success().unwrap_or_else(|e| panic!("{e}"));
    let log = out.require_section("agentlog").unwrap();
    // Every policy loads with all its hooks (bpf.yaml's security_bpf_map_create is 6.9+,
    // ignored by callNotFound), but one: find_module_sections, which reads a load_info, is
    // not a symbol of this kernel (inlined), and the policy does not ignore that.
    for (file, name, hooks) in CORPUS.iter().chain(&[("kiocb", "vm-kiocb", 1), ("load-info", "vm-load-info", 1)]) {
        if *hooks == 0 {
            assert!(
                log.contains(&format!("tracing policy \"{name}\" not loaded: spec.kprobes[2] find_module_sections: symbol find_module_sections not found in /proc/kallsyms")),
                "{file} ({name}) not refused for find_module_sections; agent log:\n{log}"
            );
            continue;
        }
        assert!(
            log.contains(&format!("tracing policy \"{name}\" enabled: {hooks} hook(s) attached")),
            "{file} ({name}) not loaded with {hooks} hooks; agent log:\n{log}"
        );
    }
    assert!(log.contains("lost=0"), "agent log:\n{log}");
    let section = |name: &str| out.require_section(name).unwrap();
    let events = out.json_section("events").unwrap_or_else(|e| panic!("{e}"));
    let from_workload = |b: &&Value| b["process"]["binary"] == "/bin/vm_argtypes";

    // bpf.yaml: the program, the map and the three perf events of the workload, field by field.
    let bpf = section("bpf");
    let kprobe_type: u32 = printed(&bpf, "kprobe_type");
    assert!(bpf.trim_end().ends_with("rc=0"), "{bpf}");
    let hits: Vec<&Value> = kprobes(&events, "bpf").filter(from_workload).collect();
    let args_of = |f: &str| -> Vec<Value> {
        hits.iter().filter(|b| b["function_name"] == f).map(|b| b["args"].clone()).collect()
    };
    assert_eq!(
        args_of("bpf_check"),
        [json!([{"bpf_attr_arg": {"ProgType": "BPF_PROG_TYPE_SOCKET_FILTER", "InsnCnt": 2, "ProgName": "tetra_probe"}}])]
    );
    // Linux 6.9 renamed security_bpf_map_alloc to security_bpf_map_create (the map is still
    // argument 0); bpf.yaml hooks both and ignores the one the kernel lacks.
    let map_hook = if vm::kernel_at_least(6, 9) { "security_bpf_map_create" } else { "security_bpf_map_alloc" };
    assert_eq!(
        args_of(map_hook),
        [json!([{"bpf_map_arg": {"MapType": "BPF_MAP_TYPE_HASH", "KeySize": 4, "ValueSize": 8, "MaxEntries": 16, "MapName": "tetra_map"}}])]
    );
    // The hook sees the kernel's copy of the event's attr. Since Linux 6.5 (commit
    // 0d6d062ca27e) a task-clock event asked for as PERF_TYPE_SOFTWARE is forwarded to the
    // task_clock PMU by overwriting attr.type with that PMU's type (the user's type is kept
    // in orig_type): 7, the second dynamic type (cpu_clock, then task_clock, are registered
    // first at perf init), and a PMU without a sysfs device. Tetragon reports attr.type too.
    let task_clock_type = if vm::kernel_at_least(6, 5) {
        let pmus: String = printed(&bpf, "sysfs_pmus");
        assert!(
            pmus.split(',').all(|p| !p.ends_with(":6") && !p.ends_with(":7")),
            "types 6 and 7 must be the clock PMUs, which have no sysfs device: {pmus}"
        );
        "7"
    } else {
        "PERF_TYPE_SOFTWARE"
    };
    assert_eq!(args_of("security_perf_event_alloc"), [
        json!([{"perf_event_arg": {"Type": task_clock_type, "Config": "1"}}]),
        json!([{"perf_event_arg": {"Type": "PERF_TYPE_SOFTWARE", "Config": "2"}}]),
        json!([{"perf_event_arg": {"KprobeFunc": "vfs_read", "Type": perf_type(kprobe_type)}}]),
    ]);

    // creds-capability-usage.yaml: cap_capable in the workload's child, the only process
    // outside the host pid namespace, against its new user namespace (level 1, created by
    // root, so owned by uid and gid 0).
    let userns = section("userns");
    let inum: u64 = printed(&userns, "userns_inum");
    assert!(userns.contains("read=userns-content") && userns.contains("child status=0"), "{userns}");
    let caps: Vec<&Value> = kprobes(&events, "creds-capability-checks").collect();
    assert!(!caps.is_empty() && caps.iter().all(from_workload), "{caps:#?}");
    let sys_admin = caps
        .iter()
        .find(|b| b["args"][1]["capability_arg"]["name"] == "CAP_SYS_ADMIN")
        .unwrap_or_else(|| panic!("no CAP_SYS_ADMIN check: {caps:#?}"));
    assert_eq!(sys_admin["function_name"], "cap_capable");
    assert_eq!(sys_admin["args"], json!([
        {"user_ns_arg": {"level": 1, "uid": 0, "gid": 0, "ns": {"inum": inum}}},
        {"capability_arg": {"value": 21, "name": "CAP_SYS_ADMIN"}},
    ]));
    assert_eq!(sys_admin["return"], json!({"int_arg": 0}));

    // fd_install_caps.yaml (isNamespaceCapability): only the task in a non-host user
    // namespace is reported; the host's root processes have CAP_CHOWN too and are not.
    let installs: Vec<&Value> = kprobes(&events, "fd-install").collect();
    assert!(installs.iter().all(from_workload), "fd_install outside the user namespace: {installs:#?}");
    assert!(
        installs.iter().any(|b| b["args"][1]["file_arg"]["path"] == "/tmp/argtypes/userns-file"),
        "{installs:#?}"
    );

    // kill_unprivileged_user_namespace.yaml: create_user_ns without CAP_SYS_ADMIN is
    // killed; the nop argument is not shown. Root's user namespace above was not.
    let nosysadmin = section("nosysadmin");
    assert!(!nosysadmin.contains("survived") && nosysadmin.contains("rc=137"), "{nosysadmin}");
    let kills: Vec<&Value> = kprobes(&events, "kill-unprivileged-user-namespace").collect();
    assert_eq!(kills.len(), 1, "{kills:#?}");
    assert_eq!(kills[0]["function_name"], "create_user_ns");
    assert_eq!(kills[0]["action"], "KPROBE_ACTION_SIGKILL");
    assert!(kills[0].get("args").is_none(), "no argument shown: {:#}", kills[0]);
    assert_eq!(kills[0]["process"]["arguments"], "nosysadmin-userns");

    // dev_hard_start_xmit.yaml: loopback transmits, matched by the device name.
    assert!(section("udp").contains("udp received tetra-udp"));
    let xmits: Vec<&Value> = kprobes(&events, "dev-hard-start-xmit").collect();
    assert!(xmits.iter().any(from_workload), "no transmit by the workload: {xmits:#?}");
    for x in &xmits {
        assert_eq!(x["args"], json!([{"net_dev_arg": {"name": "lo"}}]), "{x:#}");
    }

    // security_inode_follow_link.yaml: the symlink's dentry, its path within its
    // filesystem (a dentry has no mount): /tmp is a tmpfs of its own.
    assert_eq!(section("link").trim(), "link-target\nlink-target\nrc=0");
    let follows: Vec<Value> = kprobes(&events, "follow-symlink")
        .filter(|b| b["process"]["arguments"] == "/srv/argtypes-link /tmp/argtypes/link")
        .map(|b| b["args"].clone())
        // busybox also follows /proc/self: "/self" in procfs.
        .filter(|a| a[0]["path_arg"]["path"] != "/self")
        .collect();
    assert_eq!(follows, [
        json!([{"path_arg": {"path": "/srv/argtypes-link", "permission": "lrwxrwxrwx"}}]),
        json!([{"path_arg": {"path": "/argtypes/link", "permission": "lrwxrwxrwx"}}]),
    ]);

    // kiocb: the file written through tty_write.
    let ttys: Vec<&Value> = kprobes(&events, "vm-kiocb").collect();
    assert_eq!(ttys.len(), 1, "{ttys:#?}");
    assert_eq!(ttys[0]["args"], json!([{"file_arg": {"path": "/dev/ttyS0", "permission": "crw-------"}}]));

    // filename_monitoring.yaml: security_mmap_file's nop argument (the flags) is not shown.
    let maps: Vec<&Value> = kprobes(&events, "file-monitoring")
        .filter(|b| b["function_name"] == "security_mmap_file" && b["args"][0]["file_arg"]["path"] == "/etc/argtypes-mmap")
        .collect();
    assert_eq!(maps.len(), 1, "{maps:#?}");
    assert_eq!(maps[0]["args"], json!([
        {"file_arg": {"path": "/etc/argtypes-mmap", "permission": "-rw-r--r--"}},
        {"uint_arg": 1},
    ]));
    assert_eq!(maps[0]["process"]["arguments"], "mmap /etc/argtypes-mmap");

    // load_info: the module the workload tried to load, as far as the kernel knew it then.
    assert_eq!(section("module").trim(), "init_module: ENOEXEC\nrc=0");
    let loads: Vec<&Value> = kprobes(&events, "vm-load-info").collect();
    assert_eq!(loads.len(), 1, "{loads:#?}");
    assert_eq!(loads[0]["args"], json!([{"module_arg": {"signature_ok": false}}, {"int_arg": 0}]));
    assert_eq!(loads[0]["process"]["arguments"], "init-module");

    // process-exec-elf-begin.yaml: the executable's file, after the nop credentials; the
    // workload ran seven times.
    let execs: Vec<&Value> = kprobes(&events, "process-exec-elf-begin")
        .filter(|b| b["args"][0]["file_arg"]["path"] == "/bin/vm_argtypes")
        .collect();
    assert_eq!(execs.len(), 7, "{execs:#?}");
    for e in &execs {
        assert_eq!(e["args"].as_array().unwrap().len(), 1, "{e:#}");
    }
}
