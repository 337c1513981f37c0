//! Prints the CRD YAML of both TracingPolicy kinds (`cargo run -p tetra-crds --bin crdgen`).
fn main() {
    print!("{}", tetra_crds::crd::tracing_policy_yaml());
    print!("---\n{}", tetra_crds::crd::tracing_policy_namespaced_yaml());
}
