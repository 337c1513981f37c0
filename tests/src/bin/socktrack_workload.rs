//! Sockets used by a process other than the one that made them (run inside the test VM by
//! `tests/vm_socktrack.rs`), so socket tracking shows in who events are attributed to.
//!
//! 1. listen: this process makes a TCP socket bound to 127.0.0.1:1337 and forks a child
//!    that calls listen() on it; this process closes its fd first, the child closes the
//!    last one (so the child runs tcp_close).
//! 2. accept: this process listens on 127.0.0.1 (any port) and forks a client that
//!    connects, sends `hi` and closes; this process accepts, reads to the end and closes.
//!    The kernel creates the accepted socket in softirq, in the client's context. The
//!    client exits after the server has closed.
//!
//! Prints `owner=`, `listener=`, `client=`, `port=`, `client_port=` lines for the test.
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, RawFd};

fn check(what: &str, rc: libc::c_int) -> libc::c_int {
    if rc < 0 {
        eprintln!("{what}: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    rc
}

fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe() writes.
    check("pipe", unsafe { libc::pipe(fds.as_mut_ptr()) });
    (fds[0], fds[1])
}

fn signal(fd: RawFd) {
    // SAFETY: one byte from a valid buffer.
    check("write", unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) } as libc::c_int);
}

fn wait_signal(fd: RawFd) {
    let mut b = [0u8; 1];
    // SAFETY: one byte into a valid buffer.
    check("read", unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) } as libc::c_int);
}

fn fork() -> libc::pid_t {
    // SAFETY: this program is single-threaded; the child only makes plain syscalls.
    check("fork", unsafe { libc::fork() })
}

fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waits for our own child.
    check("waitpid", unsafe { libc::waitpid(pid, &mut status, 0) });
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        eprintln!("child {pid} failed: status {status:#x}");
        std::process::exit(1);
    }
}

fn listen_phase() {
    // SAFETY: plain socket calls on descriptors this function owns.
    unsafe {
        let fd = check("socket", libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0));
        let one: libc::c_int = 1;
        check("setsockopt", libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, (&one as *const libc::c_int).cast(), 4));
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: 1337u16.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be() },
            sin_zero: [0; 8],
        };
        check("bind", libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), std::mem::size_of_val(&addr) as u32));
        let (to_parent_r, to_parent_w) = pipe();
        let (to_child_r, to_child_w) = pipe();
        let child = fork();
        if child == 0 {
            check("listen", libc::listen(fd, 1));
            signal(to_parent_w);
            wait_signal(to_child_r);
            libc::close(fd);
            libc::_exit(0);
        }
        wait_signal(to_parent_r);
        libc::close(fd);
        signal(to_child_w);
        reap(child);
        println!("owner={}", std::process::id());
        println!("listener={child}");
    }
}

fn accept_phase() {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().unwrap().port();
    let (ready_r, ready_w) = pipe();
    let (done_r, done_w) = pipe();
    let client = fork();
    if client == 0 {
        let code = match TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)) {
            Ok(mut s) => {
                let local = s.local_addr().unwrap().port();
                // The parent prints the port: this child's stdout is a copy of its buffer.
                // SAFETY: the write end of our pipe; File closes it.
                let mut w = unsafe { std::fs::File::from_raw_fd(ready_w) };
                let sent = w.write_all(&local.to_ne_bytes()).and_then(|_| s.write_all(b"hi"));
                drop(s);
                // Alive until the server has closed too: the server's FIN frees this
                // socket, and its __sk_free event is this process's.
                wait_signal(done_r);
                i32::from(sent.is_err())
            }
            Err(e) => {
                eprintln!("connect: {e}");
                1
            }
        };
        // SAFETY: leaves the forked child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: the parent's copy of the write end, which it does not use.
    unsafe { libc::close(ready_w) };
    let (mut conn, _) = listener.accept().expect("accept");
    let mut got = Vec::new();
    conn.read_to_end(&mut got).expect("read");
    assert_eq!(got, b"hi");
    drop(conn);
    drop(listener);
    signal(done_w);
    // SAFETY: the read end of our pipe; File closes it.
    let mut r = unsafe { std::fs::File::from_raw_fd(ready_r) };
    let mut port_bytes = [0u8; 2];
    r.read_exact(&mut port_bytes).expect("the client's port");
    reap(client);
    println!("client={client}");
    println!("port={port}");
    println!("client_port={}", u16::from_ne_bytes(port_bytes));
}

fn main() {
    listen_phase();
    accept_phase();
}
