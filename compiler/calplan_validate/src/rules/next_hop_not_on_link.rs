use super::nodes_with_unreadable_address;
use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::{Analysis, Destination, NextHop, Node, Router, StaticRoute};
use ipnet::IpNet;
use std::net::IpAddr;

declare_rule! {
    /// ## What it does
    /// Checks each static route of a router: it has at least one next hop in `via`, and every
    /// next hop (a node's address, or an address) is inside the router's own subnet, the
    /// network of its `address`, and is not the router's own address.
    ///
    /// ## Why is this bad?
    /// A router resolves a static route's next hop on its directly connected networks: `ip
    /// route add 192.168.0.0/16 via 21.49.23.7` fails with `Nexthop has invalid gateway` when
    /// 21.49.23.7 is not on a connected subnet, and the route is never installed.
    ///
    /// ## Example
    /// ```yaml
    /// routers:
    ///   - name: cs1-harbor-1
    ///     address: 21.49.22.3/24
    ///     staticRoutes:
    ///       - {destination: pools, via: [21.49.23.7]}   # not on 21.49.22.0/24
    /// ```
    pub static RULE = ("E0601", "next-hop-not-on-link", Error, "a static route whose next hop the router cannot reach directly", fixed);
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    let unreadable = nodes_with_unreadable_address(model, diagnostics);
    for router in &model.routers {
        let subnet = router.address.trunc();
        // A couple of nodes the router can reach directly, to suggest as next hops.
        let on_link: Vec<&str> = model
            .nodes
            .iter()
            .filter(|node| node_address(node, subnet).is_some_and(|address| subnet.contains(&address)))
            .map(|node| node.name.value.as_str())
            .take(2)
            .collect();
        for route in &router.static_routes {
            check_route(analysis, router, route, &on_link, &unreadable, diagnostics);
        }
    }
}

fn destination_text(destination: &Destination) -> String {
    match destination {
        Destination::Pools => "`pools`".to_string(),
        Destination::Services => "`services`".to_string(),
        Destination::Cidr(cidr) => cidr.to_string(),
    }
}

/// The node's address in the family of the router's subnet.
fn node_address(node: &Node, subnet: IpNet) -> Option<IpAddr> {
    match subnet {
        IpNet::V4(_) => node.ipv4().map(IpAddr::V4),
        IpNet::V6(_) => node.ipv6_address.as_ref().map(|address| IpAddr::V6(address.addr())),
    }
}

fn check_route(
    analysis: &Analysis,
    router: &Router,
    route: &StaticRoute,
    on_link: &[&str],
    unreadable: &[bool],
    diagnostics: &mut Diagnostics,
) {
    let model = &analysis.model;
    let subnet = router.address.trunc();
    let destination = destination_text(&route.destination.value);
    if route.via.is_empty() {
        diagnostics.push(
            Diagnostic::new(
                &RULE,
                route.destination.span,
                format!("static route to {destination} on router `{}` has no next hop", router.name.value),
            )
            .label("`via` is empty")
            .help("list under `via` the nodes (or addresses) the router sends this traffic to; several give an ECMP route"),
        );
        return;
    }
    for hop in &route.via {
        let (address, what) = match hop.value {
            NextHop::Address(address) => (Some(address), format!("next hop {address}")),
            NextHop::Node(id) => {
                let node = model.node(id);
                (node_address(node, subnet), format!("next hop `{}`", node.name.value))
            }
        };
        let Some(address) = address else {
            if matches!(hop.value, NextHop::Node(id) if unreadable[id.0 as usize]) {
                // `invalid-address` has reported the node's address already.
                continue;
            }
            let family = if subnet.addr().is_ipv4() { "IPv4" } else { "IPv6" };
            diagnostics.push(
                Diagnostic::new(
                    &RULE,
                    hop.span,
                    format!("{what} has no {family} address for router `{}` to route through", router.name.value),
                )
                .label(format!("no {family} address"))
                .help(format!("route via a node with an {family} address on {subnet}, or give this node one")),
            );
            continue;
        };
        if address == router.address.addr() {
            diagnostics.push(
                Diagnostic::new(&RULE, hop.span, format!("{what} is router `{}`'s own address {address}", router.name.value))
                    .label("the router itself")
                    .secondary(router.address.span, format!("router `{}`'s address", router.name.value))
                    .help("a route via the router's own address leads nowhere and the kernel refuses it; route via the node that holds the destination"),
            );
            continue;
        }
        if subnet.contains(&address) {
            continue;
        }
        let described = match hop.value {
            NextHop::Node(_) => format!("{what} ({address})"),
            NextHop::Address(_) => what,
        };
        let instead = match on_link {
            [] => format!("give router `{}` an address on the nodes' subnet, or route via a gateway on {subnet}", router.name.value),
            names => format!(
                "route via a node on {subnet} (such as {}), or give router `{}` an address on the next hop's subnet",
                names.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(" or "),
                router.name.value
            ),
        };
        diagnostics.push(
            Diagnostic::new(&RULE, hop.span, format!("{described} is not on router `{}`'s subnet {subnet}", router.name.value))
                .label("not directly reachable from the router")
                .secondary(router.address.span, format!("router `{}` is on {subnet}", router.name.value))
                .help(format!("the router resolves next hops on its own link and would refuse the route; {instead}")),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn next_hops_must_be_on_the_routers_subnet() {
        let text = intent(
            "  pools: [{name: p, cidr: 10.244.0.0/16}]\n  nodes:\n    - {name: n1, ipv4Address: 21.49.22.7/24}\n    - {name: n2, ipv4Address: 21.49.23.8/24}\n  routers:\n    - name: harbor\n      platform: linux\n      address: 21.49.22.3/24\n      staticRoutes:\n        - {destination: pools, via: [n1, n2, 21.49.24.1]}\n        - {destination: 10.96.0.0/12, via: []}\n",
        );
        let found: Vec<String> = check_rule(&text, "E0601").iter().map(|line| line.split(" | ").next().unwrap().to_string()).collect();
        assert_eq!(
            found,
            [
                "E0601 next hop `n2` (21.49.23.8) is not on router `harbor`'s subnet 21.49.22.0/24",
                "E0601 next hop 21.49.24.1 is not on router `harbor`'s subnet 21.49.22.0/24",
                "E0601 static route to 10.96.0.0/12 on router `harbor` has no next hop",
            ]
        );
    }
}
