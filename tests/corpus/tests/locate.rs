//! How the corpus is found, and what a test is told when it is missing. One test function,
//! since it changes this process's environment.
use std::panic::catch_unwind;

use tetra_corpus::{dir, dir_for, Part};

#[test]
fn corpus_is_found_skipped_or_required() {
    // Start from a clean slate: .ci/run sets TETRA_REQUIRE_CONFORMANCE=1 for the whole run.
    for var in ["TETRA_CONFORMANCE_DIR", "TETRA_CONFORMANCE_POLICIES", "TETRA_REQUIRE_CONFORMANCE"] {
        std::env::remove_var(var);
    }
    let root = std::env::temp_dir().join(format!("tetra-corpus-{}", std::process::id()));
    let policies = root.join("policies");
    std::fs::create_dir_all(&policies).unwrap();

    // A root with policies/ but no events/: the first part is found, the second skipped.
    std::env::set_var("TETRA_CONFORMANCE_DIR", &root);
    assert_eq!(dir(Part::Policies), Some(policies.clone()));
    assert_eq!(dir_for("a test", Part::Events), None);

    // A separate policies folder (a Tetragon checkout's examples/tracingpolicy) wins.
    let checkout = root.join("examples/tracingpolicy");
    std::fs::create_dir_all(&checkout).unwrap();
    std::env::set_var("TETRA_CONFORMANCE_POLICIES", &checkout);
    assert_eq!(dir(Part::Policies), Some(checkout));
    std::env::remove_var("TETRA_CONFORMANCE_POLICIES");

    // Required (as .ci/run asks): a missing part fails the test instead of skipping it.
    std::env::set_var("TETRA_REQUIRE_CONFORMANCE", "1");
    let err = catch_unwind(|| dir_for("a test", Part::Crds)).unwrap_err();
    let message = err.downcast_ref::<String>().unwrap();
    assert!(message.contains("no crds/ here") && message.contains("TETRA_REQUIRE_CONFORMANCE=1"), "{message}");
    std::env::remove_var("TETRA_REQUIRE_CONFORMANCE");

    // A mistyped folder is an error, not a skip.
    std::env::set_var("TETRA_CONFORMANCE_DIR", root.join("no-such-dir"));
    assert!(catch_unwind(|| dir(Part::Policies)).is_err());
    std::env::remove_var("TETRA_CONFORMANCE_DIR");
    std::fs::remove_dir_all(&root).unwrap();
}
