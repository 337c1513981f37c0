//! Connects over TCP to each `ADDR:PORT` argument in turn (run inside the test VM by
//! `tests/vm_selectors.rs`), a refused connection being as good as an accepted one: the
//! kernel's tcp_connect runs either way. Prints one `connect ADDR result` line per target.

use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let mut ok = true;
    for target in std::env::args().skip(1) {
        let addr: SocketAddr = match target.parse() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("vm_connect: {target:?}: {e}");
                ok = false;
                continue;
            }
        };
        let result = match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(_) => "connected".to_string(),
            Err(e) => format!("{:?}", e.kind()),
        };
        println!("connect {addr} {result}");
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
