//! Fires the USDT probe `tetra_vm:marker` once per command-line number, with the number and
//! the text `marker-<n>` as operands: the traced program of `tests/vm_usdt.rs`.
use std::ffi::CString;
use std::process::ExitCode;

fn main() -> ExitCode {
    for arg in std::env::args().skip(1) {
        let Ok(n) = arg.parse::<i64>() else {
            eprintln!("usdt_marker: {arg:?} is not a number");
            return ExitCode::FAILURE;
        };
        let text = CString::new(format!("marker-{n}")).expect("no NUL in a formatted number");
        probe::probe!(tetra_vm, marker, n, text.as_ptr());
    }
    ExitCode::SUCCESS
}
