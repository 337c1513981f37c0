//! Every policy in examples/tracingpolicy validates and compiles, and compiles to what its
//! comment promises.

use std::path::Path;
use tetra_crds::compile::{decode, AttachTarget};
use tetra_crds::{check_policy_yaml, CompiledPolicy};

fn example(name: &str) -> CompiledPolicy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/tracingpolicy")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    check_policy_yaml(&text).unwrap_or_else(|e| {
        panic!(
            "{name}: {}",
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

#[test]
fn all_examples_compile_and_round_trip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tracingpolicy");
    let files = tetra_crds::conformance::corpus_files(&dir).expect("examples dir");
    assert!(
        files.len() >= 6,
        "expected at least 6 examples, found {}",
        files.len()
    );
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let p = example(&name);
        assert!(!p.hooks.is_empty(), "{name} compiles to no hooks");
        for h in &p.hooks {
            assert_eq!(
                decode(&h.selector_blob).expect("decodes"),
                h.selectors,
                "{name} {}",
                h.source
            );
        }
    }
}

#[test]
fn file_access_follows_fds_on_fd_install() {
    let p = example("file-access-etc.yaml");
    let symbols: Vec<String> = p
        .hooks
        .iter()
        .map(|h| match &h.attach {
            AttachTarget::Kprobe { symbol, .. } => symbol.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        symbols,
        [
            "fd_install",
            "__x64_sys_read",
            "__x64_sys_write",
            "__x64_sys_close"
        ]
    );
    let follow = &p.hooks[0].selectors[0].actions[0];
    assert_eq!((follow.code, follow.params.clone()), (2, vec![0, 1]));
    let unfollow = &p.hooks[3].selectors[0].actions[0];
    assert_eq!((unfollow.code, unfollow.params.clone()), (4, vec![0, 0]));
}

#[test]
fn lsm_example_overrides_with_eperm() {
    let p = example("lsm-deny-open.yaml");
    assert_eq!(
        p.hooks[0].attach,
        AttachTarget::Lsm {
            hook: "file_open".into()
        }
    );
    let a = &p.hooks[0].selectors[0].actions[0];
    assert_eq!((a.code, a.params.clone()), (5, vec![(-1i64) as u64]));
    assert_eq!(p.hooks[0].selectors[0].binaries.len(), 1);
}

#[test]
fn sigkill_example_kills() {
    let p = example("sigkill-protected-writes.yaml");
    assert_eq!(p.hooks[0].selectors[0].actions[0].code, 3);
    assert_eq!(p.hooks[0].selectors[0].binaries[0].op, 2, "NotIn");
}
