//! `--enable-k8s-api` against a real cluster, run whenever $KUBECONFIG is set (skipped with
//! the reason otherwise): installs the CRDs (server-side apply), applies a TracingPolicy,
//! sees it loaded by the agent, sees its hit, and — when this host is the node $NODE_NAME
//! and runs pods — sees events enriched with pod information. Cleans up what it applied.
mod common;
mod rpc;

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use tetra_proto::tetragon::{ListTracingPoliciesRequest, TracingPolicyState};

use common::{kind, marker, Agent};

const CRDS: [&str; 2] =
    [include_str!("../../crds/yaml/cilium.io_tracingpolicies.yaml"), include_str!("../../crds/yaml/cilium.io_tracingpoliciesnamespaced.yaml")];

#[test]
#[ignore = "needs root and a cluster: runs only when KUBECONFIG is set (the README test command runs it)"]
fn real_cluster_policy_loads_and_events_are_enriched() {
    let Some(kubeconfig) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) else {
        eprintln!("real-cluster suite skipped: KUBECONFIG is not set (point it at a cluster to run it)");
        return;
    };
    let kubeconfig = std::path::PathBuf::from(kubeconfig);
    let rt = rpc::runtime();
    let client: Client = rt.block_on(tetra_agent::k8s::client(Some(&kubeconfig))).expect("cluster client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let apply = PatchParams::apply("tetra-tests").force();
    for text in CRDS {
        let crd: CustomResourceDefinition = serde_yaml_ng::from_str(text).unwrap();
        let name = crd.metadata.name.clone().unwrap();
        rt.block_on(crds.patch(&name, &apply, &Patch::Apply(&crd))).unwrap_or_else(|e| panic!("installing CRD {name}: {e}"));
    }
    std::thread::sleep(Duration::from_secs(2)); // the API server starts serving new CRDs

    let node = std::env::var("NODE_NAME").unwrap_or_else(|_| tetra_agent::sys::node_name());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(marker("cluster"));
    std::fs::write(&file, "x\n").unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(&[
        "--enable-k8s-api",
        &format!("--k8s-kubeconfig-path={}", kubeconfig.display()),
        &format!("--node-name={node}"),
        "--server-address=127.0.0.1:0",
        &format!("--run-dir={}", run_dir.path().display()),
    ]);
    let address = rpc::info(run_dir.path(), "server_address");

    let name = format!("tetra-e2e-{}", std::process::id());
    let resource = kube::api::ApiResource::erase::<tetra_crds::TracingPolicy>(&());
    let policies: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let policy: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cilium.io/v1alpha1", "kind": "TracingPolicy", "metadata": {"name": name},
        "spec": {"tracepoints": [{"subsystem": "syscalls", "event": "sys_enter_openat",
            "args": [{"index": 6, "type": "string"}],
            "selectors": [{"matchArgs": [{"index": 0, "operator": "Postfix", "values": [file.file_name().unwrap().to_str().unwrap()]}]}]}]}
    }))
    .unwrap();
    rt.block_on(policies.patch(&name, &apply, &Patch::Apply(&policy))).expect("applying the policy");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = rt.block_on(async {
            let mut c = rpc::connect(&address).await;
            c.list_tracing_policies(ListTracingPoliciesRequest::default()).await.unwrap().into_inner().policies
        });
        if list.iter().any(|p| p.name == name && p.state == TracingPolicyState::TpStateEnabled as i32) {
            break;
        }
        assert!(Instant::now() < deadline, "policy {name} not loaded: {list:#?}\n{}", agent.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(std::process::Command::new("/bin/cat").arg(&file).output().unwrap().status.success());
    agent.wait_for("the policy's hit", |e| kind(e).0 == "process_tracepoint" && kind(e).1["policy_name"] == name.as_str());
    rt.block_on(policies.delete(&name, &DeleteParams::default())).expect("deleting the policy");

    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::all(client);
    let ours = rt
        .block_on(pods.list(&kube::api::ListParams::default().fields(&format!("spec.nodeName={node}"))))
        .map(|l| l.items.len())
        .unwrap_or(0);
    if ours == 0 {
        eprintln!("enrichment check skipped: no pods of node {node:?} here (set NODE_NAME to this host's node)");
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !agent.events().iter().any(|e| kind(e).1["process"]["pod"]["name"].is_string()) {
        assert!(Instant::now() < deadline, "no event with pod information in 60 s on node {node}");
        std::thread::sleep(Duration::from_millis(500));
    }
}
