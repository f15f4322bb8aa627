//! Block placement: which node holds which block of each pool.
//!
//! Without live IPAM data, blocks are handed out deterministically: each enabled pool gives
//! the nodes it selects one block each, in node order, from the start of the pool.
//!
//! With live IPAM data (affinities read from an etcd datastore or Kubernetes' `BlockAffinity`
//! objects), the cluster's IPAM is authoritative for every pool the cluster has, as confd
//! renders exactly the affinities that exist: such a pool's blocks are its observed
//! affinities, and a node without one in it holds no block there, however many nodes the
//! pool selects. A pool counts as the cluster's when the cluster has a pool of the same CIDR
//! or an observed block lies inside it. Only a pool the intent adds (no such pool, no block
//! in it) is simulated as above, avoiding the observed blocks: the forecast of where Calico
//! will place its first blocks once pods land there.

use crate::model::{Model, NodeId, Pool};
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};

/// The state of a block's affinity to its node, as Calico's IPAM records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AffinityState {
    Confirmed,
    /// Stored without a state, as Calico before 3.15 wrote affinities: confirmed, and confd
    /// says so differently ("implicitly confirmed").
    Implicit,
    /// Claimed but not yet confirmed: confd does not advertise it.
    Pending,
    PendingDeletion,
}

impl AffinityState {
    pub fn as_str(self) -> &'static str {
        match self {
            AffinityState::Confirmed | AffinityState::Implicit => "confirmed",
            AffinityState::Pending => "pending",
            AffinityState::PendingDeletion => "pendingDeletion",
        }
    }

    pub fn parse(text: &str) -> Option<AffinityState> {
        match text {
            "" => Some(AffinityState::Implicit),
            "confirmed" => Some(AffinityState::Confirmed),
            "pending" => Some(AffinityState::Pending),
            "pendingDeletion" => Some(AffinityState::PendingDeletion),
            _ => None,
        }
    }
}

/// An affinity observed in the live cluster.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObservedAffinity {
    pub block: IpNet,
    pub node: String,
    pub state: AffinityState,
}

/// The cluster's IPAM, as read from live state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedIpam {
    /// Every host affinity the cluster records, with its state.
    pub affinities: Vec<ObservedAffinity>,
    /// The CIDRs of the pools the cluster has: in these, the affinities are the whole truth.
    pub pools: Vec<IpNet>,
}

impl ObservedIpam {
    /// Whether the cluster has this pool: one of the same CIDR, or a block inside it.
    pub fn covers(&self, pool: &IpNet) -> bool {
        let pool = pool.trunc();
        self.pools.iter().any(|cidr| cidr.trunc() == pool) || self.affinities.iter().any(|affinity| pool.contains(&affinity.block))
    }

    /// The IPAM once the cluster's pools missing from `held` (the CIDRs a later state has) are
    /// deleted: Calico's client releases every block affinity inside a pool it deletes.
    pub fn without_deleted_pools(&self, held: &[IpNet]) -> ObservedIpam {
        let deleted: Vec<IpNet> =
            self.pools.iter().map(IpNet::trunc).filter(|cidr| !held.iter().any(|kept| kept.trunc() == *cidr)).collect();
        ObservedIpam {
            affinities: self
                .affinities
                .iter()
                .filter(|affinity| !deleted.iter().any(|cidr| cidr.contains(&affinity.block)))
                .cloned()
                .collect(),
            pools: self.pools.iter().filter(|cidr| !deleted.contains(&cidr.trunc())).cloned().collect(),
        }
    }
}

/// One block held by one node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Block {
    pub cidr: IpNet,
    pub node: NodeId,
    /// Index into `Model::pools`; `None` for a block left from a pool the intent no longer has.
    pub pool: Option<usize>,
    pub state: AffinityState,
}

impl Block {
    /// Whether confd advertises and blackholes this block (a pending one is neither).
    pub fn is_advertised(&self) -> bool {
        self.state != AffinityState::Pending
    }

    /// `/32` and `/128` blocks are aggregated but not blackholed.
    pub fn is_host_block(&self) -> bool {
        self.cidr.prefix_len() == self.cidr.max_prefix_len()
    }
}

#[derive(Clone, Debug, Default)]
pub struct BlockPlacement {
    /// Every block, sorted by CIDR.
    pub blocks: Vec<Block>,
    by_node: BTreeMap<NodeId, Vec<usize>>,
    /// Whether live IPAM data was given (pools the cluster has are then as observed).
    pub observed: bool,
}

impl BlockPlacement {
    pub fn of_node(&self, node: NodeId) -> impl Iterator<Item = &Block> {
        self.by_node.get(&node).into_iter().flatten().map(|&index| &self.blocks[index])
    }

    pub fn of_pool(&self, pool: usize) -> impl Iterator<Item = &Block> {
        self.blocks.iter().filter(move |block| block.pool == Some(pool))
    }
}

/// Places blocks for every node. `observed` holds the live IPAM, if any was read.
pub fn place(model: &Model, observed: Option<&ObservedIpam>) -> BlockPlacement {
    let mut blocks = Vec::new();
    let mut taken: BTreeSet<IpNet> = BTreeSet::new();
    if let Some(observed) = observed {
        for affinity in &observed.affinities {
            taken.insert(affinity.block);
            let Some(node) = model.node_by_name(&affinity.node) else { continue };
            let pool = model.pools.iter().position(|pool| pool.cidr.contains(&affinity.block));
            blocks.push(Block { cidr: affinity.block, node: node.id, pool, state: affinity.state });
        }
    }
    for (index, pool) in model.pools.iter().enumerate() {
        if !takes_new_blocks(pool) || observed.is_some_and(|observed| observed.covers(&pool.cidr.value)) {
            continue;
        }
        let selected = model.nodes.iter().filter(|node| pool.node_selector.selector.matches(&node.label_values()));
        let Ok(mut free) = pool.cidr.trunc().subnets(*pool.block_size) else { continue };
        for node in selected {
            let Some(cidr) = free.by_ref().find(|block| !taken.contains(block)) else { break };
            taken.insert(cidr);
            blocks.push(Block { cidr, node: node.id, pool: Some(index), state: AffinityState::Confirmed });
        }
    }
    blocks.sort();
    blocks.dedup_by(|a, b| a.cidr == b.cidr);
    let mut by_node: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
    for (position, block) in blocks.iter().enumerate() {
        by_node.entry(block.node).or_default().push(position);
    }
    BlockPlacement { blocks, by_node, observed: observed.is_some() }
}

/// The pools whose blocks [`place`] forecasts rather than observes: those that take new blocks
/// and that the observed IPAM does not cover (every such pool, without observed IPAM).
pub fn forecast_pools(model: &Model, observed: Option<&ObservedIpam>) -> Vec<IpNet> {
    model
        .pools
        .iter()
        .filter(|pool| takes_new_blocks(pool) && !observed.is_some_and(|observed| observed.covers(&pool.cidr.value)))
        .map(|pool| pool.cidr.trunc())
        .collect()
}

/// Whether `cidr` lies inside one of `pools` and is smaller than it: a block (or an address)
/// of the pool, not the pool itself.
pub fn is_block_in(cidr: &IpNet, pools: &[IpNet]) -> bool {
    pools.iter().any(|pool| pool.contains(cidr) && cidr.prefix_len() > pool.prefix_len())
}

/// Whether Calico would hand out new blocks from a pool for workloads.
pub fn takes_new_blocks(pool: &Pool) -> bool {
    !*pool.disabled
        && !pool.assignment_manual
        && pool.allowed_uses.contains(&crate::model::AllowedUse::Workload)
        && pool.block_size.value >= pool.cidr.prefix_len()
        && pool.block_size.value <= pool.cidr.max_prefix_len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affinity(block: &str, node: &str) -> ObservedAffinity {
        ObservedAffinity { block: block.parse().unwrap(), node: node.into(), state: AffinityState::Confirmed }
    }

    /// Deleting a pool releases its blocks' affinities, and only its own: an orphan block
    /// (in no pool the cluster had) and the kept pool's blocks stay.
    #[test]
    fn a_deleted_pools_affinities_go_with_it() {
        let observed = ObservedIpam {
            affinities: vec![affinity("192.168.0.0/26", "a"), affinity("10.244.0.0/24", "a"), affinity("172.16.0.0/26", "b")],
            pools: vec!["192.168.0.0/16".parse().unwrap(), "10.244.0.0/16".parse().unwrap()],
        };
        let after = observed.without_deleted_pools(&["10.244.0.0/16".parse().unwrap()]);
        let blocks: Vec<String> = after.affinities.iter().map(|affinity| affinity.block.to_string()).collect();
        assert_eq!(blocks, ["10.244.0.0/24", "172.16.0.0/26"]);
        assert_eq!(after.pools, vec!["10.244.0.0/16".parse::<IpNet>().unwrap()]);
        assert_eq!(observed.without_deleted_pools(&observed.pools), observed, "nothing deleted, nothing released");
    }
}
