//! Allow/deny lists of `Filter`s.

use regex::Regex;

use super::{FilterError, LabelSelector};
use crate::tetragon::{CapFilterSet, Filter, GetEventsResponse, Process};

/// One `Filter`, with its regexes and selectors compiled.
#[derive(Debug, Clone, Default)]
struct Compiled {
    binary: Vec<Regex>,
    namespace: Vec<String>,
    health_check: Option<bool>,
    pid: Vec<u32>,
    pid_set: Vec<u32>,
    event_set: Vec<i32>,
    pod: Vec<Regex>,
    arguments: Vec<Regex>,
    labels: Vec<LabelSelector>,
    policy_names: Vec<String>,
    caps: Option<crate::tetragon::CapFilter>,
    parent_binary: Vec<Regex>,
    parent_arguments: Vec<Regex>,
    container_id: Vec<Regex>,
    in_init_tree: Option<bool>,
    ancestor_binary: Vec<Regex>,
    container_name: Vec<Regex>,
    namespace_regex: Vec<Regex>,
}

fn regexes(index: usize, key: &str, list: &[String]) -> Result<Vec<Regex>, FilterError> {
    list.iter()
        .map(|r| {
            Regex::new(r).map_err(|e| FilterError::InvalidValue {
                index,
                key: key.to_string(),
                message: format!("regex {r:?}: {e}"),
            })
        })
        .collect()
}

fn any_match(res: &[Regex], text: Option<&str>) -> bool {
    text.is_some_and(|t| res.iter().any(|r| r.is_match(t)))
}

fn set_matches(set: &CapFilterSet, caps: &[i32]) -> bool {
    let has = |c: &i32| caps.contains(c);
    (set.any.is_empty() || set.any.iter().any(has))
        && set.all.iter().all(has)
        && (set.exactly.is_empty()
            || (set.exactly.iter().all(has) && caps.iter().all(|c| set.exactly.contains(c))))
        && !set.none.iter().any(has)
}

impl Compiled {
    fn new(index: usize, f: &Filter) -> Result<Self, FilterError> {
        if !f.cel_expression.is_empty() {
            return Err(FilterError::Unsupported { index, key: "cel_expression".into() });
        }
        let labels = f
            .labels
            .iter()
            .map(|s| {
                s.parse::<LabelSelector>().map_err(|e| FilterError::InvalidValue {
                    index,
                    key: "labels".into(),
                    message: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Compiled {
            binary: regexes(index, "binary_regex", &f.binary_regex)?,
            namespace: f.namespace.clone(),
            health_check: f.health_check,
            pid: f.pid.clone(),
            pid_set: f.pid_set.clone(),
            event_set: f.event_set.clone(),
            pod: regexes(index, "pod_regex", &f.pod_regex)?,
            arguments: regexes(index, "arguments_regex", &f.arguments_regex)?,
            labels,
            policy_names: f.policy_names.clone(),
            caps: f.capabilities.clone(),
            parent_binary: regexes(index, "parent_binary_regex", &f.parent_binary_regex)?,
            parent_arguments: regexes(index, "parent_arguments_regex", &f.parent_arguments_regex)?,
            container_id: regexes(index, "container_id", &f.container_id)?,
            in_init_tree: f.in_init_tree,
            ancestor_binary: regexes(index, "ancestor_binary_regex", &f.ancestor_binary_regex)?,
            container_name: regexes(index, "container_name_regex", &f.container_name_regex)?,
            namespace_regex: regexes(index, "namespace_regex", &f.namespace_regex)?,
        })
    }

    /// Every non-empty criterion must hold.
    fn matches(&self, ev: &GetEventsResponse) -> bool {
        let process = ev.process();
        let parent = ev.parent();
        let pod = process.and_then(|p| p.pod.as_ref());
        let pid = |p: Option<&Process>| p.and_then(|p| p.pid);

        if !self.event_set.is_empty() && !self.event_set.contains(&(ev.event_type() as i32)) {
            return false;
        }
        if !self.binary.is_empty() && !any_match(&self.binary, process.map(|p| p.binary.as_str())) {
            return false;
        }
        if !self.namespace.is_empty() {
            // Host processes (no pod) have the namespace "".
            let Some(p) = process else { return false };
            let ns = p.pod.as_ref().map_or("", |pod| pod.namespace.as_str());
            if !self.namespace.iter().any(|n| n == ns) {
                return false;
            }
        }
        if !self.namespace_regex.is_empty() && !any_match(&self.namespace_regex, pod.map(|p| p.namespace.as_str())) {
            return false;
        }
        if let Some(want) = self.health_check {
            let probe = pod.and_then(|p| p.container.as_ref()).is_some_and(|c| c.maybe_exec_probe);
            if probe != want {
                return false;
            }
        }
        if !self.pid.is_empty() && !pid(process).is_some_and(|p| self.pid.contains(&p)) {
            return false;
        }
        if !self.pid_set.is_empty() {
            // Approximation without a process tree: the process, its parent
            // or one of the reported ancestors is in the set.
            let in_set = |p: Option<&Process>| pid(p).is_some_and(|p| self.pid_set.contains(&p));
            if !(in_set(process) || in_set(parent) || ev.ancestors().iter().any(|a| in_set(Some(a)))) {
                return false;
            }
        }
        if !self.pod.is_empty() && !any_match(&self.pod, pod.map(|p| p.name.as_str())) {
            return false;
        }
        if !self.arguments.is_empty() && !any_match(&self.arguments, process.map(|p| p.arguments.as_str())) {
            return false;
        }
        if !self.labels.is_empty() {
            let Some(pod) = pod else { return false };
            if !self.labels.iter().any(|s| s.matches(&pod.pod_labels)) {
                return false;
            }
        }
        if !self.policy_names.is_empty() && !ev.policy_name().is_some_and(|n| self.policy_names.iter().any(|p| p == n)) {
            return false;
        }
        if let Some(caps) = &self.caps {
            let Some(pc) = process.and_then(|p| p.cap.as_ref()) else { return false };
            let sets = [(&caps.permitted, &pc.permitted), (&caps.effective, &pc.effective), (&caps.inheritable, &pc.inheritable)];
            if !sets.iter().all(|(want, have)| want.as_ref().is_none_or(|w| set_matches(w, have))) {
                return false;
            }
        }
        if !self.parent_binary.is_empty() && !any_match(&self.parent_binary, parent.map(|p| p.binary.as_str())) {
            return false;
        }
        if !self.parent_arguments.is_empty() && !any_match(&self.parent_arguments, parent.map(|p| p.arguments.as_str())) {
            return false;
        }
        if !self.container_id.is_empty() && !any_match(&self.container_id, process.map(|p| p.docker.as_str())) {
            return false;
        }
        if let Some(want) = self.in_init_tree {
            if process.and_then(|p| p.in_init_tree).unwrap_or(false) != want {
                return false;
            }
        }
        if !self.ancestor_binary.is_empty()
            && !ev.ancestors().iter().any(|a| any_match(&self.ancestor_binary, Some(&a.binary)))
        {
            return false;
        }
        if !self.container_name.is_empty()
            && !any_match(&self.container_name, pod.and_then(|p| p.container.as_ref()).map(|c| c.name.as_str()))
        {
            return false;
        }
        true
    }
}

/// Allow and deny lists. With an empty allow list every event is allowed.
#[derive(Debug, Clone, Default)]
pub struct EventFilters {
    allow: Vec<Compiled>,
    deny: Vec<Compiled>,
}

impl EventFilters {
    /// Compiles the lists (as in `GetEventsRequest.allow_list/deny_list`).
    pub fn new(allow: &[Filter], deny: &[Filter]) -> Result<Self, FilterError> {
        let compile = |list: &[Filter]| {
            list.iter().enumerate().map(|(i, f)| Compiled::new(i + 1, f)).collect::<Result<Vec<_>, _>>()
        };
        Ok(EventFilters { allow: compile(allow)?, deny: compile(deny)? })
    }

    /// True when nothing is filtered.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// True when the event passes: (no allow filter or any matches) and no
    /// deny filter matches.
    pub fn matches(&self, ev: &GetEventsResponse) -> bool {
        (self.allow.is_empty() || self.allow.iter().any(|f| f.matches(ev)))
            && !self.deny.iter().any(|f| f.matches(ev))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::parse_filters;
    use crate::json::from_line;

    const EXEC: &str = r#"{"process_exec":{"process":{"pid":10,"binary":"/usr/bin/curl","arguments":"-s http://x","docker":"abc123","pod":{"namespace":"default","name":"xwing","pod_labels":{"app":"xwing","org":"alliance"},"container":{"name":"spaceship","maybe_exec_probe":true}},"cap":{"effective":["CAP_SYS_ADMIN","CAP_NET_RAW"]}},"parent":{"pid":9,"binary":"/bin/sh","arguments":"-c curl"},"ancestors":[{"pid":1,"binary":"/sbin/init"}]},"node_name":"n1"}"#;
    const HOST_KPROBE: &str = r#"{"process_kprobe":{"process":{"pid":20,"binary":"/usr/bin/cat"},"function_name":"security_file_permission","policy_name":"file-monitoring"},"node_name":"n1"}"#;
    const THROTTLE: &str = r#"{"process_throttle":{"type":"THROTTLE_START","cgroup":"x"}}"#;

    fn check(filter: &str, expect: [bool; 3]) {
        let filters = EventFilters::new(&parse_filters(filter).unwrap(), &[]).unwrap();
        for (line, want) in [EXEC, HOST_KPROBE, THROTTLE].iter().zip(expect) {
            let ev = from_line(line).unwrap();
            assert_eq!(filters.matches(&ev), want, "filter {filter} on {line}");
        }
    }

    #[test]
    fn each_filter_field() {
        check("", [true, true, true]);
        check("{}", [true, true, true]);
        check(r#"{"binary_regex":["curl$"]}"#, [true, false, false]);
        check(r#"{"binary_regex":["^/usr/bin/"]}"#, [true, true, false]);
        check(r#"{"namespace":["default"]}"#, [true, false, false]);
        check(r#"{"namespace":[""]}"#, [false, true, false]);
        check(r#"{"namespace_regex":["^def"]}"#, [true, false, false]);
        check(r#"{"health_check":true}"#, [true, false, false]);
        check(r#"{"health_check":false}"#, [false, true, true]);
        check(r#"{"pid":[20]}"#, [false, true, false]);
        check(r#"{"pid_set":[1]}"#, [true, false, false]);
        check(r#"{"event_set":["PROCESS_KPROBE","PROCESS_THROTTLE"]}"#, [false, true, true]);
        check(r#"{"pod_regex":["^xw"]}"#, [true, false, false]);
        check(r#"{"arguments_regex":["http://"]}"#, [true, false, false]);
        check(r#"{"labels":["app=xwing,org in (alliance)"]}"#, [true, false, false]);
        check(r#"{"labels":["app!=xwing"]}"#, [false, false, false]);
        check(r#"{"policy_names":["file-monitoring"]}"#, [false, true, false]);
        check(r#"{"capabilities":{"effective":{"any":["CAP_SYS_ADMIN"]}}}"#, [true, false, false]);
        check(r#"{"capabilities":{"effective":{"none":["CAP_SYS_ADMIN"]}}}"#, [false, false, false]);
        check(r#"{"capabilities":{"effective":{"exactly":["CAP_SYS_ADMIN"]}}}"#, [false, false, false]);
        check(r#"{"capabilities":{"effective":{"all":["CAP_NET_RAW","CAP_SYS_ADMIN"]}}}"#, [true, false, false]);
        check(r#"{"parent_binary_regex":["^/bin/sh$"]}"#, [true, false, false]);
        check(r#"{"parent_arguments_regex":["curl"]}"#, [true, false, false]);
        check(r#"{"container_id":["^abc"]}"#, [true, false, false]);
        // events without a process count as "not a probe" / "not in init tree"
        check(r#"{"in_init_tree":false}"#, [true, true, true]);
        check(r#"{"in_init_tree":true}"#, [false, false, false]);
        check(r#"{"ancestor_binary_regex":["init"]}"#, [true, false, false]);
        check(r#"{"container_name_regex":["ship"]}"#, [true, false, false]);
        // fields inside one filter are ANDed; filters in a list are ORed
        check(r#"{"namespace":["default"],"binary_regex":["cat"]}"#, [false, false, false]);
        check("{\"namespace\":[\"default\"]}\n{\"binary_regex\":[\"cat\"]}", [true, true, false]);
    }

    #[test]
    fn deny_wins_over_allow() {
        let allow = parse_filters(r#"{"binary_regex":["/usr/bin/"]}"#).unwrap();
        let deny = parse_filters(r#"{"namespace":[""]}"#).unwrap();
        let f = EventFilters::new(&allow, &deny).unwrap();
        assert!(f.matches(&from_line(EXEC).unwrap()));
        assert!(!f.matches(&from_line(HOST_KPROBE).unwrap()));
        let only_deny = EventFilters::new(&[], &deny).unwrap();
        assert!(only_deny.matches(&from_line(THROTTLE).unwrap()));
    }

    #[test]
    fn bad_filters_are_reported() {
        let bad = parse_filters("{}\n{\"binary_regex\":[\"(\"]}").unwrap();
        let e = EventFilters::new(&bad, &[]).unwrap_err();
        assert!(matches!(&e, FilterError::InvalidValue { index: 2, key, .. } if key == "binary_regex"), "{e}");
        let bad = parse_filters(r#"{"labels":["a in (b"]}"#).unwrap();
        assert!(matches!(EventFilters::new(&[], &bad), Err(FilterError::InvalidValue { .. })));
        let cel = parse_filters(r#"{"cel_expression":["true"]}"#).unwrap();
        assert!(matches!(EventFilters::new(&cel, &[]), Err(FilterError::Unsupported { .. })));
    }
}
