//! `nodes/<node>/routes`: the kernel routes for cluster traffic a node should end up with once
//! BIRD and Felix have done their work, one `ip route` line per route, sorted by destination.
//! Each line is valid as the arguments of `ip route replace`, which is how apply loads them
//! and how the lab compares them with `ip route`.
//!
//! Every node's table holds a line per block in the cluster, so the whole output grows as
//! nodes × blocks (25 million lines for 5,000 nodes with one block each). The text of each
//! block's route is therefore built once for the cluster, and each node's file is assembled
//! by copying those pieces into a buffer sized up front: no formatting, sorting or lookups per
//! node and line. No templates here for the same reason. Pure: it only reads the analysis.
//!
//! Who programs what, for Calico 3.30 with BIRD networking:
//! - BIRD (`proto bird`): blackholes for the node's own blocks (not `/32` or `/128` blocks);
//!   remote blocks `via` the owner's address, or `via <owner> dev tunl0 onlink` for IPIP
//!   (Always, or CrossSubnet when the owner is outside the node's subnet); routes to BGP peers
//!   through a `reachableBy` gateway.
//! - Felix (`proto 80`): everything in VXLAN pools, which BIRD's kernel filter rejects —
//!   blackholes for own blocks, `via <owner VTEP> dev vxlan.calico onlink` (IPv6:
//!   `vxlan-v6.calico`) for remote ones, and for VXLAN CrossSubnet within the subnet `via
//!   <owner>` on the node's own interface.
//!
//! A remote block gets a route only when its owner advertises it: pending blocks are not
//! advertised, and BGP carries nothing from pools with `disableBGPExport` (Felix's VXLAN
//! routes do not depend on BGP, so those stay). A node needs an address of the block's family
//! to learn or reach it, and so does the owner.

use crate::node_view::NodeView;
use crate::{Artifact, Context, Target, TemplateError, per_node};
use calplan_calico::resources::EncapsulationMode;
use calplan_model::ipam::Block;
use calplan_model::{Analysis, Node, NodeId};
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

pub struct Routes;

impl Target for Routes {
    fn name(&self) -> &'static str {
        "routes"
    }

    fn render(&self, context: &Context) -> Result<Vec<Artifact>, TemplateError> {
        let table = ClusterRoutes::new(context.analysis);
        per_node(context, |view| Ok(vec![Artifact::new(format!("{}/routes", view.directory()), table.for_node(view), view.source())]))
    }
}

/// Felix's route protocol number (`dataplanedefs.DefaultRouteProto`).
const FELIX: &str = "80";

/// Each block's route, as text, for its owner and for every other node.
struct BlockRoute {
    cidr: IpNet,
    owner: NodeId,
    /// The owner's line (a blackhole), with its newline.
    own: Option<String>,
    remote: RemoteRoute,
}

enum RemoteRoute {
    /// No other node has a route to this block.
    None,
    /// The same line on every node that has an address of the block's family.
    Everywhere(String),
    /// IPIP CrossSubnet: `direct` for nodes in the owner's subnet, `tunnel` for the others.
    BySubnet { owner: IpAddr, direct: String, tunnel: String },
    /// VXLAN CrossSubnet: Felix's `tunnel` line across subnets; within them a route over the
    /// node's own interface, which only the node knows: `prefix` and the node's suffix.
    FelixBySubnet { owner: IpAddr, prefix: String, tunnel: String },
}

/// Every block's route text for the cluster, computed once.
struct ClusterRoutes {
    blocks: Vec<BlockRoute>,
    /// An upper bound of the bytes one node's file takes, to size its buffer once.
    capacity: usize,
}

impl ClusterRoutes {
    fn new(analysis: &Analysis) -> ClusterRoutes {
        let model = &analysis.model;
        // Felix gives each node one VTEP per family: here, the first address of the node's
        // first advertised block in any VXLAN pool of that family (Calico hands out a block's
        // addresses in order, and the tunnel address is the node's first allocation).
        let mut vteps: HashMap<(NodeId, bool), IpAddr> = HashMap::new();
        for block in analysis.placement.blocks.iter().filter(|block| block.is_advertised()) {
            if block.pool.is_some_and(|pool| model.pools[pool].vxlan_mode.is_enabled()) {
                vteps.entry((block.node, block.cidr.addr().is_ipv4())).or_insert(block.cidr.network());
            }
        }
        let blocks: Vec<BlockRoute> = analysis.placement.blocks.iter().map(|block| block_route(analysis, block, &vteps)).collect();
        let capacity = blocks
            .iter()
            .map(|route| {
                let remote = match &route.remote {
                    RemoteRoute::None => 0,
                    RemoteRoute::Everywhere(line) => line.len(),
                    RemoteRoute::BySubnet { direct, tunnel, .. } => direct.len().max(tunnel.len()),
                    RemoteRoute::FelixBySubnet { prefix, tunnel, .. } => (prefix.len() + FELIX_SUFFIX_ROOM).max(tunnel.len()),
                };
                remote.max(route.own.as_ref().map_or(0, String::len))
            })
            .sum();
        ClusterRoutes { blocks, capacity }
    }

    /// One node's file.
    fn for_node(&self, view: &NodeView) -> String {
        let node = view.node;
        let ipv4_network = node.ipv4_address.as_ref().map(|address| IpNet::V4(address.trunc()));
        let ipv6_network = node.ipv6_address.as_ref().map(|address| IpNet::V6(address.trunc()));
        let felix_suffix_ipv4 = felix_direct_suffix(node, true);
        let felix_suffix_ipv6 = felix_direct_suffix(node, false);
        let extra = reachable_by(view);
        let mut extra = extra.iter().peekable();
        let mut out = String::with_capacity(self.capacity + 64 * extra.len());
        for route in &self.blocks {
            while let Some((_, line)) = extra.next_if(|(destination, _)| *destination < route.cidr) {
                out.push_str(line);
            }
            if route.owner == node.id {
                if let Some(line) = &route.own {
                    out.push_str(line);
                }
                continue;
            }
            let network = if route.cidr.addr().is_ipv4() { ipv4_network } else { ipv6_network };
            let Some(network) = network else { continue };
            match &route.remote {
                RemoteRoute::None => {}
                RemoteRoute::Everywhere(line) => out.push_str(line),
                RemoteRoute::BySubnet { owner, direct, tunnel } => {
                    out.push_str(if network.contains(owner) { direct } else { tunnel });
                }
                RemoteRoute::FelixBySubnet { owner, prefix, tunnel } => {
                    if network.contains(owner) {
                        out.push_str(prefix);
                        out.push_str(if route.cidr.addr().is_ipv4() { &felix_suffix_ipv4 } else { &felix_suffix_ipv6 });
                    } else {
                        out.push_str(tunnel);
                    }
                }
            }
        }
        for (_, line) in extra {
            out.push_str(line);
        }
        out
    }
}

/// Room for ` dev <interface> proto 80 onlink\n`, interface names being at most 15 bytes.
const FELIX_SUFFIX_ROOM: usize = 40;

fn block_route(analysis: &Analysis, block: &Block, vteps: &HashMap<(NodeId, bool), IpAddr>) -> BlockRoute {
    let model = &analysis.model;
    let pool = block.pool.map(|index| &model.pools[index]);
    let vxlan = pool.map_or(EncapsulationMode::Never, |pool| *pool.vxlan_mode);
    let ipip = pool.map_or(EncapsulationMode::Never, |pool| *pool.ipip_mode);
    let exported = pool.is_none_or(|pool| !*pool.disable_bgp_export);
    let ipv4 = block.cidr.addr().is_ipv4();
    let cidr = block.cidr.to_string();
    let protocol = if vxlan.is_enabled() { FELIX } else { "bird" };
    let own = (block.is_advertised() && !block.is_host_block()).then(|| format!("blackhole {cidr} proto {protocol}\n"));
    let owner_node = model.node(block.node);
    let owner_address =
        if ipv4 { owner_node.ipv4().map(IpAddr::V4) } else { owner_node.ipv6_address.as_ref().map(|address| IpAddr::V6(address.addr())) };
    let remote = match owner_address {
        _ if !block.is_advertised() => RemoteRoute::None,
        None => RemoteRoute::None,
        Some(owner) if vxlan.is_enabled() => {
            let device = if ipv4 { "vxlan.calico" } else { "vxlan-v6.calico" };
            match vteps.get(&(block.node, ipv4)) {
                None => RemoteRoute::None,
                Some(vtep) => {
                    let tunnel = format!("{cidr} via {vtep} dev {device} proto {FELIX} onlink\n");
                    if vxlan == EncapsulationMode::CrossSubnet {
                        RemoteRoute::FelixBySubnet { owner, prefix: format!("{cidr} via {owner}"), tunnel }
                    } else {
                        RemoteRoute::Everywhere(tunnel)
                    }
                }
            }
        }
        Some(_) if !exported => RemoteRoute::None,
        Some(owner) => {
            let direct = format!("{cidr} via {owner} proto bird\n");
            let tunnel = format!("{cidr} via {owner} dev tunl0 proto bird onlink\n");
            match ipip {
                // IPIP is IPv4 only; validation rejects it on IPv6 pools.
                _ if !ipv4 => RemoteRoute::Everywhere(direct),
                EncapsulationMode::Always => RemoteRoute::Everywhere(tunnel),
                EncapsulationMode::CrossSubnet => RemoteRoute::BySubnet { owner, direct, tunnel },
                EncapsulationMode::Never => RemoteRoute::Everywhere(direct),
            }
        }
    };
    BlockRoute { cidr: block.cidr, owner: block.node, own, remote }
}

/// How Felix finishes a same-subnet VXLAN CrossSubnet route: over the interface that holds the
/// node's address, when the intent lists interfaces; otherwise without a device (an `onlink`
/// route needs one), which the kernel resolves the same way for a neighbour on the subnet.
fn felix_direct_suffix(node: &Node, ipv4: bool) -> String {
    let address = if ipv4 { node.ipv4().map(IpAddr::V4) } else { node.ipv6_address.as_ref().map(|address| IpAddr::V6(address.addr())) };
    // Only a plain interface name may become an argument of `ip route replace`.
    let plain = |name: &str| {
        (1..=15).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
    };
    let interface = address.and_then(|address| {
        node.interfaces.iter().flatten().find(|interface| interface.addresses.iter().any(|held| held.addr() == address))
    });
    let interface = interface.filter(|interface| plain(&interface.name.value));
    match interface {
        Some(interface) => format!(" dev {} proto {FELIX} onlink\n", interface.name.value),
        None => format!(" proto {FELIX}\n"),
    }
}

/// Routes BIRD's static protocol installs towards peers with a `reachableBy` gateway, by
/// destination.
fn reachable_by(view: &NodeView) -> Vec<(IpNet, String)> {
    let mut routes: BTreeMap<IpNet, IpAddr> = BTreeMap::new();
    for peering in &view.peerings {
        if let Some(gateway) = peering.data.reachable_by {
            routes.entry(IpNet::from(peering.data.ip)).or_insert(gateway);
        }
    }
    routes.into_iter().map(|(destination, gateway)| (destination, format!("{destination} via {gateway} proto bird\n"))).collect()
}
