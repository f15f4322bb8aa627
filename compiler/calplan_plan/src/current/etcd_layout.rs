//! A Calico etcdv3 datastore, read from the key-value pairs the CLI fetched: resources, block
//! affinities, block usage and the workloads holding addresses.
//!
//! The layout (libcalico-go's `backend/model`):
//! - `/calico/resources/v3/projectcalico.org/<plural>/<name>`: a v3 resource, the value
//!   `json.Marshal` of the whole object. `resourceVersion` is never stored: Calico reads it as
//!   the key's `mod_revision` in decimal, and so does this reader, so an update can be a
//!   compare-and-swap on it. Namespaced kinds (`workloadendpoints`) have
//!   `<plural>/<namespace>/<name>`.
//! - `/calico/ipam/v2/host/<node>/ipv4/block/<a.b.c.d>-<len>` (and `ipv6`): a block affinity,
//!   `{"state":"pending|confirmed|pendingDeletion","deleted":false}`; an empty value (older
//!   Calico) is `confirmed`. Only these say which node holds a block: confd reads them, not
//!   the block's own `affinity` field.
//! - `/calico/ipam/v2/assignment/ipv4/block/<a.b.c.d>-<len>`: an allocation block. Each
//!   non-null entry of `allocations` is an address in use, its value an index into
//!   `attributes`, whose `secondary` names the `pod`, `namespace` and `node` holding it (or a
//!   `type` such as `ipipTunnelAddress` for addresses no pod holds).
//!
//! Unknown fields are ignored, and soft-deleted entries (`"deleted": true`) skipped, as
//! Calico's decoder does. Diagnostics point into [`Snapshot::listing`], the text the CLI
//! registers for the source. Pure: no network; the CLI's `etcd` module fetches the pairs.

use crate::current::calico_yaml::UNREADABLE_STATE;
use crate::current::{Holders, Read, Workload, workloads_of};
use calplan_calico::resources::{Resource, ResourceKind, ResourceSet};
use calplan_diagnostics::{Diagnostic, Diagnostics, FileId, Severity, Span};
use calplan_model::ipam::{AffinityState, ObservedAffinity};
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Where Calico keeps v3 resources.
pub const RESOURCE_PREFIX: &str = "/calico/resources/v3/projectcalico.org/";
/// Where Calico keeps IPAM: blocks, affinities, handles.
pub const IPAM_PREFIX: &str = "/calico/ipam/v2/";
/// The resource plurals calplan reads: what it plans, and the endpoints that hold addresses.
pub const RESOURCE_PLURALS: [&str; 7] =
    ["ippools", "bgppeers", "bgpconfigurations", "bgpfilters", "nodes", "workloadendpoints", "clusterinformations"];

/// The key Calico stores a resource under.
pub fn resource_key(kind: ResourceKind, name: &str) -> String {
    format!("{RESOURCE_PREFIX}{}/{name}", kind.plural())
}

/// A resource as Calico's client stores it (`clientv3/resources.go`): the whole object as
/// JSON, `apiVersion` and `kind` set, without `resourceVersion`, which etcd's `mod_revision`
/// stands for and which goes into the write's compare instead.
pub fn stored_value(resource: &Resource) -> Vec<u8> {
    let mut value = resource.to_json();
    if let Some(metadata) = value.get_mut("metadata").and_then(serde_json::Value::as_object_mut) {
        metadata.remove("resourceVersion");
        metadata.remove("selfLink");
    }
    value.to_string().into_bytes()
}

/// One key as etcd holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
}

/// The keys calplan read, all at one etcd revision, sorted by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The store's revision the keys were read at (the header revision of the first range).
    pub revision: i64,
    pub pairs: Vec<KeyValue>,
}

impl Snapshot {
    pub fn new(revision: i64, mut pairs: Vec<KeyValue>) -> Snapshot {
        pairs.sort_by(|a, b| a.key.cmp(&b.key));
        pairs.dedup_by(|a, b| a.key == b.key);
        Snapshot { revision, pairs }
    }

    /// The text diagnostics point into: per key, a line `KEY  mod_revision=N` and a line with
    /// the value as stored.
    pub fn listing(&self) -> String {
        self.layout().0
    }

    /// Where each pair's key line and value sit in the listing.
    fn layout(&self) -> (String, Vec<(Span, Span)>) {
        let mut text = format!("# etcd revision {}\n", self.revision);
        let mut spans = Vec::with_capacity(self.pairs.len());
        for pair in &self.pairs {
            let key_start = text.len();
            text.push_str(&pair.key);
            let key_end = text.len();
            text.push_str(&format!("  mod_revision={}\n", pair.mod_revision));
            let value_start = text.len();
            text.push_str(&String::from_utf8_lossy(&pair.value));
            let value_end = text.len();
            text.push('\n');
            spans.push((Span::new(FileId(0), key_start, key_end), Span::new(FileId(0), value_start, value_end)));
        }
        (text, spans)
    }

    /// A digest of what calplan read: every key with its `mod_revision` and value, in key
    /// order, each field length-prefixed. The store's own revision is left out: it moves on
    /// any write anywhere in etcd (Felix's status reports, every few seconds), while this
    /// changes only when a key calplan read changes, so a stale plan is one whose state did.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for pair in &self.pairs {
            hasher.update((pair.key.len() as u64).to_be_bytes());
            hasher.update(pair.key.as_bytes());
            hasher.update(pair.mod_revision.to_be_bytes());
            hasher.update((pair.value.len() as u64).to_be_bytes());
            hasher.update(&pair.value);
        }
        calplan_targets::Artifact::hex_digest(&hasher.finalize())
    }
}

/// What the datastore holds, as calplan plans with it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EtcdState {
    pub resources: ResourceSet,
    pub affinities: Vec<ObservedAffinity>,
    /// Addresses in use per block.
    pub block_usage: BTreeMap<IpNet, u64>,
    pub workloads: Vec<Workload>,
    /// `ClusterInformation` `default`'s `spec.calicoVersion`: the release calico-node runs.
    pub calico_version: Option<String>,
}

#[derive(Deserialize)]
struct AffinityValue {
    #[serde(default)]
    state: String,
    #[serde(default)]
    deleted: bool,
}

/// An allocation block as Calico stores it (libcalico-go's `model.AllocationBlock`): the etcd
/// value, and the `spec` of Kubernetes' `IPAMBlock` (the same field names). Read leniently
/// (every field may be missing); written whole, as Calico's IPAM writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockValue {
    #[serde(default)]
    pub cidr: String,
    /// `host:<node>` for a block affine to a node.
    #[serde(default)]
    pub affinity: Option<String>,
    #[serde(default)]
    pub strict_affinity: bool,
    /// Per address of the block, the index of its attribute when allocated.
    #[serde(default)]
    pub allocations: Vec<Option<usize>>,
    /// The ordinals free to allocate, in the order Calico hands them out.
    #[serde(default)]
    pub unallocated: Vec<usize>,
    #[serde(default)]
    pub attributes: Vec<BlockAttribute>,
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct BlockAttribute {
    /// The IPAM handle the address belongs to (`k8s-pod-network.<container>`).
    #[serde(default)]
    pub handle_id: Option<String>,
    #[serde(default)]
    pub secondary: Option<BTreeMap<String, String>>,
}

/// `192.168.0.0-26`: a block as Calico names it in keys.
pub fn block_name(block: &IpNet) -> String {
    format!("{}-{}", block.network(), block.prefix_len())
}

fn family(block: &IpNet) -> &'static str {
    if block.addr().is_ipv4() { "ipv4" } else { "ipv6" }
}

/// The key of `node`'s affinity to `block`.
pub fn affinity_key(node: &str, block: &IpNet) -> String {
    format!("{IPAM_PREFIX}host/{node}/{}/block/{}", family(block), block_name(block))
}

/// The value of an affinity in `state`, as Calico 3.15 and later write it.
pub fn affinity_value(state: AffinityState) -> Vec<u8> {
    format!(r#"{{"state":"{}","deleted":false}}"#, state.as_str()).into_bytes()
}

/// The key of an allocation block.
pub fn block_key(block: &IpNet) -> String {
    format!("{IPAM_PREFIX}assignment/{}/block/{}", family(block), block_name(block))
}

/// The key of an IPAM handle.
pub fn handle_key(handle: &str) -> String {
    format!("{IPAM_PREFIX}handle/{handle}")
}

impl BlockValue {
    /// An empty block affine to `node`, every address free, as Calico's IPAM claims one.
    pub fn claimed(block: &IpNet, node: &str) -> BlockValue {
        let size = block_size(block);
        BlockValue {
            cidr: block.trunc().to_string(),
            affinity: Some(format!("host:{node}")),
            allocations: vec![None; size],
            unallocated: (0..size).collect(),
            ..BlockValue::default()
        }
    }

    /// Allocates `ordinal` to `handle` with these attributes; `false` when it is taken.
    pub fn assign(&mut self, ordinal: usize, handle: &str, secondary: BTreeMap<String, String>) -> bool {
        if self.allocations.get(ordinal).is_none_or(Option::is_some) {
            return false;
        }
        self.attributes.push(BlockAttribute { handle_id: Some(handle.to_string()), secondary: Some(secondary) });
        self.allocations[ordinal] = Some(self.attributes.len() - 1);
        self.unallocated.retain(|free| *free != ordinal);
        true
    }

    /// Frees `ordinal`; its attribute goes when no other address uses it (Calico keeps the
    /// list compact). Returns the handle it held.
    pub fn release(&mut self, ordinal: usize) -> Option<String> {
        let index = self.allocations.get_mut(ordinal)?.take()?;
        self.unallocated.push(ordinal);
        let handle = self.attributes.get(index).and_then(|attribute| attribute.handle_id.clone());
        if !self.allocations.iter().flatten().any(|used| *used == index) {
            self.attributes.remove(index);
            for used in self.allocations.iter_mut().flatten() {
                if *used > index {
                    *used -= 1;
                }
            }
        }
        handle
    }

    /// The ordinal of an address of the block.
    pub fn ordinal_of(block: &IpNet, address: IpAddr) -> Option<usize> {
        if !block.contains(&address) {
            return None;
        }
        let offset = match (block.network(), address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => u128::from(u32::from(address) - u32::from(network)),
            (IpAddr::V6(network), IpAddr::V6(address)) => u128::from(address) - u128::from(network),
            _ => return None,
        };
        usize::try_from(offset).ok()
    }

    /// The block's `ordinal`th address.
    pub fn address(block: &IpNet, ordinal: usize) -> Option<IpAddr> {
        nth_address(*block, ordinal)
    }

    pub fn in_use(&self) -> usize {
        self.allocations.iter().flatten().count()
    }
}

/// Addresses in a block (Calico's blocks hold at most 2^16 or so; larger prefixes are capped).
fn block_size(block: &IpNet) -> usize {
    let bits = u32::from(block.max_prefix_len() - block.prefix_len()).min(20);
    1usize << bits
}

/// Reads every pair; `file` is the source the CLI registered [`Snapshot::listing`] under.
pub fn read(file: FileId, snapshot: &Snapshot) -> Read<EtcdState> {
    let mut diagnostics = Diagnostics::new();
    let (_, spans) = snapshot.layout();
    let relocate = |span: Span| Span { file, ..span };
    let mut state = EtcdState::default();
    let mut holders: Holders = BTreeMap::new();
    for (pair, (key_span, value_span)) in snapshot.pairs.iter().zip(spans) {
        let at = Located { key: relocate(key_span), value: relocate(value_span) };
        if let Some(path) = pair.key.strip_prefix(RESOURCE_PREFIX) {
            read_resource(path, pair, &at, &mut state, &mut holders, &mut diagnostics);
        } else if let Some(path) = pair.key.strip_prefix(IPAM_PREFIX) {
            read_ipam(path, pair, &at, &mut state, &mut holders, &mut diagnostics);
        }
    }
    state.affinities.sort();
    state.workloads = workloads_of(holders);
    let value = (!diagnostics.has_errors()).then_some(state);
    Read { value, diagnostics }
}

pub(crate) struct Located {
    pub(crate) key: Span,
    pub(crate) value: Span,
}

fn unreadable(at: Span, message: impl Into<String>, label: &str) -> Diagnostic {
    Diagnostic::new(&UNREADABLE_STATE, at, message)
        .label(label.to_string())
        .help("calplan reads Calico's etcdv3 layout as calico-node and calicoctl write it")
}

fn parse_json<'a, T: Deserialize<'a>>(pair: &'a KeyValue, at: &Located, what: &str, diagnostics: &mut Diagnostics) -> Option<T> {
    match serde_json::from_slice(&pair.value) {
        Ok(value) => Some(value),
        Err(error) => {
            diagnostics.push(unreadable(at.value, format!("cannot read `{}` as {what}: {error}", pair.key), "this value"));
            None
        }
    }
}

fn read_resource(path: &str, pair: &KeyValue, at: &Located, state: &mut EtcdState, holders: &mut Holders, diagnostics: &mut Diagnostics) {
    let parts: Vec<&str> = path.split('/').collect();
    let kind = match parts[0] {
        "workloadendpoints" => {
            read_workload_endpoint(&parts, pair, at, holders, diagnostics);
            return;
        }
        "clusterinformations" => {
            if parts[1..] == ["default"]
                && let Some(value) = parse_json::<serde_json::Value>(pair, at, "a Calico `ClusterInformation`", diagnostics)
            {
                state.calico_version = value["spec"]["calicoVersion"].as_str().filter(|version| !version.is_empty()).map(str::to_string);
            }
            return;
        }
        plural => match ResourceKind::from_plural(plural) {
            Some(kind) => kind,
            None => return,
        },
    };
    let [_, name] = parts[..] else {
        diagnostics.push(unreadable(at.key, format!("`{}` is not a {} key", pair.key, kind.as_str()), "expected `…/<plural>/<name>`"));
        return;
    };
    let Some(value) = parse_json::<serde_json::Value>(pair, at, &format!("a Calico `{}`", kind.as_str()), diagnostics) else {
        return;
    };
    if !value.is_object() {
        diagnostics.push(unreadable(
            at.value,
            format!("`{}` holds no Calico `{}`: its value is not an object", pair.key, kind.as_str()),
            "this value",
        ));
        return;
    }
    // The value's JSON, read again as YAML (of which JSON is a part) for the position of every
    // field, is checked and read as the YAML exports are. `apiVersion` and `kind`, which Calico
    // forces on write, may be missing from a value written by hand: the key says the kind.
    let text = String::from_utf8_lossy(&pair.value);
    let mut resource = match calplan_syntax::yaml::parse_at(at.value.file, &text, at.value.start as usize) {
        Ok(mut documents) if documents.len() == 1 => {
            match crate::current::calico_yaml::read_resource(kind, &documents.remove(0), diagnostics) {
                Some(resource) => resource,
                None => return,
            }
        }
        // JSON past the YAML reader's limits (nested over 64 levels): said so, not read.
        Err(error) if error.limit => {
            calplan_syntax::yaml_diagnostic(Err(error), diagnostics);
            return;
        }
        // JSON the YAML reader does not take (rare: tabs in indentation): read as JSON.
        _ => match Resource::from_json(kind, value) {
            Ok(resource) => resource,
            Err(error) => {
                diagnostics.push(unreadable(at.value, format!("cannot read this `{}`: {error}", kind.as_str()), "this value"));
                return;
            }
        },
    };
    if resource.name() != name {
        diagnostics.push(
            unreadable(at.value, format!("the key names `{name}` but the value's `metadata.name` is `{}`", resource.name()), "this value")
                .severity(Severity::Warning),
        );
    }
    resource.metadata_mut().resource_version = Some(pair.mod_revision.to_string());
    state.resources.insert(resource);
}

fn read_workload_endpoint(parts: &[&str], pair: &KeyValue, at: &Located, holders: &mut Holders, diagnostics: &mut Diagnostics) {
    let [_, namespace, _] = parts[..] else {
        diagnostics.push(unreadable(
            at.key,
            format!("`{}` is not a WorkloadEndpoint key", pair.key),
            "expected `…/workloadendpoints/<namespace>/<name>`",
        ));
        return;
    };
    let Some(value) = parse_json::<serde_json::Value>(pair, at, "a Calico `WorkloadEndpoint`", diagnostics) else {
        return;
    };
    let spec = &value["spec"];
    let text = |field: &str| spec.get(field).and_then(serde_json::Value::as_str).filter(|text| !text.is_empty());
    let Some(name) = text("pod").or_else(|| text("workload")) else {
        return;
    };
    let node = text("node").unwrap_or_default().to_string();
    let networks: Vec<IpNet> = spec
        .get("ipNetworks")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|network| network.as_str()?.parse().ok())
        .collect();
    holders.entry((Some(namespace.to_string()), name.to_string(), node)).or_default().extend(networks);
}

/// `10.65.79.0-26` (the key form of `10.65.79.0/26`), IPv6 colons kept.
fn block_cidr(text: &str) -> Option<IpNet> {
    let (address, length) = text.rsplit_once('-')?;
    format!("{address}/{length}").parse().ok()
}

fn read_ipam(path: &str, pair: &KeyValue, at: &Located, state: &mut EtcdState, holders: &mut Holders, diagnostics: &mut Diagnostics) {
    let parts: Vec<&str> = path.split('/').collect();
    match parts[..] {
        ["host", node, "ipv4" | "ipv6", "block", cidr] => {
            let Some(block) = block_cidr(cidr) else {
                diagnostics.push(unreadable(at.key, format!("`{cidr}` is not a block"), "expected `<address>-<prefix length>`"));
                return;
            };
            // An empty value is what Calico before v3.15 wrote: an implicitly confirmed affinity.
            let value = if pair.value.iter().all(u8::is_ascii_whitespace) {
                AffinityValue { state: String::new(), deleted: false }
            } else {
                let Some(value) = parse_json::<AffinityValue>(pair, at, "a block affinity", diagnostics) else {
                    return;
                };
                value
            };
            if value.deleted {
                return;
            }
            let Some(affinity_state) = AffinityState::parse(&value.state) else {
                diagnostics.push(unreadable(
                    at.value,
                    format!("unknown affinity state `{}`", value.state),
                    "expected `pending`, `confirmed` or `pendingDeletion`",
                ));
                return;
            };
            state.affinities.push(ObservedAffinity { block, node: node.to_string(), state: affinity_state });
        }
        ["assignment", "ipv4" | "ipv6", "block", cidr] => {
            let Some(block) = block_cidr(cidr) else {
                diagnostics.push(unreadable(at.key, format!("`{cidr}` is not a block"), "expected `<address>-<prefix length>`"));
                return;
            };
            let Some(value) = parse_json::<BlockValue>(pair, at, "an allocation block", diagnostics) else {
                return;
            };
            if value.deleted {
                return;
            }
            read_block(block, &value, at, state, holders, diagnostics);
        }
        // Handles, the IPAM configuration, host markers and virtual (load-balancer)
        // affinities say nothing calplan plans with.
        _ => {}
    }
}

/// Counts a block's addresses in use and records the pods holding them.
pub(crate) fn read_block(
    block: IpNet,
    value: &BlockValue,
    at: &Located,
    state: &mut EtcdState,
    holders: &mut Holders,
    diagnostics: &mut Diagnostics,
) {
    let owner = value.affinity.as_deref().and_then(|affinity| affinity.strip_prefix("host:")).unwrap_or_default();
    let mut in_use = 0u64;
    for (ordinal, allocation) in value.allocations.iter().enumerate() {
        let Some(index) = allocation else { continue };
        in_use += 1;
        let Some(address) = nth_address(block, ordinal) else {
            diagnostics.push(unreadable(at.value, format!("block {block} has more allocations than addresses"), "this value"));
            return;
        };
        let Some(attribute) = value.attributes.get(*index) else {
            diagnostics.push(unreadable(
                at.value,
                format!("allocation {ordinal} of block {block} points at attribute {index}, which does not exist"),
                "this value",
            ));
            continue;
        };
        let secondary = attribute.secondary.as_ref();
        let field = |name: &str| secondary.and_then(|secondary| secondary.get(name)).filter(|text| !text.is_empty());
        // Tunnel and service addresses have no pod: no workload to recreate.
        let Some(pod) = field("pod") else { continue };
        let node = field("node").map_or(owner, String::as_str).to_string();
        holders.entry((field("namespace").cloned(), pod.clone(), node)).or_default().push(IpNet::from(address));
    }
    state.block_usage.insert(block, in_use);
}

/// The block's `ordinal`th address, if it has that many.
fn nth_address(block: IpNet, ordinal: usize) -> Option<IpAddr> {
    let size = 1u128.checked_shl(u32::from(block.max_prefix_len() - block.prefix_len())).unwrap_or(u128::MAX);
    let ordinal = u128::try_from(ordinal).ok().filter(|ordinal| *ordinal < size)?;
    Some(match block.network() {
        IpAddr::V4(network) => IpAddr::V4((u32::from(network) + u32::try_from(ordinal).ok()?).into()),
        IpAddr::V6(network) => IpAddr::V6((u128::from(network) + ordinal).into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(key: &str, value: &str, revision: i64) -> KeyValue {
        KeyValue { key: key.into(), value: value.as_bytes().to_vec(), create_revision: revision, mod_revision: revision }
    }

    fn read_ok(snapshot: &Snapshot) -> EtcdState {
        let read = read(FileId(3), snapshot);
        assert!(read.diagnostics.is_empty(), "{:?}", read.diagnostics);
        read.value.unwrap()
    }

    /// The shapes of the reference's real dumps: a pool as `json.Marshal` stores it, an
    /// affinity, and a block holding a tunnel address and two pods (one dual-stack).
    fn cluster() -> Snapshot {
        let mut allocations = vec!["null"; 64];
        allocations[0] = "0";
        allocations[5] = "1";
        allocations[6] = "2";
        Snapshot::new(
            120,
            vec![
                pair(
                    "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool",
                    r#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"default-ipv4-ippool","uid":"2d3408b1-c17c-11e8-851d-525469f66d5d","creationTimestamp":"2018-09-26T11:06:11Z"},"spec":{"cidr":"192.168.0.0/16","ipipMode":"Always","natOutgoing":true,"blockSize":26,"nodeSelector":"all()","vxlanMode":"Never"}}"#,
                    17,
                ),
                pair("/calico/resources/v3/projectcalico.org/felixconfigurations/default", r#"{"kind":"FelixConfiguration"}"#, 3),
                pair("/calico/ipam/v2/host/k8s-master-01/ipv4/block/192.168.151.128-26", r#"{"state":"confirmed","deleted":false}"#, 40),
                pair("/calico/ipam/v2/host/k8s-node-01/ipv4/block/192.168.7.0-26", "", 41),
                pair("/calico/ipam/v2/host/k8s-node-02/ipv4/block/192.168.9.0-26", r#"{"state":"pending"}"#, 42),
                pair("/calico/ipam/v2/host/k8s-node-03/ipv4/block/192.168.10.0-26", r#"{"state":"confirmed","deleted":true}"#, 43),
                pair(
                    "/calico/ipam/v2/assignment/ipv4/block/192.168.151.128-26",
                    &format!(
                        r#"{{"cidr":"192.168.151.128/26","affinity":"host:k8s-master-01","allocations":[{}],"unallocated":[1,2,3],"attributes":[{{"handle_id":"ipip-tunnel-addr-k8s-master-01","secondary":{{"node":"k8s-master-01","type":"ipipTunnelAddress"}}}},{{"handle_id":"k8s-pod-network.a79be3ab","secondary":{{"namespace":"kube-system","node":"k8s-master-01","pod":"coredns-6f4fd4bdf-8q7zp","timestamp":"2024-01-22 14:26:54.1 +0000 UTC"}}}},{{"handle_id":"k8s-pod-network.b8","secondary":{{"namespace":"default","node":"k8s-master-01","pod":"web-0"}}}}],"strictAffinity":false,"deleted":false}}"#,
                        allocations.join(",")
                    ),
                    50,
                ),
                pair(
                    "/calico/ipam/v2/assignment/ipv6/block/fd5f:abcd:64:4f2c:ec1b:27b9:1989:77c0-122",
                    r#"{"cidr":"fd5f:abcd:64:4f2c:ec1b:27b9:1989:77c0/122","affinity":"host:k8s-master-01","allocations":[null,null,0],"attributes":[{"handle_id":"k8s-pod-network.b8","secondary":{"namespace":"default","node":"k8s-master-01","pod":"web-0"}}]}"#,
                    51,
                ),
                pair("/calico/ipam/v2/handle/k8s-pod-network.a79be3ab", r#"{"block":{"192.168.151.128/26":1},"deleted":false}"#, 52),
                pair("/calico/ipam/v2/config", r#"{"strict_affinity":false,"auto_allocate_blocks":true}"#, 2),
            ],
        )
    }

    #[test]
    fn resources_carry_their_mod_revision() {
        let state = read_ok(&cluster());
        let pool = state.resources.pools().next().unwrap();
        assert_eq!(pool.metadata.resource_version.as_deref(), Some("17"));
        assert_eq!(pool.spec.block_size, Some(26));
        assert_eq!(state.resources.resources.len(), 1, "FelixConfiguration is not planned");
    }

    #[test]
    fn affinities_keep_their_state_and_skip_deleted_ones() {
        let state = read_ok(&cluster());
        let affinities: Vec<(String, String, AffinityState)> =
            state.affinities.iter().map(|a| (a.block.to_string(), a.node.clone(), a.state)).collect();
        assert_eq!(
            affinities,
            [
                ("192.168.7.0/26".to_string(), "k8s-node-01".to_string(), AffinityState::Implicit),
                ("192.168.9.0/26".to_string(), "k8s-node-02".to_string(), AffinityState::Pending),
                ("192.168.151.128/26".to_string(), "k8s-master-01".to_string(), AffinityState::Confirmed),
            ]
        );
    }

    #[test]
    fn blocks_give_usage_and_the_pods_holding_addresses() {
        let state = read_ok(&cluster());
        assert_eq!(state.block_usage[&"192.168.151.128/26".parse().unwrap()], 3, "the tunnel address counts");
        assert_eq!(state.block_usage[&"fd5f:abcd:64:4f2c:ec1b:27b9:1989:77c0/122".parse().unwrap()], 1);
        let workloads: Vec<String> = state
            .workloads
            .iter()
            .map(|w| {
                format!(
                    "{}/{} {} {:?}",
                    w.namespace.as_deref().unwrap_or(""),
                    w.name,
                    w.node,
                    w.networks.iter().map(ToString::to_string).collect::<Vec<_>>()
                )
            })
            .collect();
        assert_eq!(
            workloads,
            [
                r#"default/web-0 k8s-master-01 ["192.168.151.134/32", "fd5f:abcd:64:4f2c:ec1b:27b9:1989:77c2/128"]"#,
                r#"kube-system/coredns-6f4fd4bdf-8q7zp k8s-master-01 ["192.168.151.133/32"]"#,
            ]
        );
    }

    #[test]
    fn workload_endpoints_merge_with_the_blocks() {
        let mut snapshot = cluster();
        snapshot.pairs.push(pair(
            "/calico/resources/v3/projectcalico.org/workloadendpoints/default/k8s--master--01-k8s-web--0-eth0",
            r#"{"kind":"WorkloadEndpoint","apiVersion":"projectcalico.org/v3","metadata":{"name":"k8s--master--01-k8s-web--0-eth0","namespace":"default"},"spec":{"orchestrator":"k8s","node":"k8s-master-01","pod":"web-0","endpoint":"eth0","ipNetworks":["192.168.151.134/32"],"interfaceName":"cali0123456789a"}}"#,
            60,
        ));
        let snapshot = Snapshot::new(snapshot.revision, snapshot.pairs);
        let state = read_ok(&snapshot);
        assert_eq!(state.workloads.len(), 2);
        assert_eq!(state.workloads[0].networks.len(), 2);
    }

    #[test]
    fn a_bad_value_is_located_in_the_listing() {
        let snapshot = Snapshot::new(
            9,
            vec![
                pair("/calico/resources/v3/projectcalico.org/bgppeers/rr", r#"{"metadata":{"name":"rr"},"spec":{"asNumber":"lots"}}"#, 5),
                pair("/calico/ipam/v2/host/n1/ipv4/block/10.0.0.0-26", r#"{"state":"sideways"}"#, 6),
            ],
        );
        let read = read(FileId(3), &snapshot);
        assert!(read.value.is_none());
        let listing = snapshot.listing();
        let located: Vec<(&str, &str)> =
            read.diagnostics.iter().map(|d| (&listing[d.span().start as usize..d.span().end as usize], d.message.as_str())).collect();
        assert_eq!(located.len(), 2);
        // Keys sort `/calico/ipam/…` before `/calico/resources/…`.
        assert_eq!(located[0], (r#"{"state":"sideways"}"#, "unknown affinity state `sideways`"));
        assert_eq!(located[1].0, r#""lots""#, "the field's own value: {located:?}");
        assert!(located[1].1.starts_with("cannot read this `BGPPeer`"), "{located:?}");
        assert!(read.diagnostics.iter().all(|d| d.span().file == FileId(3)));
    }

    #[test]
    fn a_stored_resource_reads_back_with_its_revision() {
        let state = read_ok(&cluster());
        let pool = state.resources.pools().next().unwrap().clone();
        let resource = Resource::IpPool(pool);
        let key = resource_key(resource.kind(), resource.name());
        assert_eq!(key, "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool");
        let stored = stored_value(&resource);
        assert!(!String::from_utf8_lossy(&stored).contains("resourceVersion"));
        let again = read_ok(&Snapshot::new(200, vec![KeyValue { key, value: stored, create_revision: 17, mod_revision: 180 }]));
        let mut expected = resource.clone();
        expected.metadata_mut().resource_version = Some("180".into());
        assert_eq!(again.resources.iter().next(), Some(&expected));
    }

    #[test]
    fn the_fingerprint_follows_keys_revisions_and_values_only() {
        let base = cluster();
        let mut later = base.clone();
        later.revision += 100;
        assert_eq!(base.fingerprint(), later.fingerprint(), "a write elsewhere in etcd is not a change");
        later.pairs[0].mod_revision += 1;
        assert_ne!(base.fingerprint(), later.fingerprint());
        let mut edited = base.clone();
        edited.pairs[0].value.push(b' ');
        assert_ne!(base.fingerprint(), edited.fingerprint());
    }

    /// What the writer makes, the reader reads back: a claimed block with a pod's address, its
    /// affinity, and the address released again.
    #[test]
    fn written_blocks_and_affinities_read_back() {
        let block: IpNet = "10.244.3.0/24".parse().unwrap();
        let mut value = BlockValue::claimed(&block, "n1");
        assert_eq!(value.allocations.len(), 256);
        let pod = BTreeMap::from([
            ("namespace".to_string(), "lab".to_string()),
            ("pod".to_string(), "pod3".to_string()),
            ("node".to_string(), "n1".to_string()),
        ]);
        assert!(value.assign(5, "k8s-pod-network.x", pod.clone()));
        assert!(!value.assign(5, "k8s-pod-network.y", pod), "an address is handed out once");
        assert_eq!(BlockValue::address(&block, 5), Some("10.244.3.5".parse().unwrap()));
        assert_eq!(BlockValue::ordinal_of(&block, "10.244.3.5".parse().unwrap()), Some(5));
        assert_eq!(block_key(&block), "/calico/ipam/v2/assignment/ipv4/block/10.244.3.0-24");
        let snapshot = Snapshot::new(
            7,
            vec![
                pair(&affinity_key("n1", &block), std::str::from_utf8(&affinity_value(AffinityState::Confirmed)).unwrap(), 6),
                pair(&block_key(&block), &serde_json::to_string(&value).unwrap(), 7),
            ],
        );
        let state = read(FileId(0), &snapshot).value.unwrap();
        assert_eq!(state.affinities, [ObservedAffinity { block, node: "n1".into(), state: AffinityState::Confirmed }]);
        assert_eq!(state.block_usage[&block], 1);
        assert_eq!(state.workloads[0].name, "pod3");
        assert_eq!(value.release(5).as_deref(), Some("k8s-pod-network.x"));
        assert_eq!((value.in_use(), value.attributes.len()), (0, 0));
        assert_eq!(affinity_key("n1", &"fd00::40/122".parse().unwrap()), "/calico/ipam/v2/host/n1/ipv6/block/fd00::40-122");
    }
}
