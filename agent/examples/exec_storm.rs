//! Exec-storm benchmark: N short processes with and without the agent.
//!
//! Reports events received against expected (every exec and exit of our processes must
//! arrive), the agent's CPU time per 1,000 events, its peak RSS, and the slowdown of the
//! storm itself while the agent runs. Run as root:
//!
//!     cargo build --release -p tetra-agent --bins --examples
//!     target/release/examples/exec_storm [N]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use common::{storm, Agent};

/// Peak resident set size (VmHWM) in MiB.
fn peak_rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("VmHWM")?
        .trim()
        .trim_end_matches(" kB")
        .parse()?;
    Ok(kb / 1024.0)
}

fn count_ours(path: &Path, marker: &str) -> anyhow::Result<(usize, usize)> {
    let text = std::fs::read_to_string(path)?;
    let needle = format!("\"arguments\":\"{marker}-");
    let (mut exec, mut exit) = (0, 0);
    for line in text.lines().filter(|l| l.contains(&needle)) {
        // Our process is the event's `process`, which is serialized before `parent`.
        let process_part = line.split("\"parent\":").next().unwrap_or(line);
        if !process_part.contains(&needle) {
            continue;
        }
        if line.contains("\"process_exec\":") {
            exec += 1;
        } else if line.contains("\"process_exit\":") {
            exit += 1;
        }
    }
    Ok((exec, exit))
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let export = dir.path().join("events.json");
    let marker = format!("storm{}", std::process::id());

    let baseline = storm(n, &format!("{marker}base"))?;

    let agent = Agent::start(&export, &[])?;
    let pid = agent.child.id();
    let cpu_before = agent.cpu_seconds()?;
    let with_agent = storm(n, &marker)?;
    // Wait until every event is written, or give up after 60 s.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (exec, exit) = loop {
        let (exec, exit) = count_ours(&export, &marker)?;
        if exec + exit >= 2 * n || Instant::now() > deadline {
            break (exec, exit);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let cpu = agent.cpu_seconds()? - cpu_before;
    let rss = peak_rss_mib(pid)?;
    let stats = agent.stop()?;

    let expected = 2 * n;
    let received = exec + exit;
    println!("exec storm: {n} processes (/bin/true), 2 spawner threads");
    println!(
        "events received: {received} of {expected} ({:.2}%): {exec} exec, {exit} exit",
        100.0 * received as f64 / expected as f64
    );
    println!("agent CPU: {:.1} ms per 1,000 events ({:.2} s total)", cpu * 1e6 / received.max(1) as f64, cpu);
    println!("agent peak RSS: {rss:.1} MiB");
    println!(
        "storm wall time: {:.2} s without agent, {:.2} s with agent (x{:.3})",
        baseline.as_secs_f64(),
        with_agent.as_secs_f64(),
        with_agent.as_secs_f64() / baseline.as_secs_f64()
    );
    println!("agent counters: {stats}");
    if received != expected {
        bail!("lost events: {received} of {expected}");
    }
    Ok(())
}
