//! Host facts and set-up the agent needs: file systems to mount and the node name.
use std::path::{Path, PathBuf};

use anyhow::Context;

use nix::mount::MsFlags;
use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
use nix::sys::statfs::{statfs, FsType, BPF_FS_MAGIC, TRACEFS_MAGIC};

/// The file system type (`statfs` magic) of `path`, or why it cannot be read.
pub fn fs_type(path: &Path) -> nix::Result<FsType> {
    statfs(path).map(|s| s.filesystem_type())
}

fn mount(fstype: &str, target: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(target)?;
    nix::mount::mount(Some(fstype), target, Some(fstype), MsFlags::empty(), None::<&str>)?;
    Ok(())
}

/// Mounts the BPF file system and tracefs where a fresh machine lacks them, as real
/// agents do. A failure is one error line saying what is lost, and not fatal: the
/// lifecycle sensor needs neither.
pub fn ensure_mounts() {
    let mounts = [
        ("bpf", "/sys/fs/bpf", BPF_FS_MAGIC, "nothing yet: tetrad pins no BPF objects"),
        ("tracefs", "/sys/kernel/tracing", TRACEFS_MAGIC, "tracepoint policies, unless /sys/kernel/debug/tracing has their formats"),
    ];
    for (fstype, target, magic, lost) in mounts {
        if fs_type(Path::new(target)).is_ok_and(|t| t == magic) {
            continue;
        }
        match mount(fstype, target) {
            Ok(()) => tracing::info!("mounted {fstype} at {target}"),
            Err(e) => tracing::error!("no {fstype} file system at {target} and mounting one failed: {e}; lost: {lost}"),
        }
    }
}

/// Where the kernel describes its own types (BTF), which the CO-RE programs need.
const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// What the CO-RE programs are relocated against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelBtf {
    /// The kernel's own BTF at /sys/kernel/btf/vmlinux, which libbpf finds itself.
    Kernel,
    /// A BTF file of this kernel given with `--btf` (e.g. from BTFHub).
    File(PathBuf),
    /// None: no BPF program can be loaded.
    Missing,
}

impl KernelBtf {
    /// The file libbpf must be pointed at, if not the kernel's own.
    pub fn custom_path(&self) -> Option<&Path> {
        match self {
            KernelBtf::File(path) => Some(path),
            _ => None,
        }
    }
}

/// Why nothing is loaded on a node without BTF (the error of every policy).
pub const NO_BTF: &str = "no kernel BTF: /sys/kernel/btf/vmlinux is missing and no --btf FILE was given";

/// Finds the BTF to relocate against, as Tetragon does: `--btf` (or $TETRAGON_BTF) when
/// given, which must be a readable BTF file, else the kernel's own. Without either the
/// agent still runs (gRPC, metrics, policies listed with the reason); one error says so.
pub fn kernel_btf(flag: Option<&Path>) -> anyhow::Result<KernelBtf> {
    if let Some(file) = flag {
        libbpf_rs::btf::Btf::from_path(file)
            .with_context(|| format!("--btf {}: not a readable BTF file", file.display()))?;
        tracing::info!("BPF programs are relocated against {} (--btf)", file.display());
        return Ok(KernelBtf::File(file.to_path_buf()));
    }
    if Path::new(KERNEL_BTF).exists() {
        return Ok(KernelBtf::Kernel);
    }
    tracing::error!(
        "no kernel BTF at {KERNEL_BTF}: the process lifecycle sensor and tracing policies \
         cannot load (their BPF programs are compiled once, CO-RE, and relocated against it), \
         so no events are exported; gRPC and metrics keep running. Fix: give this kernel's BTF \
         with --btf FILE (e.g. from BTFHub; chart value btf.hostPath), use a kernel built with \
         CONFIG_DEBUG_INFO_BTF=y, or in a pod mount the host's /sys/kernel/btf"
    );
    Ok(KernelBtf::Missing)
}

/// Whether this kernel charges BPF maps and programs to the memory cgroup (Linux 5.11+)
/// instead of RLIMIT_MEMLOCK. libbpf decides the same way: by a helper of the same release.
fn bpf_memcg_accounting() -> bool {
    use libbpf_rs::libbpf_sys::BPF_FUNC_ktime_get_coarse_ns;
    libbpf_rs::ProgramType::CgroupSockAddr
        .is_helper_supported(BPF_FUNC_ktime_get_coarse_ns)
        .unwrap_or(false)
}

/// Makes sure RLIMIT_MEMLOCK does not stop BPF loading, before anything is loaded. Where
/// the kernel charges BPF memory to the memory cgroup the limit does not matter (a node's
/// root without CAP_SYS_RESOURCE cannot raise it from 8 MiB); elsewhere it is raised, and
/// if that is refused the agent says what to do.
pub fn check_memlock() {
    let Ok((current, _)) = getrlimit(Resource::RLIMIT_MEMLOCK) else { return };
    if current == RLIM_INFINITY {
        return;
    }
    let kib = current / 1024;
    if bpf_memcg_accounting() {
        tracing::info!(
            "RLIMIT_MEMLOCK is {kib} KiB: not needed, this kernel charges BPF memory to the memory cgroup"
        );
        return;
    }
    match setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY) {
        Ok(()) => tracing::info!("raised RLIMIT_MEMLOCK from {kib} KiB to unlimited: this kernel charges BPF memory to it"),
        Err(e) => tracing::error!("{}", memlock_refused(kib, e)),
    }
}

fn memlock_refused(kib: u64, e: nix::Error) -> String {
    format!(
        "RLIMIT_MEMLOCK is {kib} KiB and cannot be raised ({e}): this kernel (before Linux 5.11) \
         charges BPF maps and programs to it, so loading them may fail with \"Operation not \
         permitted\"; give tetrad CAP_SYS_RESOURCE, or raise the limit where it starts \
         (LimitMEMLOCK=infinity in the container runtime's systemd unit, `ulimit -l unlimited`)"
    )
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

/// The running kernel's release (`uname -r`), for errors that say which kernel lacks what.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "of unknown release".into())
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
        probe("HasKernelBTF", Path::new(KERNEL_BTF).exists()),
    ]
}

/// `mi_option_arena_eager_commit` in mimalloc.h (the -sys crate names only some options).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Settings of the two allocators: mimalloc (tetrad's Rust allocations) and glibc's malloc
/// (libbpf and libelf, which are C).
///
/// mimalloc commits the memory of its arenas as it reserves them by default, and such
/// memory stays resident once touched: committing on demand instead keeps an idle agent
/// at glibc's footprint (idle RSS 19.5 against 28.1 MiB, measured with `mem_report`).
///
/// Large blocks of libbpf (the kernel's BTF, parsed again for every object it loads: about
/// 6 MiB) come from mmap and go back to the system when freed. glibc raises its mmap
/// threshold after such a free, which would put the next ones on the heap where they stay;
/// fixing the threshold keeps them out of it.
///
/// mallopt and malloc_trim are glibc's own calls, which nix does not wrap: they come from libc.
pub fn tune_allocator() {
    // SAFETY: mi_option_set only changes an allocator parameter.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
    }
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes an allocator parameter.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

/// Gives the allocators' free pages back to the system (mimalloc's and every glibc arena;
/// both keep them for a while otherwise): called after a policy is loaded or unloaded, so
/// a refused or deleted policy leaves no resident memory behind, and after a burst of
/// events (see `pipeline`).
pub fn release_free_memory() {
    // SAFETY: mi_collect only frees what the allocator holds unused.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_refused_memlock_raise_says_what_to_do() {
        let m = super::memlock_refused(8192, nix::Error::EPERM);
        assert!(m.starts_with("RLIMIT_MEMLOCK is 8192 KiB and cannot be raised (EPERM: Operation not permitted"), "{m}");
        assert!(m.contains("CAP_SYS_RESOURCE") && m.contains("LimitMEMLOCK=infinity"), "{m}");
    }
}
