//! Kernel sensors: BPF programs loaded with libbpf-rs and attached to their hooks.
pub mod process;
pub mod generic;
pub mod memory;
