use calplan_diagnostics::{Diagnostic, Diagnostics, Spanned, declare_rule};
use calplan_model::autodetect::{self, Detection, Family};
use calplan_model::{Analysis, AutodetectionMethod, CanReachTarget};

declare_rule! {
    /// ## What it does
    /// Warns when nodes list their `interfaces` but the autodetection method depends on
    /// something the inventory does not describe, so calplan cannot check what calico-node
    /// would pick: `can-reach=` a hostname or an address outside every subnet on the node
    /// (the answer depends on DNS or the default route), or `kubernetes-internal-ip`.
    ///
    /// ## Why is this bad?
    /// The interfaces were given so that the nodes' addresses would be checked; they are not,
    /// and a wrong pick (the seed's first-found trap) goes unnoticed until BGP breaks.
    ///
    /// ## Example
    /// ```yaml
    /// nodeAddressAutodetection:
    ///   ipv4: can-reach=8.8.8.8     # leaves through the default route, which is not described
    /// ```
    pub static RULE = ("W0502", "autodetection-not-simulated", Warning, "an autodetection method calplan cannot check");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    // The reason is the method's, not the node's: one diagnostic per method (the cluster's, or
    // a node rule's) and reason for every node it concerns.
    let mut reasons: Vec<(&Spanned<AutodetectionMethod>, String, usize)> = Vec::new();
    for node in &model.nodes {
        let Some(method) = &model.node_autodetection(node.id).ipv4 else { continue };
        let (Some(interfaces), Some(_)) = (&node.interfaces, &node.ipv4_address) else {
            continue;
        };
        if let Detection::CannotSimulate { reason } = autodetect::detect(&method.value, interfaces, Family::V4) {
            match reasons.iter_mut().find(|(known, known_reason, _)| known.span == method.span && *known_reason == reason) {
                Some((_, _, count)) => *count += 1,
                None => reasons.push((method, reason, 1)),
            }
        }
    }
    for (method, reason, nodes) in reasons {
        let check_by_hand = match &method.value {
            AutodetectionMethod::KubernetesInternalIp => "check that each Kubernetes Node's `InternalIP` is its `ipv4Address`".to_string(),
            AutodetectionMethod::CanReach(CanReachTarget::Address(destination)) => {
                format!("check by hand with `ip route get {destination}` on the nodes")
            }
            AutodetectionMethod::CanReach(CanReachTarget::Hostname(host)) => {
                format!("check by hand with `ip route get $(getent hosts {host} | cut -d' ' -f1)` on the nodes")
            }
            _ => "check the nodes by hand".to_string(),
        };
        diagnostics.push(
            Diagnostic::new(
                &RULE,
                method.span,
                format!("calplan cannot simulate this autodetection method: {reason}"),
            )
            .label(if nodes == 1 {
                "not checked on the 1 node that lists its interfaces".to_string()
            } else {
                format!("not checked on the {nodes} nodes that list their interfaces")
            })
            .help(format!(
                "to have the nodes' addresses checked, use a method calplan can simulate, such as `can-reach=` an address in the nodes' subnet or `interface=`, or {check_by_hand}"
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn one_warning_for_all_nodes() {
        let nodes: String = (1..=3)
            .map(|n| {
                format!("    - {{name: n{n}, ipv4Address: 21.0.0.{n}/24, interfaces: [{{name: eth0, addresses: [21.0.0.{n}/24]}}]}}\n")
            })
            .collect();
        let text = intent(&format!("  nodeAddressAutodetection: {{ipv4: can-reach=8.8.8.8}}\n  nodes:\n{nodes}"));
        let found = check_rule(&text, "W0502");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("W0502 calplan cannot simulate this autodetection method: 8.8.8.8 is outside every subnet"),
            "{found:#?}"
        );
    }
}
