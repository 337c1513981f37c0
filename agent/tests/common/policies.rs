//! Policies shared by the host tests and the host benchmarks (which include this file).
use std::path::Path;

/// A TracingPolicy named `name` posting every read(2) of `binary` with its fd and count
/// (the read bursts of the read_storm and mem_report benchmarks, and host tests). Field
/// positions of the tracepoint's format: 0-3 common, 4 __syscall_nr, 5 fd, 6 buf, 7 count.
pub fn read_policy(name: &str, binary: &Path) -> String {
    format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: {name}
spec:
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_read
    args:
    - index: 5
      type: int
    - index: 7
      type: size_t
    selectors:
    - matchBinaries:
      - operator: In
        values: [\"{}\"]
",
        binary.display()
    )
}
