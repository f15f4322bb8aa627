use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;
use std::collections::BTreeSet;

declare_rule! {
    /// ## What it does
    /// Reports an enabled pool without encapsulation (`ipipMode` and `vxlanMode` both `Never`)
    /// whose nodes sit on more than one subnet, in a cluster that peers with no router outside.
    ///
    /// ## Why is this bad?
    /// Without encapsulation a pod packet leaves the node with the pod's address; to reach a
    /// node on another subnet it crosses the fabric's routers, which only know pod routes if the
    /// cluster tells them over BGP. Otherwise BIRD resolves the remote node through the default
    /// route and the fabric drops the packet: pods on different subnets cannot talk.
    ///
    /// ## Example
    /// ```yaml
    /// pools:
    ///   - {name: default-ipv4-ippool, cidr: 192.168.0.0/16}   # nodes on 10.0.0.0/24 and 10.0.1.0/24
    ///   # write ipipMode: CrossSubnet (or vxlanMode: CrossSubnet), or peer with the fabric's routers
    /// ```
    pub static RULE = ("W0210", "unencapsulated-across-subnets", Warning, "a pool without encapsulation across subnets the fabric cannot route");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    // BGP with the outside (a ToR, a router that speaks BGP) can teach the fabric pod routes.
    let peers_outside = model.routers.iter().any(|router| router.bgp.is_some())
        || model.peers.iter().any(|peer| {
            peer.peer_ip
                .as_ref()
                .is_some_and(|address| !model.nodes.iter().any(|node| node.ipv4().map(std::net::IpAddr::V4) == Some(address.ip)))
        });
    if peers_outside {
        return;
    }
    for pool in &model.pools {
        if *pool.disabled || !pool.is_ipv4() || pool.ipip_mode.is_enabled() || pool.vxlan_mode.is_enabled() {
            continue;
        }
        let subnets: BTreeSet<ipnet::Ipv4Net> = model
            .nodes
            .iter()
            .filter(|node| pool.node_selector.selector.matches(&node.label_values()))
            .filter_map(|node| node.ipv4_address.as_ref().map(|address| address.trunc()))
            .collect();
        if subnets.len() < 2 {
            continue;
        }
        let listed: Vec<String> = subnets.iter().take(3).map(ToString::to_string).collect();
        let more = if subnets.len() > 3 { format!(" and {} more", subnets.len() - 3) } else { String::new() };
        diagnostics.push(
            Diagnostic::new(
                &RULE,
                pool.cidr.span,
                format!(
                    "pool `{}` has no encapsulation but its nodes are on {} subnets ({}{more}), and no router outside learns pod routes",
                    pool.name.value,
                    subnets.len(),
                    listed.join(", ")
                ),
            )
            .label("pod packets between subnets reach routers that know no pod route")
            .help("set `ipipMode: CrossSubnet` or `vxlanMode: CrossSubnet`, or peer with the fabric's routers over BGP"),
        );
    }
}
