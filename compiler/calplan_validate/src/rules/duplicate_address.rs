use super::{SHOW_AT_MOST, count, name_list};
use calplan_diagnostics::{Diagnostic, Diagnostics, Span, declare_rule};
use calplan_model::Analysis;
use std::collections::BTreeMap;
use std::net::IpAddr;

declare_rule! {
    /// ## What it does
    /// Checks that no address is used twice among the nodes' `ipv4Address` and `ipv6Address`
    /// and the routers' `address`. One diagnostic per address, however many use it.
    ///
    /// ## Why is this bad?
    /// BGP sessions, next hops and BIRD's protocol names (`Node_21_49_22_7`) are keyed by
    /// address: two hosts with one address cannot both peer, and traffic for one goes to the
    /// other.
    ///
    /// ## Example
    /// ```yaml
    /// nodes:
    ///   - {name: cs1-k8s-n1.zpepc.com.cn, ipv4Address: 21.49.22.7/24}
    ///   - {name: cs1-k8s-n2.zpepc.com.cn, ipv4Address: 21.49.22.7/24}   # copied, not changed
    /// ```
    pub static RULE = ("E0303", "duplicate-address", Error, "the same address used by two nodes or routers", fixed);
}

struct User<'a> {
    kind: &'static str,
    name: &'a str,
    span: Span,
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    let mut users: BTreeMap<IpAddr, Vec<User>> = BTreeMap::new();
    for node in &model.nodes {
        if let Some(address) = &node.ipv4_address {
            users.entry(IpAddr::V4(address.addr())).or_default().push(User { kind: "node", name: &node.name.value, span: address.span });
        }
        if let Some(address) = &node.ipv6_address {
            users.entry(IpAddr::V6(address.addr())).or_default().push(User { kind: "node", name: &node.name.value, span: address.span });
        }
    }
    for router in &model.routers {
        let user = User { kind: "router", name: &router.name.value, span: router.address.span };
        users.entry(router.address.addr()).or_default().push(user);
    }
    for (address, mut users) in users {
        if users.len() < 2 {
            continue;
        }
        users.sort_by_key(|user| user.span.start);
        let described: Vec<String> = users.iter().map(|user| format!("{} `{}`", user.kind, user.name)).collect();
        let message = if users.len() == 2 {
            format!("{address} is the address of both {} and {}", described[0], described[1])
        } else {
            let names: Vec<&str> = users.iter().map(|user| user.name).collect();
            format!("{address} is the address of {}: {}", count(users.len(), "host"), name_list(&names, SHOW_AT_MOST))
        };
        let (first, rest) = (&users[0], &users[1..]);
        let mut diagnostic = Diagnostic::new(&RULE, rest[0].span, message)
            .label(format!("also {} `{}`'s address", first.kind, first.name))
            .secondary(first.span, format!("{} `{}`", first.kind, first.name));
        for user in rest.iter().skip(1).take(SHOW_AT_MOST - 1) {
            diagnostic = diagnostic.secondary(user.span, format!("and {} `{}`", user.kind, user.name));
        }
        diagnostics.push(diagnostic.help(
            "give every node and router an address of its own: BGP sessions and next hops are keyed by address, so only one of them could be reached",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn one_diagnostic_per_shared_address() {
        let text = intent(
            "  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24}\n    - {name: n2, ipv4Address: 21.0.0.1/24}\n    - {name: n3, ipv4Address: 21.0.0.1/25}\n  routers:\n    - {name: r1, platform: linux, address: 21.0.0.1/24}\n    - {name: r2, platform: linux, address: 21.0.0.9/24}\n",
        );
        let found = check_rule(&text, "E0303");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].starts_with("E0303 21.0.0.1 is the address of 4 hosts: `n1`, `n2`, `n3` and 1 more"), "{found:#?}");
    }
}
