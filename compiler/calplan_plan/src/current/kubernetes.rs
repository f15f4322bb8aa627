//! Calico's Kubernetes datastore (KDD), read from what `kubectl get … -o yaml` (or `-o json`)
//! prints: the same meaning as the etcd layout ([`super::etcd_layout`]), from other objects.
//!
//! What KDD keeps where (libcalico-go's `backend/k8s/resources`):
//! - `crd.projectcalico.org/v1` `IPPool`, `BGPPeer`, `BGPConfiguration`, `BGPFilter`: the v3
//!   resource's `spec` as it is; the name is the resource's. Calico keeps the v3 metadata
//!   (labels, annotations) as JSON in the `projectcalico.org/metadata` annotation and merges
//!   it over the object's own labels and annotations when it reads one back.
//! - `crd.projectcalico.org/v1` `BlockAffinity`: one per host affinity, named
//!   `<node>-<cidr with . : / as ->` (shortened with a hash past 252 characters), with
//!   `spec: {state, node, type, cidr, deleted}`. `deleted` is a *string* (`"false"`), read as
//!   Go's `strconv.ParseBool` reads it; `type` is `host` when empty; `virtual` (load-balancer)
//!   affinities hold no node's block.
//! - `crd.projectcalico.org/v1` `IPAMBlock`: the allocation block, `spec` with etcd's field
//!   names (`cidr`, `affinity: host:<node>`, `allocations`, `attributes`, `deleted`).
//! - The Kubernetes `Node` (`v1`): Calico's `Node` resource is derived from it. Its BGP spec
//!   comes from annotations (`projectcalico.org/IPv4Address`, `IPv6Address`, `ASNumber`,
//!   `RouteReflectorClusterID`, `IPv4IPIPTunnelAddr`), each checked as Calico checks it and
//!   ignored, as Calico ignores it, when invalid; its labels are the Node's labels over those
//!   stored in `projectcalico.org/labels`.
//!
//! - What confd reads from Kubernetes itself: `v1` `Secret`s (for BGP passwords: only their
//!   names and keys are kept, and whether a key's value is empty; the values are never kept,
//!   and [`read_with_secrets`] returns where they are so the caller can mask them before
//!   anything is shown), `v1` `Service`s, `v1` `Endpoints` and `discovery.k8s.io/v1`
//!   `EndpointSlice`s (for per-Service routes), as `kubectl get secrets,svc,endpoints,endpointslices -A -o yaml`
//!   prints them.
//!
//! Server fields (`resourceVersion`, `uid`, `creationTimestamp`, `generation`,
//! `managedFields`) are kept where the v3 metadata has them and otherwise ignored, as are
//! kinds calplan does not plan with. `projectcalico.org/v3` objects in the same file read as
//! in a calicoctl export. Read-only: calplan never writes these objects.

use crate::current::calico_yaml::{self, UNREADABLE_STATE};
use crate::current::etcd_layout::{self, BlockValue, EtcdState, Located};
use crate::current::{Holders, Read, workloads_of};
use calplan_calico::AsNumber;
use calplan_calico::resources::{API_VERSION, CalicoNode, NodeBgpSpec, NodeSpec, ObjectMeta, Resource, ResourceSet};
use calplan_diagnostics::{Diagnostic, Diagnostics, FileId, Severity, Span};
use calplan_model::grammar;
use calplan_model::ipam::{AffinityState, ObservedAffinity};
use calplan_model::kubernetes::{EndpointAddress, EndpointSlice, Endpoints, ObservedKubernetes, ObservedServices, Service, SliceEndpoint};
use calplan_syntax::yaml::Node;
use calplan_syntax::{TagPolicy, de, read_yaml, repair_tags};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The API group and version of Calico's custom resources.
pub const CRD_API_VERSION: &str = "crd.projectcalico.org/v1";

/// Where Calico keeps a custom resource's v3 metadata.
const METADATA_ANNOTATION: &str = "projectcalico.org/metadata";
/// Where Calico keeps the labels it set on a Kubernetes Node itself.
const NODE_LABELS_ANNOTATION: &str = "projectcalico.org/labels";
/// Where Calico keeps the annotations it set on a Kubernetes Node itself.
const NODE_ANNOTATIONS_ANNOTATION: &str = "projectcalico.org/annotations";

/// What an export holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KubernetesState {
    /// Resources, affinities, block usage and workloads, as an etcd datastore's are.
    pub state: EtcdState,
    /// Whether the export holds Calico's IPAM (any `BlockAffinity` or `IPAMBlock`): only then
    /// do its affinities say which node holds which block. An empty list does not say what it
    /// listed.
    pub has_ipam: bool,
    /// Secrets and Services, each part only when the export lists objects of its kinds.
    pub kubernetes: ObservedKubernetes,
}

/// Whether a text is a Kubernetes export of Calico's state: custom resources of
/// `crd.projectcalico.org/v1`, or Kubernetes Nodes (`apiVersion: v1`, `kind: Node`).
pub fn sniff(text: &str) -> bool {
    if text.contains(CRD_API_VERSION) {
        return true;
    }
    let lines: Vec<String> =
        text.lines().map(|line| line.trim().trim_start_matches("- ").replace(['"', ' '], "").trim_end_matches(',').to_string()).collect();
    let has = |wanted: &str| lines.iter().any(|line| line == wanted);
    has("apiVersion:v1") && ["kind:Node", "kind:Secret", "kind:Service", "kind:Endpoints"].iter().any(|kind| has(kind))
        || has("kind:EndpointSlice") && has(&format!("apiVersion:{DISCOVERY_API_VERSION}"))
}

/// The API group and version of `EndpointSlice`s.
pub const DISCOVERY_API_VERSION: &str = "discovery.k8s.io/v1";

/// The Kubernetes name of a block affinity, as Calico's KDD backend makes it (`parseKey` in
/// `ipam_affinity.go`): `<node>-<cidr>`, the CIDR's dots, colons and slash turned into
/// dashes; past 252 characters the node part is cut and 11 hex digits of SHA-256 over
/// `<node>+<cidr name>` appended.
pub fn block_affinity_name(node: &str, block: IpNet) -> String {
    let cidr = block_name(block);
    let name = format!("{node}-{cidr}");
    if name.len() < 253 {
        return name;
    }
    use sha2::Digest;
    let cut = 252usize.saturating_sub(cidr.len() + 13).min(node.len());
    let digest = calplan_targets::Artifact::hex_digest(&sha2::Sha256::digest(format!("{node}+{cidr}").as_bytes()));
    format!("{}-{cidr}-{}", &node[..cut], &digest[..11])
}

/// The Kubernetes name of an IPAM block (`names.CIDRToName`).
pub fn block_name(block: IpNet) -> String {
    block.to_string().replace(['.', ':', '/'], "-")
}

/// Reads every object of an export.
pub fn read(file: FileId, text: &str) -> Read<KubernetesState> {
    read_with_secrets(file, text).0
}

/// Reads every object of an export, and says where the values of its Secrets are: the caller
/// masks them in the text it keeps (`SourceMap::redact`) before any diagnostic is shown.
pub fn read_with_secrets(file: FileId, text: &str) -> (Read<KubernetesState>, Vec<Span>) {
    let mut diagnostics = Diagnostics::new();
    let mut secret_values = Vec::new();
    let Some(mut documents) = read_yaml(file, text, &mut diagnostics) else {
        // Unreadable YAML: where its values are cannot be told, so a text that may hold a
        // Secret is masked whole (line breaks kept, so the error is still located).
        let masked = if text.contains("Secret") { vec![Span::new(file, 0, text.len())] } else { Vec::new() };
        return (Read { value: None, diagnostics }, masked);
    };
    let mut result = KubernetesState::default();
    let mut holders: Holders = BTreeMap::new();
    for document in &mut documents {
        repair_tags(document, text, TagPolicy::KeepCalicosReading, &mut diagnostics);
        for item in calico_yaml::items(document, &mut diagnostics) {
            read_item(item, &mut result, &mut holders, &mut secret_values, &mut diagnostics);
        }
    }
    result.state.affinities.sort();
    result.state.affinities.dedup_by(|a, b| a.block == b.block && a.node == b.node);
    result.state.workloads = workloads_of(holders);
    // A tag's diagnostic may quote a Secret's value: those go, the value is not repeated.
    diagnostics.retain_since(0, |diagnostic| !secret_values.iter().any(|value: &Span| value.contains(diagnostic.span())));
    let value = (!diagnostics.has_errors()).then_some(result);
    (Read { value, diagnostics }, secret_values)
}

fn unreadable(at: Span, message: impl Into<String>, label: &str) -> Diagnostic {
    Diagnostic::new(&UNREADABLE_STATE, at, message)
        .label(label.to_string())
        .help("calplan reads Calico's Kubernetes datastore as `kubectl get … -o yaml` prints it")
}

fn text_of<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.get(key).and_then(Node::as_str).filter(|text| !text.is_empty())
}

fn read_item(
    item: &Node,
    result: &mut KubernetesState,
    holders: &mut Holders,
    secret_values: &mut Vec<Span>,
    diagnostics: &mut Diagnostics,
) {
    let api_version = text_of(item, "apiVersion").unwrap_or_default();
    let kind = text_of(item, "kind").unwrap_or_default();
    match (api_version, kind) {
        (CRD_API_VERSION, "BlockAffinity") => {
            result.has_ipam = true;
            read_affinity(item, &mut result.state, diagnostics);
        }
        (CRD_API_VERSION, "IPAMBlock") => {
            result.has_ipam = true;
            read_ipam_block(item, &mut result.state, holders, diagnostics);
        }
        // calico-node's record of the release it runs.
        (CRD_API_VERSION | API_VERSION, "ClusterInformation") => {
            let named_default = item.get("metadata").and_then(|metadata| text_of(metadata, "name")) == Some("default");
            if let Some(version) = item.get("spec").and_then(|spec| text_of(spec, "calicoVersion")).filter(|_| named_default) {
                result.state.calico_version = Some(version.to_string());
            }
        }
        (CRD_API_VERSION, _) => read_custom_resource(item, &mut result.state.resources, diagnostics),
        ("v1", "Node") => read_node(item, &mut result.state.resources, diagnostics),
        ("v1", "Secret") => read_secret(item, &mut result.kubernetes, secret_values, diagnostics),
        ("v1", "Service") => read_service(item, services(&mut result.kubernetes), diagnostics),
        ("v1", "Endpoints") => read_endpoints(item, services(&mut result.kubernetes), diagnostics),
        (DISCOVERY_API_VERSION, "EndpointSlice") => read_endpoint_slice(item, services(&mut result.kubernetes), diagnostics),
        (API_VERSION, _) | ("", _) => calico_yaml::read_item(item, &mut result.state.resources, diagnostics),
        // Other Kubernetes objects (Pods, Services, …) say nothing calplan plans with.
        _ => {}
    }
}

/// The part of a custom resource's `projectcalico.org/metadata` annotation calplan reads.
#[derive(serde::Deserialize)]
struct StoredMetadata {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// A `crd.projectcalico.org/v1` object of a kind calplan plans with, read as the v3 resource
/// Calico's KDD backend makes of it.
fn read_custom_resource(item: &Node, resources: &mut ResourceSet, diagnostics: &mut Diagnostics) {
    let mut read = ResourceSet::default();
    calico_yaml::read_item(item, &mut read, diagnostics);
    let stored =
        item.get("metadata").and_then(|metadata| metadata.get("annotations")).and_then(|annotations| annotations.get(METADATA_ANNOTATION));
    for mut resource in read.resources.into_values().map(std::sync::Arc::unwrap_or_clone) {
        match resource {
            Resource::IpPool(ref mut inner) => inner.api_version = API_VERSION.into(),
            Resource::BgpPeer(ref mut inner) => inner.api_version = API_VERSION.into(),
            Resource::BgpConfiguration(ref mut inner) => inner.api_version = API_VERSION.into(),
            Resource::Node(ref mut inner) => inner.api_version = API_VERSION.into(),
            Resource::BgpFilter(ref mut inner) => inner.api_version = API_VERSION.into(),
        }
        let metadata = resource.metadata_mut();
        if let Some(stored) = stored {
            metadata.annotations.remove(METADATA_ANNOTATION);
            match stored.as_str().map(serde_json::from_str::<StoredMetadata>) {
                Some(Ok(v3)) => {
                    metadata.labels.extend(v3.labels);
                    metadata.annotations.extend(v3.annotations);
                }
                _ => diagnostics.push(unreadable(
                    stored.span,
                    format!("`{METADATA_ANNOTATION}` does not hold the resource's metadata as JSON"),
                    "Calico cannot read this",
                )),
            }
        }
        resources.insert(resource);
    }
}

/// A `BlockAffinity`: a host affinity unless deleted, of another type, or unreadable.
fn read_affinity(item: &Node, state: &mut EtcdState, diagnostics: &mut Diagnostics) {
    let Some(spec) = item.get("spec") else {
        diagnostics.push(unreadable(item.head_span(), "a `BlockAffinity` without `spec`", "expected `spec: {state, node, cidr, deleted}`"));
        return;
    };
    let value = |key: &str| spec.get(key).and_then(Node::as_str).unwrap_or_default();
    let deleted = match parse_go_bool(value("deleted")) {
        Some(deleted) => deleted,
        None => {
            let at = spec.get("deleted").map_or(spec.head_span(), |node| node.span);
            diagnostics.push(unreadable(
                at,
                format!("`deleted` is `{}`, which Calico cannot read as a boolean", value("deleted")),
                "expected `\"true\"` or `\"false\"`",
            ));
            return;
        }
    };
    if deleted || !matches!(value("type"), "" | "host") {
        return;
    }
    let Ok(block) = value("cidr").parse::<IpNet>() else {
        let at = spec.get("cidr").map_or(spec.head_span(), |node| node.span);
        diagnostics.push(unreadable(at, format!("`{}` is not a block", value("cidr")), "expected a CIDR such as `10.65.79.0/26`"));
        return;
    };
    let node = value("node");
    if node.is_empty() {
        diagnostics.push(unreadable(spec.head_span(), "a `BlockAffinity` without `node`", "expected the node that holds the block"));
        return;
    }
    let Some(affinity_state) = AffinityState::parse(value("state")) else {
        let at = spec.get("state").map_or(spec.head_span(), |node| node.span);
        diagnostics.push(unreadable(
            at,
            format!("unknown affinity state `{}`", value("state")),
            "expected `pending`, `confirmed` or `pendingDeletion`",
        ));
        return;
    };
    state.affinities.push(ObservedAffinity { block, node: node.to_string(), state: affinity_state });
}

/// Go's `strconv.ParseBool`, and the empty string as `false` (Calico's default).
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        _ => None,
    }
}

/// An `IPAMBlock`: the addresses in use and the pods holding them, as etcd's block.
fn read_ipam_block(item: &Node, state: &mut EtcdState, holders: &mut Holders, diagnostics: &mut Diagnostics) {
    let Some(spec) = item.get("spec") else {
        diagnostics.push(unreadable(
            item.head_span(),
            "an `IPAMBlock` without `spec`",
            "expected `spec: {cidr, affinity, allocations, attributes}`",
        ));
        return;
    };
    let Some(block) = text_of(spec, "cidr").and_then(|cidr| cidr.parse::<IpNet>().ok()) else {
        let at = spec.get("cidr").map_or(spec.head_span(), |node| node.span);
        diagnostics.push(unreadable(at, "the block's `cidr` is not a CIDR", "expected a CIDR such as `10.65.79.0/26`"));
        return;
    };
    let value: BlockValue = match de::from_node(spec) {
        Ok(value) => value,
        Err(error) => {
            diagnostics.push(unreadable(
                error.span.unwrap_or(spec.head_span()),
                format!("cannot read this `IPAMBlock`: {}", error.message),
                "here",
            ));
            return;
        }
    };
    if value.deleted {
        return;
    }
    let at = Located { key: item.head_span(), value: spec.span };
    etcd_layout::read_block(block, &value, &at, state, holders, diagnostics);
}

/// A Kubernetes `Node` as the Calico `Node` resource Calico derives from it
/// (`K8sNodeToCalico`).
fn read_node(item: &Node, resources: &mut ResourceSet, diagnostics: &mut Diagnostics) {
    #[derive(serde::Deserialize)]
    struct KubernetesNode {
        metadata: ObjectMeta,
    }
    let node: KubernetesNode = match de::from_node(item) {
        Ok(node) => node,
        Err(error) => {
            diagnostics.push(unreadable(
                error.span.unwrap_or(item.head_span()),
                format!("cannot read this Kubernetes `Node`: {}", error.message),
                "here",
            ));
            return;
        }
    };
    let annotations_node = item.get("metadata").and_then(|metadata| metadata.get("annotations"));
    let annotation = |key: &str| -> Option<(&str, Span)> {
        let value = annotations_node?.get(key)?;
        Some((value.as_str().filter(|text| !text.is_empty())?, value.span))
    };
    let kubernetes = node.metadata;
    let mut metadata = ObjectMeta {
        name: kubernetes.name.clone(),
        resource_version: kubernetes.resource_version.clone(),
        uid: kubernetes.uid.clone(),
        creation_timestamp: kubernetes.creation_timestamp.clone(),
        ..ObjectMeta::default()
    };
    for (key, target) in [(NODE_LABELS_ANNOTATION, &mut metadata.labels), (NODE_ANNOTATIONS_ANNOTATION, &mut metadata.annotations)] {
        if let Some((text, span)) = annotation(key) {
            match serde_json::from_str::<BTreeMap<String, String>>(text) {
                Ok(map) => target.extend(map),
                // Calico logs and goes on without them.
                Err(_) => diagnostics.push(ignored(span, &format!("`{key}` does not hold a JSON map of strings"))),
            }
        }
    }
    // Kubernetes labels take precedence over Calico's own.
    metadata.labels.extend(kubernetes.labels);

    let mut bgp = NodeBgpSpec::default();
    let mut checked = |key: &str, valid: &dyn Fn(&str) -> bool, what: &str| -> Option<String> {
        let (text, span) = annotation(key)?;
        if valid(text) {
            return Some(text.to_string());
        }
        diagnostics.push(ignored(span, &format!("`{key}` is `{text}`, not {what}")));
        None
    };
    bgp.ipv4_address =
        checked("projectcalico.org/IPv4Address", &|text| address_of(text).is_some_and(|ip| ip.is_ipv4()), "an IPv4 address or CIDR");
    bgp.ipv6_address =
        checked("projectcalico.org/IPv6Address", &|text| address_of(text).is_some_and(|ip| ip.is_ipv6()), "an IPv6 address or CIDR");
    bgp.route_reflector_cluster_id = checked("projectcalico.org/RouteReflectorClusterID", &is_ipv4_network, "an IPv4 address");
    bgp.ipv4_ipip_tunnel_addr = checked("projectcalico.org/IPv4IPIPTunnelAddr", &is_ipv4_network, "an IPv4 address");
    bgp.as_number =
        checked("projectcalico.org/ASNumber", &|text| text.parse::<AsNumber>().is_ok(), "an AS number").and_then(|text| text.parse().ok());
    let spec = NodeSpec { bgp: (bgp != NodeBgpSpec::default()).then_some(bgp), ..NodeSpec::default() };
    resources.insert(Resource::Node(CalicoNode { api_version: API_VERSION.into(), kind: "Node".into(), metadata, spec }));
}

/// The services part of what is read, begun on the first Service, `Endpoints` or slice.
fn services(kubernetes: &mut ObservedKubernetes) -> &mut ObservedServices {
    kubernetes.services.get_or_insert_with(ObservedServices::default)
}

/// An object's namespace and name, checked as Kubernetes checks them: the namespace a
/// DNS-1123 label (`default` when absent, as `kubectl apply` assumes), the name by `valid`.
fn namespaced_name(item: &Node, kind: &str, valid: fn(&str) -> Option<String>, diagnostics: &mut Diagnostics) -> Option<(String, String)> {
    let metadata = item.get("metadata");
    let name_node = metadata.and_then(|metadata| metadata.get("name"));
    let Some(name) = name_node.and_then(Node::as_str).filter(|name| !name.is_empty()) else {
        diagnostics.push(unreadable(item.head_span(), format!("a `{kind}` without `metadata.name`"), "expected the object's name"));
        return None;
    };
    let name_span = name_node.map_or(item.head_span(), |node| node.span);
    if let Some(problem) = valid(name) {
        diagnostics.push(unreadable(name_span, format!("the {kind} name `{name}` {problem}"), "Kubernetes refuses this name"));
        return None;
    }
    let namespace_node = metadata.and_then(|metadata| metadata.get("namespace"));
    let namespace = namespace_node.and_then(Node::as_str).filter(|namespace| !namespace.is_empty()).unwrap_or("default");
    if !calplan_model::lower::is_dns_label(namespace) {
        diagnostics.push(unreadable(
            namespace_node.map_or(name_span, |node| node.span),
            format!("the namespace `{namespace}` is not a DNS-1123 label (at most 63 lowercase letters, digits and `-`)"),
            "Kubernetes refuses this namespace",
        ));
        return None;
    }
    Some((namespace.to_string(), name.to_string()))
}

/// Kubernetes' `IsDNS1035Label`, the rule for a Service's name.
fn service_name_problem(name: &str) -> Option<String> {
    let starts_with_letter = name.starts_with(|c: char| c.is_ascii_lowercase());
    (!(starts_with_letter && calplan_model::lower::is_dns_label(name)))
        .then(|| "is not a DNS-1035 label (at most 63 lowercase letters, digits and `-`, starting with a letter)".to_string())
}

/// A `Secret`: its name and the keys of `data` (and `stringData`, in a file written for
/// `kubectl apply`) whose value is not empty. The values' spans go to `secret_values`; no
/// value is kept, quoted or compared with anything but the empty string.
fn read_secret(item: &Node, kubernetes: &mut ObservedKubernetes, secret_values: &mut Vec<Span>, diagnostics: &mut Diagnostics) {
    let mut keys = std::collections::BTreeSet::new();
    for field in ["data", "stringData"] {
        let Some(data) = item.get(field) else { continue };
        let Some(entries) = data.as_mapping() else {
            secret_values.push(data.span);
            if !matches!(data.scalar(), Some(calplan_syntax::yaml::Scalar::Null)) {
                diagnostics.push(unreadable(
                    data.head_span(),
                    format!("a Secret's `{field}` that is not a map"),
                    "expected `KEY: VALUE` entries",
                ));
            }
            continue;
        };
        for entry in entries {
            secret_values.push(entry.value.span);
            let key = entry.key.as_str().unwrap_or_default();
            if let Some(problem) = grammar::secret_key_problem(key) {
                diagnostics.push(unreadable(entry.key.span, format!("the Secret key `{key}` {problem}"), "Kubernetes refuses this key"));
                continue;
            }
            // confd renders no password for an empty value, as for a missing key.
            let empty = matches!(entry.value.scalar(), None | Some(calplan_syntax::yaml::Scalar::Null))
                || entry.value.as_str().is_some_and(str::is_empty);
            if !empty {
                keys.insert(key.to_string());
            }
        }
    }
    let Some(name) = namespaced_name(item, "Secret", grammar::secret_name_problem, diagnostics) else { return };
    kubernetes.secrets.get_or_insert_with(BTreeMap::new).insert(name, keys);
}

/// The strings of a sequence under `key`, each checked by `valid` (an error where it is not).
fn strings_at(node: Option<&Node>, key: &str, valid: &dyn Fn(&str) -> bool, what: &str, diagnostics: &mut Diagnostics) -> Vec<String> {
    let Some(list) = node.and_then(|node| node.get(key)) else { return Vec::new() };
    let Some(items) = list.as_sequence() else {
        if !matches!(list.scalar(), Some(calplan_syntax::yaml::Scalar::Null)) {
            diagnostics.push(unreadable(list.head_span(), format!("`{key}` is not a list"), "expected a list"));
        }
        return Vec::new();
    };
    let mut strings = Vec::new();
    for item in items {
        let text = item.as_str().unwrap_or_default();
        if !valid(text) {
            diagnostics.push(unreadable(item.span, format!("`{text}` in `{key}` is not {what}"), "Kubernetes refuses this"));
            continue;
        }
        strings.push(text.to_string());
    }
    strings
}

fn is_ip(text: &str) -> bool {
    text.parse::<IpAddr>().is_ok()
}

/// A `Service`: what confd's route generator reads of it. Fields Kubernetes defaults
/// (`type`, `clusterIPs`, `ipFamilies`) are defaulted the same way when absent.
fn read_service(item: &Node, services: &mut ObservedServices, diagnostics: &mut Diagnostics) {
    let Some(name) = namespaced_name(item, "Service", service_name_problem, diagnostics) else { return };
    let spec = item.get("spec");
    let text = |key: &str| spec.and_then(|spec| text_of(spec, key)).unwrap_or_default().to_string();
    let cluster_ip = text("clusterIP");
    if !(cluster_ip.is_empty() || cluster_ip == "None" || is_ip(&cluster_ip)) {
        let at = spec.and_then(|spec| spec.get("clusterIP")).map_or(item.head_span(), |node| node.span);
        diagnostics.push(unreadable(at, format!("`{cluster_ip}` is not a cluster IP"), "expected an address, `None` or nothing"));
        return;
    }
    let mut cluster_ips = strings_at(spec, "clusterIPs", &|text| text == "None" || is_ip(text), "an address", diagnostics);
    if cluster_ips.is_empty() && is_ip(&cluster_ip) {
        cluster_ips.push(cluster_ip.clone());
    }
    let mut ip_families = strings_at(spec, "ipFamilies", &|text| matches!(text, "IPv4" | "IPv6"), "`IPv4` or `IPv6`", diagnostics);
    if ip_families.is_empty() {
        ip_families =
            cluster_ips.iter().filter(|ip| is_ip(ip)).map(|ip| if ip.contains(':') { "IPv6" } else { "IPv4" }.to_string()).collect();
    }
    // Calico skips addresses it cannot parse in these two (and logs them): so does calplan.
    let external_ips = strings_at(spec, "externalIPs", &|_| true, "", diagnostics);
    let ingress_ips = item
        .get("status")
        .and_then(|status| status.get("loadBalancer"))
        .and_then(|load_balancer| load_balancer.get("ingress"))
        .and_then(Node::as_sequence)
        .unwrap_or_default()
        .iter()
        .filter_map(|ingress| text_of(ingress, "ip").map(str::to_string))
        .collect();
    let service_type = match text("type") {
        empty if empty.is_empty() => "ClusterIP".to_string(),
        other => other,
    };
    let service = Service {
        service_type,
        cluster_ip,
        cluster_ips,
        ip_families,
        external_ips,
        load_balancer_ip: text("loadBalancerIP"),
        ingress_ips,
        external_traffic_policy: text("externalTrafficPolicy"),
    };
    services.services.insert(name, service);
}

/// A `v1` `Endpoints`: the ready addresses of its subsets, with their nodes.
fn read_endpoints(item: &Node, services: &mut ObservedServices, diagnostics: &mut Diagnostics) {
    let Some(name) = namespaced_name(item, "Endpoints", service_name_problem, diagnostics) else { return };
    let mut addresses = Vec::new();
    for subset in item.get("subsets").and_then(Node::as_sequence).unwrap_or_default() {
        for address in subset.get("addresses").and_then(Node::as_sequence).unwrap_or_default() {
            let ip = text_of(address, "ip").unwrap_or_default();
            if !is_ip(ip) {
                diagnostics.push(unreadable(address.head_span(), format!("`{ip}` is not an endpoint address"), "expected `ip: ADDRESS`"));
                continue;
            }
            addresses.push(EndpointAddress { ip: ip.to_string(), node_name: text_of(address, "nodeName").map(str::to_string) });
        }
    }
    services.endpoints.insert(name, Endpoints { addresses });
}

/// A `discovery.k8s.io/v1` `EndpointSlice`: its Service, address type, and each endpoint's
/// readiness and node.
fn read_endpoint_slice(item: &Node, services: &mut ObservedServices, diagnostics: &mut Diagnostics) {
    let Some(name) = namespaced_name(item, "EndpointSlice", grammar::secret_name_problem, diagnostics) else { return };
    let service = item
        .get("metadata")
        .and_then(|metadata| metadata.get("labels"))
        .and_then(|labels| text_of(labels, "kubernetes.io/service-name"))
        .map(str::to_string);
    let address_type = text_of(item, "addressType").unwrap_or_default();
    if !matches!(address_type, "IPv4" | "IPv6" | "FQDN") {
        let at = item.get("addressType").map_or(item.head_span(), |node| node.span);
        diagnostics.push(unreadable(at, format!("`{address_type}` is not an address type"), "expected `IPv4`, `IPv6` or `FQDN`"));
        return;
    }
    let mut endpoints = Vec::new();
    for endpoint in item.get("endpoints").and_then(Node::as_sequence).unwrap_or_default() {
        let ready_node = endpoint.get("conditions").and_then(|conditions| conditions.get("ready"));
        let ready = match ready_node.map(|node| (node, node.scalar())) {
            None | Some((_, Some(calplan_syntax::yaml::Scalar::Null))) => None,
            Some((_, Some(calplan_syntax::yaml::Scalar::Bool(ready)))) => Some(ready),
            Some((node, _)) => {
                diagnostics.push(unreadable(node.span, "`ready` is not a boolean", "expected `true` or `false`"));
                continue;
            }
        };
        endpoints.push(SliceEndpoint { ready, node_name: text_of(endpoint, "nodeName").map(str::to_string) });
    }
    services.slices.insert(name, EndpointSlice { service, address_type: address_type.to_string(), endpoints });
}

/// An annotation Calico ignores, as a warning where it is.
fn ignored(span: Span, message: &str) -> Diagnostic {
    Diagnostic::new(&UNREADABLE_STATE, span, format!("{message}: Calico ignores it"))
        .severity(Severity::Warning)
        .label("ignored")
        .help("calico-node writes these annotations; a value it cannot read is treated as absent")
}

/// The address of `a.b.c.d`, `a.b.c.d/len` or their IPv6 forms (Calico's `ParseCIDROrIP`).
fn address_of(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>().ok().or_else(|| text.parse::<IpNet>().ok().map(|net| net.addr()))
}

/// Calico's `ValidateIPv4Network`: an IPv4 address, or a strictly masked IPv4 CIDR.
fn is_ipv4_network(text: &str) -> bool {
    match text.parse::<IpNet>() {
        Ok(net) => net.addr().is_ipv4() && net.trunc().addr() == net.addr(),
        Err(_) => text.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv4()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_calicos_encoding() {
        let block: IpNet = "10.65.79.0/26".parse().unwrap();
        assert_eq!(block_name(block), "10-65-79-0-26");
        assert_eq!(block_affinity_name("k8s-node-01", block), "k8s-node-01-10-65-79-0-26");
        assert_eq!(block_name("fd00:244::/122".parse().unwrap()), "fd00-244---122");
        let long = "n".repeat(250);
        let name = block_affinity_name(&long, block);
        assert_eq!(name.len(), 252 - 13 - "10-65-79-0-26".len() + 1 + "10-65-79-0-26".len() + 1 + 11);
        assert!(name.starts_with("nnn") && name.contains("-10-65-79-0-26-"), "{name}");
    }

    #[test]
    fn go_booleans() {
        for (text, value) in [("", Some(false)), ("false", Some(false)), ("True", Some(true)), ("1", Some(true)), ("yes", None)] {
            assert_eq!(parse_go_bool(text), value, "{text}");
        }
    }

    fn located(text: &str, read: &Read<KubernetesState>) -> Vec<(String, Severity, String)> {
        read.diagnostics
            .iter()
            .map(|d| (text[d.span().start as usize..d.span().end as usize].to_string(), d.severity, d.message.clone()))
            .collect()
    }

    /// Annotations Calico's validators refuse are ignored, as Calico ignores them, with a
    /// warning on the value; labels stored by Calico are overridden by the Node's own.
    #[test]
    fn a_node_takes_what_calico_reads_from_its_annotations() {
        let text = "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n  resourceVersion: \"42\"\n  labels:\n    rack: a\n  annotations:\n    \
                    projectcalico.org/IPv4Address: 2001:db8::1/64\n    projectcalico.org/IPv6Address: 2001:db8::1/64\n    \
                    projectcalico.org/ASNumber: \"1.10\"\n    projectcalico.org/RouteReflectorClusterID: 10.0.0.1/8\n    \
                    projectcalico.org/labels: '{\"rack\":\"b\",\"calico-only\":\"yes\"}'\n";
        let read = read(FileId(0), text);
        let found = located(text, &read);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].0.as_str(), found[0].1), ("2001:db8::1/64", Severity::Warning));
        assert!(
            found[0].2.contains("`projectcalico.org/IPv4Address` is `2001:db8::1/64`, not an IPv4 address or CIDR: Calico ignores it"),
            "{found:?}"
        );
        assert_eq!(found[1].0, "10.0.0.1/8", "not strictly masked: {found:?}");
        let state = read.value.unwrap().state;
        let node = state.resources.nodes().next().unwrap();
        let bgp = node.spec.bgp.as_ref().unwrap();
        assert_eq!((bgp.ipv4_address.as_deref(), bgp.ipv6_address.as_deref()), (None, Some("2001:db8::1/64")));
        assert_eq!(bgp.as_number, Some(AsNumber(65546)));
        assert_eq!(bgp.route_reflector_cluster_id, None);
        assert_eq!(node.metadata.labels["rack"], "a", "the Kubernetes label wins");
        assert_eq!(node.metadata.labels["calico-only"], "yes");
        assert_eq!(node.metadata.resource_version.as_deref(), Some("42"));
    }

    #[test]
    fn a_node_without_calicos_annotations_has_no_bgp_spec() {
        let text = r#"{"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "plain", "uid": "u-1"}}]}"#;
        let read = read(FileId(0), text);
        assert!(read.diagnostics.is_empty(), "{:?}", read.diagnostics);
        let state = read.value.unwrap();
        assert!(!state.has_ipam);
        let node = state.state.resources.nodes().next().unwrap();
        assert_eq!((node.metadata.name.as_str(), node.spec.bgp.is_none()), ("plain", true));
    }

    /// A `BlockAffinity` Calico cannot convert is an error where it is; soft-deleted and
    /// virtual ones hold no node's block.
    #[test]
    fn affinities_read_as_calico_reads_them() {
        let affinity = |name: &str, spec: &str| {
            format!("- apiVersion: crd.projectcalico.org/v1\n  kind: BlockAffinity\n  metadata: {{name: {name}}}\n  spec: {spec}\n")
        };
        let text = format!(
            "apiVersion: v1\nkind: List\nitems:\n{}{}{}{}",
            affinity("a", "{cidr: 10.0.0.0/26, node: a, state: pending, deleted: \"false\"}"),
            affinity("b", "{cidr: 10.0.0.64/26, node: b, state: confirmed, deleted: \"True\"}"),
            affinity("c", "{cidr: 10.0.0.128/26, node: c, state: confirmed, deleted: \"false\", type: virtual}"),
            affinity("d", "{cidr: 10.0.0.192/26, node: d, state: confirmed, deleted: \"maybe\"}"),
        );
        let read = read(FileId(0), &text);
        let found = located(&text, &read);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].0.as_str(), found[0].1), ("\"maybe\"", Severity::Error));
        assert!(read.value.is_none());
        let without_bad = text.replace("deleted: \"maybe\"", "deleted: \"\"");
        let state = read_ok(&without_bad);
        let affinities: Vec<(String, &str, AffinityState)> =
            state.state.affinities.iter().map(|a| (a.block.to_string(), a.node.as_str(), a.state)).collect();
        assert_eq!(
            affinities,
            [("10.0.0.0/26".to_string(), "a", AffinityState::Pending), ("10.0.0.192/26".to_string(), "d", AffinityState::Confirmed)]
        );
        assert!(state.has_ipam);
    }

    fn read_ok(text: &str) -> KubernetesState {
        let read = read(FileId(0), text);
        assert!(read.diagnostics.is_empty(), "{:?}", read.diagnostics);
        read.value.unwrap()
    }

    /// A Secret is known by its name and the keys with a value; every value's span is given
    /// to be masked, and nothing read holds a value.
    #[test]
    fn a_secret_is_read_as_its_name_and_keys_only() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: bgp, namespace: kube-system}\n  \
                    data:\n    peer: aHVudGVyMg==\n    empty: \"\"\n  stringData:\n    mesh: hunter3\n- apiVersion: v1\n  kind: Secret\n  \
                    metadata: {name: other}\n  type: Opaque\n";
        let (read, values) = read_with_secrets(FileId(0), text);
        assert!(read.diagnostics.is_empty(), "{:?}", read.diagnostics);
        let masked: Vec<&str> = values.iter().map(|span| &text[span.start as usize..span.end as usize]).collect();
        assert_eq!(masked, ["aHVudGVyMg==", "\"\"", "hunter3"]);
        let state = read.value.unwrap();
        let secrets = state.kubernetes.secrets.as_ref().unwrap();
        let keys = |namespace: &str, name: &str| secrets[&(namespace.to_string(), name.to_string())].iter().cloned().collect::<Vec<_>>();
        assert_eq!(keys("kube-system", "bgp"), ["mesh", "peer"], "an empty value is no password");
        assert!(keys("default", "other").is_empty());
        let debug = format!("{state:?}");
        assert!(!debug.contains("aHVudGVyMg") && !debug.contains("hunter3"), "{debug}");
        assert!(state.state == EtcdState::default() && !state.has_ipam, "Secrets say nothing of Calico's datastore");
    }

    /// Kubernetes' defaults are taken for what `kubectl apply` input leaves out; an endpoint
    /// slice is tied to its Service by label, `Endpoints` by name.
    #[test]
    fn services_and_their_endpoints_are_read_with_kubernetes_defaults() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {clusterIP: fd00:96::28, externalTrafficPolicy: Local}\n\
                    ---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-abc\n  namespace: shop\n  labels: {kubernetes.io/service-name: web}\n\
                    addressType: IPv6\nendpoints:\n- addresses: [fd5f::43]\n  nodeName: n1\n  conditions: {ready: false}\n\
                    ---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: web, namespace: shop}\nsubsets:\n- addresses:\n  - {ip: fd5f::43, nodeName: n1}\n";
        assert!(sniff(text));
        let state = read_ok(text);
        let services = state.kubernetes.services.unwrap();
        let key = ("shop".to_string(), "web".to_string());
        let service = &services.services[&key];
        assert_eq!(service.service_type, "ClusterIP");
        assert_eq!(
            (service.cluster_ips.as_slice(), service.ip_families.as_slice()),
            (&["fd00:96::28".to_string()][..], &["IPv6".to_string()][..])
        );
        let slice = &services.slices[&("shop".to_string(), "web-abc".to_string())];
        assert_eq!((slice.service.as_deref(), slice.address_type.as_str()), (Some("web"), "IPv6"));
        assert_eq!(slice.endpoints, [SliceEndpoint { ready: Some(false), node_name: Some("n1".into()) }]);
        assert_eq!(services.endpoints[&key].addresses, [EndpointAddress { ip: "fd5f::43".into(), node_name: Some("n1".into()) }]);
    }

    #[test]
    fn objects_kubernetes_refuses_are_errors_where_they_are() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: 9web}}\n\
                    - {apiVersion: v1, kind: Service, metadata: {name: web, namespace: Shop}}\n\
                    - {apiVersion: v1, kind: Service, metadata: {name: api}, spec: {clusterIP: 10.0.0.300}}\n\
                    - {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, metadata: {name: s}, addressType: IPv5}\n";
        let read = read(FileId(0), text);
        let found: Vec<String> = located(text, &read).into_iter().map(|(at, _, _)| at).collect();
        assert_eq!(found, ["9web", "Shop", "10.0.0.300", "IPv5"]);
        assert!(read.value.is_none());
    }

    #[test]
    fn sniff_tells_kubernetes_exports() {
        assert!(sniff("apiVersion: v1\nitems:\n- apiVersion: v1\n  data: {}\n  kind: Secret\nkind: List\n"));
        assert!(sniff("apiVersion: v1\nitems:\n- apiVersion: discovery.k8s.io/v1\n  kind: EndpointSlice\nkind: List\n"));
        assert!(sniff("apiVersion: v1\nitems:\n- apiVersion: crd.projectcalico.org/v1\n  kind: IPPool\n"));
        assert!(sniff("apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata:\n    name: a\nkind: List\n"));
        assert!(sniff("{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Node\"\n}\n"));
        assert!(!sniff("apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: a\n"));
    }
}
