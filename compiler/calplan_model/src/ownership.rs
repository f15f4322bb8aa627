//! Who owns what on a node, and where Calico's resources are changed: the one place plan,
//! apply, verify and the lab ask (SPEC §5b).
//!
//! On a `calico-node` node, confd renders BIRD's configuration from the datastore and Felix
//! programs routes, tunnels and NAT; calplan changes the datastore, observes, and may pin
//! routes. On a `bird` node calplan owns BIRD 2 and the rulesets. Pure: answers only.

use crate::model::NodeAgent;

/// A file calplan compiles for a node, as far as ownership goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeFile {
    /// `bird.cfg`: BIRD 2's configuration.
    BirdConfig,
    /// `rules.nft` / `rules.iptables`.
    Ruleset,
    /// `routes`: the kernel routes the node should end up with.
    Routes,
    /// `route-pins`: calplan's own protocol-252 routes held across a session hand-over.
    RoutePins,
}

/// Whether calplan loads this file onto a node run by this agent. On a calico-node node only
/// route pins are calplan's: everything else is confd's or Felix's, and what calplan compiled
/// for it is a prediction to compare, not a file to load.
pub fn calplan_loads(agent: NodeAgent, file: NodeFile) -> bool {
    match agent {
        NodeAgent::Bird => true,
        NodeAgent::CalicoNode => file == NodeFile::RoutePins,
    }
}

/// BIRD's control sockets for IPv4 and IPv6 on a node run by this agent: calico-node's runit
/// services start `bird` and `bird6` on `/var/run/calico/bird{,6}.ctl`; BIRD 2 serves both
/// families on one socket.
pub fn bird_sockets(agent: NodeAgent) -> (&'static str, Option<&'static str>) {
    match agent {
        NodeAgent::CalicoNode => ("/var/run/calico/bird.ctl", Some("/var/run/calico/bird6.ctl")),
        NodeAgent::Bird => ("/run/bird/bird.ctl", None),
    }
}
