//! `tetra tracingpolicy validate` (offline).

use std::process::Command;

#[test]
fn validate_reports_ok_and_errors() {
    let dir = std::env::temp_dir().join(format!("tetra-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.yaml");
    let bad = dir.join("bad.yaml");
    std::fs::write(&good, "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: g}\nspec:\n  kprobes:\n  - call: fd_install\n    syscall: false\n    args: [{index: 0, type: int}, {index: 1, type: file}]\n").unwrap();
    std::fs::write(&bad, "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: b}\nspec:\n  kprobes:\n  - call: fd_install\n    args: [{index: 0, type: bogus}]\n").unwrap();
    let run = |files: &[&std::path::Path]| Command::new(env!("CARGO_BIN_EXE_tetra")).args(["tracingpolicy", "validate"]).args(files).output().unwrap();

    let out = run(&[&good]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}: OK\n", good.display()));

    let out = run(&[&good, &bad]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with(&format!("{}: OK\n{}: ", good.display(), bad.display())), "{text}");
    assert!(text.contains("bogus"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
