use super::thousands;
use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;

declare_rule! {
    /// ## What it does
    /// Warns when more than 100 nodes are in the node-to-node mesh, with the number of BGP
    /// sessions the mesh costs against what two route reflectors would.
    ///
    /// ## Why is this bad?
    /// Every mesh member peers with every other: `n(n−1)/2` sessions, and every node holds
    /// `n−1` of them, each with its own BIRD protocol, keepalives and copy of every route.
    /// Calico's documentation advises route reflectors beyond about 100 nodes; with two
    /// reflectors each node keeps two sessions, about `2n` in all.
    ///
    /// ## Example
    /// ```yaml
    /// bgp:
    ///   nodeToNodeMesh: true     # with 250 nodes: 31,125 sessions; two reflectors: 497
    /// ```
    pub static RULE = ("W0405", "full-mesh-too-large", Warning, "a node-to-node mesh of more than 100 nodes");
}

/// Calico's guidance: "the full mesh works well for small and medium-size deployments of say
/// 100 nodes or less".
const LARGEST_MESH: usize = 100;

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    let members = model
        .nodes
        .iter()
        .filter(|node| node.ipv4().is_some())
        .filter(|node| analysis.topology_index(node.id).is_some_and(|index| analysis.peerings.in_mesh(index)))
        .count();
    if members <= LARGEST_MESH {
        return;
    }
    let mesh_sessions = members * (members - 1) / 2;
    // Two reflectors: each client peers with both, and the reflectors with each other.
    let reflected_sessions = 2 * (members - 2) + 1;
    let setting = &model.bgp.node_to_node_mesh;
    diagnostics.push(
        Diagnostic::new(
            &RULE,
            setting.span,
            format!(
                "the node-to-node mesh joins {} nodes: {} BGP sessions, {} on every node",
                thousands(members),
                thousands(mesh_sessions),
                thousands(members - 1)
            ),
        )
        .label(if model.bgp.node_to_node_mesh_set { "the mesh is on here" } else { "the mesh is on by default" })
        .help(format!(
            "Calico advises route reflectors beyond about {LARGEST_MESH} nodes: two reflectors would need about {} sessions, 2 on each other node; declare them under `bgp.routeReflectors`, then set `nodeToNodeMesh: false`",
            thousands(reflected_sessions)
        )),
    );
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn counts_only_mesh_members() {
        let nodes: String =
            (1..=101).map(|n| format!("    - {{name: n{n}, ipv4Address: 21.0.{}.{}/16}}\n", n / 200, n % 200 + 1)).collect();
        let text = intent(&format!("  pools: [{{name: p, cidr: 10.244.0.0/16}}]\n  nodes:\n{nodes}"));
        let found = check_rule(&text, "W0405");
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("W0405 the node-to-node mesh joins 101 nodes: 5,050 BGP sessions, 100 on every node"), "{found:#?}");
        let reflectors = text.replace("  pools:", "  bgp:\n    routeReflectors: [{clusterID: 1.0.0.1, nodes: [n1]}]\n  pools:");
        assert_eq!(check_rule(&reflectors, "W0405"), Vec::<String>::new());
    }
}
