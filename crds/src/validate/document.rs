//! From YAML text to a typed policy: syntax (with line and column), the document envelope
//! (apiVersion, kind, metadata) and the spec's shape against our generated schema.

use crate::crd;
use crate::error::{did_you_mean, FieldPath, PolicyError};
use crate::types::TracingPolicySpec;
use serde::Deserialize;
use serde_json::Value;
use std::sync::OnceLock;

/// Which of the two kinds a document is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    /// Cluster-scoped `TracingPolicy`.
    Cluster,
    /// `TracingPolicyNamespaced`.
    Namespaced,
}

/// A parsed, shape-checked policy document.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDocument {
    pub kind: PolicyKind,
    pub name: String,
    pub namespace: Option<String>,
    pub spec: TracingPolicySpec,
}

const API_VERSION: &str = "cilium.io/v1alpha1";
const KINDS: [&str; 2] = ["TracingPolicy", "TracingPolicyNamespaced"];
const TOP_LEVEL: [&str; 4] = ["apiVersion", "kind", "metadata", "spec"];

fn spec_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let root = crd::open_api_schema(&crd::tracing_policy_crd());
        root.pointer("/properties/spec")
            .cloned()
            .unwrap_or(Value::Null)
    })
}

/// Parses YAML into a JSON value; a syntax error carries its line and column (1-based).
/// Duplicate keys and a second document in the same text are errors too.
pub fn parse_yaml(text: &str) -> Result<Value, PolicyError> {
    let syntax = |e: serde_yaml_ng::Error| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        let message = e.to_string();
        // serde_yaml appends " at line L column C"; we print the location first instead.
        let message = match message.find(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        PolicyError::Syntax {
            line,
            column,
            message,
        }
    };
    let mut docs = serde_yaml_ng::Deserializer::from_str(text);
    let first = match docs.next() {
        Some(d) => serde_yaml_ng::Value::deserialize(d).map_err(syntax)?,
        None => serde_yaml_ng::Value::Null,
    };
    if docs.next().is_some() {
        let line = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with("---"))
            .map(|(i, _)| i + 1)
            .find(|i| *i > 1 || !text.starts_with("---"))
            .unwrap_or(1);
        return Err(PolicyError::Syntax {
            line,
            column: 1,
            message: "a second YAML document starts here, but a file holds one policy".into(),
        });
    }
    serde_json::to_value(first).map_err(|e| PolicyError::Syntax {
        line: 1,
        column: 1,
        message: format!("not representable as JSON: {e}"),
    })
}

/// Parses and shape-checks a policy document, reporting all problems found.
pub fn parse_document(text: &str) -> Result<PolicyDocument, Vec<PolicyError>> {
    let value = parse_yaml(text).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let Some(top) = value.as_object() else {
        return Err(vec![PolicyError::invalid(
            &FieldPath::root("(document)"),
            "the document must be a mapping with apiVersion, kind, metadata and spec",
        )]);
    };
    for key in top.keys() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            errors.push(PolicyError::invalid(
                &FieldPath::root(key),
                format!("unknown field `{key}`{}", did_you_mean(key, TOP_LEVEL)),
            ));
        }
    }
    match top.get("apiVersion").and_then(Value::as_str) {
        Some(API_VERSION) => {}
        Some(other) => errors.push(PolicyError::invalid(
            &FieldPath::root("apiVersion"),
            format!("{other:?}, but only {API_VERSION} is supported"),
        )),
        None => errors.push(PolicyError::invalid(
            &FieldPath::root("apiVersion"),
            format!("missing, expected {API_VERSION}"),
        )),
    }
    let kind = match top.get("kind").and_then(Value::as_str) {
        Some("TracingPolicy") => Some(PolicyKind::Cluster),
        Some("TracingPolicyNamespaced") => Some(PolicyKind::Namespaced),
        other => {
            let got = other
                .map(|k| format!("{k:?}"))
                .unwrap_or_else(|| "missing".into());
            let hint = other.map(|k| did_you_mean(k, KINDS)).unwrap_or_default();
            errors.push(PolicyError::invalid(
                &FieldPath::root("kind"),
                format!("{got}{hint}, expected TracingPolicy or TracingPolicyNamespaced"),
            ));
            None
        }
    };
    let (name, namespace) = check_metadata(top.get("metadata"), &mut errors);
    let spec_path = FieldPath::root("spec");
    let spec_value = top.get("spec").cloned().unwrap_or(Value::Null);
    if spec_value.is_null() {
        errors.push(PolicyError::invalid(
            &spec_path,
            "missing, but a TracingPolicy needs a spec",
        ));
    } else {
        check_spec_shape(&spec_value, &spec_path, &mut errors);
    }
    if !errors.is_empty() {
        // Still check what is well-formed, so one run reports everything it can.
        let mut pruned = spec_value;
        super::schema::prune(&mut pruned, spec_schema());
        if let (Some(kind), Ok(spec)) = (kind, serde_json::from_value::<TracingPolicySpec>(pruned))
        {
            let seen: Vec<FieldPath> = errors.iter().filter_map(error_path).collect();
            let more = super::validate_spec(kind, &spec);
            errors.extend(
                more.into_iter()
                    .filter(|e| error_path(e).is_none_or(|p| !seen.contains(&p))),
            );
        }
        return Err(errors);
    }
    let spec: TracingPolicySpec = serde_json::from_value(spec_value)
        .map_err(|e| vec![PolicyError::invalid(&spec_path, e.to_string())])?;
    Ok(PolicyDocument {
        kind: kind.unwrap_or(PolicyKind::Cluster),
        name,
        namespace,
        spec,
    })
}

/// Checks a spec value against the generated schema.
pub fn check_spec_shape(spec: &Value, path: &FieldPath, errors: &mut Vec<PolicyError>) {
    super::schema::check(spec, spec_schema(), path, errors);
}

fn error_path(e: &PolicyError) -> Option<FieldPath> {
    match e {
        PolicyError::Invalid { path, .. } | PolicyError::Unsupported { path, .. } => {
            Some(path.clone())
        }
        PolicyError::Syntax { .. } => None,
    }
}

fn check_metadata(meta: Option<&Value>, errors: &mut Vec<PolicyError>) -> (String, Option<String>) {
    let path = FieldPath::root("metadata");
    let Some(meta) = meta.and_then(Value::as_object) else {
        errors.push(PolicyError::invalid(
            &path,
            "missing, but metadata.name is required",
        ));
        return (String::new(), None);
    };
    let name = match meta.get("name") {
        Some(Value::String(s)) if is_dns_subdomain(s) => s.clone(),
        Some(Value::String(s)) => {
            errors.push(PolicyError::invalid(&path.field("name"), format!("{s:?}, but a name must be 1-253 lowercase letters, digits, '-' or '.', starting and ending alphanumeric")));
            s.clone()
        }
        _ => {
            errors.push(PolicyError::invalid(
                &path.field("name"),
                "missing, but every policy needs a name",
            ));
            String::new()
        }
    };
    let namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    (name, namespace)
}

fn is_dns_subdomain(s: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    !s.is_empty()
        && s.len() <= 253
        && s.chars().all(ok_char)
        && edge(s.chars().next())
        && edge(s.chars().last())
}
