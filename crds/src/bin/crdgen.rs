//! Prints the CRD YAML of both TracingPolicy kinds, or writes them into a directory.
//! `cargo run -p tetra-crds --bin crdgen [-- --out-dir crds/yaml]`
use tetra_crds::crd;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args
        .iter()
        .position(|a| a == "--out-dir")
        .and_then(|i| args.get(i + 1))
    {
        Some(dir) => {
            let dir = std::path::Path::new(dir);
            let file = |p: &str| dir.join(std::path::Path::new(p).file_name().unwrap_or_default());
            std::fs::write(
                file(crd::TRACING_POLICY_YAML_PATH),
                crd::tracing_policy_yaml(),
            )?;
            std::fs::write(
                file(crd::TRACING_POLICY_NAMESPACED_YAML_PATH),
                crd::tracing_policy_namespaced_yaml(),
            )
        }
        None => {
            print!(
                "{}---\n{}",
                crd::tracing_policy_yaml(),
                crd::tracing_policy_namespaced_yaml()
            );
            Ok(())
        }
    }
}
