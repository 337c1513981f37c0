//! `--enable-k8s-api` against the fake API server of tetra-tests: the real tetrad (real BPF),
//! real cgroups created on this host under container-runtime names, processes moved into
//! them, and pods / TracingPolicies served by the fake API.
mod common;
mod rpc;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tetra_proto::tetragon::{ListTracingPoliciesRequest, TracingPolicyStatus};
use tetra_tests::fake_kube::FakeKube;

use common::{kind, marker, Agent};

const NODE: &str = "tetra-test-node";

/// A cgroup named as containerd under the kubelet's systemd driver; removed on drop.
struct Cgroup {
    dir: PathBuf,
    top: PathBuf,
}

impl Cgroup {
    fn new(pod_uid: &str, container_id: &str) -> Cgroup {
        let root = tetra_agent::k8s::cgroup::unified_root();
        let top = root.join(format!("kubepods-tetratest{}.slice", &container_id[..8]));
        let uid_ = pod_uid.replace('-', "_");
        let dir = top
            .join(format!("kubepods-besteffort-pod{uid_}.slice"))
            .join(format!("cri-containerd-{container_id}.scope"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Cgroup { dir, top }
    }

    /// Runs `script` with /bin/sh inside this cgroup; returns the shell's pid (`exec` keeps it).
    fn spawn(&self, script: &str) -> std::process::Child {
        let procs = self.dir.join("cgroup.procs");
        Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("echo $$ > {} && {script}", procs.display()))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Leaves only once its processes are gone; children of `top` first.
        let mut dirs = vec![self.dir.clone(), self.dir.parent().unwrap().to_path_buf(), self.top.clone()];
        for _ in 0..50 {
            dirs.retain(|d| std::fs::remove_dir(d).is_err() && d.exists());
            if dirs.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn hex_id(seed: &str) -> String {
    // 64 hex digits, distinct per test and per run.
    let n = std::process::id();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let mut s = String::new();
    for (i, b) in format!("{seed}{n}{nanos}").bytes().cycle().take(64).enumerate() {
        s.push_str(&format!("{:x}", (b as usize + i * 7 + nanos as usize % 13) % 16));
    }
    s
}

fn pod(ns: &str, name: &str, uid: &str, labels: Value, owner: Option<(&str, &str)>, container: (&str, &str)) -> Value {
    let owners: Vec<Value> = owner
        .into_iter()
        .map(|(k, n)| json!({"apiVersion": "apps/v1", "kind": k, "name": n, "uid": "owner-uid", "controller": true}))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": uid, "labels": labels, "ownerReferences": owners},
        "spec": {"nodeName": NODE, "containers": [{"name": container.0, "image": "registry.example/app:1.2"}]},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": container.0, "image": "registry.example/app:1.2",
            "imageID": "registry.example/app@sha256:5aad04835eda9025fe4561ad31be77fd55309af8158ca8663a72f6abb78c2603",
            "containerID": format!("containerd://{}", container.1), "ready": true, "restartCount": 0,
            "state": {"running": {"startedAt": "2026-01-01T10:00:00Z"}}}]}
    })
}

fn node(labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE, "labels": labels}})
}

/// One test at a time: each loads BPF programs and times policy loads, which a concurrent
/// agent's verifier runs on these 2 cores would distort; and each agent would see the
/// other tests' pod cgroups.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn start_agent(fake: &FakeKube, extra: &[&str]) -> (Agent, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = fake.kubeconfig(dir.path());
    let mut args = vec![
        "--enable-k8s-api".to_string(),
        format!("--k8s-kubeconfig-path={}", kubeconfig.display()),
        format!("--node-name={NODE}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let agent = Agent::start(&refs);
    agent.wait_log(&format!("pods of node {NODE}:"));
    (agent, dir)
}

/// The exec event of `binary` by `pid` (a shell that execs keeps its pid).
fn exec_of(agent: &Agent, pid: u32, binary: &str) -> Value {
    agent.wait_for(&format!("exec of {binary} by pid {pid}"), |e| {
        common::is(e, "process_exec", pid) && e["process_exec"]["process"]["binary"] == binary
    })
}

#[test]
#[ignore = "needs root: loads BPF programs and creates cgroups (the README test command runs it)"]
fn exec_in_a_pod_cgroup_carries_pod_container_and_workload() {
    let _serial = serial();
    let fake = FakeKube::start();
    fake.put("nodes", node(json!({"kubernetes.io/hostname": NODE})));
    let id = hex_id("enrich");
    let uid = "5e1f3c2a-0b1d-4e6f-9a8b-7c6d5e4f3a2b";
    fake.put("pods", pod("shop", "web-7d4b9c55f-x2x9z", uid, json!({"app": "web", "tier": "front"}), Some(("ReplicaSet", "web-7d4b9c55f")), ("main", &id)));
    // A pod of another node is not ours: the field selector leaves it out.
    let mut foreign = pod("shop", "elsewhere", "uid-foreign", json!({}), None, ("main", &hex_id("foreign")));
    foreign["spec"]["nodeName"] = json!("another-node");
    fake.put("pods", foreign);
    let cg = Cgroup::new(uid, &id);
    let (mut agent, _dir) = start_agent(&fake, &[]);
    assert!(agent.log_text().contains(&format!("pods of node {NODE}: 1 listed")), "{}", agent.log_text());
    let mut child = cg.spawn("exec /bin/sleep 1");
    let pid = child.id();
    let event = exec_of(&agent, pid, "/bin/sleep");
    // The pod is deleted while its last process runs: that process's exit still names it.
    fake.delete("pods", "shop", "web-7d4b9c55f-x2x9z");
    child.wait().unwrap();
    let process = &event["process_exec"]["process"];
    assert_eq!(process["binary"], "/bin/sleep");
    assert_eq!(
        process["pod"],
        json!({
            "namespace": "shop",
            "name": "web-7d4b9c55f-x2x9z",
            "uid": uid,
            "container": {
                "id": format!("containerd://{id}"),
                "name": "main",
                "image": {
                    "id": "registry.example/app@sha256:5aad04835eda9025fe4561ad31be77fd55309af8158ca8663a72f6abb78c2603",
                    "name": "registry.example/app:1.2"
                },
                "start_time": "2026-01-01T10:00:00Z",
                "pid": pid
            },
            "pod_labels": {"app": "web", "tier": "front"},
            "workload": "web",
            "workload_kind": "Deployment"
        })
    );
    assert_eq!(process["docker"], json!(id[..31]));
    // The shell was exec'd in the test's own cgroup: a host process, no pod.
    assert_eq!(event["process_exec"]["parent"].get("pod"), None, "{event}");
    let exit = agent.wait_for("exit of the sleep", |e| common::is(e, "process_exit", pid));
    assert_eq!(exit["process_exit"]["process"]["pod"], process["pod"], "the exit names the same pod and pid");
    // A host process (this test's) has no pod.
    let mut host = Command::new("/bin/sleep").arg("0.2").spawn().unwrap();
    let host_pid = host.id();
    host.wait().unwrap();
    assert_eq!(exec_of(&agent, host_pid, "/bin/sleep")["process_exec"]["process"].get("pod"), None);
    let list = fake.requests();
    assert!(list.iter().any(|r| r.starts_with("GET /api/v1/pods?") && r.contains("fieldSelector=spec.nodeName%3Dtetra-test-node")), "{list:?}");
    let stats = agent.stop();
    assert_eq!(stats["pod_unenriched"], 0);
}

#[test]
#[ignore = "needs root: loads BPF programs and creates cgroups (the README test command runs it)"]
fn events_before_their_pod_are_held_then_enriched_or_counted() {
    let _serial = serial();
    let fake = FakeKube::start();
    fake.put("nodes", node(json!({})));
    let (late_id, never_id) = (hex_id("late"), hex_id("never"));
    let (late_uid, never_uid) = ("1a2b3c4d-0000-4000-8000-00000000000a", "1a2b3c4d-0000-4000-8000-00000000000b");
    let late = Cgroup::new(late_uid, &late_id);
    let never = Cgroup::new(never_uid, &never_id);
    let (mut agent, _dir) = start_agent(&fake, &["--pod-wait-seconds=3"]);
    let mut child = late.spawn("exec /bin/sleep 1");
    let pid = child.id();
    let mut orphan = never.spawn("exec /bin/sleep 0.5");
    let orphan_pid = orphan.id();
    // The kernel saw it, the pod is unknown: nothing is exported for it yet.
    std::thread::sleep(Duration::from_millis(1000));
    let sleeps = |e: &Value| common::is(e, "process_exec", pid) && e["process_exec"]["process"]["binary"] == "/bin/sleep";
    assert!(!agent.events().iter().any(sleeps), "sent before its pod was known");
    fake.put("pods", pod("batch", "report-29373440-abcde", late_uid, json!({"job": "report"}), Some(("Job", "report-29373440")), ("worker", &late_id)));
    let event = exec_of(&agent, pid, "/bin/sleep");
    let p = &event["process_exec"]["process"]["pod"];
    assert_eq!((p["name"].as_str(), p["workload"].as_str(), p["workload_kind"].as_str()), (Some("report-29373440-abcde"), Some("report"), Some("CronJob")));
    assert_eq!(p["container"]["name"], "worker");
    assert_eq!(p["container"]["pid"], pid, "read while it was held");
    child.wait().unwrap();
    // The container whose pod never comes: sent bare once the wait is over, and counted.
    let bare = exec_of(&agent, orphan_pid, "/bin/sleep");
    assert_eq!(bare["process_exec"]["process"].get("pod"), None);
    orphan.wait().unwrap();
    agent.wait_for("exit of the orphan", |e| common::is(e, "process_exit", orphan_pid));
    let stats = agent.stop();
    assert!(stats["pod_held"] >= 3, "{stats:?}");
    assert!(stats["pod_unenriched"] >= 2, "exec and exit of the orphan: {stats:?}");
}

fn open_policy(kind: &str, name: &str, namespace: Option<&str>, file: &str) -> Value {
    let mut metadata = json!({"name": name});
    if let Some(ns) = namespace {
        metadata["namespace"] = json!(ns);
    }
    json!({
        "apiVersion": "cilium.io/v1alpha1", "kind": kind, "metadata": metadata,
        "spec": {"tracepoints": [{
            "subsystem": "syscalls", "event": "sys_enter_openat",
            "args": [{"index": 6, "type": "string"}],
            "selectors": [{"matchArgs": [{"index": 0, "operator": "Postfix", "values": [file]}]}]
        }]}
    })
}

/// A gRPC client kept for the whole test, so polling costs one call, not a connection.
struct Grpc {
    rt: tokio::runtime::Runtime,
    client: rpc::Client,
}

impl Grpc {
    fn connect(address: &str) -> Grpc {
        let rt = rpc::runtime();
        let client = rt.block_on(rpc::connect(address));
        Grpc { rt, client }
    }

    fn policies(&mut self) -> Vec<TracingPolicyStatus> {
        let request = ListTracingPoliciesRequest::default();
        self.rt.block_on(self.client.list_tracing_policies(request)).unwrap().into_inner().policies
    }

    fn wait_policy(&mut self, what: &str, pred: impl Fn(&[TracingPolicyStatus]) -> bool) -> Vec<TracingPolicyStatus> {
        // Generous: a loaded machine is slow, and how fast is for benchmarks to show.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let list = self.policies();
            if pred(&list) {
                return list;
            }
            assert!(Instant::now() < deadline, "{what}: {list:#?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn state_of(list: &[TracingPolicyStatus], name: &str) -> Option<(i32, String)> {
    list.iter().find(|p| p.name == name).map(|p| (p.state, p.error.clone()))
}

fn opened(agent: &Agent, file: &std::path::Path) -> usize {
    agent
        .events()
        .iter()
        .filter(|e| kind(e).0 == "process_tracepoint" && kind(e).1["args"][0]["string_arg"].as_str() == file.to_str())
        .count()
}

fn cat(file: &std::path::Path) {
    assert!(Command::new("/bin/cat").arg(file).output().unwrap().status.success());
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn policy_objects_load_replace_unload_and_report_errors() {
    use tetra_proto::tetragon::TracingPolicyState as S;
    let _serial = serial();
    let fake = FakeKube::start();
    fake.put("nodes", node(json!({"role": "worker"})));
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join(marker("k8s-a")), dir.path().join(marker("k8s-b")));
    for f in [&a, &b] {
        std::fs::write(f, "x\n").unwrap();
    }
    let run_dir = tempfile::tempdir().unwrap();
    let run_arg = format!("--run-dir={}", run_dir.path().display());
    let (mut agent, _k) = start_agent(&fake, &["--server-address=127.0.0.1:0", &run_arg]);
    let address = rpc::info(run_dir.path(), "server_address");
    let mut grpc = Grpc::connect(&address);
    let a_name = a.file_name().unwrap().to_str().unwrap();
    let b_name = b.file_name().unwrap().to_str().unwrap();

    // Create: loaded.
    fake.put("tracingpolicies", open_policy("TracingPolicy", "opens", None, a_name));
    let list = grpc.wait_policy("created", |l| state_of(l, "opens").is_some_and(|s| s.0 == S::TpStateEnabled as i32));
    let first = list.iter().find(|p| p.name == "opens").unwrap().clone();
    assert_eq!(first.domain, "k8s");
    cat(&a);
    agent.wait_for("hit on a", |e| kind(e).0 == "process_tracepoint" && kind(e).1["policy_name"] == "opens");

    // Status or metadata only: same spec, no reload (same id, no new "enabled" line).
    let mut touched = fake.get("tracingpolicies", "", "opens").unwrap();
    touched["status"] = json!({"state": "seen"});
    touched["metadata"]["labels"] = json!({"touched": "yes"});
    fake.put("tracingpolicies", touched);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(grpc.policies().iter().find(|p| p.name == "opens").unwrap().id, first.id);
    assert_eq!(agent.log_text().matches("tracing policy \"opens\" enabled").count(), 1, "{}", agent.log_text());

    // Update: replaced (new id), now matches b only.
    fake.put("tracingpolicies", open_policy("TracingPolicy", "opens", None, b_name));
    grpc.wait_policy("replaced", |l| l.iter().any(|p| p.name == "opens" && p.id != first.id && p.state == S::TpStateEnabled as i32));
    let hits_a = opened(&agent, &a);
    cat(&a);
    cat(&b);
    agent.wait_for("hit on b", |e| kind(e).0 == "process_tracepoint" && kind(e).1["args"][0]["string_arg"].as_str() == b.to_str());
    assert_eq!(opened(&agent, &a), hits_a, "the old version still fires");

    // gRPC cannot delete what the object owns.
    let request = tetra_proto::tetragon::DeleteTracingPolicyRequest { name: "opens".into(), ..Default::default() };
    let refused = grpc.rt.block_on(grpc.client.delete_tracing_policy(request));
    assert!(refused.unwrap_err().message().contains("Kubernetes object"));

    // Invalid: Event on the object, error state, the others untouched.
    let mut bad = open_policy("TracingPolicy", "bad", None, a_name);
    bad["spec"]["tracepoints"][0]["args"][0]["type"] = json!("nosuchtype");
    fake.put("tracingpolicies", bad);
    let event = fake
        .wait_object("events", Duration::from_secs(60), |e| e["regarding"]["name"] == "bad")
        .unwrap_or_else(|| panic!("no Event; requests: {:#?}", fake.requests()));
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], "PolicyLoadFailed");
    assert_eq!(event["regarding"]["kind"], "TracingPolicy");
    assert_eq!(event["metadata"]["namespace"], "default");
    let note = event["note"].as_str().unwrap();
    assert!(note.contains("nosuchtype") && note.contains("spec.tracepoints[0].args[0].type"), "{note}");
    let list = grpc.wait_policy("bad listed", |l| state_of(l, "bad").is_some());
    assert_eq!(state_of(&list, "bad").unwrap().0, S::TpStateError as i32);
    assert!(state_of(&list, "bad").unwrap().1.contains("nosuchtype"));
    assert_eq!(state_of(&list, "opens").unwrap().0, S::TpStateEnabled as i32);
    assert!(agent.log_text().contains("tracing policy bad from Kubernetes: invalid tracing policy"));

    // nodeSelector: this node is role=worker.
    let mut other_nodes = open_policy("TracingPolicy", "elsewhere", None, a_name);
    other_nodes["spec"]["nodeSelector"] = json!({"matchLabels": {"role": "gpu"}});
    fake.put("tracingpolicies", other_nodes);
    let mut this_node = open_policy("TracingPolicy", "here", None, a_name);
    this_node["spec"]["nodeSelector"] = json!({"matchExpressions": [{"key": "role", "operator": "In", "values": ["worker"]}]});
    fake.put("tracingpolicies", this_node);
    let list = grpc.wait_policy("node selectors", |l| state_of(l, "elsewhere").is_some() && state_of(l, "here").is_some());
    assert_eq!(state_of(&list, "elsewhere").unwrap(), (S::TpStateSkipped as i32, format!("spec.nodeSelector does not select node {NODE}")));
    assert_eq!(state_of(&list, "here").unwrap().0, S::TpStateEnabled as i32);
    // The node is relabelled: both are decided again.
    fake.put("nodes", node(json!({"role": "gpu"})));
    let list = grpc.wait_policy("relabelled node", |l| {
        state_of(l, "elsewhere").is_some_and(|s| s.0 == S::TpStateEnabled as i32)
            && state_of(l, "here").is_some_and(|s| s.0 == S::TpStateSkipped as i32)
    });
    assert_eq!(state_of(&list, "here").unwrap(), (S::TpStateSkipped as i32, format!("spec.nodeSelector does not select node {NODE}")));

    // Delete: unloaded, no more hits.
    fake.delete("tracingpolicies", "", "opens");
    grpc.wait_policy("deleted", |l| state_of(l, "opens").is_none());
    let hits_b = opened(&agent, &b);
    cat(&b);
    // A later hit of a policy still loaded ("elsewhere", on a) shows that what came before
    // it was exported, without a guess at how long that takes.
    cat(&a);
    agent.wait_for("hit of elsewhere", |e| kind(e).0 == "process_tracepoint" && kind(e).1["policy_name"] == "elsewhere");
    assert_eq!(opened(&agent, &b), hits_b, "deleted policy still fires");
    agent.stop();
}

/// (policy, pid) of every tracepoint hit on `file` so far.
fn hits(agent: &Agent, file: &std::path::Path) -> Vec<(String, u64)> {
    let mut hits: Vec<(String, u64)> = agent
        .events()
        .iter()
        .filter(|e| kind(e).0 == "process_tracepoint" && kind(e).1["args"][0]["string_arg"].as_str() == file.to_str())
        .map(|e| (kind(e).1["policy_name"].as_str().unwrap().to_string(), kind(e).1["process"]["pid"].as_u64().unwrap()))
        .collect();
    hits.sort();
    hits
}

#[test]
#[ignore = "needs root: loads BPF programs and creates cgroups (the README test command runs it)"]
fn namespaced_and_selector_policies_fire_only_in_their_pods() {
    use tetra_proto::tetragon::TracingPolicyState as S;
    let _serial = serial();
    let fake = FakeKube::start();
    fake.put("nodes", node(json!({})));
    let (shop_id, other_id) = (hex_id("shop"), hex_id("other"));
    let (shop_uid, other_uid) = ("2b3c4d5e-0000-4000-8000-00000000000a", "2b3c4d5e-0000-4000-8000-00000000000b");
    fake.put("pods", pod("shop", "cart", shop_uid, json!({"app": "cart"}), None, ("main", &shop_id)));
    fake.put("pods", pod("other", "billing", other_uid, json!({"app": "billing"}), None, ("main", &other_id)));
    let (shop, other) = (Cgroup::new(shop_uid, &shop_id), Cgroup::new(other_uid, &other_id));
    let dir = tempfile::tempdir().unwrap();
    let (file, file2) = (dir.path().join(marker("k8s-ns")), dir.path().join(marker("k8s-sel")));
    for f in [&file, &file2] {
        std::fs::write(f, "x\n").unwrap();
    }
    let run_dir = tempfile::tempdir().unwrap();
    let run_arg = format!("--run-dir={}", run_dir.path().display());
    let (mut agent, _k) = start_agent(&fake, &["--server-address=127.0.0.1:0", &run_arg]);
    let mut grpc = Grpc::connect(&rpc::info(run_dir.path(), "server_address"));
    let base = |f: &std::path::Path| f.file_name().unwrap().to_str().unwrap().to_string();
    fake.put("tracingpoliciesnamespaced", open_policy("TracingPolicyNamespaced", "shop-opens", Some("shop"), &base(&file)));
    // Cluster-wide, limited to the "main" container of app=billing pods; and one whose
    // container selector matches no container.
    for (name, container) in [("billing-main", "main"), ("billing-sidecar", "sidecar")] {
        let mut p = open_policy("TracingPolicy", name, None, &base(&file2));
        p["spec"]["podSelector"] = json!({"matchLabels": {"app": "billing"}});
        p["spec"]["containerSelector"] = json!({"matchExpressions": [{"key": "name", "operator": "In", "values": [container]}]});
        fake.put("tracingpolicies", p);
    }
    // hostSelector is refused with the reason, not half-applied.
    let mut host_sel = open_policy("TracingPolicy", "host-only", None, &base(&file2));
    host_sel["spec"]["hostSelector"] = json!({});
    fake.put("tracingpolicies", host_sel);
    let list = grpc.wait_policy("all four listed", |l| l.len() == 4 && l.iter().filter(|p| p.state == S::TpStateEnabled as i32).count() == 3);
    assert_eq!(state_of(&list, "shop-opens").map(|s| s.0), Some(S::TpStateEnabled as i32));
    assert_eq!(list.iter().find(|p| p.name == "shop-opens").unwrap().namespace, "shop");
    assert_eq!(state_of(&list, "host-only").unwrap(), (S::TpStateLoadError as i32, "spec.hostSelector: selecting host workloads is not supported yet".to_string()));
    // Let the scope fill the policies' cgroup maps (it follows pods and policies within ~100 ms).
    std::thread::sleep(Duration::from_millis(500));
    let mut pids = Vec::new();
    for f in [&file, &file2] {
        let script = format!("exec /bin/cat {}", f.display());
        let mut host = Command::new("/bin/cat").arg(f).stdout(std::process::Stdio::null()).spawn().unwrap();
        let mut in_other = other.spawn(&script);
        let mut in_shop = shop.spawn(&script);
        pids.push((host.id() as u64, in_other.id() as u64, in_shop.id() as u64));
        for c in [&mut host, &mut in_other, &mut in_shop] {
            assert!(c.wait().unwrap().success());
        }
    }
    // Every event of these processes is exported once their exits are.
    for &(h, o, s) in &pids {
        for pid in [h, o, s] {
            agent.wait_for("exit", |e| common::is(e, "process_exit", pid as u32));
        }
    }
    assert_eq!(hits(&agent, &file), [("shop-opens".to_string(), pids[0].2)], "namespaced: only the shop pod");
    assert_eq!(hits(&agent, &file2), [("billing-main".to_string(), pids[1].1)], "selectors: only billing's main container");
    let hit = agent.wait_for("hit in shop", |e| kind(e).0 == "process_tracepoint" && kind(e).1["process"]["pid"] == pids[0].2);
    assert_eq!(hit["process_tracepoint"]["process"]["pod"]["namespace"], "shop");
    agent.stop();
}

/// A container's cgroup as the kubelet's cgroupfs driver and runc make it, in every
/// hierarchy the host mounts (each v1 controller and the unified one on a hybrid host, the
/// unified one only on a v2 host): `/kubepods[/<qos>]/pod<uid>/<id>`. Removed on drop,
/// with the kubelet's directories above it once no other test container uses them.
struct KubeletCgroup {
    /// Per hierarchy: the leaf first, then its parents up to `kubepods`.
    chains: Vec<Vec<PathBuf>>,
}

/// Mount points of the host's cgroup hierarchies, v1 and v2.
fn hierarchies() -> Vec<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 2 && (f[2] == "cgroup2" || f[2] == "cgroup"))
        .map(|f| PathBuf::from(f[1]))
        .collect()
}

impl KubeletCgroup {
    fn new(qos: &str, pod_uid: &str, container_id: &str) -> KubeletCgroup {
        let rel = PathBuf::from("kubepods").join(qos).join(format!("pod{pod_uid}")).join(container_id);
        let mut chains = Vec::new();
        for h in hierarchies() {
            let mut chain = Vec::new();
            let mut dir = h.clone();
            for part in rel.components() {
                let parent = dir.clone();
                dir.push(part);
                if std::fs::create_dir(&dir).is_ok() {
                    // A v1 cpuset starts empty and takes no task until given its parent's.
                    for f in ["cpuset.cpus", "cpuset.mems"] {
                        if let Ok(v) = std::fs::read_to_string(parent.join(f)) {
                            std::fs::write(dir.join(f), v.trim()).unwrap_or_else(|e| panic!("{}/{f}: {e}", dir.display()));
                        }
                    }
                }
                chain.push(dir.clone());
            }
            chain.reverse();
            chains.push(chain);
        }
        KubeletCgroup { chains }
    }

    /// Runs `script` with /bin/sh moved into this container's cgroup of every hierarchy.
    fn spawn(&self, script: &str) -> std::process::Child {
        let moves: String = self.chains.iter().map(|c| format!("echo $$ > {}/cgroup.procs && ", c[0].display())).collect();
        Command::new("/bin/sh").arg("-c").arg(format!("{moves}{script}")).stdout(std::process::Stdio::null()).spawn().unwrap()
    }
}

impl Drop for KubeletCgroup {
    fn drop(&mut self) {
        for chain in &self.chains {
            // The leaf empties once its processes are reaped; parents go when unused.
            for _ in 0..50 {
                if std::fs::remove_dir(&chain[0]).is_ok() || !chain[0].exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            for parent in &chain[1..] {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

#[test]
#[ignore = "needs root: loads BPF programs and creates cgroups (the README test command runs it)"]
fn kubelet_cgroupfs_layout_in_every_hierarchy_enriches_and_scopes_by_qos_class() {
    let _serial = serial();
    let fake = FakeKube::start();
    fake.put("nodes", node(json!({})));
    // The measured layout: BestEffort, Burstable, Guaranteed (directly under /kubepods).
    let classes = [("besteffort", "3c4d5e6f-0000-4000-8000-00000000000a"), ("burstable", "3c4d5e6f-0000-4000-8000-00000000000b"), ("", "3c4d5e6f-0000-4000-8000-00000000000c")];
    let mut cgroups = Vec::new();
    for (i, (qos, uid)) in classes.iter().enumerate() {
        let id = hex_id(&format!("qos{i}"));
        let ns = if i == 0 { "scoped" } else { "elsewhere" };
        fake.put("pods", pod(ns, &format!("qos-{i}"), uid, json!({"qos": i.to_string()}), None, ("main", &id)));
        cgroups.push((KubeletCgroup::new(qos, uid, &id), ns, id));
    }
    let hybrid = hierarchies().len() > 1;
    eprintln!("{} hierarchies ({})", hierarchies().len(), if hybrid { "hybrid host" } else { "v2 host" });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(marker("k8s-qos"));
    std::fs::write(&file, "x\n").unwrap();
    let (mut agent, _k) = start_agent(&fake, &[]);
    let name = file.file_name().unwrap().to_str().unwrap().to_string();
    fake.put("tracingpoliciesnamespaced", open_policy("TracingPolicyNamespaced", "scoped-opens", Some("scoped"), &name));
    agent.wait_log("tracing policy scoped/scoped-opens enabled");
    std::thread::sleep(Duration::from_millis(500)); // the scope fills the policy's cgroup map
    let mut pids = Vec::new();
    for (cg, ns, id) in &cgroups {
        let mut child = cg.spawn(&format!("exec /bin/cat {}", file.display()));
        let pid = child.id();
        assert!(child.wait().unwrap().success());
        let event = exec_of(&agent, pid, "/bin/cat");
        let p = &event["process_exec"]["process"]["pod"];
        assert_eq!((p["namespace"].as_str(), p["container"]["id"].as_str()), (Some(*ns), Some(format!("containerd://{id}").as_str())), "{event}");
        pids.push(pid as u64);
    }
    for pid in &pids {
        agent.wait_for("exit", |e| common::is(e, "process_exit", *pid as u32));
    }
    // The kernel's id of a task's cgroup is the unified hierarchy's: the scope holds those.
    assert_eq!(hits(&agent, &file), [("scoped-opens".to_string(), pids[0])]);
    let stats = agent.stop();
    assert_eq!(stats["pod_unenriched"], 0, "{stats:?}");
}
