use super::NodeLabels;
use calplan_diagnostics::{Diagnostic, Diagnostics, Spanned, declare_rule};
use calplan_model::{Analysis, SelectorText};

declare_rule! {
    /// ## What it does
    /// Reports a BGP peer's `nodeSelector` or `peerSelector`, or a route-reflector cluster's
    /// `clients`, that matches none of the intent's nodes, naming a label key no node has.
    ///
    /// ## Why is this bad?
    /// The peering it was written for does not exist: a misspelt label, or a label never
    /// applied to the nodes, silently leaves them without the sessions they need.
    ///
    /// ## Example
    /// ```yaml
    /// peers:
    ///   - {name: rack-a-tor, nodeSelector: rak == 'a', peerIP: 21.49.22.1, asNumber: 64999}   # `rack`
    /// ```
    pub static RULE = ("W0407", "selector-matches-nothing", Warning, "a BGP selector that matches no node");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    if model.nodes.is_empty() {
        return;
    }
    let nodes = NodeLabels::of(model);
    let mut report = |selector: &Spanned<SelectorText>, field: &str, owner: String, consequence: &str| {
        let Some(reason) = nodes.unmatched(&selector.selector) else { return };
        diagnostics.push(
            Diagnostic::new(&RULE, selector.span, format!("`{field}` of {owner} matches no node"))
                .label(reason)
                .help(format!("{consequence}; correct the selector or the nodes' labels")),
        );
    };
    for peer in &model.peers {
        let owner = format!("BGP peer `{}`", peer.name.value);
        if let Some(selector) = &peer.node_selector {
            report(selector, "nodeSelector", owner.clone(), "no node configures this peering");
        }
        if let Some(selector) = &peer.peer_selector {
            report(selector, "peerSelector", owner, "the nodes it selects get no session from this peer");
        }
    }
    for cluster in &model.route_reflector_clusters {
        if let Some(clients) = &cluster.clients {
            let owner = format!("route-reflector cluster `{}`", cluster.cluster_id.value);
            report(clients, "clients", owner, "the reflectors serve no client, and no route is reflected");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn each_selector_is_checked_with_a_hint() {
        let text = intent(
            "  bgp:\n    routeReflectors:\n      - {clusterID: 1.0.0.1, nodes: [n1], clients: zone == 'z1'}\n    peers:\n      - {name: tor, nodeSelector: rak == 'a', peerIP: 21.0.0.254, asNumber: 64999}\n      - {name: rr, nodeSelector: all(), peerSelector: rack == 'b'}\n  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24, labels: {rack: a}}\n    - {name: n2, ipv4Address: 21.0.0.2/24, labels: {rack: a}}\n",
        );
        let found: Vec<String> = check_rule(&text, "W0407").iter().map(|line| line.split(" | ").next().unwrap().to_string()).collect();
        assert_eq!(
            found,
            [
                "W0407 `clients` of route-reflector cluster `1.0.0.1` matches no node",
                "W0407 `nodeSelector` of BGP peer `tor` matches no node",
                "W0407 `peerSelector` of BGP peer `rr` matches no node",
            ]
        );
    }
}
