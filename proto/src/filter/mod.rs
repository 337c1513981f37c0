//! Tetragon's export filters over [`GetEventsResponse`], shared by the
//! agent's exporters/gRPC stream and by `tetra getevents` on stdin.
//!
//! - [`EventFilters`]: allow/deny lists of [`Filter`]s (an event passes when
//!   it matches any allow filter, or the allow list is empty, and matches no
//!   deny filter).
//! - [`FieldFilters`]: keep/drop fields of the event payload by dot path.
//! - [`Redactor`]: replace regex capture groups in process arguments.
//!
//! The `parse_*` functions read the agent's flag syntax: JSON objects, one
//! per line (any whitespace separates them), e.g.
//! `{"namespace":["default"]}` / `{"fields":"parent","action":"EXCLUDE"}`.

mod allow;
mod fields;
mod labels;
mod redact;

pub use allow::EventFilters;
pub use fields::FieldFilters;
pub use labels::{LabelSelector, LabelSelectorError};
pub use redact::{Redactor, REDACTED};

use serde::de::DeserializeOwned;

use crate::tetragon::{FieldFilter, Filter, GetEventsResponse, RedactionFilter};

/// A filter definition that cannot be used. `index` is the 1-based position
/// of the filter in its list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("filter {index}: invalid JSON: {message}")]
    Json { index: usize, message: String },
    #[error("filter {index}: expected a JSON object, got {found}")]
    NotAnObject { index: usize, found: String },
    #[error("filter {index}: unknown key {key:?} (known keys: {known})")]
    UnknownKey { index: usize, key: String, known: String },
    #[error("filter {index}: invalid value for {key:?}: {message}")]
    InvalidValue { index: usize, key: String, message: String },
    #[error("filter {index}: {key:?} is not supported by this implementation")]
    Unsupported { index: usize, key: String },
}

const FILTER_KEYS: &[&str] = &[
    "binary_regex", "namespace", "health_check", "pid", "pid_set", "event_set", "pod_regex",
    "arguments_regex", "labels", "policy_names", "capabilities", "parent_binary_regex",
    "cel_expression", "parent_arguments_regex", "container_id", "in_init_tree",
    "ancestor_binary_regex", "container_name_regex", "namespace_regex",
];
const FIELD_FILTER_KEYS: &[&str] = &["event_set", "fields", "action", "invert_event_set"];
const REDACTION_FILTER_KEYS: &[&str] = &["match", "redact", "binary_regex"];

/// Parses `--export-allowlist` / `--export-denylist` text.
pub fn parse_filters(text: &str) -> Result<Vec<Filter>, FilterError> {
    parse_objects(text, FILTER_KEYS)
}

/// Parses `--field-filters` text.
pub fn parse_field_filters(text: &str) -> Result<Vec<FieldFilter>, FilterError> {
    parse_objects(text, FIELD_FILTER_KEYS)
}

/// Parses `--redaction-filters` text.
pub fn parse_redaction_filters(text: &str) -> Result<Vec<RedactionFilter>, FilterError> {
    parse_objects(text, REDACTION_FILTER_KEYS)
}

fn parse_objects<T: DeserializeOwned>(text: &str, known: &[&str]) -> Result<Vec<T>, FilterError> {
    let mut out = Vec::new();
    let stream = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    for (i, value) in stream.enumerate() {
        let index = i + 1;
        let value = value.map_err(|e| FilterError::Json { index, message: e.to_string() })?;
        let serde_json::Value::Object(map) = &value else {
            return Err(FilterError::NotAnObject { index, found: value.to_string() });
        };
        for (key, field) in map {
            // protojson accepts both the proto name and the lowerCamelCase JSON name.
            if !known.contains(&crate::field_mask::to_snake(key).as_str()) {
                return Err(FilterError::UnknownKey { index, key: key.clone(), known: known.join(", ") });
            }
            // Type-check each key alone so the error names the culprit.
            let single = serde_json::Value::Object([(key.clone(), field.clone())].into_iter().collect());
            if let Err(e) = serde_json::from_value::<T>(single) {
                return Err(FilterError::InvalidValue { index, key: key.clone(), message: e.to_string() });
            }
        }
        let parsed = serde_json::from_value::<T>(value)
            .map_err(|e| FilterError::Json { index, message: e.to_string() })?;
        out.push(parsed);
    }
    Ok(out)
}

/// Everything an exporter applies to an event, in Tetragon's order:
/// allow/deny, then redaction, then field filters.
#[derive(Debug, Clone, Default)]
pub struct ExportFilters {
    pub events: EventFilters,
    pub redactor: Redactor,
    pub fields: FieldFilters,
}

impl ExportFilters {
    /// Returns `None` when the event is filtered out; otherwise the event
    /// after redaction and field filtering.
    pub fn apply(&self, mut event: GetEventsResponse) -> Option<GetEventsResponse> {
        if !self.events.matches(&event) {
            return None;
        }
        self.redactor.apply(&mut event);
        self.fields.apply(&mut event);
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flag_syntax() {
        let f = parse_filters("{\"namespace\":[\"\",\"cilium\"]}\n{\"health_check\":true}\n").unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].namespace, vec!["", "cilium"]);
        assert_eq!(f[1].health_check, Some(true));
        // camelCase JSON names are accepted like protojson does
        let f = parse_filters(r#"{"binaryRegex":["x"]} {"event_set":["PROCESS_EXEC"]}"#).unwrap();
        assert_eq!(f[0].binary_regex, vec!["x"]);
        assert_eq!(f[1].event_set, vec![crate::tetragon::EventType::ProcessExec as i32]);
        assert!(parse_filters("").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_bad_key_and_value() {
        let e = parse_filters("{\"namespace\":[\"a\"]}\n{\"namespaces\":[\"a\"]}").unwrap_err();
        assert!(matches!(&e, FilterError::UnknownKey { index: 2, key, .. } if key == "namespaces"), "{e}");
        let e = parse_filters(r#"{"event_set":["PROCESS_EXCE"]}"#).unwrap_err();
        assert!(matches!(&e, FilterError::InvalidValue { index: 1, key, .. } if key == "event_set"), "{e}");
        assert!(e.to_string().contains("PROCESS_EXCE"), "{e}");
        let e = parse_filters(r#"{"pid":"12"}"#).unwrap_err();
        assert!(matches!(&e, FilterError::InvalidValue { key, .. } if key == "pid"), "{e}");
        let e = parse_filters("{\"pid\":[1]} nope").unwrap_err();
        assert!(matches!(e, FilterError::Json { index: 2, .. }), "{e}");
        let e = parse_filters("[1]").unwrap_err();
        assert!(matches!(e, FilterError::NotAnObject { index: 1, .. }), "{e}");
        let e = parse_field_filters(r#"{"fields":"parent","action":"DROP"}"#).unwrap_err();
        assert!(matches!(&e, FilterError::InvalidValue { key, .. } if key == "action"), "{e}");
        let e = parse_redaction_filters(r#"{"redact":"x"}"#).unwrap_err();
        assert!(matches!(&e, FilterError::InvalidValue { key, .. } if key == "redact"), "{e}");
    }
}
