//! Offline checks of the committed deploy/manifests/: every object parses into its
//! Kubernetes type with nothing unknown, RBAC is exactly least privilege, the agent
//! DaemonSet mounts what the agent needs and has the export-stdout container, images and
//! flags agree with values.yaml, and every flag is accepted by the real binaries.
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tetra_deploy::{deploy_dir, find, object_id, read_documents};

const NS: &str = "kube-system";
const AGENT: &str = "tetragon";
const OPERATOR: &str = "tetragon-operator";

fn manifests() -> Vec<Value> {
    read_documents(&deploy_dir().join("manifests/tetra.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

fn yaml_file(rel: &str) -> Value {
    let docs = read_documents(&deploy_dir().join(rel)).unwrap_or_else(|e| panic!("{e}"));
    docs.into_iter()
        .next()
        .unwrap_or_else(|| panic!("{rel} is empty"))
}

fn get<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    find(docs, kind, name)
        .unwrap_or_else(|| panic!("no {kind}/{name} in deploy/manifests/tetra.yaml"))
}

/// Parses `doc` as `T` and checks that writing it back gives the same document: a field
/// the type does not have (a typo, a wrong level) would be dropped and show up here.
fn typed<T: DeserializeOwned + Serialize>(doc: &Value) -> T {
    let id = object_id(doc);
    let parsed: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{id}: {e}"));
    let back = serde_json::to_value(&parsed).expect("serialize");
    assert_eq!(
        &back, doc,
        "{id} does not survive a round trip through its type"
    );
    parsed
}

#[test]
fn every_object_parses_into_its_type_with_nothing_unknown() {
    let docs = manifests();
    let mut ids = Vec::new();
    for doc in &docs {
        let api = doc["apiVersion"].as_str().unwrap_or("");
        match (api, doc["kind"].as_str().unwrap_or("")) {
            ("v1", "ServiceAccount") => drop(typed::<ServiceAccount>(doc)),
            ("v1", "ConfigMap") => drop(typed::<ConfigMap>(doc)),
            ("v1", "Service") => drop(typed::<Service>(doc)),
            ("apps/v1", "DaemonSet") => drop(typed::<DaemonSet>(doc)),
            ("apps/v1", "Deployment") => drop(typed::<Deployment>(doc)),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => drop(typed::<ClusterRole>(doc)),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                drop(typed::<ClusterRoleBinding>(doc))
            }
            ("rbac.authorization.k8s.io/v1", "Role") => drop(typed::<Role>(doc)),
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => drop(typed::<RoleBinding>(doc)),
            (api, kind) => panic!("unexpected object {api} {kind}"),
        }
        if doc["kind"] != "ClusterRole" && doc["kind"] != "ClusterRoleBinding" {
            assert_eq!(doc["metadata"]["namespace"], NS, "{}", object_id(doc));
        }
        ids.push(object_id(doc));
    }
    ids.sort();
    assert_eq!(
        ids,
        [
            "ClusterRole/tetragon",
            "ClusterRole/tetragon-operator",
            "ClusterRoleBinding/tetragon",
            "ClusterRoleBinding/tetragon-operator",
            "ConfigMap/tetragon-config",
            "DaemonSet/tetragon",
            "Deployment/tetragon-operator",
            "Role/tetragon-operator",
            "RoleBinding/tetragon-operator",
            "Service/tetragon",
            "Service/tetragon-operator",
            "ServiceAccount/tetragon",
            "ServiceAccount/tetragon-operator",
        ]
    );
}

#[test]
fn committed_crds_are_the_generated_ones() {
    for file in [
        "cilium.io_tracingpolicies.yaml",
        "cilium.io_tracingpoliciesnamespaced.yaml",
    ] {
        let ours = std::fs::read_to_string(deploy_dir().join("manifests").join(file)).expect(file);
        let generated =
            std::fs::read_to_string(deploy_dir().join("../crds/yaml").join(file)).expect(file);
        assert!(
            ours == generated,
            "deploy/manifests/{file} differs from crds/yaml/{file}"
        );
        let doc = yaml_file(&format!("manifests/{file}"));
        let _: CustomResourceDefinition = typed(&doc);
    }
}

/// (apiGroup, resource, resourceName or "*", verb) of every rule.
fn grants(rules: &Value) -> BTreeSet<(String, String, String, String)> {
    let mut out = BTreeSet::new();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    for rule in rules.as_array().expect("rules") {
        assert!(rule.get("nonResourceURLs").is_none(), "{rule}");
        let names = strings(&rule["resourceNames"]);
        let names = if names.is_empty() {
            vec!["*".to_string()]
        } else {
            names
        };
        for g in strings(&rule["apiGroups"]) {
            for r in strings(&rule["resources"]) {
                for n in &names {
                    for v in strings(&rule["verbs"]) {
                        out.insert((g.clone(), r.clone(), n.clone(), v));
                    }
                }
            }
        }
    }
    out
}

/// The grants of (apiGroup, resource, resourceName or "*", verbs) rows.
fn set(rows: &[(&str, &str, &str, &[&str])]) -> BTreeSet<(String, String, String, String)> {
    rows.iter()
        .flat_map(|(g, r, n, verbs)| {
            verbs
                .iter()
                .map(|v| (g.to_string(), r.to_string(), n.to_string(), v.to_string()))
        })
        .collect()
}

/// The roles bound to ServiceAccount `sa`: (kind, name) from every binding naming it.
fn roles_of(docs: &[Value], sa: &str) -> BTreeSet<(String, String)> {
    docs.iter()
        .filter(|d| d["kind"] == "ClusterRoleBinding" || d["kind"] == "RoleBinding")
        .filter(|d| {
            d["subjects"].as_array().is_some_and(|s| {
                s.iter().any(|s| {
                    s["kind"] == "ServiceAccount" && s["name"] == sa && s["namespace"] == NS
                })
            })
        })
        .map(|d| {
            let r = &d["roleRef"];
            (
                r["kind"].as_str().unwrap_or("").to_string(),
                r["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn agent_rbac_is_exactly_least_privilege() {
    let docs = manifests();
    let role = get(&docs, "ClusterRole", AGENT);
    assert_eq!(
        grants(&role["rules"]),
        set(&[
            ("", "pods", "*", &["get", "list", "watch"]),
            (
                "cilium.io",
                "tracingpolicies",
                "*",
                &["get", "list", "watch"]
            ),
            (
                "cilium.io",
                "tracingpoliciesnamespaced",
                "*",
                &["get", "list", "watch"]
            ),
            ("events.k8s.io", "events", "*", &["create", "patch"]),
            ("", "nodes", "*", &["get", "list", "watch"]),
        ])
    );
    let bound: BTreeSet<_> = [("ClusterRole".to_string(), AGENT.to_string())].into();
    assert_eq!(
        roles_of(&docs, AGENT),
        bound,
        "the agent's ServiceAccount has other roles"
    );
    let ds = get(&docs, "DaemonSet", AGENT);
    assert_eq!(ds["spec"]["template"]["spec"]["serviceAccountName"], AGENT);
}

#[test]
fn operator_rbac_is_exactly_what_crd_apply_and_the_lease_need() {
    let docs = manifests();
    let crd_names: Vec<String> = [
        "cilium.io_tracingpolicies.yaml",
        "cilium.io_tracingpoliciesnamespaced.yaml",
    ]
    .iter()
    .map(|f| {
        yaml_file(&format!("manifests/{f}"))["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_string()
    })
    .collect();
    let (group, crds) = ("apiextensions.k8s.io", "customresourcedefinitions");
    let expected = set(&[
        (group, crds, "*", &["create"]),
        (group, crds, crd_names[0].as_str(), &["get", "patch"]),
        (group, crds, crd_names[1].as_str(), &["get", "patch"]),
    ]);
    assert_eq!(
        grants(&get(&docs, "ClusterRole", OPERATOR)["rules"]),
        expected
    );

    // The lease the Role names is the one the operator is told to use.
    let deploy = get(&docs, "Deployment", OPERATOR);
    let container = &deploy["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let lease = args
        .iter()
        .find_map(|a| a.strip_prefix("--leader-election-lease-name="))
        .expect("--leader-election-lease-name");
    assert_eq!(
        grants(&get(&docs, "Role", OPERATOR)["rules"]),
        set(&[
            ("coordination.k8s.io", "leases", lease, &["get", "update"]),
            ("coordination.k8s.io", "leases", "*", &["create"]),
        ])
    );
    let bound: BTreeSet<_> = [
        ("ClusterRole".to_string(), OPERATOR.to_string()),
        ("Role".to_string(), OPERATOR.to_string()),
    ]
    .into();
    assert_eq!(roles_of(&docs, OPERATOR), bound);
    assert_eq!(
        deploy["spec"]["template"]["spec"]["serviceAccountName"],
        OPERATOR
    );
    // Identity and lease namespace come from the downward API.
    let env: BTreeMap<&str, &Value> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or(""),
                &e["valueFrom"]["fieldRef"]["fieldPath"],
            )
        })
        .collect();
    assert_eq!(
        env.get("POD_NAME").copied(),
        Some(&Value::from("metadata.name"))
    );
    assert_eq!(
        env.get("POD_NAMESPACE").copied(),
        Some(&Value::from("metadata.namespace"))
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

#[test]
fn agent_daemonset_mounts_the_host_paths_and_runs_export_stdout() {
    let docs = manifests();
    let ds = get(&docs, "DaemonSet", AGENT);
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true);
    let agent = container(pod, "tetragon");
    assert_eq!(agent["securityContext"]["privileged"], true);

    let host_paths: BTreeMap<&str, &str> = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap_or(""),
                v["hostPath"]["path"].as_str().unwrap_or("(not hostPath)"),
            )
        })
        .collect();
    // container path -> host path
    let mounts = |c: &Value| -> BTreeMap<String, String> {
        c["volumeMounts"]
            .as_array()
            .expect("volumeMounts")
            .iter()
            .map(|m| {
                let name = m["name"].as_str().unwrap_or("");
                (
                    m["mountPath"].as_str().unwrap_or("").to_string(),
                    host_paths
                        .get(name)
                        .copied()
                        .unwrap_or("(no volume)")
                        .to_string(),
                )
            })
            .collect()
    };
    let expected: BTreeMap<String, String> = [
        ("/procRoot", "/proc"),
        ("/sys/fs/bpf", "/sys/fs/bpf"),
        ("/sys/kernel/btf", "/sys/kernel/btf"),
        ("/sys/kernel/tracing", "/sys/kernel/tracing"),
        ("/sys/fs/cgroup", "/sys/fs/cgroup"),
        ("/var/run/tetragon", "/var/run/tetragon"),
        ("/var/run/secrets/kubernetes.io/serviceaccount", "(not hostPath)"),
    ]
    .iter()
    .map(|(c, h)| (c.to_string(), h.to_string()))
    .collect();
    assert_eq!(mounts(agent), expected);
    let bpf = agent["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["mountPath"] == "/sys/fs/bpf")
        .expect("bpf mount");
    assert_eq!(
        bpf["mountPropagation"], "HostToContainer",
        "nothing is pinned: Bidirectional would need a shared bpffs mount on every host"
    );

    let node_name = agent["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "NODE_NAME")
        .expect("NODE_NAME");
    assert_eq!(
        node_name["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );

    let flags = configmap_flags(&docs);
    let export = flags.get("export-filename").expect("export-filename flag");
    assert_eq!(export, "/var/run/tetragon/tetragon.log");
    let sidecar = container(pod, "export-stdout");
    assert_eq!(
        sidecar["command"],
        serde_json::json!(["tail", "-n", "0", "-F", export])
    );
    let sidecar_mounts = mounts(sidecar);
    assert_eq!(
        sidecar_mounts.get("/var/run/tetragon").map(String::as_str),
        Some("/var/run/tetragon")
    );
    assert_eq!(sidecar_mounts.len(), 1);
    assert_eq!(pod["containers"].as_array().map(Vec::len), Some(2));
}

/// The ConfigMap's flag values.
fn configmap_flags(docs: &[Value]) -> BTreeMap<String, String> {
    let cm = get(docs, "ConfigMap", &format!("{AGENT}-config"));
    cm["data"]
        .as_object()
        .expect("data")
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str()
                    .expect("ConfigMap values are strings")
                    .to_string(),
            )
        })
        .collect()
}

/// The agent's command line with each `$(VAR)` replaced by its ConfigMap value.
fn agent_command_line(docs: &[Value]) -> Vec<String> {
    let ds = get(docs, "DaemonSet", AGENT);
    let agent = container(&ds["spec"]["template"]["spec"], "tetragon");
    let flags = configmap_flags(docs);
    let cm_name = format!("{AGENT}-config");
    let env: BTreeMap<&str, &str> = agent["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter(|e| e["valueFrom"]["configMapKeyRef"]["name"] == cm_name.as_str())
        .map(|e| {
            (
                e["name"].as_str().unwrap_or(""),
                e["valueFrom"]["configMapKeyRef"]["key"]
                    .as_str()
                    .unwrap_or(""),
            )
        })
        .collect();
    let mut used = BTreeSet::new();
    let mut line = Vec::new();
    for arg in agent["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg"))
    {
        match arg.split_once("=$(") {
            Some((flag, var)) => {
                let var = var.strip_suffix(')').unwrap_or_else(|| panic!("{arg}"));
                let key = env
                    .get(var)
                    .unwrap_or_else(|| panic!("{arg}: {var} is not from the ConfigMap"));
                assert_eq!(flag, format!("--{key}"), "{arg} takes another flag's value");
                used.insert(key.to_string());
                line.push(format!("{flag}={}", flags[*key]));
            }
            None => line.push(arg.to_string()),
        }
    }
    let all: BTreeSet<String> = flags.keys().cloned().collect();
    assert_eq!(used, all, "every ConfigMap flag is passed, and only those");
    line
}

#[test]
fn images_and_flags_follow_values_yaml() {
    let docs = manifests();
    let values = yaml_file("helm/tetra/values.yaml");
    let chart = yaml_file("helm/tetra/Chart.yaml");
    let app = chart["appVersion"].as_str().expect("appVersion");
    let image = |v: &Value| {
        let tag = v["tag"].as_str().filter(|t| !t.is_empty()).unwrap_or(app);
        format!("{}:{tag}", v["repository"].as_str().expect("repository"))
    };
    let pod = &get(&docs, "DaemonSet", AGENT)["spec"]["template"]["spec"];
    assert_eq!(
        container(pod, "tetragon")["image"],
        image(&values["agent"]["image"])
    );
    assert_eq!(
        container(pod, "export-stdout")["image"],
        image(&values["exportStdout"]["image"])
    );
    let op = &get(&docs, "Deployment", OPERATOR)["spec"]["template"]["spec"];
    assert_eq!(
        container(op, "tetra-operator")["image"],
        image(&values["operator"]["image"])
    );

    let flags = configmap_flags(&docs);
    for (k, v) in values["agent"]["flags"].as_object().expect("agent.flags") {
        assert_eq!(flags.get(k).map(String::as_str), v.as_str(), "flag {k}");
    }
    let port = values["agent"]["metrics"]["port"].as_u64().expect("port");
    assert_eq!(flags["metrics-server"], format!("0.0.0.0:{port}"));
    assert_eq!(flags["procfs"], "/procRoot");
    // Tetragon's default export deny list, exactly.
    assert_eq!(
        flags["export-denylist"],
        "{\"health_check\":true}\n{\"namespace\":[\"\",\"cilium\",\"kube-system\"]}"
    );
    let line = agent_command_line(&docs);
    assert_eq!(line.last().map(String::as_str), Some("--enable-k8s-api"));
}

#[test]
fn export_filters_parse_with_the_agents_parser() {
    let flags = configmap_flags(&manifests());
    let allow = tetra_proto::filter::parse_filters(&flags["export-allowlist"]).expect("allowlist");
    let deny = tetra_proto::filter::parse_filters(&flags["export-denylist"]).expect("denylist");
    assert_eq!((allow.len(), deny.len()), (1, 2));
    tetra_proto::filter::EventFilters::new(&allow, &deny).expect("filters");
}

/// Runs `bin args... --help`: clap parses (and value-checks) every argument before it
/// acts on --help, so exit 0 means the whole command line is accepted.
fn accepts(bin: &std::path::Path, args: &[String]) -> Result<(), String> {
    let out = Command::new(bin)
        .args(args)
        .arg("--help")
        .output()
        .map_err(|e| format!("{bin:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn the_real_binaries_accept_the_rendered_flags() {
    let docs = manifests();
    let tetrad = tetra_tests::vm::cargo_build_binary("tetra-agent", "tetrad")
        .unwrap_or_else(|e| panic!("{e}"));
    let line = agent_command_line(&docs);
    assert!(line.iter().any(|a| a.starts_with("--enable-k8s-api")), "{line:?}");
    assert!(line.len() >= 10, "{line:?}");
    accepts(&tetrad, &line)
        .unwrap_or_else(|e| panic!("tetrad refuses the DaemonSet's flags {line:?}:\n{e}"));
    // The check can fail: an unknown flag or a bad value is refused.
    assert!(accepts(&tetrad, &["--no-such-flag=1".to_string()]).is_err());
    assert!(accepts(&tetrad, &["--export-file-perm=999".to_string()]).is_err());

    let operator = tetra_tests::vm::cargo_build_binary("tetra-operator", "tetra-operator")
        .unwrap_or_else(|e| panic!("{e}"));
    let op = &get(&docs, "Deployment", OPERATOR)["spec"]["template"]["spec"];
    let args: Vec<String> = container(op, "tetra-operator")["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string").to_string())
        .collect();
    accepts(&operator, &args).unwrap_or_else(|e| panic!("tetra-operator refuses {args:?}:\n{e}"));
    assert!(accepts(
        &operator,
        &["--leader-election-retry-period=soon".to_string()]
    )
    .is_err());
}

#[test]
fn pods_declare_their_api_token_instead_of_relying_on_automount() {
    let docs = manifests();
    let values = yaml_file("helm/tetra/values.yaml");
    let pods = [
        (&get(&docs, "DaemonSet", AGENT)["spec"]["template"]["spec"], "tetragon"),
        (&get(&docs, "Deployment", OPERATOR)["spec"]["template"]["spec"], "tetra-operator"),
    ];
    for (pod, name) in pods {
        assert_eq!(pod["automountServiceAccountToken"], false, "{name}");
        let volume = pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == "kube-api-access")
            .unwrap_or_else(|| panic!("{name}: no kube-api-access volume"));
        // Exactly what in-cluster clients read: token, ca.crt, namespace.
        assert_eq!(
            volume["projected"]["sources"],
            serde_json::json!([
                {"serviceAccountToken": {"path": "token", "expirationSeconds": values["serviceAccountToken"]["expirationSeconds"]}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
            ]),
            "{name}"
        );
        assert_eq!(volume["projected"]["defaultMode"], 0o644, "{name}");
        let mount = container(pod, name)["volumeMounts"]
            .as_array()
            .expect("volumeMounts")
            .iter()
            .find(|m| m["name"] == "kube-api-access")
            .unwrap_or_else(|| panic!("{name}: token not mounted"))
            .clone();
        assert_eq!(mount["mountPath"], "/var/run/secrets/kubernetes.io/serviceaccount", "{name}");
        assert_eq!(mount["readOnly"], true, "{name}");
    }
}
