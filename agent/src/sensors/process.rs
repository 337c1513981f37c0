//! The always-on process lifecycle sensor: exec, fork and exit BTF tracepoints.
use std::mem::MaybeUninit;

use anyhow::Context;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject};

use crate::abi::DROP_CAUSES;

mod skel {
    include!(concat!(env!("OUT_DIR"), "/process.skel.rs"));
}
use skel::{ProcessSkel, ProcessSkelBuilder};

pub struct ProcessSensor {
    skel: ProcessSkel<'static>,
}

impl ProcessSensor {
    /// Loads and attaches the programs; `ringbuf_bytes` sizes the shared ring buffer
    /// (a power of two, at least one page).
    pub fn load(ringbuf_bytes: u32) -> anyhow::Result<Self> {
        // The base sensor lives as long as the agent, so its object storage does too.
        let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = ProcessSkelBuilder::default()
            .open(storage)
            .context("opening the process lifecycle BPF object")?;
        open.maps
            .events
            .set_max_entries(ringbuf_bytes)
            .with_context(|| format!("ring buffer size {ringbuf_bytes}"))?;
        let mut skel = open.load().context(
            "loading the process lifecycle programs (needs root, BTF in /sys/kernel/btf/vmlinux \
             and BPF ring buffers, Linux 5.17 or later)",
        )?;
        skel.attach().context("attaching sched_process_exec/fork/exit BTF tracepoints")?;
        Ok(ProcessSensor { skel })
    }

    pub fn events_map(&self) -> &libbpf_rs::Map<'static> {
        &self.skel.maps.events
    }

    /// The per-CPU drop counters (`enum tetra_drop`), shared with the policy programs.
    pub fn drops_map(&self) -> &libbpf_rs::Map<'static> {
        &self.skel.maps.drops
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
