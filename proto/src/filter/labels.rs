//! Kubernetes label selector strings (`app=x,tier!=db,env in (a,b),!legacy`).

use std::collections::HashMap;

/// A selector string that does not follow the Kubernetes syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector {selector:?}: {reason}")]
pub struct LabelSelectorError {
    pub selector: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed selector; all requirements must hold. The empty selector
/// matches every label set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63 && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return None;
        }
    }
    if depth != 0 {
        return None;
    }
    parts.push(&s[start..]);
    Some(parts)
}

impl std::str::FromStr for LabelSelector {
    type Err = LabelSelectorError;

    fn from_str(selector: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| LabelSelectorError { selector: selector.to_string(), reason: reason.to_string() };
        let mut requirements = Vec::new();
        if selector.trim().is_empty() {
            return Ok(LabelSelector { requirements });
        }
        for part in split_top(selector).ok_or_else(|| err("unbalanced parentheses"))? {
            let part = part.trim();
            let check_key = |k: &str| if valid_key(k) { Ok(k.to_string()) } else { Err(err(&format!("invalid key {k:?}"))) };
            let check_values = |vs: Vec<String>| {
                match vs.iter().find(|v| !valid_value(v)) {
                    Some(v) => Err(err(&format!("invalid value {v:?}"))),
                    None => Ok(vs),
                }
            };
            if let Some(key) = part.strip_prefix('!') {
                requirements.push(Requirement::NotExists(check_key(key.trim())?));
            } else if let Some((k, v)) = part.split_once("!=") {
                requirements.push(Requirement::NotIn(check_key(k.trim())?, check_values(vec![v.trim().to_string()])?));
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                requirements.push(Requirement::In(check_key(k.trim())?, check_values(vec![v.trim().to_string()])?));
            } else if let Some(open) = part.find('(') {
                let head = part[..open].trim();
                let body = part[open + 1..].strip_suffix(')').ok_or_else(|| err("expected ')' at the end of a set"))?;
                let values: Vec<String> = body.split(',').map(|v| v.trim().to_string()).collect();
                let mut words = head.split_whitespace();
                let (key, op) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                if words.next().is_some() {
                    return Err(err(&format!("unexpected text in {part:?}")));
                }
                let values = check_values(values)?;
                match op {
                    "in" => requirements.push(Requirement::In(check_key(key)?, values)),
                    "notin" => requirements.push(Requirement::NotIn(check_key(key)?, values)),
                    _ => return Err(err(&format!("expected 'in' or 'notin', found {op:?}"))),
                }
            } else {
                requirements.push(Requirement::Exists(check_key(part)?));
            }
        }
        Ok(LabelSelector { requirements })
    }
}

impl LabelSelector {
    /// True when `labels` satisfies every requirement.
    pub fn matches(&self, labels: &HashMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selector_semantics() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("app.kubernetes.io/name", "x")]);
        let yes = ["", "app", "app=web", "app==web", "tier!=db", "app in (web, api)", "env notin (prod)",
            "!env", "app=web,tier=front", "app.kubernetes.io/name=x"];
        let no = ["env", "app=api", "tier!=front", "app in (api)", "app notin (web)", "!app", "app=web,tier=back"];
        for s in yes {
            assert!(s.parse::<LabelSelector>().unwrap().matches(&l), "{s}");
        }
        for s in no {
            assert!(!s.parse::<LabelSelector>().unwrap().matches(&l), "{s}");
        }
    }

    #[test]
    fn selector_errors() {
        for s in ["app in (a", "app in a)", "app foo (a)", "=x", "app=a b", "a,(b)", "app in ((a))"] {
            assert!(s.parse::<LabelSelector>().is_err(), "{s}");
        }
    }
}
