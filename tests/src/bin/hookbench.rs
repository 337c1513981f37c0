//! Guest side of the hook-overhead benchmark (run by `vm_bench` inside Debian's kernel).
//!
//! The measured call is `close(-1)`: a real syscall that fails at once, so the cost of a
//! probe on `__x64_sys_close` stands out against the call itself.
//!
//! - `hookbench loop N`: N calls, prints `ns_per_call=<f64>`.
//! - `hookbench empty SYMBOL N`: attaches an empty BPF kprobe program (`r0 = 0; exit`) to
//!   SYMBOL through a perf kprobe event, as libbpf attaches ours, then runs the loop.
//! - `hookbench deliver FILE N`: runs the loop, then waits until FILE holds N
//!   policy events (kprobe or tracepoint) of this process; prints the per-call cost and the rate from the
//!   first call to the last event written.
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

/// Runs `n` calls and returns nanoseconds per call.
fn run_loop(n: u64) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        close_invalid();
    }
    start.elapsed().as_nanos() as f64 / n as f64
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
    println!(
        "ns_per_call={per_call:.1} delivered={seen} expected={n} seconds={elapsed:.3} events_per_s={:.0}",
        seen as f64 / elapsed
    );
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    let count = |s: Option<&String>| -> Result<u64, String> {
        s.ok_or("missing call count")?.parse().map_err(|e| format!("call count: {e}"))
    };
    match args.first().map(String::as_str) {
        Some("loop") => println!("ns_per_call={:.1}", run_loop(count(args.get(1))?)),
        Some("empty") => {
            let symbol = args.get(1).ok_or("missing symbol")?;
            let prog = load_empty_program().map_err(|e| format!("loading the empty program: {e}"))?;
            let _event = attach_kprobe(symbol, prog).map_err(|e| format!("attaching to {symbol}: {e}"))?;
            println!("ns_per_call={:.1}", run_loop(count(args.get(2))?));
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
