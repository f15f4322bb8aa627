use calplan_diagnostics::{Diagnostic, Diagnostics, Span, declare_rule};
use calplan_model::Analysis;
use std::collections::HashMap;

declare_rule! {
    /// ## What it does
    /// Checks that no two nodes, pools, BGP peers or routers share a name. BGP peers include
    /// the BGPPeers calplan generates: `peer-with-route-reflectors` (and
    /// `peer-with-route-reflectors-<cluster ID>`), `route-reflector-mesh` and
    /// `router-<router name>`.
    ///
    /// ## Why is this bad?
    /// A name identifies one Calico resource: the second `Node`, `IPPool` or `BGPPeer` of a
    /// name silently replaces the first when applied. Router names name the folder of the
    /// router's artifacts.
    ///
    /// ## Example
    /// ```yaml
    /// peers:
    ///   - {name: peer-with-route-reflectors, peerIP: 21.49.22.1, asNumber: 64999}   # the name of a generated BGPPeer
    /// ```
    pub static RULE = ("E0302", "duplicate-name", Error, "two nodes, pools, peers or routers with the same name", fixed);
}

/// One named thing: its name, where it is declared, and whether calplan generates it.
struct Named<'a> {
    name: &'a str,
    span: Span,
    generated: bool,
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    let nodes = model.nodes.iter().map(|node| Named { name: &node.name.value, span: node.name.span, generated: false }).collect();
    report(diagnostics, "node", "Node", nodes);
    let pools = model.pools.iter().map(|pool| Named { name: &pool.name.value, span: pool.name.span, generated: false }).collect();
    report(diagnostics, "pool", "IPPool", pools);
    let generated = calplan_model::calico::generated_peer_names(model);
    let peers = model
        .peers
        .iter()
        .map(|peer| Named { name: &peer.name.value, span: peer.name.span, generated: false })
        .chain(generated.iter().map(|(name, span)| Named { name, span: *span, generated: true }))
        .collect();
    report(diagnostics, "BGP peer", "BGPPeer", peers);
    let routers = model.routers.iter().map(|router| Named { name: &router.name.value, span: router.name.span, generated: false }).collect();
    report(diagnostics, "router", "router", routers);
}

/// Reports each name given a second time, in file order, pointing back at the first.
fn report(diagnostics: &mut Diagnostics, what: &str, resource: &str, mut named: Vec<Named>) {
    named.sort_by_key(|item| (item.span.start, item.generated));
    let mut first: HashMap<&str, &Named> = HashMap::new();
    for item in &named {
        let Some(earlier) = first.get(item.name).copied() else {
            first.insert(item.name, item);
            continue;
        };
        let diagnostic = match (earlier.generated, item.generated) {
            (false, false) => Diagnostic::new(&RULE, item.span, format!("two {what}s are named `{}`", item.name))
                .label(format!("a second {what} named `{}`", item.name))
                .secondary(earlier.span, "first declared here")
                .help(if resource == "router" {
                    "rename one: a router's name is the folder of its artifacts (`routers/<name>/`), so one would overwrite the other"
                        .to_string()
                } else {
                    format!("rename one: the second `{resource}` of a name replaces the first when applied")
                }),
            (true, false) | (false, true) => {
                let (declared, generated) = if item.generated { (earlier, item) } else { (item, earlier) };
                Diagnostic::new(
                    &RULE,
                    declared.span,
                    format!("{what} name `{}` is taken by a BGPPeer calplan generates", declared.name),
                )
                .label("the same name as a generated BGPPeer")
                .secondary(generated.span, format!("generates BGPPeer `{}`", generated.name))
                .help("rename the peer: calplan names the BGPPeers it generates `peer-with-route-reflectors`, `route-reflector-mesh` and `router-<router name>`, and one would replace the other")
            }
            (true, true) => Diagnostic::new(&RULE, item.span, format!("two generated BGPPeers would be named `{}`", item.name))
                .label(format!("generates a second BGPPeer `{}`", item.name))
                .secondary(earlier.span, "generates the first")
                .help("each route-reflector cluster needs its own cluster ID, and each router its own name"),
        };
        diagnostics.push(diagnostic);
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn a_peer_named_like_a_generated_one_is_reported_at_the_peer() {
        let text = intent(
            "  bgp:\n    nodeToNodeMesh: false\n    routeReflectors:\n      - {clusterID: 1.0.0.1, nodes: [n1]}\n    peers:\n      - {name: peer-with-route-reflectors, peerIP: 21.0.0.9, asNumber: 65000}\n  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24}\n    - {name: n2, ipv4Address: 21.0.0.2/24}\n    - {name: n2, ipv4Address: 21.0.0.3/24}\n",
        );
        let found = check_rule(&text, "E0302");
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].starts_with("E0302 BGP peer name `peer-with-route-reflectors` is taken by a BGPPeer calplan generates"),
            "{found:#?}"
        );
        assert!(found[1].starts_with("E0302 two nodes are named `n2`"), "{found:#?}");
    }
}
