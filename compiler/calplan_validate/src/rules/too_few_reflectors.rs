use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;

declare_rule! {
    /// ## What it does
    /// Reports a group of nodes (a value of a reflector selection's `perLabel`, or the whole
    /// cluster) where fewer nodes match the selection's `nodeSelector` than its `count` asks
    /// for, once the nodes are known.
    ///
    /// ## Why is this bad?
    /// The group gets fewer reflectors than the design says: one reflector is a single point
    /// of failure for its clients' routes, and none leaves them without any. Usually a node
    /// lacks the label that makes it eligible.
    ///
    /// ## Example
    /// ```yaml
    /// routeReflectors:
    ///   - clusterID: 244.0.0.1
    ///     reflectors: {nodeSelector: node-role == 'infra', perLabel: rack, count: 2}   # rack r3 has one infra node
    /// ```
    pub static RULE = ("W0408", "too-few-reflectors", Warning, "a group with fewer eligible reflectors than its selection asks for");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    for shortfall in &analysis.model.node_rules.shortfalls {
        let group = match &shortfall.group {
            Some((key, value)) => format!("the nodes with `{key}={value}` have"),
            None => "the cluster has".to_string(),
        };
        let found = match shortfall.found {
            0 => "no node matches".to_string(),
            1 => "1 node matches".to_string(),
            more => format!("{more} nodes match"),
        };
        diagnostics.push(
            Diagnostic::new(
                &RULE,
                shortfall.span,
                format!(
                    "{group} {} of the {} reflectors cluster `{}` asks for",
                    if shortfall.found == 0 { "none".to_string() } else { shortfall.found.to_string() },
                    shortfall.wanted,
                    shortfall.cluster_id
                ),
            )
            .label(format!("{found} this selector there"))
            .help("label more nodes so that the selector matches them, or lower `count`"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn a_rack_short_of_reflectors_is_named() {
        let text = intent(
            "  bgp:\n    nodeToNodeMesh: false\n    routeReflectors:\n      - clusterID: 244.0.0.1\n        reflectors: {nodeSelector: role == 'infra', perLabel: rack, count: 2}\n  nodes:\n    - {name: a1, ipv4Address: 10.0.0.1/24, labels: {rack: a, role: infra}}\n    - {name: a2, ipv4Address: 10.0.0.2/24, labels: {rack: a, role: infra}}\n    - {name: b1, ipv4Address: 10.0.0.3/24, labels: {rack: b, role: infra}}\n    - {name: c1, ipv4Address: 10.0.0.4/24, labels: {rack: c}}\n",
        );
        assert_eq!(
            check_rule(&text, "W0408"),
            [
                "W0408 the nodes with `rack=b` have 1 of the 2 reflectors cluster `244.0.0.1` asks for | label more nodes so that the selector matches them, or lower `count`",
                "W0408 the nodes with `rack=c` have none of the 2 reflectors cluster `244.0.0.1` asks for | label more nodes so that the selector matches them, or lower `count`",
            ]
        );
    }
}
