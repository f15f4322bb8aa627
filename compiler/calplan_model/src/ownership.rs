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
    /// `bird-calico.cfg`: what calico-node's confd renders for the node (BIRD 1.x dialect).
    CalicoRender,
    /// `rules.nft` / `rules.iptables`.
    Ruleset,
    /// `routes`: the kernel routes the node should end up with.
    Routes,
    /// `route-pins`: calplan's own protocol-252 routes held across a session hand-over.
    RoutePins,
}

impl NodeFile {
    /// The node file an artifact's file name (`nodes/<node>/<file>`) is, if any.
    pub fn from_file_name(file: &str) -> Option<NodeFile> {
        match file {
            "bird.cfg" => Some(NodeFile::BirdConfig),
            "bird-calico.cfg" => Some(NodeFile::CalicoRender),
            "rules.nft" | "rules.iptables" => Some(NodeFile::Ruleset),
            "routes" => Some(NodeFile::Routes),
            "route-pins" => Some(NodeFile::RoutePins),
            _ => None,
        }
    }
}

/// How a plan carries a node file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handling {
    /// calplan loads it onto the node (checked, then loaded with its own tool).
    Loaded,
    /// Another agent makes it so: calico-node's confd re-renders BIRD's configuration from the
    /// datastore, and BIRD and Felix program the routes. A plan shows how it changes, as
    /// information; apply records it after the stage without writing it anywhere, and
    /// `verify` compares the live node with it.
    Observed,
}

/// How plans carry `file` on a node run by `agent`, or `None` when plans leave it out (what
/// calplan compiled for it is then a reference only, such as `bird.cfg` on a calico-node node,
/// or calico-node's render on a BIRD 2 host).
pub fn handling(agent: NodeAgent, file: NodeFile) -> Option<Handling> {
    match (agent, file) {
        (_, NodeFile::RoutePins) => Some(Handling::Loaded),
        (NodeAgent::Bird, NodeFile::BirdConfig | NodeFile::Ruleset | NodeFile::Routes) => Some(Handling::Loaded),
        (NodeAgent::Bird, NodeFile::CalicoRender) => None,
        (NodeAgent::CalicoNode, NodeFile::CalicoRender | NodeFile::Routes) => Some(Handling::Observed),
        (NodeAgent::CalicoNode, NodeFile::BirdConfig | NodeFile::Ruleset) => None,
    }
}

/// Whether calplan loads this file onto a node run by this agent. On a calico-node node only
/// route pins are calplan's: everything else is confd's or Felix's, and what calplan compiled
/// for it is a prediction to compare, not a file to load.
pub fn calplan_loads(agent: NodeAgent, file: NodeFile) -> bool {
    handling(agent, file) == Some(Handling::Loaded)
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

/// The BIRD client that reads a node's sessions: calico-node ships BIRD's light client
/// `birdcl` (its liveness probe and `calicoctl node status` use the same socket); BIRD 2
/// hosts have `birdc`.
pub fn bird_client(agent: NodeAgent) -> &'static str {
    match agent {
        NodeAgent::CalicoNode => "birdcl",
        NodeAgent::Bird => "birdc",
    }
}

/// Where calico-node keeps confd's renders of BIRD's configuration, IPv4's and IPv6's (its runit
/// services start `bird -c …/bird.cfg` and `bird6 -c …/bird6.cfg`); `None` on a BIRD 2 host,
/// whose `bird.cfg` calplan loads itself.
pub fn confd_renders(agent: NodeAgent) -> Option<(&'static str, &'static str)> {
    match agent {
        NodeAgent::CalicoNode => Some(("/etc/calico/confd/config/bird.cfg", "/etc/calico/confd/config/bird6.cfg")),
        NodeAgent::Bird => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calico_node_nodes_take_only_pins_and_show_the_render() {
        let agent = NodeAgent::CalicoNode;
        assert!(calplan_loads(agent, NodeFile::RoutePins));
        for file in [NodeFile::BirdConfig, NodeFile::Ruleset, NodeFile::Routes, NodeFile::CalicoRender] {
            assert!(!calplan_loads(agent, file), "{file:?}");
        }
        assert_eq!(handling(agent, NodeFile::CalicoRender), Some(Handling::Observed));
        assert_eq!(handling(agent, NodeFile::BirdConfig), None);
        assert_eq!(handling(NodeAgent::Bird, NodeFile::CalicoRender), None);
        assert_eq!(handling(NodeAgent::Bird, NodeFile::BirdConfig), Some(Handling::Loaded));
        assert_eq!(NodeFile::from_file_name("rules.iptables"), Some(NodeFile::Ruleset));
        assert_eq!(NodeFile::from_file_name("frr.conf"), None);
        assert_eq!(confd_renders(agent).map(|(ipv4, _)| ipv4), Some("/etc/calico/confd/config/bird.cfg"));
        assert_eq!(confd_renders(NodeAgent::Bird), None);
    }
}
