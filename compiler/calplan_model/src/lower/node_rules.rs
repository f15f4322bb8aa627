//! Lowering of what makes an intent scale: the cluster's own nodes joining the intent's,
//! `spec.nodeRules` applied to all of them, and reflectors chosen by rule.
//!
//! The order is fixed so that the result does not depend on how rules are written:
//! 1. the intent's `spec.nodes` (already lowered) pin facts; the cluster's nodes fill in the
//!    rest and add the nodes the intent does not list;
//! 2. every rule's selector is matched against the nodes' own labels (never the labels rules
//!    add, so no rule depends on another);
//! 3. rules set their values in the order written; a pinned value is left alone, and two rules
//!    setting one field of a node to different values are recorded as a conflict;
//! 4. reflectors chosen by selector (`route_reflectors`) see the labels rules added.
//!
//! When the intent has rules (or chooses reflectors by rule), the rules own the nodes' AS
//! numbers and cluster IDs: a cluster node's current values are not copied into the intent,
//! so a node that no rule covers any more loses them. Without rules, the cluster's values are
//! taken as they are.

use super::{Lowerer, is_dns_subdomain, is_label_name, label_key_problem};
use crate::lower::{ROUTE_REFLECTOR_CLUSTER_LABEL, ROUTE_REFLECTOR_LABEL};
use crate::model::*;
use crate::node_rules::*;
use crate::rules::*;
use calplan_calico::resources::CalicoNode;
use calplan_diagnostics::{Diagnostic, Span, Spanned};
use calplan_syntax::intent;
use calplan_syntax::node_rules as syntax;
use ipnet::{Ipv4Net, Ipv6Net};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// The reflectors a selection takes per group when it does not say.
pub const DEFAULT_REFLECTOR_COUNT: u32 = 2;

impl Lowerer<'_> {
    /// Adds the cluster's nodes to the intent's (step 1), and starts the record of what rules
    /// do.
    pub(super) fn cluster_nodes(&mut self, intent: &intent::IntentFile, cluster: &ClusterNodes, nodes: &mut Vec<Node>) -> NodeRules {
        let spec = &intent.spec;
        let chooses_by_rule = spec.bgp.as_ref().is_some_and(|bgp| bgp.route_reflectors.iter().any(|cluster| cluster.reflectors.is_some()));
        let rules_own_bgp = !spec.node_rules.is_empty() || chooses_by_rule;
        let take_current = rules_own_bgp || spec.nodes.is_empty();
        let anchor = spec.node_rules.first().map_or(intent.metadata.name.span, |rule| rule.name.span);
        let mut record = NodeRules { nodes_known: !spec.nodes.is_empty(), ..NodeRules::default() };
        // A node `bgp.routeReflectors` names has its cluster ID pinned there.
        let listed: BTreeSet<&str> = spec
            .bgp
            .iter()
            .flat_map(|bgp| &bgp.route_reflectors)
            .flat_map(|cluster| &cluster.nodes)
            .map(|name| name.value.as_str())
            .collect();
        record.pinned_cluster_ids.extend(nodes.iter().filter(|node| listed.contains(node.name.value.as_str())).map(|node| node.id));
        for node in nodes.iter() {
            record.pinned_labels.extend(node.labels.keys().map(|key| (node.id, key.clone())));
        }

        let mut read: BTreeMap<&str, CalicoNode> = BTreeMap::new();
        if take_current {
            for node in cluster.current_nodes() {
                read.insert(&node.metadata.name, node.clone());
            }
        }
        for node in &cluster.inventory {
            match read.get_mut(node.metadata.name.as_str()) {
                Some(known) => {
                    known.metadata.labels.extend(node.metadata.labels.clone());
                    let bgp = known.spec.bgp.get_or_insert_with(Default::default);
                    let from = node.spec.bgp.clone().unwrap_or_default();
                    bgp.ipv4_address = from.ipv4_address.or(bgp.ipv4_address.take());
                    bgp.ipv6_address = from.ipv6_address.or(bgp.ipv6_address.take());
                }
                None => {
                    read.insert(&node.metadata.name, node.clone());
                }
            }
        }
        record.nodes_known |= !read.is_empty();
        let current_ids: BTreeMap<&str, Ipv4Addr> = if take_current {
            cluster
                .current_nodes()
                .filter_map(|node| {
                    let id = node.spec.bgp.as_ref()?.route_reflector_cluster_id.as_deref()?.parse().ok()?;
                    Some((node.metadata.name.as_str(), id))
                })
                .collect()
        } else {
            BTreeMap::new()
        };

        for (name, calico) in read {
            if !is_dns_subdomain(name) {
                self.report(
                    Diagnostic::new(&INVALID_NAME, anchor, format!("the cluster's node `{name}` has a name Kubernetes would refuse"))
                        .label("left out of the nodes these rules apply to")
                        .help("a node name is a DNS-1123 subdomain; correct the inventory"),
                );
                continue;
            }
            let facts = self.cluster_facts(name, &calico, anchor, rules_own_bgp);
            let id = match self.node_ids.get(name) {
                Some(id) => *id,
                None => {
                    let id = NodeId(nodes.len() as u32);
                    nodes.push(Node {
                        id,
                        name: Spanned::new(name.to_string(), anchor),
                        ipv4_address: None,
                        ipv6_address: None,
                        as_number: None,
                        route_reflector_cluster_id: None,
                        labels: BTreeMap::new(),
                        interfaces: None,
                        bgp_configuration: None,
                        span: anchor,
                    });
                    self.node_ids.insert(name.to_string(), id);
                    record.from_cluster.insert(id);
                    id
                }
            };
            if let Some(cluster_id) = current_ids.get(name) {
                record.current_cluster_ids.insert(id, *cluster_id);
            }
            // What the intent pins stays; the cluster fills in the rest.
            let node = &mut nodes[id.0 as usize];
            if node.ipv4_address.is_none() {
                node.ipv4_address = facts.ipv4_address;
            }
            if node.ipv6_address.is_none() {
                node.ipv6_address = facts.ipv6_address;
            }
            if node.as_number.is_none() {
                node.as_number = facts.as_number;
            }
            if node.route_reflector_cluster_id.is_none() {
                node.route_reflector_cluster_id = facts.route_reflector_cluster_id;
            }
            for (key, value) in facts.labels {
                node.labels.entry(key).or_insert(value);
            }
        }
        record
    }

    /// What calplan takes of a cluster node: addresses, the labels Kubernetes would accept
    /// (without the markers calplan itself sets on reflectors, which the intent decides
    /// afresh), and — unless rules own them — its AS number and cluster ID.
    fn cluster_facts(&mut self, name: &str, node: &CalicoNode, anchor: Span, rules_own_bgp: bool) -> Node {
        let bgp = node.spec.bgp.clone().unwrap_or_default();
        let ipv4_address = bgp
            .ipv4_address
            .as_deref()
            .and_then(|text| text.parse::<Ipv4Net>().ok().or_else(|| text.parse::<Ipv4Addr>().ok().map(Ipv4Net::from)));
        let ipv6_address = bgp
            .ipv6_address
            .as_deref()
            .and_then(|text| text.parse::<Ipv6Net>().ok().or_else(|| text.parse::<std::net::Ipv6Addr>().ok().map(Ipv6Net::from)));
        let mut labels = BTreeMap::new();
        for (key, value) in &node.metadata.labels {
            if key == ROUTE_REFLECTOR_LABEL || key == ROUTE_REFLECTOR_CLUSTER_LABEL {
                continue;
            }
            if label_key_problem(key).is_some() || !(value.is_empty() || is_label_name(value)) {
                self.report(
                    Diagnostic::new(
                        &INVALID_LABEL,
                        anchor,
                        format!("the cluster's node `{name}` has a label `{key}` Kubernetes would refuse"),
                    )
                    .label("the label is left out")
                    .help("a label key is an optional DNS prefix and a name of up to 63 characters; correct the inventory"),
                );
                continue;
            }
            labels.insert(key.clone(), Spanned::new(value.clone(), anchor));
        }
        let (as_number, route_reflector_cluster_id) = if rules_own_bgp {
            (None, None)
        } else {
            (
                bgp.as_number.filter(|number| number.0 != 0).map(|number| Spanned::new(number, anchor)),
                bgp.route_reflector_cluster_id.as_deref().and_then(|id| id.parse::<Ipv4Addr>().ok()).map(|id| Spanned::new(id, anchor)),
            )
        };
        Node {
            id: NodeId(0),
            name: Spanned::new(name.to_string(), anchor),
            ipv4_address: ipv4_address.map(|address| Spanned::new(address, anchor)),
            ipv6_address: ipv6_address.map(|address| Spanned::new(address, anchor)),
            as_number,
            route_reflector_cluster_id,
            labels,
            interfaces: None,
            bgp_configuration: None,
            span: anchor,
        }
    }

    /// Resolves `spec.nodeRules` and applies them (steps 2 and 3).
    pub(super) fn apply_node_rules(
        &mut self,
        rules: &[syntax::NodeRule],
        cluster_wide: &Autodetection,
        nodes: &mut [Node],
        record: &mut NodeRules,
    ) {
        let own_labels: Vec<BTreeMap<String, String>> = nodes.iter().map(Node::label_values).collect();
        for rule in rules {
            self.name(&rule.name, "node rule");
            let Some(selector) = self.selector(&rule.node_selector) else { continue };
            let as_number = rule.as_number.as_ref().and_then(|text| self.as_number(text));
            let mut labels = BTreeMap::new();
            for (key, value) in &rule.labels {
                if self.label(key, value) {
                    labels.insert(key.value.clone(), value.clone());
                }
            }
            let route_reflector_cluster_id = rule.route_reflector_cluster_id.as_ref().and_then(|text| self.cluster_id(text));
            let autodetection = Autodetection {
                ipv4: rule.node_address_autodetection.as_ref().and_then(|a| a.ipv4.as_ref()).and_then(|m| self.autodetection(m)),
                ipv6: rule.node_address_autodetection.as_ref().and_then(|a| a.ipv6.as_ref()).and_then(|m| self.autodetection(m)),
            };
            let matched =
                nodes.iter().filter(|node| selector.selector.matches(&own_labels[node.id.0 as usize])).map(|node| node.id).collect();
            record.rules.push(NodeRule {
                name: rule.name.clone(),
                selector,
                as_number,
                labels,
                route_reflector_cluster_id,
                autodetection,
                nodes: matched,
                span: rule.name.span,
            });
        }

        // Who set each field of each node, to tell a conflict from agreement.
        let mut set_by: BTreeMap<(NodeId, String), (usize, Spanned<String>)> = BTreeMap::new();
        let mut conflicts: BTreeMap<(String, usize, usize, String, String), RuleConflict> = BTreeMap::new();
        for (index, rule) in record.rules.iter().enumerate() {
            let mut values: Vec<(String, Spanned<String>)> = Vec::new();
            if let Some(number) = &rule.as_number {
                values.push(("asNumber".into(), Spanned::new(number.value.to_string(), number.span)));
            }
            if let Some(id) = &rule.route_reflector_cluster_id {
                values.push(("routeReflectorClusterID".into(), Spanned::new(id.value.to_string(), id.span)));
            }
            for (key, value) in &rule.labels {
                values.push((format!("labels.{key}"), value.clone()));
            }
            if let Some(method) = &rule.autodetection.ipv4 {
                values.push(("nodeAddressAutodetection.ipv4".into(), Spanned::new(method.value.to_string(), method.span)));
            }
            if let Some(method) = &rule.autodetection.ipv6 {
                values.push(("nodeAddressAutodetection.ipv6".into(), Spanned::new(method.value.to_string(), method.span)));
            }
            for id in &rule.nodes {
                let node = &mut nodes[id.0 as usize];
                for (field, value) in &values {
                    let pinned = match field.as_str() {
                        "asNumber" => node.as_number.is_some() && !set_by.contains_key(&(*id, field.clone())),
                        "routeReflectorClusterID" => {
                            record.pinned_cluster_ids.contains(id)
                                || node.route_reflector_cluster_id.is_some() && !set_by.contains_key(&(*id, field.clone()))
                        }
                        _ => field.strip_prefix("labels.").is_some_and(|key| record.pinned_labels.contains(&(*id, key.to_string()))),
                    };
                    if pinned {
                        continue;
                    }
                    if let Some((first, first_value)) = set_by.get(&(*id, field.clone())) {
                        if first_value.value != value.value {
                            conflicts
                                .entry((field.clone(), *first, index, first_value.value.clone(), value.value.clone()))
                                .or_insert_with(|| RuleConflict {
                                    field: field.clone(),
                                    first: *first,
                                    first_value: first_value.clone(),
                                    second: index,
                                    second_value: value.clone(),
                                    nodes: Vec::new(),
                                })
                                .nodes
                                .push(*id);
                        }
                        continue;
                    }
                    set_by.insert((*id, field.clone()), (index, value.clone()));
                    match field.as_str() {
                        "asNumber" => node.as_number = rule.as_number.clone(),
                        "routeReflectorClusterID" => node.route_reflector_cluster_id = rule.route_reflector_cluster_id.clone(),
                        "nodeAddressAutodetection.ipv4" => {
                            record.autodetection.entry(*id).or_insert_with(|| cluster_wide.clone()).ipv4 = rule.autodetection.ipv4.clone();
                        }
                        "nodeAddressAutodetection.ipv6" => {
                            record.autodetection.entry(*id).or_insert_with(|| cluster_wide.clone()).ipv6 = rule.autodetection.ipv6.clone();
                        }
                        label => {
                            let key = label.strip_prefix("labels.").unwrap_or(label);
                            node.labels.insert(key.to_string(), value.clone());
                        }
                    }
                }
            }
        }
        record.conflicts = conflicts.into_values().collect();
    }

    /// The reflectors a selection chooses for cluster `cluster_id` (step 4): per group, the
    /// eligible nodes that reflect for this cluster now, then the others by name, up to the
    /// count. A node joining never displaces a reflector that still matches.
    pub(super) fn chosen_reflectors(
        &mut self,
        selection: &syntax::ReflectorSelection,
        cluster_id: Ipv4Addr,
        nodes: &[Node],
        record: &mut NodeRules,
    ) -> Vec<Spanned<NodeId>> {
        let Some(selector) = self.selector(&selection.node_selector) else { return Vec::new() };
        let per_label = selection.per_label.as_ref().and_then(|key| match label_key_problem(&key.value) {
            None => Some(key.value.clone()),
            Some(problem) => {
                self.report(
                    Diagnostic::new(&INVALID_LABEL, key.span, format!("invalid label key `{}`: {problem}", key.value))
                        .label("not a label key")
                        .help("name the label whose values group the nodes, such as `rack`"),
                );
                None
            }
        });
        if selection.per_label.is_some() && per_label.is_none() {
            return Vec::new();
        }
        let count = selection.count.as_ref().map_or(DEFAULT_REFLECTOR_COUNT, |count| count.value) as usize;
        let mut groups: BTreeMap<Option<&str>, Vec<&Node>> = BTreeMap::new();
        // Every value of the grouping label is a group, even one without an eligible node.
        match &per_label {
            Some(key) => {
                for node in nodes {
                    if let Some(value) = node.labels.get(key) {
                        groups.entry(Some(value.value.as_str())).or_default();
                    }
                }
            }
            None => {
                groups.entry(None).or_default();
            }
        }
        for node in nodes {
            let labels = node.label_values();
            if !selector.selector.matches(&labels) {
                continue;
            }
            let group = match &per_label {
                Some(key) => match node.labels.get(key) {
                    Some(value) => Some(value.value.as_str()),
                    None => continue,
                },
                None => None,
            };
            groups.entry(group).or_default().push(node);
        }
        let mut chosen = BTreeSet::new();
        for (group, members) in &groups {
            if members.len() < count && record.nodes_known {
                record.shortfalls.push(ReflectorShortfall {
                    cluster_id,
                    group: group.map(|value| (per_label.clone().unwrap_or_default(), value.to_string())),
                    wanted: count as u32,
                    found: members.len(),
                    span: selection.node_selector.span,
                });
            }
        }
        for members in groups.values_mut() {
            members.sort_by_key(|node| (record.current_cluster_ids.get(&node.id) != Some(&cluster_id), node.name.value.as_str()));
            chosen.extend(members.iter().take(count).map(|node| node.id));
        }
        chosen.into_iter().map(|id| Spanned::new(id, selection.node_selector.span)).collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::model::Model;
    use crate::node_rules::ClusterNodes;
    use calplan_calico::resources::{API_VERSION, CalicoNode, NodeBgpSpec, NodeSpec, ObjectMeta};
    use calplan_diagnostics::{Diagnostics, SourceMap};
    use std::collections::BTreeMap;

    const INTENT: &str = "apiVersion: calplan/v1\nkind: ClusterIntent\nmetadata: {name: racks}\nspec:\n  bgp:\n    nodeToNodeMesh: false\n    routeReflectors:\n      - clusterID: 244.0.0.1\n        reflectors: {nodeSelector: role == 'infra', perLabel: rack, count: 2}\n  nodeRules:\n    - {name: rack-1, nodeSelector: rack == 'r1', asNumber: 65001, labels: {group: r1}}\n";

    fn node(name: &str, labels: &[(&str, &str)], cluster_id: Option<&str>) -> CalicoNode {
        let mut metadata = ObjectMeta::named(name);
        metadata.labels = labels.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
        let bgp = NodeBgpSpec {
            ipv4_address: Some(format!("10.0.0.{}/24", name.len() + metadata.labels.len())),
            route_reflector_cluster_id: cluster_id.map(str::to_string),
            ..NodeBgpSpec::default()
        };
        CalicoNode {
            api_version: API_VERSION.into(),
            kind: "Node".into(),
            metadata,
            spec: NodeSpec { bgp: Some(bgp), extra: BTreeMap::new() },
        }
    }

    fn lowered(intent: &str, cluster: &ClusterNodes) -> (Model, Diagnostics) {
        let mut sources = SourceMap::new();
        let file = sources.add("intent.yaml", intent);
        let mut diagnostics = Diagnostics::new();
        let parsed = calplan_syntax::parse_intent(file, intent, &mut diagnostics).intent.expect("parses");
        (super::super::lower_with_cluster(file, intent, &parsed, cluster, &mut diagnostics), diagnostics)
    }

    fn reflectors(model: &Model) -> Vec<&str> {
        model.nodes.iter().filter(|node| node.is_route_reflector()).map(|node| node.name.value.as_str()).collect()
    }

    #[test]
    fn reflectors_are_chosen_per_group_by_name_without_current_state() {
        let inventory = vec![
            node("b", &[("rack", "r1"), ("role", "infra")], None),
            node("a", &[("rack", "r1"), ("role", "infra")], None),
            node("c", &[("rack", "r1"), ("role", "infra")], None),
            node("d", &[("rack", "r2"), ("role", "infra")], None),
            node("e", &[("rack", "r2")], None),
        ];
        let (model, diagnostics) = lowered(INTENT, &ClusterNodes { current: Vec::new(), inventory });
        assert!(!diagnostics.has_errors());
        assert_eq!(reflectors(&model), ["a", "b", "d"]);
        // The rule gave rack r1 its AS and label; the reflectors their markers.
        let a = model.node_by_name("a").unwrap();
        assert_eq!(a.as_number.as_ref().unwrap().value.0, 65001);
        assert_eq!(a.labels["group"].value, "r1");
        assert_eq!(a.labels["route-reflector"].value, "true");
        assert!(model.node_by_name("d").unwrap().as_number.is_none());
    }

    #[test]
    fn a_joining_node_never_moves_an_existing_reflector() {
        // `c` and `b` reflect today; `a` joins and sorts first, but the reflectors stay.
        let current = vec![
            node("b", &[("rack", "r1"), ("role", "infra"), ("route-reflector", "true")], Some("244.0.0.1")),
            node("c", &[("rack", "r1"), ("role", "infra"), ("route-reflector", "true")], Some("244.0.0.1")),
            node("a", &[("rack", "r1"), ("role", "infra")], None),
        ];
        let (model, _) = lowered(INTENT, &ClusterNodes { current: ClusterNodes::shared(current.clone()), inventory: Vec::new() });
        assert_eq!(reflectors(&model), ["b", "c"]);
        // A reflector that stops matching is replaced, by the next node by name.
        let mut changed = current;
        changed[1].metadata.labels.remove("role");
        let (model, _) = lowered(INTENT, &ClusterNodes { current: ClusterNodes::shared(changed), inventory: Vec::new() });
        assert_eq!(reflectors(&model), ["a", "b"]);
        // `c` lost its role: it stops reflecting and loses the marker label.
        assert!(!model.node_by_name("c").unwrap().labels.contains_key("route-reflector"));
    }

    #[test]
    fn the_intent_pins_what_it_writes_and_the_cluster_fills_in_the_rest() {
        let intent = format!("{INTENT}  nodes:\n    - {{name: a, asNumber: 65100, labels: {{group: pinned}}}}\n");
        let inventory = vec![node("a", &[("rack", "r1")], None)];
        let (model, diagnostics) = lowered(&intent, &ClusterNodes { current: Vec::new(), inventory });
        assert!(!diagnostics.has_errors());
        let a = model.node_by_name("a").unwrap();
        assert_eq!(a.as_number.as_ref().unwrap().value.0, 65100);
        assert_eq!(a.labels["group"].value, "pinned");
        assert_eq!(a.labels["rack"].value, "r1");
        assert!(a.ipv4_address.is_some(), "the address comes from the cluster");
        assert!(!model.node_rules.from_cluster.contains(&a.id));
    }

    #[test]
    fn current_nodes_join_only_an_intent_with_rules_or_without_nodes() {
        let listed = "apiVersion: calplan/v1\nkind: ClusterIntent\nmetadata: {name: x}\nspec:\n  nodes:\n    - {name: a, ipv4Address: 10.0.0.1/24}\n";
        let cluster = ClusterNodes { current: ClusterNodes::shared([node("z", &[], None)]), inventory: Vec::new() };
        let (model, _) = lowered(listed, &cluster);
        assert_eq!(model.nodes.len(), 1);
        let (model, _) = lowered(INTENT, &cluster);
        assert_eq!(model.nodes.len(), 1);
        assert_eq!(model.nodes[0].name.value, "z");
    }
}
