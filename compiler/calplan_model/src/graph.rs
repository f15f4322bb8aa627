//! The BGP topology as a graph: nodes, the node-to-node mesh, route-reflector clusters,
//! external peers and routers, joined by the sessions Calico would configure.
//!
//! A session is one undirected edge holding both ends' configuration, because a BGP session
//! only comes up when both ends configure it, with each other's AS, and not both passively.
//! The mesh is a hub vertex rather than n(n−1)/2 edges: its sessions are symmetric by
//! construction, and the graph stays small enough to draw and to search at 5,000 nodes.

use crate::model::{Model, NodeId, RouterId};
use calplan_calico::AsNumber;
use calplan_calico::peering::{PeerData, PeerType, Peerings, SessionRef};
use foldhash::fast::FixedState;
use petgraph::graph::{EdgeIndex, NodeIndex, UnGraph};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Vertex {
    Node(NodeId),
    /// The node-to-node mesh: every member peers with every other.
    Mesh,
    RouteReflectorCluster(Ipv4Addr),
    /// A peer outside the cluster that calplan does not configure.
    ExternalPeer {
        address: IpAddr,
        as_number: AsNumber,
    },
    Router(RouterId),
}

/// One end's view of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionEnd {
    pub peer_type: PeerType,
    /// The AS this end expects of the other.
    pub expected_as: AsNumber,
    pub passive: bool,
    /// This end treats the other as its route-reflector client.
    pub rr_client: bool,
    pub protocol: Protocol,
}

/// The BIRD protocol an end configures. A node's end points at the peering data its sessions
/// share, so the graph holds a pointer per end, not a name: a cluster of 20,000 nodes has
/// 1.6 million ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// A Calico node's, named as calico-node names it (`Node_10_0_0_2`).
    Peering(Arc<PeerData>),
    /// A router's, by its own name.
    Named(Box<String>),
}

impl SessionEnd {
    /// The BIRD protocol's name: `Node_10_0_0_2`, `calico_node_1`.
    pub fn protocol_name(&self) -> String {
        match &self.protocol {
            Protocol::Peering(data) => calplan_calico::peering::protocol_name(self.peer_type, data),
            Protocol::Named(name) => name.to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edge {
    /// A session between the two endpoints; `ends[0]` belongs to the lower vertex index.
    Session {
        ends: [Option<SessionEnd>; 2],
        external: bool,
    },
    MeshMember,
    ClusterMember,
}

/// Why a configured session would not come up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionProblem {
    /// Only one end configures the session; the other refuses the connection.
    OneSided,
    /// An end expects another AS than the other speaks.
    AsMismatch { expected: AsNumber, actual: AsNumber },
    /// Both ends wait for the other to connect.
    BothPassive,
}

#[derive(Clone, Debug)]
pub struct BgpGraph {
    pub graph: UnGraph<Vertex, Edge>,
    pub node_vertices: Vec<NodeIndex>,
    pub mesh: Option<NodeIndex>,
    pub router_vertices: BTreeMap<RouterId, NodeIndex>,
}

impl BgpGraph {
    pub fn build(model: &Model, peerings: &Peerings) -> BgpGraph {
        let mut graph = UnGraph::new_undirected();
        let node_vertices: Vec<NodeIndex> = model.nodes.iter().map(|node| graph.add_node(Vertex::Node(node.id))).collect();
        let mut router_vertices = BTreeMap::new();
        let mut by_address: HashMap<IpAddr, NodeIndex, FixedState> = HashMap::default();
        for node in &model.nodes {
            let vertex = node_vertices[node.id.0 as usize];
            if let Some(address) = node.ipv4() {
                by_address.insert(IpAddr::V4(address), vertex);
            }
            if let Some(address) = &node.ipv6_address {
                by_address.insert(IpAddr::V6(address.addr()), vertex);
            }
        }
        for router in &model.routers {
            let vertex = graph.add_node(Vertex::Router(router.id));
            router_vertices.insert(router.id, vertex);
            by_address.entry(router.address.addr()).or_insert(vertex);
        }
        for cluster in &model.route_reflector_clusters {
            let vertex = graph.add_node(Vertex::RouteReflectorCluster(cluster.cluster_id.value));
            for member in &cluster.nodes {
                graph.add_edge(node_vertices[member.value.0 as usize], vertex, Edge::ClusterMember);
            }
        }
        let mut mesh = None;
        // One edge per pair of vertices, found without a map of every session: node vertices
        // come first and are visited in order, so an edge with an earlier node was made while
        // that node was visited and is in its sorted `created` list; an edge made while visiting
        // this node is in `current`, by the other vertex.
        let mut created: Vec<Vec<(NodeIndex, EdgeIndex)>> = vec![Vec::new(); node_vertices.len()];
        let mut current: Vec<Option<(NodeIndex, EdgeIndex)>> = Vec::new();
        // How far each earlier node's `created` list has been read: nodes are visited in
        // vertex order, so the later node an edge is looked up for only grows, and each list
        // is read once from start to end rather than searched once per session.
        let mut read: Vec<usize> = vec![0; node_vertices.len()];
        for node in &model.nodes {
            let Some(index) = peerings.node_index(&node.name) else { continue };
            let here = node_vertices[node.id.0 as usize];
            if peerings.in_mesh(index) && node.ipv4().is_some() {
                let hub = *mesh.get_or_insert_with(|| graph.add_node(Vertex::Mesh));
                graph.add_edge(here, hub, Edge::MeshMember);
            }
            for peering in peerings.explicit_sessions(index) {
                let there = *by_address.entry(peering.data.ip).or_insert_with(|| {
                    graph.add_node(Vertex::ExternalPeer { address: peering.data.ip, as_number: peering.data.as_number })
                });
                let key = if here < there { (here, there) } else { (there, here) };
                if current.len() <= there.index() {
                    current.resize(there.index() + 1, None);
                }
                let edge = match current[there.index()] {
                    Some((visiting, edge)) if visiting == here => edge,
                    _ => {
                        let earlier = if there < here && there.index() < created.len() {
                            let (edges, at) = (&created[there.index()], &mut read[there.index()]);
                            while edges.get(*at).is_some_and(|(other, _)| *other < here) {
                                *at += 1;
                            }
                            edges.get(*at).filter(|(other, _)| *other == here).map(|(_, edge)| *edge)
                        } else {
                            None
                        };
                        let edge = earlier.unwrap_or_else(|| {
                            let edge = graph.add_edge(key.0, key.1, Edge::Session { ends: [None, None], external: false });
                            if there > here && there.index() < created.len() {
                                created[here.index()].push((there, edge));
                            }
                            edge
                        });
                        current[there.index()] = Some((here, edge));
                        edge
                    }
                };
                if let Edge::Session { ends, external } = &mut graph[edge] {
                    let slot = usize::from(here != key.0);
                    *external |= peering.external;
                    ends[slot].get_or_insert_with(|| end(&peering));
                }
            }
            created[here.index()].sort_unstable_by_key(|(other, _)| *other);
        }
        // Routers that speak BGP configure exactly the sessions the cluster side has with them.
        for router in &model.routers {
            if router.bgp.is_none() {
                continue;
            }
            let vertex = router_vertices[&router.id];
            let edges: Vec<EdgeIndex> = graph.edges(vertex).map(|edge| petgraph::visit::EdgeRef::id(&edge)).collect();
            for edge in edges {
                let (a, b) = graph.edge_endpoints(edge).expect("edge exists");
                let other = if a == vertex { b } else { a };
                let Vertex::Node(node) = graph[other] else { continue };
                let node_as = model.node_as_number(model.node(node));
                if let Edge::Session { ends, .. } = &mut graph[edge] {
                    let slot = usize::from(vertex != a.min(b));
                    ends[slot] = Some(SessionEnd {
                        peer_type: PeerType::NodeSpecific,
                        expected_as: node_as,
                        passive: false,
                        rr_client: false,
                        protocol: Protocol::Named(Box::new(format!("calico_{}", model.node(node).name.value.replace(['.', '-'], "_")))),
                    });
                }
            }
        }
        BgpGraph { graph, node_vertices, mesh, router_vertices }
    }

    /// The problem that keeps a session down, if any. `as_of` gives each vertex's own AS.
    pub fn session_problem(&self, edge: EdgeIndex, as_of: impl Fn(NodeIndex) -> Option<AsNumber>) -> Option<SessionProblem> {
        let Edge::Session { ends, .. } = &self.graph[edge] else { return None };
        let (a, b) = self.graph.edge_endpoints(edge)?;
        let (low, high) = (a.min(b), a.max(b));
        let externally_configured = |vertex: NodeIndex| matches!(self.graph[vertex], Vertex::ExternalPeer { .. });
        match ends {
            [Some(_), None] if externally_configured(high) => None,
            [None, Some(_)] if externally_configured(low) => None,
            [Some(_), None] | [None, Some(_)] => Some(SessionProblem::OneSided),
            [None, None] => Some(SessionProblem::OneSided),
            [Some(first), Some(second)] => {
                for (end, remote) in [(first, high), (second, low)] {
                    if let Some(actual) = as_of(remote)
                        && actual != end.expected_as
                    {
                        return Some(SessionProblem::AsMismatch { expected: end.expected_as, actual });
                    }
                }
                (first.passive && second.passive).then_some(SessionProblem::BothPassive)
            }
        }
    }

    /// The end of `edge` that belongs to `vertex`.
    pub fn end_of(&self, edge: EdgeIndex, vertex: NodeIndex) -> Option<&SessionEnd> {
        let Edge::Session { ends, .. } = &self.graph[edge] else { return None };
        let (a, b) = self.graph.edge_endpoints(edge)?;
        ends[usize::from(vertex != a.min(b))].as_ref()
    }
}

fn end(peering: &SessionRef) -> SessionEnd {
    SessionEnd {
        peer_type: peering.peer_type,
        expected_as: peering.data.as_number,
        passive: peering.passive,
        rr_client: peering.rr_client,
        protocol: Protocol::Peering(peering.data.clone()),
    }
}
