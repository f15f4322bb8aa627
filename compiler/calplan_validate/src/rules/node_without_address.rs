use super::{ITEMIZE_UP_TO, SHOW_AT_MOST, count, name_list, nodes_with_unreadable_address};
use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::{Analysis, Node};

declare_rule! {
    /// ## What it does
    /// Warns about a node with neither `ipv4Address` nor `ipv6Address`. A handful are reported
    /// one by one; more are gathered into one warning. A node whose address is written but
    /// does not parse is left to `invalid-address`.
    ///
    /// ## Why is this bad?
    /// calico-node configures BGP from the node's address: without one the node takes part in
    /// no BGP at all (`# IPv4 disabled on this node.`), its blocks are advertised by nobody,
    /// and calplan cannot place it on a subnet for routes, encapsulation or autodetection.
    ///
    /// ## Example
    /// ```yaml
    /// nodes:
    ///   - {name: cs1-k8s-n4.zpepc.com.cn}     # add ipv4Address: 21.49.22.10/24
    /// ```
    pub static RULE = ("W0503", "node-without-address", Warning, "a node with no address, which takes part in no BGP");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let unreadable = nodes_with_unreadable_address(&analysis.model, diagnostics);
    let without: Vec<&Node> = analysis
        .model
        .nodes
        .iter()
        .filter(|node| node.ipv4_address.is_none() && node.ipv6_address.is_none())
        .filter(|node| !unreadable[node.id.0 as usize])
        .collect();
    let help = "add `ipv4Address` (and `ipv6Address` for dual stack) with the prefix length of the node's subnet, such as `21.49.22.10/24`";
    if without.len() <= ITEMIZE_UP_TO {
        for node in without {
            diagnostics.push(
                Diagnostic::new(&RULE, node.name.span, format!("node `{}` has no address: it takes part in no BGP", node.name.value))
                    .label("neither `ipv4Address` nor `ipv6Address`")
                    .help(help),
            );
        }
        return;
    }
    let names: Vec<&str> = without.iter().map(|node| node.name.value.as_str()).collect();
    let mut diagnostic = Diagnostic::new(
        &RULE,
        without[0].name.span,
        format!("{} have no address and take part in no BGP: {}", count(without.len(), "node"), name_list(&names, SHOW_AT_MOST)),
    )
    .label("neither `ipv4Address` nor `ipv6Address`");
    for node in without.iter().skip(1).take(SHOW_AT_MOST - 1) {
        diagnostic = diagnostic.secondary(node.name.span, "nor here");
    }
    diagnostics.push(diagnostic.help(help));
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check, intent};

    #[test]
    fn an_unreadable_address_is_not_a_missing_one() {
        let text =
            intent("  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24}\n    - {name: n2, ipv4Address: 21.0.0.2}\n    - {name: n3}\n");
        let codes: Vec<String> = check(&text).iter().map(|line| line.split(" | ").next().unwrap().to_string()).collect();
        assert_eq!(
            codes,
            [
                "E0102 `21.0.0.2` is not an IPv4 address with a prefix length",
                "E0410 node `n3` has no IPv4 address for BIRD's router ID",
                "W0503 node `n3` has no address: it takes part in no BGP",
            ]
        );
    }
}
