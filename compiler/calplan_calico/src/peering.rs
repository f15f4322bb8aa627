//! The BGP sessions calico-node would configure, computed from Calico resources exactly as
//! confd does (`confd/pkg/backends/calico/client.go`, `updatePeersV1`), plus the node-to-node
//! mesh as `bird.cfg.template` renders it, for the Calico release given: the differences
//! between releases are [`Release`]'s questions.
//!
//! confd iterates BGPPeers in Go map order, so when two BGPPeers produce the same peering the
//! winner is arbitrary; here BGPPeers are taken in name order so the answer is deterministic.

use crate::resources::{BgpPeer, ResourceSet, SecretKeyRef};
use crate::{AsNumber, Release, Selector, duration_seconds};
use ipnet::Ipv4Net;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// What confd knows about one Calico node.
#[derive(Clone, Debug, PartialEq)]
pub struct TopologyNode {
    pub name: String,
    pub ipv4: Option<Ipv4Addr>,
    /// The network of the node's address (`network_v4`), for CrossSubnet decisions.
    pub ipv4_network: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Addr>,
    pub as_number: Option<AsNumber>,
    /// Empty when the node is not a route reflector, as confd keeps it.
    pub rr_cluster_id: String,
    pub labels: BTreeMap<String, String>,
}

impl TopologyNode {
    pub fn is_route_reflector(&self) -> bool {
        !self.rr_cluster_id.is_empty()
    }
}

/// The global BGP settings and nodes, as confd's key-value store holds them.
#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    pub nodes: Vec<TopologyNode>,
    pub global_as: AsNumber,
    pub mesh_enabled: bool,
    pub listen_port: Option<u16>,
    /// `listenPort` of the nodes' own BGPConfigurations (`node.<name>`), by node index.
    pub node_listen_ports: BTreeMap<usize, u16>,
    pub mesh_password: Option<SecretKeyRef>,
    pub mesh_restart_time: Option<u64>,
}

impl Topology {
    /// Reads the topology from Calico resources, with Calico's defaults for what is absent.
    pub fn from_resources(resources: &ResourceSet) -> Topology {
        let configuration = resources.bgp_configuration().map(|configuration| &configuration.spec);
        let nodes = resources
            .nodes()
            .map(|node| {
                let bgp = node.spec.bgp.as_ref();
                let ipv4_net = bgp.and_then(|bgp| bgp.ipv4_address.as_deref()).and_then(parse_node_v4);
                let ipv6 =
                    bgp.and_then(|bgp| bgp.ipv6_address.as_deref()).and_then(|text| text.split('/').next().and_then(|ip| ip.parse().ok()));
                TopologyNode {
                    name: node.metadata.name.clone(),
                    ipv4: ipv4_net.map(|net| net.addr()),
                    ipv4_network: ipv4_net.map(|net| net.trunc()),
                    ipv6,
                    as_number: bgp.and_then(|bgp| bgp.as_number),
                    rr_cluster_id: bgp.and_then(|bgp| bgp.route_reflector_cluster_id.clone()).unwrap_or_default(),
                    labels: node.metadata.labels.clone(),
                }
            })
            .collect::<Vec<TopologyNode>>();
        let node_listen_ports = nodes
            .iter()
            .enumerate()
            .filter_map(|(index, node)| {
                let port = resources.node_bgp_configuration(&node.name)?.spec.listen_port.filter(|port| *port != 0)?;
                Some((index, port))
            })
            .collect();
        Topology {
            nodes,
            node_listen_ports,
            global_as: configuration.map_or(AsNumber::CALICO_DEFAULT, |spec| spec.effective_as_number()),
            mesh_enabled: configuration.is_none_or(|spec| spec.effective_mesh()),
            listen_port: configuration.and_then(|spec| spec.listen_port).filter(|port| *port != 0),
            mesh_password: configuration.and_then(|spec| spec.node_mesh_password.as_ref()).map(|holder| holder.secret_key_ref.clone()),
            mesh_restart_time: configuration.and_then(|spec| spec.node_mesh_max_restart_time.as_deref()).and_then(duration_seconds),
        }
    }

    pub fn node_as(&self, node: &TopologyNode) -> AsNumber {
        node.as_number.unwrap_or(self.global_as)
    }

    /// The port a node listens on: its own BGPConfiguration's, else the cluster's; 0 when
    /// neither sets one (BIRD's 179).
    pub fn node_port(&self, node_index: usize) -> u16 {
        self.node_listen_ports.get(&node_index).copied().or(self.listen_port).unwrap_or(0)
    }

    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|node| node.name == name)
    }
}

/// `ipv4Address` as Calico stores it: `a.b.c.d/len`, or a bare address read as `/32`.
fn parse_node_v4(text: &str) -> Option<Ipv4Net> {
    text.parse::<Ipv4Net>().ok().or_else(|| text.parse::<Ipv4Addr>().ok().map(Ipv4Net::from))
}

/// An address family. A dual-stack node has one session per family with each mesh peer
/// (`bird.cfg`'s over IPv4, `bird6.cfg`'s over IPv6), each with its own `passive`, so sessions
/// looked up by remote node must be looked up by family too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }
}

/// How `calicoctl node status` labels a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum PeerType {
    #[serde(rename = "node-to-node mesh")]
    Mesh,
    #[serde(rename = "global")]
    Global,
    #[serde(rename = "node specific")]
    NodeSpecific,
}

impl PeerType {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerType::Mesh => "node-to-node mesh",
            PeerType::Global => "global",
            PeerType::NodeSpecific => "node specific",
        }
    }

    /// The prefix of the BIRD protocol name.
    pub fn protocol_prefix(self) -> &'static str {
        match self {
            PeerType::Mesh => "Mesh",
            PeerType::Global => "Global",
            PeerType::NodeSpecific => "Node",
        }
    }
}

/// Where a peering comes from, for explanations.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeeringOrigin {
    Mesh,
    /// The BGPPeer of that name.
    Peer(String),
    /// The automatic reverse of the BGPPeer of that name.
    Reverse(String),
}

/// One peering's data as confd stores it (`bgpPeer` in `client.go`), before the local node's
/// point of view (passive, rr client) is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerData {
    pub ip: IpAddr,
    pub as_number: AsNumber,
    /// Explicit or inherited port; 0 when unset.
    pub port: u16,
    pub rr_cluster_id: String,
    pub calico_node: bool,
    pub password: Option<SecretKeyRef>,
    pub source_address: bool,
    pub restart_time: Option<u64>,
    pub keep_next_hop: bool,
    pub next_hop_mode: Option<String>,
    pub ttl_security: u8,
    pub num_allow_local_as: u32,
    pub reachable_by: Option<IpAddr>,
    pub filters: Vec<String>,
    /// `localASNumber` (3.31; peers given by `peerIP` or a local workload only, as confd).
    pub local_as_number: Option<AsNumber>,
    /// A peering with a local workload (`localWorkloadSelector`, 3.30): rendered as
    /// `Local_Workload_<ip>`, passive.
    pub local_bgp_peer: bool,
    pub origin: PeeringOrigin,
}

impl PeerData {
    /// confd's key suffix: `<ip>` or `<ip>-<port>`, omitting ports 0 and 179.
    pub fn key(&self) -> String {
        match self.port {
            0 | 179 => self.ip.to_string(),
            port => format!("{}-{port}", self.ip),
        }
    }
}

/// A session as one node's BIRD would configure it. The peer's data is shared by every node
/// that configures the same peering (one instance per BGPPeer and remote end, or per mesh
/// peer), so a node's sessions cost a pointer each, however many nodes have them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peering {
    pub peer_type: PeerType,
    pub data: Arc<PeerData>,
    /// The remote Calico node, when the peer is one.
    pub remote_node: Option<usize>,
    pub passive: bool,
    pub rr_client: bool,
    /// The peer's AS differs from the node's (from 3.31, from the peering's `localASNumber`
    /// when it has one).
    pub external: bool,
    /// The node's own route-reflector cluster ID, for `rr cluster id`.
    pub local_cluster_id: Arc<str>,
}

/// BIRD's protocol name: `Mesh_10_0_0_1`, `Global_fd00__1`, `Node_10_0_0_2_port_178`.
pub fn protocol_name(peer_type: PeerType, data: &PeerData) -> String {
    let id = match data.ip {
        IpAddr::V4(ip) => ip.to_string().replace('.', "_"),
        IpAddr::V6(ip) => ip.to_string().replace(':', "_"),
    };
    let prefix = if data.local_bgp_peer { "Local_Workload" } else { peer_type.protocol_prefix() };
    if peer_type != PeerType::Mesh && data.port != 0 { format!("{prefix}_{id}_port_{}", data.port) } else { format!("{prefix}_{id}") }
}

/// One of a node's global or node-specific sessions, borrowed from the shared peering data:
/// what the checks that read every node's sessions use, at no copy per session.
#[derive(Clone, Copy, Debug)]
pub struct SessionRef<'a> {
    pub peer_type: PeerType,
    pub data: &'a Arc<PeerData>,
    /// The remote Calico node, when the peer is one.
    pub remote_node: Option<usize>,
    pub passive: bool,
    pub rr_client: bool,
    pub external: bool,
}

impl SessionRef<'_> {
    /// BIRD's protocol name, as [`Peering::protocol_name`].
    pub fn protocol_name(&self) -> String {
        protocol_name(self.peer_type, self.data)
    }
}

impl Peering {
    /// BIRD's protocol name: `Mesh_10_0_0_1`, `Global_fd00__1`, `Node_10_0_0_2_port_178`.
    pub fn protocol_name(&self) -> String {
        protocol_name(self.peer_type, &self.data)
    }

    /// The family of the session's addresses.
    pub fn family(&self) -> Family {
        Family::of(self.data.ip)
    }

    /// The address `calicoctl node status` prints, quirks included: it turns the protocol
    /// name's underscores back into dots, so a port suffix shows as `.port.N`.
    pub fn status_address(&self) -> String {
        let name = self.protocol_name();
        let rest = name.split_once('_').map_or("", |(_, rest)| rest);
        match self.data.ip {
            IpAddr::V4(_) => rest.replace('_', "."),
            IpAddr::V6(_) => rest.replace('_', ":"),
        }
    }
}

/// A workload Felix lists in a node's endpoint status files (`/var/run/calico/endpoint-status/`)
/// as selected for local BGP peering: confd on that node peers with it through the BGPPeer it
/// names (3.30's `localWorkloadSelector`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalWorkload {
    /// The node whose files list it.
    pub node: String,
    /// The status file's name.
    pub file: String,
    pub bgp_peer_name: String,
    /// The address of the first of `ipv4Nets` and of `ipv6Nets`.
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

/// Every node's sessions, described rather than materialised: each distinct peering's data
/// is kept once and shared by the nodes that configure it, and a node's sessions are built
/// when asked for ([`Peerings::for_node`]). A BGPPeer from every node to 40 reflectors is
/// 40 shared entries and its reverse one per node, not one per session and end.
#[derive(Clone, Debug)]
pub struct Peerings {
    pub release: Release,
    /// The parts are shared (`Arc`): the planner keeps a copy per stage, and at 20,000 nodes a
    /// deep copy of the topology and every node's peer list is a tenth of a second each.
    pub topology: Arc<Topology>,
    /// Global peers, for every node, in key order.
    global: Arc<Vec<SharedPeer>>,
    /// Global peerings with a node's local workloads, which only that node's confd sees, in
    /// key order; empty without endpoint status files.
    local_global: Arc<BTreeMap<usize, Vec<SharedPeer>>>,
    /// Every node-specific peering's data, once, with its confd key.
    shared: Arc<Vec<SharedPeer>>,
    /// Node-specific peers per node: indices into `shared`, in key order, one per key.
    node_specific: Arc<Vec<Vec<u32>>>,
    /// The mesh peering with each node, per family (IPv4, IPv6), for nodes other members mesh
    /// with: it depends on the remote node only.
    mesh_data: Arc<Vec<[Option<Arc<PeerData>>; 2]>>,
    /// The nodes a mesh member meshes with (non-reflectors with an address), by name.
    mesh_members: Arc<Vec<usize>>,
    /// Each node's route-reflector cluster ID, shared by its sessions.
    local_cluster_ids: Arc<Vec<Arc<str>>>,
    /// What confd would log and skip: unparsable selectors, malformed peer IPs.
    pub problems: Vec<String>,
    by_name: Arc<HashMap<String, usize>>,
}

/// A peering's data with its confd key and the Calico node at its address, if any.
#[derive(Clone, Debug)]
struct SharedPeer {
    key: String,
    data: Arc<PeerData>,
    remote_node: Option<usize>,
}

impl Peerings {
    /// Computes the peerings for a set of resources, as the release's confd does.
    pub fn compute(resources: &ResourceSet, release: Release) -> Peerings {
        Peerings::compute_with_local_workloads(resources, release, &[])
    }

    /// Computes the peerings, with the local workloads the nodes' endpoint status files list.
    pub fn compute_with_local_workloads(resources: &ResourceSet, release: Release, workloads: &[LocalWorkload]) -> Peerings {
        let topology = Topology::from_resources(resources);
        let mut peers: Vec<&BgpPeer> = resources.peers().collect();
        peers.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let mut computer = Computer {
            release,
            topology: &topology,
            global: BTreeMap::new(),
            local_global: BTreeMap::new(),
            workloads,
            shared: Vec::new(),
            emitted: vec![Vec::new(); topology.nodes.len()],
            problems: Vec::new(),
            selector_cache: HashMap::new(),
            node_ips: topology
                .nodes
                .iter()
                .flat_map(|node| node.ipv4.map(IpAddr::V4).into_iter().chain(node.ipv6.map(IpAddr::V6)))
                .collect(),
        };
        for global_pass in [true, false] {
            for peer in &peers {
                computer.forward(peer, global_pass);
            }
        }
        for peer in &peers {
            computer.reverse(peer);
        }
        let Computer { global, local_global, mut shared, emitted, problems, .. } = computer;
        let node_specific = first_per_key(&shared, emitted);
        let mut by_address = HashMap::new();
        let mut by_name = HashMap::new();
        for (index, node) in topology.nodes.iter().enumerate() {
            for address in node.ipv4.map(IpAddr::V4).into_iter().chain(node.ipv6.map(IpAddr::V6)) {
                by_address.entry(address).or_insert(index);
            }
            by_name.insert(node.name.clone(), index);
        }
        let mut global: Vec<SharedPeer> =
            global.into_iter().map(|(key, data)| SharedPeer { key, data: Arc::new(data), remote_node: None }).collect();
        let local_global: BTreeMap<usize, Vec<SharedPeer>> = local_global
            .into_iter()
            .map(|(node, peers)| {
                (node, peers.into_iter().map(|(key, data)| SharedPeer { key, data: Arc::new(data), remote_node: None }).collect())
            })
            .collect();
        for peer in global.iter_mut().chain(shared.iter_mut()) {
            peer.remote_node = by_address.get(&peer.data.ip).copied();
        }
        let mesh_members: Vec<usize> = if topology.mesh_enabled {
            let mut members: Vec<usize> = (0..topology.nodes.len())
                .filter(|&index| {
                    let node = &topology.nodes[index];
                    (node.ipv4.is_some() || node.ipv6.is_some()) && !node.is_route_reflector()
                })
                .collect();
            members.sort_by(|a, b| topology.nodes[*a].name.cmp(&topology.nodes[*b].name));
            members
        } else {
            Vec::new()
        };
        let mut mesh_data = vec![[None, None]; topology.nodes.len()];
        for &index in &mesh_members {
            let other = &topology.nodes[index];
            let addresses = [other.ipv4.map(IpAddr::V4), other.ipv6.map(IpAddr::V6)];
            for (slot, address) in addresses.into_iter().enumerate() {
                mesh_data[index][slot] = address.map(|ip| Arc::new(mesh_peer_data(&topology, index, ip)));
            }
        }
        let local_cluster_ids = topology.nodes.iter().map(|node| Arc::from(node.rr_cluster_id.as_str())).collect();
        Peerings {
            release,
            topology: Arc::new(topology),
            global: Arc::new(global),
            local_global: Arc::new(local_global),
            shared: Arc::new(shared),
            node_specific: Arc::new(node_specific),
            mesh_data: Arc::new(mesh_data),
            mesh_members: Arc::new(mesh_members),
            local_cluster_ids: Arc::new(local_cluster_ids),
            problems,
            by_name: Arc::new(by_name),
        }
    }

    /// The global peerings as confd stores them, by key (`<ip>` or `<ip>-<port>`), including
    /// the ones that point at a node itself, which `bird.cfg` lists as skipped.
    pub fn global_peers(&self) -> impl Iterator<Item = (&str, &PeerData)> {
        self.global.iter().map(|peer| (peer.key.as_str(), &*peer.data))
    }

    /// The global peerings one node's confd stores, in key order: every node's, and the ones
    /// with its own local workloads.
    pub fn global_peers_of(&self, node_index: usize) -> Vec<(&str, &PeerData)> {
        self.global_of(node_index).into_iter().map(|peer| (peer.key.as_str(), &*peer.data)).collect()
    }

    fn global_of(&self, node_index: usize) -> Vec<&SharedPeer> {
        let mut peers: Vec<&SharedPeer> = self.global.iter().collect();
        if let Some(local) = self.local_global.get(&node_index) {
            peers.extend(local);
            peers.sort_by(|a, b| a.key.cmp(&b.key));
        }
        peers
    }

    /// One node's node-specific peerings as confd stores them, in key order, self-peerings
    /// included.
    pub fn node_specific_peers(&self, node_index: usize) -> impl Iterator<Item = (&str, &PeerData)> {
        self.node_specific[node_index].iter().map(|&id| {
            let shared = &self.shared[id as usize];
            (shared.key.as_str(), &*shared.data)
        })
    }

    /// The index of the node of that name.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Whether this node takes part in the node-to-node mesh (as confd renders it).
    pub fn in_mesh(&self, node: usize) -> bool {
        let node = &self.topology.nodes[node];
        self.topology.mesh_enabled && !node.is_route_reflector()
    }

    /// The nodes a mesh member peers with over the mesh: every other non-reflector with an
    /// address, by name.
    pub fn mesh_peers(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        let enabled = self.in_mesh(node);
        self.mesh_members.iter().copied().filter(move |&index| enabled && index != node)
    }

    /// The node's sessions in the order its `bird.cfg` lists them: mesh (by node name), global
    /// (by key), node-specific (by key). Peerings to the node itself are left out, as the
    /// template skips them.
    pub fn for_node(&self, node_index: usize) -> Vec<Peering> {
        let mut sessions = self.mesh_for_node(node_index);
        sessions.extend(self.explicit_for_node(node_index));
        sessions
    }

    /// The node's node-to-node mesh sessions, by node name.
    pub fn mesh_for_node(&self, node_index: usize) -> Vec<Peering> {
        let node = &self.topology.nodes[node_index];
        let node_as = self.topology.node_as(node);
        // bird.cfg's mesh over IPv4 addresses, then bird6.cfg's over IPv6 ones.
        let own_ips = [node.ipv4.map(IpAddr::V4), node.ipv6.map(IpAddr::V6)];
        let mut sessions = Vec::new();
        for (slot, own_ip) in own_ips.into_iter().enumerate() {
            let Some(own_ip) = own_ip else { continue };
            // Formatted once: confd compares the two addresses as strings, not as numbers.
            let own_text = own_ip.to_string();
            for other_index in self.mesh_peers(node_index) {
                let Some(data) = &self.mesh_data[other_index][slot] else { continue };
                if data.ip == own_ip {
                    continue;
                }
                sessions.push(Peering {
                    peer_type: PeerType::Mesh,
                    external: data.as_number != node_as,
                    passive: data.ip.to_string() > own_text,
                    rr_client: false,
                    remote_node: Some(other_index),
                    local_cluster_id: self.local_cluster_ids[node_index].clone(),
                    data: data.clone(),
                });
            }
        }
        sessions
    }

    /// The node's global and node-specific sessions, in `bird.cfg` order.
    pub fn explicit_for_node(&self, node_index: usize) -> Vec<Peering> {
        let cluster_id = &self.local_cluster_ids[node_index];
        self.explicit_sessions(node_index)
            .map(|session| Peering {
                peer_type: session.peer_type,
                data: session.data.clone(),
                remote_node: session.remote_node,
                passive: session.passive,
                rr_client: session.rr_client,
                external: session.external,
                local_cluster_id: cluster_id.clone(),
            })
            .collect()
    }

    /// The node's global and node-specific sessions, in `bird.cfg` order, borrowed.
    pub fn explicit_sessions(&self, node_index: usize) -> impl Iterator<Item = SessionRef<'_>> + '_ {
        let node = &self.topology.nodes[node_index];
        let node_as = self.topology.node_as(node);
        let explicit = self
            .global_of(node_index)
            .into_iter()
            .map(|peer| (PeerType::Global, peer))
            .chain(self.node_specific[node_index].iter().map(|&id| (PeerType::NodeSpecific, &self.shared[id as usize])));
        explicit.filter_map(move |(peer_type, peer)| {
            let data = &peer.data;
            let own_ip = match data.ip {
                IpAddr::V4(_) => node.ipv4.map(IpAddr::V4),
                IpAddr::V6(_) => node.ipv6.map(IpAddr::V6),
            }?;
            if data.ip == own_ip {
                return None;
            }
            let effective_as = data.local_as_number.filter(|number| self.release.local_as() && *number != AsNumber(0)).unwrap_or(node_as);
            let external = data.as_number != effective_as;
            Some(SessionRef {
                peer_type,
                passive: data.local_bgp_peer
                    || peer_type == PeerType::Global && data.calico_node && data.ip.to_string() > own_ip.to_string(),
                rr_client: !external && node.is_route_reflector() && data.rr_cluster_id != node.rr_cluster_id,
                remote_node: peer.remote_node,
                external,
                data,
            })
        })
    }
}

/// The data of the mesh session with node `index` at address `ip`, as every other member sees it.
fn mesh_peer_data(topology: &Topology, index: usize, ip: IpAddr) -> PeerData {
    let other = &topology.nodes[index];
    PeerData {
        ip,
        as_number: topology.node_as(other),
        port: topology.node_port(index),
        rr_cluster_id: other.rr_cluster_id.clone(),
        calico_node: true,
        password: topology.mesh_password.clone(),
        source_address: true,
        restart_time: topology.mesh_restart_time,
        keep_next_hop: false,
        next_hop_mode: None,
        ttl_security: 0,
        num_allow_local_as: 0,
        reachable_by: None,
        filters: Vec::new(),
        local_as_number: None,
        local_bgp_peer: false,
        origin: PeeringOrigin::Mesh,
    }
}

/// Each node's node-specific peerings as confd keeps them: in key order, the first emitted for
/// a key winning. `emitted` lists indices into `shared` per node, in emission order.
fn first_per_key(shared: &[SharedPeer], emitted: Vec<Vec<u32>>) -> Vec<Vec<u32>> {
    // Keys are compared through their rank among all keys, so that sorting a reflector's
    // thousands of peerings compares integers, not strings.
    let mut keys: Vec<&str> = shared.iter().map(|peer| peer.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let rank_of: HashMap<&str, u32> = keys.iter().enumerate().map(|(rank, key)| (*key, rank as u32)).collect();
    let ranks: Vec<u32> = shared.iter().map(|peer| rank_of[peer.key.as_str()]).collect();
    emitted
        .into_iter()
        .map(|mut ids| {
            // Stable: of two peerings with one key, the first emitted stays first.
            ids.sort_by_key(|&id| ranks[id as usize]);
            ids.dedup_by_key(|id| ranks[*id as usize]);
            ids.shrink_to_fit();
            ids
        })
        .collect()
}

/// A node's mesh sessions of one family, by remote node. The key must hold the family: keyed
/// by node alone, a dual-stack peer's IPv6 session would stand in for its IPv4 one.
pub fn mesh_by_remote_node(sessions: &[Peering], family: Family) -> HashMap<usize, &Peering> {
    sessions
        .iter()
        .filter(|peering| peering.peer_type == PeerType::Mesh && peering.family() == family)
        .filter_map(|peering| Some((peering.remote_node?, peering)))
        .collect()
}

struct Computer<'a> {
    release: Release,
    topology: &'a Topology,
    global: BTreeMap<String, PeerData>,
    /// Global peerings with local workloads, per node whose files list them.
    local_global: BTreeMap<usize, BTreeMap<String, PeerData>>,
    workloads: &'a [LocalWorkload],
    shared: Vec<SharedPeer>,
    /// Per node, the node-specific peerings emitted for it, in order (indices into `shared`).
    emitted: Vec<Vec<u32>>,
    problems: Vec<String>,
    selector_cache: HashMap<String, Option<Vec<usize>>>,
    node_ips: std::collections::HashSet<IpAddr>,
}

impl Computer<'_> {
    /// The nodes a selector matches; `None` (and a problem noted) when it does not parse.
    fn matching(&mut self, text: &str, what: &str, peer: &str) -> Vec<usize> {
        if let Some(cached) = self.selector_cache.get(text) {
            return cached.clone().unwrap_or_default();
        }
        let result = match Selector::parse(text) {
            Ok(selector) => Some(
                self.topology.nodes.iter().enumerate().filter(|(_, node)| selector.matches(&node.labels)).map(|(index, _)| index).collect(),
            ),
            Err(error) => {
                self.problems.push(format!("BGPPeer `{peer}`: {what} `{text}` does not parse ({error}); confd matches no node"));
                None
            }
        };
        self.selector_cache.insert(text.to_string(), result.clone());
        result.unwrap_or_default()
    }

    fn emit_global(&mut self, data: PeerData) {
        self.global.entry(data.key()).or_insert(data);
    }

    /// A peering with one of `node`'s local workloads, global or node-specific, as that node's
    /// confd stores it: an existing global entry for the key wins.
    fn emit_local(&mut self, node: usize, data: PeerData, global: bool) {
        let key = data.key();
        let local_global = self.local_global.entry(node).or_default();
        if self.global.contains_key(&key) || local_global.contains_key(&key) {
            return;
        }
        if global {
            local_global.insert(key, data);
        } else {
            self.emit_nodes(&[node], data);
        }
    }

    /// Gives each of `nodes` the node-specific peering `data`, kept once for all of them.
    /// A peering whose key a global one has is left out, as confd's key-value store holds one.
    fn emit_nodes(&mut self, nodes: &[usize], data: PeerData) {
        if nodes.is_empty() {
            return;
        }
        let key = data.key();
        if self.global.contains_key(&key) {
            return;
        }
        let id = u32::try_from(self.shared.len()).expect("fewer than 2^32 peerings");
        self.shared.push(SharedPeer { key, data: Arc::new(data), remote_node: None });
        for &node in nodes {
            self.emitted[node].push(id);
        }
    }

    fn local_nodes(&mut self, peer: &BgpPeer) -> Vec<usize> {
        let spec = &peer.spec;
        match (spec.node_selector.as_deref().filter(|s| !s.is_empty()), spec.node.as_deref().filter(|s| !s.is_empty())) {
            (Some(selector), _) => self.matching(selector, "nodeSelector", &peer.metadata.name),
            (None, Some(name)) => self.topology.node_index(name).into_iter().collect(),
            (None, None) => Vec::new(),
        }
    }

    /// confd's `nodeAsBGPPeers`: a Calico node as the remote end of a peering.
    fn node_as_peers(&self, node_index: usize, v4: bool, v6: bool, peer: &BgpPeer, origin: PeeringOrigin) -> Vec<PeerData> {
        let node = &self.topology.nodes[node_index];
        let addresses =
            v4.then_some(node.ipv4.map(IpAddr::V4)).flatten().into_iter().chain(v6.then_some(node.ipv6.map(IpAddr::V6)).flatten());
        addresses
            .map(|ip| {
                let mut data = self.configured(peer, origin.clone());
                data.ip = ip;
                data.as_number = self.topology.node_as(node);
                data.port = self.topology.node_port(node_index);
                data.rr_cluster_id = node.rr_cluster_id.clone();
                data.calico_node = false;
                // confd's `nodeAsBGPPeers` sets no local AS, and before 3.30 no next-hop mode.
                data.local_as_number = None;
                if !self.release.next_hop_mode() {
                    data.keep_next_hop = false;
                    data.next_hop_mode = None;
                }
                data
            })
            .collect()
    }

    /// The fields every peering of a BGPPeer shares (`setPeerConfigFieldsFromV3Resource` and
    /// the per-peer options).
    fn configured(&self, peer: &BgpPeer, origin: PeeringOrigin) -> PeerData {
        let spec = &peer.spec;
        let next_hop_mode = spec.next_hop_mode.clone().filter(|mode| !mode.is_empty() && self.release.next_hop_mode());
        PeerData {
            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            as_number: spec.as_number.unwrap_or(AsNumber(0)),
            port: 0,
            rr_cluster_id: String::new(),
            calico_node: false,
            password: spec.password.as_ref().map(|holder| holder.secret_key_ref.clone()),
            source_address: spec.source_address.as_deref() != Some("None"),
            restart_time: spec.max_restart_time.as_deref().and_then(duration_seconds),
            keep_next_hop: next_hop_mode.is_none() && spec.keep_original_next_hop.unwrap_or(false),
            next_hop_mode,
            ttl_security: spec.ttl_security.unwrap_or(0),
            num_allow_local_as: spec.num_allowed_local_as_numbers.unwrap_or(0),
            reachable_by: spec.reachable_by.as_deref().and_then(|text| text.parse().ok()),
            filters: spec.filters.clone().unwrap_or_default(),
            local_as_number: spec.local_as_number.filter(|_| self.release.local_as()),
            local_bgp_peer: false,
            origin,
        }
    }

    fn forward(&mut self, peer: &BgpPeer, global_pass: bool) {
        if global_pass != peer.spec.is_global_for_confd() {
            return;
        }
        let name = peer.metadata.name.clone();
        let local_nodes = self.local_nodes(peer);
        let mut remotes = Vec::new();
        if self.release.local_workload_peers() && peer.spec.local_workload_selector.as_deref().is_some_and(|s| !s.is_empty()) {
            // Peerings with the node's own workloads, which Felix lists in the node's endpoint
            // status files: only that node's confd sees them (`localBGPPeerDataAsBGPPeers`).
            for workload in self.workloads.iter().filter(|workload| workload.bgp_peer_name == name) {
                let Some(node) = self.topology.node_index(&workload.node) else { continue };
                if !global_pass && !local_nodes.contains(&node) {
                    continue;
                }
                let addresses = workload.ipv4.map(IpAddr::V4).into_iter().chain(workload.ipv6.map(IpAddr::V6));
                for ip in addresses {
                    let data = PeerData {
                        ip,
                        as_number: peer.spec.as_number.unwrap_or(AsNumber(0)),
                        port: 0,
                        rr_cluster_id: String::new(),
                        calico_node: false,
                        password: None,
                        source_address: false,
                        restart_time: None,
                        keep_next_hop: false,
                        next_hop_mode: None,
                        ttl_security: 0,
                        num_allow_local_as: 0,
                        reachable_by: None,
                        filters: peer.spec.filters.clone().unwrap_or_default(),
                        local_as_number: peer.spec.local_as_number.filter(|_| self.release.local_as()),
                        local_bgp_peer: true,
                        origin: PeeringOrigin::Peer(name.clone()),
                    };
                    self.emit_local(node, data, global_pass);
                }
            }
            return;
        } else if let Some(selector) = peer.spec.peer_selector.as_deref().filter(|s| !s.is_empty()) {
            for node in self.matching(selector, "peerSelector", &name) {
                remotes.extend(self.node_as_peers(node, true, true, peer, PeeringOrigin::Peer(name.clone())));
            }
        } else {
            let Some((ip, mut port)) = peer.spec.peer_ip.as_deref().and_then(split_ip_port) else {
                self.problems.push(format!("BGPPeer `{name}`: PeerIP is not assigned or is malformed; confd skips it"));
                return;
            };
            let as_number = peer.spec.as_number.unwrap_or(AsNumber(0));
            if port == 0
                && let Some(&node) = self.nodes_with_ip_port_and_as(ip, as_number, 0).first()
            {
                port = self.topology.node_port(node);
            }
            let mut data = self.configured(peer, PeeringOrigin::Peer(name.clone()));
            if let Some(gateway) = data.reachable_by
                && gateway.is_ipv4() != ip.is_ipv4()
            {
                self.problems.push(format!("BGPPeer `{name}`: ReachableBy address family does not match PeerIP; confd skips it"));
                return;
            }
            data.ip = ip;
            data.port = port;
            data.calico_node = self.node_ips.contains(&ip);
            remotes.push(data);
        }
        for data in remotes {
            if global_pass {
                self.emit_global(data);
            } else {
                self.emit_nodes(&local_nodes, data);
            }
        }
    }

    fn reverse(&mut self, peer: &BgpPeer) {
        if self.release.reverse_peering() && peer.spec.reverse_peering.as_deref() == Some("Manual") {
            return;
        }
        if self.release.local_workload_peers() && peer.spec.local_workload_selector.as_deref().is_some_and(|s| !s.is_empty()) {
            return;
        }
        let name = peer.metadata.name.clone();
        let (local_nodes, v4, v6) = if let Some(selector) = peer.spec.peer_selector.as_deref().filter(|s| !s.is_empty()) {
            (self.matching(selector, "peerSelector", &name), true, true)
        } else {
            let Some((ip, port)) = peer.spec.peer_ip.as_deref().and_then(split_ip_port) else { return };
            let nodes = self.nodes_with_ip_port_and_as(ip, peer.spec.as_number.unwrap_or(AsNumber(0)), port);
            (nodes, ip.is_ipv4(), ip.is_ipv6())
        };
        if local_nodes.is_empty() {
            return;
        }
        let peer_nodes =
            match (peer.spec.node_selector.as_deref().filter(|s| !s.is_empty()), peer.spec.node.as_deref().filter(|s| !s.is_empty())) {
                (Some(selector), _) => self.matching(selector, "nodeSelector", &name),
                (None, Some(node)) => self.topology.node_index(node).into_iter().collect(),
                (None, None) => (0..self.topology.nodes.len()).collect(),
            };
        let remotes: Vec<PeerData> =
            peer_nodes.iter().flat_map(|&node| self.node_as_peers(node, v4, v6, peer, PeeringOrigin::Reverse(name.clone()))).collect();
        for data in remotes {
            self.emit_nodes(&local_nodes, data);
        }
    }

    /// confd's `nodesWithIPPortAndAS`: the Calico nodes a `peerIP` BGPPeer points at.
    fn nodes_with_ip_port_and_as(&self, ip: IpAddr, as_number: AsNumber, port: u16) -> Vec<usize> {
        let wanted_as = if as_number == AsNumber(0) { self.topology.global_as } else { as_number };
        self.topology
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, node)| node.ipv4.map(IpAddr::V4) == Some(ip) || node.ipv6.map(IpAddr::V6) == Some(ip))
            .filter(|(_, node)| self.topology.node_as(node) == wanted_as)
            // confd's test, kept as written: a node's own port must match, and then the
            // cluster's port too when one is set.
            .filter(|(index, _)| {
                port == 0
                    || !(self.topology.node_listen_ports.get(index).is_some_and(|node_port| *node_port != port)
                        || self.topology.listen_port.is_some_and(|listen| listen != port))
            })
            .map(|(index, _)| index)
            .collect()
    }
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT`, as confd's `parseIPPort`.
pub fn split_ip_port(text: &str) -> Option<(IpAddr, u16)> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some((ip, 0));
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, port) = rest.split_once("]:")?;
        return Some((IpAddr::V6(ip.parse().ok()?), port.parse().ok()?));
    }
    let (ip, port) = text.rsplit_once(':')?;
    Some((IpAddr::V4(ip.parse().ok()?), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{Resource, ResourceKind};
    use serde_json::json;

    fn node(name: &str, ip: &str, rr: Option<&str>, labels: serde_json::Value) -> Resource {
        let mut bgp = json!({"ipv4Address": ip});
        if let Some(rr) = rr {
            bgp["routeReflectorClusterID"] = json!(rr);
        }
        Resource::from_json(ResourceKind::Node, json!({"metadata": {"name": name, "labels": labels}, "spec": {"bgp": bgp}})).unwrap()
    }

    fn peer(name: &str, spec: serde_json::Value) -> Resource {
        Resource::from_json(ResourceKind::BgpPeer, json!({"metadata": {"name": name}, "spec": spec})).unwrap()
    }

    fn table(peerings: &Peerings, node: usize) -> Vec<(String, &'static str)> {
        let mut rows: Vec<_> = peerings.for_node(node).iter().map(|p| (p.status_address(), p.peer_type.as_str())).collect();
        rows.sort();
        rows
    }

    /// The seed cluster as it stood: mesh off, two reflectors, and `node-peer-to-rr` whose
    /// `!has(route-reflector)` was read as an empty selector.
    fn seed(mesh: bool) -> ResourceSet {
        let mut set = ResourceSet::default();
        let rr = json!({"route-reflector": "true"});
        for (name, ip, reflector) in [
            ("m1", "21.49.22.4/24", false),
            ("m2", "21.49.22.5/24", false),
            ("m3", "21.49.22.6/24", false),
            ("n1", "21.49.22.7/24", true),
            ("n2", "21.49.22.8/24", true),
            ("n3", "21.49.22.9/24", false),
        ] {
            set.insert(node(name, ip, reflector.then_some("1.0.0.1"), if reflector { rr.clone() } else { json!({}) }));
        }
        set.insert(peer("rr-to-rr-peer", json!({"nodeSelector": "has(route-reflector)", "peerSelector": "has(route-reflector)"})));
        set.insert(peer("node-peer-to-rr", json!({"nodeSelector": "", "peerSelector": "has(route-reflector)"})));
        set.insert(
            Resource::from_json(
                ResourceKind::BgpConfiguration,
                json!({"metadata": {"name": "default"}, "spec": {"nodeToNodeMeshEnabled": mesh, "asNumber": 63400}}),
            )
            .unwrap(),
        );
        set
    }

    #[test]
    fn the_seed_tables() {
        let peerings = Peerings::compute(&seed(false), Release::DEFAULT);
        let global = |ip: &str| (ip.to_string(), "global");
        let specific = |ip: &str| (ip.to_string(), "node specific");
        assert_eq!(table(&peerings, 0), [global("21.49.22.7"), global("21.49.22.8")]);
        assert_eq!(
            table(&peerings, 3),
            [specific("21.49.22.4"), specific("21.49.22.5"), specific("21.49.22.6"), global("21.49.22.8"), specific("21.49.22.9")]
        );
        let n1 = peerings.for_node(3);
        let to_m1 = n1.iter().find(|p| p.status_address() == "21.49.22.4").unwrap();
        assert!(to_m1.rr_client && !to_m1.passive);
        let to_n2 = n1.iter().find(|p| p.status_address() == "21.49.22.8").unwrap();
        assert!(!to_n2.rr_client, "reflectors sharing a cluster ID are not each other's clients");
    }

    #[test]
    fn mesh_skips_reflectors_and_is_passive_towards_higher_strings() {
        let mut set = seed(true);
        set.resources.retain(|(kind, _), _| *kind != ResourceKind::BgpPeer);
        let peerings = Peerings::compute(&set, Release::DEFAULT);
        let m1: Vec<_> = peerings.for_node(0).iter().map(|p| (p.status_address(), p.passive)).collect();
        assert_eq!(
            m1,
            [("21.49.22.5".into(), true), ("21.49.22.6".into(), true), ("21.49.22.9".into(), true)],
            "reflectors are out of the mesh"
        );
        assert!(peerings.for_node(3).is_empty(), "a reflector renders no mesh");
        // Lexicographic, not numeric: "10.0.0.10" < "10.0.0.9".
        let mut set = ResourceSet::default();
        set.insert(node("a", "10.0.0.9/24", None, json!({})));
        set.insert(node("b", "10.0.0.10/24", None, json!({})));
        let peerings = Peerings::compute(&set, Release::DEFAULT);
        assert!(!peerings.for_node(0)[0].passive);
        assert!(peerings.for_node(1)[0].passive);
    }

    #[test]
    fn documented_design_is_node_specific_everywhere() {
        let mut set = seed(false);
        set.resources.retain(|(kind, _), _| *kind != ResourceKind::BgpPeer);
        set.insert(peer("peer-with-route-reflectors", json!({"nodeSelector": "all()", "peerSelector": "route-reflector == 'true'"})));
        let peerings = Peerings::compute(&set, Release::DEFAULT);
        let specific = |ip: &str| (ip.to_string(), "node specific");
        assert_eq!(table(&peerings, 0), [specific("21.49.22.7"), specific("21.49.22.8")]);
        assert_eq!(table(&peerings, 4).len(), 5);
    }

    #[test]
    fn dual_stack_nodes_mesh_over_both_families() {
        let mut set = ResourceSet::default();
        for (name, v4, v6) in [("a", "10.0.0.1/24", "2001::101/64"), ("b", "10.0.0.2/24", "2001::102/64"), ("c", "10.0.0.3/24", "")] {
            let mut bgp = json!({"ipv4Address": v4});
            if !v6.is_empty() {
                bgp["ipv6Address"] = json!(v6);
            }
            set.insert(Resource::from_json(ResourceKind::Node, json!({"metadata": {"name": name}, "spec": {"bgp": bgp}})).unwrap());
        }
        let peerings = Peerings::compute(&set, Release::DEFAULT);
        let names: Vec<String> = peerings.for_node(0).iter().map(Peering::protocol_name).collect();
        assert_eq!(names, ["Mesh_10_0_0_2", "Mesh_10_0_0_3", "Mesh_2001__102"]);
        assert!(peerings.for_node(0)[2].passive, "\"2001::102\" > \"2001::101\"");
        assert_eq!(peerings.for_node(2).len(), 2, "an IPv4-only node meshes over IPv4 only");
    }

    #[test]
    fn peer_ip_with_port_and_ipv6_names() {
        let mut set = ResourceSet::default();
        set.insert(node("a", "10.0.0.1/24", None, json!({})));
        set.insert(peer("tor", json!({"peerIP": "10.0.0.254:1179", "asNumber": 65001})));
        let peerings = Peerings::compute(&set, Release::DEFAULT);
        let sessions = peerings.for_node(0);
        assert_eq!(sessions[0].protocol_name(), "Global_10_0_0_254_port_1179");
        assert_eq!(sessions[0].status_address(), "10.0.0.254.port.1179");
        assert!(sessions[0].external);
        assert!(!sessions[0].passive);
    }

    #[test]
    fn releases_differ_where_their_confd_did() {
        let mut set = ResourceSet::default();
        set.insert(node("a", "10.0.0.1/24", None, json!({"rr": "true"})));
        set.insert(node("b", "10.0.0.2/24", None, json!({})));
        set.insert(peer(
            "to-rr",
            json!({"nodeSelector": "all()", "peerSelector": "has(rr)", "keepOriginalNextHop": true, "reversePeering": "Manual"}),
        ));
        set.insert(peer("tor", json!({"peerIP": "10.0.0.254", "asNumber": 64512, "localASNumber": 65001, "nextHopMode": "Self"})));
        let b_to_a = |release| {
            let peerings = Peerings::compute(&set, release);
            peerings.explicit_for_node(1).into_iter().find(|p| p.data.ip.to_string() == "10.0.0.1").unwrap()
        };
        assert!(!b_to_a(Release::V3_29).data.keep_next_hop, "3.29's nodeAsBGPPeers keeps no next hop");
        assert!(b_to_a(Release::V3_30).data.keep_next_hop);
        let tor = |release| {
            Peerings::compute(&set, release).explicit_for_node(0).into_iter().find(|p| p.data.ip.to_string() == "10.0.0.254").unwrap()
        };
        assert_eq!(tor(Release::V3_29).data.next_hop_mode, None, "nextHopMode came with 3.30");
        assert_eq!(tor(Release::V3_30).data.next_hop_mode.as_deref(), Some("Self"));
        assert!(!tor(Release::V3_30).external, "before 3.31 the node's own AS (64512) decides");
        assert!(tor(Release::V3_31).external, "from 3.31 the peering's localASNumber (65001) does");
        assert_eq!(tor(Release::V3_31).data.local_as_number, Some(AsNumber(65001)));
        assert_eq!(tor(Release::V3_30).data.local_as_number, None);

        // Reverse peering: `b` peers with `a` by selector; `a` gets the reverse automatically,
        // unless 3.30's `reversePeering: Manual` says otherwise.
        let mut set = ResourceSet::default();
        set.insert(node("a", "10.0.0.1/24", None, json!({"rr": "true"})));
        set.insert(node("b", "10.0.0.2/24", None, json!({})));
        set.insert(peer("to-rr", json!({"nodeSelector": "!has(rr)", "peerSelector": "has(rr)", "reversePeering": "Manual"})));
        let a_sessions = |release| Peerings::compute(&set, release).explicit_for_node(0).len();
        assert_eq!(a_sessions(Release::V3_29), 1, "before 3.30 every peering is mirrored");
        assert_eq!(a_sessions(Release::V3_30), 0);
    }

    /// A local workload peers with the node whose endpoint status files list it, and only
    /// that node: through a global BGPPeer on any such node, through a node-specific one only
    /// where the BGPPeer selects the node. None before 3.30, none without the files.
    #[test]
    fn local_workloads_peer_with_their_own_node_only() {
        let mut set = ResourceSet::default();
        set.insert(node("a", "10.0.0.1/24", None, json!({"workers": "yes"})));
        set.insert(node("b", "10.0.0.2/24", None, json!({})));
        set.insert(peer("global-workloads", json!({"localWorkloadSelector": "app == 'router'", "asNumber": 64516})));
        set.insert(peer(
            "worker-workloads",
            json!({"localWorkloadSelector": "app == 'router'", "asNumber": 64517, "nodeSelector": "has(workers)"}),
        ));
        let workload = |node: &str, peer: &str, ip: &str| LocalWorkload {
            node: node.into(),
            file: format!("{node}-{ip}"),
            bgp_peer_name: peer.into(),
            ipv4: Some(ip.parse().unwrap()),
            ipv6: None,
        };
        let workloads = [
            workload("a", "global-workloads", "192.168.0.10"),
            workload("b", "global-workloads", "192.168.1.10"),
            workload("a", "worker-workloads", "192.168.0.11"),
            workload("b", "worker-workloads", "192.168.1.11"),
        ];
        let sessions = |release, workloads: &[LocalWorkload], node| -> Vec<(String, bool)> {
            Peerings::compute_with_local_workloads(&set, release, workloads)
                .explicit_for_node(node)
                .iter()
                .map(|session| (session.protocol_name(), session.passive))
                .collect()
        };
        assert_eq!(
            sessions(Release::V3_30, &workloads, 0),
            [("Local_Workload_192_168_0_10".to_string(), true), ("Local_Workload_192_168_0_11".to_string(), true)]
        );
        assert_eq!(sessions(Release::V3_30, &workloads, 1), [("Local_Workload_192_168_1_10".to_string(), true)]);
        assert!(sessions(Release::V3_30, &[], 0).is_empty());
        assert!(sessions(Release::V3_29, &workloads, 0).is_empty());
        let peerings = Peerings::compute_with_local_workloads(&set, Release::V3_30, &workloads);
        assert_eq!(peerings.global_peers().count(), 0, "no node's workload is every node's peer");
        assert_eq!(peerings.global_peers_of(1).iter().map(|(key, _)| *key).collect::<Vec<_>>(), ["192.168.1.10"]);
    }
}
