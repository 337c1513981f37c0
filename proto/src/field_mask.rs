//! `google.protobuf.FieldMask` with protojson's JSON form: one string of
//! comma-separated paths, each in lowerCamelCase (`"process.podLabels,parent"`).
//! When parsing we also accept snake_case paths, as Tetragon's flags use them.

/// A set of dot-separated field paths (wire-identical to
/// `google.protobuf.FieldMask`). Paths are stored in snake_case.
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct FieldMask {
    #[prost(string, repeated, tag = "1")]
    pub paths: Vec<String>,
}

fn to_camel(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper = false;
    for c in path.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// lowerCamelCase JSON names (and paths of them) to proto snake_case names.
pub(crate) fn to_snake(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl FieldMask {
    /// Builds a mask from snake_case paths.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(paths: I) -> Self {
        FieldMask { paths: paths.into_iter().map(Into::into).collect() }
    }
}

impl serde::Serialize for FieldMask {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let joined: Vec<String> = self.paths.iter().map(|p| to_camel(p)).collect();
        s.serialize_str(&joined.join(","))
    }
}

impl<'de> serde::Deserialize<'de> for FieldMask {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let paths = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(to_snake)
            .collect();
        Ok(FieldMask { paths })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_matches_protojson() {
        let m = FieldMask::new(["process.pod_labels", "parent"]);
        assert_eq!(serde_json::to_string(&m).unwrap(), r#""process.podLabels,parent""#);
        let back: FieldMask = serde_json::from_str(r#""process.podLabels,parent""#).unwrap();
        assert_eq!(back, m);
        let snake: FieldMask = serde_json::from_str(r#""process.pod_labels, parent""#).unwrap();
        assert_eq!(snake, m);
        assert!(serde_json::from_str::<FieldMask>("[1]").is_err());
    }
}
