//! Rules for nodes (`spec.nodeRules`) as lowered, what they did to each node, and the nodes
//! read from the cluster they apply to.
//!
//! Lowering (`lower::node_rules`) takes the nodes' facts — the intent's `spec.nodes`, which
//! pin them, and the cluster's `Node`s from `--current` or `--nodes` — and applies the rules.
//! What the rules could not decide (two rules giving one node different values) is recorded
//! here for `calplan_validate` to report; nothing here reads a file.

use crate::model::{Autodetection, NodeId, SelectorText};
use calplan_calico::AsNumber;
use calplan_calico::resources::{CalicoNode, Resource};
use calplan_diagnostics::{Span, Spanned};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// The cluster's nodes as read from the current state or an inventory, before the intent
/// says anything about them.
#[derive(Clone, Debug, Default)]
pub struct ClusterNodes {
    /// Calico `Node`s of the current state (Calico exports, Kubernetes `Node`s with Calico's
    /// annotations, etcd, an earlier output). They join the model when the intent has
    /// `nodeRules` or lists no nodes. Shared with the state they were read from (only
    /// `Resource::Node`s): the 20,000 Nodes of an export are not copied for an intent that
    /// lists its nodes and never reads them.
    pub current: Vec<Arc<Resource>>,
    /// The nodes of `--nodes FILE`: they always join the model; where a name is also in
    /// `current`, the inventory's labels and addresses are laid over the current ones.
    pub inventory: Vec<CalicoNode>,
}

impl ClusterNodes {
    pub fn is_empty(&self) -> bool {
        self.current.is_empty() && self.inventory.is_empty()
    }

    /// `current` of nodes read on their own.
    pub fn shared(nodes: impl IntoIterator<Item = CalicoNode>) -> Vec<Arc<Resource>> {
        nodes.into_iter().map(|node| Arc::new(Resource::Node(node))).collect()
    }

    /// The current state's Nodes.
    pub fn current_nodes(&self) -> impl Iterator<Item = &CalicoNode> {
        self.current.iter().filter_map(|resource| match &**resource {
            Resource::Node(node) => Some(node),
            _ => None,
        })
    }
}

/// One rule of `spec.nodeRules`, resolved.
#[derive(Clone, Debug)]
pub struct NodeRule {
    pub name: Spanned<String>,
    pub selector: Spanned<SelectorText>,
    pub as_number: Option<Spanned<AsNumber>>,
    pub labels: BTreeMap<String, Spanned<String>>,
    pub route_reflector_cluster_id: Option<Spanned<Ipv4Addr>>,
    pub autodetection: Autodetection,
    /// The nodes the selector matches (by their own labels), in node order.
    pub nodes: Vec<NodeId>,
    pub span: Span,
}

/// Two rules that give one field of some nodes different values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleConflict {
    /// `asNumber`, `routeReflectorClusterID`, `labels.KEY`, `nodeAddressAutodetection.ipv4`.
    pub field: String,
    /// The earlier rule, whose value the nodes get, and where it sets the value.
    pub first: usize,
    pub first_value: Spanned<String>,
    /// The later rule, and where it sets its value.
    pub second: usize,
    pub second_value: Spanned<String>,
    /// Every node both select, in node order.
    pub nodes: Vec<NodeId>,
}

/// A group of nodes where a reflector selection found fewer eligible nodes than it asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReflectorShortfall {
    pub cluster_id: Ipv4Addr,
    /// The label and value that make the group (`rack=r3`), or `None` for the whole cluster.
    pub group: Option<(String, String)>,
    pub wanted: u32,
    pub found: usize,
    /// The selection's selector.
    pub span: Span,
}

/// What the rules did.
#[derive(Clone, Debug, Default)]
pub struct NodeRules {
    pub rules: Vec<NodeRule>,
    /// Each node's address autodetection where a rule sets it (else the cluster's).
    pub autodetection: BTreeMap<NodeId, Autodetection>,
    /// Nodes that came from the cluster rather than `spec.nodes` (a node in both is not).
    pub from_cluster: BTreeSet<NodeId>,
    /// Whether the node set is known: the intent lists nodes or the cluster's were read. A
    /// rule that selects nothing is only a finding then.
    pub nodes_known: bool,
    /// The route-reflector cluster ID each node has in the current state, for choosing
    /// reflectors stably.
    pub current_cluster_ids: BTreeMap<NodeId, Ipv4Addr>,
    /// The route-reflector clusters whose reflectors are chosen by selector.
    pub chosen_by_rule: BTreeSet<Ipv4Addr>,
    /// The nodes `bgp.routeReflectors` names, whose cluster ID no rule changes.
    pub pinned_cluster_ids: BTreeSet<NodeId>,
    /// The labels the intent's `spec.nodes` declare, which rules leave alone.
    pub pinned_labels: BTreeSet<(NodeId, String)>,
    pub conflicts: Vec<RuleConflict>,
    /// Groups with fewer eligible reflectors than their selection's count.
    pub shortfalls: Vec<ReflectorShortfall>,
}

/// Why a label Kubernetes would refuse is refused, for readers of node inventories.
pub fn label_problem(key: &str, value: &str) -> Option<String> {
    if let Some(problem) = crate::lower::label_key_problem(key) {
        return Some(format!("invalid label key `{key}`: {problem}"));
    }
    if !(value.is_empty() || crate::lower::is_label_name(value)) {
        return Some(format!(
            "invalid value `{value}` for label `{key}`: a value is empty or up to 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit"
        ));
    }
    None
}
