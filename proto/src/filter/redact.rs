//! Redaction of secrets in process arguments: the text captured by each
//! group of a `redact` regex is replaced by `*****`.

use regex::Regex;

use super::FilterError;
use crate::tetragon::{GetEventsResponse, RedactionFilter};

/// The replacement for redacted text.
pub const REDACTED: &str = "*****";

#[derive(Debug, Clone)]
struct Compiled {
    binary: Vec<Regex>,
    redact: Vec<Regex>,
}

/// A compiled list of redaction filters.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    filters: Vec<Compiled>,
}

impl Redactor {
    pub fn new(filters: &[RedactionFilter]) -> Result<Self, FilterError> {
        let mut out = Vec::with_capacity(filters.len());
        for (i, f) in filters.iter().enumerate() {
            let index = i + 1;
            #[allow(deprecated)]
            if !f.r#match.is_empty() {
                return Err(FilterError::Unsupported { index, key: "match".into() });
            }
            if f.redact.is_empty() {
                return Err(FilterError::InvalidValue { index, key: "redact".into(), message: "at least one regex is required".into() });
            }
            let compile = |key: &str, list: &[String], need_group: bool| {
                list.iter()
                    .map(|r| {
                        let re = Regex::new(r).map_err(|e| FilterError::InvalidValue {
                            index,
                            key: key.into(),
                            message: format!("regex {r:?}: {e}"),
                        })?;
                        if need_group && re.captures_len() < 2 {
                            return Err(FilterError::InvalidValue {
                                index,
                                key: key.into(),
                                message: format!("regex {r:?} has no capture group, so it would redact nothing"),
                            });
                        }
                        Ok(re)
                    })
                    .collect::<Result<Vec<_>, _>>()
            };
            out.push(Compiled { binary: compile("binary_regex", &f.binary_regex, false)?, redact: compile("redact", &f.redact, true)? });
        }
        Ok(Redactor { filters: out })
    }

    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Redacts `args` of a process running `binary`; `None` when unchanged.
    pub fn redact_args(&self, binary: &str, args: &str) -> Option<String> {
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for f in &self.filters {
            if !f.binary.is_empty() && !f.binary.iter().any(|r| r.is_match(binary)) {
                continue;
            }
            for re in &f.redact {
                for caps in re.captures_iter(args) {
                    ranges.extend(caps.iter().skip(1).flatten().filter(|m| !m.is_empty()).map(|m| (m.start(), m.end())));
                }
            }
        }
        if ranges.is_empty() {
            return None;
        }
        ranges.sort_unstable();
        let mut out = String::with_capacity(args.len());
        let mut pos = 0;
        for (start, end) in ranges {
            if end <= pos {
                continue; // inside an earlier range
            }
            if start >= pos {
                out.push_str(&args[pos..start]);
                out.push_str(REDACTED);
            }
            pos = end;
        }
        out.push_str(&args[pos..]);
        Some(out)
    }

    /// Redacts the arguments of the process, parent and ancestors.
    pub fn apply(&self, event: &mut GetEventsResponse) {
        if self.filters.is_empty() {
            return;
        }
        for p in event.processes_mut() {
            if let Some(new) = self.redact_args(&p.binary, &p.arguments) {
                p.arguments = new;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::parse_redaction_filters;
    use crate::json::from_line;

    fn redactor(text: &str) -> Redactor {
        Redactor::new(&parse_redaction_filters(text).unwrap()).unwrap()
    }

    #[test]
    fn redacts_capture_groups() {
        let r = redactor(r#"{"redact":["--password(?:\\s+|=)(\\S*)"]}"#);
        assert_eq!(r.redact_args("/bin/x", "--user u --password hunter2 -v").as_deref(), Some("--user u --password ***** -v"));
        assert_eq!(r.redact_args("/bin/x", "--password=a --password=b").as_deref(), Some("--password=***** --password=*****"));
        assert_eq!(r.redact_args("/bin/x", "--user u"), None);
    }

    #[test]
    fn binary_regex_scopes_the_filter() {
        let r = redactor(r#"{"binary_regex":["(?:^|/)mysql$"],"redact":["-p(\\S+)"]}"#);
        assert_eq!(r.redact_args("/usr/bin/mysql", "-u root -psecret").as_deref(), Some("-u root -p*****"));
        assert_eq!(r.redact_args("/usr/bin/other", "-u root -psecret"), None);
    }

    #[test]
    fn applies_to_process_and_parent() {
        let r = redactor(r#"{"redact":["token=(\\w+)"]}"#);
        let mut ev = from_line(r#"{"process_exec":{"process":{"binary":"/a","arguments":"token=abc"},"parent":{"binary":"/b","arguments":"x token=def"}}}"#).unwrap();
        r.apply(&mut ev);
        assert_eq!(ev.process().unwrap().arguments, "token=*****");
        assert_eq!(ev.parent().unwrap().arguments, "x token=*****");
    }

    #[test]
    fn invalid_redaction_filters() {
        for (text, key) in [(r#"{"redact":["("]}"#, "redact"), (r#"{"redact":["nogroup"]}"#, "redact"),
            (r#"{"binary_regex":["["],"redact":["(a)"]}"#, "binary_regex"), (r#"{"binary_regex":["x"]}"#, "redact")] {
            let e = Redactor::new(&parse_redaction_filters(text).unwrap()).unwrap_err();
            assert!(matches!(&e, FilterError::InvalidValue { key: k, .. } if k == key), "{text}: {e}");
        }
    }
}
