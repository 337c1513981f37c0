//! The program of the seed-002 VM scenario (`tests/vm_seed002.rs`). A child, the worker,
//! does the file and TCP work. Before that, the same file work is done by a process that
//! is pid 1 of a new pid namespace, as a container's init is: the seed's matchPIDs
//! (`NotIn [1]`, `isNamespacePID`) must hide its opens.
//!
//! Prints `nsinit=PID`, `worker=PID` (host pids), `listen=PORT`, `connect=PORT` lines.
//!
//! `seed002_workload dup FILE` instead opens FILE, duplicates the fd to 20 with dup2,
//! closes the original and reads FILE through fd 20 (for CopyFD in `vm_policies.rs`).
//! `seed002_workload pread FILE` reads 100 bytes at offset 10 with one pread64, and
//! `seed002_workload readv FILE` reads 64 + 64 bytes with one readv (`vm_followfd.rs`:
//! none of the VM's programs uses those calls on a file).
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;

/// Bytes the client sends.
pub const SEND: usize = 1234;

fn files() -> std::io::Result<()> {
    // Read a file under /etc with a 4096-byte buffer until EOF.
    let mut f = File::open("/etc/tetra-seed/passwd")?;
    let mut buf = [0u8; 4096];
    while f.read(&mut buf)? > 0 {}
    drop(f);
    // Outside /etc: neither the open nor the read nor the write is reported.
    let mut o = OpenOptions::new().read(true).write(true).create(true).truncate(true).open("/tmp/tetra-seed-outside")?;
    o.write_all(b"outside")?;
    drop(o);
    let mut o = File::open("/tmp/tetra-seed-outside")?;
    o.read(&mut buf)?;
    drop(o);
    // A write to a file under /etc.
    let mut w = OpenOptions::new().write(true).create(true).truncate(true).open("/etc/tetra-seed/out")?;
    w.write_all(b"hello /etc\n")?;
    drop(w);
    Ok(())
}

fn tcp() -> std::io::Result<(u16, u16)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let mut client = TcpStream::connect(("127.0.0.1", port))?;
    let (mut server, _) = listener.accept()?;
    let local = client.local_addr()?.port();
    client.write_all(&[7u8; SEND])?;
    let mut got = vec![0u8; SEND];
    server.read_exact(&mut got)?;
    drop(client);
    drop(server);
    drop(listener);
    Ok((port, local))
}

/// Runs `work` in a forked child; returns the child's host pid and exit status.
fn in_child(work: &dyn Fn() -> i32) -> (i32, i32) {
    // SAFETY: the program is single-threaded; the child only runs plain Rust code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return (pid, 100);
    }
    if pid == 0 {
        let code = work();
        std::io::stdout().flush().ok();
        // SAFETY: leaves the forked child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    (pid, if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 101 })
}

/// Runs `work` as pid 1 of a new pid namespace (unshare in a child, then fork).
fn in_new_pid_namespace(work: &dyn Fn() -> i32) -> i32 {
    let (_, code) = in_child(&|| {
        // SAFETY: unshare only changes the pid namespace of this process's future children.
        if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
            eprintln!("unshare(CLONE_NEWPID): {}", std::io::Error::last_os_error());
            return 102;
        }
        let (host_pid, code) = in_child(work);
        println!("nsinit={host_pid}");
        code
    });
    code
}

/// Opens `path`, moves it to fd 20 with dup2 and reads it there; prints what it read.
fn dup_read(path: &str) -> std::io::Result<()> {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let fd = File::open(path)?.into_raw_fd();
    // SAFETY: plain fd syscalls on an fd this function owns; fd 20 is not in use here.
    if unsafe { libc::dup2(fd, 20) } != 20 || unsafe { libc::close(fd) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd 20 is the duplicate made above, owned from here on.
    let mut f = unsafe { File::from_raw_fd(20) };
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    print!("{text}");
    Ok(())
}

/// One pread64 of 100 bytes at offset 10; prints how many bytes it got.
fn pread(path: &str) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 100];
    let n = File::open(path)?.read_at(&mut buf, 10)?;
    println!("pread={n}");
    Ok(())
}

/// One readv into two 64-byte buffers; prints how many bytes it got.
fn readv(path: &str) -> std::io::Result<()> {
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    let n = File::open(path)?.read_vectored(&mut [std::io::IoSliceMut::new(&mut a), std::io::IoSliceMut::new(&mut b)])?;
    println!("readv={n}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, path] = args.as_slice() {
        let run = match mode.as_str() {
            "dup" => dup_read,
            "pread" => pread,
            "readv" => readv,
            _ => {
                eprintln!("unknown mode {mode}: dup, pread or readv");
                return ExitCode::FAILURE;
            }
        };
        return match run(path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{mode}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let nsinit = in_new_pid_namespace(&|| {
        if std::process::id() != 1 {
            eprintln!("not pid 1 of the new namespace: {}", std::process::id());
            return 5;
        }
        files().map(|_| 0).unwrap_or(2)
    });
    let (worker_pid, worker) = in_child(&|| {
        if files().is_err() {
            return 3;
        }
        match tcp() {
            Ok((listen, connect)) => {
                println!("listen={listen}\nconnect={connect}");
                0
            }
            Err(e) => {
                eprintln!("tcp: {e}");
                4
            }
        }
    });
    println!("worker={worker_pid}");
    if nsinit == 0 && worker == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("seed002_workload: nsinit exit {nsinit}, worker exit {worker}");
        ExitCode::FAILURE
    }
}
