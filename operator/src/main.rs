//! `tetra-operator`: installs the CRDs and runs cluster-wide duties. Not built yet.
use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "tetra-operator: not implemented yet; install the CRDs with \
         `kubectl apply -f crds/yaml/` meanwhile"
    );
    ExitCode::FAILURE
}
