//! Policy sensors: each hook of a compiled TracingPolicy becomes a fresh instance of the
//! generic BPF object (bpf/generic.bpf.c) with its own configuration, selector blob and
//! value maps. Every instance writes into the lifecycle sensor's ring buffer and drop
//! counters (shared by fd), so policy events flow through the same reader.
//!
//! A policy loads all of its hooks or none; dropping a [`LoadedPolicy`] detaches its
//! programs and frees its maps.
pub mod attach;
pub mod config;
pub mod events;
pub mod maps;
pub mod sweep;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, MapType, Object, ObjectBuilder};
use tetra_crds::compile::{encoding, AttachTarget, CompiledHook, CompiledPolicy};
use thiserror::Error;

use crate::abi::ARGS_MAX_SLOTS;
use crate::sensors::memory::{self, BpfId};
use crate::sensors::process::ProcessSensor;
use config::{check_hook, has_return, has_task_filters, needs_binary, reader_for, uses_fmod_ret, uses_follow_fd, uses_rate_limit, uses_sock_track, GenericConfig};

pub use events::{handle_generic, HookInfo, PolicyInfo, PolicyTable};

/// The generic object, built by build.rs.
const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/generic.bpf.o"));

/// Rate-limit entries per hook: distinct (selector, scope, arguments) keys remembered. The
/// map is a preallocated LRU whose key holds only the hook's arguments: a key
/// it forgot lets one more event through, nothing is lost.
const RATE_LIMIT_ENTRIES: u32 = 128;
/// Bytes of each argument in a rate-limit key (`RATE_ARG_BYTES`, bpf/lib/generic.h).
const RATE_ARG_BYTES: u32 = 40;
/// `sizeof(struct fd_key)` and `sizeof(struct fd_value)` (checked against BTF in a test).
pub const FD_KEY_SIZE: u32 = 8;
pub const FD_VALUE_SIZE: u32 = 1032;
/// Followed fds one policy holds at once. Not preallocated: an entry costs about 1.1 KiB
/// while its fd is followed, max_entries only its 16-byte hash bucket. A follow beyond
/// it is counted (`follow_fd_full`).
const FOLLOWED_FDS: u32 = 4096;
/// Tracked sockets one policy remembers (TrackSock); an LRU, so sockets never untracked
/// are forgotten oldest first.
const TRACKED_SOCKETS: u32 = 16384;
/// `sizeof(struct max_data_buf)`: one maxData message (checked against BTF in a test).
pub const DATA_CHUNK_SIZE: u32 = 32768;
/// Calls of one return-probe hook in flight at once (threads inside the function). Not
/// preallocated: a call costs its 6.5 KB entry only while in flight. A call beyond it
/// is counted (`stash_full`); entries of threads that died in the call are swept.
const CALLS_IN_FLIGHT: u32 = 1024;

#[derive(Debug, Error)]
pub enum SensorError {
    #[error("{hook}: {reason}")]
    Unsupported { hook: String, reason: String },
    #[error("{hook}: symbol {symbol} not found in /proc/kallsyms")]
    SymbolNotFound { hook: String, symbol: String },
    #[error("{hook}: this kernel has no kprobes (no /sys/bus/event_source/devices/kprobe)")]
    NoKprobes { hook: String },
    #[error("{hook}: BPF LSM is not enabled (boot with lsm=...,bpf; /sys/kernel/security/lsm lists {active:?})")]
    NoBpfLsm { hook: String, active: String },
    #[error("{hook}: loading failed (verifier or map creation): {error}\n{log}")]
    Verifier { hook: String, error: String, log: String },
    #[error("{hook}: attaching failed: {reason}")]
    Attach { hook: String, reason: String },
    #[error("{hook}: {what}: {error}")]
    Setup { hook: String, what: String, error: String },
    #[error("shared policy maps: {0}")]
    Shared(String),
}

/// What every policy object shares with the lifecycle sensor: its ring buffer, drop
/// counters and each process's executable (for matchBinaries).
pub struct GenericShared {
    events: OwnedFd,
    drops: OwnedFd,
    binaries: OwnedFd,
    exec_states: OwnedFd,
    /// matchBinaries In/NotIn: the numbers of the paths (`binary_ids`, `binary_ids_gen`).
    binary_ids: maps::BinaryIds,
    /// Where maxData messages are built (`data_heap`): 32 KiB per CPU, one for all hooks.
    data_heap: MapHandle,
    agent_tgid: u32,
    can_override: bool,
    /// Inode of each host namespace (encoding.rs order), for `host_ns` in matchNamespaces.
    host_ns: [Result<u32, String>; 10],
    next_policy_id: AtomicU32,
    btf: Option<PathBuf>,
}

/// The host's namespaces: those of pid 1, or the agent's own where pid 1's cannot be read
/// (a sandbox may deny access to pid 1; the agent runs in the host's namespaces).
fn host_namespaces() -> [Result<u32, String>; 10] {
    use std::os::unix::fs::MetadataExt;
    // The lifecycle ABI numbers namespaces as the selector blob does (Uts=0 .. User=9).
    crate::process::abi_ns::PROC_NAMES.map(|n| {
        let inode = |path: &str| std::fs::metadata(path).map(|m| m.ino() as u32).map_err(|e| format!("{path}: {e}"));
        inode(&format!("/proc/1/ns/{n}")).or_else(|_| inode(&format!("/proc/self/ns/{n}")))
    })
}

/// The hook's selector blob with every `host_ns` value replaced by the host's inode.
fn resolve_host_ns(hook: &CompiledHook, host: &[Result<u32, String>; 10]) -> Result<Vec<u8>, String> {
    let mut selectors = hook.selectors.clone();
    if !selectors.iter().flat_map(|s| &s.namespaces).any(|f| f.inodes.contains(&encoding::HOST_NS)) {
        return Ok(hook.selector_blob.clone());
    }
    for f in selectors.iter_mut().flat_map(|s| s.namespaces.iter_mut()) {
        for inode in f.inodes.iter_mut().filter(|i| **i == encoding::HOST_NS) {
            let resolved = host.get(f.ns as usize).ok_or_else(|| format!("unknown namespace kind {}", f.ns))?;
            *inode = resolved.clone().map_err(|e| format!("host_ns: cannot read the host's namespace: {e}"))?;
        }
    }
    Ok(encoding::encode(&selectors))
}

/// Whether kprobe Override works on this kernel (`bpf_override_return`).
pub fn override_supported() -> bool {
    libbpf_rs::ProgramType::Kprobe
        .is_helper_supported(libbpf_rs::libbpf_sys::BPF_FUNC_override_return)
        .unwrap_or(false)
}

impl GenericShared {
    /// `btf`: the BTF file the objects are relocated against (`--btf`), when not the
    /// kernel's own.
    pub fn new(process: &ProcessSensor, btf: Option<&Path>) -> Result<Self, SensorError> {
        let dup = |m: &libbpf_rs::Map<'static>, what: &str| {
            m.as_fd().try_clone_to_owned().map_err(|e| SensorError::Shared(format!("{what}: {e}")))
        };
        let can_override = override_supported();
        Ok(GenericShared {
            events: dup(process.events_map(), "events map")?,
            drops: dup(process.drops_map(), "drops map")?,
            binaries: dup(process.binaries_map(), "binaries map")?,
            exec_states: dup(process.exec_states_map(), "exec states map")?,
            binary_ids: {
                let (ids, generation) = process.binary_ids_maps();
                let handle = |m| MapHandle::try_from(m).map_err(|e| SensorError::Shared(format!("binary_ids: {e}")));
                maps::BinaryIds::new(handle(ids)?, handle(generation)?)
            },
            data_heap: MapHandle::create(
                MapType::PercpuArray,
                Some("tetra_data_heap"),
                4,
                DATA_CHUNK_SIZE,
                1,
                &libbpf_rs::libbpf_sys::bpf_map_create_opts {
                    sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
                    ..Default::default()
                },
            )
            .map_err(|e| SensorError::Shared(format!("creating the maxData map: {e}")))?,
            agent_tgid: std::process::id(),
            can_override,
            host_ns: host_namespaces(),
            next_policy_id: AtomicU32::new(1),
            btf: btf.map(Path::to_path_buf),
        })
    }
}

/// One attached hook: the links holding its programs attached (the entry program, and the
/// return program when there is one) and its selector counters. The kernel keeps the
/// programs and their maps alive through the links, so libbpf's object (a copy of every
/// program's instructions, the object's BTF: about 1 MiB of user memory per hook) is
/// closed once attached, except for USDT hooks, whose links use the object's USDT manager
/// when they detach.
struct LoadedHook {
    // Field order is drop order: detach first, then free the object.
    _links: Vec<Link>,
    action_counts: MapHandle,
    _usdt_object: Option<Object>,
    /// The kernel memory of its maps and programs, shared ones included (by id).
    charges: Vec<(BpfId, u64)>,
    /// Its calls in flight (`stash`), when it has a return program.
    stash: Option<MapHandle>,
}

/// A policy whose hooks are all attached. Dropping it detaches and frees everything.
pub struct LoadedPolicy {
    /// By hook id; `None` for a hook whose function this kernel lacks and whose policy
    /// says to ignore that (`ignore: {callNotFound: true}`).
    hooks: Vec<Option<LoadedHook>>,
    info: Arc<PolicyInfo>,
    kernel_memory: u64,
    /// FollowFD: (process, fd) -> path, shared by its hooks.
    followed_fds: Option<MapHandle>,
}

impl LoadedPolicy {
    /// Metadata the event builder needs; register it in a [`PolicyTable`].
    pub fn info(&self) -> &Arc<PolicyInfo> {
        &self.info
    }

    /// Kernel memory (memlock) of the maps and programs this policy alone holds.
    pub fn kernel_memory(&self) -> u64 {
        self.kernel_memory
    }

    pub fn hook_count(&self) -> usize {
        self.hooks.iter().flatten().count()
    }

    /// What each hook's selectors did so far (the `action_counts` map of
    /// bpf/generic.bpf.c, summed over CPUs): one row per hook, one array per selector.
    pub fn action_counts(&self) -> Vec<[[u64; ACTION_COUNTERS]; MAX_SELECTORS]> {
        self.hooks
            .iter()
            .map(|h| h.as_ref().map_or([[0; ACTION_COUNTERS]; MAX_SELECTORS], LoadedHook::action_counts))
            .collect()
    }

    /// Removes the map entries of tasks that are gone (see [`sweep`]); returns how many.
    pub fn sweep(&self, procfs: &std::path::Path) -> usize {
        let calls: usize = self.hooks.iter().flatten().filter_map(|h| h.stash.as_ref()).map(|m| sweep::calls_in_flight(m, procfs)).sum();
        calls + self.followed_fds.as_ref().map_or(0, |m| sweep::followed_fds(m, procfs))
    }

    /// Events of this policy that Post's rateLimit suppressed, all hooks and selectors.
    pub fn rate_limited(&self) -> u64 {
        self.action_counts().iter().flatten().map(|c| c[COUNT_RATE_LIMITED]).sum()
    }
}

/// Counters per selector in `action_counts`, in the order of TracingPolicyActionCounters,
/// then the events Post's rateLimit suppressed.
pub const ACTION_COUNTERS: usize = 11;
/// Index of the rateLimit counter in a selector's `action_counts`.
pub const COUNT_RATE_LIMITED: usize = 10;
/// Selectors a hook evaluates (`MAX_SELECTORS` in bpf/lib/selectors.h).
pub const MAX_SELECTORS: usize = 5;

impl LoadedHook {
    fn action_counts(&self) -> [[u64; ACTION_COUNTERS]; MAX_SELECTORS] {
        let mut counts = [[0u64; ACTION_COUNTERS]; MAX_SELECTORS];
        let map = &self.action_counts;
        for (selector, row) in counts.iter_mut().enumerate() {
            for (counter, total) in row.iter_mut().enumerate() {
                let key = ((selector * ACTION_COUNTERS + counter) as u32).to_ne_bytes();
                // One u64 per CPU; a failed read leaves the counter at 0.
                if let Ok(Some(per_cpu)) = map.lookup_percpu(&key, MapFlags::ANY) {
                    *total = per_cpu
                        .iter()
                        .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_ne_bytes))
                        .sum();
                }
            }
        }
        counts
    }
}

/// `spec.kprobes[1] fd_install`: how errors name a hook.
pub fn hook_name(hook: &CompiledHook) -> String {
    let what = match &hook.attach {
        AttachTarget::Kprobe { symbol, .. } | AttachTarget::Fentry { symbol, .. } => symbol.clone(),
        AttachTarget::Tracepoint { subsystem, event, .. } => format!("{subsystem}/{event}"),
        AttachTarget::Uprobe { path, location, .. } => format!("{path} {location:?}"),
        AttachTarget::Lsm { hook } => hook.clone(),
        AttachTarget::Usdt { path, provider, name } => format!("{path} {provider}:{name}"),
    };
    format!("{} {what}", hook.source)
}

/// Loads and attaches every hook of `compiled`, or none: on the first failure whatever
/// was attached is dropped (detached) and the error names the hook.
pub fn load_policy(
    shared: &GenericShared,
    compiled: &CompiledPolicy,
) -> Result<LoadedPolicy, SensorError> {
    load_scoped_policy(shared, compiled, None)
}

/// [`load_policy`] for a pod-scoped policy: its hooks only run for tasks whose cgroup id is
/// a key of `cgroups` (a hash map u64 -> u8 that the caller keeps up to date).
pub fn load_scoped_policy(
    shared: &GenericShared,
    compiled: &CompiledPolicy,
    cgroups: Option<&MapHandle>,
) -> Result<LoadedPolicy, SensorError> {
    let policy_id = shared.next_policy_id.fetch_add(1, Ordering::Relaxed);
    // Maps the hooks of one policy share (created only when used), as bpf/lib/generic.h
    // defines them: fd_follow a hash not preallocated, sock_owner an LRU.
    let policy_map = |used: bool, what: &str, name: String, key: u32, value: u32, entries: u32| {
        if !used {
            return Ok(None);
        }
        let (kind, map_flags) = match what {
            "followed-fd" => (MapType::Hash, libbpf_rs::libbpf_sys::BPF_F_NO_PREALLOC),
            _ => (MapType::LruHash, 0),
        };
        let opts = libbpf_rs::libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
            map_flags,
            ..Default::default()
        };
        MapHandle::create(kind, Some(name), key, value, entries, &opts)
            .map(Some)
            .map_err(|e| SensorError::Shared(format!("creating the {what} map of policy {}: {e}", compiled.name)))
    };
    let shared_maps = PolicyMaps {
        follow: policy_map(uses_follow_fd(&compiled.hooks), "followed-fd", format!("tetra_fd_p{policy_id}"), FD_KEY_SIZE, FD_VALUE_SIZE, FOLLOWED_FDS)?,
        sock_owner: policy_map(uses_sock_track(&compiled.hooks), "tracked-socket", format!("tetra_sk_p{policy_id}"), 8, 8, TRACKED_SOCKETS)?,
        cgroups,
    };
    let mut hooks = Vec::with_capacity(compiled.hooks.len());
    for (hook_id, hook) in compiled.hooks.iter().enumerate() {
        // `?` drops `hooks`, detaching what was attached before this hook.
        match load_hook(shared, compiled, policy_id, hook_id as u32, hook, &shared_maps) {
            Ok(h) => hooks.push(Some(h)),
            Err(e @ SensorError::SymbolNotFound { .. }) if hook.ignore_missing => {
                tracing::warn!("policy {}: {e}; ignored (callNotFound)", compiled.name);
                hooks.push(None);
            }
            Err(e) => return Err(e),
        }
    }
    // What the policy holds alone: every map and program of its hooks once, less the maps
    // shared with the lifecycle sensor and the pod scope's cgroup map.
    let shared_ids: Vec<BpfId> = [&shared.events, &shared.drops, &shared.binaries, &shared.exec_states]
        .into_iter()
        .filter_map(memory::charge)
        .chain(memory::charge(&shared.data_heap.as_fd()))
        .chain(memory::charge(&shared.binary_ids.ids_fd()))
        .chain(memory::charge(&shared.binary_ids.generation_fd()))
        .chain(cgroups.and_then(|m| memory::charge(&m.as_fd())))
        .map(|(id, _)| id)
        .collect();
    let charges: std::collections::BTreeMap<BpfId, u64> =
        hooks.iter().flatten().flat_map(|h| h.charges.iter().copied()).filter(|(id, _)| !shared_ids.contains(id)).collect();
    let info = Arc::new(PolicyInfo::new(policy_id, compiled));
    Ok(LoadedPolicy { hooks, info, kernel_memory: charges.values().sum(), followed_fds: shared_maps.follow })
}

fn setup(hook: &str, what: &str) -> impl Fn(libbpf_rs::Error) -> SensorError {
    let (hook, what) = (hook.to_string(), what.to_string());
    move |e| SensorError::Setup { hook: hook.clone(), what: what.clone(), error: e.to_string() }
}

/// Maps shared by every hook of one policy.
struct PolicyMaps<'a> {
    /// FollowFD: (process, fd) -> path.
    follow: Option<MapHandle>,
    /// TrackSock: socket -> owning process.
    sock_owner: Option<MapHandle>,
    /// Pod scope: the cgroups the policy applies to.
    cgroups: Option<&'a MapHandle>,
}

fn load_hook(
    shared: &GenericShared,
    compiled: &CompiledPolicy,
    policy_id: u32,
    hook_id: u32,
    hook: &CompiledHook,
    policy_maps: &PolicyMaps,
) -> Result<LoadedHook, SensorError> {
    let (follow, cgroups) = (policy_maps.follow.as_ref(), policy_maps.cgroups);
    let name = hook_name(hook);
    check_hook(hook, shared.can_override)
        .map_err(|reason| SensorError::Unsupported { hook: name.clone(), reason })?;
    // An Override on a security_* function without bpf_override_return runs as fmod_ret:
    // attached like an fentry (a BPF trampoline on the same symbol and arguments), it
    // returns the error in place of the function.
    let fmod_ret = uses_fmod_ret(hook, shared.can_override);
    let target = match &hook.attach {
        AttachTarget::Kprobe { symbol, syscall, .. } if fmod_ret => {
            AttachTarget::Fentry { symbol: symbol.clone(), syscall: *syscall, return_probe: false }
        }
        other => other.clone(),
    };
    attach::preflight(&name, &target)?;
    let program = if fmod_ret { "generic_fmod_ret" } else { attach::program_for(&target) };
    let ret_program = has_return(hook).then(|| attach::return_program_for(&target)).flatten();

    let mut cfg = GenericConfig {
        policy_id,
        hook_id,
        agent_tgid: shared.agent_tgid,
        n_args: hook.args.len() as u32,
        syscall: u32::from(matches!(
            hook.attach,
            AttachTarget::Kprobe { syscall: true, .. } | AttachTarget::Fentry { syscall: true, .. }
        )),
        can_override: u32::from(shared.can_override),
        monitor_only: u32::from(compiled.options.monitor_only),
        needs_binary: u32::from(needs_binary(hook)),
        task_filters: u32::from(has_task_filters(hook)),
        has_return: u32::from(ret_program.is_some()),
        ret_reader: hook.return_arg.as_ref().and_then(|r| reader_for(r.ty)).unwrap_or(0),
        follow_fd: u32::from(follow.is_some()),
        cgroup_filter: u32::from(cgroups.is_some()),
        stack_traces: u32::from(config::wants_stack_traces(hook)),
        sock_track: u32::from(policy_maps.sock_owner.is_some()),
        ret_sock_action: hook.return_arg_action.unwrap_or(0),
        ..Default::default()
    };
    let positions = attach::arg_positions(&name, hook)?;
    for (i, a) in hook.args.iter().enumerate() {
        cfg.arg_reader[i] = reader_for(a.ty).unwrap_or(0);
        (cfg.arg_pos[i], cfg.arg_size[i]) = positions.args[i];
        if let Some((pos, size)) = positions.sizes[i] {
            (cfg.size_pos[i], cfg.size_size[i]) = (pos + 1, size);
        }
        if a.return_copy {
            cfg.return_copy |= 1 << i;
        }
        if a.max_data {
            cfg.max_data |= 1 << i;
        }
    }

    let mut builder = ObjectBuilder::default();
    builder.name(format!("tetra_p{policy_id}_h{hook_id}")).map_err(setup(&name, "naming the object"))?;
    if let Some(btf) = &shared.btf {
        builder.btf_custom_path(btf).map_err(setup(&name, "--btf"))?;
    }
    let mut open = builder
        .open_memory(OBJECT)
        .map_err(setup(&name, "opening the generic object"))?;
    let mut map_entries = maps::entries(&hook.maps);
    map_entries.entries.extend(shared.binary_ids.entries(hook).map_err(|error| SensorError::Setup {
        hook: name.clone(),
        what: "matchBinaries".into(),
        error,
    })?);
    config::set_pre_check(hook, &mut cfg, |filter| shared.binary_ids.numbers(hook, filter));
    for mut map in open.maps_mut() {
        let map_name = map.name().to_string_lossy().into_owned();
        match map_name.as_str() {
            "events" => map.reuse_fd(shared.events.as_fd()),
            "drops" => map.reuse_fd(shared.drops.as_fd()),
            "binaries" => map.reuse_fd(shared.binaries.as_fd()),
            "exec_states" => map.reuse_fd(shared.exec_states.as_fd()),
            "binary_ids" => map.reuse_fd(shared.binary_ids.ids_fd()),
            "binary_ids_gen" => map.reuse_fd(shared.binary_ids.generation_fd()),
            "data_heap" => map.reuse_fd(shared.data_heap.as_fd()),
            // Keys of (selector, scope, arguments): a small map when no Post has a rateLimit.
            // rate_limited() sets only the first n_args slots of the key's argument bytes,
            // so the key stops there and every LRU entry is smaller.
            "rate_limit" if uses_rate_limit(hook) => {
                let unused_slots = (ARGS_MAX_SLOTS as u32).saturating_sub(cfg.n_args);
                let key_size = map.key_size() - unused_slots * RATE_ARG_BYTES;
                map.set_key_size(key_size).and_then(|()| map.set_max_entries(RATE_LIMIT_ENTRIES))
            }
            "rate_limit" => map.set_max_entries(1),
            "fd_follow" => match follow {
                Some(m) => map.reuse_fd(m.as_fd()),
                None => Ok(()),
            },
            "sock_owner" => match &policy_maps.sock_owner {
                Some(m) => map.reuse_fd(m.as_fd()),
                None => Ok(()),
            },
            "stash" if ret_program.is_some() => map.set_max_entries(CALLS_IN_FLIGHT),
            // libbpf's USDT argument specs (usdt.bpf.h): only USDT hooks fill them.
            "__bpf_usdt_specs" | "__bpf_usdt_ip_to_spec_id" if !matches!(target, AttachTarget::Usdt { .. }) => {
                map.set_max_entries(1)
            }
            "policy_cgroups" => match cgroups {
                Some(cgroups) => map.reuse_fd(cgroups.as_fd()),
                None => Ok(()),
            },
            n if n.starts_with("str_") || n.starts_with("addr") || n == "int_set" => {
                map.set_max_entries(map_entries.count(n).max(1) as u32)
            }
            n if n.ends_with(".rodata") => {
                let Some(data) = map.initial_value_mut() else {
                    return Err(SensorError::Setup { hook: name, what: ".rodata".into(), error: "no initial value".into() });
                };
                let bytes = cfg.as_bytes();
                if data.len() < bytes.len() {
                    return Err(SensorError::Setup { hook: name, what: ".rodata".into(), error: format!("{} bytes, config needs {}", data.len(), bytes.len()) });
                }
                data[..bytes.len()].copy_from_slice(bytes);
                Ok(())
            }
            _ => Ok(()),
        }
        .map_err(setup(&name, &format!("preparing map {map_name}")))?;
    }
    for mut prog in open.progs_mut() {
        let name_ok = prog.name().to_str();
        let wanted = name_ok == Some(program) || (ret_program.is_some() && name_ok == ret_program);
        prog.set_autoload(wanted);
        if wanted {
            if let Some(target) = attach::btf_target(&target) {
                prog.set_attach_target(0, Some(target))
                    .map_err(setup(&name, "setting the attach target"))?;
            }
        }
    }
    let object = attach::load_with_log(&name, open).map_err(|e| match (e, &target) {
        // libbpf's hint for EPERM (ulimit -l) misleads here: the kernel refuses the type.
        (SensorError::Verifier { hook, error, log }, AttachTarget::Fentry { .. }) if error.contains("os error 1)") => {
            SensorError::Verifier { hook, error: format!("{error}: this kernel refuses fentry/fexit programs; use kprobes"), log }
        }
        (SensorError::Verifier { hook, error, log }, AttachTarget::Lsm { .. }) if error.contains("os error 1)") => {
            SensorError::Verifier { hook, error: format!("{error}: this kernel refuses BPF LSM programs"), log }
        }
        (e, _) => e,
    })?;

    let blob_map = object
        .maps()
        .find(|m| m.name() == "filter")
        .ok_or_else(|| SensorError::Setup { hook: name.clone(), what: "filter map".into(), error: "missing".into() })?;
    let selector_blob = resolve_host_ns(hook, &shared.host_ns)
        .map_err(|reason| SensorError::Unsupported { hook: name.clone(), reason })?;
    let mut blob = vec![0u8; blob_map.value_size() as usize];
    if selector_blob.len() > blob.len() {
        return Err(SensorError::Unsupported { hook: name, reason: format!("selector blob of {} bytes exceeds {}", selector_blob.len(), blob.len()) });
    }
    blob[..selector_blob.len()].copy_from_slice(&selector_blob);
    blob_map
        .update(&0u32.to_ne_bytes(), &blob, MapFlags::ANY)
        .map_err(setup(&name, "writing the selector blob"))?;
    for (map_name, key) in &map_entries.entries {
        let map = object.maps().find(|m| m.name().to_str() == Some(map_name.as_str())).ok_or_else(|| {
            SensorError::Setup { hook: name.clone(), what: map_name.clone(), error: "missing".into() }
        })?;
        map.update(key, &[1u8], MapFlags::ANY)
            .map_err(setup(&name, &format!("filling {map_name}")))?;
    }
    // The return program first: an entry without its return would only fill the stash.
    let mut links = Vec::with_capacity(2);
    if let Some(ret) = ret_program {
        links.push(attach::attach(&name, &object, ret, &target, true)?);
    }
    links.push(attach::attach(&name, &object, program, &target, false)?);
    let action_counts = object
        .maps()
        .find(|m| m.name() == "action_counts")
        .map(|m| MapHandle::try_from(&m))
        .ok_or_else(|| SensorError::Setup { hook: name.clone(), what: "action_counts map".into(), error: "missing".into() })?
        .map_err(setup(&name, "action_counts map"))?;
    let charges = object
        .maps()
        .filter_map(|m| memory::charge(&m.as_fd()))
        .chain(object.progs().filter(|p| p.autoload()).filter_map(|p| memory::charge(&p.as_fd())))
        .collect();
    let stash = match ret_program {
        Some(_) => Some(
            object
                .maps()
                .find(|m| m.name() == "stash")
                .map(|m| MapHandle::try_from(&m))
                .ok_or_else(|| SensorError::Setup { hook: name.clone(), what: "stash map".into(), error: "missing".into() })?
                .map_err(setup(&name, "stash map"))?,
        ),
        None => None,
    };
    let usdt_object = matches!(target, AttachTarget::Usdt { .. }).then_some(object);
    Ok(LoadedHook { _links: links, action_counts, _usdt_object: usdt_object, charges, stash })
}
