//! Container and pod enrichment on the event thread: the process's cgroup id -> container
//! id ([`super::cgroup`]) -> `process.docker`, always, as Tetragon fills it from the cgroup
//! name whatever the runtime; and with `--enable-k8s-api`, container id -> pod
//! ([`super::pods`]) -> `process.pod`.
//!
//! An event of a container whose pod is not known yet (the watch lags behind the kernel)
//! is held, in arrival order, until the pod arrives or `hold_for` passes; then it leaves
//! enriched, or bare and counted. Later events of a container with held events wait behind
//! them, so a container's events keep their order. Holding never blocks: beyond `max_held`
//! events leave bare at once, and are counted.
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tetra_proto::tetragon;

use super::cgroup::CgroupIndex;
use super::pods::PodStore;
use crate::events::published::{processes_mut, Published};
use crate::stats::Stats;

/// `process.docker`: the first 31 characters of the container id, as Tetragon exports it.
const DOCKER_ID_LEN: usize = 31;
/// Container pids remembered at most (forgotten all at once beyond).
const MAX_NS_PIDS: usize = 65536;

/// Whose process an event describes: its cgroup id, host pid and start (which, with the
/// pid, names one process image).
#[derive(Clone, Copy, Debug, Default)]
pub struct Subject {
    pub cgroup_id: u64,
    pub pid: u32,
    pub start_ktime: u64,
}

struct Held {
    event: Arc<Published>,
    subjects: [Option<Subject>; 2],
    container: String,
    since: Instant,
}

pub struct Enricher {
    cgroups: CgroupIndex,
    /// This node's pods (`--enable-k8s-api`); without them only `process.docker` is filled.
    pods: Option<Arc<PodStore>>,
    procfs: std::path::PathBuf,
    held: VecDeque<Held>,
    held_per_container: HashMap<String, usize>,
    /// Container pids read from /proc while the process lived, for its later events.
    ns_pids: HashMap<(u32, u64), u32>,
    pub hold_for: Duration,
    pub max_held: usize,
    stats: Arc<Stats>,
}

enum Fill {
    /// Not a container, or enriched.
    Done,
    /// A container whose pod is not known (yet).
    Missing(String),
}

/// The pid of `pid` in its innermost pid namespace (last `NSpid` of /proc/PID/status).
fn namespace_pid(procfs: &std::path::Path, pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(procfs.join(pid.to_string()).join("status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

impl Enricher {
    pub fn new(
        cgroups: CgroupIndex,
        pods: Option<Arc<PodStore>>,
        procfs: &std::path::Path,
        stats: Arc<Stats>,
    ) -> Self {
        Enricher {
            cgroups,
            pods,
            procfs: procfs.to_path_buf(),
            held: VecDeque::new(),
            held_per_container: HashMap::new(),
            ns_pids: HashMap::new(),
            hold_for: Duration::from_secs(5),
            max_held: 16384,
            stats,
        }
    }

    fn fill(&mut self, process: &mut tetragon::Process, subject: Subject) -> Fill {
        let Some(container) = self.cgroups.container(subject.cgroup_id) else {
            return Fill::Done;
        };
        let id = container.id.clone();
        process.docker = id.chars().take(DOCKER_ID_LEN).collect();
        let Some(pods) = self.pods.clone() else {
            return Fill::Done;
        };
        // Read now, while the process most likely lives, even if its event is held.
        let pid = self.namespace_pid(subject);
        let Some((pod, i)) = pods.by_container(&id) else {
            return Fill::Missing(id);
        };
        process.pod = Some(pod.to_proto(&pod.containers[i], pid));
        Fill::Done
    }

    fn namespace_pid(&mut self, s: Subject) -> Option<u32> {
        let key = (s.pid, s.start_ktime);
        if let Some(pid) = self.ns_pids.get(&key) {
            return Some(*pid);
        }
        let pid = namespace_pid(&self.procfs, s.pid)?;
        if self.ns_pids.len() >= MAX_NS_PIDS {
            self.ns_pids.clear();
        }
        self.ns_pids.insert(key, pid);
        Some(pid)
    }

    /// Fills process and parent; returns the process's container when its pod is missing.
    /// Only an event with a process in a container is changed (copied when shared, its
    /// renderings forgotten).
    fn try_fill(
        &mut self,
        event: &mut Arc<Published>,
        subjects: &[Option<Subject>; 2],
    ) -> Option<String> {
        let in_container = |s: &Subject| self.cgroups.container(s.cgroup_id).is_some();
        if !subjects.iter().flatten().any(in_container) {
            return None;
        }
        let mut missing = None;
        let event = Arc::make_mut(event).event_mut();
        let slots = processes_mut(event).map(|(_, slots)| slots);
        for (i, process) in slots.into_iter().flatten().enumerate() {
            if let (Some(process), Some(subject)) = (process.as_mut(), subjects[i]) {
                if let (Fill::Missing(id), 0) = (self.fill(process, subject), i) {
                    missing = Some(id);
                }
            }
        }
        missing
    }

    /// Enriches `event`; returns it, or nothing when it is held. `out` also receives held
    /// events that became ready.
    pub fn submit(
        &mut self,
        mut event: Arc<Published>,
        subjects: [Option<Subject>; 2],
        out: &mut Vec<Arc<Published>>,
    ) {
        // The event is not shared yet: filled in place, not copied.
        let container = self.try_fill(&mut event, &subjects);
        let waiting = subjects[0]
            .and_then(|s| self.cgroups.container(s.cgroup_id))
            .is_some_and(|c| self.held_per_container.contains_key(&c.id));
        match container {
            None if !waiting => out.push(event),
            _ if self.held.len() >= self.max_held => {
                self.stats.pod_unenriched.fetch_add(1, Relaxed);
                out.push(event);
            }
            _ => {
                let container = match container {
                    Some(c) => c,
                    None => subjects[0]
                        .and_then(|s| self.cgroups.container(s.cgroup_id))
                        .map(|c| c.id.clone())
                        .unwrap_or_default(),
                };
                self.stats.pod_held.fetch_add(1, Relaxed);
                *self
                    .held_per_container
                    .entry(container.clone())
                    .or_default() += 1;
                self.held.push_back(Held {
                    event,
                    subjects,
                    container,
                    since: Instant::now(),
                });
            }
        }
    }

    /// Releases held events whose pod is now known or whose time is up (`flush`: all).
    pub fn release(&mut self, now: Instant, flush: bool, out: &mut Vec<Arc<Published>>) {
        let mut keep = VecDeque::with_capacity(self.held.len());
        while let Some(mut h) = self.held.pop_front() {
            // Events of a container whose earlier event stays held stay behind it.
            let blocked = keep.iter().any(|k: &Held| k.container == h.container);
            let expired = flush || now.duration_since(h.since) >= self.hold_for;
            if blocked && !expired {
                keep.push_back(h);
                continue;
            }
            let missing = self
                .try_fill(&mut h.event, &h.subjects)
                .is_some();
            if missing && !expired {
                keep.push_back(h);
                continue;
            }
            if missing {
                self.stats.pod_unenriched.fetch_add(1, Relaxed);
            }
            if let Some(n) = self.held_per_container.get_mut(&h.container) {
                *n -= 1;
                if *n == 0 {
                    self.held_per_container.remove(&h.container);
                }
            }
            out.push(h.event);
        }
        self.held = keep;
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::k8s::pods::{ContainerInfo, PodInfo};
    use tetra_proto::tetragon::{get_events_response::Event, GetEventsResponse};

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn exec(pid: u32) -> Arc<Published> {
        Arc::new(Published::from(GetEventsResponse {
            event: Some(Event::ProcessExec(tetragon::ProcessExec {
                process: Some(tetragon::Process {
                    pid: Some(pid),
                    ..Default::default()
                }),
                ..Default::default()
            })),
            ..Default::default()
        }))
    }

    fn process_of(e: &Published) -> tetragon::Process {
        let Some(Event::ProcessExec(x)) = e.event().into_owned().event else {
            panic!()
        };
        x.process.unwrap()
    }

    fn pid_of(e: &Published) -> u32 {
        process_of(e).pid.unwrap()
    }

    fn pod_of(e: &Published) -> Option<tetragon::Pod> {
        process_of(e).pod
    }

    /// A cgroup tree in a temporary directory: directory inodes stand for cgroup ids.
    fn setup() -> (tempfile::TempDir, u64, Enricher, Arc<PodStore>, Arc<Stats>) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(format!(
            "kubepods.slice/kubepods-pod1111.slice/cri-containerd-{ID}.scope"
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let cgroup_id = std::fs::metadata(&dir).unwrap().ino();
        let pods = Arc::new(PodStore::default());
        let stats = Arc::new(Stats::default());
        let e = Enricher::new(
            CgroupIndex::new(root.path()),
            Some(pods.clone()),
            Path::new("/nonexistent"),
            stats.clone(),
        );
        (root, cgroup_id, e, pods, stats)
    }

    fn pod() -> PodInfo {
        PodInfo {
            namespace: "ns".into(),
            name: "p".into(),
            uid: "1111".into(),
            labels: Default::default(),
            workload: "p".into(),
            workload_kind: "Pod".into(),
            containers: vec![ContainerInfo {
                full_id: format!("containerd://{ID}"),
                name: "c".into(),
                image: "img".into(),
                image_id: "img@sha256:1".into(),
                started_at: None,
            }],
        }
    }

    use std::path::Path;

    #[test]
    fn held_in_order_until_the_pod_arrives() {
        let (_root, cg, mut e, pods, stats) = setup();
        let s = |pid| {
            [
                Some(Subject {
                    cgroup_id: cg,
                    pid,
                    start_ktime: 1,
                }),
                None,
            ]
        };
        let host = [
            Some(Subject {
                cgroup_id: 1,
                pid: 9,
                start_ktime: 1,
            }),
            None,
        ];
        let mut out = Vec::new();
        e.submit(exec(1), s(1), &mut out);
        e.submit(exec(9), host, &mut out);
        e.submit(exec(2), s(2), &mut out);
        assert_eq!(
            out.iter().map(|e| pid_of(e)).collect::<Vec<_>>(),
            [9],
            "only the host process leaves"
        );
        assert_eq!(e.held(), 2);
        e.release(Instant::now(), false, &mut out);
        assert_eq!(out.len(), 1, "still no pod");
        pods.upsert(pod());
        e.release(Instant::now(), false, &mut out);
        assert_eq!(out.iter().map(|e| pid_of(e)).collect::<Vec<_>>(), [9, 1, 2]);
        let p = pod_of(&out[1]).unwrap();
        assert_eq!(
            (p.name.as_str(), p.container.as_ref().unwrap().name.as_str()),
            ("p", "c")
        );
        assert_eq!(process_of(&out[2]).docker, ID[..31]);
        assert_eq!(
            (
                stats.pod_held.load(Relaxed),
                stats.pod_unenriched.load(Relaxed)
            ),
            (2, 0)
        );
    }

    #[test]
    fn container_id_without_kubernetes() {
        let (root, cg, _, _, stats) = setup();
        let mut e = Enricher::new(
            CgroupIndex::new(root.path()),
            None,
            Path::new("/nonexistent"),
            stats.clone(),
        );
        let mut out = Vec::new();
        let s = |cgroup_id| [Some(Subject { cgroup_id, pid: 1, start_ktime: 1 }), None];
        e.submit(exec(1), s(cg), &mut out);
        e.submit(exec(2), s(1), &mut out);
        assert_eq!(out.iter().map(|e| pid_of(e)).collect::<Vec<_>>(), [1, 2], "nothing held");
        assert_eq!(process_of(&out[0]).docker, ID[..31]);
        assert_eq!(process_of(&out[1]).docker, "", "a host process");
        assert!(pod_of(&out[0]).is_none());
        assert_eq!(stats.pod_held.load(Relaxed), 0);
    }

    #[test]
    fn timeout_and_overflow_leave_bare_and_counted() {
        let (_root, cg, mut e, _pods, stats) = setup();
        e.max_held = 1;
        let s = [
            Some(Subject {
                cgroup_id: cg,
                pid: 1,
                start_ktime: 1,
            }),
            None,
        ];
        let mut out = Vec::new();
        e.submit(exec(1), s, &mut out);
        e.submit(exec(2), s, &mut out);
        assert_eq!(
            out.iter().map(|e| pid_of(e)).collect::<Vec<_>>(),
            [2],
            "the queue is full: sent bare"
        );
        e.release(Instant::now() + e.hold_for, false, &mut out);
        assert_eq!(out.iter().map(|e| pid_of(e)).collect::<Vec<_>>(), [2, 1]);
        assert!(out.iter().all(|o| pod_of(o).is_none()));
        assert_eq!(
            (
                stats.pod_held.load(Relaxed),
                stats.pod_unenriched.load(Relaxed)
            ),
            (1, 2)
        );
        assert_eq!(e.held(), 0);
    }
}
