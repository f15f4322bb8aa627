use super::nodes_with_unreadable_address;
use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;

declare_rule! {
    /// ## What it does
    /// Reports a route reflector without an IPv4 address (in a cluster whose nodes use IPv4),
    /// and a route-reflector cluster with no reflector in it.
    ///
    /// ## Why is this bad?
    /// Clients peer with reflectors by address: calico-node renders `# IPv4 disabled on this
    /// node.` for the reflector, and every client's session to it stays down. A cluster without
    /// reflectors reflects nothing, and its clients have no one to peer with.
    ///
    /// ## Example
    /// ```yaml
    /// routeReflectors:
    ///   - {clusterID: 1.0.0.1, nodes: [cs1-k8s-n1.zpepc.com.cn]}
    /// nodes:
    ///   - {name: cs1-k8s-n1.zpepc.com.cn}     # no ipv4Address
    /// ```
    pub static RULE = ("E0406", "route-reflector-without-address", Error, "a route reflector without an address, or a reflector cluster without reflectors");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    let cluster_uses_ipv4 = model.nodes.iter().any(|node| node.ipv4().is_some());
    let unreadable = nodes_with_unreadable_address(model, diagnostics);
    for cluster in &model.route_reflector_clusters {
        // Reflectors chosen by rule among nodes nobody has read yet (a rules-only intent checked
        // offline) are not missing.
        let chosen_later = model.node_rules.chosen_by_rule.contains(&cluster.cluster_id.value) && !model.node_rules.nodes_known;
        if cluster.nodes.is_empty() && !chosen_later {
            diagnostics.push(
                Diagnostic::new(&RULE, cluster.span, format!("route-reflector cluster `{}` has no reflector", cluster.cluster_id.value))
                    .label("no node reflects for this cluster ID")
                    .help("list the reflector nodes under `nodes` (two, for redundancy), or remove the cluster"),
            );
        }
        for member in &cluster.nodes {
            let node = model.node(member.value);
            let without_ipv4 = node.ipv4().is_none() && (cluster_uses_ipv4 || node.ipv6_address.is_none());
            // An address written but unreadable is `invalid-address`'s to report.
            if !without_ipv4 || unreadable[node.id.0 as usize] {
                continue;
            }
            let mut diagnostic = Diagnostic::new(&RULE, member.span, format!("route reflector `{}` has no IPv4 address", node.name.value))
                .label("a reflector its clients cannot reach");
            if node.name.span != member.span {
                diagnostic = diagnostic.secondary(node.name.span, "declared here without `ipv4Address`");
            }
            diagnostics.push(diagnostic.help(
                "give the node an `ipv4Address`: clients peer with a reflector by its address, and without one calico-node configures no IPv4 BGP on it",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn reflectors_need_addresses_and_clusters_need_reflectors() {
        let text = intent(
            "  bgp:\n    nodeToNodeMesh: false\n    routeReflectors:\n      - {clusterID: 1.0.0.1, nodes: [n1, n2]}\n      - {clusterID: 1.0.0.2, nodes: []}\n  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24}\n    - {name: n2}\n    - {name: n3, ipv4Address: 21.0.0.3/24}\n",
        );
        let found: Vec<String> = check_rule(&text, "E0406").iter().map(|line| line.split(" | ").next().unwrap().to_string()).collect();
        assert_eq!(found, ["E0406 route reflector `n2` has no IPv4 address", "E0406 route-reflector cluster `1.0.0.2` has no reflector"]);
    }
}
