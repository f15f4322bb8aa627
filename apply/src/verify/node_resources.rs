//! Drift in the cluster's Calico `Node` resources: what the intent (its node rules, its
//! reflectors, its pinned facts) says a node's `Node` should hold — labels, AS number,
//! route-reflector cluster ID, addresses — against the `Node` the current state has. A node
//! that joined the cluster since the last apply shows here with exactly what its rules imply.
//!
//! Pure: the resources come from `--current`, read by the CLI.

use super::Difference;
use calplan_calico::resources::{CalicoNode, NodeBgpSpec, Resource, ResourceKind, ResourceSet};
use std::collections::{BTreeMap, BTreeSet};

/// Where these differences were found, for reports.
const LOCATION: &str = "Calico Node (--current)";

/// Each node's differences, by node name; nodes without any are left out.
pub fn drift(desired: &ResourceSet, current: &ResourceSet) -> BTreeMap<String, Vec<Difference>> {
    let mut drift = BTreeMap::new();
    for wanted in desired.nodes() {
        let name = &wanted.metadata.name;
        let differences = match current.get(ResourceKind::Node, name) {
            Some(Resource::Node(live)) => compare(wanted, live),
            _ => vec![Difference::new("node", "Calico Node").expected("exists", None).at(Some(LOCATION.to_string()))],
        };
        if !differences.is_empty() {
            drift.insert(name.clone(), differences);
        }
    }
    drift
}

/// The parts calplan manages: the labels the intent gives the node (and the reflector markers
/// calplan sets), and `spec.bgp`'s AS number, cluster ID and addresses.
fn compare(wanted: &CalicoNode, live: &CalicoNode) -> Vec<Difference> {
    let mut differences = Vec::new();
    let mut keys: BTreeSet<&str> = wanted.metadata.labels.keys().map(String::as_str).collect();
    for marker in [calplan_model::lower::ROUTE_REFLECTOR_LABEL, calplan_model::lower::ROUTE_REFLECTOR_CLUSTER_LABEL] {
        if live.metadata.labels.contains_key(marker) {
            keys.insert(marker);
        }
    }
    for key in keys {
        let (expected, found) = (wanted.metadata.labels.get(key), live.metadata.labels.get(key));
        if expected != found {
            differences.push(difference(&format!("label `{key}`"), expected.cloned(), found.cloned()));
        }
    }
    let empty = NodeBgpSpec::default();
    let (expected, found) = (wanted.spec.bgp.as_ref().unwrap_or(&empty), live.spec.bgp.as_ref().unwrap_or(&empty));
    let non_empty = |text: &Option<String>| text.clone().filter(|text| !text.is_empty());
    let fields = [
        ("asNumber", expected.as_number.map(|number| number.to_string()), found.as_number.map(|number| number.to_string())),
        ("routeReflectorClusterID", non_empty(&expected.route_reflector_cluster_id), non_empty(&found.route_reflector_cluster_id)),
        ("ipv4Address", non_empty(&expected.ipv4_address), non_empty(&found.ipv4_address)),
        ("ipv6Address", non_empty(&expected.ipv6_address), non_empty(&found.ipv6_address)),
    ];
    for (field, expected, found) in fields {
        if expected != found {
            differences.push(difference(&format!("spec.bgp.{field}"), expected, found));
        }
    }
    differences
}

fn difference(subject: &str, expected: Option<String>, found: Option<String>) -> Difference {
    let mut difference = Difference::new("node", subject).at(Some(LOCATION.to_string()));
    if let Some(expected) = expected {
        difference = difference.expected(expected, None);
    }
    if let Some(found) = found {
        difference.live = Some(found);
    }
    difference
}

#[cfg(test)]
mod tests {
    use super::*;
    use calplan_calico::resources::{API_VERSION, NodeSpec, ObjectMeta};

    fn node(labels: &[(&str, &str)], as_number: Option<u32>, cluster_id: Option<&str>) -> CalicoNode {
        let mut metadata = ObjectMeta::named("r2-w1");
        metadata.labels = labels.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
        let bgp = NodeBgpSpec {
            as_number: as_number.map(calplan_calico::AsNumber),
            ipv4_address: Some("10.0.2.3/16".into()),
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

    fn set(node: CalicoNode) -> ResourceSet {
        let mut set = ResourceSet::default();
        set.insert(Resource::Node(node));
        set
    }

    #[test]
    fn a_joined_node_lacking_what_its_rules_imply_is_drift_and_other_labels_are_not() {
        let wanted = node(&[("rack", "r2"), ("bgp-group", "r2")], Some(64512), None);
        let live = node(&[("rack", "r2"), ("kubernetes.io/os", "linux")], None, None);
        let drift = drift(&set(wanted.clone()), &set(live));
        let lines: Vec<String> = drift["r2-w1"].iter().map(Difference::describe).collect();
        assert_eq!(
            lines,
            [
                "Calico Node (--current): label `bgp-group`: missing, expected `r2`",
                "Calico Node (--current): spec.bgp.asNumber: missing, expected `64512`",
            ]
        );
        assert!(super::drift(&set(wanted.clone()), &set(wanted)).is_empty());
    }

    #[test]
    fn a_reflector_the_intent_retires_is_drift() {
        let wanted = node(&[("rack", "r2")], None, None);
        let live = node(&[("rack", "r2"), ("route-reflector", "true")], None, Some("244.0.2.1"));
        let lines: Vec<String> = drift(&set(wanted), &set(live))["r2-w1"].iter().map(Difference::describe).collect();
        assert_eq!(
            lines,
            [
                "Calico Node (--current): label `route-reflector`: not in the intent: `true`",
                "Calico Node (--current): spec.bgp.routeReflectorClusterID: not in the intent: `244.0.2.1`",
            ]
        );
    }
}
