//! Drawings of the BGP graph: Graphviz dot, Mermaid, and JSON for tools.

use crate::graph::{BgpGraph, Edge, Vertex};
use crate::model::Model;
use calplan_calico::peering::PeerType;
use petgraph::visit::EdgeRef;
use serde_json::{Value, json};

fn vertex_id(graph: &BgpGraph, index: petgraph::graph::NodeIndex) -> String {
    match &graph.graph[index] {
        Vertex::Node(id) => format!("node{}", id.0),
        Vertex::Mesh => "mesh".to_string(),
        Vertex::RouteReflectorCluster(id) => format!("cluster_{}", id.to_string().replace('.', "_")),
        Vertex::ExternalPeer { address, .. } => format!("peer_{}", address.to_string().replace(['.', ':'], "_")),
        Vertex::Router(id) => format!("router{}", id.0),
    }
}

fn vertex_label(model: &Model, graph: &BgpGraph, index: petgraph::graph::NodeIndex) -> String {
    match &graph.graph[index] {
        Vertex::Node(id) => {
            let node = model.node(*id);
            let address = node.ipv4_address.as_ref().map(|a| a.addr().to_string()).unwrap_or_default();
            if node.is_route_reflector() {
                format!("{} {} (route reflector)", node.name.value, address)
            } else {
                format!("{} {}", node.name.value, address)
            }
        }
        Vertex::Mesh => "node-to-node mesh".to_string(),
        Vertex::RouteReflectorCluster(id) => format!("cluster {id}"),
        Vertex::ExternalPeer { address, as_number } => format!("peer {address} AS {as_number}"),
        Vertex::Router(id) => {
            let router = model.router(*id);
            format!("{} {} ({})", router.name.value, router.address.addr(), router.platform.as_str())
        }
    }
}

fn edge_label(edge: &Edge) -> String {
    match edge {
        Edge::Session { ends, external } => {
            let peer_type = ends.iter().flatten().next().map_or("", |end| end.peer_type.as_str());
            let client = ends.iter().flatten().any(|end| end.rr_client);
            let mut label = peer_type.to_string();
            if client {
                label.push_str(", rr client");
            }
            if *external {
                label.push_str(", eBGP");
            }
            label
        }
        Edge::MeshMember => "mesh".to_string(),
        Edge::ClusterMember => "reflects".to_string(),
    }
}

/// Graphviz `dot`.
pub fn dot(model: &Model, graph: &BgpGraph) -> String {
    let mut out = format!("graph \"{}\" {{\n  node [shape=box, fontname=\"monospace\"];\n", model.name.value);
    for index in graph.graph.node_indices() {
        let shape = match graph.graph[index] {
            Vertex::Mesh | Vertex::RouteReflectorCluster(_) => "ellipse",
            Vertex::ExternalPeer { .. } | Vertex::Router(_) => "hexagon",
            Vertex::Node(_) => "box",
        };
        out.push_str(&format!(
            "  {} [label=\"{}\", shape={shape}];\n",
            vertex_id(graph, index),
            vertex_label(model, graph, index).replace('"', "\\\"")
        ));
    }
    for edge in graph.graph.edge_references() {
        let style = match edge.weight() {
            Edge::Session { .. } => "solid",
            _ => "dashed",
        };
        out.push_str(&format!(
            "  {} -- {} [label=\"{}\", style={style}];\n",
            vertex_id(graph, edge.source()),
            vertex_id(graph, edge.target()),
            edge_label(edge.weight())
        ));
    }
    out.push_str("}\n");
    out
}

/// A Mermaid flowchart.
pub fn mermaid(model: &Model, graph: &BgpGraph) -> String {
    let mut out = String::from("flowchart LR\n");
    for index in graph.graph.node_indices() {
        let label = vertex_label(model, graph, index).replace('"', "'");
        let (open, close) = match graph.graph[index] {
            Vertex::Mesh | Vertex::RouteReflectorCluster(_) => ("((", "))"),
            Vertex::ExternalPeer { .. } | Vertex::Router(_) => ("{{", "}}"),
            Vertex::Node(_) => ("[", "]"),
        };
        out.push_str(&format!("  {}{open}\"{label}\"{close}\n", vertex_id(graph, index)));
    }
    for edge in graph.graph.edge_references() {
        let arrow = match edge.weight() {
            Edge::Session { .. } => "---",
            _ => "-.-",
        };
        out.push_str(&format!(
            "  {} {arrow}|\"{}\"| {}\n",
            vertex_id(graph, edge.source()),
            edge_label(edge.weight()),
            vertex_id(graph, edge.target())
        ));
    }
    out
}

/// `{"vertices": [...], "edges": [...]}`.
pub fn json(model: &Model, graph: &BgpGraph) -> String {
    let vertices: Vec<Value> = graph
        .graph
        .node_indices()
        .map(|index| {
            let (kind, extra) = match &graph.graph[index] {
                Vertex::Node(id) => {
                    let node = model.node(*id);
                    ("node", json!({
                        "name": node.name.value,
                        "address": node.ipv4_address.as_ref().map(|a| a.addr().to_string()),
                        "routeReflectorClusterID": node.route_reflector_cluster_id.as_ref().map(|c| c.to_string()),
                    }))
                }
                Vertex::Mesh => ("mesh", json!({})),
                Vertex::RouteReflectorCluster(id) => ("routeReflectorCluster", json!({"clusterID": id.to_string()})),
                Vertex::ExternalPeer { address, as_number } => ("externalPeer", json!({"address": address.to_string(), "asNumber": as_number.0})),
                Vertex::Router(id) => {
                    let router = model.router(*id);
                    ("router", json!({"name": router.name.value, "address": router.address.addr().to_string(), "platform": router.platform.as_str()}))
                }
            };
            let mut vertex = json!({"id": vertex_id(graph, index), "kind": kind, "label": vertex_label(model, graph, index)});
            if let (Some(target), Some(source)) = (vertex.as_object_mut(), extra.as_object()) {
                target.extend(source.clone());
            }
            vertex
        })
        .collect();
    let edges: Vec<Value> = graph
        .graph
        .edge_references()
        .map(|edge| {
            let (kind, detail) = match edge.weight() {
                Edge::Session { ends, external } => (
                    "session",
                    json!({
                        "peerType": ends.iter().flatten().next().map(|end| end.peer_type).unwrap_or(PeerType::NodeSpecific),
                        "external": external,
                        "ends": ends.iter().map(|end| end.as_ref().map(|end| json!({
                            "protocol": end.protocol_name(),
                            "passive": end.passive,
                            "rrClient": end.rr_client,
                            "expectedAS": end.expected_as.0,
                        }))).collect::<Vec<_>>(),
                    }),
                ),
                Edge::MeshMember => ("meshMember", json!({})),
                Edge::ClusterMember => ("clusterMember", json!({})),
            };
            let mut value = json!({"from": vertex_id(graph, edge.source()), "to": vertex_id(graph, edge.target()), "kind": kind});
            if let (Some(target), Some(source)) = (value.as_object_mut(), detail.as_object()) {
                target.extend(source.clone());
            }
            value
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&json!({"vertices": vertices, "edges": edges})).expect("graph serializes");
    text.push('\n');
    text
}
