//! `tetrad`, the node agent. This file only parses flags and wires the parts together.
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{ArgAction, Parser};
use tetra_proto::filter::{self, EventFilters, FieldFilters, Redactor};

use tetra_agent::bus::{Bus, SubscriberKind};
use tetra_agent::clock::Clock;
use tetra_agent::events::EventBuilder;
use tetra_agent::export::exporter::JsonExporter;
use tetra_agent::export::json::{JsonWriter, RotationPolicy};
use tetra_agent::export::ratelimit::RateLimiter;
use tetra_agent::grpc::{self, Server, Service};
use tetra_agent::k8s::{self, enrich::Enricher};
use tetra_agent::metrics::Metrics;
use tetra_agent::pipeline::{self, Processor};
use tetra_agent::policies::{PolicyRegistry, PolicySensors};
use tetra_agent::process::cache::ProcessCache;
use tetra_agent::process::{procfs, Render};
use tetra_agent::sensors::generic::{self, GenericShared, PolicyTable};
use tetra_agent::sensors::process::ProcessSensor;
use tetra_agent::stats::Stats;
use tetra_agent::sys;

/// mimalloc instead of glibc's malloc: the event thread allocates what the export thread
/// frees, and glibc serialises such frees on the allocating arena's lock (the read storm
/// spent a fifth of its time in malloc/free and in futex wake-ups on that lock; mimalloc
/// puts a block freed by another thread on a lock-free list of its page: see the README's
/// read storm for the figures). See `sys::tune_allocator` for its settings.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc reads an option when it first needs it, and its first arena is made by the
/// first allocation, which the Rust runtime makes before `main`: the settings go in
/// before that, from the ELF's constructors.
#[ctor::ctor(unsafe)]
fn tune_allocator() {
    sys::tune_allocator();
}

/// Runtime security agent: process lifecycle and policy events from the kernel,
/// exported in Cilium Tetragon's formats. Flag names follow Tetragon's.
#[derive(Parser, Debug)]
#[command(name = "tetrad", version)]
struct Args {
    /// Load this TracingPolicy file at start (repeatable).
    #[arg(long)]
    tracing_policy: Vec<PathBuf>,
    /// Load every `*.yaml`/`*.yml` TracingPolicy file of this directory at start.
    #[arg(long)]
    tracing_policy_dir: Option<PathBuf>,
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
    /// Size of the kernel ring buffer in bytes (power of two). Its pages stay allocated and
    /// are mapped twice by the reader, so it counts twice in RSS; a burst beyond what it and
    /// --event-queue-size hold is lost and counted.
    #[arg(long, default_value_t = 4 << 20, value_parser = parse_ringbuf_size)]
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
    /// Export only events matching one of these filters (JSON objects, one per line).
    #[arg(long, default_value = "", env = "TETRAGON_EXPORT_ALLOWLIST")]
    export_allowlist: String,
    /// Never export events matching one of these filters (JSON objects, one per line).
    #[arg(long, default_value = "", env = "TETRAGON_EXPORT_DENYLIST")]
    export_denylist: String,
    /// Field filters of the JSON export (JSON objects, one per line).
    #[arg(long, default_value = "", env = "TETRAGON_FIELD_FILTERS")]
    field_filters: String,
    /// Redaction filters, applied to every exporter and gRPC client (JSON objects, one per line).
    #[arg(long, default_value = "", env = "TETRAGON_REDACTION_FILTERS")]
    redaction_filters: String,
    /// Events exported per minute at most (-1: no limit); dropped events are counted and
    /// reported by a rate_limit_info event.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    export_rate_limit: i64,
    /// Length of a rate limit window in milliseconds (tests shorten Tetragon's minute).
    #[arg(long, default_value_t = 60_000, hide = true)]
    export_rate_limit_window_ms: u64,
    /// Events queued for the JSON export (a few KB each). The event thread waits for
    /// room while the export keeps writing, so a burst waits in the kernel ring buffer;
    /// for an export that stops writing, events beyond it are dropped and counted.
    #[arg(long, default_value_t = 4096)]
    export_queue_size: usize,
    /// gRPC address: host:port or unix:///path ("" disables the server).
    #[arg(long, default_value = "localhost:54321", env = "TETRAGON_SERVER_ADDRESS")]
    server_address: String,
    /// Events queued per gRPC client unless it asks otherwise; a slower client loses events.
    #[arg(long, default_value_t = 10000)]
    server_client_queue_size: usize,
    /// Directory of the info file (tetragon-info.json) that tells `tetra` where we listen.
    #[arg(long, default_value = "/var/run/tetragon")]
    run_dir: PathBuf,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:2112; "" disables).
    #[arg(long, default_value = "", env = "TETRAGON_METRICS_SERVER")]
    metrics_server: String,
    /// Load TracingPolicy/TracingPolicyNamespaced objects from the Kubernetes API and add
    /// pod information to events (this node's pods).
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", env = "TETRAGON_ENABLE_K8S_API")]
    enable_k8s_api: bool,
    /// Kubeconfig of the API server (default: in-cluster, then $KUBECONFIG, ~/.kube/config).
    #[arg(long, visible_alias = "kubeconfig", env = "TETRAGON_K8S_KUBECONFIG_PATH")]
    k8s_kubeconfig_path: Option<PathBuf>,
    /// This node's name in Kubernetes (default: $NODE_NAME, else the hostname).
    #[arg(long)]
    node_name: Option<String>,
    /// The host's cgroup v2 hierarchy, where cgroup ids are looked up (default: the first
    /// cgroup2 mount, e.g. /sys/fs/cgroup or /sys/fs/cgroup/unified).
    #[arg(long)]
    cgroup_root: Option<PathBuf>,
    /// Seconds an event of a container waits for its pod to be known before it is sent
    /// without pod information (counted).
    #[arg(long, default_value_t = 5)]
    pod_wait_seconds: u64,
    /// BTF file of this kernel to relocate the BPF programs against instead of
    /// /sys/kernel/btf/vmlinux (for kernels without CONFIG_DEBUG_INFO_BTF, e.g. from BTFHub).
    #[arg(long, env = "TETRAGON_BTF")]
    btf: Option<PathBuf>,
    /// DNS server (IP:PORT) that DnsLookup policy actions query (default: the first
    /// nameserver of /etc/resolv.conf, port 53).
    #[arg(long)]
    dns_lookup_server: Option<std::net::SocketAddr>,
    #[command(flatten)]
    log: tetra_logging::LogArgs,
}

/// The export filters, each flag's errors named after the flag.
struct Filters {
    events: EventFilters,
    fields: FieldFilters,
    redactor: Redactor,
}

fn parse_filters(args: &Args) -> anyhow::Result<Filters> {
    let allow =
        filter::parse_filters(&args.export_allowlist).context("invalid --export-allowlist")?;
    let deny = filter::parse_filters(&args.export_denylist).context("invalid --export-denylist")?;
    let events =
        EventFilters::new(&allow, &deny).context("invalid --export-allowlist/--export-denylist")?;
    let fields =
        filter::parse_field_filters(&args.field_filters).context("invalid --field-filters")?;
    let fields = FieldFilters::new(&fields).context("invalid --field-filters")?;
    let redact = filter::parse_redaction_filters(&args.redaction_filters)
        .context("invalid --redaction-filters")?;
    let redactor = Redactor::new(&redact).context("invalid --redaction-filters")?;
    Ok(Filters { events, fields, redactor })
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

/// `--tracing-policy` files, then the `--tracing-policy-dir` files in name order.
fn static_policies(args: &Args) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = args.tracing_policy.clone();
    if let Some(dir) = &args.tracing_policy_dir {
        let mut in_dir: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("--tracing-policy-dir {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        in_dir.sort();
        files.extend(in_dir);
    }
    Ok(files)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.log.init();
    let filters = parse_filters(&args)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    sys::ensure_mounts();
    let btf = sys::kernel_btf(args.btf.as_deref())?;
    sys::check_memlock();
    let node = args.node_name.clone().unwrap_or_else(sys::node_name);

    let stats = Arc::new(Stats::default());
    let bus = Bus::new(stats.clone());
    let policy_table = Arc::new(PolicyTable::default());
    let probes = Arc::new(sys::kernel_probes(generic::override_supported()));
    // Without BTF nothing loads: the agent still serves gRPC and metrics and lists policies
    // with the reason (sys::kernel_btf logged it).
    let (sensor, mut registry) = match btf {
        sys::KernelBtf::Missing => (None, PolicyRegistry::without_sensors(sys::NO_BTF.into())),
        btf => {
            let sensor = ProcessSensor::load(args.rb_size, btf.custom_path())?;
            let shared = GenericShared::new(&sensor, btf.custom_path())
                .context("preparing the policy sensors")?;
            let sensors = PolicySensors { shared, table: policy_table.clone() };
            (Some(sensor), PolicyRegistry::with_sensors(sensors))
        }
    };
    for file in static_policies(&args)? {
        // A policy that fails is reported and listed in its error state; the others load.
        let source = file.display().to_string();
        match std::fs::read_to_string(&file) {
            Ok(yaml) => {
                if let Err(e) = registry.add_from(&yaml, "static", &source, None) {
                    tracing::error!("tracing policy {source}: {e}");
                }
            }
            Err(e) => {
                tracing::error!("tracing policy {source}: {e}");
                registry.refuse_file("static", &source, format!("reading {source}: {e}"));
            }
        }
    }
    let policies = Arc::new(Mutex::new(registry));

    let export_thread = match args.export_filename.as_deref() {
        None | Some("") => None,
        Some(target) => {
            let policy = RotationPolicy {
                max_bytes: args.export_file_max_size_mb << 20,
                max_backups: args.export_file_max_backups,
                mode: args.export_file_perm,
            };
            let writer =
                JsonWriter::new(target, policy).with_context(|| format!("opening {target}"))?;
            let limiter = u64::try_from(args.export_rate_limit).ok().map(|limit| {
                RateLimiter::new(
                    limit,
                    Duration::from_millis(args.export_rate_limit_window_ms),
                    Instant::now(),
                )
            });
            let exporter = JsonExporter {
                writer,
                fields: filters.fields,
                limiter,
                node: node.clone(),
                stats: stats.clone(),
                lines: Default::default(),
            };
            let (queue, sub) = bus
                .subscribe_blocking(
                    SubscriberKind::JsonExport,
                    target,
                    args.export_queue_size,
                    filters.events,
                )
                .context("subscribing the JSON export")?;
            Some(exporter.spawn(queue, sub).context("starting the export thread")?)
        }
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tetrad-grpc")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // As upstream, a TCP server comes with a local unix socket in the run dir.
    let mut servers = Vec::new();
    if let Some(listen) = grpc::parse_address(&args.server_address)? {
        let service = Service {
            bus: bus.clone(),
            policies: policies.clone(),
            stats: stats.clone(),
            node: node.clone(),
            client_queue: args.server_client_queue_size,
            probes: probes.clone(),
        };
        let local = match &listen {
            grpc::Listen::Tcp(_) => Some(grpc::Listen::Unix(args.run_dir.join("tetragon.sock"))),
            grpc::Listen::Unix(_) => None,
        };
        servers.push(rt.block_on(Server::start(listen, service.clone()))?);
        if let Some(local) = local {
            servers.push(rt.block_on(Server::start(local, service))?);
        }
    }
    for server in &servers {
        tracing::info!("gRPC server listening on {}", server.address);
    }
    // Policy map entries of exited tasks (calls in flight, followed fds) nothing else frees.
    rt.spawn(tetra_agent::policies::sweep_every(policies.clone(), args.procfs.clone(), Duration::from_secs(10)));
    let cgroup_root = args.cgroup_root.clone().unwrap_or_else(k8s::cgroup::unified_root);
    let k8s = match args.enable_k8s_api {
        false => None,
        true => {
            // Not fatal: policies still load and events still leave, without pods.
            if let Err(e) = k8s::cgroup::check_unified_root(&cgroup_root) {
                tracing::error!("--cgroup-root: {e}: events get no pod information and pod-scoped policies match nothing");
            }
            let client = rt.block_on(k8s::client(args.k8s_kubeconfig_path.as_deref()))?;
            Some(k8s::start(&rt, client, &node, policies.clone(), cgroup_root.clone())?)
        }
    };
    let metrics_address = match args.metrics_server.as_str() {
        "" => String::new(),
        address => {
            let metrics = Metrics {
                stats: stats.clone(),
                bus: bus.clone(),
                policies: policies.clone(),
                cache_capacity: args.process_cache_size as u64,
            };
            let bound =
                metrics.serve(address, &rt).with_context(|| format!("--metrics-server {address}"))?;
            tracing::info!("metrics server listening on http://{bound}/metrics");
            bound
        }
    };
    let info_file = args.run_dir.join("tetragon-info.json");
    let server_address = servers.first().map(|s| s.address.clone()).unwrap_or_default();
    grpc::write_info_file(&info_file, &server_address, &metrics_address)
        .with_context(|| format!("writing {}", info_file.display()))?;

    // The sensor was attached first, then /proc is read: a process started in between is
    // seen by both, and the kernel's view simply replaces the /proc one.
    let mut cache = ProcessCache::new(&node, args.process_cache_size);
    let running = procfs::scan(&args.procfs, &node);
    let unseeded = sensor
        .as_ref()
        .map_or(0, |s| s.seed_binaries(running.iter().map(|p| (p.pid, p.binary.as_str()))));
    if unseeded > 0 {
        tracing::warn!("{unseeded} running processes' executables not recorded for matchBinaries (the kernel will read them)");
    }
    cache.seed(running);
    let render = Render {
        clock: Clock::new(),
        host_ns: procfs::namespaces(&args.procfs.join("1")),
        with_caps: args.enable_process_cred,
        with_ns: args.enable_process_ns,
    };
    let processor = Processor {
        cache,
        builder: EventBuilder { node: node.clone(), render, stacks: Default::default() },
        redactor: filters.redactor,
        bus: bus.clone(),
        stats: stats.clone(),
        policies: policy_table,
        enrich: Some({
            let cgroups = k8s::cgroup::CgroupIndex::new(&cgroup_root);
            let pods = k8s.as_ref().map(|k| k.pods.clone());
            let mut enricher = Enricher::new(cgroups, pods, &args.procfs, stats.clone());
            enricher.hold_for = Duration::from_secs(args.pod_wait_seconds);
            enricher
        }),
        user_actions: Some(
            tetra_agent::user_actions::UserActions::start(args.dns_lookup_server, stats.clone())
                .context("starting the GetUrl/DnsLookup workers")?,
        ),
        data: Default::default(),
        published: Vec::new(),
    };
    tracing::info!("tetrad ready on node {node}");
    let result = match &sensor {
        Some(sensor) => pipeline::run(sensor, processor, args.event_queue_size, &stop),
        None => {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
            }
            Ok(())
        }
    };
    // Every event is published: let the subscribers drain their queues and end.
    drop(k8s);
    bus.close();
    if let Some(thread) = export_thread {
        if thread.join().is_err() {
            tracing::error!("the export thread panicked");
        }
    }
    for server in servers {
        rt.block_on(server.stop());
    }
    let _ = std::fs::remove_file(&info_file);
    let rate_limited = policies.lock().unwrap_or_else(|e| e.into_inner()).rate_limited();
    stats.rate_limited.store(rate_limited.iter().map(|(_, n)| n).sum(), std::sync::atomic::Ordering::Relaxed);
    tracing::info!("final stats: {stats}");
    result
}
