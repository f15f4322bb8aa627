//! The syntax of rules for nodes (`spec.nodeRules`) and of reflectors chosen by rule
//! (`bgp.routeReflectors[].reflectors`): what lets an intent describe thousands of nodes in a
//! handful of lines, the nodes themselves coming from the cluster.
//!
//! Values stay as written; `calplan_model::lower::node_rules` resolves and applies them.

use crate::Spanned;
use crate::intent::{AsNumberText, Autodetection};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// What every node a selector matches should have in Calico's `Node` resource.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeRule {
    /// The rule's name (a DNS-1123 subdomain), which diagnostics and plans name.
    pub name: Spanned<String>,
    /// The nodes the rule covers: a Calico selector over the nodes' own labels (those declared
    /// or read from the cluster, not those rules add).
    pub node_selector: Spanned<String>,
    /// The AS number these nodes speak, overriding the cluster's.
    pub as_number: Option<Spanned<AsNumberText>>,
    /// Labels to add to these nodes.
    #[serde(default)]
    pub labels: BTreeMap<Spanned<String>, Spanned<String>>,
    /// Make these nodes route reflectors with this cluster ID; the operator writes their
    /// BGPPeers (as for a node's own `routeReflectorClusterID`).
    #[serde(rename = "routeReflectorClusterID")]
    pub route_reflector_cluster_id: Option<Spanned<String>>,
    /// How calico-node detects these nodes' addresses, overriding
    /// `spec.nodeAddressAutodetection`.
    pub node_address_autodetection: Option<Autodetection>,
}

/// Reflectors chosen by rule rather than by name: `count` of the nodes `nodeSelector` matches,
/// per value of the label `perLabel` when given. The choice is stable: nodes that reflect for
/// this cluster in the current state keep doing so while they match, and the others are taken
/// in order of name, so a node that joins never moves an existing reflector.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReflectorSelection {
    /// The nodes that may reflect (a Calico selector over the nodes' own labels).
    pub node_selector: Spanned<String>,
    /// How many reflect (per group, with `perLabel`); default 2.
    #[schemars(range(min = 1))]
    pub count: Option<Spanned<u32>>,
    /// A label key: the eligible nodes are grouped by its value, `count` reflectors per group
    /// (for example `rack`: two reflectors in each rack).
    pub per_label: Option<Spanned<String>>,
}
