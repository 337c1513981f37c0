//! Memory report: the agent's RSS and the kernel memory of its BPF objects (memlock, links
//! included: `tetra_agent::sensors::memory`) idle, with the example policies loaded, after
//! an exec storm, and each loaded policy's own kernel memory; then after a burst of READS
//! events (a policy posting every read of `dd bs=1`) that outruns the agent and fills its
//! queues, to show whether that memory is given back; and the agent's loss counters.
//! Run as root (`RB_SIZE=bytes` sets `--rb-size`):
//!
//!     cargo build --release -p tetra-agent --bins --examples
//!     target/release/examples/mem_report [EXECS [READS]]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use common::{storm, Agent};
use tetra_agent::sensors::memory::{self, BpfId, BpfObject};
use tetra_proto::tetragon::fine_guidance_sensors_client::FineGuidanceSensorsClient;
use tetra_proto::tetragon::{AddTracingPolicyRequest, ListTracingPoliciesRequest, TracingPolicyState};

/// One mapping of /proc/PID/smaps: where it is, what backs it, and its resident KiB.
struct Vma {
    start: u64,
    end: u64,
    perms: String,
    path: String,
    rss_kib: u64,
}

fn smaps(pid: u32) -> anyhow::Result<Vec<Vma>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let mut out: Vec<Vma> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            let perms = words.next().unwrap_or("").to_string();
            let path = words.nth(3).unwrap_or("").to_string();
            let (start, end) = (u64::from_str_radix(start, 16)?, u64::from_str_radix(end, 16)?);
            out.push(Vma { start, end, perms, path, rss_kib: 0 });
        } else if first == "Rss:" {
            let vma = out.last_mut().context("Rss before a mapping")?;
            vma.rss_kib = words.next().context("Rss value")?.parse()?;
        }
    }
    Ok(out)
}

/// What a mapping holds, by how glibc and the kernel lay them out: a thread's stack sits
/// right above its 4 KiB guard page; a glibc thread arena is the usable start of a
/// 64 MiB-aligned reservation whose rest is inaccessible (glibc's HEAP_MAX_SIZE). glibc's
/// malloc serves the C libraries (libbpf, libelf); tetrad's own allocations come from
/// mimalloc, whose arenas are plain anonymous mappings.
fn classify(vmas: &[Vma], i: usize) -> &'static str {
    let v = &vmas[i];
    let anon = v.path.is_empty();
    let guard_below = i > 0 && vmas[i - 1].end == v.start && vmas[i - 1].perms == "---p" && vmas[i - 1].end - vmas[i - 1].start == 4096;
    let reserved_above = vmas.get(i + 1).is_some_and(|n| n.start == v.end && n.perms == "---p" && n.path.is_empty());
    match v.path.as_str() {
        p if p.ends_with("/tetrad") => "tetrad code and data (file)",
        "[heap]" => "glibc main arena ([heap], C libraries)",
        "[stack]" => "thread stacks",
        p if p.starts_with("anon_inode:bpf") => "BPF ring buffer pages (mapped)",
        p if p.starts_with('/') => "shared libraries (file)",
        _ if anon && v.start % (64 << 20) == 0 && reserved_above => "glibc thread arenas",
        _ if anon && guard_below => "thread stacks",
        _ if anon => "other anonymous (mimalloc arenas, large blocks)",
        _ => "other",
    }
}

/// RSS, its anonymous/file split and where it goes, from /proc/PID/status and smaps.
fn rss_breakdown(pid: u32) -> anyhow::Result<(f64, String)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |key: &str| -> anyhow::Result<u64> {
        let v = status.lines().find_map(|l| l.strip_prefix(key)).with_context(|| key.to_string())?;
        Ok(v.trim().trim_end_matches(" kB").parse()?)
    };
    let (rss, anon, file, threads) = (field("VmRSS:")?, field("RssAnon:")?, field("RssFile:")?, field("Threads:")?);
    let peak = field("VmHWM:")?;
    let vmas = smaps(pid)?;
    let mut classes: Vec<(&str, u64)> = Vec::new();
    for i in 0..vmas.len() {
        let class = classify(&vmas, i);
        match classes.iter_mut().find(|(c, _)| *c == class) {
            Some((_, kib)) => *kib += vmas[i].rss_kib,
            None => classes.push((class, vmas[i].rss_kib)),
        }
    }
    classes.retain(|(_, kib)| *kib > 0);
    classes.sort_by(|a, b| b.1.cmp(&a.1));
    let mut text = format!("    RSS {:.1} MiB (peak so far {:.1} MiB): anonymous {:.1} MiB, file-backed {:.1} MiB; {threads} threads\n", mib(rss), mib(peak), mib(anon), mib(file));
    for (class, kib) in classes {
        text += &format!("      {kib:>7} KiB  {class}\n");
    }
    Ok((mib(rss), text))
}

/// Kernel memory of the objects not in `before`, summed by object name (the hooks of every
/// policy are instances of one object, so their maps and programs share names).
fn kernel_by_name(objects: &[BpfObject], before: &[BpfObject]) -> String {
    let old: std::collections::BTreeSet<BpfId> = before.iter().map(|o| o.id).collect();
    let mut rows: Vec<(String, usize, u32, u64)> = Vec::new();
    for o in objects.iter().filter(|o| !old.contains(&o.id)) {
        let kind = match o.id {
            BpfId::Map(_) => "map",
            BpfId::Prog(_) => "program",
        };
        let name = format!("{kind} {}", o.name);
        match rows.iter_mut().find(|r| r.0 == name && r.2 == o.max_entries) {
            Some(r) => {
                r.1 += 1;
                r.3 += o.memlock;
            }
            None => rows.push((name, 1, o.max_entries, o.memlock)),
        }
    }
    rows.sort_by(|a, b| b.3.cmp(&a.3));
    let mut text = String::new();
    for (name, count, entries, bytes) in rows {
        let entries = if entries > 0 { format!(", {entries} entries each") } else { String::new() };
        text += &format!("      {:>7} KiB  {name} (x{count}{entries})\n", bytes / 1024);
    }
    text
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn report(what: &str, pid: u32) -> anyhow::Result<()> {
    std::thread::sleep(Duration::from_millis(500));
    let kernel = memory::of_process(pid)?;
    let (rss, breakdown) = rss_breakdown(pid)?;
    println!(
        "{what}: RSS {rss:.1} MiB, BPF kernel memory {:.2} MiB ({} maps, {} programs)",
        kernel.bytes as f64 / (1 << 20) as f64,
        kernel.maps,
        kernel.progs
    );
    print!("{breakdown}");
    Ok(())
}

/// Waits until the file has not grown for two seconds (the agent has caught up).
fn wait_quiet(path: &Path) -> anyhow::Result<()> {
    let (mut size, mut since) = (0, Instant::now());
    while since.elapsed() < Duration::from_secs(2) {
        let len = std::fs::metadata(path)?.len();
        if len != size {
            (size, since) = (len, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let arg = |i: usize, default: u64| -> anyhow::Result<u64> {
        Ok(std::env::args().nth(i).map(|s| s.parse()).transpose()?.unwrap_or(default))
    };
    let (execs, reads) = (arg(1, 10_000)? as usize, arg(2, 200_000)?);
    let dir = tempfile::tempdir()?;
    let export = dir.path().join("events.json");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let server = format!("--server-address=127.0.0.1:{port}");
    let run_dir = format!("--run-dir={}", dir.path().display());
    let mut args: Vec<String> = vec![server, run_dir];
    if let Ok(size) = std::env::var("RB_SIZE") {
        args.push(format!("--rb-size={size}"));
    }
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    let Agent { child: mut agent, log } = Agent::start(&export, &args)?;
    // Keep reading the log so the agent never blocks on a full pipe; keep its final stats.
    let (final_tx, final_stats) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in log.map_while(Result::ok) {
            if let Some(stats) = line.split("final stats:").nth(1) {
                let _ = final_tx.send(stats.trim().to_string());
            }
        }
    });
    let pid = agent.id();
    report("idle (process cache seeded)", pid)?;
    let idle_objects = memory::objects_of_process(pid)?;
    println!("    kernel memory by object:");
    print!("{}", kernel_by_name(&idle_objects, &[]));

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut client = rt.block_on(FineGuidanceSensorsClient::connect(format!("http://127.0.0.1:{port}")))?;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tracingpolicy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&examples)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "yaml")) {
        let yaml = std::fs::read_to_string(file)?;
        // A policy this kernel cannot attach is listed with its error; the report says so.
        let _ = rt.block_on(client.add_tracing_policy(AddTracingPolicyRequest { yaml, domain: String::new() }));
    }
    let policies = rt.block_on(client.list_tracing_policies(ListTracingPoliciesRequest::default()))?.into_inner().policies;
    for p in &policies {
        let state = TracingPolicyState::try_from(p.state).map(|s| s.as_str_name()).unwrap_or("?");
        println!("  policy {:<28} {:<22} {:>4} KiB kernel memory", p.name, state, p.kernel_memory_bytes / 1024);
    }
    report(&format!("{} example policies added", policies.len()), pid)?;
    println!("    kernel memory the policies added, by object:");
    print!("{}", kernel_by_name(&memory::objects_of_process(pid)?, &idle_objects));

    storm(execs, "mem-report")?;
    report(&format!("after a {execs}-exec storm"), pid)?;

    let dd = std::fs::canonicalize("/usr/bin/dd").or_else(|_| std::fs::canonicalize("/bin/dd"))?;
    let yaml = common::policies::read_policy("mem-report-reads", &dd);
    rt.block_on(client.add_tracing_policy(AddTracingPolicyRequest { yaml, domain: String::new() }))?;
    let ok = Command::new(&dd)
        .args(["if=/dev/zero", "of=/dev/null", "bs=1", &format!("count={reads}")])
        .stderr(Stdio::null())
        .status()?
        .success();
    anyhow::ensure!(ok, "dd failed");
    wait_quiet(&export)?;
    report(&format!("after a burst of {reads} read events (caught up)"), pid)?;

    // SAFETY: kill() only signals our own child.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    agent.wait()?;
    let stats = final_stats.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
    println!("agent counters: {stats}");
    Ok(())
}
