use super::NodeLabels;
use calplan_calico::Selector;
use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;

declare_rule! {
    /// ## What it does
    /// Reports an enabled pool whose `nodeSelector` matches none of the intent's nodes. Pools
    /// kept for manual assignment (`assignmentMode: Manual`, or `nodeSelector: "!all()"` as
    /// Calico documents) are left alone.
    ///
    /// ## Why is this bad?
    /// No node takes blocks from the pool, so its addresses are never used; usually a label
    /// is misspelt or was never applied, and the pods meant for the pool land in another.
    ///
    /// ## Example
    /// ```yaml
    /// pools:
    ///   - {name: rack-b-ippool, cidr: 10.245.0.0/16, nodeSelector: rack == 'b'}   # no node has rack=b
    /// ```
    pub static RULE = ("W0209", "pool-selects-no-node", Warning, "an enabled pool whose nodeSelector matches no node");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    if model.nodes.is_empty() {
        return;
    }
    let nodes = NodeLabels::of(model);
    for pool in &model.pools {
        let selector = &pool.node_selector.selector;
        let kept_for_manual_assignment = pool.assignment_manual || matches!(selector, Selector::Not(inner) if **inner == Selector::All);
        if *pool.disabled || kept_for_manual_assignment {
            continue;
        }
        let Some(reason) = nodes.unmatched(selector) else { continue };
        diagnostics.push(
            Diagnostic::new(
                &RULE,
                pool.node_selector.span,
                format!("pool `{}` selects no node: no node matches `{}`", pool.name.value, pool.node_selector.text),
            )
            .label(reason)
            .help(
                "correct the selector or the nodes' labels; to keep the pool for manual assignment only, write `nodeSelector: \"!all()\"`",
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn a_misspelt_label_is_named_and_manual_pools_are_left_alone() {
        let text = intent(
            "  pools:\n    - {name: a, cidr: 10.0.0.0/16}\n    - {name: b, cidr: 10.1.0.0/16, nodeSelector: rak == 'b'}\n    - {name: c, cidr: 10.2.0.0/16, nodeSelector: '!all()'}\n    - {name: d, cidr: 10.3.0.0/16, nodeSelector: rack == 'z', disabled: true}\n  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24, labels: {rack: b}}\n",
        );
        let found = check_rule(&text, "W0209");
        assert_eq!(
            found,
            [
                "W0209 pool `b` selects no node: no node matches `rak == 'b'` | correct the selector or the nodes' labels; to keep the pool for manual assignment only, write `nodeSelector: \"!all()\"`"
            ]
        );
    }
}
