//! VM test bed (test tier 3): boots Debian's own kernel (kprobes, BTF, BPF LSM
//! built in) under `qemu-system-x86_64 -accel tcg` with a busybox-static
//! initramfs that this module writes itself, runs a shell script as root in the
//! guest and returns the serial console.
//!
//! The kernel and the host tools are provided by `tests/vm/prepare.sh` (run as
//! root; idempotent). Tests start with [`require_vm!`](crate::require_vm),
//! which prepares the test bed when it is missing and we are root, fails with a
//! clear message when it cannot, and skips (with a printed reason) only when
//! `TETRA_SKIP_VM=1` is set.
//!
//! ```no_run
//! use tetra_tests::vm::Vm;
//! # fn demo() -> Result<(), tetra_tests::vm::VmError> {
//! let out = Vm::new()
//!     .binary(env!("CARGO_MANIFEST_DIR"), "/bin/tool") // any host ELF + its libs
//!     .script("tetra_section kver uname -r")
//!     .run()?;
//! out.ensure_success()?;
//! let kver = out.require_section("kver")?;
//! # Ok(()) }
//! ```
//!
//! Guest layout: `/init` (written here) mounts proc, sysfs, devtmpfs, devpts,
//! tmpfs on /tmp and /run, tracefs on /sys/kernel/tracing, debugfs, bpffs on
//! /sys/fs/bpf, cgroup2 on /sys/fs/cgroup and securityfs (unless
//! [`Vm::basic_mounts_only`]), brings up `lo`, prints a ready marker, lowers the
//! console log level, runs `/tetra/script.sh` with `sh`, prints the kernel log
//! as section `dmesg`, prints the script's exit code with a marker, and powers
//! off. The script can use the shell functions `tetra_begin NAME`,
//! `tetra_end NAME` and `tetra_section NAME CMD ARGS...` to delimit output that
//! [`VmOutput::section`] extracts.
//!
//! Environment variables:
//! - `TETRA_SKIP_VM=1`: [`ensure_ready`] returns `Ok(false)` (test skipped).
//! - `TETRA_VM_CACHE`: cache dir of prepare.sh (default `/var/cache/tetra-vm`).
//! - `TETRA_VM_KERNEL`: which of Debian's kernels prepare.sh fetches and the VMs boot:
//!   `6.1` (default, `linux-image-amd64`), `6.1-cloud`, `6.1-rt` or `6.12`; all but 6.1
//!   live in a subdir of the cache named after it.
//! - `TETRA_VM_BZIMAGE`: boot this bzImage instead of the cache's `vmlinuz`.
//! - `TETRA_VM_TIMEOUT_SCALE`: multiplies every VM's timeout and the guest's waits
//!   ([`timeout_scale`]), for a loaded host (qemu TCG shares the cores with builds).
//! - `TETRA_VM_QEMU`: qemu binary (default `qemu-system-x86_64` from PATH).
//! - `TETRA_VM_VERBOSE=1`: echo the guest console to stderr while it runs.
//! - `TETRA_VM_KEEP=1`: keep the temp dir (initramfs, qemu command line).
//! - `TETRA_VM_CONSOLE_DIR`: save each guest's whole console there ([`save_console`]).

use std::collections::BTreeMap;
use std::env;
use std::fmt;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Cache directory written by `tests/vm/prepare.sh` unless `TETRA_VM_CACHE` is set.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/tetra-vm";
/// The preparation script of this test bed.
pub const PREPARE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/vm/prepare.sh");
/// Kernel command line used for every boot (extra args are appended). `noirqdebug`: under
/// TCG the PREEMPT_RT kernel (6.1-rt) took ttyS0's interrupt for spurious and disabled it
/// ("Disabling IRQ #4") while vm_maxdata printed 270 KB; the console then ran at ~280 B/s.
pub const BASE_CMDLINE: &str = "console=ttyS0 panic=-1 lsm=lockdown,capability,bpf quiet noirqdebug";

const BUSYBOX: &str = "/bin/busybox";
const READY_MARKER: &str = "@@TETRA-VM-READY";
const EXIT_MARKER: &str = "@@TETRA-VM-EXIT=";
const BEGIN_PREFIX: &str = "@@TETRA-BEGIN ";
const END_PREFIX: &str = "@@TETRA-END ";
const MARKER_SUFFIX: &str = "@@";
/// After the exit marker, qemu gets this long to power off before it is killed.
const POWEROFF_GRACE: Duration = Duration::from_secs(10);
const TAIL_LINES: usize = 60;

// ---------------------------------------------------------------------------
// Errors

/// An error of the test bed, with the console tail when a guest had started.
#[derive(Debug)]
pub struct VmError {
    message: String,
    console: Option<String>,
}

impl VmError {
    fn new(message: impl Into<String>) -> Self {
        VmError { message: message.into(), console: None }
    }

    fn io(context: impl fmt::Display, err: io::Error) -> Self {
        VmError::new(format!("{context}: {err}"))
    }

    fn with_console(mut self, console: &str) -> Self {
        self.console = Some(console.to_string());
        self
    }

    /// The (cleaned) guest console, when the error happened after boot started.
    pub fn console(&self) -> Option<&str> {
        self.console.as_deref()
    }
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(console) = &self.console {
            write!(f, "\n--- guest console, last {TAIL_LINES} lines ---\n{}", tail(console, TAIL_LINES))?;
        }
        Ok(())
    }
}

impl std::error::Error for VmError {}

// ---------------------------------------------------------------------------
// Locating the test bed, preparing it, skipping

/// The kernels prepare.sh can fetch (`TETRA_VM_KERNEL`); the first is the default.
pub const KERNELS: [&str; 4] = ["6.1", "6.1-cloud", "6.1-rt", "6.12"];

/// The kernel `TETRA_VM_KERNEL` selects (one of [`KERNELS`]).
pub fn kernel_name() -> Result<String, VmError> {
    match env::var("TETRA_VM_KERNEL") {
        Ok(k) if !k.is_empty() && !KERNELS.contains(&k.as_str()) => Err(VmError::new(format!(
            "TETRA_VM_KERNEL={k}: expected one of {}",
            KERNELS.join(", ")
        ))),
        Ok(k) if !k.is_empty() => Ok(k),
        _ => Ok(KERNELS[0].to_string()),
    }
}

/// Cache dir of prepare.sh for the selected kernel: `TETRA_VM_CACHE` or
/// [`DEFAULT_CACHE_DIR`], plus the kernel's name for all but the default (as prepare.sh).
pub fn cache_dir() -> PathBuf {
    let base = match env::var_os("TETRA_VM_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_CACHE_DIR),
    };
    match kernel_name() {
        Ok(k) if k != KERNELS[0] => base.join(k),
        _ => base,
    }
}

/// `TETRA_VM_TIMEOUT_SCALE` (a number >= 1, default 1): the factor applied to each VM's
/// timeout and, in the guest, to `tetra_wait`. TCG guests run several times slower
/// when other jobs share the host's cores; scaling the limits keeps a slow run a slow
/// pass rather than a spurious failure, while a hang still ends.
pub fn timeout_scale() -> Result<f64, VmError> {
    match env::var("TETRA_VM_TIMEOUT_SCALE") {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse::<f64>() {
            Ok(f) if f.is_finite() && (1.0..=100.0).contains(&f) => Ok(f),
            _ => Err(VmError::new(format!("TETRA_VM_TIMEOUT_SCALE={v}: expected a number from 1 to 100"))),
        },
        _ => Ok(1.0),
    }
}

/// The kernel image booted (`TETRA_VM_BZIMAGE` or `<cache>/vmlinuz`).
pub fn kernel_path() -> PathBuf {
    match env::var_os("TETRA_VM_BZIMAGE") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => cache_dir().join("vmlinuz"),
    }
}

/// The facts prepare.sh recorded in `<cache>/kernel.env` (package versions, paths).
pub fn kernel_info() -> Result<BTreeMap<String, String>, VmError> {
    let path = cache_dir().join("kernel.env");
    let text = fs::read_to_string(&path).map_err(|e| VmError::io(format!("reading {}", path.display()), e))?;
    let mut info = BTreeMap::new();
    for line in text.lines() {
        if let Some((key, value)) = line.split_once('=') {
            info.insert(key.trim().to_string(), value.trim().to_string());
        }
    }
    Ok(info)
}

/// (major, minor) of the kernel the VMs boot, from `KERNEL_RELEASE` in kernel.env
/// (`6.12.118+deb12-amd64` -> (6, 12)), for assertions that differ between kernels.
pub fn kernel_version() -> Result<(u32, u32), VmError> {
    let info = kernel_info()?;
    let release = info.get("KERNEL_RELEASE").map(String::as_str).unwrap_or_default();
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Ok((major, minor)),
        _ => Err(VmError::new(format!("kernel.env: KERNEL_RELEASE={release:?} is not MAJOR.MINOR..."))),
    }
}

/// True when the booted kernel is at least `major.minor` (panics if kernel.env is unreadable:
/// only VM tests, after `require_vm!`, ask).
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    kernel_version().unwrap_or_else(|e| panic!("{e}")) >= (major, minor)
}

fn qemu_binary() -> PathBuf {
    match env::var_os("TETRA_VM_QEMU") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("qemu-system-x86_64"),
    }
}

fn find_in_path(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path = env::var_os("PATH")?;
    env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// True when `TETRA_SKIP_VM` is `1`, `true` or `yes`.
pub fn skip_requested() -> bool {
    matches!(
        env::var("TETRA_SKIP_VM").map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

/// What is missing to boot a VM (empty when ready).
pub fn missing_prerequisites() -> Vec<String> {
    let mut missing = Vec::new();
    if let Err(e) = kernel_name() {
        missing.push(e.to_string());
    }
    let kernel = kernel_path();
    if !kernel.is_file() {
        missing.push(format!("kernel image {}", kernel.display()));
    }
    let qemu = qemu_binary();
    if find_in_path(&qemu).is_none() {
        missing.push(format!("{} (package qemu-system-x86)", qemu.display()));
    }
    if !Path::new(BUSYBOX).is_file() {
        missing.push(format!("{BUSYBOX} (package busybox-static)"));
    }
    if find_in_path(Path::new("ldd")).is_none() {
        missing.push("ldd (package libc-bin)".to_string());
    }
    missing
}

/// Effective uid of this process, from /proc/self/status.
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Serializes preparation; remembers a failed prepare.sh so that the other
/// tests of the process report it instead of running it again.
static PREPARE_LOCK: Mutex<Option<String>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not break the others.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The convention of the VM tests:
/// - `TETRA_SKIP_VM=1`: prints the reason to stderr and returns `Ok(false)`;
///   the test returns early (the only way a VM test passes without a VM).
/// - test bed present: `Ok(true)`.
/// - missing and running as root: runs `tests/vm/prepare.sh` (once per
///   process), then `Ok(true)` or an error with the script's output.
/// - missing and not root: an error saying what is missing and what to run.
pub fn ensure_ready() -> Result<bool, VmError> {
    if skip_requested() {
        eprintln!("SKIPPED VM test: TETRA_SKIP_VM is set (unset it to run the VM tests)");
        return Ok(false);
    }
    let mut earlier_failure = lock(&PREPARE_LOCK);
    let missing = missing_prerequisites();
    if missing.is_empty() {
        return Ok(true);
    }
    if let Some(failure) = earlier_failure.as_ref() {
        return Err(VmError::new(format!("{PREPARE_SCRIPT} failed earlier in this test run: {failure}")));
    }
    if effective_uid() != Some(0) {
        return Err(VmError::new(format!(
            "VM test bed not prepared, missing: {}.\nRun `sudo {PREPARE_SCRIPT}` once (it apt-get installs qemu and \
             busybox-static and unpacks Debian's kernel into {}), or set TETRA_SKIP_VM=1 to skip the VM tests.",
            missing.join(", "),
            cache_dir().display()
        )));
    }
    eprintln!("VM test bed missing ({}); running {PREPARE_SCRIPT}", missing.join(", "));
    let started = Instant::now();
    let output = Command::new("bash")
        .arg(PREPARE_SCRIPT)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| VmError::io(format!("running bash {PREPARE_SCRIPT}"), e))?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        let failure = format!("{PREPARE_SCRIPT} failed ({}):\n{text}", output.status);
        *earlier_failure = Some(failure.clone());
        return Err(VmError::new(failure));
    }
    eprintln!("{PREPARE_SCRIPT} done in {:.1}s", started.elapsed().as_secs_f64());
    let missing = missing_prerequisites();
    if !missing.is_empty() {
        return Err(VmError::new(format!(
            "{PREPARE_SCRIPT} succeeded but still missing: {}\n{text}",
            missing.join(", ")
        )));
    }
    Ok(true)
}

/// Start of a VM test: returns from the test (skip) when `TETRA_SKIP_VM=1`,
/// panics with a clear message when the test bed is unavailable.
#[macro_export]
macro_rules! require_vm {
    () => {
        match $crate::vm::ensure_ready() {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => panic!("VM test bed unavailable: {err}"),
        }
    };
}

/// Builds binary `bin` of workspace package `package` with the cargo that
/// runs this test (same target dir and profile) and returns its path, so a
/// test of this crate can put e.g. the agent into the VM:
/// `Vm::new().binary(cargo_build_binary("agent", "tetragon")?, "/bin/tetragon")`.
pub fn cargo_build_binary(package: &str, bin: &str) -> Result<PathBuf, VmError> {
    let exe = env::current_exe().map_err(|e| VmError::io("locating the test executable", e))?;
    // target/<profile>/deps/<test> -> target/<profile>
    let mut profile_dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if profile_dir.file_name().is_some_and(|n| n == "deps") {
        profile_dir = profile_dir.parent().map(Path::to_path_buf).unwrap_or_default();
    }
    let Some(target_dir) = profile_dir.parent() else {
        return Err(VmError::new(format!("cannot find the target dir from {}", exe.display())));
    };
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--quiet", "-p", package, "--bin", bin])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(workspace)
        .stdin(Stdio::null());
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let output = cmd.output().map_err(|e| VmError::io(format!("running {cmd:?}"), e))?;
    if !output.status.success() {
        return Err(VmError::new(format!(
            "{cmd:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let path = profile_dir.join(bin);
    if !path.is_file() {
        return Err(VmError::new(format!("{cmd:?} succeeded but {} does not exist", path.display())));
    }
    Ok(path)
}

// ---------------------------------------------------------------------------
// The builder

#[derive(Clone)]
enum Content {
    Host(PathBuf),
    Bytes(Vec<u8>),
}

#[derive(Clone)]
enum Node {
    Dir { perm: u32 },
    File { content: Content, perm: Option<u32> },
    CharDev { perm: u32, major: u32, minor: u32 },
}

/// A VM to boot: files to put into the initramfs and a script to run.
pub struct Vm {
    /// Guest path (relative, no leading '/') -> node. Later additions win.
    nodes: BTreeMap<String, Node>,
    /// Host binaries whose shared libraries are resolved at `run()`.
    binaries: Vec<(PathBuf, String)>,
    /// Host directories copied recursively at `run()`.
    dirs: Vec<(PathBuf, String)>,
    errors: Vec<String>,
    script: String,
    env: Vec<(String, String)>,
    memory_mb: u32,
    cpus: u32,
    timeout: Duration,
    kernel_args: Vec<String>,
    basic_mounts_only: bool,
    dmesg: bool,
}

impl Default for Vm {
    fn default() -> Self {
        Vm::new()
    }
}

impl Vm {
    /// 1024 MiB, 1 vCPU, 180 s timeout, full mounts, empty script.
    pub fn new() -> Self {
        Vm {
            nodes: BTreeMap::new(),
            binaries: Vec::new(),
            dirs: Vec::new(),
            errors: Vec::new(),
            script: String::new(),
            env: vec![("RUST_BACKTRACE".to_string(), "1".to_string())],
            memory_mb: 1024,
            cpus: 1,
            timeout: Duration::from_secs(180),
            kernel_args: Vec::new(),
            basic_mounts_only: false,
            dmesg: true,
        }
    }

    fn guest_key(&mut self, guest_path: &str) -> Option<String> {
        match normalize_guest_path(guest_path) {
            Ok(key) => Some(key),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// Copies a host ELF to `guest_path` (mode 0755) together with every shared
    /// library `ldd` reports and the dynamic loader, each at its host path, so a
    /// dynamically linked binary from target/ runs in the guest.
    pub fn binary(mut self, host_path: impl AsRef<Path>, guest_path: &str) -> Self {
        if let Some(key) = self.guest_key(guest_path) {
            self.binaries.push((host_path.as_ref().to_path_buf(), key));
        }
        self
    }

    /// Copies a host file to `guest_path`, keeping its permission bits.
    pub fn file(mut self, host_path: impl AsRef<Path>, guest_path: &str) -> Self {
        if let Some(key) = self.guest_key(guest_path) {
            let content = Content::Host(host_path.as_ref().to_path_buf());
            self.nodes.insert(key, Node::File { content, perm: None });
        }
        self
    }

    /// Writes `bytes` to `guest_path` with permission bits `mode` (e.g. 0o644).
    pub fn file_bytes(mut self, bytes: impl Into<Vec<u8>>, guest_path: &str, mode: u32) -> Self {
        if let Some(key) = self.guest_key(guest_path) {
            let content = Content::Bytes(bytes.into());
            self.nodes.insert(key, Node::File { content, perm: Some(mode & 0o7777) });
        }
        self
    }

    /// Copies a host directory tree (regular files and directories; symlinks
    /// are followed) to `guest_dir`.
    pub fn dir(mut self, host_dir: impl AsRef<Path>, guest_dir: &str) -> Self {
        if let Some(key) = self.guest_key(guest_dir) {
            self.dirs.push((host_dir.as_ref().to_path_buf(), key));
        }
        self
    }

    /// Appends shell commands to the script `/init` runs (with busybox `sh`,
    /// as root, cwd `/`). The exit status of the script is reported as
    /// [`VmOutput::exit_code`].
    pub fn script(mut self, commands: &str) -> Self {
        self.script.push_str(commands);
        if !self.script.ends_with('\n') {
            self.script.push('\n');
        }
        self
    }

    /// Exports an environment variable to the script.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            self.errors.push(format!("invalid environment variable name {key:?}"));
        } else {
            self.env.push((key.to_string(), value.to_string()));
        }
        self
    }

    /// Guest memory in MiB (default 1024). The initramfs lives in it.
    pub fn memory_mb(mut self, mb: u32) -> Self {
        self.memory_mb = mb;
        self
    }

    /// Number of vCPUs (default 1; each is a host thread under TCG).
    pub fn cpus(mut self, cpus: u32) -> Self {
        self.cpus = cpus;
        self
    }

    /// Wall-clock limit from qemu start to power off (default 180 s); qemu is
    /// killed when it is exceeded and `run()` returns an error with the console tail.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Appends an argument to the kernel command line.
    pub fn kernel_arg(mut self, arg: &str) -> Self {
        self.kernel_args.push(arg.to_string());
        self
    }

    /// Mount only proc, sysfs, devtmpfs, devpts and tmpfs (/tmp, /run); leave
    /// tracefs, debugfs, bpffs, cgroup2 and securityfs to the code under test.
    pub fn basic_mounts_only(mut self) -> Self {
        self.basic_mounts_only = true;
        self
    }

    /// Whether to print the kernel log as section `dmesg` after the script (default true).
    pub fn dmesg(mut self, enabled: bool) -> Self {
        self.dmesg = enabled;
        self
    }

    /// Builds the initramfs in a temp dir, boots qemu and waits for power off.
    /// VMs of one test process run one at a time (2 host cores). Errors: test
    /// bed missing, bad inputs, qemu failure, timeout (console tail included).
    pub fn run(mut self) -> Result<VmOutput, VmError> {
        let scale = timeout_scale()?;
        self.timeout = self.timeout.mul_f64(scale);
        self.env.push(("TETRA_WAIT_SCALE_PCT".to_string(), format!("{:.0}", scale * 100.0)));
        if !self.errors.is_empty() {
            return Err(VmError::new(format!("invalid VM definition: {}", self.errors.join("; "))));
        }
        if self.memory_mb < 128 {
            return Err(VmError::new(format!("memory_mb {} is too small (>= 128)", self.memory_mb)));
        }
        if self.cpus == 0 || self.cpus > 64 {
            return Err(VmError::new(format!("cpus {} out of range 1..=64", self.cpus)));
        }
        let missing = missing_prerequisites();
        if !missing.is_empty() {
            return Err(VmError::new(format!(
                "VM test bed not prepared, missing: {} (run {PREPARE_SCRIPT} as root)",
                missing.join(", ")
            )));
        }
        let work = TempDir::new()?;
        let initramfs = work.path().join("initramfs.cpio");
        let nodes = self.collect_nodes()?;
        write_initramfs(&initramfs, &nodes)?;
        let _vm_guard = lock(&VM_LOCK);
        boot(&self, &work, &initramfs)
    }

    /// All initramfs nodes: the fixed skeleton, busybox, /init, the script,
    /// then the user's files (user files may not replace /init or /tetra/*).
    fn collect_nodes(&self) -> Result<BTreeMap<String, Node>, VmError> {
        let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
        for dir in ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "run", "root", "tetra"] {
            nodes.insert(dir.to_string(), Node::Dir { perm: 0o755 });
        }
        nodes.insert("tmp".to_string(), Node::Dir { perm: 0o1777 });
        nodes.insert("dev/console".to_string(), Node::CharDev { perm: 0o600, major: 5, minor: 1 });
        nodes.insert("dev/null".to_string(), Node::CharDev { perm: 0o666, major: 1, minor: 3 });
        nodes.insert(
            "bin/busybox".to_string(),
            Node::File { content: Content::Host(PathBuf::from(BUSYBOX)), perm: Some(0o755) },
        );
        nodes.insert(
            "etc/passwd".to_string(),
            Node::File { content: Content::Bytes(b"root:x:0:0:root:/root:/bin/sh\n".to_vec()), perm: Some(0o644) },
        );
        nodes.insert(
            "etc/group".to_string(),
            Node::File { content: Content::Bytes(b"root:x:0:\n".to_vec()), perm: Some(0o644) },
        );
        nodes.insert(
            "etc/hosts".to_string(),
            Node::File { content: Content::Bytes(b"127.0.0.1 localhost\n::1 localhost\n".to_vec()), perm: Some(0o644) },
        );

        let mut user: BTreeMap<String, Node> = BTreeMap::new();
        for (host, guest) in &self.dirs {
            add_host_dir(&mut user, host, guest)?;
        }
        for (host, guest) in &self.binaries {
            if !host.is_file() {
                return Err(VmError::new(format!("binary {} does not exist or is not a file", host.display())));
            }
            for lib in shared_libraries(host)? {
                let key = normalize_guest_path(&lib.to_string_lossy()).map_err(VmError::new)?;
                user.insert(key, Node::File { content: Content::Host(lib), perm: Some(0o755) });
            }
            user.insert(guest.clone(), Node::File { content: Content::Host(host.clone()), perm: Some(0o755) });
        }
        // Explicit files last: they win over libraries and directory copies.
        for (key, node) in &self.nodes {
            user.insert(key.clone(), node.clone());
        }
        for (key, node) in user {
            if key == "init" || key == "tetra" || key.starts_with("tetra/") || key == "bin/busybox" {
                return Err(VmError::new(format!("guest path /{key} is reserved by the VM harness")));
            }
            nodes.insert(key, node);
        }

        nodes.insert("init".to_string(), Node::File { content: Content::Bytes(self.init_script().into_bytes()), perm: Some(0o755) });
        nodes.insert("tetra/lib.sh".to_string(), Node::File { content: Content::Bytes(GUEST_LIB.as_bytes().to_vec()), perm: Some(0o644) });
        let mut script = String::from(". /tetra/lib.sh\n");
        for (key, value) in &self.env {
            script.push_str(&format!("export {key}={}\n", shell_quote(value)));
        }
        script.push_str(&self.script);
        nodes.insert("tetra/script.sh".to_string(), Node::File { content: Content::Bytes(script.into_bytes()), perm: Some(0o755) });

        // Every parent directory must precede its children in the archive.
        let keys: Vec<String> = nodes.keys().cloned().collect();
        for key in keys {
            let mut parent = Path::new(&key).parent();
            while let Some(p) = parent {
                let s = p.to_string_lossy().to_string();
                if s.is_empty() {
                    break;
                }
                match nodes.get(&s) {
                    Some(Node::Dir { .. }) => {}
                    Some(_) => return Err(VmError::new(format!("guest path /{s} is both a file and a directory"))),
                    None => {
                        nodes.insert(s, Node::Dir { perm: 0o755 });
                    }
                }
                parent = p.parent();
            }
        }
        Ok(nodes)
    }

    fn init_script(&self) -> String {
        let mounts = if self.basic_mounts_only { "" } else { EXTRA_MOUNTS };
        let dmesg = if self.dmesg { "tetra_section dmesg dmesg\n" } else { "" };
        // The host kills qemu at `timeout`; the guest gives up a little later.
        let watchdog = self.timeout.as_secs().saturating_add(10).to_string();
        INIT_TEMPLATE
            .replace("@EXTRA_MOUNTS@", mounts)
            .replace("@DMESG@", dmesg)
            .replace("@WATCHDOG_SECS@", &watchdog)
    }
}

/// Shell helpers sourced by the script.
const GUEST_LIB: &str = r#"# tetra VM harness helpers
tetra_begin() { echo "@@TETRA-BEGIN $1@@"; }
tetra_end() { echo "@@TETRA-END $1@@"; }
tetra_section() {
    _tetra_name="$1"; shift
    tetra_begin "$_tetra_name"
    "$@"
    _tetra_rc=$?
    tetra_end "$_tetra_name"
    return $_tetra_rc
}
# tetra_wait SECONDS CMD ARGS...: runs CMD every 0.1 s until it succeeds; gives up with
# status 1 after SECONDS (times TETRA_VM_TIMEOUT_SCALE on the host) worth of polls.
tetra_wait() {
    _tetra_polls=$(( $1 * 10 * ${TETRA_WAIT_SCALE_PCT:-100} / 100 )); shift
    _tetra_i=0
    until "$@"; do
        if [ "$_tetra_i" -ge "$_tetra_polls" ]; then
            echo "tetra_wait: gave up after $_tetra_i polls of: $*"
            return 1
        fi
        sleep 0.1
        _tetra_i=$((_tetra_i + 1))
    done
}
"#;

const EXTRA_MOUNTS: &str = r#"
mnt tracefs tracefs /sys/kernel/tracing
mnt debugfs debugfs /sys/kernel/debug
mnt bpf bpf /sys/fs/bpf
mnt cgroup2 cgroup2 /sys/fs/cgroup
mnt securityfs securityfs /sys/kernel/security
"#;

const INIT_TEMPLATE: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=dumb
mnt() {
    mkdir -p "$3"
    mount -t "$1" "$2" "$3" || echo "tetra-init: mounting $1 on $3 failed"
}
mnt proc proc /proc
mnt sysfs sysfs /sys
mnt devtmpfs devtmpfs /dev
mnt devpts devpts /dev/pts
mnt tmpfs tmpfs /tmp
mnt tmpfs tmpfs /run
@EXTRA_MOUNTS@
ip link set lo up || echo "tetra-init: ip link set lo up failed"
hostname tetra-vm
echo "@@TETRA-VM-READY uptime=$(cut -d' ' -f1 /proc/uptime)@@"
dmesg -n 1
# Guest-side watchdog: bounds qemu's life even if the host test process died.
( sleep @WATCHDOG_SECS@; echo "tetra-init: guest watchdog expired, powering off"; poweroff -f ) &
cd /
sh /tetra/script.sh
rc=$?
. /tetra/lib.sh
@DMESG@
echo "@@TETRA-VM-EXIT=$rc@@"
sync
poweroff -f
"#;

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// "/a/b" -> "a/b"; rejects relative paths, "..", "." and empty paths.
fn normalize_guest_path(path: &str) -> Result<String, String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("guest path {path:?} must be absolute"));
    };
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(format!("guest path {path:?} names the root"));
    }
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(format!("guest path {path:?} contains . or .."));
    }
    Ok(parts.join("/"))
}

fn add_host_dir(nodes: &mut BTreeMap<String, Node>, host: &Path, guest: &str) -> Result<(), VmError> {
    let entries = fs::read_dir(host).map_err(|e| VmError::io(format!("reading directory {}", host.display()), e))?;
    nodes.insert(guest.to_string(), Node::Dir { perm: 0o755 });
    for entry in entries {
        let entry = entry.map_err(|e| VmError::io(format!("reading directory {}", host.display()), e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        let key = format!("{guest}/{name}");
        let meta = fs::metadata(&path).map_err(|e| VmError::io(format!("stat {}", path.display()), e))?;
        if meta.is_dir() {
            add_host_dir(nodes, &path, &key)?;
        } else if meta.is_file() {
            nodes.insert(key, Node::File { content: Content::Host(path), perm: None });
        }
    }
    Ok(())
}

/// Shared libraries and the dynamic loader of `binary`, as reported by `ldd`.
/// Empty for a static binary.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, VmError> {
    let output = Command::new("ldd")
        .arg(binary)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| VmError::io(format!("running ldd {}", binary.display()), e))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let all = format!("{stdout}{stderr}");
    if all.contains("not a dynamic executable") || all.contains("statically linked") {
        return Ok(Vec::new());
    }
    if !output.status.success() {
        return Err(VmError::new(format!("ldd {} failed ({}): {}", binary.display(), output.status, all.trim())));
    }
    parse_ldd(&stdout).map_err(|e| VmError::new(format!("ldd {}: {e}", binary.display())))
}

fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let candidate = match line.split_once("=>") {
            Some((name, target)) => {
                let target = target.trim();
                if target.starts_with("not found") {
                    return Err(format!("library {} not found", name.trim()));
                }
                target.split_whitespace().next().unwrap_or("")
            }
            None => line.split_whitespace().next().unwrap_or(""),
        };
        // linux-vdso.so.1 (0x...) has no file; every real entry is absolute.
        if candidate.starts_with('/') {
            let path = PathBuf::from(candidate);
            if !libs.contains(&path) {
                libs.push(path);
            }
        }
    }
    Ok(libs)
}

// ---------------------------------------------------------------------------
// initramfs (cpio "newc", written directly: no root, no staging tree)

struct CpioWriter<W: Write> {
    out: W,
    offset: u64,
    next_ino: u32,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

impl<W: Write> CpioWriter<W> {
    fn new(out: W) -> Self {
        CpioWriter { out, offset: 0, next_ino: 1 }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn pad4(&mut self) -> io::Result<()> {
        let pad = (4 - (self.offset % 4) as usize) % 4;
        self.write_all(&[0u8; 3][..pad])
    }

    fn header(&mut self, name: &str, mode: u32, size: u32, nlink: u32, rdev: (u32, u32)) -> io::Result<()> {
        let ino = self.next_ino;
        self.next_ino += 1;
        let namesize = name.len() as u32 + 1;
        let header = format!(
            "070701{ino:08x}{mode:08x}{uid:08x}{gid:08x}{nlink:08x}{mtime:08x}{size:08x}{dmaj:08x}{dmin:08x}{rmaj:08x}{rmin:08x}{namesize:08x}{check:08x}",
            uid = 0,
            gid = 0,
            mtime = 0,
            dmaj = 0,
            dmin = 0,
            rmaj = rdev.0,
            rmin = rdev.1,
            check = 0
        );
        self.write_all(header.as_bytes())?;
        self.write_all(name.as_bytes())?;
        self.write_all(&[0])?;
        self.pad4()
    }

    fn dir(&mut self, name: &str, perm: u32) -> io::Result<()> {
        self.header(name, S_IFDIR | perm, 0, 2, (0, 0))
    }

    fn char_dev(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.header(name, S_IFCHR | perm, 0, 1, (major, minor))
    }

    fn file_bytes(&mut self, name: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        let size = u32::try_from(data.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file over 4 GiB"))?;
        self.header(name, S_IFREG | perm, size, 1, (0, 0))?;
        self.write_all(data)?;
        self.pad4()
    }

    fn file_from(&mut self, name: &str, perm: u32, size: u64, reader: &mut impl Read) -> io::Result<()> {
        let size32 = u32::try_from(size).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file over 4 GiB"))?;
        self.header(name, S_IFREG | perm, size32, 1, (0, 0))?;
        let copied = io::copy(&mut reader.take(size), &mut self.out)?;
        self.offset += copied;
        if copied != size {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("file shrank while copying: {copied} of {size} bytes")));
        }
        self.pad4()
    }

    fn finish(mut self) -> io::Result<W> {
        self.header("TRAILER!!!", 0, 0, 1, (0, 0))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn write_initramfs(path: &Path, nodes: &BTreeMap<String, Node>) -> Result<(), VmError> {
    let file = fs::File::create(path).map_err(|e| VmError::io(format!("creating {}", path.display()), e))?;
    let mut cpio = CpioWriter::new(io::BufWriter::new(file));
    for (name, node) in nodes {
        let context = || format!("writing /{name} into {}", path.display());
        match node {
            Node::Dir { perm } => cpio.dir(name, *perm).map_err(|e| VmError::io(context(), e))?,
            Node::CharDev { perm, major, minor } => {
                cpio.char_dev(name, *perm, *major, *minor).map_err(|e| VmError::io(context(), e))?
            }
            Node::File { content: Content::Bytes(data), perm } => {
                cpio.file_bytes(name, perm.unwrap_or(0o644), data).map_err(|e| VmError::io(context(), e))?
            }
            Node::File { content: Content::Host(host), perm } => {
                let mut f = fs::File::open(host).map_err(|e| VmError::io(format!("opening {}", host.display()), e))?;
                let meta = f.metadata().map_err(|e| VmError::io(format!("stat {}", host.display()), e))?;
                if !meta.is_file() {
                    return Err(VmError::new(format!("{} is not a regular file", host.display())));
                }
                use std::os::unix::fs::PermissionsExt;
                let perm = perm.unwrap_or(meta.permissions().mode() & 0o7777);
                cpio.file_from(name, perm, meta.len(), &mut f)
                    .map_err(|e| VmError::io(format!("{} (from {})", context(), host.display()), e))?
            }
        }
    }
    cpio.finish().map_err(|e| VmError::io(format!("finishing {}", path.display()), e))?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Booting

static VM_LOCK: Mutex<()> = Mutex::new(());

/// A private temp dir removed on drop (kept with `TETRA_VM_KEEP=1`).
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<Self, VmError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = env::temp_dir().join(format!("tetra-vm-{}-{n}-{nanos:08x}", std::process::id()));
        fs::create_dir(&path).map_err(|e| VmError::io(format!("creating temp dir {}", path.display()), e))?;
        Ok(TempDir { path })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if env::var_os("TETRA_VM_KEEP").is_some_and(|v| v == "1") {
            eprintln!("TETRA_VM_KEEP=1: keeping {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// With `TETRA_VM_CONSOLE_DIR` set, writes the console to `<dir>/<kernel>-<test>-<n>.log`
/// (the test thread's name), to read a failed run's whole guest output afterwards.
fn save_console(console: &str) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let Some(dir) = env::var_os("TETRA_VM_CONSOLE_DIR").filter(|d| !d.is_empty()) else { return };
    let test = thread::current().name().unwrap_or("vm").replace("::", "-");
    let kernel = kernel_name().unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = Path::new(&dir).join(format!("{kernel}-{test}-{n}.log"));
    if let Err(e) = fs::create_dir_all(&dir).and_then(|_| fs::write(&path, console)) {
        eprintln!("TETRA_VM_CONSOLE_DIR: writing {}: {e}", path.display());
    }
}

#[derive(Default)]
struct ConsoleState {
    bytes: Vec<u8>,
    ready_at: Option<Instant>,
    exit_seen_at: Option<Instant>,
}

fn boot(vm: &Vm, work: &TempDir, initramfs: &Path) -> Result<VmOutput, VmError> {
    let kernel = kernel_path();
    let mut cmdline = BASE_CMDLINE.to_string();
    for arg in &vm.kernel_args {
        cmdline.push(' ');
        cmdline.push_str(arg);
    }
    let mut cmd = Command::new(qemu_binary());
    cmd.args(["-accel", "tcg", "-nographic", "-no-reboot", "-nic", "none"])
        .arg("-m")
        .arg(vm.memory_mb.to_string())
        .arg("-smp")
        .arg(vm.cpus.to_string())
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(initramfs)
        .arg("-append")
        .arg(&cmdline)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let _ = fs::write(work.path().join("qemu-command.txt"), format!("{cmd:?}\n"));

    let verbose = env::var_os("TETRA_VM_VERBOSE").is_some_and(|v| v == "1");
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| VmError::io(format!("starting {}", qemu_binary().display()), e))?;

    let state = Arc::new(Mutex::new(ConsoleState::default()));
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(VmError::new("qemu stdio pipes missing"));
    };
    let reader_state = Arc::clone(&state);
    let reader = thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if verbose {
                eprint!("[vm] {}", String::from_utf8_lossy(&line));
            }
            let mut st = lock(&reader_state);
            let text = String::from_utf8_lossy(&line);
            if st.ready_at.is_none() && text.contains(READY_MARKER) {
                st.ready_at = Some(Instant::now());
            }
            if st.exit_seen_at.is_none() && text.contains(EXIT_MARKER) {
                st.exit_seen_at = Some(Instant::now());
            }
            st.bytes.extend_from_slice(&line);
        }
    });
    let stderr_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });

    let mut timed_out = false;
    let mut killed_after_exit = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(VmError::io("waiting for qemu", e));
            }
        }
        let exit_seen_at = lock(&state).exit_seen_at;
        if let Some(at) = exit_seen_at {
            if at.elapsed() > POWEROFF_GRACE {
                killed_after_exit = true;
                let _ = child.kill();
                break child.wait().ok();
            }
        }
        if started.elapsed() > vm.timeout {
            timed_out = true;
            let _ = child.kill();
            break child.wait().ok();
        }
        thread::sleep(Duration::from_millis(50));
    };
    let total_time = started.elapsed();
    let _ = reader.join();
    let qemu_stderr = String::from_utf8_lossy(&stderr_reader.join().unwrap_or_default()).to_string();

    let st = lock(&state);
    let console = clean_console(&String::from_utf8_lossy(&st.bytes));
    save_console(&console);
    if timed_out {
        return Err(VmError::new(format!(
            "VM timed out after {:.1}s (limit {:.0}s); qemu killed{}",
            total_time.as_secs_f64(),
            vm.timeout.as_secs_f64(),
            if st.ready_at.is_none() { "; the guest never reached /init's ready marker" } else { "" }
        ))
        .with_console(&console));
    }
    let exit_code = parse_exit_code(&console);
    if exit_code.is_none() && !status.is_some_and(|s| s.success()) {
        return Err(VmError::new(format!(
            "qemu failed ({}) before the guest script finished; qemu stderr: {}",
            status.map(|s| s.to_string()).unwrap_or_else(|| "unknown status".to_string()),
            qemu_stderr.trim()
        ))
        .with_console(&console));
    }
    let boot_time = st.ready_at.map(|at| at.duration_since(started));
    let guest_uptime_at_ready = parse_ready_uptime(&console);
    Ok(VmOutput {
        console,
        exit_code,
        boot_time,
        guest_uptime_at_ready,
        total_time,
        qemu_stderr,
        killed_after_exit,
    })
}

// ---------------------------------------------------------------------------
// Output

/// What a VM run produced.
#[derive(Debug, Clone)]
pub struct VmOutput {
    /// The serial console, without carriage returns and terminal escapes.
    pub console: String,
    /// Exit status of the script; `None` when the guest never printed it
    /// (kernel panic, the script powered off itself, ...).
    pub exit_code: Option<i32>,
    /// Host wall time from starting qemu until /init printed its ready marker
    /// (kernel boot + mounts), `None` if it never did.
    pub boot_time: Option<Duration>,
    /// Guest `/proc/uptime` when /init was ready, in seconds.
    pub guest_uptime_at_ready: Option<f64>,
    /// Host wall time from starting qemu until it exited.
    pub total_time: Duration,
    /// What qemu printed on its stderr.
    pub qemu_stderr: String,
    /// True when qemu did not power off within 10 s of the exit marker and was killed.
    pub killed_after_exit: bool,
}

impl VmOutput {
    /// Text between the first `@@TETRA-BEGIN name@@` and the following
    /// `@@TETRA-END name@@` (one trailing newline per line kept).
    pub fn section(&self, name: &str) -> Option<String> {
        extract_sections(&self.console, name).into_iter().next()
    }

    /// Every section with this name, in order.
    pub fn sections(&self, name: &str) -> Vec<String> {
        extract_sections(&self.console, name)
    }

    /// Like [`section`](Self::section) but an error with the console tail when absent.
    pub fn require_section(&self, name: &str) -> Result<String, VmError> {
        self.section(name)
            .ok_or_else(|| VmError::new(format!("section {name:?} not found in the guest console")).with_console(&self.console))
    }

    /// A section of JSON lines (an export file the script printed), each line parsed.
    pub fn json_section(&self, name: &str) -> Result<Vec<serde_json::Value>, VmError> {
        self.require_section(name)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .map_err(|e| VmError::new(format!("section {name:?}: {e}: {l}")).with_console(&self.console))
            })
            .collect()
    }

    /// A section of `tetra getevents -o compact` output: its non-empty lines with runs
    /// of spaces squeezed (`📚 read    vm /bin/x` -> `📚 read vm /bin/x`).
    pub fn compact_section(&self, name: &str) -> Result<Vec<String>, VmError> {
        Ok(self
            .require_section(name)?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect())
    }

    /// The number a guest program printed as a `key=N` line in section `name` (its pids,
    /// ports, exit code), or an error quoting the section.
    pub fn section_value(&self, name: &str, key: &str) -> Result<u64, VmError> {
        let text = self.require_section(name)?;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| VmError::new(format!("no {key}=N line in section {name:?}:\n{text}")))
    }

    /// Console lines the script printed (between the ready and exit markers).
    pub fn script_output(&self) -> String {
        let start = self.console.find(READY_MARKER).and_then(|i| self.console[i..].find('\n').map(|j| i + j + 1));
        let Some(start) = start else { return String::new() };
        let end = self.console[start..].find(EXIT_MARKER).map(|j| start + j).unwrap_or(self.console.len());
        self.console[start..end].to_string()
    }

    /// Error (with the console tail) unless the script exited with status 0.
    pub fn ensure_success(&self) -> Result<(), VmError> {
        match self.exit_code {
            Some(0) => Ok(()),
            Some(code) => Err(VmError::new(format!("guest script exited with status {code}")).with_console(&self.console)),
            None => Err(VmError::new("guest script did not report an exit status (kernel panic or early power off?)")
                .with_console(&self.console)),
        }
    }

    /// Kernel log lines that indicate a kernel problem (BUG, WARNING, Oops,
    /// panic, call traces), from the `dmesg` section and the console.
    pub fn kernel_problems(&self) -> Vec<String> {
        const NEEDLES: [&str; 6] = ["BUG:", "WARNING:", "Oops", "Kernel panic", "Call Trace:", "general protection fault"];
        self.console
            .lines()
            .filter(|l| NEEDLES.iter().any(|n| l.contains(n)))
            .map(str::to_string)
            .collect()
    }

    /// The last `n` console lines.
    pub fn tail(&self, n: usize) -> String {
        tail(&self.console, n)
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn extract_sections(console: &str, name: &str) -> Vec<String> {
    let begin = format!("{BEGIN_PREFIX}{name}{MARKER_SUFFIX}");
    let end = format!("{END_PREFIX}{name}{MARKER_SUFFIX}");
    let mut sections = Vec::new();
    let mut current: Option<String> = None;
    for line in console.lines() {
        match current.as_mut() {
            None => {
                if line.trim_end() == begin {
                    current = Some(String::new());
                }
            }
            Some(buf) => {
                // The end marker may follow output that lacked a final newline.
                if let Some(before) = line.trim_end().strip_suffix(end.as_str()) {
                    if !before.is_empty() {
                        buf.push_str(before);
                        buf.push('\n');
                    }
                    sections.push(current.take().unwrap_or_default());
                } else {
                    buf.push_str(line);
                    buf.push('\n');
                }
            }
        }
    }
    sections
}

fn parse_exit_code(console: &str) -> Option<i32> {
    console.lines().rev().find_map(|line| {
        let rest = &line[line.find(EXIT_MARKER)? + EXIT_MARKER.len()..];
        rest.trim().trim_end_matches('@').parse().ok()
    })
}

fn parse_ready_uptime(console: &str) -> Option<f64> {
    let line = console.lines().find(|l| l.contains(READY_MARKER))?;
    let rest = &line[line.find("uptime=")? + "uptime=".len()..];
    rest.trim_end().trim_end_matches('@').parse().ok()
}

/// Removes carriage returns, NULs and terminal escape sequences (SeaBIOS
/// clears the screen; the kernel may emit them too).
fn clean_console(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    // CSI: parameters/intermediates up to a final byte 0x40..=0x7e.
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    // OSC: up to BEL or ESC '\'.
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' | '\0' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_is_parsed() {
        let text = "\tlinux-vdso.so.1 (0x00007ffc2b5f1000)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f0f7b9c1000)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0f7b7e0000)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f0f7ba2a000)\n";
        let libs = parse_ldd(text).unwrap();
        assert_eq!(
            libs,
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        let err = parse_ldd("\tlibfoo.so.1 => not found\n").unwrap_err();
        assert!(err.contains("libfoo.so.1"), "{err}");
    }

    #[test]
    fn ldd_of_this_test_binary_includes_libc_and_loader() {
        let exe = env::current_exe().unwrap();
        let libs = shared_libraries(&exe).unwrap();
        assert!(libs.iter().any(|p| p.to_string_lossy().contains("libc.so")), "{libs:?}");
        assert!(libs.iter().any(|p| p.to_string_lossy().contains("ld-linux")), "{libs:?}");
    }

    #[test]
    fn static_binary_has_no_libraries() {
        if Path::new(BUSYBOX).is_file() {
            assert!(shared_libraries(Path::new(BUSYBOX)).unwrap().is_empty());
        }
    }

    #[test]
    fn cargo_build_binary_finds_a_workspace_binary() {
        let path = cargo_build_binary("tetra-tests", "vm_probe").unwrap();
        assert!(path.ends_with("vm_probe"), "{}", path.display());
        assert!(!shared_libraries(&path).unwrap().is_empty(), "vm_probe should be dynamically linked");
        let err = cargo_build_binary("tetra-tests", "no_such_binary").unwrap_err();
        assert!(err.to_string().contains("no_such_binary"), "{err}");
    }

    #[test]
    fn guest_paths_are_normalized_and_checked() {
        assert_eq!(normalize_guest_path("/bin//tool").unwrap(), "bin/tool");
        assert!(normalize_guest_path("bin/tool").is_err());
        assert!(normalize_guest_path("/").is_err());
        assert!(normalize_guest_path("/a/../etc").is_err());
    }

    #[test]
    fn cpio_newc_layout() {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("etc", 0o755).unwrap();
        w.file_bytes("etc/x", 0o644, b"hello").unwrap();
        let out = w.finish().unwrap();
        assert_eq!(out.len() % 4, 0);
        assert!(out.starts_with(b"070701"));
        // Second header starts 4-aligned after "etc\0" (110 + 4 = 114 -> 116).
        assert_eq!(&out[116..122], b"070701");
        let second = std::str::from_utf8(&out[116..116 + 110]).unwrap();
        assert_eq!(&second[14..22], "000081a4", "mode of a 0644 regular file");
        assert_eq!(&second[54..62], "00000005", "file size");
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("etc/x\0"));
        assert!(text.contains("hello"));
        assert!(text.contains("TRAILER!!!\0"));
    }

    #[test]
    fn console_is_cleaned_and_sections_extracted() {
        let raw = "\u{1b}c\u{1b}[?7l\u{1b}[2JSeaBIOS\r\n@@TETRA-VM-READY uptime=2.31@@\r\n\
                   @@TETRA-BEGIN a@@\r\nline 1\r\nline 2\r\n@@TETRA-END a@@\r\n\
                   @@TETRA-BEGIN b@@\r\nno newline@@TETRA-END b@@\r\n@@TETRA-VM-EXIT=3@@\r\n";
        let console = clean_console(raw);
        assert!(console.starts_with("SeaBIOS\n"), "{console:?}");
        let out = VmOutput {
            console,
            exit_code: None,
            boot_time: None,
            guest_uptime_at_ready: None,
            total_time: Duration::ZERO,
            qemu_stderr: String::new(),
            killed_after_exit: false,
        };
        assert_eq!(out.section("a").as_deref(), Some("line 1\nline 2\n"));
        assert_eq!(out.section("b").as_deref(), Some("no newline\n"));
        assert_eq!(out.section("c"), None);
        assert!(out.require_section("c").is_err());
        assert_eq!(parse_exit_code(&out.console), Some(3));
        assert_eq!(parse_ready_uptime(&out.console), Some(2.31));
        assert!(out.script_output().starts_with("@@TETRA-BEGIN a@@\n"));
    }

    #[test]
    fn builder_errors_are_reported_not_panicked() {
        let err = Vm::new().file_bytes("x", "relative/path", 0o644).run().unwrap_err();
        assert!(err.to_string().contains("must be absolute"), "{err}");
        let vm = Vm::new().file_bytes("x", "/init", 0o644);
        let err = vm.collect_nodes().err().expect("reserved path must be refused");
        assert!(err.to_string().contains("reserved"), "{err}");
    }

    #[test]
    fn init_script_has_mounts_watchdog_and_markers() {
        let init = Vm::new().timeout(Duration::from_secs(50)).init_script();
        assert!(init.contains("mnt bpf bpf /sys/fs/bpf"));
        assert!(init.contains("sleep 60;"), "{init}");
        assert!(init.contains("tetra_section dmesg dmesg"));
        assert!(!init.contains("@EXTRA_MOUNTS@") && !init.contains("@DMESG@") && !init.contains("@WATCHDOG_SECS@"));
        let basic = Vm::new().basic_mounts_only().dmesg(false).init_script();
        assert!(!basic.contains("/sys/fs/bpf") && !basic.contains("tetra_section dmesg"));
    }

    #[test]
    fn parents_are_created_before_children() {
        let nodes = Vm::new().file_bytes("x", "/opt/a/b/c.txt", 0o600).collect_nodes().unwrap();
        let keys: Vec<&String> = nodes.keys().collect();
        let pos = |k: &str| keys.iter().position(|x| x.as_str() == k).unwrap();
        assert!(pos("opt") < pos("opt/a"));
        assert!(pos("opt/a") < pos("opt/a/b"));
        assert!(pos("opt/a/b") < pos("opt/a/b/c.txt"));
        assert!(matches!(nodes.get("opt/a/b"), Some(Node::Dir { .. })));
    }
}
