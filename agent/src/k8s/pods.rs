//! This node's pods, from a watch restricted to `spec.nodeName=<node>`, indexed by the
//! container ids of their status so that a cgroup's container id finds its pod.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::{Api, Client};
use tetra_proto::tetragon;

/// What events need of one container of a pod.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerInfo {
    /// Runtime-prefixed id as in the pod status (`containerd://<hex>`).
    pub full_id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub started_at: Option<tetra_proto::timestamp::Timestamp>,
}

/// What events need of one pod.
#[derive(Clone, Debug, PartialEq)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub workload: String,
    pub workload_kind: String,
    pub containers: Vec<ContainerInfo>,
}

impl PodInfo {
    /// Tetragon's `Pod` message for `container` of this pod; `pid` is the process's pid in
    /// the container's pid namespace when known.
    pub fn to_proto(&self, container: &ContainerInfo, pid: Option<u32>) -> tetragon::Pod {
        tetragon::Pod {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            container: Some(tetragon::Container {
                id: container.full_id.clone(),
                name: container.name.clone(),
                image: Some(tetragon::Image {
                    id: container.image_id.clone(),
                    name: container.image.clone(),
                }),
                start_time: container.started_at,
                pid,
                ..Default::default()
            }),
            pod_labels: self.labels.clone().into_iter().collect(),
            workload: self.workload.clone(),
            workload_kind: self.workload_kind.clone(),
            ..Default::default()
        }
    }
}

/// The id without its `runtime://` prefix, as cgroup names carry it.
pub fn bare_id(full: &str) -> &str {
    full.split_once("://").map_or(full, |(_, id)| id)
}

/// The workload owning a pod, from its owner references: a ReplicaSet named
/// `<deployment>-<hash>` stands for its Deployment, a Job named `<cronjob>-<minutes>` for its
/// CronJob; a pod without a controller is its own workload (kind `Pod`).
pub fn workload(pod_name: &str, owners: &[(String, String)]) -> (String, String) {
    let Some((kind, name)) = owners.first() else {
        return (pod_name.to_string(), "Pod".to_string());
    };
    let strip_suffix = |name: &str, pred: fn(&str) -> bool| -> Option<String> {
        let (base, suffix) = name.rsplit_once('-')?;
        (!base.is_empty() && pred(suffix)).then(|| base.to_string())
    };
    match kind.as_str() {
        "ReplicaSet" => match strip_suffix(name, |s| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
        }) {
            Some(deployment) => (deployment, "Deployment".into()),
            None => (name.clone(), kind.clone()),
        },
        "Job" => match strip_suffix(name, |s| {
            s.len() >= 8 && s.bytes().all(|b| b.is_ascii_digit())
        }) {
            Some(cronjob) => (cronjob, "CronJob".into()),
            None => (name.clone(), kind.clone()),
        },
        _ => (name.clone(), kind.clone()),
    }
}

fn timestamp(
    t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> tetra_proto::timestamp::Timestamp {
    tetra_proto::timestamp::Timestamp {
        seconds: t.0.as_second(),
        nanos: t.0.subsec_nanosecond(),
    }
}

/// The parts of a Pod object events carry.
pub fn pod_info(pod: &Pod) -> PodInfo {
    let meta = &pod.metadata;
    let name = meta.name.clone().unwrap_or_default();
    let owners: Vec<(String, String)> = meta
        .owner_references
        .iter()
        .flatten()
        .filter(|o| o.controller == Some(true))
        .map(|o| (o.kind.clone(), o.name.clone()))
        .collect();
    let (workload, workload_kind) = workload(&name, &owners);
    let status = pod.status.as_ref();
    let statuses = status.into_iter().flat_map(|s| {
        let init = s.init_container_statuses.iter().flatten();
        let eph = s.ephemeral_container_statuses.iter().flatten();
        s.container_statuses.iter().flatten().chain(init).chain(eph)
    });
    let containers = statuses
        .filter_map(|c| {
            let full_id = c.container_id.clone()?;
            let started_at = c
                .state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.as_ref())
                .map(timestamp);
            Some(ContainerInfo {
                full_id,
                name: c.name.clone(),
                image: c.image.clone(),
                image_id: c.image_id.clone(),
                started_at,
            })
        })
        .collect();
    PodInfo {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name,
        uid: meta.uid.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        workload,
        workload_kind,
        containers,
    }
}

#[derive(Default)]
struct Index {
    /// Pods by uid.
    pods: HashMap<String, Arc<PodInfo>>,
    /// Bare container id -> pod uid.
    containers: HashMap<String, String>,
    /// Deleted pods, oldest first: their last processes (exits at termination) still name
    /// them for a while. Not part of [`PodStore::all`], so policies stop applying at once.
    deleted: std::collections::VecDeque<(Instant, Arc<PodInfo>)>,
}

/// How long, and how many, deleted pods are still found by container id.
const DELETED_KEEP: Duration = Duration::from_secs(60);
const DELETED_MAX: usize = 1024;

/// The pod cache, written by the watch task, read by the event thread and the policy scope.
#[derive(Default)]
pub struct PodStore {
    index: RwLock<Index>,
    /// Bumped on every change, so readers can tell when to recompute.
    generation: std::sync::atomic::AtomicU64,
}

impl PodStore {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn upsert(&self, pod: PodInfo) {
        let mut index = self.write();
        remove_pod(&mut index, &pod.uid);
        for c in &pod.containers {
            index
                .containers
                .insert(bare_id(&c.full_id).to_string(), pod.uid.clone());
        }
        index.pods.insert(pod.uid.clone(), Arc::new(pod));
    }

    pub fn remove(&self, uid: &str) {
        let mut index = self.write();
        if let Some(pod) = remove_pod(&mut index, uid) {
            let now = Instant::now();
            while index.deleted.len() >= DELETED_MAX
                || index
                    .deleted
                    .front()
                    .is_some_and(|(at, _)| now.duration_since(*at) > DELETED_KEEP)
            {
                index.deleted.pop_front();
            }
            index.deleted.push_back((now, pod));
        }
    }

    /// Replaces everything (a fresh list after the watch restarted).
    pub fn replace(&self, pods: Vec<PodInfo>) {
        *self.write() = Index::default();
        for pod in pods {
            self.upsert(pod);
        }
    }

    /// The pod holding container `id` (bare) and that container's index in it.
    pub fn by_container(&self, id: &str) -> Option<(Arc<PodInfo>, usize)> {
        let index = self.read();
        let position = |pod: &PodInfo| {
            pod.containers
                .iter()
                .position(|c| bare_id(&c.full_id) == id)
        };
        if let Some(pod) = index.containers.get(id).and_then(|uid| index.pods.get(uid)) {
            return Some((pod.clone(), position(pod)?));
        }
        let (at, pod, i) = index
            .deleted
            .iter()
            .rev()
            .find_map(|(at, pod)| Some((at, pod, position(pod)?)))?;
        (at.elapsed() <= DELETED_KEEP).then(|| (pod.clone(), i))
    }

    /// Every pod, for the policy scope.
    pub fn all(&self) -> Vec<Arc<PodInfo>> {
        self.read().pods.values().cloned().collect()
    }
}

fn remove_pod(index: &mut Index, uid: &str) -> Option<Arc<PodInfo>> {
    let old = index.pods.remove(uid)?;
    for c in &old.containers {
        index.containers.remove(bare_id(&c.full_id));
    }
    Some(old)
}

/// Keeps `store` in step with this node's pods until the task is dropped.
pub async fn watch(client: Client, node: String, store: Arc<PodStore>) {
    let api: Api<Pod> = Api::all(client);
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut listing: Vec<PodInfo> = Vec::new();
    let mut stream = watcher(api, config).boxed();
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(pod)) => store.upsert(pod_info(&pod)),
            Ok(watcher::Event::Delete(pod)) => {
                store.remove(pod.metadata.uid.as_deref().unwrap_or_default())
            }
            Ok(watcher::Event::Init) => listing.clear(),
            Ok(watcher::Event::InitApply(pod)) => listing.push(pod_info(&pod)),
            Ok(watcher::Event::InitDone) => {
                tracing::info!("pods of node {node}: {} listed", listing.len());
                store.replace(std::mem::take(&mut listing));
            }
            Err(e) => {
                tracing::warn!("pod watch of node {node}: {e}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(kind: &str, name: &str) -> Vec<(String, String)> {
        vec![(kind.to_string(), name.to_string())]
    }

    #[test]
    fn workload_from_owner_references() {
        assert_eq!(workload("xwing", &[]), ("xwing".into(), "Pod".into()));
        assert_eq!(
            workload("p", &owner("ReplicaSet", "deathstar-bf77cddc9")),
            ("deathstar".into(), "Deployment".into())
        );
        assert_eq!(
            workload("p", &owner("DaemonSet", "tetragon")),
            ("tetragon".into(), "DaemonSet".into())
        );
        assert_eq!(
            workload("p", &owner("StatefulSet", "db")),
            ("db".into(), "StatefulSet".into())
        );
        assert_eq!(
            workload("p", &owner("Job", "migrate")),
            ("migrate".into(), "Job".into())
        );
        assert_eq!(
            workload("p", &owner("Job", "backup-29373440")),
            ("backup".into(), "CronJob".into())
        );
    }

    #[test]
    fn pod_object_to_info() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-7d4b9c-abcde", "namespace": "shop", "uid": "u-1",
                "labels": {"app": "web"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c", "uid": "rs", "controller": true}]},
            "spec": {"containers": [{"name": "main"}]},
            "status": {"containerStatuses": [{"name": "main", "image": "nginx:1", "imageID": "docker.io/nginx@sha256:ab",
                "containerID": "containerd://abc", "ready": true, "restartCount": 0,
                "state": {"running": {"startedAt": "2024-10-26T16:02:01Z"}}}]}
        }))
        .unwrap();
        let info = pod_info(&pod);
        assert_eq!(
            (info.workload.as_str(), info.workload_kind.as_str()),
            ("web", "Deployment")
        );
        let c = &info.containers[0];
        assert_eq!(
            (
                c.full_id.as_str(),
                c.name.as_str(),
                c.image.as_str(),
                c.image_id.as_str()
            ),
            (
                "containerd://abc",
                "main",
                "nginx:1",
                "docker.io/nginx@sha256:ab"
            )
        );
        assert_eq!(c.started_at.map(|t| t.seconds), Some(1729958521));
        let store = PodStore::default();
        store.upsert(info);
        assert_eq!(
            store.by_container("abc").map(|(p, i)| (p.name.clone(), i)),
            Some(("web-7d4b9c-abcde".into(), 0))
        );
        store.remove("u-1");
        assert!(
            store.all().is_empty(),
            "policies stop applying to a deleted pod"
        );
        let (pod, _) = store
            .by_container("abc")
            .expect("its last events still name it");
        assert_eq!(pod.name, "web-7d4b9c-abcde");
        assert!(store.by_container("abd").is_none());
    }
}
