//! The firewall rules one node needs, as data: what `rules.nft` and `rules.iptables` both
//! render, so that the two rulesets cannot drift apart. Derived from the analysis only; this
//! module renders no text and knows nothing of either tool's syntax.
//!
//! The rules follow Felix (Calico 3.30, `felix/rules/nat.go` and `static.go`):
//! - NAT outgoing: traffic whose source is in a `natOutgoing` pool and whose destination is
//!   outside every pool leaves with the node's address. "Every pool" includes disabled pools,
//!   which still hold addresses during a migration: Felix keeps them in its all-pools set.
//! - IPIP (IP protocol 4) when any pool uses IPIP, and VXLAN (udp/4789) when any pool of the
//!   family uses VXLAN, are accepted from cluster hosts (the nodes' addresses) and dropped from
//!   anyone else, as Felix's `cali-INPUT` does.
//! - BGP is accepted from the cluster hosts and from this node's own BGP peers outside the
//!   cluster (routers, top-of-rack switches: dropping them would cut the sessions the intent
//!   asks for), on the port the nodes listen on, and dropped from anyone else.
//!
//! No other traffic is matched. Everything is sorted, so the output is deterministic.

use crate::node_view::NodeView;
use calplan_model::Analysis;
use ipnet::IpNet;
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

/// BGP's well-known port, which nodes listen on unless `bgp.listenPort` says otherwise.
pub const BGP_PORT: u16 = 179;
/// Felix's `VXLANPort` default; the intent has no setting for it.
pub const VXLAN_PORT: u16 = 4789;
/// IPIP's IP protocol number. Written as a number: `/etc/protocols` calls 4 `ipencap` and
/// gives the name `ipip` to 94, so a name would be a trap.
pub const IPIP_PROTOCOL: u8 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    fn of_net(net: &IpNet) -> Family {
        if net.addr().is_ipv4() { Family::Ipv4 } else { Family::Ipv6 }
    }

    fn of_addr(address: &IpAddr) -> Family {
        if address.is_ipv4() { Family::Ipv4 } else { Family::Ipv6 }
    }
}

/// One node's rules.
#[derive(Clone, Debug, Serialize)]
pub struct NodeRules {
    pub node: String,
    pub cluster: String,
    /// The families the node has rules for, IPv4 first.
    pub families: Vec<FamilyRules>,
}

/// The rules of one address family.
#[derive(Clone, Debug, Serialize)]
pub struct FamilyRules {
    pub family: Family,
    /// Pools whose traffic to the outside is masqueraded (`natOutgoing`), disabled ones
    /// included. Empty: no NAT rule at all, as Felix.
    pub masquerade_pools: Vec<String>,
    /// Every pool, disabled ones included: destinations that are never masqueraded.
    pub pools: Vec<String>,
    /// The nodes' addresses, the only sources tunnels are accepted from: single addresses,
    /// and consecutive runs merged into prefixes that hold exactly those addresses (nodes are
    /// often numbered in order, and an iptables chain is matched rule by rule).
    pub cluster_hosts: Vec<String>,
    /// Addresses outside the cluster this node peers with: accepted for BGP besides the
    /// cluster hosts.
    pub external_bgp_peers: Vec<String>,
    pub bgp_port: u16,
    /// Some pool of the cluster uses IPIP (IPv4 only).
    pub ipip: bool,
    pub ipip_protocol: u8,
    /// Some pool of this family uses VXLAN.
    pub vxlan: bool,
    pub vxlan_port: u16,
}

/// What every node's rules share, computed once for the cluster.
pub struct ClusterRules {
    cluster: String,
    families: Vec<FamilyRules>,
    hosts: HashSet<IpAddr>,
}

impl ClusterRules {
    pub fn new(analysis: &Analysis) -> ClusterRules {
        let model = &analysis.model;
        let bgp_port = model.bgp.listen_port.as_ref().map_or(BGP_PORT, |port| port.value);
        let families = [Family::Ipv4, Family::Ipv6]
            .into_iter()
            .map(|family| {
                let pools: Vec<_> = model.pools.iter().filter(|pool| Family::of_net(&pool.cidr) == family).collect();
                let hosts: BTreeSet<IpAddr> =
                    model.nodes.iter().flat_map(node_addresses).filter(|address| Family::of_addr(address) == family).collect();
                FamilyRules {
                    family,
                    masquerade_pools: sorted_cidrs(pools.iter().filter(|pool| *pool.nat_outgoing).map(|pool| pool.cidr.value)),
                    pools: sorted_cidrs(pools.iter().map(|pool| pool.cidr.value)),
                    cluster_hosts: exact_cover(&hosts),
                    external_bgp_peers: Vec::new(),
                    bgp_port,
                    // Validation keeps IPIP off IPv6 pools; the tunnel runs over IPv4 regardless.
                    ipip: family == Family::Ipv4 && model.pools.iter().any(|pool| pool.ipip_mode.is_enabled()),
                    ipip_protocol: IPIP_PROTOCOL,
                    vxlan: pools.iter().any(|pool| pool.vxlan_mode.is_enabled()),
                    vxlan_port: VXLAN_PORT,
                }
            })
            .collect();
        let hosts = model.nodes.iter().flat_map(node_addresses).collect();
        ClusterRules { cluster: model.name.value.clone(), families, hosts }
    }

    /// One node's rules: a family is present when the cluster has pools of it or the node an
    /// address in it (its BGP sessions then need guarding).
    pub fn for_node(&self, view: &NodeView) -> NodeRules {
        let node = view.node;
        let external: BTreeSet<IpAddr> =
            view.peerings.iter().map(|peering| peering.data.ip).filter(|address| !self.hosts.contains(address)).collect();
        let own: Vec<IpAddr> = node_addresses(node).collect();
        let families = self
            .families
            .iter()
            .filter(|rules| !rules.pools.is_empty() || own.iter().any(|address| Family::of_addr(address) == rules.family))
            .map(|rules| FamilyRules {
                external_bgp_peers: external
                    .iter()
                    .filter(|address| Family::of_addr(address) == rules.family)
                    .map(ToString::to_string)
                    .collect(),
                ..rules.clone()
            })
            .collect();
        NodeRules { node: node.name.value.clone(), cluster: self.cluster.clone(), families }
    }
}

/// Masked, sorted and without duplicates.
fn sorted_cidrs(cidrs: impl Iterator<Item = IpNet>) -> Vec<String> {
    let set: BTreeSet<IpNet> = cidrs.map(|cidr| cidr.trunc()).collect();
    set.iter().map(ToString::to_string).collect()
}

fn node_addresses(node: &calplan_model::Node) -> impl Iterator<Item = IpAddr> + '_ {
    let ipv4 = node.ipv4().map(IpAddr::V4);
    let ipv6 = node.ipv6_address.as_ref().map(|address| IpAddr::V6(address.addr()));
    ipv4.into_iter().chain(ipv6)
}

/// The fewest prefixes that hold exactly `addresses`: nothing more, nothing less. A prefix of
/// one address is written as the address.
fn exact_cover(addresses: &BTreeSet<IpAddr>) -> Vec<String> {
    let networks: Vec<IpNet> = addresses.iter().map(|address| IpNet::from(*address)).collect();
    IpNet::aggregate(&networks)
        .into_iter()
        .map(|net| if net.prefix_len() == net.max_prefix_len() { net.addr().to_string() } else { net.to_string() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_hosts_merge_into_exact_prefixes() {
        let addresses: BTreeSet<IpAddr> = ["10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.9", "10.0.1.0", "2001:db8::1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(exact_cover(&addresses), ["10.0.0.4/30", "10.0.0.9", "10.0.1.0", "2001:db8::1"]);
    }
}
