//! Prints the conformance table for the Tetragon example corpus.
//! `cargo run -p tetra-crds --example conformance_table [DIR]`
use std::path::PathBuf;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/conformance/tetragon/policies")
        });
    match tetra_crds::conformance::evaluate_dir(&dir) {
        Ok(rows) => print!("{}", tetra_crds::conformance::markdown_table(&rows)),
        Err(e) => {
            eprintln!("cannot read {}: {e}", dir.display());
            std::process::exit(1);
        }
    }
}
