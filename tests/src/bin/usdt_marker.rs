//! Fires the USDT probe `tetra_vm:marker` once per command-line number, with the number and
//! the text `marker-<n>` as operands, then calls getcwd(2) once from a function of its own:
//! the traced program of `tests/vm_usdt_stacks.rs`.
use std::ffi::CString;
use std::process::ExitCode;

/// The syscall whose kprobe records stack traces.
#[inline(never)]
fn getcwd_for_stack_trace() {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its length.
    let got = unsafe { libc::getcwd(buf.as_mut_ptr().cast(), buf.len()) };
    std::hint::black_box(got);
}

fn main() -> ExitCode {
    for arg in std::env::args().skip(1) {
        let Ok(n) = arg.parse::<i64>() else {
            eprintln!("usdt_marker: {arg:?} is not a number");
            return ExitCode::FAILURE;
        };
        let text = CString::new(format!("marker-{n}")).expect("no NUL in a formatted number");
        probe::probe!(tetra_vm, marker, n, text.as_ptr());
    }
    getcwd_for_stack_trace();
    // User frames are named from /proc/PID/maps when the agent handles the event, which in
    // the emulated VM can come seconds later: stay until it has.
    std::thread::sleep(std::time::Duration::from_secs(3));
    ExitCode::SUCCESS
}
