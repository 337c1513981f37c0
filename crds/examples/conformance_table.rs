//! Prints the conformance table for the Tetragon example corpus.
//! `cargo run -p tetra-crds --example conformance_table [DIR]`
use std::path::PathBuf;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .or_else(|| tetra_corpus::dir(tetra_corpus::Part::Policies))
        .unwrap_or_else(|| {
            eprintln!("no corpus: pass its policies folder, or set TETRA_CONFORMANCE_DIR");
            std::process::exit(1);
        });
    match tetra_crds::conformance::evaluate_dir(&dir) {
        Ok(rows) => print!("{}", tetra_crds::conformance::markdown_table(&rows)),
        Err(e) => {
            eprintln!("cannot read {}: {e}", dir.display());
            std::process::exit(1);
        }
    }
}
