//! Where Tetragon's conformance corpus is, for the tests and benchmarks that read it.
//!
//! The corpus lives outside the repository: `$TETRA_CONFORMANCE_DIR` when set, otherwise
//! `shared/conformance/tetragon` beside the repository clone, holding `policies/`
//! (Tetragon's example policies), `events/` (its exported events and their compact form)
//! and `crds/` (its CRD YAML). `$TETRA_CONFORMANCE_POLICIES` may name the policies folder
//! on its own, e.g. a Tetragon checkout's `examples/tracingpolicy`.
//!
//! A bare clone has none of it: the tests that need a part are then skipped and say so on
//! stderr, unless `TETRA_REQUIRE_CONFORMANCE=1` (set by `.ci/run`) makes that a failure.
use std::io::Write;
use std::path::PathBuf;

const ROOT_VAR: &str = "TETRA_CONFORMANCE_DIR";
const POLICIES_VAR: &str = "TETRA_CONFORMANCE_POLICIES";
const REQUIRE_VAR: &str = "TETRA_REQUIRE_CONFORMANCE";

/// A part of the corpus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Policies,
    Events,
    Crds,
}

impl Part {
    fn folder(self) -> &'static str {
        match self {
            Part::Policies => "policies",
            Part::Events => "events",
            Part::Crds => "crds",
        }
    }
}

/// A folder named by an environment variable, which must exist when the variable is set:
/// a path given on purpose and mistyped must not turn into a silent skip.
fn dir_from_env(var: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os(var).filter(|v| !v.is_empty())?);
    assert!(dir.is_dir(), "{var}={} is not a directory", dir.display());
    Some(dir)
}

/// Where `part` is, if it is there.
pub fn dir(part: Part) -> Option<PathBuf> {
    if part == Part::Policies {
        if let Some(dir) = dir_from_env(POLICIES_VAR) {
            return Some(dir);
        }
    }
    let root = dir_from_env(ROOT_VAR)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/tetragon"));
    let dir = root.join(part.folder());
    dir.is_dir().then_some(dir)
}

/// Where `part` is, for the test (or benchmark) `user`; when it is missing, `None` after
/// saying on stderr that `user` is skipped and how to provide the corpus.
///
/// The note goes to stderr directly, not through `eprintln!`, which the test harness
/// captures: a skip must be visible in a passing run.
pub fn dir_for(user: &str, part: Part) -> Option<PathBuf> {
    if let Some(dir) = dir(part) {
        return Some(dir);
    }
    let reason = format!(
        "{user}: skipped: Tetragon's conformance corpus has no {}/ here (set {ROOT_VAR} to a folder \
         holding policies/, events/ and crds/, or {POLICIES_VAR} to a Tetragon checkout's \
         examples/tracingpolicy, or place shared/conformance/tetragon beside the clone)",
        part.folder()
    );
    let required = std::env::var_os(REQUIRE_VAR).is_some_and(|v| v == "1");
    assert!(!required, "{reason}; {REQUIRE_VAR}=1 requires it");
    let _ = writeln!(std::io::stderr(), "{reason}");
    None
}
