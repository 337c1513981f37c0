//! Tiny dynamically linked program run inside the test VM by `tests/vm_smoke.rs`:
//! proves that a host-built Rust binary (with its shared libraries copied by the
//! harness) runs in the guest and that std networking works over loopback.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let osrelease = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_else(|e| format!("<{e}>"));
    println!("vm_probe: args={args:?} osrelease={} pid={}", osrelease.trim(), std::process::id());
    match tcp_echo() {
        Ok(reply) => {
            println!("vm_probe: tcp reply={reply}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vm_probe: tcp round trip failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One request/reply over 127.0.0.1 between two threads.
fn tcp_echo() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = thread::spawn(move || -> std::io::Result<()> {
        let (stream, _) = listener.accept()?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let mut stream = stream;
        writeln!(stream, "echo:{}", line.trim())
    });
    let mut client = TcpStream::connect(addr)?;
    writeln!(client, "ping")?;
    let mut reply = String::new();
    BufReader::new(client).read_line(&mut reply)?;
    match server.join() {
        Ok(result) => result?,
        Err(_) => return Err(std::io::Error::other("server thread panicked")),
    }
    Ok(reply.trim().to_string())
}
