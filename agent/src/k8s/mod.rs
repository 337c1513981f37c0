//! Kubernetes (`--enable-k8s-api`): the TracingPolicy controller ([`policies`]), the watch of
//! this node's pods ([`pods`]), the cgroup -> container mapping ([`cgroup`]) that enriches
//! events on the event thread ([`enrich`]), and the kernel-side scope of pod-scoped
//! policies ([`scope`]).
pub mod cgroup;
pub mod enrich;
pub mod pods;
pub mod policies;
pub mod scope;
pub mod selector;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Api, Client, Config};

use crate::policies::PolicyRegistry;
use pods::PodStore;

/// A client from `kubeconfig`, else from the environment (in-cluster service account, then
/// $KUBECONFIG or ~/.kube/config).
pub async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("--k8s-kubeconfig-path {}", path.display()))?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("--k8s-kubeconfig-path {}", path.display()))?
        }
        None => Config::infer()
            .await
            .context("no Kubernetes configuration (in-cluster or KUBECONFIG)")?,
    };
    Client::try_from(config).context("creating the Kubernetes client")
}

/// The running Kubernetes side; dropping it stops the watches.
pub struct K8s {
    pub pods: Arc<PodStore>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop_scope: Arc<AtomicBool>,
    scope_thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for K8s {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
        self.stop_scope.store(true, Relaxed);
        if let Some(t) = self.scope_thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the pod watch, both policy controllers and the scope updater.
pub fn start(
    rt: &tokio::runtime::Runtime,
    client: Client,
    node: &str,
    registry: Arc<Mutex<PolicyRegistry>>,
    cgroup_root: PathBuf,
) -> anyhow::Result<K8s> {
    let nodes: Api<Node> = Api::all(client.clone());
    // Read once before the policies, so a nodeSelector is not first decided on no labels.
    // Bounded: an unreachable API server must not hold up the agent's start; the node
    // watch brings the labels later and nodeSelectors are decided again then.
    let read = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), nodes.get_opt(node)).await
    });
    let node_labels = match read {
        Ok(Ok(Some(n))) => n.metadata.labels.unwrap_or_default(),
        Ok(Ok(None)) => {
            tracing::warn!("node {node} not found in the API: nodeSelector sees no labels");
            Default::default()
        }
        Ok(Err(e)) => {
            tracing::warn!("reading node {node}: {e}: nodeSelector sees no labels for now");
            Default::default()
        }
        Err(_) => {
            tracing::warn!("reading node {node}: no answer in 5 s: nodeSelector sees no labels for now");
            Default::default()
        }
    };
    let pods = Arc::new(PodStore::default());
    let (labels_tx, labels_rx) = tokio::sync::watch::channel(node_labels);
    let ctx = Arc::new(policies::Context {
        registry: registry.clone(),
        node: node.to_string(),
        node_labels: labels_rx,
        recorder: policies::recorder(client.clone(), node),
    });
    let mut tasks = vec![
        rt.spawn(pods::watch(client.clone(), node.to_string(), pods.clone())),
        rt.spawn(watch_node_labels(nodes, node.to_string(), labels_tx)),
    ];
    for kind in [policies::Kind::Cluster, policies::Kind::Namespaced] {
        tasks.push(rt.spawn(policies::Controller::new(kind, ctx.clone()).run(client.clone())));
    }
    let stop_scope = Arc::new(AtomicBool::new(false));
    let scope_thread = {
        let (stop, pods) = (stop_scope.clone(), pods.clone());
        std::thread::Builder::new()
            .name("tetrad-scope".into())
            .spawn(move || keep_scopes(&registry, &pods, &cgroup_root, &stop))
            .context("starting the policy scope thread")?
    };
    tracing::info!("Kubernetes API enabled: watching pods of node {node} and tracing policies");
    Ok(K8s {
        pods,
        tasks,
        stop_scope,
        scope_thread: Some(scope_thread),
    })
}

/// Keeps `labels` equal to this node's labels (for nodeSelector).
async fn watch_node_labels(
    nodes: Api<Node>,
    node: String,
    labels: tokio::sync::watch::Sender<BTreeMap<String, String>>,
) {
    let config = watcher::Config::default().fields(&format!("metadata.name={node}"));
    let mut stream = watcher(nodes, config).boxed();
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n)) => {
                let now = n.metadata.labels.unwrap_or_default();
                labels.send_if_modified(|old| {
                    let changed = *old != now;
                    if changed {
                        tracing::info!("labels of node {node} changed: deciding nodeSelectors again");
                        *old = now;
                    }
                    changed
                });
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("watch of node {node}: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Refills the scoped policies' cgroup maps when pods or policies change, and every
/// couple of seconds for containers whose cgroup appeared after their pod.
fn keep_scopes(registry: &Mutex<PolicyRegistry>, pods: &PodStore, root: &Path, stop: &AtomicBool) {
    let mut last = (u64::MAX, Vec::new());
    let mut last_sync = Instant::now();
    while !stop.load(Relaxed) {
        let scopes = registry.lock().unwrap_or_else(|e| e.into_inner()).scopes();
        let now = (
            pods.generation(),
            scopes
                .iter()
                .map(|s| Arc::as_ptr(s) as usize)
                .collect::<Vec<_>>(),
        );
        if now != last || last_sync.elapsed() >= Duration::from_secs(2) {
            scope::sync(&scopes, pods, root);
            last = now;
            last_sync = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
