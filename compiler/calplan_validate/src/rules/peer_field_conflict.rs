use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::{Analysis, Peer};

declare_rule! {
    /// ## What it does
    /// Checks a BGP peer's fields against the rules of Calico's `BGPPeer`, quoting Calico's
    /// messages where it has them: `node` and `nodeSelector` together, `peerIP` and
    /// `peerSelector` together, `asNumber` with `peerSelector`, `reachableBy` without `peerIP`
    /// or of another address family, `keepOriginalNextHop` with `nextHopMode`, and
    /// `localWorkloadSelector` with `peerIP` or `peerSelector`, or without `asNumber`. A peer
    /// Calico accepts but that configures no working session is `peer-configures-no-session`'s.
    ///
    /// ## Why is this bad?
    /// Calico refuses the BGPPeer (`Node field must be empty when NodeSelector is specified`).
    ///
    /// ## Example
    /// ```yaml
    /// peers:
    ///   - name: peer-to-tor
    ///     node: cs1-k8s-n1.zpepc.com.cn
    ///     nodeSelector: rack == 'r1'      # one or the other
    ///     peerIP: 21.49.22.1
    ///     asNumber: 64999
    /// ```
    pub static RULE = ("E0401", "peer-field-conflict", Error, "BGP peer fields that Calico does not allow together", fixed);
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    for peer in &analysis.model.peers {
        check_peer(peer, diagnostics);
    }
}

fn check_peer(peer: &Peer, diagnostics: &mut Diagnostics) {
    let name = &peer.name.value;
    if let (Some(node), Some(selector)) = (&peer.node, &peer.node_selector) {
        diagnostics.push(
            Diagnostic::new(&RULE, node.span, "Node field must be empty when NodeSelector is specified")
                .label("`node` here")
                .secondary(selector.span, "and `nodeSelector` here")
                .help("keep `node` for one node, or `nodeSelector` for several"),
        );
    }
    if let (Some(address), Some(selector)) = (&peer.peer_ip, &peer.peer_selector) {
        diagnostics.push(
            Diagnostic::new(&RULE, address.span, "PeerIP field must be empty when PeerSelector is specified")
                .label("`peerIP` here")
                .secondary(selector.span, "and `peerSelector` here")
                .help("keep `peerIP` for a peer outside the cluster, or `peerSelector` to peer with Calico nodes"),
        );
    }
    if let (Some(as_number), Some(selector)) = (&peer.as_number, &peer.peer_selector) {
        diagnostics.push(
            Diagnostic::new(&RULE, as_number.span, "ASNumber field must be empty when PeerSelector is specified")
                .label("`asNumber` here")
                .secondary(selector.span, "with `peerSelector`")
                .help("remove `asNumber`: with `peerSelector`, Calico takes each selected node's own AS"),
        );
    }
    if let Some(workloads) = &peer.local_workload_selector {
        for (span, field) in
            [(peer.peer_ip.as_ref().map(|a| a.span), "peerIP"), (peer.peer_selector.as_ref().map(|s| s.span), "peerSelector")]
        {
            if let Some(span) = span {
                diagnostics.push(
                    Diagnostic::new(&RULE, span, format!("{field} must be empty when localWorkloadSelector is set"))
                        .label(format!("`{field}` here"))
                        .secondary(workloads.span, "with `localWorkloadSelector`")
                        .help("a peer is either the node's own workloads (`localWorkloadSelector`) or another BGP speaker; make two peers"),
                );
            }
        }
        if peer.as_number.is_none() {
            diagnostics.push(
                Diagnostic::new(&RULE, workloads.span, "asNumber is required when localWorkloadSelector is set")
                    .label("no AS to expect from the workloads")
                    .help("add `asNumber` with the AS the workloads' BGP speakers use"),
            );
        }
    }
    if let Some(gateway) = &peer.reachable_by {
        match &peer.peer_ip {
            None if peer.unresolved => {}
            None => diagnostics.push(
                Diagnostic::new(&RULE, gateway.span, "ReachablyBy field must be empty when PeerIP is empty")
                    .label("`reachableBy` without `peerIP`")
                    .help("`reachableBy` adds a route to `peerIP` through this gateway; set `peerIP`, or remove `reachableBy`"),
            ),
            Some(address) if address.ip.is_ipv4() != gateway.is_ipv4() => diagnostics.push(
                Diagnostic::new(&RULE, gateway.span, "ReachableBy and PeerIP address family mismatched")
                    .label(format!("{} gateway", if gateway.is_ipv4() { "an IPv4" } else { "an IPv6" }))
                    .secondary(address.span, format!("{} peer", if address.ip.is_ipv4() { "an IPv4" } else { "an IPv6" }))
                    .help("the gateway must be of the peer's address family; confd skips this peer otherwise"),
            ),
            Some(_) => {}
        }
    }
    if peer.keep_original_next_hop == Some(true) && peer.next_hop_mode.is_some() {
        diagnostics.push(
            Diagnostic::new(
                &RULE,
                peer.name.span,
                "keepOriginalNextHop and nextHopMode cannot both be set; keepOriginalNextHop is deprecated, use nextHopMode instead",
            )
            .label(format!("BGP peer `{name}` sets both"))
            .help("remove `keepOriginalNextHop: true`; `nextHopMode: Keep` does the same"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn local_workload_peers_stand_alone_and_name_their_as() {
        let text = intent(
            "  calicoVersion: \"3.30\"\n  bgp:\n    peers:\n      - {name: pods, localWorkloadSelector: app == 'bgp', peerIP: 10.0.0.1}\n      - {name: fine, localWorkloadSelector: app == 'bgp', asNumber: 65001}\n  nodes:\n    - {name: n1, ipv4Address: 10.0.0.2/24}\n",
        );
        let found: Vec<String> = check_rule(&text, "E0401").iter().map(|line| line.split(" | ").next().unwrap().to_string()).collect();
        assert_eq!(
            found,
            [
                "E0401 asNumber is required when localWorkloadSelector is set",
                "E0401 peerIP must be empty when localWorkloadSelector is set",
            ]
        );
    }

    #[test]
    fn every_conflict_is_reported() {
        let text = intent(
            "  bgp:\n    peers:\n      - {name: a, node: n1, nodeSelector: all(), peerIP: 21.0.0.9, asNumber: 65000}\n      - {name: b, peerIP: 21.0.0.9, peerSelector: all(), asNumber: 65000}\n      - {name: c, nodeSelector: all()}\n      - {name: d, peerIP: 21.0.0.9, reachableBy: 'fd00::1'}\n      - {name: e, peerSelector: all(), reachableBy: 21.0.0.1, keepOriginalNextHop: true, nextHopMode: Keep}\n  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24}\n",
        );
        let codes: Vec<String> = check_rule(&text, "E0401").iter().map(|line| line.split(" | ").next().unwrap().to_string()).collect();
        assert_eq!(
            codes,
            [
                "E0401 Node field must be empty when NodeSelector is specified",
                "E0401 PeerIP field must be empty when PeerSelector is specified",
                "E0401 ASNumber field must be empty when PeerSelector is specified",
                "E0401 ReachableBy and PeerIP address family mismatched",
                "E0401 keepOriginalNextHop and nextHopMode cannot both be set; keepOriginalNextHop is deprecated, use nextHopMode instead",
                "E0401 ReachablyBy field must be empty when PeerIP is empty",
            ]
        );
    }
}
