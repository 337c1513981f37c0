//! The chart on a real cluster, run whenever $KUBECONFIG is set (skipped, saying why,
//! otherwise): `helm upgrade --install` release `tetra` into kube-system, wait for the
//! DaemonSet and the operator, then on one node: a TracingPolicy's Sigkill enforced in a
//! pod (a tracepoint, so kernels without kprobes do), events read through
//! `kubectl logs -n kube-system ds/tetragon -c export-stdout | tetra getevents -o compact`
//! naming the pod's namespace, name, container and workload, and a
//! TracingPolicyNamespaced firing in its namespace's pod only. Everything it created is
//! deleted at the end, the release too unless TETRA_E2E_KEEP=1.
//!
//! The nodes must already have the images (README, "Install on Kubernetes"). Settings:
//! - `TETRA_E2E_HELM_SET`: more `--set` values, comma separated (e.g. a registry's
//!   `agent.image.repository=...`); by default every image is `pullPolicy=Never`.
//! - `TETRA_E2E_IMAGE`: image of the test pods, which needs only a `tail` (default: the
//!   image of the DaemonSet's export-stdout container, which the node has and which runs
//!   `tail` itself).
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tetra_deploy::{deploy_dir, helm, run};

const NS: &str = "kube-system";

/// The kubeconfig to run against, or why the suite is skipped.
fn kubeconfig_from(var: Option<OsString>) -> Result<PathBuf, &'static str> {
    match var {
        Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
        _ => Err("KUBECONFIG is not set (point it at a cluster whose nodes have the tetra images to run it)"),
    }
}

#[test]
fn the_suite_is_skipped_saying_why_without_kubeconfig() {
    for unset in [None, Some(OsString::new())] {
        let why = kubeconfig_from(unset).unwrap_err();
        assert!(why.starts_with("KUBECONFIG is not set"), "{why}");
    }
    assert_eq!(kubeconfig_from(Some("/k/config".into())), Ok(PathBuf::from("/k/config")));
}

fn kubectl(args: &[&str]) -> Result<String, String> {
    run(Command::new("kubectl").args(args))
}

fn must(args: &[&str]) -> String {
    kubectl(args).unwrap_or_else(|e| panic!("{e}"))
}

fn get_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&must(&all)).expect("kubectl -o json")
}

/// `kubectl apply -f -` of one object.
fn apply(object: &Value) {
    let mut child = Command::new("kubectl")
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl");
    child.stdin.take().unwrap().write_all(object.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kubectl apply {}: {}", object["metadata"]["name"], String::from_utf8_lossy(&out.stderr));
}

/// Deletes what the suite created, also when an assertion fails.
struct Cleanup {
    namespaces: Vec<String>,
    policies: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.policies {
            let _ = kubectl(&["delete", "tracingpolicy", p, "--ignore-not-found"]);
        }
        for ns in &self.namespaces {
            let _ = kubectl(&["delete", "namespace", ns, "--ignore-not-found", "--wait=false"]);
        }
        if std::env::var_os("TETRA_E2E_KEEP").is_none() {
            if let Ok(helm) = helm() {
                let _ = run(Command::new(helm).args(["uninstall", "tetra", "--namespace", NS]));
            }
        }
    }
}

/// A Deployment `victim` (container `main`) in `ns`, pinned to `node`.
fn victim(ns: &str, node: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "victim", "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "victim"}},
            "template": {
                "metadata": {"labels": {"app": "victim", "tier": "e2e"}},
                "spec": {
                    "nodeName": node,
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "main", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["tail", "-f", "/dev/null"]}]
                }
            }
        }
    })
}

/// A policy on `sys_enter_openat` of files named `*suffix`, with `actions`.
fn open_policy(kind: &str, name: &str, ns: Option<&str>, suffix: &str, actions: Value) -> Value {
    let mut selector = json!({"matchArgs": [{"index": 0, "operator": "Postfix", "values": [suffix]}]});
    if actions.as_array().is_some_and(|a| !a.is_empty()) {
        selector["matchActions"] = actions;
    }
    let mut metadata = json!({"name": name});
    if let Some(ns) = ns {
        metadata["namespace"] = json!(ns);
    }
    json!({
        "apiVersion": "cilium.io/v1alpha1", "kind": kind, "metadata": metadata,
        "spec": {"tracepoints": [{"subsystem": "syscalls", "event": "sys_enter_openat",
            "args": [{"index": 6, "type": "string"}], "selectors": [selector]}]}
    })
}

/// `tail <file>` (it opens the file, which need not exist) in the `main` container of
/// deploy/victim in `ns`.
fn open_in(ns: &str, file: &str) -> Output {
    Command::new("kubectl")
        .args(["exec", "-n", ns, "deploy/victim", "-c", "main", "--", "tail", file])
        .output()
        .expect("kubectl exec")
}

/// The export of the agent on the test node, as JSON events.
fn events(source: &str) -> Vec<Value> {
    must(&["logs", "-n", NS, source, "-c", "export-stdout"])
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn tracepoint_hit<'a>(events: &'a [Value], policy: &str, ns: &str) -> Option<&'a Value> {
    events.iter().find(|e| {
        let t = &e["process_tracepoint"];
        t["policy_name"] == policy && t["process"]["pod"]["namespace"] == ns
    })
}

#[test]
#[ignore = "changes the cluster of $KUBECONFIG: installs the chart into kube-system (the README test command runs it)"]
fn chart_on_a_real_cluster_enforces_and_names_pods() {
    let kubeconfig = match kubeconfig_from(std::env::var_os("KUBECONFIG")) {
        Ok(k) => k,
        Err(why) => {
            eprintln!("real-cluster chart suite skipped: {why}");
            return;
        }
    };
    eprintln!("real-cluster chart suite on {}", kubeconfig.display());
    let id = std::process::id();
    let (ns, other) = (format!("tetra-e2e-{id}"), format!("tetra-e2e-{id}-other"));
    let (kill_policy, ns_policy) = (format!("tetra-e2e-kill-{id}"), "tetra-e2e-opens".to_string());
    let (kill_file, ns_file) = (format!("/tmp/tetra-e2e-kill-{id}"), format!("/tmp/tetra-e2e-ns-{id}"));
    let _cleanup = Cleanup { namespaces: vec![ns.clone(), other.clone()], policies: vec![kill_policy.clone()] };

    // Install, images from the nodes' runtime only, and wait for both workloads.
    let mut sets = vec![
        "agent.image.pullPolicy=Never".to_string(),
        "operator.image.pullPolicy=Never".to_string(),
        "exportStdout.image.pullPolicy=Never".to_string(),
    ];
    if let Ok(more) = std::env::var("TETRA_E2E_HELM_SET") {
        sets.extend(more.split(',').filter(|s| !s.is_empty()).map(String::from));
    }
    let mut install = Command::new(helm().unwrap_or_else(|e| panic!("{e}")));
    install.args(["upgrade", "--install", "tetra"]).arg(deploy_dir().join("helm/tetra"));
    install.args(["--namespace", NS, "--wait", "--timeout", "5m"]);
    for s in &sets {
        install.args(["--set", s]);
    }
    run(&mut install).unwrap_or_else(|e| panic!("helm install: {e}"));
    must(&["rollout", "status", "-n", NS, "daemonset/tetragon", "--timeout=300s"]);
    must(&["rollout", "status", "-n", NS, "deployment/tetragon-operator", "--timeout=300s"]);
    must(&["wait", "--for=condition=established", "--timeout=120s", "crd/tracingpolicies.cilium.io", "crd/tracingpoliciesnamespaced.cilium.io"]);

    // One node: the first agent's; every test pod runs there, its export is read.
    let agents = get_json(&["get", "pods", "-n", NS, "-l", "app.kubernetes.io/name=tetragon"]);
    let agents = agents["items"].as_array().expect("items").clone();
    assert!(!agents.is_empty(), "no tetragon pod");
    let agent = &agents[0];
    let node = agent["spec"]["nodeName"].as_str().expect("nodeName").to_string();
    // `ds/tetragon` picks one of the DaemonSet's pods: exactly ours on a one-node cluster.
    let source = match agents.len() {
        1 => "ds/tetragon".to_string(),
        _ => format!("pod/{}", agent["metadata"]["name"].as_str().unwrap()),
    };
    let image = std::env::var("TETRA_E2E_IMAGE").unwrap_or_else(|_| {
        let containers = agent["spec"]["containers"].as_array().expect("containers");
        let sidecar = containers.iter().find(|c| c["name"] == "export-stdout").expect("export-stdout");
        sidecar["image"].as_str().unwrap().to_string()
    });
    for n in [&ns, &other] {
        must(&["create", "namespace", n]);
        apply(&victim(n, &node, &image));
    }
    for n in [&ns, &other] {
        must(&["rollout", "status", "-n", n, "deployment/victim", "--timeout=180s"]);
    }
    let pod = get_json(&["get", "pods", "-n", &ns, "-l", "app=victim"])["items"][0].clone();
    let pod_name = pod["metadata"]["name"].as_str().expect("pod name").to_string();
    let status = pod["status"]["containerStatuses"].as_array().expect("statuses").iter().find(|c| c["name"] == "main").expect("main").clone();

    // Enforcement: the policy's Sigkill ends the `tail` in the pod (exit 137).
    apply(&open_policy("TracingPolicy", &kill_policy, None, &kill_file, json!([{"action": "Sigkill"}])));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = open_in(&ns, &kill_file);
        if out.status.code() == Some(137) {
            break;
        }
        assert!(Instant::now() < deadline, "tail was not killed in 90 s: {out:?}");
        std::thread::sleep(Duration::from_secs(2));
    }

    // The hit names the pod, its container and its workload.
    let deadline = Instant::now() + Duration::from_secs(60);
    let hit = loop {
        if let Some(hit) = tracepoint_hit(&events(&source), &kill_policy, &ns) {
            break hit.clone();
        }
        assert!(Instant::now() < deadline, "no process_tracepoint of {kill_policy} from {ns} in {source}'s export");
        std::thread::sleep(Duration::from_secs(2));
    };
    let p = &hit["process_tracepoint"]["process"]["pod"];
    assert_eq!(p["name"], pod_name.as_str(), "{hit}");
    assert_eq!(p["uid"], pod["metadata"]["uid"], "{hit}");
    assert_eq!(p["container"]["name"], "main", "{hit}");
    assert_eq!(p["container"]["id"], status["containerID"], "{hit}");
    assert_eq!(p["container"]["image"]["name"], status["image"], "{hit}");
    assert_eq!(p["pod_labels"]["app"], "victim", "{hit}");
    assert_eq!(p["pod_labels"]["tier"], "e2e", "{hit}");
    assert_eq!((&p["workload"], &p["workload_kind"]), (&json!("victim"), &json!("Deployment")), "{hit}");
    assert_eq!(hit["process_tracepoint"]["action"], "KPROBE_ACTION_SIGKILL", "{hit}");

    // The documented pipe prints the same hit with the pod's namespace/name.
    let tetra = tetra_tests::vm::cargo_build_binary("tetra-cli", "tetra").unwrap_or_else(|e| panic!("{e}"));
    let compact = run(Command::new("sh").args([
        "-c",
        "kubectl logs -n kube-system \"$1\" -c export-stdout | \"$0\" getevents -o compact --color never",
    ]).arg(&tetra).arg(&source))
    .unwrap_or_else(|e| panic!("{e}"));
    let line = format!("{ns}/{pod_name}");
    assert!(
        compact.lines().any(|l| l.contains(&line) && l.contains("sys_enter_openat")),
        "no compact line for {line}:\n{compact}"
    );

    // A TracingPolicyNamespaced fires in its namespace's pod only.
    apply(&open_policy("TracingPolicyNamespaced", &ns_policy, Some(&ns), &ns_file, json!([])));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        // The other namespace first: its open is exported before ours, if at all.
        let _ = open_in(&other, &ns_file);
        let _ = open_in(&ns, &ns_file);
        std::thread::sleep(Duration::from_secs(2));
        let all = events(&source);
        if tracepoint_hit(&all, &ns_policy, &ns).is_some() {
            assert!(tracepoint_hit(&all, &ns_policy, &other).is_none(), "{ns_policy} fired in {other}");
            // The other pod's tail was exported, so its hit would have been too.
            let seen = all.iter().any(|e| {
                let p = &e["process_exec"]["process"];
                p["pod"]["namespace"] == other.as_str() && p["arguments"].as_str().is_some_and(|a| a.contains(&ns_file))
            });
            assert!(seen, "no exec of tail from {other} in the export");
            break;
        }
        assert!(Instant::now() < deadline, "{ns_policy} did not fire in {ns} within 90 s");
    }
}
