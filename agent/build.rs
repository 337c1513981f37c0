//! Compiles each BPF program family in ../bpf into a CO-RE object and its Rust skeleton.
use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// Program families: `bpf/<name>.bpf.c` becomes `$OUT_DIR/<name>.skel.rs` and `<name>.bpf.o`.
const FAMILIES: &[&str] = &["process", "generic"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bpf_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("../bpf");
    for name in FAMILIES {
        let source = bpf_dir.join(format!("{name}.bpf.c"));
        SkeletonBuilder::new()
            .source(&source)
            .obj(out.join(format!("{name}.bpf.o")))
            .clang_args([
                "-I".into(),
                bpf_dir.join("include").into_os_string(),
                "-I".into(),
                bpf_dir.clone().into_os_string(),
                "-Wall".into(),
            ])
            .build_and_generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| panic!("building {}: {e:#}", source.display()));
    }
    for dir in ["", "include", "lib"] {
        println!("cargo:rerun-if-changed={}", bpf_dir.join(dir).display());
    }
    for entry in walk(&bpf_dir) {
        println!("cargo:rerun-if-changed={}", entry.display());
    }
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("c" | "h")) {
            files.push(path);
        }
    }
    files
}
