//! A node inventory (`--nodes FILE`): the cluster's nodes, for an intent that takes them from
//! the cluster. Two forms are read:
//! - what `kubectl get nodes -o yaml` prints (Kubernetes `Node`s, their labels and Calico's
//!   annotations, read as [`super::kubernetes`] reads them);
//! - a plain list, as a YAML sequence or under `nodes:`, of `{name, ipv4Address, ipv6Address,
//!   labels}`.
//!
//! Every name, address and label is held to the grammar Kubernetes and Calico hold it to here,
//! at its line and column, before it can reach an artifact.

use super::Read;
use super::calico_yaml::UNREADABLE_STATE;
use super::validate::INVALID_STATE;
use calplan_calico::resources::{API_VERSION, CalicoNode, NodeBgpSpec, NodeSpec, ObjectMeta};
use calplan_diagnostics::{Diagnostic, Diagnostics, FileId};
use calplan_syntax::yaml::Node;
use calplan_syntax::{TagPolicy, read_yaml, repair_tags};
use ipnet::{Ipv4Net, Ipv6Net};
use std::collections::BTreeMap;

const FIELDS: &[&str] = &["name", "ipv4Address", "ipv6Address", "labels"];

/// Reads an inventory; its nodes in name order.
pub fn read(file: FileId, text: &str) -> Read<Vec<CalicoNode>> {
    if super::kubernetes::sniff(text) {
        return super::kubernetes::read(file, text).map_value(|state| state.state.resources.nodes().cloned().collect());
    }
    let mut diagnostics = Diagnostics::new();
    let Some(mut documents) = read_yaml(file, text, &mut diagnostics) else {
        return Read { value: None, diagnostics };
    };
    let mut nodes: BTreeMap<String, CalicoNode> = BTreeMap::new();
    for document in &mut documents {
        repair_tags(document, text, TagPolicy::KeepCalicosReading, &mut diagnostics);
        let items = document.as_sequence().or_else(|| document.get("nodes").and_then(Node::as_sequence));
        let Some(items) = items else {
            diagnostics.push(
                Diagnostic::new(&UNREADABLE_STATE, document.head_span(), "not a node inventory")
                    .label("expected a list of nodes")
                    .help("give `kubectl get nodes -o yaml`, or a list of `{name, ipv4Address, ipv6Address, labels}`"),
            );
            continue;
        };
        for item in items {
            if let Some(node) = read_item(item, &mut diagnostics) {
                if nodes.contains_key(&node.metadata.name) {
                    diagnostics.push(
                        Diagnostic::new(&INVALID_STATE, item.head_span(), format!("node `{}` is listed twice", node.metadata.name))
                            .label("listed again here")
                            .help("list each node once"),
                    );
                    continue;
                }
                nodes.insert(node.metadata.name.clone(), node);
            }
        }
    }
    let value = (!diagnostics.has_errors()).then(|| nodes.into_values().collect());
    Read { value, diagnostics }
}

fn read_item(item: &Node, diagnostics: &mut Diagnostics) -> Option<CalicoNode> {
    let Some(entries) = item.as_mapping() else {
        diagnostics.push(
            Diagnostic::new(&UNREADABLE_STATE, item.head_span(), format!("a node is a mapping, not {}", item.describe()))
                .label("not a node")
                .help("write each node as `{name: n1, ipv4Address: 10.0.0.1/24, labels: {rack: r1}}`"),
        );
        return None;
    };
    let mut ok = true;
    for entry in entries {
        let key = entry.key.as_str().unwrap_or_default();
        if !FIELDS.contains(&key) {
            let help = match calplan_syntax::schema::did_you_mean(key, FIELDS.iter().copied()) {
                Some(suggestion) => format!("did you mean `{suggestion}`?"),
                None => format!("a node has {}", FIELDS.iter().map(|field| format!("`{field}`")).collect::<Vec<_>>().join(", ")),
            };
            diagnostics.push(
                Diagnostic::new(&UNREADABLE_STATE, entry.key.span, format!("unknown field `{key}`")).label("not a node field").help(help),
            );
            ok = false;
        }
    }
    let scalar = |key: &str| item.get(key).and_then(Node::as_str).filter(|text| !text.is_empty());
    let Some(name) = scalar("name") else {
        diagnostics.push(
            Diagnostic::new(&UNREADABLE_STATE, item.head_span(), "a node without `name`").label("no name").help("give every node its name"),
        );
        return None;
    };
    let name_span = item.get("name").map_or(item.head_span(), |node| node.span);
    if !calplan_model::lower::is_dns_subdomain(name) {
        diagnostics.push(
            Diagnostic::new(&INVALID_STATE, name_span, format!("`{name}` is not a valid node name"))
                .label("not a DNS-1123 subdomain")
                .help("node names are lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit"),
        );
        ok = false;
    }
    let mut bgp = NodeBgpSpec::default();
    if let Some(text) = scalar("ipv4Address") {
        match text.parse::<Ipv4Net>() {
            Ok(address) => bgp.ipv4_address = Some(address.to_string()),
            Err(_) => {
                let span = item.get("ipv4Address").map_or(name_span, |node| node.span);
                diagnostics.push(
                    Diagnostic::new(&INVALID_STATE, span, format!("`{text}` is not an IPv4 address with a prefix length"))
                        .label("not an address/prefix")
                        .help("write the node's address with its subnet's prefix length, such as `10.0.0.1/24`"),
                );
                ok = false;
            }
        }
    }
    if let Some(text) = scalar("ipv6Address") {
        match text.parse::<Ipv6Net>() {
            Ok(address) => bgp.ipv6_address = Some(address.to_string()),
            Err(_) => {
                let span = item.get("ipv6Address").map_or(name_span, |node| node.span);
                diagnostics.push(
                    Diagnostic::new(&INVALID_STATE, span, format!("`{text}` is not an IPv6 address with a prefix length"))
                        .label("not an address/prefix")
                        .help("write the node's address with its prefix length, such as `fd00::1/64`"),
                );
                ok = false;
            }
        }
    }
    let mut metadata = ObjectMeta::named(name);
    if let Some(labels) = item.get("labels") {
        match labels.as_mapping() {
            Some(entries) => {
                for entry in entries {
                    let (Some(key), Some(value)) = (entry.key.as_str(), entry.value.as_str()) else {
                        diagnostics.push(
                            Diagnostic::new(&INVALID_STATE, entry.key.span, "a label is a key and a text value")
                                .label("not a label")
                                .help("write labels as `{rack: r1}`"),
                        );
                        ok = false;
                        continue;
                    };
                    if let Some(problem) = calplan_model::node_rules::label_problem(key, value) {
                        diagnostics.push(
                            Diagnostic::new(&INVALID_STATE, entry.key.span.to(entry.value.span), problem)
                                .label("Kubernetes would refuse this label")
                                .help("correct the label as the node carries it"),
                        );
                        ok = false;
                        continue;
                    }
                    metadata.labels.insert(key.to_string(), value.to_string());
                }
            }
            None => {
                diagnostics.push(
                    Diagnostic::new(&INVALID_STATE, labels.span, "`labels` is a mapping")
                        .label("not a mapping")
                        .help("write labels as `{rack: r1}`"),
                );
                ok = false;
            }
        }
    }
    ok.then(|| CalicoNode {
        api_version: API_VERSION.into(),
        kind: "Node".into(),
        metadata,
        spec: NodeSpec { bgp: Some(bgp), extra: BTreeMap::new() },
    })
}
