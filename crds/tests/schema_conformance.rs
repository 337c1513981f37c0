//! Every Tetragon example policy is checked as JSON Schema against the upstream CRDs and
//! against ours: whatever upstream accepts, our schema must accept too.

use serde_json::Value;
use std::path::Path;
use tetra_corpus::Part;
use tetra_crds::{conformance::corpus_files, crd, validate::parse_yaml};

fn upstream_schema(crds: &Path, file: &str) -> Value {
    let text = std::fs::read_to_string(crds.join(file)).expect("upstream CRD");
    let crd = parse_yaml(&text).expect("upstream CRD parses");
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema")
        .cloned()
        .expect("upstream schema")
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft4::new(schema).expect("schema compiles as JSON Schema draft 4")
}

#[test]
fn what_upstream_accepts_we_accept() {
    const TEST: &str = "what_upstream_accepts_we_accept";
    let Some(crds) = tetra_corpus::dir_for(TEST, Part::Crds) else { return };
    let Some(policies) = tetra_corpus::dir_for(TEST, Part::Policies) else { return };
    let up_tp = validator(&upstream_schema(&crds, "cilium.io_tracingpolicies.yaml"));
    let up_ns = validator(&upstream_schema(&crds, "cilium.io_tracingpoliciesnamespaced.yaml"));
    let our_tp = validator(&crd::open_api_schema(&crd::tracing_policy_crd()));
    let our_ns = validator(&crd::open_api_schema(&crd::tracing_policy_namespaced_crd()));
    let files = corpus_files(&policies).expect("corpus");
    assert!(
        files.len() >= 50,
        "expected the whole corpus, found {} files",
        files.len()
    );
    let (mut upstream_ok, mut ours_ok) = (0, 0);
    let mut failures = Vec::new();
    for f in &files {
        let doc =
            parse_yaml(&std::fs::read_to_string(f).expect("read")).expect("corpus file is YAML");
        let namespaced = doc.get("kind").and_then(Value::as_str) == Some("TracingPolicyNamespaced");
        let (up, ours) = if namespaced {
            (&up_ns, &our_ns)
        } else {
            (&up_tp, &our_tp)
        };
        let up_valid = up.is_valid(&doc);
        let our_errors: Vec<String> = ours
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        upstream_ok += usize::from(up_valid);
        ours_ok += usize::from(our_errors.is_empty());
        if up_valid && !our_errors.is_empty() {
            failures.push(format!("{}: {}", f.display(), our_errors.join("; ")));
        }
    }
    eprintln!(
        "{} files: {upstream_ok} valid against upstream CRDs, {ours_ok} valid against ours",
        files.len()
    );
    assert!(
        failures.is_empty(),
        "accepted by upstream, rejected by ours:\n{}",
        failures.join("\n")
    );
    assert!(upstream_ok >= files.len() - 2, "upstream schema rejects too many corpus files ({upstream_ok}/{}); is the test reading them right?", files.len());
}

#[test]
fn our_schema_keeps_follow_fd_which_upstream_dropped() {
    let doc = parse_yaml(include_str!(
        "../../examples/tracingpolicy/file-access-etc.yaml"
    ))
    .expect("example parses");
    assert!(validator(&crd::open_api_schema(&crd::tracing_policy_crd())).is_valid(&doc));
    let Some(crds) = tetra_corpus::dir_for("our_schema_keeps_follow_fd_which_upstream_dropped", Part::Crds) else {
        return;
    };
    assert!(
        !validator(&upstream_schema(&crds, "cilium.io_tracingpolicies.yaml")).is_valid(&doc),
        "upstream's enum no longer has FollowFD"
    );
}

#[test]
fn schema_rejects_wrong_types_and_enums() {
    let ours = validator(&crd::open_api_schema(&crd::tracing_policy_crd()));
    let bad = parse_yaml("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: x}\nspec:\n  kprobes:\n  - call: sys_read\n    selectors:\n    - matchArgs:\n      - {index: 0, operator: Equals, values: ['1']}\n").unwrap();
    assert!(!ours.is_valid(&bad));
}
