use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::{Analysis, Destination};

declare_rule! {
    /// ## What it does
    /// Warns about a static route to an explicit CIDR of another address family than the
    /// router's `address`: an IPv6 destination on a router with an IPv4 address, or the
    /// reverse.
    ///
    /// ## Why is this bad?
    /// A router has one address here, and routes of the other family have no next hop it can
    /// reach: the route is left out of `routes.sh`, `frr.conf`, `ios.cfg` and `junos.set`
    /// (with a `Left out` comment), so what the intent asks for is not configured.
    ///
    /// ## Example
    /// ```yaml
    /// - name: harbor
    ///   address: 21.49.22.3/24
    ///   staticRoutes:
    ///     - {destination: 'fd00:10::/64', via: [n1]}
    /// ```
    pub static RULE = ("W0605", "route-of-other-family", Warning, "a static route the router cannot carry, of another address family");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    for router in &analysis.model.routers {
        let ipv4 = router.address.addr().is_ipv4();
        for route in &router.static_routes {
            let Destination::Cidr(destination) = route.destination.value else { continue };
            if destination.addr().is_ipv4() == ipv4 {
                continue;
            }
            let (theirs, ours) = if ipv4 { ("IPv6", "IPv4") } else { ("IPv4", "IPv6") };
            diagnostics.push(
                Diagnostic::new(
                    &RULE,
                    route.destination.span,
                    format!(
                        "{theirs} route to {destination} on router `{}`, which has an {ours} address only, is left out",
                        router.name.value
                    ),
                )
                .label(format!("an {theirs} destination"))
                .secondary(router.address.span, format!("router `{}` has an {ours} address", router.name.value))
                .help(format!("remove the route, or declare the router's {theirs} side as a router of its own with an {theirs} `address`")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn an_ipv6_destination_on_an_ipv4_router_is_flagged() {
        let text = intent(
            "  pools:\n    - {name: a, cidr: 10.0.0.0/16}\n  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24}\n  routers:\n    - name: r\n      platform: linux\n      address: 21.0.0.3/24\n      staticRoutes:\n        - {destination: 'fd00:10::/64', via: [n1]}\n        - {destination: 10.0.0.0/16, via: [n1]}\n",
        );
        let found: Vec<String> = check_rule(&text, "W0605").iter().map(|line| line.split(" | ").next().unwrap().to_string()).collect();
        assert_eq!(found, ["W0605 IPv6 route to fd00:10::/64 on router `r`, which has an IPv4 address only, is left out"]);
    }
}
