//! The committed CRD YAML must be exactly what the Rust types generate.
//! Regenerate with `cargo run -p tetra-crds --bin crdgen -- --out-dir crds/yaml`.

use std::path::Path;
use tetra_crds::crd;

fn committed(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn tracing_policy_crd_is_up_to_date() {
    assert!(
        committed(crd::TRACING_POLICY_YAML_PATH) == crd::tracing_policy_yaml(),
        "{} is stale; regenerate with `cargo run -p tetra-crds --bin crdgen -- --out-dir crds/yaml`",
        crd::TRACING_POLICY_YAML_PATH
    );
}

#[test]
fn tracing_policy_namespaced_crd_is_up_to_date() {
    assert!(
        committed(crd::TRACING_POLICY_NAMESPACED_YAML_PATH) == crd::tracing_policy_namespaced_yaml(),
        "{} is stale; regenerate with `cargo run -p tetra-crds --bin crdgen -- --out-dir crds/yaml`",
        crd::TRACING_POLICY_NAMESPACED_YAML_PATH
    );
}

#[test]
fn crds_have_the_expected_names_and_scope() {
    let tp = crd::tracing_policy_crd();
    assert_eq!(tp.spec.group, "cilium.io");
    assert_eq!(tp.spec.scope, "Cluster");
    assert_eq!(
        tp.spec.names.short_names.as_deref(),
        Some(&["tgtp".to_string()][..])
    );
    assert_eq!(
        tp.spec.names.categories.as_deref(),
        Some(&["tetragon".to_string()][..])
    );
    assert_eq!(tp.spec.versions[0].name, "v1alpha1");
    let ns = crd::tracing_policy_namespaced_crd();
    assert_eq!(ns.spec.scope, "Namespaced");
    assert_eq!(ns.spec.names.plural, "tracingpoliciesnamespaced");
    assert_eq!(
        ns.spec.names.short_names.as_deref(),
        Some(&["tgtpn".to_string()][..])
    );
    let yaml = crd::tracing_policy_namespaced_yaml();
    assert!(
        yaml.contains("!has(self.spec.hostSelector)"),
        "namespaced CRD lacks the hostSelector CEL rule"
    );
    assert!(
        crd::tracing_policy_yaml().contains("FollowFD"),
        "our CRD must keep FollowFD"
    );
}

/// Structural schema: every node has a type (or is int-or-string / preserve-unknown),
/// no $ref, and properties never coexist with additionalProperties.
fn assert_structural(v: &serde_json::Value, at: &str) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{at}: schema node is not an object"));
    assert!(
        !obj.contains_key("$ref"),
        "{at}: $ref is not allowed in a structural schema"
    );
    assert!(
        obj.contains_key("type")
            || obj.contains_key("x-kubernetes-int-or-string")
            || obj.contains_key("x-kubernetes-preserve-unknown-fields"),
        "{at}: missing type"
    );
    assert!(
        !(obj.contains_key("properties") && obj.contains_key("additionalProperties")),
        "{at}: properties with additionalProperties"
    );
    for (k, sub) in obj
        .get("properties")
        .and_then(|p| p.as_object())
        .into_iter()
        .flatten()
    {
        assert_structural(sub, &format!("{at}.{k}"));
    }
    if let Some(items) = obj.get("items") {
        assert_structural(items, &format!("{at}[]"));
    }
    if let Some(ap) = obj.get("additionalProperties").filter(|a| a.is_object()) {
        assert_structural(ap, &format!("{at}{{}}"));
    }
}

#[test]
fn schemas_are_structural() {
    for crd in [
        crd::tracing_policy_crd(),
        crd::tracing_policy_namespaced_crd(),
    ] {
        assert_structural(&crd::open_api_schema(&crd), &crd.spec.names.kind);
    }
}
