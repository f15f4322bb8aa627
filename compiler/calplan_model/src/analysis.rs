//! Everything derived from a model before any artifact is written: its Calico resources, the
//! peerings Calico derives from them, block placement and the BGP graph.

use crate::graph::BgpGraph;
use crate::ipam::{self, BlockPlacement, ObservedIpam};
use crate::model::{Model, NodeId};
use calplan_calico::peering::Peerings;
use calplan_calico::resources::ResourceSet;

#[derive(Clone, Debug)]
pub struct Analysis {
    pub model: Model,
    pub resources: ResourceSet,
    pub peerings: Peerings,
    pub placement: BlockPlacement,
    pub graph: BgpGraph,
    /// For each model node, its index in `peerings.topology` (which is ordered by name).
    topology_index: Vec<Option<usize>>,
    /// What the current state says of Kubernetes beyond Calico's datastore (Secrets, Services):
    /// empty unless the caller sets it from `--current`.
    pub kubernetes: crate::kubernetes::ObservedKubernetes,
}

impl Analysis {
    /// Derives everything from the model; `observed` holds the live IPAM, if read.
    pub fn new(model: Model, observed: Option<&ObservedIpam>) -> Analysis {
        let resources = crate::calico::resources(&model);
        let peerings = Peerings::compute(&resources, model.calico_version.value);
        let placement = ipam::place(&model, observed);
        let graph = BgpGraph::build(&model, &peerings);
        let topology_index = model.nodes.iter().map(|node| peerings.node_index(&node.name)).collect();
        Analysis { model, resources, peerings, placement, graph, topology_index, kubernetes: Default::default() }
    }

    /// The node's index in the peering topology.
    pub fn topology_index(&self, node: NodeId) -> Option<usize> {
        self.topology_index[node.0 as usize]
    }
}
