//! Kubernetes label selectors (matchLabels and matchExpressions, all ANDed), for
//! nodeSelector, podSelector and containerSelector.
use std::collections::BTreeMap;

use tetra_crds::types::{LabelSelector, LabelSelectorOperator};

pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let plain = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions = selector.match_expressions.iter().flatten().all(|req| {
        let value = labels.get(&req.key);
        let listed = || value.is_some_and(|v| req.values.iter().flatten().any(|w| w == v));
        match req.operator {
            LabelSelectorOperator::In => listed(),
            LabelSelectorOperator::NotIn => !listed(),
            LabelSelectorOperator::Exists => value.is_some(),
            LabelSelectorOperator::DoesNotExist => value.is_none(),
        }
    });
    plain && expressions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(yaml: &str) -> LabelSelector {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn labels_and_expressions() {
        let labels: BTreeMap<String, String> = [("app", "web"), ("tier", "front")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(matches(&sel("{}"), &labels));
        assert!(matches(&sel("matchLabels: {app: web}"), &labels));
        assert!(!matches(&sel("matchLabels: {app: db}"), &labels));
        assert!(matches(
            &sel("matchExpressions: [{key: tier, operator: In, values: [front, back]}]"),
            &labels
        ));
        assert!(!matches(
            &sel("matchExpressions: [{key: tier, operator: NotIn, values: [front]}]"),
            &labels
        ));
        assert!(matches(
            &sel("matchExpressions: [{key: zone, operator: NotIn, values: [a]}]"),
            &labels
        ));
        assert!(matches(
            &sel("matchExpressions: [{key: app, operator: Exists}]"),
            &labels
        ));
        assert!(!matches(
            &sel("matchExpressions: [{key: app, operator: DoesNotExist}]"),
            &labels
        ));
        assert!(!matches(
            &sel("{matchLabels: {app: web}, matchExpressions: [{key: x, operator: Exists}]}"),
            &labels
        ));
    }
}
