//! Policy errors: one line each, carrying the field path they are about.

use std::fmt;

/// A field path inside a policy document, e.g. `spec.kprobes[0].selectors[1]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FieldPath(String);

impl FieldPath {
    /// The path of a top-level key.
    pub fn root(name: &str) -> Self {
        FieldPath(name.to_string())
    }

    /// `self.name` (or `self["name"]` when `name` is not a plain identifier).
    pub fn field(&self, name: &str) -> Self {
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        match (self.0.is_empty(), plain) {
            (true, true) => FieldPath(name.to_string()),
            (_, true) => FieldPath(format!("{}.{name}", self.0)),
            (_, false) => FieldPath(format!("{}[{name:?}]", self.0)),
        }
    }

    /// `self[i]`.
    pub fn index(&self, i: usize) -> Self {
        FieldPath(format!("{}[{i}]", self.0))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One problem found in a policy. `Display` is a single line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not valid YAML.
    #[error("line {line} column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// The policy is wrong: `path: message`.
    #[error("{path}: {message}")]
    Invalid { path: FieldPath, message: String },
    /// The policy is valid Tetragon but uses a feature this agent does not implement.
    #[error("unsupported: {feature} at {path}")]
    Unsupported { path: FieldPath, feature: String },
}

impl PolicyError {
    /// An [`PolicyError::Invalid`] error.
    pub fn invalid(path: &FieldPath, message: impl Into<String>) -> Self {
        PolicyError::Invalid {
            path: path.clone(),
            message: message.into(),
        }
    }

    /// An [`PolicyError::Unsupported`] error.
    pub fn unsupported(path: &FieldPath, feature: impl Into<String>) -> Self {
        PolicyError::Unsupported {
            path: path.clone(),
            feature: feature.into(),
        }
    }

    /// True for [`PolicyError::Unsupported`].
    pub fn is_unsupported(&self) -> bool {
        matches!(self, PolicyError::Unsupported { .. })
    }
}

/// "a" or "an" for a following word.
pub fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}

/// Levenshtein distance, used to suggest the closest valid name.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            let d = if c.to_ascii_lowercase() == lower {
                0
            } else {
                edit_distance(word, c)
            };
            (d, c)
        })
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// ", did you mean `x`?" or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, candidates)
        .map(|c| format!(", did you mean `{c}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_the_docs() {
        let p = FieldPath::root("spec")
            .field("kprobes")
            .index(0)
            .field("selectors")
            .index(2);
        assert_eq!(p.as_str(), "spec.kprobes[0].selectors[2]");
        assert_eq!(
            FieldPath::root("spec").field("a.b").as_str(),
            "spec[\"a.b\"]"
        );
    }

    #[test]
    fn suggestions_pick_the_closest_name() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            closest("matchArg", ["matchArgs", "matchActions"]),
            Some("matchArgs")
        );
        assert_eq!(
            closest("selectrs", ["selectors", "syscall"]),
            Some("selectors")
        );
        assert_eq!(closest("zzzzzz", ["selectors"]), None);
        assert_eq!(closest("equal", ["Equal", "NotEqual"]), Some("Equal"));
    }

    #[test]
    fn display_is_one_line() {
        let e = PolicyError::unsupported(&FieldPath::root("spec").field("enforcers"), "enforcers");
        assert_eq!(e.to_string(), "unsupported: enforcers at spec.enforcers");
        let e = PolicyError::Syntax {
            line: 3,
            column: 7,
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "line 3 column 7: bad");
    }
}
