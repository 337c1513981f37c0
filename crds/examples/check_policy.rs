//! Validates policy files offline and prints every error, one per line.
//! `cargo run -p tetra-crds --example check_policy -- FILE...`
fn main() {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{path}: {e}");
                failed = true;
                continue;
            }
        };
        match tetra_crds::check_policy_yaml(&text) {
            Ok(p) => println!("{path}: ok ({} hooks)", p.hooks.len()),
            Err(errors) => {
                failed = true;
                for e in errors {
                    println!("{path}: {e}");
                }
            }
        }
    }
    std::process::exit(i32::from(failed));
}
