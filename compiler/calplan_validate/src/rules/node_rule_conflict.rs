use super::{SHOW_AT_MOST, count, name_list};
use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;

declare_rule! {
    /// ## What it does
    /// Reports two node rules that give one node different values for the same field: an AS
    /// number, a route-reflector cluster ID, a label or an autodetection method. One
    /// diagnostic per pair of rules and field names the nodes both select.
    ///
    /// ## Why is this bad?
    /// Which value the node should have is ambiguous, and the order rules happen to be written
    /// in would decide it silently; a node added to the cluster later could land in either.
    ///
    /// ## Example
    /// ```yaml
    /// nodeRules:
    ///   - {name: rack-7, nodeSelector: rack == 'r7', asNumber: 65007}
    ///   - {name: infra, nodeSelector: node-role == 'infra', asNumber: 65100}   # r7's infra nodes get both
    /// ```
    pub static RULE = ("E0504", "node-rule-conflict", Error, "two node rules giving one node different values");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    let rules = &model.node_rules;
    for conflict in &rules.conflicts {
        let first = &rules.rules[conflict.first];
        let second = &rules.rules[conflict.second];
        let names: Vec<&str> = conflict.nodes.iter().map(|id| model.node(*id).name.value.as_str()).collect();
        let which = if names.len() == 1 {
            format!("node {}", name_list(&names, 1))
        } else {
            format!("{} ({})", count(names.len(), "node"), name_list(&names, SHOW_AT_MOST))
        };
        diagnostics.push(
            Diagnostic::new(
                &RULE,
                conflict.second_value.span,
                format!(
                    "node rules `{}` and `{}` give {which} different `{}`: `{}` and `{}`",
                    first.name.value, second.name.value, conflict.field, conflict.first_value.value, conflict.second_value.value
                ),
            )
            .label(format!("rule `{}` sets `{}`", second.name.value, conflict.second_value.value))
            .secondary(conflict.first_value.span, format!("rule `{}` sets `{}`", first.name.value, conflict.first_value.value))
            .help(format!(
                "make the selectors exclusive (for example `{} && !({})`), or pin the value on the node under `spec.nodes`",
                second.selector.text, first.selector.text
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn both_rules_and_the_node_are_named() {
        let text = intent(
            "  nodeRules:\n    - {name: rack-7, nodeSelector: rack == 'r7', asNumber: 65007}\n    - {name: infra, nodeSelector: role == 'infra', asNumber: 65100, labels: {x: a}}\n    - {name: infra-2, nodeSelector: role == 'infra', labels: {x: a}}\n  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24, labels: {rack: r7, role: infra}}\n    - {name: n2, ipv4Address: 21.0.0.2/24, labels: {rack: r7}}\n    - {name: n3, ipv4Address: 21.0.0.3/24, labels: {rack: r7, role: infra}, asNumber: 65001}\n",
        );
        assert_eq!(
            check_rule(&text, "E0504"),
            [
                "E0504 node rules `rack-7` and `infra` give node `n1` different `asNumber`: `65007` and `65100` | make the selectors exclusive (for example `role == 'infra' && !(rack == 'r7')`), or pin the value on the node under `spec.nodes`"
            ]
        );
    }
}
