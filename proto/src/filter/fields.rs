//! Field filters: keep (INCLUDE) or drop (EXCLUDE) fields of the event
//! payload, addressed by dot paths relative to the payload message
//! (`process.pod.name`, `parent`, `args`). The envelope (`node_name`,
//! `time`, ...) is never touched.
//!
//! For one event, the filters whose event set applies are combined: if any
//! of them is INCLUDE, only the union of included paths is kept; then every
//! EXCLUDE path is removed (exclusion wins). Paths through repeated fields
//! (`ancestors.binary`) apply to each element.

use std::collections::BTreeMap;

use serde_json::Value;

use super::FilterError;
use crate::tetragon::{FieldFilter, FieldFilterAction, GetEventsResponse};

/// A tree of path segments; a node without children selects the whole field.
#[derive(Debug, Clone, Default, PartialEq)]
struct PathTree(BTreeMap<String, PathTree>);

impl PathTree {
    fn insert(&mut self, path: &[String]) {
        let Some((head, rest)) = path.split_first() else { return };
        let child = self.0.entry(head.clone()).or_default();
        if rest.is_empty() {
            child.0.clear(); // whole field selected
            child.0.insert(String::new(), PathTree::default()); // marker: leaf
        } else if !child.is_leaf() {
            child.insert(rest);
        }
    }

    fn is_leaf(&self) -> bool {
        self.0.contains_key("")
    }
}

fn keep(value: &mut Value, tree: &PathTree) {
    if tree.is_leaf() {
        return;
    }
    match value {
        Value::Object(map) => {
            map.retain(|k, _| tree.0.contains_key(k));
            for (k, v) in map.iter_mut() {
                if let Some(sub) = tree.0.get(k) {
                    keep(v, sub);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| keep(v, tree)),
        _ => {}
    }
}

fn prune(value: &mut Value, tree: &PathTree) {
    match value {
        Value::Object(map) => {
            for (k, sub) in &tree.0 {
                if sub.is_leaf() {
                    map.remove(k);
                } else if let Some(v) = map.get_mut(k) {
                    prune(v, sub);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| prune(v, tree)),
        _ => {}
    }
}

#[derive(Debug, Clone)]
struct Compiled {
    event_set: Vec<i32>,
    invert: bool,
    include: bool,
    paths: Vec<Vec<String>>,
}

/// A compiled list of field filters.
#[derive(Debug, Clone, Default)]
pub struct FieldFilters {
    filters: Vec<Compiled>,
}

impl FieldFilters {
    pub fn new(filters: &[FieldFilter]) -> Result<Self, FilterError> {
        let mut out = Vec::with_capacity(filters.len());
        for (i, f) in filters.iter().enumerate() {
            let index = i + 1;
            let action = FieldFilterAction::try_from(f.action).map_err(|_| FilterError::InvalidValue {
                index,
                key: "action".into(),
                message: format!("unknown action {}", f.action),
            })?;
            let paths = f.fields.as_ref().map(|m| m.paths.clone()).unwrap_or_default();
            let mut split = Vec::with_capacity(paths.len());
            for p in &paths {
                let segs: Vec<String> = p.split('.').map(str::to_string).collect();
                if segs.iter().any(String::is_empty) {
                    return Err(FilterError::InvalidValue {
                        index,
                        key: "fields".into(),
                        message: format!("empty segment in path {p:?}"),
                    });
                }
                split.push(segs);
            }
            out.push(Compiled {
                event_set: f.event_set.clone(),
                invert: f.invert_event_set.unwrap_or(false),
                include: action == FieldFilterAction::Include,
                paths: split,
            });
        }
        Ok(FieldFilters { filters: out })
    }

    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Applies the filters to the payload of `event` in place.
    pub fn apply(&self, event: &mut GetEventsResponse) {
        let ty = event.event_type() as i32;
        let mut include: Option<PathTree> = None;
        let mut exclude = PathTree::default();
        for f in &self.filters {
            // An empty event set means all events; invert flips the choice.
            let in_set = f.event_set.is_empty() || f.event_set.contains(&ty);
            if in_set == f.invert {
                continue;
            }
            let tree = if f.include { include.get_or_insert_with(PathTree::default) } else { &mut exclude };
            for p in &f.paths {
                tree.insert(p);
            }
        }
        if include.is_none() && exclude.0.is_empty() {
            return;
        }
        let Ok(Value::Object(mut envelope)) = serde_json::to_value(&*event) else { return };
        let key = crate::tetragon::EventType::try_from(ty)
            .map(|t| t.as_str_name().to_ascii_lowercase())
            .unwrap_or_default();
        let Some(payload) = envelope.get_mut(&key) else { return };
        if let Some(inc) = &include {
            keep(payload, inc);
        }
        prune(payload, &exclude);
        if let Ok(filtered) = serde_json::from_value(Value::Object(envelope)) {
            *event = filtered;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::parse_field_filters;
    use crate::json::{from_line, to_line};

    const EXEC: &str = r#"{"process_exec":{"process":{"pid":1,"binary":"/a","pod":{"name":"p","namespace":"n"}},"parent":{"pid":2,"binary":"/b"},"ancestors":[{"pid":3,"binary":"/c"}]},"node_name":"n1"}"#;
    const EXIT: &str = r#"{"process_exit":{"process":{"pid":1,"binary":"/a"},"parent":{"pid":2},"status":3},"node_name":"n1"}"#;

    fn run(filters: &str, line: &str) -> Value {
        let f = FieldFilters::new(&parse_field_filters(filters).unwrap()).unwrap();
        let mut ev = from_line(line).unwrap();
        f.apply(&mut ev);
        serde_json::from_str(&to_line(&ev)).unwrap()
    }

    fn json(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn exclude_and_include() {
        assert_eq!(
            run(r#"{"fields":"parent","action":"EXCLUDE"}"#, EXEC),
            json(r#"{"process_exec":{"process":{"pid":1,"binary":"/a","pod":{"name":"p","namespace":"n"}},"ancestors":[{"pid":3,"binary":"/c"}]},"node_name":"n1"}"#)
        );
        assert_eq!(
            run(r#"{"fields":"process.binary,ancestors.pid","action":"INCLUDE"}"#, EXEC),
            json(r#"{"process_exec":{"process":{"binary":"/a"},"ancestors":[{"pid":3}]},"node_name":"n1"}"#)
        );
        // INCLUDE filters are unioned; EXCLUDE wins over INCLUDE.
        assert_eq!(
            run("{\"fields\":\"process\",\"action\":\"INCLUDE\"}\n{\"fields\":\"parent.pid\",\"action\":\"INCLUDE\"}\n{\"fields\":\"process.pod\",\"action\":\"EXCLUDE\"}", EXEC),
            json(r#"{"process_exec":{"process":{"pid":1,"binary":"/a"},"parent":{"pid":2}},"node_name":"n1"}"#)
        );
    }

    #[test]
    fn event_set_and_invert() {
        let f = r#"{"event_set":["PROCESS_EXIT"],"fields":"parent","action":"EXCLUDE"}"#;
        assert_eq!(run(f, EXEC), json(EXEC));
        assert_eq!(run(f, EXIT), json(r#"{"process_exit":{"process":{"pid":1,"binary":"/a"},"status":3},"node_name":"n1"}"#));
        let inv = r#"{"event_set":["PROCESS_EXIT"],"invert_event_set":true,"fields":"parent","action":"EXCLUDE"}"#;
        assert_eq!(run(inv, EXIT), json(EXIT));
        assert!(run(inv, EXEC)["process_exec"].get("parent").is_none());
    }

    #[test]
    fn bad_paths_rejected() {
        let bad = parse_field_filters(r#"{"fields":"process..pid","action":"INCLUDE"}"#).unwrap();
        assert!(matches!(FieldFilters::new(&bad), Err(FilterError::InvalidValue { .. })));
    }
}
