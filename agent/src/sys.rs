//! Host facts and set-up the agent needs: file systems to mount and the node name.
use std::path::Path;

use nix::mount::MsFlags;
use nix::sys::statfs::{statfs, BPF_FS_MAGIC, TRACEFS_MAGIC};

fn mount(fstype: &str, target: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(target)?;
    nix::mount::mount(Some(fstype), target, Some(fstype), MsFlags::empty(), None::<&str>)?;
    Ok(())
}

/// Mounts the BPF file system and tracefs where a fresh machine lacks them, as real
/// agents do. Failures are reported but not fatal: the lifecycle sensor needs neither.
pub fn ensure_mounts() {
    for (fstype, target, magic) in
        [("bpf", "/sys/fs/bpf", BPF_FS_MAGIC), ("tracefs", "/sys/kernel/tracing", TRACEFS_MAGIC)]
    {
        if statfs(Path::new(target)).is_ok_and(|s| s.filesystem_type() == magic) {
            continue;
        }
        match mount(fstype, target) {
            Ok(()) => tracing::info!("mounted {fstype} at {target}"),
            Err(e) => tracing::warn!("cannot mount {fstype} at {target}: {e}"),
        }
    }
}

/// The node name events carry: $NODE_NAME (set by the DaemonSet), else the hostname.
pub fn node_name() -> String {
    if let Ok(n) = std::env::var("NODE_NAME") {
        if !n.is_empty() {
            return n;
        }
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// One kernel feature and whether this kernel has it (GetInfo `probes`, `tetra probe`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub name: &'static str,
    pub enabled: bool,
}

/// Does this kernel have kprobes (the kprobe PMU)?
pub fn has_kprobes() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

/// The active LSMs (`/sys/kernel/security/lsm`, e.g. `lockdown,capability,bpf`), when the
/// list can be read.
pub fn active_lsms() -> Option<String> {
    std::fs::read_to_string("/sys/kernel/security/lsm").ok().map(|l| l.trim().to_string())
}

/// Is `bpf` among the active LSMs of `list`?
pub fn lists_bpf_lsm(list: &str) -> bool {
    list.split(',').any(|m| m == "bpf")
}

/// Probes the kernel features policies depend on, once at start. `can_override` comes from
/// the policy sensors, which decide Override support with the same helper probe.
pub fn kernel_probes(can_override: bool) -> Vec<Probe> {
    use libbpf_rs::libbpf_sys::BPF_FUNC_send_signal;
    use libbpf_rs::{MapType, ProgramType};
    let bpf_lsm_active = active_lsms().is_some_and(|list| lists_bpf_lsm(&list));
    let probe = |name, enabled| Probe { name, enabled };
    vec![
        probe("HasOverrideHelper", can_override),
        probe(
            "HasSignalHelper",
            ProgramType::Tracepoint.is_helper_supported(BPF_FUNC_send_signal).unwrap_or(false),
        ),
        probe("HasKprobes", has_kprobes()),
        probe("HasUprobes", Path::new("/sys/bus/event_source/devices/uprobe").exists()),
        probe(
            "HasLSMPrograms",
            bpf_lsm_active && ProgramType::Lsm.is_supported().unwrap_or(false),
        ),
        probe("HasRingBuffer", MapType::RingBuf.is_supported().unwrap_or(false)),
        probe("HasKernelBTF", Path::new("/sys/kernel/btf/vmlinux").exists()),
    ]
}
