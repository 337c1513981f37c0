//! The Helm chart through the real helm: `helm lint`, and `helm template` (through
//! deploy/render.sh) equal to the committed deploy/manifests/, plus the optional parts.
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use tetra_deploy::{deploy_dir, documents, find, helm, object_id, render, run};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tetra-deploy-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Renders with `args` and returns the documents of tetra.yaml.
fn rendered(name: &str, args: &[&str]) -> Vec<Value> {
    let dir = scratch(name);
    render(&dir, args).unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(dir.join("tetra.yaml")).expect("tetra.yaml");
    let _ = std::fs::remove_dir_all(&dir);
    documents(&text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn helm_lint_passes_strict() {
    let helm = helm().unwrap_or_else(|e| panic!("{e}"));
    let out = run(Command::new(helm)
        .args(["lint", "--strict", "--namespace", "kube-system"])
        .arg(deploy_dir().join("helm/tetra")))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.contains("1 chart(s) linted, 0 chart(s) failed"),
        "{out}"
    );
}

#[test]
fn committed_manifests_are_the_rendered_chart() {
    let dir = scratch("committed");
    render(&dir, &[]).unwrap_or_else(|e| panic!("{e}"));
    for file in [
        "tetra.yaml",
        "cilium.io_tracingpolicies.yaml",
        "cilium.io_tracingpoliciesnamespaced.yaml",
    ] {
        let fresh = std::fs::read_to_string(dir.join(file)).expect("rendered file");
        let committed = std::fs::read_to_string(deploy_dir().join("manifests").join(file))
            .unwrap_or_else(|e| panic!("deploy/manifests/{file}: {e}"));
        assert!(
            fresh == committed,
            "deploy/manifests/{file} is stale: run deploy/render.sh and commit the result"
        );
    }
    let listed: Vec<_> = std::fs::read_dir(deploy_dir().join("manifests"))
        .expect("deploy/manifests")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(
        listed.len(),
        3,
        "deploy/manifests holds only rendered files: {listed:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn service_monitors_are_off_by_default_and_select_the_metrics_services_when_on() {
    let default = rendered("sm-off", &[]);
    assert!(default.iter().all(|d| d["kind"] != "ServiceMonitor"));

    let docs = rendered(
        "sm-on",
        &[
            "--set",
            "serviceMonitor.enabled=true",
            "--set",
            "serviceMonitor.labels.release=prom",
        ],
    );
    let monitors: Vec<_> = docs
        .iter()
        .filter(|d| d["kind"] == "ServiceMonitor")
        .collect();
    let ids: Vec<_> = monitors.iter().map(|d| object_id(d)).collect();
    assert_eq!(
        ids,
        [
            "ServiceMonitor/tetragon",
            "ServiceMonitor/tetragon-operator"
        ]
    );
    for m in monitors {
        assert_eq!(m["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(m["metadata"]["labels"]["release"], "prom");
        let name = m["metadata"]["name"].as_str().expect("name");
        let service = find(&docs, "Service", name).unwrap_or_else(|| panic!("no Service {name}"));
        // The monitor selects the Service by its labels and scrapes its `metrics` port.
        for (k, v) in m["spec"]["selector"]["matchLabels"]
            .as_object()
            .expect("matchLabels")
        {
            assert_eq!(&service["metadata"]["labels"][k], v, "{name}: label {k}");
        }
        assert_eq!(
            m["spec"]["namespaceSelector"]["matchNames"],
            serde_json::json!(["kube-system"])
        );
        assert_eq!(m["spec"]["endpoints"][0]["port"], "metrics");
        assert_eq!(service["spec"]["ports"][0]["name"], "metrics");
        assert_eq!(m["spec"]["endpoints"][0]["path"], "/metrics");
    }
}

#[test]
fn agent_metrics_can_be_turned_off() {
    let docs = rendered(
        "no-metrics",
        &[
            "--set",
            "agent.metrics.enabled=false",
            "--set",
            "serviceMonitor.enabled=true",
        ],
    );
    let ds = find(&docs, "DaemonSet", "tetragon").expect("DaemonSet");
    let args = ds["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(!args.contains("--metrics-server"), "{args}");
    assert!(ds["spec"]["template"]["spec"]["containers"][0]
        .get("ports")
        .is_none());
    let cm = find(&docs, "ConfigMap", "tetragon-config").expect("ConfigMap");
    assert!(cm["data"].get("metrics-server").is_none());
    assert!(find(&docs, "Service", "tetragon").is_none());
    assert!(find(&docs, "ServiceMonitor", "tetragon").is_none());
    assert!(find(&docs, "ServiceMonitor", "tetragon-operator").is_some());
}

#[test]
fn operator_crd_creation_can_be_left_to_others() {
    let args = |docs: &[Value]| {
        let d = find(docs, "Deployment", "tetragon-operator").expect("Deployment");
        d["spec"]["template"]["spec"]["containers"][0]["args"].clone()
    };
    let default = args(&rendered("crd-default", &[]));
    assert!(!default.to_string().contains("--skip-crd-creation"), "{default}");
    let skipped = args(&rendered("crd-skip", &["--set", "operator.skipCRDCreation=true"]));
    assert_eq!(skipped[2], "--skip-crd-creation", "{skipped}");
}

#[test]
fn every_container_can_use_imported_images_only() {
    // Nodes without a registry: images imported into the runtime, never pulled.
    let docs = rendered(
        "never-pull",
        &[
            "--set",
            "agent.image.pullPolicy=Never",
            "--set",
            "exportStdout.image.pullPolicy=Never",
            "--set",
            "operator.image.pullPolicy=Never",
        ],
    );
    let mut seen = 0;
    for doc in docs.iter().filter(|d| d["kind"] == "DaemonSet" || d["kind"] == "Deployment") {
        let spec = &doc["spec"]["template"]["spec"];
        for list in ["initContainers", "containers"] {
            for c in spec[list].as_array().into_iter().flatten() {
                assert_eq!(c["imagePullPolicy"], "Never", "{} {}", object_id(doc), c["name"]);
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 3, "tetragon, export-stdout and tetra-operator");
}

#[test]
fn bpffs_propagation_can_be_tetragons_bidirectional() {
    let docs = rendered("bidirectional", &["--set", "agent.bpfMountPropagation=Bidirectional"]);
    let ds = find(&docs, "DaemonSet", "tetragon").expect("DaemonSet");
    let mounts = ds["spec"]["template"]["spec"]["containers"][0]["volumeMounts"].as_array().expect("mounts").clone();
    let bpf = mounts.iter().find(|m| m["mountPath"] == "/sys/fs/bpf").expect("bpf mount");
    assert_eq!(bpf["mountPropagation"], "Bidirectional");
}

#[test]
fn a_btf_file_replaces_the_kernels_btf_on_nodes_without_it() {
    let docs = rendered("btf-file", &["--set", "agent.btf.hostPath=/var/lib/btfhub/vmlinux"]);
    let pod = &find(&docs, "DaemonSet", "tetragon").expect("DaemonSet")["spec"]["template"]["spec"];
    let mounts = pod["containers"][0]["volumeMounts"].as_array().expect("mounts");
    let btf = mounts.iter().find(|m| m["name"] == "btf").expect("btf mount");
    assert_eq!((&btf["mountPath"], &btf["readOnly"]), (&Value::from("/var/lib/tetragon/btf"), &Value::Bool(true)));
    // A node without kernel BTF has no /sys/kernel/btf: nothing may require it.
    assert!(!mounts.iter().any(|m| m["mountPath"] == "/sys/kernel/btf"), "{mounts:?}");
    let volume = pod["volumes"].as_array().expect("volumes").iter().find(|v| v["name"] == "btf").expect("btf volume");
    assert_eq!(volume["hostPath"], serde_json::json!({"path": "/var/lib/btfhub/vmlinux", "type": "File"}));
    let cm = &find(&docs, "ConfigMap", "tetragon-config").expect("ConfigMap")["data"];
    assert_eq!(cm["btf"], "/var/lib/tetragon/btf");
    let args = pod["containers"][0]["args"].as_array().expect("args");
    assert!(args.iter().any(|a| a == "--btf=$(TETRA_FLAG_BTF)"), "{args:?}");

    // By default: the kernel's own, and no --btf.
    let docs = rendered("btf-default", &[]);
    let cm = &find(&docs, "ConfigMap", "tetragon-config").expect("ConfigMap")["data"];
    assert_eq!(cm["btf"], Value::Null);
}
