use super::NodeLabels;
use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;

declare_rule! {
    /// ## What it does
    /// Reports a node rule whose `nodeSelector` matches none of the nodes, once the nodes are
    /// known: the intent lists some, or they were read from the cluster (`--current`,
    /// `--nodes`). A rules-only intent checked offline is not judged.
    ///
    /// ## Why is this bad?
    /// The rule does nothing: usually a label is misspelt, or the nodes it was written for
    /// carry another label, and they join the cluster without the AS, labels or reflector role
    /// the design gives them.
    ///
    /// ## Example
    /// ```yaml
    /// nodeRules:
    ///   - {name: rack-7, nodeSelector: rak == 'r7', asNumber: 65007}   # the label is `rack`
    /// ```
    pub static RULE = ("W0505", "node-rule-selects-no-node", Warning, "a node rule whose selector matches no node");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    if !model.node_rules.nodes_known {
        return;
    }
    let nodes = NodeLabels::of(model);
    for rule in &model.node_rules.rules {
        if !rule.nodes.is_empty() {
            continue;
        }
        let reason = nodes.unmatched(&rule.selector.selector).unwrap_or_else(|| "only labels rules add satisfy it".to_string());
        diagnostics.push(
            Diagnostic::new(
                &RULE,
                rule.selector.span,
                format!("node rule `{}` selects no node: no node matches `{}`", rule.name.value, rule.selector.text),
            )
            .label(reason)
            .help("correct the selector or the nodes' labels; rules match the labels nodes have, not those other rules add"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn a_rule_for_no_node_is_named_but_only_when_nodes_are_known() {
        let rules = "  nodeRules:\n    - {name: rack-7, nodeSelector: rak == 'r7', asNumber: 65007}\n";
        assert_eq!(check_rule(&intent(rules), "W0505"), Vec::<String>::new());
        let text = intent(&format!("{rules}  nodes:\n    - {{name: n1, ipv4Address: 21.0.0.1/24, labels: {{rack: r7}}}}\n"));
        assert_eq!(
            check_rule(&text, "W0505"),
            [
                "W0505 node rule `rack-7` selects no node: no node matches `rak == 'r7'` | correct the selector or the nodes' labels; rules match the labels nodes have, not those other rules add"
            ]
        );
    }
}
