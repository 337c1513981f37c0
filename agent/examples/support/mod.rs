//! What the benchmark examples share: the release `tetrad` beside them, started and ready,
//! and an exec storm.
#![allow(dead_code)] // each example uses its own part
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// `target/release/tetrad`, beside `target/release/examples/`.
pub fn tetrad() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let tetrad = exe.parent().and_then(Path::parent).context("exe dir")?.join("tetrad");
    if !tetrad.exists() {
        bail!("{} not found: cargo build --release -p tetra-agent --bins", tetrad.display());
    }
    Ok(tetrad)
}

/// Starts `tetrad args...` and waits for "tetrad ready"; returns it and the rest of its log.
pub fn start(args: &[String]) -> anyhow::Result<(Child, Lines<BufReader<ChildStderr>>)> {
    let mut agent = Command::new(tetrad()?).args(args).stderr(Stdio::piped()).spawn()?;
    let mut log = BufReader::new(agent.stderr.take().context("stderr")?).lines();
    for line in log.by_ref() {
        if line?.contains("tetrad ready") {
            break;
        }
    }
    Ok((agent, log))
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
