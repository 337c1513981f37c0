//! Memory report: the agent's RSS and the kernel memory of its BPF objects (memlock, links
//! included: `tetra_agent::sensors::memory`) idle, with the example policies loaded, after
//! an exec storm, and each loaded policy's own kernel memory. Run as root:
//!
//!     cargo build --release -p tetra-agent --bins --examples
//!     target/release/examples/mem_report [EXECS]
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use common::{storm, Agent};
use tetra_agent::sensors::memory;
use tetra_proto::tetragon::fine_guidance_sensors_client::FineGuidanceSensorsClient;
use tetra_proto::tetragon::{AddTracingPolicyRequest, ListTracingPoliciesRequest, TracingPolicyState};

fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).context("VmRSS")?.trim().trim_end_matches(" kB").parse()?;
    Ok(kib / 1024.0)
}

fn report(what: &str, pid: u32) -> anyhow::Result<()> {
    std::thread::sleep(Duration::from_millis(500));
    let kernel = memory::of_process(pid)?;
    println!(
        "{what}: RSS {:.1} MiB, BPF kernel memory {:.2} MiB ({} maps, {} programs)",
        rss_mib(pid)?,
        kernel.bytes as f64 / (1 << 20) as f64,
        kernel.maps,
        kernel.progs
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let execs: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let server = format!("--server-address=127.0.0.1:{port}");
    let run_dir = format!("--run-dir={}", dir.path().display());
    let Agent { child: mut agent, log } =
        Agent::start(&dir.path().join("events.json"), &[server.as_ref(), run_dir.as_ref()])?;
    // Keep reading the log so the agent never blocks on a full pipe.
    std::thread::spawn(move || log.map_while(Result::ok).for_each(drop));
    let pid = agent.id();
    report("idle (process cache seeded)", pid)?;

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

    storm(execs, "mem-report")?;
    report(&format!("after a {execs}-exec storm"), pid)?;
    // SAFETY: kill() only signals our own child.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    agent.wait()?;
    Ok(())
}
