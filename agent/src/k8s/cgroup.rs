//! cgroup -> container: the kernel gives each event the id of the task's cgroup (cgroup v2:
//! the inode number of its directory). The directory's path names the container the way the
//! container runtime and the kubelet's cgroup driver named it; this module reads that name.
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where the unified (v2) cgroup hierarchy is mounted, whose ids the kernel reports:
/// `/sys/fs/cgroup` on a v2 host, `/sys/fs/cgroup/unified` on a hybrid v1 host.
pub fn unified_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    unified_root_in(&mounts).unwrap_or_else(|| "/sys/fs/cgroup".into())
}

/// The unified hierarchy's mount point in a mount table (`/proc/self/mounts` format): the
/// last cgroup2 mount, since a later mount hides an earlier one at the same place (in a
/// pod, the host's `/sys/fs/cgroup` mounted over the runtime's own).
pub fn unified_root_in(mounts: &str) -> Option<PathBuf> {
    mounts
        .lines()
        .rev()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "cgroup2")
        .map(|f| f[1].into())
}

/// Why `root` cannot serve as the unified hierarchy, if it cannot: the ids the kernel
/// reports are inodes of a cgroup2 file system, so a v1 hierarchy or the tmpfs holding the
/// v1 hierarchies of a hybrid host would name no container, or the wrong one.
pub fn check_unified_root(root: &Path) -> Result<(), String> {
    let magic = crate::sys::fs_type(root).map_err(|e| format!("{}: {e}", root.display()))?;
    if magic == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
        Ok(())
    } else {
        Err(format!(
            "{} is not a cgroup v2 (unified) hierarchy (file system magic {:#x}); \
             on a hybrid host it is usually /sys/fs/cgroup/unified",
            root.display(),
            magic.0
        ))
    }
}

/// A container named by a cgroup path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRef {
    /// The runtime's container id (hex), without the `runtime://` prefix.
    pub id: String,
    /// The pod's uid when the kubelet's part of the path names it.
    pub pod_uid: Option<String>,
}

/// Tetragon takes a cgroup name of at least 31 hex digits as a container id.
const MIN_ID_LEN: usize = 31;

fn container_id(s: &str) -> Option<&str> {
    (s.len() >= MIN_ID_LEN && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
}

/// The id of a systemd scope (`cri-containerd-<id>.scope`, `crio-<id>.scope`,
/// `docker-<id>.scope`, `libpod-<id>.scope`) or of a cgroupfs-driver directory (`<id>`).
fn id_of_component(c: &str) -> Option<&str> {
    if let Some(scope) = c.strip_suffix(".scope") {
        // conmon, CRI-O's monitor, runs beside the container, not in it.
        if scope.starts_with("crio-conmon-") {
            return None;
        }
        let prefixes = ["cri-containerd-", "crio-", "docker-", "libpod-"];
        return prefixes
            .iter()
            .find_map(|p| scope.strip_prefix(p))
            .and_then(container_id);
    }
    id_of_runtime_dir(c).or_else(|| container_id(c))
}

/// The id of a container's directory where no systemd names it: CRI-O under the kubelet's
/// cgroupfs driver uses `crio-<id>`, podman with the cgroupfs manager
/// `/libpod_parent/libpod-<id>`. (containerd, under the kubelet or driven by `ctr` as
/// `/<namespace>/<id>`, uses the plain id.)
fn id_of_runtime_dir(c: &str) -> Option<&str> {
    ["crio-", "libpod-"].iter().find_map(|p| c.strip_prefix(p)).and_then(container_id)
}

/// The pod uid of a kubelet cgroup: `pod<uid>` (cgroupfs driver) or
/// `kubepods[-<qos>]-pod<uid with _>.slice` (systemd driver).
fn pod_uid_of_component(c: &str) -> Option<String> {
    if let Some(slice) = c.strip_suffix(".slice") {
        let (_, uid) = slice.rsplit_once("-pod")?;
        return slice.starts_with("kubepods").then(|| uid.replace('_', "-"));
    }
    let uid = c.strip_prefix("pod")?;
    (uid.len() == 36 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        .then(|| uid.to_string())
}

/// The container a cgroup path (v1 or v2, relative to the hierarchy's root or absolute)
/// belongs to: the deepest component naming a container id, so a container's own
/// sub-cgroups belong to it too.
pub fn parse_path(path: &str) -> Option<ContainerRef> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let at = parts.iter().rposition(|c| id_of_component(c).is_some())?;
    let id = id_of_component(parts[at])?.to_string();
    let pod_uid = parts[..at]
        .iter()
        .rev()
        .find_map(|c| pod_uid_of_component(c));
    Some(ContainerRef { id, pod_uid })
}

/// Every directory of the hierarchy under `root` that names a container, by cgroup id
/// (directory inode). Directories vanishing during the walk are skipped, and so are other
/// file systems mounted below `root`: inodes are ids only within one hierarchy (a hybrid
/// host's `/sys/fs/cgroup` holds a v1 hierarchy per controller beside the unified one).
pub fn scan(root: &Path) -> HashMap<u64, ContainerRef> {
    let mut found = HashMap::new();
    let Ok(device) = std::fs::metadata(root).map(|m| m.dev()) else {
        return found;
    };
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_dir() || meta.dev() != device {
                continue;
            }
            let path = entry.path();
            if let Some(c) = path
                .strip_prefix(root)
                .ok()
                .and_then(|p| p.to_str())
                .and_then(parse_path)
            {
                found.insert(meta.ino(), c);
            }
            stack.push(path);
        }
    }
    found
}

/// cgroup id -> container, for the event thread. An id seen for the first time triggers a
/// walk of the hierarchy; ids of host (non-container) cgroups are remembered as such.
pub struct CgroupIndex {
    root: std::path::PathBuf,
    known: HashMap<u64, Option<ContainerRef>>,
    pub scans: u64,
}

/// Remembered ids beyond this are forgotten at the next walk (cgroups come and go).
const MAX_KNOWN: usize = 65536;

impl CgroupIndex {
    pub fn new(root: &Path) -> Self {
        CgroupIndex {
            root: root.to_path_buf(),
            known: HashMap::new(),
            scans: 0,
        }
    }

    pub fn container(&mut self, cgroup_id: u64) -> Option<&ContainerRef> {
        if cgroup_id == 0 {
            return None;
        }
        if !self.known.contains_key(&cgroup_id) {
            if self.known.len() >= MAX_KNOWN {
                self.known.clear();
            }
            self.scans += 1;
            for (id, c) in scan(&self.root) {
                self.known.insert(id, Some(c));
            }
            // Not a container's cgroup (or already gone): do not walk again for it.
            self.known.entry(cgroup_id).or_insert(None);
        }
        self.known.get(&cgroup_id).and_then(Option::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "e1216138dabb7071aa17679a52b05f9cad566ffbf89f0a090c385fc0af644242";
    const UID: &str = "0b7e5b4c-59b0-4b8e-9b5e-7d2f1c3a4b5d";

    fn parsed(path: &str) -> (String, Option<String>) {
        let c = parse_path(path).unwrap_or_else(|| panic!("no container in {path}"));
        (c.id, c.pod_uid)
    }

    #[test]
    fn systemd_driver_v2_names() {
        let uid_ = UID.replace('-', "_");
        for scope in [
            format!("cri-containerd-{ID}.scope"),
            format!("crio-{ID}.scope"),
            format!("docker-{ID}.scope"),
        ] {
            for slice in [
                format!(
                    "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice"
                ),
                format!(
                    "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice"
                ),
                format!("kubepods.slice/kubepods-pod{uid_}.slice"),
            ] {
                let path = format!("/{slice}/{scope}");
                assert_eq!(
                    parsed(&path),
                    (ID.to_string(), Some(UID.to_string())),
                    "{path}"
                );
            }
        }
    }

    #[test]
    fn cgroupfs_driver_names() {
        for qos in ["", "burstable/", "besteffort/"] {
            let path = format!("/kubepods/{qos}pod{UID}/{ID}");
            assert_eq!(
                parsed(&path),
                (ID.to_string(), Some(UID.to_string())),
                "{path}"
            );
        }
    }

    #[test]
    fn cgroup_v1_controller_paths_and_plain_docker() {
        // v1: the same names under each controller's hierarchy (/proc/PID/cgroup lines).
        let v1 = format!("/kubepods/besteffort/pod{UID}/{ID}");
        assert_eq!(parsed(&v1).0, ID);
        assert_eq!(parsed(&format!("/docker/{ID}")), (ID.to_string(), None));
        assert_eq!(
            parsed(&format!("/system.slice/docker-{ID}.scope")),
            (ID.to_string(), None)
        );
        // kind nodes nest the node's own cgroup above the kubelet's.
        let kind = format!("/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{}.slice/cri-containerd-{ID}.scope", UID.replace('-', "_"));
        assert_eq!(parsed(&kind).0, ID);
    }

    #[test]
    fn podman_and_ctr_cgroupfs_names() {
        // As podman 4.3 (cgroupfs manager) and ctr 1.6 create them, in every hierarchy.
        assert_eq!(parsed(&format!("/libpod_parent/libpod-{ID}")), (ID.to_string(), None));
        assert_eq!(parsed(&format!("/k8s.io/{ID}")), (ID.to_string(), None));
        assert_eq!(parse_path("/libpod_parent/conmon"), None);
        assert_eq!(parse_path("/libpod_parent/libpod-conmon"), None);
    }

    #[test]
    fn sub_cgroups_belong_to_their_container() {
        let path = format!(
            "/kubepods.slice/kubepods-pod{}.slice/crio-{ID}.scope/container",
            UID.replace('-', "_")
        );
        assert_eq!(parsed(&path), (ID.to_string(), Some(UID.to_string())));
    }

    #[test]
    fn host_cgroups_and_conmon_are_not_containers() {
        for path in [
            "/",
            "/init.scope",
            "/system.slice/containerd.service",
            "/user.slice/user-0.slice/session-3.scope",
            "/kubepods.slice/kubepods-besteffort.slice",
            &format!("/kubepods.slice/crio-conmon-{ID}.scope"),
            "/system.slice/docker-abc.scope",
        ] {
            assert_eq!(parse_path(path), None, "{path}");
        }
    }

    #[test]
    fn short_ids_count_from_31_hex_digits() {
        assert_eq!(parsed(&format!("/docker/{}", &ID[..31])).0, &ID[..31]);
        assert_eq!(parse_path(&format!("/docker/{}", &ID[..30])), None);
    }
}

/// The kubelet's layouts (both drivers, hybrid, v2-only, pod-mounted), built as real
/// directory trees and read by [`unified_root_in`] and [`scan`].
#[cfg(test)]
mod kubelet_layouts;
