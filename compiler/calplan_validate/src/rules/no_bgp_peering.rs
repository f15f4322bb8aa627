use super::{ITEMIZE_UP_TO, SHOW_AT_MOST, count, name_list};
use calplan_diagnostics::{Diagnostic, Diagnostics, Span, declare_rule};
use calplan_model::{Analysis, Node};
use std::collections::BTreeMap;

declare_rule! {
    /// ## What it does
    /// Reports a node with an IPv4 address that would configure no BGP session at all, in a
    /// cluster of more than one such node: the node-to-node mesh is off (or the node, as a
    /// route reflector, is out of it) and no BGP peer gives it a session. When the mesh is off
    /// and no node has a session, one diagnostic says so at `nodeToNodeMesh`.
    ///
    /// ## Why is this bad?
    /// No other node learns the node's blocks, so its pods cannot be reached, and it learns
    /// no route to any other pod.
    ///
    /// ## Example
    /// ```yaml
    /// bgp:
    ///   nodeToNodeMesh: false       # and no routeReflectors or peers in its place
    /// ```
    pub static RULE = ("E0403", "no-bgp-peering", Error, "a node that configures no BGP session");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Reason {
    MeshOff,
    /// The node is a reflector, which leaves the mesh.
    Reflector,
    /// The mesh is on, but every other node is a reflector or has no IPv4 address.
    AloneInMesh,
}

impl Reason {
    fn text(self) -> &'static str {
        match self {
            Reason::MeshOff => "the node-to-node mesh is off",
            Reason::Reflector => "route reflectors leave the node-to-node mesh",
            Reason::AloneInMesh => "no other node is in the node-to-node mesh",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Reason::MeshOff | Reason::AloneInMesh => {
                "peer it with the route reflectors (widen the `clients` of `bgp.routeReflectors`, or add a BGP peer whose `nodeSelector` matches it), or turn the mesh on"
            }
            Reason::Reflector => {
                "peer the reflector with its clients: `bgp.routeReflectors` does it for you, or add a BGP peer with `nodeSelector: all()` and a `peerSelector` matching the reflectors"
            }
        }
    }
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    let peerings = &analysis.peerings;
    let with_ipv4: Vec<&Node> = model.nodes.iter().filter(|node| node.ipv4().is_some()).collect();
    if with_ipv4.len() < 2 {
        return;
    }
    let in_mesh = |node: &Node| analysis.topology_index(node.id).is_some_and(|index| peerings.in_mesh(index));
    // Counted once: asking every node for its mesh sessions would be quadratic.
    let mesh_members = with_ipv4.iter().filter(|node| in_mesh(node)).count();
    let mesh_on = *model.bgp.node_to_node_mesh;
    let mut lonely: BTreeMap<Reason, Vec<&Node>> = BTreeMap::new();
    for node in &with_ipv4 {
        if in_mesh(node) && mesh_members > 1 {
            continue;
        }
        let Some(index) = analysis.topology_index(node.id) else {
            continue;
        };
        if peerings.explicit_sessions(index).any(|session| session.data.ip.is_ipv4()) {
            continue;
        }
        let reason = if !mesh_on {
            Reason::MeshOff
        } else if node.is_route_reflector() {
            Reason::Reflector
        } else {
            Reason::AloneInMesh
        };
        lonely.entry(reason).or_default().push(node);
    }
    let total: usize = lonely.values().map(Vec::len).sum();
    if !mesh_on && total == with_ipv4.len() {
        diagnostics.push(
            Diagnostic::new(
                &RULE,
                model.bgp.node_to_node_mesh.span,
                format!("the node-to-node mesh is off and nothing replaces it: none of the {} has a BGP session", count(total, "node")),
            )
            .label("mesh turned off here")
            .help("declare route reflectors under `bgp.routeReflectors` (Calico's documented replacement for the mesh), add BGP peers, or set `nodeToNodeMesh: true`; until then no pod can reach a pod on another node"),
        );
        return;
    }
    for (reason, nodes) in lonely {
        if nodes.len() <= ITEMIZE_UP_TO {
            for node in nodes {
                diagnostics.push(one_node(analysis, node, reason));
            }
        } else {
            let names: Vec<&str> = nodes.iter().map(|node| node.name.value.as_str()).collect();
            let mut diagnostic = Diagnostic::new(
                &RULE,
                nodes[0].name.span,
                format!(
                    "{} have no BGP session ({}): {} and no BGP peer selects them",
                    count(nodes.len(), "node"),
                    name_list(&names, SHOW_AT_MOST),
                    reason.text()
                ),
            )
            .label("its pods cannot be reached from other nodes");
            for node in nodes.iter().skip(1).take(SHOW_AT_MOST - 1) {
                diagnostic = diagnostic.secondary(node.name.span, "nor this node's");
            }
            diagnostics.push(diagnostic.help(reason.help()));
        }
    }
}

fn one_node(analysis: &Analysis, node: &Node, reason: Reason) -> Diagnostic {
    let model = &analysis.model;
    let mut diagnostic = Diagnostic::new(
        &RULE,
        node.name.span,
        format!("node `{}` has no BGP session: {} and no BGP peer selects it", node.name.value, reason.text()),
    )
    .label("its pods cannot be reached from other nodes");
    // The reflectors' `clients` say best why a node is left out; failing that, the mesh switch.
    let clients = model.route_reflector_clusters.iter().find_map(|cluster| cluster.clients.as_ref());
    let context: Option<(Span, &str)> = match reason {
        Reason::MeshOff => match clients {
            Some(clients) => Some((clients.span, "the reflectors serve only the nodes this selects")),
            None => model.bgp.node_to_node_mesh_set.then_some((model.bgp.node_to_node_mesh.span, "mesh turned off here")),
        },
        Reason::Reflector => reflector_membership(analysis, node).map(|span| (span, "made a route reflector here")),
        _ => None,
    };
    if let Some((span, label)) = context {
        diagnostic = diagnostic.secondary(span, label);
    }
    diagnostic.help(reason.help())
}

/// Where the node is made a reflector: its place in `bgp.routeReflectors`, or its own
/// `routeReflectorClusterID`.
fn reflector_membership(analysis: &Analysis, node: &Node) -> Option<Span> {
    analysis
        .model
        .route_reflector_clusters
        .iter()
        .flat_map(|cluster| &cluster.nodes)
        .find(|member| member.value == node.id)
        .map(|member| member.span)
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn a_mesh_turned_off_with_nothing_in_its_place_is_one_diagnostic() {
        let text = intent(
            "  bgp:\n    nodeToNodeMesh: false\n  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24}\n    - {name: n2, ipv4Address: 21.0.0.2/24}\n    - {name: n3, ipv4Address: 21.0.0.3/24}\n",
        );
        let found = check_rule(&text, "E0403");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("E0403 the node-to-node mesh is off and nothing replaces it: none of the 3 nodes has a BGP session"),
            "{found:#?}"
        );
    }

    #[test]
    fn a_node_left_out_of_the_reflectors_clients_is_named() {
        let text = intent(
            "  bgp:\n    nodeToNodeMesh: false\n    routeReflectors:\n      - {clusterID: 1.0.0.1, nodes: [n1], clients: has(rack)}\n  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24, labels: {rack: a}}\n    - {name: n2, ipv4Address: 21.0.0.2/24, labels: {rack: a}}\n    - {name: n3, ipv4Address: 21.0.0.3/24}\n",
        );
        let found = check_rule(&text, "E0403");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("E0403 node `n3` has no BGP session: the node-to-node mesh is off and no BGP peer selects it"),
            "{found:#?}"
        );
    }

    #[test]
    fn the_mesh_and_the_seed_design_are_quiet() {
        let text = intent("  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24}\n    - {name: n2, ipv4Address: 21.0.0.2/24}\n");
        assert_eq!(check_rule(&text, "E0403"), Vec::<String>::new());
        let seed = include_str!("../../../../testdata/seed-rr/intent.yaml");
        assert_eq!(check_rule(seed, "E0403"), Vec::<String>::new());
    }
}
