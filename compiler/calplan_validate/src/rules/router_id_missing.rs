use super::nodes_with_unreadable_address;
use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;

declare_rule! {
    /// ## What it does
    /// Reports a node without an IPv4 address (IPv6-only, or with no address at all) when
    /// `bgp.routerID` (calico-node's `CALICO_ROUTER_ID`) is not set.
    ///
    /// ## Why is this bad?
    /// BIRD needs a router ID, and confd takes it from the node's IPv4 address: without one it
    /// renders `router id ;`, which BIRD refuses, so BIRD does not start on the node, for IPv6
    /// as much as IPv4. Calico's answer for IPv6-only nodes is `CALICO_ROUTER_ID=hash`.
    ///
    /// ## Example
    /// ```yaml
    /// nodes:
    ///   - {name: v6-only-1, ipv6Address: "fd00::11/64"}   # set bgp.routerID: hash
    /// ```
    pub static RULE = ("E0410", "router-id-missing", Error, "a node without an IPv4 address for its BGP router ID");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    if model.bgp.router_id.is_some() {
        return;
    }
    let unreadable = nodes_with_unreadable_address(model, diagnostics);
    for node in model.nodes.iter().filter(|node| node.ipv4().is_none() && !unreadable[node.id.0 as usize]) {
        diagnostics.push(
            Diagnostic::new(&RULE, node.name.span, format!("node `{}` has no IPv4 address for BIRD's router ID", node.name.value))
                .label("confd renders `router id ;` here, which BIRD refuses")
                .help("set `bgp.routerID: hash` (calico-node's `CALICO_ROUTER_ID`) to derive each node's router ID from its name, or give the node an `ipv4Address`"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn an_ipv6_only_node_needs_a_router_id() {
        let nodes = "  nodes:\n    - {name: a, ipv6Address: \"fd00::1/64\"}\n    - {name: b, ipv4Address: 10.0.0.2/24}\n";
        let found = check_rule(&intent(nodes), "E0410");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("`a`"), "{found:?}");
        assert!(check_rule(&intent(&format!("  bgp: {{routerID: hash}}\n{nodes}")), "E0410").is_empty());
    }
}
