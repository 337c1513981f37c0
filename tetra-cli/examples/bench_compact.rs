//! Compact-printer throughput: builds a 1,000,000-line JSON file from the
//! conformance events, then times `tetra getevents -o compact --color never`
//! reading it on stdin with stdout to /dev/null. Prints wall-clock and CPU throughput: on a
//! shared machine the CPU figure (the printer's user + system time) is the steadier one.
//!
//! `cargo build --release -p tetra-cli && cargo run --release -p tetra-cli --example bench_compact`
//! Env: TETRA_BIN (default: the `tetra` next to this example's directory),
//! TETRA_CONFORMANCE_DIR, BENCH_LINES (default 1000000).

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use nix::sys::resource::{getrusage, UsageWho};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lines: usize = std::env::var("BENCH_LINES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = tetra_corpus::dir(tetra_corpus::Part::Events)
        .ok_or("no conformance events: set TETRA_CONFORMANCE_DIR (see tetra_corpus)")?;
    let source = std::fs::read_to_string(dir.join("all-events.jsonl"))?;
    let events: Vec<&str> = source.lines().filter(|l| !l.trim().is_empty()).collect();
    if events.is_empty() {
        return Err("no events in all-events.jsonl".into());
    }

    let bin = match std::env::var_os("TETRA_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe()?;
            let dir = exe.parent().and_then(|p| p.parent()).ok_or("cannot locate target dir")?;
            dir.join("tetra")
        }
    };
    if !bin.exists() {
        return Err(format!("{} not found: run `cargo build --release -p tetra-cli` first or set TETRA_BIN", bin.display()).into());
    }

    let input = std::env::temp_dir().join(format!("tetra-bench-{}.jsonl", std::process::id()));
    {
        let mut w = BufWriter::new(std::fs::File::create(&input)?);
        for i in 0..lines {
            w.write_all(events[i % events.len()].as_bytes())?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
    }
    let bytes = std::fs::metadata(&input)?.len();

    let start = Instant::now();
    let status = Command::new(&bin)
        .args(["getevents", "-o", "compact", "--color", "never"])
        .stdin(std::fs::File::open(&input)?)
        .stdout(Stdio::null())
        .status()?;
    let elapsed = start.elapsed();
    let _ = std::fs::remove_file(&input);
    if !status.success() {
        return Err(format!("tetra exited with {status}").into());
    }
    let secs = elapsed.as_secs_f64();
    // Only the printer has run as our child: its CPU time is all of RUSAGE_CHILDREN.
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let cpu = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    let cpu_secs = cpu(usage.user_time()) + cpu(usage.system_time());
    println!(
        "{lines} lines ({:.1} MB) in {secs:.2} s: {:.0} lines/s, {:.1} MB/s; CPU {cpu_secs:.2} s: {:.0} lines per CPU second ({})",
        bytes as f64 / 1e6,
        lines as f64 / secs,
        bytes as f64 / 1e6 / secs,
        lines as f64 / cpu_secs,
        bin.display()
    );
    Ok(())
}
