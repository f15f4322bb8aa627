use calplan_diagnostics::{Diagnostic, Diagnostics, Span, declare_rule};
use calplan_model::Analysis;
use ipnet::Ipv4Net;

declare_rule! {
    /// ## What it does
    /// Reports a node's `ipv4Address` or a router's IPv4 `address` that is its subnet's
    /// network address (all host bits zero) or broadcast address (all ones). A /31 has no such
    /// addresses (RFC 3021), nor has a /32.
    ///
    /// ## Why is this bad?
    /// A host cannot be reached at either: the network address names the subnet and the
    /// broadcast address reaches every host on it, so BGP sessions and routes through that
    /// host never work.
    ///
    /// ## Example
    /// ```yaml
    /// - {name: n1, ipv4Address: 21.49.22.255/24}     # the broadcast address of 21.49.22.0/24
    /// ```
    pub static RULE = ("E0304", "network-or-broadcast-address", Error, "a host address that is its subnet's network or broadcast address");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    for node in &model.nodes {
        if let Some(address) = &node.ipv4_address {
            report(address.value, address.span, &format!("node `{}`", node.name.value), diagnostics);
        }
    }
    for router in &model.routers {
        if let ipnet::IpNet::V4(address) = router.address.value {
            report(address, router.address.span, &format!("router `{}`", router.name.value), diagnostics);
        }
    }
}

fn report(address: Ipv4Net, span: Span, owner: &str, diagnostics: &mut Diagnostics) {
    if address.prefix_len() >= 31 {
        return;
    }
    let which = if address.addr() == address.network() {
        "network"
    } else if address.addr() == address.broadcast() {
        "broadcast"
    } else {
        return;
    };
    let subnet = address.trunc();
    diagnostics.push(
        Diagnostic::new(&RULE, span, format!("{} is the {which} address of {subnet}, not an address {owner} can have", address.addr()))
            .label(format!("the {which} address"))
            .help(format!("write the host's own address on {subnet}, from {} to {}", first_host(subnet), last_host(subnet))),
    );
}

fn first_host(subnet: Ipv4Net) -> std::net::Ipv4Addr {
    (u32::from(subnet.network()) + 1).into()
}

fn last_host(subnet: Ipv4Net) -> std::net::Ipv4Addr {
    (u32::from(subnet.broadcast()) - 1).into()
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn network_and_broadcast_but_not_point_to_point() {
        let text = intent(
            "  pools:\n    - {name: a, cidr: 10.0.0.0/16}\n  nodes:\n    - {name: n1, ipv4Address: 21.0.0.0/24}\n    - {name: n2, ipv4Address: 21.0.0.255/24}\n    - {name: n3, ipv4Address: 21.0.1.0/31}\n    - {name: n4, ipv4Address: 21.0.2.7/32}\n    - {name: n5, ipv4Address: 21.0.0.5/24}\n  routers:\n    - {name: r, platform: linux, address: 21.0.0.255/24}\n",
        );
        let found: Vec<String> = check_rule(&text, "E0304").iter().map(|line| line.split(" | ").next().unwrap().to_string()).collect();
        assert_eq!(
            found,
            [
                "E0304 21.0.0.0 is the network address of 21.0.0.0/24, not an address node `n1` can have",
                "E0304 21.0.0.255 is the broadcast address of 21.0.0.0/24, not an address node `n2` can have",
                "E0304 21.0.0.255 is the broadcast address of 21.0.0.0/24, not an address router `r` can have",
            ]
        );
    }
}
