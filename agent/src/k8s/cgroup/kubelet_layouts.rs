//! Each layout is a real directory tree in a temporary directory, shaped as measured on
//! real nodes, with a mount table naming its hierarchies: the code under test finds the
//! unified hierarchy in the table and walks the tree, as it does on a node.
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{scan, unified_root_in, ContainerRef};

/// Three pods, one per QoS class, each with its sandbox (pause) and one container.
const BESTEFFORT: &str = "0b7e5b4c-59b0-4b8e-9b5e-7d2f1c3a4b5d";
const BURSTABLE: &str = "6f1d2e3c-4b5a-4978-8a6b-5c4d3e2f1a0b";
const GUARANTEED: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

fn id(n: u8) -> String {
    format!("{n:x}").repeat(64)
}

/// (QoS directory part, pod uid, container id, sandbox id) of the three pods.
fn pods() -> Vec<(&'static str, &'static str, String, String)> {
    vec![
        ("besteffort", BESTEFFORT, id(1), id(2)),
        ("burstable", BURSTABLE, id(3), id(4)),
        ("", GUARANTEED, id(5), id(6)),
    ]
}

/// A kubelet leaf path relative to a hierarchy's root.
type Layout = fn(qos: &str, uid: &str, id: &str) -> String;

/// cgroupfs driver, containerd/docker: `/kubepods/<qos>/pod<uid>/<id>`, Guaranteed pods
/// directly under `/kubepods`.
fn cgroupfs(qos: &str, uid: &str, id: &str) -> String {
    let qos = if qos.is_empty() { String::new() } else { format!("{qos}/") };
    format!("kubepods/{qos}pod{uid}/{id}")
}

/// systemd driver, containerd: `kubepods-<qos>-pod<uid with _>.slice/cri-containerd-<id>.scope`.
fn systemd(qos: &str, uid: &str, id: &str) -> String {
    let uid_ = uid.replace('-', "_");
    let (qos_slice, pod_slice) = if qos.is_empty() {
        (String::new(), format!("kubepods-pod{uid_}.slice"))
    } else {
        (format!("kubepods-{qos}.slice/"), format!("kubepods-{qos}-pod{uid_}.slice"))
    };
    format!("kubepods.slice/{qos_slice}{pod_slice}/cri-containerd-{id}.scope")
}

/// CRI-O under the cgroupfs driver: `/kubepods/<qos>/pod<uid>/crio-<id>`.
fn crio_cgroupfs(qos: &str, uid: &str, id: &str) -> String {
    let path = cgroupfs(qos, uid, id);
    let (dir, leaf) = path.rsplit_once('/').unwrap();
    format!("{dir}/crio-{leaf}")
}

/// Creates every pod's sandbox and container under `hierarchy` (plus host cgroups that
/// name no container) and returns the containers by directory inode, as a scan must.
fn populate(hierarchy: &Path, layout: Layout) -> HashMap<u64, ContainerRef> {
    for host in ["system.slice/containerd.service", "init.scope", "user.slice/user-0.slice"] {
        std::fs::create_dir_all(hierarchy.join(host)).unwrap();
    }
    let mut want = HashMap::new();
    for (qos, uid, container, sandbox) in pods() {
        for id in [container, sandbox] {
            let dir = hierarchy.join(layout(qos, uid, &id));
            std::fs::create_dir_all(&dir).unwrap();
            let ino = std::fs::metadata(&dir).unwrap().ino();
            want.insert(ino, ContainerRef { id, pod_uid: Some(uid.to_string()) });
        }
    }
    want
}

/// The v1 controllers of the measured hybrid host, each its own hierarchy.
const V1: [&str; 9] =
    ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd"];

/// A hybrid host under `root`: tmpfs at /sys/fs/cgroup, one v1 hierarchy per controller,
/// cgroup2 at /sys/fs/cgroup/unified; the kubelet's cgroups in every hierarchy. Returns
/// the mount table and the containers of the unified hierarchy by inode.
fn hybrid(root: &Path, layout: Layout) -> (String, HashMap<u64, ContainerRef>) {
    let base = root.join("sys/fs/cgroup");
    let mut mounts = format!("sysfs {}/sys sysfs rw 0 0\ntmpfs {} tmpfs rw,mode=755 0 0\n", root.display(), base.display());
    for c in V1 {
        populate(&base.join(c), layout);
        let opt = if c == "systemd" { "name=systemd".to_string() } else { c.to_string() };
        mounts += &format!("cgroup {} cgroup rw,nosuid,nodev,noexec,relatime,{opt} 0 0\n", base.join(c).display());
    }
    let unified = populate(&base.join("unified"), layout);
    mounts += &format!("cgroup2 {} cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n", base.join("unified").display());
    (mounts, unified)
}

fn unified(mounts: &str) -> PathBuf {
    unified_root_in(mounts).expect("a cgroup2 mount")
}

#[test]
fn hybrid_cgroupfs_driver_as_measured() {
    let tmp = tempfile::tempdir().unwrap();
    let (mounts, want) = hybrid(tmp.path(), cgroupfs);
    let root = unified(&mounts);
    assert_eq!(root, tmp.path().join("sys/fs/cgroup/unified"));
    let found = scan(&root);
    // Every pod's container and sandbox, with its pod uid, by its unified-hierarchy inode.
    assert_eq!(found, want);
    assert_eq!(found.len(), 6);
    // The v1 directories of the same containers have other inodes, which the kernel
    // never reports: none of them is taken for a container.
    for c in V1 {
        let dir = tmp.path().join("sys/fs/cgroup").join(c).join(cgroupfs("besteffort", BESTEFFORT, &id(1)));
        assert!(!found.contains_key(&std::fs::metadata(dir).unwrap().ino()), "{c}");
    }
}

#[test]
fn hybrid_systemd_driver() {
    let tmp = tempfile::tempdir().unwrap();
    let (mounts, want) = hybrid(tmp.path(), systemd);
    assert_eq!(scan(&unified(&mounts)), want);
}

#[test]
fn v2_only_hosts_both_drivers_and_crio() {
    for layout in [cgroupfs as Layout, systemd, crio_cgroupfs] {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("sys/fs/cgroup");
        let want = populate(&base, layout);
        let mounts = format!("cgroup2 {} cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n", base.display());
        let root = unified(&mounts);
        assert_eq!(root, base);
        assert_eq!(scan(&root), want, "{}", layout("burstable", BURSTABLE, "ID"));
    }
}

#[test]
fn in_a_pod_the_hosts_hierarchy_mounted_last_is_used() {
    // A privileged pod: the runtime's own cgroup2 at /sys/fs/cgroup (its cgroup namespace),
    // then the host's /sys/fs/cgroup (hostPath, hybrid) mounted over it.
    let tmp = tempfile::tempdir().unwrap();
    let own = tmp.path().join("runtime-cgroup");
    std::fs::create_dir_all(&own).unwrap();
    let (host_mounts, want) = hybrid(tmp.path(), cgroupfs);
    let mounts = format!("overlay / overlay rw 0 0\ncgroup2 {} cgroup2 ro,nosuid 0 0\n{host_mounts}", own.display());
    assert_eq!(scan(&unified(&mounts)), want);
    assert_eq!(unified_root_in("overlay / overlay rw 0 0\nproc /proc proc rw 0 0\n"), None);
}

#[test]
fn a_containers_own_sub_cgroups_belong_to_it() {
    // systemd or an init inside the container makes cgroups below the container's leaf.
    let tmp = tempfile::tempdir().unwrap();
    let leaf = tmp.path().join(systemd("burstable", BURSTABLE, &id(3)));
    std::fs::create_dir_all(leaf.join("init.scope")).unwrap();
    let sub = std::fs::metadata(leaf.join("init.scope")).unwrap().ino();
    let found = scan(tmp.path());
    assert_eq!(found[&sub], ContainerRef { id: id(3), pod_uid: Some(BURSTABLE.into()) });
    assert_eq!(found.len(), 2);
}
