//! Guest workload of the VM argument-type suite (tests/tests/vm_argtypes.rs): each mode
//! makes the kernel call one hooked function with a known object and prints what the test
//! needs to know about it.
//!
//! - `bpf`: creates a hash map "tetra_map" (key 4, value 8, 16 entries), loads a 2-insn
//!   socket filter "tetra_probe", opens two software perf events (task clock, page faults)
//!   and a kprobe PMU event on `vfs_read`; prints `kprobe_type=N` (the kprobe PMU's dynamic
//!   type) and `sysfs_pmus=NAME:TYPE,...` (every PMU of /sys/bus/event_source/devices).
//! - `userns FILE`: enters a new user and pid namespace; the child (pid 1 there) prints the
//!   user namespace's inode, creates a UTS namespace, sets its hostname and reads FILE.
//! - `nosysadmin-userns`: drops CAP_SYS_ADMIN from the effective set and creates a user
//!   namespace (an unprivileged user namespace); prints `survived` if not killed.
//! - `udp`: sends one datagram to a socket bound on 127.0.0.1 (loopback transmit).
//! - `tty`: writes one line to /dev/ttyS0, the serial console's tty (writes to
//!   /dev/console go through redirected_tty_write and, on 6.1, never reach the tty_write
//!   symbol).
//! - `mmap FILE`: maps FILE read-only.
//! - `init-module`: asks the kernel to load an image that is no module; prints the error.
use std::ffi::CString;
use std::io::Write;
use std::os::unix::fs::MetadataExt;

fn fail(what: &str) -> ! {
    eprintln!("{what}: {}", std::io::Error::last_os_error());
    std::process::exit(1)
}

fn bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> i64 {
    // SAFETY: attr is a zeroed 128-byte buffer laid out as union bpf_attr for `cmd`.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), 128usize) }
}

/// Copies `name` into the 16-byte object name at byte `at` of a bpf_attr.
fn put_name(attr: &mut [u64; 16], at: usize, name: &str) {
    // SAFETY: [u64; 16] and [u8; 128] have the same size; u8 has no alignment need.
    let bytes = unsafe { &mut *(attr as *mut [u64; 16]).cast::<[u8; 128]>() };
    bytes[at..at + name.len()].copy_from_slice(name.as_bytes());
}

fn bpf_objects() {
    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_PROG_LOAD: libc::c_long = 5;
    // union bpf_attr, BPF_MAP_CREATE: map_type, key_size, value_size, max_entries (u32s),
    // map_flags, inner_map_fd, numa_node, then map_name at byte 28.
    let mut attr = [0u64; 16];
    attr[0] = 1 | (4 << 32); // BPF_MAP_TYPE_HASH, key 4
    attr[1] = 8 | (16 << 32); // value 8, 16 entries
    put_name(&mut attr, 28, "tetra_map");
    if bpf(BPF_MAP_CREATE, &mut attr) < 0 {
        fail("BPF_MAP_CREATE");
    }
    // r0 = 0; exit
    let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
    let license = CString::new("GPL").unwrap();
    // BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, log_level, log_size, log_buf,
    // kern_version, prog_flags, then prog_name at byte 48.
    let mut attr = [0u64; 16];
    attr[0] = 1 | (2 << 32); // BPF_PROG_TYPE_SOCKET_FILTER, 2 instructions
    attr[1] = insns.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    put_name(&mut attr, 48, "tetra_probe");
    if bpf(BPF_PROG_LOAD, &mut attr) < 0 {
        fail("BPF_PROG_LOAD");
    }
    // perf_event_attr: type, size (u32s), config, ..., config1 (kprobe_func) at byte 56,
    // config2 (probe_offset) at 64; size 128 is PERF_ATTR_SIZE_VER7 or less, accepted.
    let open = |ty: u32, config: u64, func: Option<&CString>| {
        let mut a = [0u64; 16];
        a[0] = u64::from(ty) | (128 << 32);
        a[1] = config;
        if let Some(f) = func {
            a[7] = f.as_ptr() as u64;
        }
        // SAFETY: a is a 128-byte perf_event_attr; pid 0 (self), cpu -1, no group.
        let fd = unsafe { libc::syscall(libc::SYS_perf_event_open, a.as_ptr(), 0, -1, -1, 0) };
        if fd < 0 {
            fail("perf_event_open");
        }
    };
    open(1, 1, None); // PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK
    open(1, 2, None); // PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS
    let pmu_type = |name: &str| -> u32 {
        let path = format!("/sys/bus/event_source/devices/{name}/type");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text.trim().parse().unwrap_or_else(|e| panic!("{path}: {text:?}: {e}"))
    };
    let kprobe_type = pmu_type("kprobe");
    let func = CString::new("vfs_read").unwrap();
    open(kprobe_type, 0, Some(&func));
    println!("kprobe_type={kprobe_type}");
    // Every PMU with a sysfs device, as name:type (the task_clock PMU has none since 6.5).
    let mut pmus: Vec<String> = std::fs::read_dir("/sys/bus/event_source/devices")
        .unwrap_or_else(|e| panic!("/sys/bus/event_source/devices: {e}"))
        .map(|d| {
            let name = d.unwrap().file_name().into_string().unwrap();
            format!("{name}:{}", pmu_type(&name))
        })
        .collect();
    pmus.sort();
    println!("sysfs_pmus={}", pmus.join(","));
}

fn user_namespace(file: &str) {
    // SAFETY: plain syscalls on this single-threaded process.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWPID) } != 0 {
        fail("unshare(CLONE_NEWUSER | CLONE_NEWPID)");
    }
    let inum = std::fs::metadata("/proc/self/ns/user").unwrap_or_else(|e| panic!("ns/user: {e}")).ino();
    println!("userns_inum={inum}");
    std::io::stdout().flush().unwrap();
    // SAFETY: fork of a single-threaded process; the child only makes syscalls and exits.
    match unsafe { libc::fork() } {
        -1 => fail("fork"),
        0 => {
            if unsafe { libc::unshare(libc::CLONE_NEWUTS) } != 0 {
                fail("unshare(CLONE_NEWUTS)");
            }
            let name = b"tetra-userns";
            if unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } != 0 {
                fail("sethostname");
            }
            let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{file}: {e}"));
            print!("child pid={} read={text}", std::process::id());
            std::io::stdout().flush().unwrap();
            unsafe { libc::_exit(0) }
        }
        child => {
            let mut status = 0;
            unsafe { libc::waitpid(child, &mut status, 0) };
            println!("child status={status}");
        }
    }
}

fn unprivileged_user_namespace() {
    // struct __user_cap_header_struct { version, pid } and two data words (v3).
    let mut header = [0x2008_0522u32, 0];
    let mut data = [0u32; 6];
    // SAFETY: v3 capget/capset read/write two 12-byte data structs.
    if unsafe { libc::syscall(libc::SYS_capget, header.as_mut_ptr(), data.as_mut_ptr()) } != 0 {
        fail("capget");
    }
    data[0] &= !(1 << 21); // effective, CAP_SYS_ADMIN
    if unsafe { libc::syscall(libc::SYS_capset, header.as_mut_ptr(), data.as_ptr()) } != 0 {
        fail("capset");
    }
    let rc = unsafe { libc::unshare(libc::CLONE_NEWUSER) };
    println!("survived rc={rc}");
}

fn udp() {
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.send_to(b"tetra-udp", rx.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 16];
    let n = rx.recv(&mut buf).unwrap();
    println!("udp received {}", String::from_utf8_lossy(&buf[..n]));
}

fn tty() {
    let mut console = std::fs::OpenOptions::new().write(true).open("/dev/ttyS0").unwrap();
    console.write_all(b"tetra-tty\n").unwrap();
}

fn mmap(file: &str) {
    let f = std::fs::File::open(file).unwrap_or_else(|e| panic!("{file}: {e}"));
    use std::os::fd::AsRawFd;
    // SAFETY: a private read-only mapping of an open file, unmapped at once.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ, libc::MAP_PRIVATE, f.as_raw_fd(), 0) };
    if p == libc::MAP_FAILED {
        fail("mmap");
    }
    unsafe { libc::munmap(p, 4096) };
    println!("mapped {file}");
}

fn init_module() {
    let image = [0u8; 64];
    let params = CString::new("").unwrap();
    // SAFETY: init_module reads `image.len()` bytes and the NUL-terminated parameters.
    let rc = unsafe { libc::syscall(libc::SYS_init_module, image.as_ptr(), image.len(), params.as_ptr()) };
    let err = std::io::Error::last_os_error().raw_os_error();
    match (rc, err) {
        (-1, Some(libc::ENOEXEC)) => println!("init_module: ENOEXEC"),
        _ => println!("init_module: rc={rc} errno={err:?}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("bpf"), _) => bpf_objects(),
        (Some("userns"), Some(file)) => user_namespace(file),
        (Some("nosysadmin-userns"), _) => unprivileged_user_namespace(),
        (Some("udp"), _) => udp(),
        (Some("tty"), _) => tty(),
        (Some("mmap"), Some(file)) => mmap(file),
        (Some("init-module"), _) => init_module(),
        _ => {
            eprintln!("usage: vm_argtypes bpf | userns FILE | nosysadmin-userns | udp | tty | mmap FILE | init-module");
            std::process::exit(2)
        }
    }
}
