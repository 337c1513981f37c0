//! The TracingPolicy / TracingPolicyNamespaced controller: watches the objects and keeps the
//! registry's `k8s` domain equal to them. A new or changed spec loads (or replaces) the
//! policy; a change of status or metadata only (same spec) touches nothing; a deleted object
//! unloads it. A policy that fails is listed with its error and reported as a Warning Event
//! on its object. Objects are read untyped, so one malformed object cannot stop the watch of
//! the others: its errors come from the same validator as every other policy's.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tetra_crds::types::LabelSelector;
use tetra_crds::{TracingPolicy, TracingPolicyNamespaced};
use tetra_proto::tetragon::TracingPolicyState;

use super::selector;
use crate::policies::{PolicyRegistry, RegistryError, K8S_DOMAIN};

/// Which of the two kinds a watch covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Cluster,
    Namespaced,
}

impl Kind {
    fn resource(self) -> ApiResource {
        match self {
            Kind::Cluster => ApiResource::erase::<TracingPolicy>(&()),
            Kind::Namespaced => ApiResource::erase::<TracingPolicyNamespaced>(&()),
        }
    }
}

/// What the controller needs besides the objects.
pub struct Context {
    pub registry: Arc<Mutex<PolicyRegistry>>,
    pub node: String,
    /// This node's labels, kept current by the node watch.
    pub node_labels: tokio::sync::watch::Receiver<BTreeMap<String, String>>,
    pub recorder: Recorder,
}

/// What the controller decided for one object version.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Loaded,
    Unchanged,
    Skipped(String),
    Failed(String),
}

/// The object as a policy document for the registry (JSON is YAML).
fn document(kind: Kind, obj: &DynamicObject) -> String {
    let resource = kind.resource();
    let mut metadata = serde_json::json!({ "name": obj.name_any() });
    if let Some(ns) = obj.namespace() {
        metadata["namespace"] = ns.into();
    }
    serde_json::json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": metadata,
        "spec": obj.data.get("spec").cloned().unwrap_or(serde_json::Value::Null),
    })
    .to_string()
}

fn reference(kind: Kind, obj: &DynamicObject) -> ObjectReference {
    let resource = kind.resource();
    ObjectReference {
        api_version: Some(resource.api_version),
        kind: Some(resource.kind),
        name: Some(obj.name_any()),
        namespace: obj.namespace(),
        uid: obj.uid(),
        resource_version: obj.resource_version(),
        ..Default::default()
    }
}

/// The controller's state for one kind: the spec last acted upon, per object.
pub struct Controller {
    kind: Kind,
    ctx: Arc<Context>,
    specs: HashMap<(String, String), String>,
    /// The objects with a nodeSelector, to decide again when the node's labels change.
    node_selected: HashMap<(String, String), DynamicObject>,
}

impl Controller {
    pub fn new(kind: Kind, ctx: Arc<Context>) -> Self {
        Controller {
            kind,
            ctx,
            specs: HashMap::new(),
            node_selected: HashMap::new(),
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, PolicyRegistry> {
        self.ctx.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads, replaces or keeps the policy of `obj`.
    pub fn apply(&mut self, obj: &DynamicObject) -> Outcome {
        let key = (obj.name_any(), obj.namespace().unwrap_or_default());
        let spec = obj
            .data
            .get("spec")
            .map(|s| s.to_string())
            .unwrap_or_default();
        if self.specs.get(&key) == Some(&spec) {
            return Outcome::Unchanged;
        }
        self.specs.insert(key.clone(), spec);
        let (name, namespace) = (&key.0, &key.1);
        let node_selector = obj.data.get("spec").and_then(|s| s.get("nodeSelector"));
        self.node_selected.remove(&key);
        if let Some(sel) = node_selector.filter(|s| !s.is_null()) {
            self.node_selected.insert(key.clone(), obj.clone());
            let labels = self.ctx.node_labels.borrow().clone();
            let matched = serde_json::from_value::<LabelSelector>(sel.clone())
                .map(|sel| selector::matches(&sel, &labels));
            match matched {
                Ok(true) => {}
                Ok(false) => {
                    let reason =
                        format!("spec.nodeSelector does not select node {}", self.ctx.node);
                    tracing::info!("tracing policy {name}: {reason}");
                    self.registry().put_state(
                        name,
                        namespace,
                        K8S_DOMAIN,
                        TracingPolicyState::TpStateSkipped,
                        reason.clone(),
                    );
                    return Outcome::Skipped(reason);
                }
                Err(e) => {
                    let reason = format!("spec.nodeSelector: {e}");
                    self.registry().put_state(
                        name,
                        namespace,
                        K8S_DOMAIN,
                        TracingPolicyState::TpStateError,
                        reason.clone(),
                    );
                    return Outcome::Failed(reason);
                }
            }
        }
        let doc = document(self.kind, obj);
        // Loading attaches BPF programs: keep it off the async workers' hot path.
        let result = tokio::task::block_in_place(|| {
            self.registry().replace(name, namespace, K8S_DOMAIN, &doc)
        });
        match result {
            Ok(_) => Outcome::Loaded,
            Err(e) => {
                let reason = match e {
                    RegistryError::Invalid(errors) => {
                        format!("invalid tracing policy: {}", errors.join("; "))
                    }
                    e => e.to_string(),
                };
                tracing::error!("tracing policy {name} from Kubernetes: {reason}");
                Outcome::Failed(reason)
            }
        }
    }

    pub fn delete(&mut self, name: &str, namespace: &str) {
        let key = (name.to_string(), namespace.to_string());
        self.specs.remove(&key);
        self.node_selected.remove(&key);
        let deleted =
            tokio::task::block_in_place(|| self.registry().delete(name, namespace, K8S_DOMAIN));
        if deleted.is_ok() {
            tracing::info!("tracing policy {name} unloaded: its Kubernetes object was deleted");
        }
    }

    /// After a fresh list: unloads the policies of this kind whose object is gone.
    fn forget_missing(&mut self, listed: &HashSet<(String, String)>) {
        let namespaced = self.kind == Kind::Namespaced;
        let gone: Vec<(String, String)> = self
            .registry()
            .names(K8S_DOMAIN)
            .into_iter()
            .filter(|key| key.1.is_empty() != namespaced && !listed.contains(key))
            .collect();
        for (name, ns) in gone {
            self.delete(&name, &ns);
        }
    }

    /// Decides again on every object with a nodeSelector (loading or skipping it).
    async fn node_labels_changed(&mut self) {
        let objects: Vec<DynamicObject> = self.node_selected.values().cloned().collect();
        for obj in objects {
            self.specs
                .remove(&(obj.name_any(), obj.namespace().unwrap_or_default()));
            let outcome = self.apply(&obj);
            self.report(&obj, &outcome).await;
        }
    }

    async fn report(&self, obj: &DynamicObject, outcome: &Outcome) {
        let (reason, note) = match outcome {
            Outcome::Failed(note) => ("PolicyLoadFailed", note),
            _ => return,
        };
        let note: String = note.chars().take(1000).collect();
        let event = Event {
            type_: EventType::Warning,
            reason: reason.into(),
            note: Some(note),
            action: "Load".into(),
            secondary: None,
        };
        if let Err(e) = self
            .ctx
            .recorder
            .publish(&event, &reference(self.kind, obj))
            .await
        {
            tracing::warn!(
                "posting an Event for tracing policy {}: {e}",
                obj.name_any()
            );
        }
    }

    /// Runs the watch of this kind until the task is dropped.
    pub async fn run(mut self, client: Client) {
        let api: Api<DynamicObject> = Api::all_with(client, &self.kind.resource());
        let mut stream = watcher(api, watcher::Config::default()).boxed();
        let mut listed = HashSet::new();
        let mut labels = self.ctx.node_labels.clone();
        loop {
            let event = tokio::select! {
                event = stream.next() => event,
                changed = labels.changed() => {
                    if changed.is_ok() {
                        self.node_labels_changed().await;
                    }
                    continue;
                }
            };
            let Some(event) = event else { break };
            match event {
                Ok(watcher::Event::Apply(obj)) | Ok(watcher::Event::InitApply(obj)) => {
                    listed.insert((obj.name_any(), obj.namespace().unwrap_or_default()));
                    let outcome = self.apply(&obj);
                    self.report(&obj, &outcome).await;
                }
                Ok(watcher::Event::Delete(obj)) => {
                    self.delete(&obj.name_any(), &obj.namespace().unwrap_or_default())
                }
                Ok(watcher::Event::Init) => listed.clear(),
                Ok(watcher::Event::InitDone) => self.forget_missing(&listed),
                Err(e) => {
                    tracing::warn!("{:?} tracing policy watch: {e}", self.kind);
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// The Event reporter of this agent.
pub fn recorder(client: Client, node: &str) -> Recorder {
    Recorder::new(
        client,
        Reporter {
            controller: "tetragon".into(),
            instance: Some(node.to_string()),
        },
    )
}
