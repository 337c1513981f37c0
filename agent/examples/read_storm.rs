//! Delivery-throughput benchmark: every `read(2)` of one process becomes an event.
//!
//! Starts the real tetrad with a TracingPolicy on the `syscalls/sys_enter_read`
//! tracepoint limited by matchBinaries to dd, runs
//! `dd if=/dev/zero of=/dev/null bs=1 count=N` (N one-byte reads from fd 0), waits until
//! the JSON export stops growing and reports: the events of those N reads found in the
//! export, the agent's loss counters, events/s from the first read to the last exported
//! line (dd's start to the export file's last write), the agent's CPU per 1,000
//! events, its peak RSS, and dd's wall and CPU time without and with the agent. Fails unless all N arrived and the agent lost nothing. Run as root:
//!
//!     cargo build --release -p tetra-agent --bins --examples
//!     target/release/examples/read_storm [N]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::bail;

use common::Agent;

/// Waits until the file has not grown for `quiet`, or `limit` passed; returns its mtime.
fn wait_quiet(path: &Path, quiet: Duration, limit: Duration) -> anyhow::Result<SystemTime> {
    let deadline = Instant::now() + limit;
    let (mut size, mut since) = (0, Instant::now());
    loop {
        let meta = std::fs::metadata(path)?;
        if meta.len() != size {
            (size, since) = (meta.len(), Instant::now());
        } else if since.elapsed() >= quiet || Instant::now() > deadline {
            return Ok(meta.modified()?);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// CPU time (user, system) of the children waited for so far, in seconds.
fn children_cpu() -> (f64, f64) {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

/// Runs dd's storm of `n` one-byte reads; returns its wall time and its (user, system)
/// CPU time: with the agent attached, the system time holds the hook's and the ring
/// buffer's cost per read, while the wall time also holds the waits for the CPU.
fn dd_storm(dd: &Path, n: u64) -> anyhow::Result<(Duration, f64, f64)> {
    let (user, sys) = children_cpu();
    let start = Instant::now();
    let status = Command::new(dd)
        .args(["if=/dev/zero", "of=/dev/null", "bs=1", &format!("count={n}")])
        .stderr(Stdio::null())
        .status()?;
    let wall = start.elapsed();
    if !status.success() {
        bail!("dd failed: {status}");
    }
    let (user_after, sys_after) = children_cpu();
    Ok((wall, user_after - user, sys_after - sys))
}

fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(200_000);
    let dd = std::fs::canonicalize("/usr/bin/dd").or_else(|_| std::fs::canonicalize("/bin/dd"))?;
    let dir = tempfile::tempdir()?;
    let export = dir.path().join("events.json");
    let policy_path = dir.path().join("policy.yaml");
    std::fs::write(&policy_path, common::policies::read_policy("bench-read-storm", &dd))?;

    // The kernel ring buffer must hold the backlog of a burst faster than the agent:
    // 64 MiB holds a 200,000-read storm (a record of two integer arguments is ~100 bytes).
    let alone = dd_storm(&dd, n)?;
    let rb_size = std::env::var("RB_SIZE").unwrap_or_else(|_| "67108864".into());
    let agent = Agent::start(
        &export,
        &["--tracing-policy".as_ref(), policy_path.as_os_str(), "--rb-size".as_ref(), rb_size.as_ref()],
    )?;
    let cpu_before = agent.cpu_seconds()?;
    let start = SystemTime::now();
    let attached = dd_storm(&dd, n)?;
    let last_write = wait_quiet(&export, Duration::from_secs(2), Duration::from_secs(300))?;
    let cpu = agent.cpu_seconds()? - cpu_before;
    let peak_rss = agent.peak_rss_mib()?;
    let counters = agent.stop()?;

    // dd's one-byte reads of fd 0; its other reads (the dynamic loader's, locale files)
    // are events too but not counted.
    let text = std::fs::read_to_string(&export)?;
    let (mut reads, mut all) = (0u64, 0u64);
    let mut sample = None;
    for line in text.lines().filter(|l| l.contains("\"process_tracepoint\"")) {
        all += 1;
        sample = sample.or_else(|| line.find("\"args\"").map(|i| line[i..].chars().take(80).collect::<String>()));
        if line.contains("\"args\":[{\"int_arg\":0},{\"size_arg\":\"1\"}]") {
            reads += 1;
        }
    }
    let seconds = last_write.duration_since(start)?.as_secs_f64();
    println!(
        "read storm: dd if=/dev/zero of=/dev/null bs=1 count={n}, sys_enter_read tracepoint, matchBinaries {}, --rb-size {rb_size}",
        dd.display()
    );
    println!("events: {reads} of {n} one-byte reads in the export ({all} process_tracepoint events in all)");
    for (what, (wall, user, sys)) in [("without the agent", alone), ("with the agent", attached)] {
        println!("dd {what}: {:.3} s wall, CPU {user:.3} s user + {sys:.3} s system", wall.as_secs_f64());
    }
    println!(
        "delivery: {:.0} events/s from the first read to the last exported line ({reads} in {seconds:.3} s)",
        reads as f64 / seconds
    );
    println!("agent CPU: {:.1} ms per 1,000 events ({cpu:.2} s total)", cpu * 1e6 / all.max(1) as f64);
    println!("agent peak RSS: {peak_rss:.1} MiB (VmHWM)");
    println!(
        "written: {:.1} MB/s ({} bytes, {:.0} bytes per line)",
        text.len() as f64 / seconds / 1e6,
        text.len(),
        text.len() as f64 / text.lines().count().max(1) as f64
    );
    println!("agent counters: {counters}");
    if reads != n {
        bail!("lost events: {reads} of {n} (the first event's args: {})", sample.unwrap_or_default());
    }
    if !counters.contains("lost=0") {
        bail!("the agent counted losses: {counters}");
    }
    Ok(())
}
