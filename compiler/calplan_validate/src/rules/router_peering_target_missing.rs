use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::{Analysis, PeerWith};

declare_rule! {
    /// ## What it does
    /// Reports a router with `bgp.peerWith: routeReflectors` in a cluster that has no route
    /// reflector.
    ///
    /// ## Why is this bad?
    /// calplan generates the cluster side of the router's sessions on the reflectors; with
    /// none, the router peers with nobody and learns no pod route.
    ///
    /// ## Example
    /// ```yaml
    /// routers:
    ///   - name: cs1-border-1
    ///     bgp: {asNumber: 64999, peerWith: routeReflectors}   # but no routeReflectors
    /// ```
    pub static RULE = ("E0603", "router-peering-target-missing", Error, "a router peering with route reflectors the cluster does not have");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    if model.nodes.iter().any(|node| node.is_route_reflector()) {
        return;
    }
    for router in &model.routers {
        let Some(bgp) = &router.bgp else { continue };
        if bgp.peer_with != PeerWith::RouteReflectors {
            continue;
        }
        diagnostics.push(
            Diagnostic::new(
                &RULE,
                bgp.span,
                format!("router `{}` peers with route reflectors, but the cluster has none", router.name.value),
            )
            .label("no route reflector to peer with")
            .help("declare route reflectors under `bgp.routeReflectors`, or set `peerWith: allNodes` to peer with every node"),
        );
    }
}
