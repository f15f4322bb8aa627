//! What every per-node target needs to know about one node, gathered once.
//!
//! Facts that several node artifacts derive the same way (which service ranges the node
//! advertises, which pool a block belongs to) live here so the artifacts cannot disagree.
//! Nothing here renders text.

use calplan_calico::peering::Peering;
use calplan_model::ipam::Block;
use calplan_model::kubernetes::ServiceAdvertisement;
use calplan_model::{Aggregation, Analysis, LogSeverity, Node, Pool};
use ipnet::IpNet;
use std::collections::BTreeSet;

/// The label that makes confd stop advertising service ranges from a node
/// (`client.go` `ExcludeServiceAdvertisement`); the ranges are still kept out of its kernel.
pub const EXCLUDE_FROM_LOAD_BALANCERS_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// One node as its artifacts see it: its sessions and its blocks.
pub struct NodeView<'a> {
    pub analysis: &'a Analysis,
    pub node: &'a Node,
    /// The node's sessions, in `bird.cfg` order (mesh, global, node-specific).
    pub peerings: Vec<Peering>,
    /// The node's own blocks.
    pub blocks: Vec<&'a Block>,
}

/// The service ranges of one node, as confd keeps them under `/staticroutes` (advertised,
/// blackholed in BIRD) and `/rejectcidrs` (never programmed into the kernel).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceRanges {
    pub advertised: Vec<IpNet>,
    pub rejected: Vec<IpNet>,
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

    /// The node's index in the peering topology.
    pub fn topology_index(&self) -> Option<usize> {
        self.analysis.topology_index(self.node.id)
    }

    /// The pool a block was taken from; `None` for a block of a pool the intent no longer has.
    pub fn pool(&self, block: &Block) -> Option<&'a Pool> {
        block.pool.map(|index| &self.analysis.model.pools[index])
    }

    /// The log severity the node's BIRD runs with: its own BGPConfiguration's, else the
    /// cluster's.
    pub fn log_severity(&self) -> LogSeverity {
        self.node
            .bgp_configuration
            .as_ref()
            .and_then(|configuration| configuration.log_severity)
            .unwrap_or(self.analysis.model.bgp.log_severity)
    }

    /// The service ranges as confd derives them (`updateGlobalRoutes`): cluster IP ranges when
    /// advertised, plus external and LoadBalancer ranges except single addresses (confd
    /// advertises those per service, which calplan cannot know); LoadBalancer ranges not at all
    /// with Calico 3.31's `serviceLoadBalancerAggregation: Disabled`. A node labelled
    /// [`EXCLUDE_FROM_LOAD_BALANCERS_LABEL`]` = "true"` advertises none but still rejects them.
    /// Sorted and without duplicates.
    pub fn service_ranges(&self) -> ServiceRanges {
        let model = &self.analysis.model;
        let mut ranges: BTreeSet<IpNet> = BTreeSet::new();
        if model.bgp.advertise_service_cluster_ips {
            ranges.extend(model.service_cluster_ips.iter().map(|cidr| cidr.value));
        }
        let is_range = |cidr: &IpNet| cidr.prefix_len() != cidr.max_prefix_len();
        ranges.extend(model.bgp.service_external_ips.iter().map(|cidr| cidr.value).filter(is_range));
        let aggregated = !(model.calico_version.value.service_load_balancer_aggregation()
            && model.bgp.service_load_balancer_aggregation.as_ref().is_some_and(|value| value.value == Aggregation::Disabled));
        if aggregated {
            ranges.extend(model.bgp.service_load_balancer_ips.iter().map(|cidr| cidr.value).filter(is_range));
        }
        let rejected: Vec<IpNet> = ranges.into_iter().collect();
        ServiceRanges { advertised: if self.excluded_from_load_balancers() { Vec::new() } else { rejected.clone() }, rejected }
    }

    /// Whether the node carries [`EXCLUDE_FROM_LOAD_BALANCERS_LABEL`]` = "true"`.
    fn excluded_from_load_balancers(&self) -> bool {
        self.node.labels.get(EXCLUDE_FROM_LOAD_BALANCERS_LABEL).is_some_and(|value| value.value == "true")
    }

    /// The configuration confd's route generator decides per-Service routes with, for this node.
    pub fn service_advertisement(&self) -> ServiceAdvertisement<'_> {
        let model = &self.analysis.model;
        let release = model.calico_version.value;
        ServiceAdvertisement {
            release,
            node: &self.node.name.value,
            excluded: self.excluded_from_load_balancers(),
            cluster_ips: model.bgp.advertise_service_cluster_ips && !model.service_cluster_ips.is_empty(),
            external_ips: model.bgp.service_external_ips.iter().map(|cidr| cidr.value).collect(),
            load_balancer_ips: model.bgp.service_load_balancer_ips.iter().map(|cidr| cidr.value).collect(),
            aggregate_load_balancers: !(release.service_load_balancer_aggregation()
                && model.bgp.service_load_balancer_aggregation.as_ref().is_some_and(|value| value.value == Aggregation::Disabled)),
        }
    }
}
