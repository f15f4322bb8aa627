//! What every per-node target needs to know about one node, gathered once.

use calplan_calico::peering::Peering;
use calplan_model::ipam::Block;
use calplan_model::{Analysis, Node};

/// One node as its artifacts see it: its sessions and its blocks.
pub struct NodeView<'a> {
    pub analysis: &'a Analysis,
    pub node: &'a Node,
    /// The node's sessions, in `bird.cfg` order (mesh, global, node-specific).
    pub peerings: Vec<Peering>,
    /// The node's own blocks.
    pub blocks: Vec<&'a Block>,
}

impl<'a> NodeView<'a> {
    pub fn new(analysis: &'a Analysis, node: &'a Node) -> NodeView<'a> {
        let peerings = analysis.topology_index(node.id).map(|index| analysis.peerings.for_node(index)).unwrap_or_default();
        let blocks = analysis.placement.of_node(node.id).collect();
        NodeView { analysis, node, peerings, blocks }
    }

    /// `nodes/<node>/`.
    pub fn directory(&self) -> String {
        format!("nodes/{}", self.node.name.value)
    }

    /// The intent element the node's artifacts come from.
    pub fn source(&self) -> String {
        format!("spec.nodes[{}]", self.node.name.value)
    }
}
