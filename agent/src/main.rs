//! `tetrad`, the node agent. This file only parses flags and wires the parts together.
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use clap::{ArgAction, Parser};

use tetra_agent::clock::Clock;
use tetra_agent::events::EventBuilder;
use tetra_agent::export::json::{JsonWriter, RotationPolicy};
use tetra_agent::pipeline::{self, Processor};
use tetra_agent::process::cache::ProcessCache;
use tetra_agent::process::{procfs, Render};
use tetra_agent::sensors::process::ProcessSensor;
use tetra_agent::stats::Stats;
use tetra_agent::sys;

/// Runtime security agent: process lifecycle and policy events from the kernel,
/// exported in Cilium Tetragon's formats. Flag names follow Tetragon's.
#[derive(Parser, Debug)]
#[command(name = "tetrad", version)]
struct Args {
    /// Write events as JSON lines to this file (`-` for stdout).
    #[arg(long, env = "TETRAGON_EXPORT_FILENAME")]
    export_filename: Option<String>,
    /// Rotate the export file before it grows past this many MiB (0: never).
    #[arg(long, default_value_t = 10)]
    export_file_max_size_mb: u64,
    /// Rotated export files to keep.
    #[arg(long, default_value_t = 5)]
    export_file_max_backups: usize,
    /// Permission bits of export files, in octal.
    #[arg(long, default_value = "600", value_parser = parse_octal)]
    export_file_perm: u32,
    /// Size of the kernel ring buffer in bytes (power of two).
    #[arg(long, default_value_t = 8 << 20, value_parser = parse_ringbuf_size)]
    rb_size: u32,
    /// Records queued between the ring buffer reader and event processing.
    #[arg(long, default_value_t = 65536)]
    event_queue_size: usize,
    /// Processes kept in the process cache.
    #[arg(long, default_value_t = 65536)]
    process_cache_size: usize,
    /// Where the host's /proc is mounted.
    #[arg(long, default_value = "/proc")]
    procfs: PathBuf,
    /// Include capabilities in process information.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    enable_process_cred: bool,
    /// Include namespaces in process information.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    enable_process_ns: bool,
}

fn parse_octal(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8).map_err(|_| format!("{s:?} is not an octal permission like 600"))
}

fn parse_ringbuf_size(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|_| format!("{s:?} is not a byte count"))?;
    if n.is_power_of_two() && n >= 4096 {
        Ok(n)
    } else {
        Err(format!("{n} must be a power of two of at least 4096"))
    }
}

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    sys::ensure_mounts();
    let node = sys::node_name();

    let json = match args.export_filename.as_deref() {
        None | Some("") => None,
        Some(target) => {
            let policy = RotationPolicy {
                max_bytes: args.export_file_max_size_mb << 20,
                max_backups: args.export_file_max_backups,
                mode: args.export_file_perm,
            };
            Some(JsonWriter::new(target, policy).with_context(|| format!("opening {target}"))?)
        }
    };

    // Attach first, then read /proc: a process started in between is seen by both,
    // and the kernel's view simply replaces the /proc one.
    let sensor = ProcessSensor::load(args.rb_size)?;
    let mut cache = ProcessCache::new(&node, args.process_cache_size);
    cache.seed(procfs::scan(&args.procfs, &node));
    let render = Render {
        clock: Clock::new(),
        host_ns: procfs::namespaces(&args.procfs.join("1")),
        with_caps: args.enable_process_cred,
        with_ns: args.enable_process_ns,
    };
    let stats = Arc::new(Stats::default());
    let processor = Processor {
        cache,
        builder: EventBuilder { node: node.clone(), render },
        json,
        stats: stats.clone(),
    };
    log::info!("tetrad ready on node {node}");
    pipeline::run(&sensor, processor, args.event_queue_size, &stop)?;
    log::info!("final stats: {stats}");
    Ok(())
}
