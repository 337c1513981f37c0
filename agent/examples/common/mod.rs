//! What the host benchmarks (exec_storm, read_storm, mem_report) share: the release tetrad
//! beside them, started with a JSON export, its CPU time, and an exec storm.
#![allow(dead_code)] // each example uses its own part
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

#[path = "../../tests/common/policies.rs"]
pub mod policies;

/// The tetrad built beside this example (target/release/tetrad).
pub fn tetrad() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let tetrad = exe.parent().and_then(Path::parent).context("exe dir")?.join("tetrad");
    if !tetrad.exists() {
        bail!("{} not found: cargo build --release -p tetra-agent --bins", tetrad.display());
    }
    Ok(tetrad)
}

/// A running tetrad and the rest of its log (stderr), read up to "tetrad ready".
pub struct Agent {
    pub child: Child,
    pub log: Lines<BufReader<ChildStderr>>,
}

impl Agent {
    /// Starts tetrad exporting to `export` in one file (every event can be counted), with
    /// `extra` arguments, and waits until it is ready.
    pub fn start(export: &Path, extra: &[&std::ffi::OsStr]) -> anyhow::Result<Agent> {
        let mut child = Command::new(tetrad()?)
            .arg("--export-filename")
            .arg(export)
            .args(["--export-file-max-size-mb", "0"])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()?;
        let mut log = BufReader::new(child.stderr.take().context("stderr")?).lines();
        for line in log.by_ref() {
            let line = line?;
            if line.contains("tetrad ready") {
                return Ok(Agent { child, log });
            }
            if line.contains("ERROR") {
                eprintln!("{line}");
            }
        }
        bail!("tetrad exited before it was ready")
    }

    /// utime + stime of the agent so far, in seconds.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        let fields: Vec<&str> = stat[stat.rfind(')').context("stat")? + 1..].split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
        // SAFETY: sysconf only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        Ok(ticks / hz)
    }

    /// The agent's peak resident memory so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .context("VmHWM")?;
        Ok(kib.trim().trim_end_matches("kB").trim().parse::<f64>()? / 1024.0)
    }

    /// Stops the agent (SIGINT) and returns the counters of its "final stats" line.
    pub fn stop(mut self) -> anyhow::Result<String> {
        // SAFETY: kill() only signals our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let stats = self.log.by_ref().map_while(Result::ok).find(|l| l.contains("final stats:")).unwrap_or_default();
        self.child.wait()?;
        Ok(stats.split("final stats:").nth(1).unwrap_or("").trim().to_string())
    }
}

/// Runs `/bin/true MARKER-i` for i in 0..n from two spawner threads (one per core of our
/// machines); returns the wall time.
pub fn storm(n: usize, marker: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                s.spawn(move || -> anyhow::Result<()> {
                    for i in (t..n).step_by(2) {
                        let ok = Command::new("/bin/true").arg(format!("{marker}-{i}")).status()?;
                        if !ok.success() {
                            bail!("/bin/true failed");
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("spawner panicked"))??;
        }
        Ok(())
    })?;
    Ok(start.elapsed())
}
