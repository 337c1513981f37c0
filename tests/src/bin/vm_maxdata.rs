//! The program of the maxData VM test (`tests/vm_maxdata.rs`); each mode makes exactly the
//! syscalls the test's policies report, with buffers of `tetra_tests::pattern`.
//!
//! - `write SIZE SEED`: one write(2) of SIZE bytes to /dev/null.
//! - `read FILE SIZE SEED`: writes the file, then one read(2) of all of it (a fresh open).
//! - `bench N SIZE EVENTS NEEDLE`: N writes of SIZE bytes to /dev/null, then waits until
//!   the export file EVENTS has N more lines with NEEDLE near their start (the event
//!   kind) than when it started;
//!   prints `bench events=N bytes=B seconds=S bytes_per_s=R` (from the first write to the
//!   last line), or `bench timeout seen=K` after 120 s.
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tetra_tests::pattern;

fn write_once(f: &File, buf: &[u8]) -> Result<(), String> {
    // SAFETY: the buffer is valid for its length; one syscall, whatever it returns.
    let n = unsafe { libc::write(f.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    if n as usize != buf.len() {
        return Err(format!("write returned {n}"));
    }
    Ok(())
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> Result<T, String> {
    args.get(i).and_then(|a| a.parse().ok()).ok_or_else(|| format!("argument {i} missing or invalid: {args:?}"))
}

/// Complete lines of `file` from byte `*pos` on with `needle` in their first 200 bytes
/// (where the event's kind is); moves `*pos` past the last complete line.
fn count_lines(file: &mut File, pos: &mut u64, needle: &[u8]) -> Result<u64, String> {
    let mut text = Vec::new();
    file.seek(SeekFrom::Start(*pos)).map_err(|e| e.to_string())?;
    file.read_to_end(&mut text).map_err(|e| e.to_string())?;
    let Some(end) = text.iter().rposition(|b| *b == b'\n') else { return Ok(0) };
    *pos += end as u64 + 1;
    let head = |l: &[u8]| l[..l.len().min(200)].windows(needle.len()).any(|w| w == needle);
    Ok(text[..end].split(|b| *b == b'\n').filter(|l| head(l)).count() as u64)
}

fn run(args: &[String]) -> Result<(), String> {
    let null = File::options().write(true).open("/dev/null").map_err(|e| e.to_string())?;
    match args.first().map(String::as_str) {
        Some("write") => write_once(&null, &pattern(arg(args, 1)?, arg(args, 2)?)),
        Some("read") => {
            let (path, size, seed): (String, usize, u64) = (arg(args, 1)?, arg(args, 2)?, arg(args, 3)?);
            File::create(&path).and_then(|mut f| f.write_all(&pattern(size, seed))).map_err(|e| e.to_string())?;
            let f = File::open(&path).map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; size + 4096];
            // SAFETY: the buffer is valid for its length.
            let n = unsafe { libc::read(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n as usize != size {
                return Err(format!("read returned {n}, not {size}"));
            }
            Ok(())
        }
        Some("bench") => {
            let (n, size): (u64, usize) = (arg(args, 1)?, arg(args, 2)?);
            let (events, needle): (String, String) = (arg(args, 3)?, arg(args, 4)?);
            let mut file = File::open(&events).map_err(|e| format!("{events}: {e}"))?;
            let mut pos = file.metadata().map_err(|e| e.to_string())?.len();
            let bufs: Vec<Vec<u8>> = (0..n).map(|i| pattern(size, 100 + i)).collect();
            let t0 = Instant::now();
            for b in &bufs {
                write_once(&null, b)?;
            }
            let mut seen = 0;
            while t0.elapsed() < Duration::from_secs(120) {
                seen += count_lines(&mut file, &mut pos, needle.as_bytes())?;
                if seen >= n {
                    let s = t0.elapsed().as_secs_f64();
                    let bytes = n * size as u64;
                    println!("bench events={n} bytes={bytes} seconds={s:.3} bytes_per_s={:.0}", bytes as f64 / s);
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            println!("bench timeout seen={seen}");
            Ok(())
        }
        _ => Err(format!("usage: vm_maxdata write|read|bench ...; got {args:?}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vm_maxdata: {e}");
            ExitCode::FAILURE
        }
    }
}
