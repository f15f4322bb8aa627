use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;

declare_rule! {
    /// ## What it does
    /// Reports a BGP peer Calico accepts but that configures no working session: one with none
    /// of `peerIP`, `peerSelector` and `localWorkloadSelector`, which confd skips, and one with
    /// `peerIP` but no `asNumber`, whose session expects AS 0 (confd uses the cluster's AS only
    /// to find the Calico node at that address for the reverse peering).
    ///
    /// ## Why is this bad?
    /// The peering the operator meant does not come up, and nothing says so.
    ///
    /// ## Example
    /// ```yaml
    /// peers:
    ///   - {name: tor, peerIP: 21.49.22.1}     # add asNumber: 64999
    /// ```
    pub static RULE = ("E0411", "peer-configures-no-session", Error, "a BGP peer Calico accepts that configures no working session");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    // What is missing may only be what did not resolve, which is reported already.
    for peer in analysis.model.peers.iter().filter(|peer| !peer.unresolved) {
        let name = &peer.name.value;
        if peer.peer_ip.is_none() && peer.peer_selector.is_none() && peer.local_workload_selector.is_none() {
            diagnostics.push(
                Diagnostic::new(&RULE, peer.name.span, format!("BGP peer `{name}` has neither `peerIP` nor `peerSelector`"))
                    .label("peers with nobody")
                    .help("set `peerIP` (with `asNumber`) for a peer outside the cluster, or `peerSelector` for Calico nodes; confd skips this peer"),
            );
        }
        if let (Some(address), None, None) = (&peer.peer_ip, &peer.as_number, &peer.local_workload_selector) {
            diagnostics.push(
                Diagnostic::new(&RULE, address.span, format!("BGP peer `{name}` has `peerIP` but no `asNumber`"))
                    .label(format!("no AS to expect from {}", address.value))
                    .help("add `asNumber` with the peer's AS: without it the session expects AS 0 and never comes up; to peer with Calico nodes, use `peerSelector`, which takes their own AS"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn peers_calico_accepts_but_that_peer_with_nobody() {
        let text = intent(
            "  bgp:\n    peers:\n      - {name: c, nodeSelector: all()}\n      - {name: d, peerIP: 21.0.0.9}\n      - {name: e, peerIP: 21.0.0.8, asNumber: 65000}\n  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24}\n",
        );
        let found: Vec<String> = check_rule(&text, "E0411").iter().map(|line| line.split(" | ").next().unwrap().to_string()).collect();
        assert_eq!(
            found,
            ["E0411 BGP peer `c` has neither `peerIP` nor `peerSelector`", "E0411 BGP peer `d` has `peerIP` but no `asNumber`"]
        );
    }
}
