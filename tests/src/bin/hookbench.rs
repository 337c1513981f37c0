//! Guest side of the hook-overhead benchmark (run by `vm_bench` inside Debian's kernel).
//!
//! The measured call is `close(-1)`: a real syscall that fails at once, so the cost of a
//! probe on `__x64_sys_close` stands out against the call itself.
//!
//! Each loop is cut into 10 chunks and the median of the chunks' means is printed, so a
//! burst of load on the host that emulates the VM moves one chunk, not the figure.
//!
//! - `hookbench loop N`: N calls, prints `ns_per_call=<f64>`; then N more calls with the
//!   kernel's BPF run-time statistics on (BPF_ENABLE_STATS), and when BPF programs ran on
//!   every one of them, `bpf_ns_per_run=<f64>`: their run time per call as the kernel
//!   measures it around each program (the probe's own machinery excluded). The wall-time
//!   loop runs without the statistics, which cost two clock reads per program run.
//! - `hookbench empty SYMBOL N`: attaches an empty BPF kprobe program (`r0 = 0; exit`) to
//!   SYMBOL through a perf kprobe event, as libbpf attaches ours, then runs both loops.
//! - `hookbench deliver FILE N`: runs the loop, then waits until FILE holds N
//!   policy events (kprobe or tracepoint) of this process; prints the per-call cost and the rate from the
//!   first call to the last event written, then the program's run time over N/10 more calls.
use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::{self, Read, Seek, SeekFrom};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn close_invalid() {
    // SAFETY: closing fd -1 touches no memory; it only fails with EBADF.
    unsafe {
        libc::close(-1);
    }
}

/// Chunks a measured loop is cut into: the median of their means is the figure, so a
/// burst of load on the emulating host moves one chunk, not the result.
const CHUNKS: u64 = 10;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `n` calls (at least one per chunk) and returns nanoseconds per call.
fn run_loop(n: u64) -> f64 {
    let per_chunk = n.div_ceil(CHUNKS).max(1);
    median(
        (0..CHUNKS)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..per_chunk {
                    close_invalid();
                }
                start.elapsed().as_nanos() as f64 / per_chunk as f64
            })
            .collect(),
    )
}

fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> io::Result<i64> {
    // SAFETY: every command used here reads and writes only within the 128-byte attr.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

/// (run_cnt, run_time_ns) of every loaded BPF program, by program id.
fn prog_stats() -> io::Result<BTreeMap<u32, (u64, u64)>> {
    const BPF_PROG_GET_NEXT_ID: libc::c_long = 11;
    const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
    let mut stats = BTreeMap::new();
    let mut id = 0u32;
    loop {
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&id.to_ne_bytes());
        match bpf(BPF_PROG_GET_NEXT_ID, &mut attr) {
            Ok(_) => id = u32::from_ne_bytes(attr[4..8].try_into().expect("4 bytes")),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(stats),
            Err(e) => return Err(e),
        }
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&id.to_ne_bytes());
        let Ok(fd) = bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) else { continue }; // unloaded meanwhile
        // SAFETY: the fd was just returned to us and is owned by this File from here on.
        let file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))?;
        drop(file);
        let field = |name: &str| -> u64 {
            info.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
                .unwrap_or(0)
        };
        stats.insert(id, (field("run_cnt:"), field("run_time_ns:")));
    }
}

/// Runs `n` calls with BPF run-time statistics on, in chunks; returns the median over the
/// chunks of the mean run time of the programs that ran on every call of the chunk, the
/// hook's (None when none did).
fn bpf_run_time(n: u64) -> io::Result<Option<f64>> {
    const BPF_ENABLE_STATS: libc::c_long = 32;
    let mut attr = [0u8; 128]; // enable_stats.type = BPF_STATS_RUN_TIME (0)
    let stats_fd = bpf(BPF_ENABLE_STATS, &mut attr)?;
    // SAFETY: the fd was just returned to us; closing it turns the statistics off again.
    let _stats = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(stats_fd as i32) };
    let per_chunk = n.div_ceil(CHUNKS).max(1);
    let mut chunks = Vec::new();
    for _ in 0..CHUNKS {
        let before = prog_stats()?;
        for _ in 0..per_chunk {
            close_invalid();
        }
        let after = prog_stats()?;
        let (mut runs, mut ns) = (0u64, 0u64);
        for (id, (cnt, time)) in after {
            let (cnt0, time0) = before.get(&id).copied().unwrap_or((0, 0));
            if cnt - cnt0 >= per_chunk {
                runs += cnt - cnt0;
                ns += time - time0;
            }
        }
        if runs == 0 {
            return Ok(None);
        }
        chunks.push(ns as f64 / runs as f64);
    }
    Ok(Some(median(chunks)))
}

/// The wall-time loop, then the statistics loop: the result line of `loop` and `empty`.
fn measure(n: u64) -> Result<String, String> {
    let wall = run_loop(n);
    let run_time = bpf_run_time(n).map_err(|e| format!("BPF run-time statistics: {e}"))?;
    Ok(match run_time {
        Some(t) => format!("ns_per_call={wall:.1} bpf_ns_per_run={t:.1}"),
        None => format!("ns_per_call={wall:.1}"),
    })
}

/// Loads `r0 = 0; exit` as a kprobe program; returns its fd.
fn load_empty_program() -> io::Result<i32> {
    // BPF_MOV64_IMM(R0, 0) and BPF_EXIT_INSN().
    let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
    let license = CString::new("GPL").expect("no NUL");
    // union bpf_attr for BPF_PROG_LOAD: prog_type@0 insn_cnt@4 insns@8 license@16.
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&2u32.to_ne_bytes()); // BPF_PROG_TYPE_KPROBE
    attr[4..8].copy_from_slice(&2u32.to_ne_bytes());
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    // SAFETY: attr outlives the call and points at live insns/license buffers.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, 5 /* BPF_PROG_LOAD */, attr.as_ptr(), attr.len()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd as i32)
}

/// Opens a perf kprobe event on `symbol` and runs `prog_fd` on it; returns the event fd.
fn attach_kprobe(symbol: &str, prog_fd: i32) -> io::Result<i32> {
    let pmu_type: u32 = std::fs::read_to_string("/sys/bus/event_source/devices/kprobe/type")?
        .trim()
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("kprobe PMU type: {e}")))?;
    let name = CString::new(symbol)?;
    // struct perf_event_attr: type@0 size@4 config@8 ... config1 (kprobe_func)@56 config2@64.
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&pmu_type.to_ne_bytes());
    attr[4..8].copy_from_slice(&128u32.to_ne_bytes());
    attr[56..64].copy_from_slice(&(name.as_ptr() as u64).to_ne_bytes());
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
    // SAFETY: attr and name outlive the call; pid -1, cpu 0 as libbpf opens probe events.
    let fd = unsafe {
        libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), -1i32, 0i32, -1i32, PERF_FLAG_FD_CLOEXEC)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = fd as i32;
    const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
    const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
    // SAFETY: plain ioctls on the event fd we own.
    unsafe {
        if libc::ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd) < 0
            || libc::ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(fd)
}

/// Counts export lines that are policy events of this process, reading only new bytes and
/// following the export's rotation (the full file is renamed, a new one takes its path).
struct ExportCounter {
    path: String,
    file: std::fs::File,
    offset: u64,
    partial: Vec<u8>,
    needle: Vec<u8>,
    count: u64,
}

impl ExportCounter {
    fn open(path: &str) -> io::Result<Self> {
        let needle = format!("\"pid\":{},", std::process::id()).into_bytes();
        let file = std::fs::File::open(path)?;
        Ok(ExportCounter { path: path.into(), file, offset: 0, partial: Vec::new(), needle, count: 0 })
    }

    fn read_new(&mut self) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(self.offset))?;
        let mut fresh = Vec::new();
        self.offset += self.file.read_to_end(&mut fresh)? as u64;
        self.partial.extend_from_slice(&fresh);
        Ok(())
    }

    fn poll(&mut self) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        self.read_new()?;
        // Rotated: the renamed file is complete once renamed; finish it, go on with the new one.
        if let Ok(current) = std::fs::metadata(&self.path) {
            if current.ino() != self.file.metadata()?.ino() {
                self.read_new()?;
                self.file = std::fs::File::open(&self.path)?;
                self.offset = 0;
                self.read_new()?;
            }
        }
        let Some(last_newline) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Ok(self.count);
        };
        for line in self.partial[..last_newline].split(|&b| b == b'\n') {
            let is_policy_event = line.windows(15).any(|w| w == b"\"policy_name\":\"");
            if is_policy_event && line.windows(self.needle.len()).any(|w| w == self.needle.as_slice()) {
                self.count += 1;
            }
        }
        self.partial.drain(..=last_newline);
        Ok(self.count)
    }
}

fn deliver(path: &str, n: u64) -> io::Result<()> {
    let mut counter = ExportCounter::open(path)?;
    counter.poll()?; // skip what was there before
    counter.count = 0;
    let start = Instant::now();
    // Count while the calls run: a counter that only looked afterwards could miss files
    // rotated away meanwhile.
    let watcher = std::thread::spawn(move || -> io::Result<u64> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut seen = counter.poll()?;
        while seen < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
            seen = counter.poll()?;
        }
        Ok(seen)
    });
    let per_call = run_loop(n);
    let seen = watcher.join().map_err(|_| io::Error::other("the counting thread panicked"))??;
    let elapsed = start.elapsed().as_secs_f64();
    // A tenth as many calls again, for the program's run time: their events come after
    // the ones counted (the agent's loss count covers them too).
    let run_time = bpf_run_time((n / 10).max(1))?.unwrap_or(0.0);
    println!(
        "ns_per_call={per_call:.1} delivered={seen} expected={n} seconds={elapsed:.3} events_per_s={:.0} bpf_ns_per_run={run_time:.1}",
        seen as f64 / elapsed
    );
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    let count = |s: Option<&String>| -> Result<u64, String> {
        s.ok_or("missing call count")?.parse().map_err(|e| format!("call count: {e}"))
    };
    match args.first().map(String::as_str) {
        Some("loop") => println!("{}", measure(count(args.get(1))?)?),
        Some("empty") => {
            let symbol = args.get(1).ok_or("missing symbol")?;
            let prog = load_empty_program().map_err(|e| format!("loading the empty program: {e}"))?;
            let _event = attach_kprobe(symbol, prog).map_err(|e| format!("attaching to {symbol}: {e}"))?;
            println!("{}", measure(count(args.get(2))?)?);
        }
        Some("deliver") => {
            let file = args.get(1).ok_or("missing export file")?;
            deliver(file, count(args.get(2))?).map_err(|e| format!("{file}: {e}"))?;
        }
        _ => return Err("usage: hookbench loop N | empty SYMBOL N | deliver FILE N".into()),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookbench: {e}");
            ExitCode::FAILURE
        }
    }
}
