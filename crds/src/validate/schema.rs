//! A walker that checks a JSON value against our generated (structural) openAPIV3Schema,
//! reporting every mismatch with its path: unknown fields (with the closest valid name),
//! wrong types, values outside an enum, missing required fields, too many items.

use crate::error::{did_you_mean, FieldPath, PolicyError};
use serde_json::{Map, Value};

/// Checks `value` against `schema`, appending problems to `errors`.
pub fn check(value: &Value, schema: &Value, path: &FieldPath, errors: &mut Vec<PolicyError>) {
    if value.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) != Some(true) {
            errors.push(PolicyError::invalid(
                path,
                "null, but a value is required here",
            ));
        }
        return;
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => check_object(value, schema, path, errors),
        Some("array") => check_array(value, schema, path, errors),
        Some("string") => check_string(value, schema, path, errors),
        Some("integer") => check_integer(value, schema, path, errors),
        Some("number") if !value.is_number() => errors.push(type_error(path, value, "a number")),
        Some("boolean") if !value.is_boolean() => {
            errors.push(type_error(path, value, "true or false"))
        }
        _ => {}
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn type_error(path: &FieldPath, value: &Value, wanted: &str) -> PolicyError {
    PolicyError::invalid(path, format!("{}, but expected {wanted}", describe(value)))
}

fn check_object(value: &Value, schema: &Value, path: &FieldPath, errors: &mut Vec<PolicyError>) {
    let Some(obj) = value.as_object() else {
        errors.push(type_error(path, value, "a mapping"));
        return;
    };
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        check_properties(obj, props, path, errors);
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = req.as_str() {
                if !obj.contains_key(name) {
                    errors.push(PolicyError::invalid(
                        &path.field(name),
                        "missing, but this field is required",
                    ));
                }
            }
        }
    } else if let Some(item) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        for (k, v) in obj {
            check(v, item, &path.field(k), errors);
        }
    }
}

fn check_properties(
    obj: &Map<String, Value>,
    props: &Map<String, Value>,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) {
    for (k, v) in obj {
        match props.get(k) {
            Some(sub) => check(v, sub, &path.field(k), errors),
            None => {
                let hint = did_you_mean(k, props.keys().map(String::as_str));
                let hint = if hint.is_empty() {
                    let mut names: Vec<&str> = props.keys().map(String::as_str).collect();
                    names.sort_unstable();
                    format!("; valid fields: {}", names.join(", "))
                } else {
                    hint
                };
                errors.push(PolicyError::invalid(
                    &path.field(k),
                    format!("unknown field `{k}`{hint}"),
                ));
            }
        }
    }
}

fn check_array(value: &Value, schema: &Value, path: &FieldPath, errors: &mut Vec<PolicyError>) {
    let Some(items) = value.as_array() else {
        errors.push(type_error(path, value, "a list"));
        return;
    };
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
        if items.len() as u64 > max {
            errors.push(PolicyError::invalid(
                path,
                format!("{} items, but at most {max} are allowed", items.len()),
            ));
        }
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            check(item, item_schema, &path.index(i), errors);
        }
    }
}

fn check_string(value: &Value, schema: &Value, path: &FieldPath, errors: &mut Vec<PolicyError>) {
    let Some(s) = value.as_str() else {
        errors.push(type_error(path, value, "a string"));
        return;
    };
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
        if !names.contains(&s) {
            let hint = did_you_mean(s, names.iter().copied());
            errors.push(PolicyError::invalid(
                path,
                format!("{s:?} is not allowed{hint} (allowed: {})", names.join(", ")),
            ));
        }
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        if s.chars().count() as u64 > max {
            errors.push(PolicyError::invalid(
                path,
                format!(
                    "{} characters, but at most {max} are allowed",
                    s.chars().count()
                ),
            ));
        }
    }
}

fn check_integer(value: &Value, schema: &Value, path: &FieldPath, errors: &mut Vec<PolicyError>) {
    let n = match (value.as_i64(), value.as_u64()) {
        (Some(n), _) => i128::from(n),
        (None, Some(n)) => i128::from(n),
        _ => {
            errors.push(type_error(path, value, "an integer"));
            return;
        }
    };
    let (lo, hi) = match schema.get("format").and_then(Value::as_str) {
        Some("int32") => (i128::from(i32::MIN), i128::from(i32::MAX)),
        Some("uint32") => (0, i128::from(u32::MAX)),
        Some("int64") => (i128::from(i64::MIN), i128::from(i64::MAX)),
        Some("uint64") => (0, i128::from(u64::MAX)),
        _ => (i128::MIN, i128::MAX),
    };
    let min = schema
        .get("minimum")
        .and_then(Value::as_f64)
        .map(|m| m as i128)
        .unwrap_or(lo)
        .max(lo);
    if n < min || n > hi {
        let range = if hi == i128::MAX {
            format!("at least {min}")
        } else {
            format!("{min}..={hi}")
        };
        errors.push(PolicyError::invalid(
            path,
            format!("{n}, but the value must be {range}"),
        ));
    }
}

/// Removes from `value` every object key that [`check`] would reject (unknown fields,
/// values of the wrong type or outside an enum, and objects, or lists of objects, lacking a
/// required field), so that the rest of a broken document can still be checked
/// semantically. Array items are never removed, so paths stay stable.
pub fn prune(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(obj) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                obj.retain(|k, v| {
                    props.get(k).is_some_and(|sub| {
                        let mut errs = Vec::new();
                        check_shallow(v, sub, &mut errs);
                        errs.is_empty() && has_required(v, sub)
                    })
                });
                for (k, v) in obj.iter_mut() {
                    if let Some(sub) = props.get(k) {
                        prune(v, sub);
                    }
                }
            } else if let Some(item) = schema.get("additionalProperties").filter(|v| v.is_object())
            {
                obj.retain(|_, v| {
                    let mut errs = Vec::new();
                    check_shallow(v, item, &mut errs);
                    errs.is_empty()
                });
                obj.values_mut().for_each(|v| prune(v, item));
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                items.iter_mut().for_each(|v| prune(v, item_schema));
            }
        }
        _ => {}
    }
}

/// Whether an object (or every object of a list) has the fields its schema requires.
fn has_required(value: &Value, schema: &Value) -> bool {
    match value {
        Value::Object(obj) => schema
            .get("required")
            .and_then(Value::as_array)
            .is_none_or(|req| req.iter().filter_map(Value::as_str).all(|k| obj.contains_key(k))),
        Value::Array(items) => schema
            .get("items")
            .is_none_or(|item| items.iter().all(|v| has_required(v, item))),
        _ => true,
    }
}

/// Type/enum/range check of one node, without descending into children.
fn check_shallow(value: &Value, schema: &Value, errors: &mut Vec<PolicyError>) {
    let path = FieldPath::default();
    match (value, schema.get("type").and_then(Value::as_str)) {
        (Value::Object(_), Some("object")) | (Value::Array(_), Some("array")) => {}
        (Value::Null, _) | (_, Some("string" | "integer" | "number" | "boolean")) => {
            check(value, schema, &path, errors)
        }
        (_, Some(_)) => errors.push(PolicyError::invalid(&path, "wrong type")),
        (_, None) => {}
    }
}
