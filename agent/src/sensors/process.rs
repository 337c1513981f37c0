//! The always-on process lifecycle sensor: exec, fork and exit BTF tracepoints.
use std::mem::MaybeUninit;
use std::path::Path;

use anyhow::Context;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, ProgramType};

use crate::abi::DROP_CAUSES;

mod skel {
    include!(concat!(env!("OUT_DIR"), "/process.skel.rs"));
}
use skel::{ProcessSkel, ProcessSkelBuilder};

pub struct ProcessSensor {
    skel: ProcessSkel<'static>,
    /// The raw tracepoint links when the programs are not attached by the skeleton.
    _links: Vec<Link>,
}

impl ProcessSensor {
    /// Loads and attaches the programs; `ringbuf_bytes` sizes the shared ring buffer
    /// (a power of two, at least one page). With `btf` (`--btf`) they are relocated against
    /// that file and attached as raw tracepoints: BTF tracepoints need the running kernel's
    /// own BTF to attach, which libbpf only looks for in /sys/kernel/btf and /boot.
    pub fn load(ringbuf_bytes: u32, btf: Option<&Path>) -> anyhow::Result<Self> {
        // The base sensor lives as long as the agent, so its object storage does too.
        let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
        let mut builder = ProcessSkelBuilder::default();
        if let Some(file) = btf {
            builder.object_builder_mut().btf_custom_path(file).context("--btf")?;
        }
        let mut open = builder.open(storage).context("opening the process lifecycle BPF object")?;
        open.maps
            .events
            .set_max_entries(ringbuf_bytes)
            .with_context(|| format!("ring buffer size {ringbuf_bytes}"))?;
        if btf.is_some() {
            let progs = &mut open.progs;
            for prog in [&mut progs.tetra_exec, &mut progs.tetra_fork, &mut progs.tetra_exit] {
                prog.set_prog_type(ProgramType::RawTracepoint);
                prog.set_autoattach(false);
            }
        }
        let mut skel = open.load().context(
            "loading the process lifecycle programs (needs root, BTF in /sys/kernel/btf/vmlinux \
             or --btf, and BPF ring buffers, Linux 5.17 or later)",
        )?;
        let mut links = Vec::new();
        if btf.is_some() {
            let progs = &skel.progs;
            for (prog, tracepoint) in [
                (&progs.tetra_exec, "sched_process_exec"),
                (&progs.tetra_fork, "sched_process_fork"),
                (&progs.tetra_exit, "sched_process_exit"),
            ] {
                links.push(
                    prog.attach_raw_tracepoint(tracepoint)
                        .with_context(|| format!("attaching raw tracepoint {tracepoint}"))?,
                );
            }
        } else {
            skel.attach().context("attaching sched_process_exec/fork/exit BTF tracepoints")?;
        }
        Ok(ProcessSensor { skel, _links: links })
    }

    pub fn events_map(&self) -> &libbpf_rs::Map<'static> {
        &self.skel.maps.events
    }

    /// The per-CPU drop counters (`enum tetra_drop`), shared with the policy programs.
    pub fn drops_map(&self) -> &libbpf_rs::Map<'static> {
        &self.skel.maps.drops
    }

    /// Each process's executable for matchBinaries (`binaries` in bpf/lib/common.h),
    /// shared with the policy programs.
    pub fn binaries_map(&self) -> &libbpf_rs::Map<'static> {
        &self.skel.maps.binaries
    }

    /// matchBinaries path -> number (`binary_ids`) and its generation (`binary_ids_gen`),
    /// shared with the policy programs (see [`crate::sensors::generic::maps::BinaryIds`]).
    pub fn binary_ids_maps(&self) -> (&libbpf_rs::Map<'static>, &libbpf_rs::Map<'static>) {
        (&self.skel.maps.binary_ids, &self.skel.maps.binary_ids_gen)
    }

    /// What each process had at exec (`exec_states` in bpf/lib/common.h), shared with the
    /// policy programs for matchNamespaceChanges/matchCapabilityChanges.
    pub fn exec_states_map(&self) -> &libbpf_rs::Map<'static> {
        &self.skel.maps.exec_states
    }

    /// Records the executables of processes that were running before the sensor, unless
    /// the kernel already recorded a newer exec. Returns how many could not be stored.
    pub fn seed_binaries<'a>(&self, processes: impl IntoIterator<Item = (u32, &'a str)>) -> usize {
        let mut failed = 0;
        for (pid, path) in processes {
            let Some(value) = binary_entry(path) else { continue };
            match self.skel.maps.binaries.update(&pid.to_ne_bytes(), &value, MapFlags::NO_EXIST) {
                Ok(()) => {}
                Err(e) if e.kind() == libbpf_rs::ErrorKind::AlreadyExists => {}
                Err(_) => failed += 1,
            }
        }
        failed
    }

    /// Events lost in the kernel so far, per `enum tetra_drop`, summed over CPUs.
    pub fn kernel_drops(&self) -> [u64; DROP_CAUSES.len()] {
        let mut out = [0u64; DROP_CAUSES.len()];
        for (i, slot) in out.iter_mut().enumerate() {
            let key = (i as u32).to_ne_bytes();
            if let Ok(Some(per_cpu)) = self.skel.maps.drops.lookup_percpu(&key, MapFlags::ANY) {
                *slot = per_cpu
                    .iter()
                    .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()))
                    .map(u64::from_ne_bytes)
                    .sum();
            }
        }
        out
    }
}

/// `sizeof(struct binary_entry)`: u32 len, id, gen, pad, then the path (checked against
/// BTF in a test of the generic sensor).
pub const BINARY_ENTRY_SIZE: usize = BINARY_PATH_OFFSET + 2 * BINARY_PATH_MAX;
const BINARY_PATH_OFFSET: usize = 16;
/// `BIN_MAX`: longest path compared by matchBinaries (the last byte stays NUL), and the
/// size of a `binary_ids` key.
pub const BINARY_PATH_MAX: usize = 256;

/// The map value for `path`: absolute paths only, cut at BIN_MAX - 1 bytes as the kernel
/// does, zero-padded. Its number and generation are 0: the policy programs look the
/// number up on first use.
fn binary_entry(path: &str) -> Option<Vec<u8>> {
    if !path.starts_with('/') {
        return None;
    }
    let bytes = &path.as_bytes()[..path.len().min(BINARY_PATH_MAX - 1)];
    let mut value = vec![0u8; BINARY_ENTRY_SIZE];
    value[..4].copy_from_slice(&(bytes.len() as u32).to_ne_bytes());
    value[BINARY_PATH_OFFSET..BINARY_PATH_OFFSET + bytes.len()].copy_from_slice(bytes);
    Some(value)
}

#[cfg(test)]
mod tests {
    #[test]
    fn binary_entries_hold_absolute_paths() {
        let v = super::binary_entry("/usr/bin/cat").unwrap();
        assert_eq!(v.len(), 528);
        assert_eq!(&v[..4], &12u32.to_ne_bytes());
        assert_eq!(&v[4..16], &[0u8; 12], "number and generation 0: looked up on first use");
        assert_eq!(&v[16..29], b"/usr/bin/cat\0");
        assert_eq!(super::binary_entry("cat"), None);
        assert_eq!(super::binary_entry(&format!("/{}", "a".repeat(400))).unwrap()[..4], 255u32.to_ne_bytes());
    }
}
