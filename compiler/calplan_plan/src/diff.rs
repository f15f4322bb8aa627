//! Comparing resources and files: what calplan compares, what it writes, and the unified diff
//! a reviewer reads.
//!
//! A resource is compared through its *view*: the spec with Calico's defaults applied, without
//! server-managed metadata, and for a `Node` only the parts calplan manages (`spec.bgp`'s
//! address, AS and cluster ID, and the labels the intent declares or calplan adds). What it
//! writes is the live object with those parts replaced, so fields calplan does not manage
//! (orchRefs, tunnel addresses, other labels) survive.

use crate::plan::Content;
use calplan_calico::resources::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Labels calplan manages on every node, beyond those the intent declares.
pub const MANAGED_LABELS: &[&str] = &[calplan_model::lower::ROUTE_REFLECTOR_LABEL, calplan_model::lower::ROUTE_REFLECTOR_CLUSTER_LABEL];

/// The label keys calplan manages on a node, given the node it wants.
pub fn managed_label_keys(desired: Option<&CalicoNode>) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = MANAGED_LABELS.iter().map(|key| key.to_string()).collect();
    if let Some(node) = desired {
        keys.extend(node.metadata.labels.keys().cloned());
    }
    keys
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|text| !text.is_empty())
}

fn normalized_cidr(text: &str) -> String {
    text.parse::<ipnet::IpNet>().map_or_else(|_| text.to_string(), |cidr| cidr.to_string())
}

/// What calplan compares of a resource. `label_keys` limits a Node's labels to those managed.
pub fn view(resource: &Resource, label_keys: &BTreeSet<String>) -> Value {
    let mut value = match resource {
        Resource::IpPool(pool) => {
            let spec = &pool.spec;
            let mut uses = spec.effective_allowed_uses();
            uses.sort();
            let mut view = json!({
                "cidr": normalized_cidr(&spec.cidr),
                "blockSize": spec.effective_block_size(),
                "ipipMode": spec.ipip_mode.unwrap_or_default().as_str(),
                "vxlanMode": spec.vxlan_mode.unwrap_or_default().as_str(),
                "natOutgoing": spec.nat_outgoing.unwrap_or(false),
                "disabled": spec.disabled.unwrap_or(false),
                "disableBGPExport": spec.disable_bgp_export.unwrap_or(false),
                "nodeSelector": spec.effective_node_selector(),
                "allowedUses": uses,
                "assignmentMode": spec.assignment_mode.as_deref().unwrap_or("Automatic"),
            });
            if let Some(selector) = non_empty(&spec.namespace_selector) {
                view["namespaceSelector"] = json!(selector);
            }
            view
        }
        Resource::BgpPeer(peer) => {
            let spec = &peer.spec;
            let mut view = serde_json::to_value(spec).expect("peers serialize");
            let object = view.as_object_mut().expect("an object");
            for key in ["node", "nodeSelector", "peerIP", "peerSelector", "nextHopMode", "reachableBy"] {
                if object.get(key).and_then(Value::as_str) == Some("") {
                    object.remove(key);
                }
            }
            object.entry("sourceAddress").or_insert(json!("UseNodeIP"));
            object.entry("reversePeering").or_insert(json!("Auto"));
            view
        }
        Resource::BgpConfiguration(configuration) => {
            let spec = &configuration.spec;
            let mut view = serde_json::to_value(spec).expect("configurations serialize");
            let object = view.as_object_mut().expect("an object");
            object.insert("nodeToNodeMeshEnabled".into(), json!(spec.effective_mesh()));
            object.insert("asNumber".into(), json!(spec.effective_as_number().0));
            object.entry("logSeverityScreen").or_insert(json!("Info"));
            view
        }
        Resource::BgpFilter(filter) => serde_json::to_value(&filter.spec).expect("filters serialize"),
        Resource::Node(node) => {
            let bgp = node.spec.bgp.clone().unwrap_or_default();
            let labels: serde_json::Map<String, Value> = node
                .metadata
                .labels
                .iter()
                .filter(|(key, _)| label_keys.contains(*key))
                .map(|(key, value)| (key.clone(), json!(value)))
                .collect();
            json!({
                "labels": labels,
                "bgp": {
                    "asNumber": bgp.as_number.map(|number| number.0),
                    "ipv4Address": bgp.ipv4_address,
                    "ipv6Address": bgp.ipv6_address,
                    "routeReflectorClusterID": non_empty(&bgp.route_reflector_cluster_id),
                },
            })
        }
    };
    strip_nulls(&mut value);
    value
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(object) => {
            object.retain(|_, child| !child.is_null());
            object.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// The object to write: the desired resource on top of the live one, keeping the server's
/// metadata (for compare-and-swap) and every field calplan does not manage.
pub fn merged(current: Option<&Resource>, desired: &Resource) -> Resource {
    let Some(current) = current else { return desired.clone() };
    let mut merged = match (current, desired) {
        (Resource::Node(live), Resource::Node(wanted)) => {
            let mut node = live.clone();
            let keys = managed_label_keys(Some(wanted));
            node.metadata.labels.retain(|key, _| !keys.contains(key));
            node.metadata.labels.extend(wanted.metadata.labels.clone());
            let mut bgp = node.spec.bgp.clone().unwrap_or_default();
            let wanted_bgp = wanted.spec.bgp.clone().unwrap_or_default();
            bgp.as_number = wanted_bgp.as_number;
            bgp.ipv4_address = wanted_bgp.ipv4_address;
            bgp.ipv6_address = wanted_bgp.ipv6_address;
            bgp.route_reflector_cluster_id = wanted_bgp.route_reflector_cluster_id;
            node.spec.bgp = Some(bgp);
            Resource::Node(node)
        }
        _ => desired.clone(),
    };
    let live = current.metadata();
    let metadata = merged.metadata_mut();
    metadata.resource_version = live.resource_version.clone();
    metadata.uid = live.uid.clone();
    metadata.creation_timestamp = live.creation_timestamp.clone();
    for (key, value) in &live.annotations {
        metadata.annotations.entry(key.clone()).or_insert_with(|| value.clone());
    }
    merged
}

/// What a reviewer sees of a resource: its spec as it would be written (for a `Node`, only
/// the parts calplan manages), without the defaults `view` fills in for comparison.
pub fn display(resource: &Resource, label_keys: &BTreeSet<String>) -> Value {
    let mut value = match resource {
        Resource::Node(_) => view(resource, label_keys),
        other => other.to_json().get("spec").cloned().unwrap_or(Value::Null),
    };
    strip_nulls(&mut value);
    value
}

/// The texts a resource change's diff compares: each side's reviewable view ([`display`]),
/// with the label keys of the Node it leaves (or removes). A side that is not a `kind`
/// resource shows as its JSON, so nothing in a plan is ever hidden from its diff.
pub fn resource_texts(kind: &str, before: Option<&Content>, after: Option<&Content>) -> (String, String) {
    if kind == calplan_calico::installation::KIND {
        return (installation_text(before), installation_text(after));
    }
    let parse = |content: Option<&Content>| match content {
        Some(Content::Resource { value }) => ResourceKind::from_kind(kind).and_then(|kind| Resource::from_json(kind, value.clone()).ok()),
        _ => None,
    };
    let (old, new) = (parse(before), parse(after));
    let label_keys = managed_label_keys(match new.as_ref().or(old.as_ref()) {
        Some(Resource::Node(node)) => Some(node),
        _ => None,
    });
    let text = |content: Option<&Content>, resource: Option<&Resource>| match (content, resource) {
        (None, _) => String::new(),
        (Some(_), Some(resource)) => view_yaml(&display(resource, &label_keys)),
        (Some(Content::Resource { value }), None) => view_yaml(value),
        (Some(Content::File { text }), None) => text.clone(),
    };
    (text(before, old.as_ref()), text(after, new.as_ref()))
}

/// What a reviewer sees of the operator's Installation: the part calplan manages, its pools.
fn installation_text(content: Option<&Content>) -> String {
    match content {
        Some(Content::Resource { value }) => view_yaml(&json!({
            "spec": { "calicoNetwork": { "ipPools": calplan_calico::installation::managed_part(value) } }
        })),
        Some(Content::File { text }) => text.clone(),
        None => String::new(),
    }
}

/// A unified diff between two texts, headed with what changes.
pub fn unified(name: &str, before: &str, after: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

/// A resource view as the YAML a reviewer reads.
pub fn view_yaml(view: &Value) -> String {
    serde_saphyr::to_string(view).expect("views serialize")
}

/// Replaces anything that looks like a secret value in text meant for people.
pub fn redact(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("password ")
                || trimmed.starts_with("define calplan_secret")
                || trimmed.contains("neighbor") && trimmed.contains(" password ")
            {
                let indent = &line[..line.len() - trimmed.len()];
                let keyword = trimmed.split_whitespace().next().unwrap_or("");
                format!("{indent}{keyword} <redacted>")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if text.ends_with('\n') { "\n" } else { "" }
}

/// A digest of what calplan compares of a resource, with every label of a Node counted, for
/// telling whether a resource changed since a plan was made.
pub fn digest(resource: &Resource) -> String {
    let mut keys = managed_label_keys(None);
    if let Resource::Node(node) = resource {
        keys.extend(node.metadata.labels.keys().cloned());
    }
    crate::current::text_digest(&view(resource, &keys).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_diffs() {
        let text = "protocol bgp x {\n  password \"hunter2\";\n  neighbor 1.2.3.4 password abc\n}\n";
        let redacted = redact(text);
        assert!(!redacted.contains("hunter2") && !redacted.contains("abc"), "{redacted}");
        assert!(redacted.ends_with("}\n"));
    }
}
