use super::{SHOW_AT_MOST, count};
use calplan_diagnostics::{Diagnostic, Diagnostics, Spanned, declare_rule};
use calplan_model::autodetect::{self, Detection, Family};
use calplan_model::{Analysis, AutodetectionMethod, CanReachTarget, Interface, Model, Node};
use ipnet::{IpNet, Ipv4Net};
use std::collections::BTreeMap;
use std::net::IpAddr;

declare_rule! {
    /// ## What it does
    /// For every node that lists its `interfaces`, simulates the IPv4 autodetection method
    /// (`nodeAddressAutodetection.ipv4`, or `first-found`, calico-node's default, when unset)
    /// with Calico's exclusion list and interface order, and reports a node where it would
    /// pick another address (or prefix length) than the node's `ipv4Address`, or none at all.
    /// The help suggests `can-reach=` and `interface=` methods, each checked to pick the right
    /// address on the nodes concerned. Nodes that pick the same wrong interface are reported
    /// together.
    ///
    /// ## Why is this bad?
    /// calico-node runs the method at every start and overwrites the Node's address with what
    /// it finds: BGP then peers from the wrong address and other nodes route pods to it. This
    /// is the seed cluster's first-found trap: `first-found` walks interfaces from the last
    /// one listed and took the address of a second NIC. When nothing is found, calico-node
    /// exits with `failed to autodetect an IPv4 address`.
    ///
    /// ## Example
    /// ```yaml
    /// nodes:
    ///   - name: cs1-k8s-m1.zpepc.com.cn
    ///     ipv4Address: 21.49.22.4/24
    ///     interfaces:
    ///       - {name: eth0, addresses: [21.49.22.4/24]}
    ///       - {name: eth1, addresses: [10.10.0.4/16]}   # first-found picks this one
    /// ```
    pub static RULE = ("E0501", "autodetection-mismatch", Error, "autodetection would pick another address than the node's");
}

/// A node where the method picks the wrong address.
struct Mismatch<'a> {
    node: &'a Node,
    interfaces: &'a [Interface],
    expected: Ipv4Net,
    detected: IpNet,
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    // Nodes are judged by the method calico-node runs on each: a node rule's, else the
    // cluster's; one pass per method.
    let mut by_method: Vec<(Option<&Spanned<AutodetectionMethod>>, Vec<&Node>)> = Vec::new();
    for node in &model.nodes {
        let written = model.node_autodetection(node.id).ipv4.as_ref();
        match by_method.iter_mut().find(|(method, _)| *method == written) {
            Some((_, nodes)) => nodes.push(node),
            None => by_method.push((written, vec![node])),
        }
    }
    for (written, nodes) in by_method {
        check_method(model, written, &nodes, diagnostics);
    }
}

fn check_method(model: &Model, written: Option<&Spanned<AutodetectionMethod>>, nodes: &[&Node], diagnostics: &mut Diagnostics) {
    let method = written.map_or(AutodetectionMethod::FirstFound, |method| method.value.clone());
    // Grouped by the interface picked instead, or by why nothing is found.
    let mut mismatches: BTreeMap<String, Vec<Mismatch>> = BTreeMap::new();
    let mut failures: BTreeMap<String, Vec<Mismatch>> = BTreeMap::new();
    for node in nodes.iter().copied() {
        let (Some(interfaces), Some(expected)) = (&node.interfaces, &node.ipv4_address) else {
            continue;
        };
        let expected = expected.value;
        match autodetect::detect(&method, interfaces, Family::V4) {
            Detection::Found { address, .. } if address == IpNet::V4(expected) => {}
            Detection::Found { address, interface } => {
                mismatches.entry(interface).or_default().push(Mismatch { node, interfaces, expected, detected: address });
            }
            Detection::NotFound { reason } => {
                let detected = IpNet::V4(expected);
                failures.entry(reason).or_default().push(Mismatch { node, interfaces, expected, detected });
            }
            Detection::CannotSimulate { .. } => {}
        }
    }
    for (interface, group) in &mismatches {
        diagnostics.push(mismatch(model, written, &method, interface, group));
    }
    for (reason, group) in &failures {
        diagnostics.push(failure(model, written, &method, reason, group));
    }
}

/// How the message names the method: as written, or as calico-node's default.
fn method_phrase(written: Option<&Spanned<AutodetectionMethod>>, method: &AutodetectionMethod) -> String {
    if written.is_some() {
        format!("`{method}`")
    } else {
        "`first-found`, calico-node's default when `nodeAddressAutodetection.ipv4` is unset,".to_string()
    }
}

/// What a secondary label says of the method: the cluster's, or a node rule's.
fn method_scope(model: &Model, written: &Spanned<AutodetectionMethod>) -> String {
    match model.node_rules.rules.iter().find(|rule| rule.autodetection.ipv4.as_ref().is_some_and(|method| method.span == written.span)) {
        Some(rule) => format!("the method, for the nodes of rule `{}`", rule.name.value),
        None => "the method, for every node".to_string(),
    }
}

fn and_more(group: &[Mismatch]) -> String {
    match group.len() {
        1 => String::new(),
        more => format!(" (and on {})", count(more - 1, "more node")),
    }
}

fn mismatch(
    model: &Model,
    written: Option<&Spanned<AutodetectionMethod>>,
    method: &AutodetectionMethod,
    interface: &str,
    group: &[Mismatch],
) -> Diagnostic {
    let first = &group[0];
    let address_span = first.node.ipv4_address.as_ref().map_or(first.node.name.span, |address| address.span);
    let message = format!(
        "{} would detect {} on `{interface}` for node `{}`, not its `ipv4Address` {}{}",
        method_phrase(written, method),
        first.detected,
        first.node.name.value,
        first.expected,
        and_more(group)
    );
    let mut diagnostic =
        Diagnostic::new(&RULE, address_span, message).label(format!("calico-node would replace this with {}", first.detected));
    let picked = first
        .interfaces
        .iter()
        .filter(|candidate| candidate.name.value == interface)
        .flat_map(|candidate| &candidate.addresses)
        .find(|address| address.value == first.detected);
    if let Some(picked) = picked {
        let why = match method {
            AutodetectionMethod::FirstFound | AutodetectionMethod::SkipInterface(_) => {
                "picked: interfaces are walked from the last listed, skipping Calico's exclusion list".to_string()
            }
            AutodetectionMethod::Interface(patterns) => {
                format!("picked: `{}` matches `{interface}` (the pattern is not anchored)", patterns.join(","))
            }
            AutodetectionMethod::Cidr(_) => "picked: the first address inside the given CIDRs".to_string(),
            AutodetectionMethod::CanReach(CanReachTarget::Address(destination)) => {
                format!("picked: the source address towards {destination}")
            }
            _ => "picked".to_string(),
        };
        diagnostic = diagnostic.secondary(picked.span, why);
    }
    if let Some(written) = written {
        diagnostic = diagnostic.secondary(written.span, method_scope(model, written));
    }
    for other in group.iter().skip(1).take(SHOW_AT_MOST - 1) {
        if let Some(address) = &other.node.ipv4_address {
            diagnostic = diagnostic.secondary(address.span, format!("and node `{}` ({})", other.node.name.value, other.detected));
        }
    }
    diagnostic.help(help(model, written, group))
}

fn failure(
    model: &Model,
    written: Option<&Spanned<AutodetectionMethod>>,
    method: &AutodetectionMethod,
    reason: &str,
    group: &[Mismatch],
) -> Diagnostic {
    let first = &group[0];
    let address_span = first.node.ipv4_address.as_ref().map_or(first.node.name.span, |address| address.span);
    let message = format!(
        "{} finds no address on node `{}`{}: calico-node would exit with `failed to autodetect an IPv4 address`",
        method_phrase(written, method),
        first.node.name.value,
        and_more(group)
    );
    let mut diagnostic = Diagnostic::new(&RULE, address_span, message).label(reason.to_string());
    if let Some(written) = written {
        diagnostic = diagnostic.secondary(written.span, method_scope(model, written));
    }
    diagnostic.help(help(model, written, group))
}

/// Methods that pick the right address: checked on every node of the group, or on the first
/// when none fits them all.
fn help(model: &Model, written: Option<&Spanned<AutodetectionMethod>>, group: &[Mismatch]) -> String {
    let first = &group[0];
    let candidates = suggestions(model, first);
    let picks_right = |method: &AutodetectionMethod, mismatch: &Mismatch| {
        autodetect::detect(method, mismatch.interfaces, Family::V4)
            == Detection::Found {
                address: IpNet::V4(mismatch.expected),
                interface: holder(mismatch.interfaces, mismatch.expected).unwrap_or_default(),
            }
    };
    let for_all: Vec<&AutodetectionMethod> =
        candidates.iter().filter(|method| group.iter().all(|mismatch| picks_right(method, mismatch))).collect();
    let (fitting, scope) = if for_all.is_empty() || group.len() == 1 {
        let for_first: Vec<&AutodetectionMethod> = candidates.iter().filter(|method| picks_right(method, first)).collect();
        let scope = if group.len() == 1 { "here".to_string() } else { format!("on node `{}`", first.node.name.value) };
        (if for_all.is_empty() { for_first } else { for_all }, scope)
    } else {
        (for_all, format!("on these {} nodes", group.len()))
    };
    let default_note = if written.is_none() { "calico-node uses `first-found` when no method is set; " } else { "" };
    match fitting.as_slice() {
        [] if holder(first.interfaces, first.expected).is_none() => format!(
            "{} is on none of node `{}`'s interfaces: correct its `ipv4Address` or its interface inventory",
            first.expected, first.node.name.value
        ),
        [] => format!("{default_note}choose a method that picks {} {scope}", first.expected),
        [only] => format!("{default_note}set `nodeAddressAutodetection.ipv4: {only}`, which picks the `ipv4Address` {scope}"),
        [one, other, ..] => {
            format!("{default_note}set `nodeAddressAutodetection.ipv4: {one}` or `{other}`, which pick the `ipv4Address` {scope}")
        }
    }
}

/// The interface that holds exactly this address and prefix.
fn holder(interfaces: &[Interface], expected: Ipv4Net) -> Option<String> {
    interfaces
        .iter()
        .find(|interface| interface.addresses.iter().any(|address| address.value == IpNet::V4(expected)))
        .map(|interface| interface.name.value.clone())
}

/// `can-reach=` an address of the node's subnet (its first host, usually the gateway, unless
/// that is the node itself), and `interface=` the interface holding the node's address,
/// anchored when the bare name would also match another interface.
fn suggestions(model: &Model, mismatch: &Mismatch) -> Vec<AutodetectionMethod> {
    let mut methods = Vec::new();
    let own = mismatch.expected.addr();
    let target = mismatch.expected.trunc().hosts().take(2).find(|address| *address != own).or_else(|| {
        model.routers.iter().map(|router| router.address.addr()).find_map(|address| match address {
            IpAddr::V4(address) if address != own && mismatch.expected.contains(&address) => Some(address),
            _ => None,
        })
    });
    if let Some(target) = target {
        methods.push(AutodetectionMethod::CanReach(CanReachTarget::Address(IpAddr::V4(target))));
    }
    if let Some(name) = holder(mismatch.interfaces, mismatch.expected) {
        let bare = AutodetectionMethod::Interface(vec![regex::escape(&name)]);
        let right = Detection::Found { address: IpNet::V4(mismatch.expected), interface: name.clone() };
        if autodetect::detect(&bare, mismatch.interfaces, Family::V4) == right {
            methods.push(bare);
        } else {
            methods.push(AutodetectionMethod::Interface(vec![format!("^{}$", regex::escape(&name))]));
        }
    }
    methods
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    const NODE: &str = "  nodes:\n    - name: m1\n      ipv4Address: 21.49.22.4/24\n      interfaces:\n        - {name: eth0, addresses: [21.49.22.4/24]}\n        - {name: eth1, addresses: [10.10.0.4/16]}\n        - {name: docker0, addresses: [172.17.0.1/16]}\n    - {name: m2, ipv4Address: 21.49.22.5/24}\n";

    #[test]
    fn the_seeds_first_found_trap() {
        let found = check_rule(&intent(NODE), "E0501");
        assert_eq!(
            found,
            [
                "E0501 `first-found`, calico-node's default when `nodeAddressAutodetection.ipv4` is unset, would detect 10.10.0.4/16 on `eth1` for node `m1`, not its `ipv4Address` 21.49.22.4/24 | calico-node uses `first-found` when no method is set; set `nodeAddressAutodetection.ipv4: can-reach=21.49.22.1` or `interface=eth0`, which pick the `ipv4Address` here"
            ]
        );
    }

    #[test]
    fn a_method_that_picks_the_node_address_is_quiet() {
        for method in ["can-reach=21.49.22.1", "interface=eth0", "skip-interface=eth1", "cidr=21.49.0.0/16"] {
            let text = intent(&format!("  nodeAddressAutodetection: {{ipv4: '{method}'}}\n{NODE}"));
            assert_eq!(check_rule(&text, "E0501"), Vec::<String>::new(), "{method}");
        }
    }

    #[test]
    fn an_unanchored_interface_pattern_is_suggested_anchored() {
        let text = intent(
            "  nodeAddressAutodetection: {ipv4: 'interface=eth0'}\n  nodes:\n    - name: m1\n      ipv4Address: 21.49.22.4/24\n      interfaces:\n        - {name: eth0, addresses: [21.49.22.4/24]}\n        - {name: veth0a1b2, addresses: [10.9.0.1/24]}\n",
        );
        let found = check_rule(&text, "E0501");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].contains("would detect 10.9.0.1/24 on `veth0a1b2`"), "{found:#?}");
        assert!(found[0].contains("ipv4: can-reach=21.49.22.1` or `interface=^eth0$`"), "{found:#?}");
    }

    #[test]
    fn nothing_found_is_calico_nodes_fatal_error() {
        let text = intent(
            "  nodes:\n    - name: m1\n      ipv4Address: 21.49.22.4/24\n      interfaces:\n        - {name: docker0, addresses: [172.17.0.1/16]}\n        - {name: lo, addresses: [127.0.0.1/8]}\n",
        );
        let found = check_rule(&text, "E0501");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].contains("finds no address on node `m1`: calico-node would exit with `failed to autodetect an IPv4 address`"),
            "{found:#?}"
        );
        assert!(found[0].contains("21.49.22.4/24 is on none of node `m1`'s interfaces"), "{found:#?}");
    }
}
