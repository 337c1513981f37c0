//! The CustomResourceDefinitions generated from [`crate::types`], plus the CEL rules the
//! derive cannot express. The committed YAML under `crds/yaml/` is this module's output.

use crate::types::{TracingPolicy, TracingPolicyNamespaced};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, ValidationRule,
};
use kube::CustomResourceExt;

/// Path of the committed cluster-scoped CRD, relative to the crate root.
pub const TRACING_POLICY_YAML_PATH: &str = "yaml/cilium.io_tracingpolicies.yaml";
/// Path of the committed namespaced CRD, relative to the crate root.
pub const TRACING_POLICY_NAMESPACED_YAML_PATH: &str =
    "yaml/cilium.io_tracingpoliciesnamespaced.yaml";

fn rule(rule: &str, message: &str) -> ValidationRule {
    ValidationRule {
        rule: rule.to_string(),
        message: Some(message.to_string()),
        ..ValidationRule::default()
    }
}

fn add_rules(props: &mut JSONSchemaProps, rules: Vec<ValidationRule>) {
    props
        .x_kubernetes_validations
        .get_or_insert_with(Vec::new)
        .extend(rules);
}

/// Mutable access to `properties[name]`, descending into array `items` when `name` is `[]`.
fn child<'a>(props: &'a mut JSONSchemaProps, name: &str) -> Option<&'a mut JSONSchemaProps> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray;
    if name == "[]" {
        return match props.items.as_mut()? {
            JSONSchemaPropsOrArray::Schema(s) => Some(s.as_mut()),
            JSONSchemaPropsOrArray::Schemas(v) => v.first_mut(),
        };
    }
    props.properties.as_mut()?.get_mut(name)
}

fn at<'a>(props: &'a mut JSONSchemaProps, path: &[&str]) -> Option<&'a mut JSONSchemaProps> {
    path.iter().try_fold(props, |p, name| child(p, name))
}

/// Adds the CEL rules shared by both kinds to the `spec` schema.
fn add_spec_rules(spec: &mut JSONSchemaProps) {
    let ret = || {
        rule(
            "!has(self.return) || (!self.return || has(self.returnArg))",
            "ReturnArg not specified with Return=true.",
        )
    };
    for hooks in ["kprobes", "fentries"] {
        if let Some(p) = at(spec, &[hooks, "[]"]) {
            add_rules(p, vec![ret()]);
        }
    }
    if let Some(p) = at(spec, &["uprobes", "[]"]) {
        add_rules(p, vec![
            rule("!(has(self.symbols) && has(self.addrs)) && !(has(self.symbols) && has(self.offsets)) && !(has(self.addrs) && has(self.offsets))",
                "uprobe needs at most one of symbols, addrs or offsets defined"),
            ret(),
        ]);
    }
    if let Some(p) = at(spec, &["hostSelector"]) {
        add_rules(
            p,
            vec![rule(
                "!has(self.matchLabels) && !has(self.matchExpressions)",
                "The hostSelector should be either null or {}.",
            )],
        );
    }
}

fn finish(mut crd: CustomResourceDefinition, namespaced: bool) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        let Some(root) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        if let Some(spec) = at(root, &["spec"]) {
            add_spec_rules(spec);
        }
        if namespaced {
            add_rules(
                root,
                vec![rule(
                    "!has(self.spec.hostSelector)",
                    "TracingPolicyNamespaced should have a null spec.hostSelector.",
                )],
            );
        }
    }
    crd
}

/// The cluster-scoped `TracingPolicy` CRD.
pub fn tracing_policy_crd() -> CustomResourceDefinition {
    finish(TracingPolicy::crd(), false)
}

/// The namespaced `TracingPolicyNamespaced` CRD.
pub fn tracing_policy_namespaced_crd() -> CustomResourceDefinition {
    finish(TracingPolicyNamespaced::crd(), true)
}

fn to_yaml(crd: &CustomResourceDefinition) -> String {
    serde_yaml_ng::to_string(crd).unwrap_or_else(|e| format!("# failed to render CRD: {e}\n"))
}

/// YAML of [`tracing_policy_crd`], as committed.
pub fn tracing_policy_yaml() -> String {
    to_yaml(&tracing_policy_crd())
}

/// YAML of [`tracing_policy_namespaced_crd`], as committed.
pub fn tracing_policy_namespaced_yaml() -> String {
    to_yaml(&tracing_policy_namespaced_crd())
}

/// The `openAPIV3Schema` of a CRD as JSON (what the validator walks).
pub fn open_api_schema(crd: &CustomResourceDefinition) -> serde_json::Value {
    crd.spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(serde_json::Value::Null)
}
