//! Host facts and set-up the agent needs: file systems to mount and the node name.
use std::ffi::CString;
use std::path::Path;

const BPF_FS_MAGIC: i64 = 0xcafe4a11;
const TRACEFS_MAGIC: i64 = 0x74726163;

/// The file system type (`statfs` magic) of `path`, if it can be read.
pub fn fs_magic(path: &Path) -> Option<i64> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statfs fills the zeroed struct we own from a valid C string.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        (libc::statfs(c.as_ptr(), &mut st) == 0).then_some(st.f_type as i64)
    }
}

fn mount(fstype: &str, target: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(target)?;
    let (src, ty, dst) = (CString::new(fstype)?, CString::new(fstype)?, CString::new(target)?);
    // SAFETY: all pointers are valid NUL-terminated strings; no mount data is passed.
    let rc = unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), ty.as_ptr(), 0, std::ptr::null()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
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
        if fs_magic(Path::new(target)) == Some(magic) {
            continue;
        }
        match mount(fstype, target) {
            Ok(()) => log::info!("mounted {fstype} at {target}"),
            Err(e) => log::error!("no {fstype} file system at {target} and mounting one failed: {e}; lost: {lost}"),
        }
    }
}

/// Where the kernel describes its own types (BTF), which the CO-RE programs need.
const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// One clear line when the kernel's BTF is missing, before loading fails on it.
pub fn check_kernel_btf() {
    if !Path::new(KERNEL_BTF).exists() {
        log::error!(
            "no kernel BTF at {KERNEL_BTF}: the BPF programs are compiled once (CO-RE) and \
             relocated against it; use a kernel built with CONFIG_DEBUG_INFO_BTF=y (in a pod, \
             mount the host's /sys/kernel/btf)"
        );
    }
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
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit fills the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0
        || lim.rlim_cur == libc::RLIM_INFINITY
    {
        return;
    }
    let kib = lim.rlim_cur / 1024;
    if bpf_memcg_accounting() {
        log::info!(
            "RLIMIT_MEMLOCK is {kib} KiB: not needed, this kernel charges BPF memory to the memory cgroup"
        );
        return;
    }
    let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } == 0 {
        log::info!("raised RLIMIT_MEMLOCK from {kib} KiB to unlimited: this kernel charges BPF memory to it");
        return;
    }
    log::error!("{}", memlock_refused(kib, &std::io::Error::last_os_error()));
}

fn memlock_refused(kib: u64, e: &std::io::Error) -> String {
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

/// Large blocks of libbpf (the kernel's BTF, parsed again for every object it loads: about
/// 6 MiB) come from mmap and go back to the system when freed. glibc raises its mmap
/// threshold after such a free, which would put the next ones on the heap where they stay;
/// fixing the threshold keeps them out of it.
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes an allocator parameter.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

/// Gives the allocator's free pages back to the system, in every arena (glibc keeps them
/// otherwise): called after a policy is loaded or unloaded, so a refused or deleted policy
/// leaves no resident memory behind.
pub fn release_free_memory() {
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
        let e = std::io::Error::from_raw_os_error(libc::EPERM);
        let m = super::memlock_refused(8192, &e);
        assert!(m.starts_with("RLIMIT_MEMLOCK is 8192 KiB and cannot be raised (Operation not permitted"), "{m}");
        assert!(m.contains("CAP_SYS_RESOURCE") && m.contains("LimitMEMLOCK=infinity"), "{m}");
    }
}
