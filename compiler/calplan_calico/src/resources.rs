//! Calico `projectcalico.org/v3` resources, with Calico's field names.
//!
//! Fields are optional where Calico's are, so an export reads back exactly as written; the
//! `effective` accessors apply Calico's defaults, so comparisons see through an omitted field.
//! Spec fields calplan does not model are kept in `extra` and written back unchanged.

use crate::AsNumber;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub const API_VERSION: &str = "projectcalico.org/v3";

/// Metadata, split into what the operator owns and what the API server fills in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Server-managed: never part of a diff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Value>,
}

impl ObjectMeta {
    pub fn named(name: impl Into<String>) -> ObjectMeta {
        ObjectMeta { name: name.into(), ..ObjectMeta::default() }
    }

    /// The same metadata without what the server manages.
    pub fn without_server_fields(&self) -> ObjectMeta {
        ObjectMeta { name: self.name.clone(), labels: self.labels.clone(), annotations: self.annotations.clone(), ..ObjectMeta::default() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub enum EncapsulationMode {
    #[default]
    Never,
    Always,
    CrossSubnet,
}

impl EncapsulationMode {
    pub fn is_enabled(self) -> bool {
        self != EncapsulationMode::Never
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EncapsulationMode::Never => "Never",
            EncapsulationMode::Always => "Always",
            EncapsulationMode::CrossSubnet => "CrossSubnet",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpPool {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    /// Absent or `null`, Go reads the zero value; current-state readers report the missing
    /// `cidr` Calico requires.
    #[serde(default)]
    pub spec: IpPoolSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpPoolSpec {
    #[serde(default)]
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipip_mode: Option<EncapsulationMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vxlan_mode: Option<EncapsulationMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_outgoing: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, rename = "disableBGPExport", skip_serializing_if = "Option::is_none")]
    pub disable_bgp_export: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_uses: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_mode: Option<String>,
    /// 3.31: the namespaces whose pods may take addresses from the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl IpPoolSpec {
    pub fn effective_block_size(&self) -> u8 {
        self.block_size.unwrap_or(if self.cidr.contains(':') { 122 } else { 26 })
    }

    pub fn effective_node_selector(&self) -> &str {
        self.node_selector.as_deref().filter(|selector| !selector.trim().is_empty()).unwrap_or("all()")
    }

    pub fn effective_allowed_uses(&self) -> Vec<String> {
        self.allowed_uses.clone().unwrap_or_else(|| vec!["Workload".into(), "Tunnel".into()])
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpPeer {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: BgpPeerSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpPeerSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<String>,
    #[serde(default, rename = "peerIP", skip_serializing_if = "Option::is_none")]
    pub peer_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    #[serde(default, rename = "localASNumber", skip_serializing_if = "Option::is_none")]
    pub local_as_number: Option<AsNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_original_next_hop: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretKeyRefHolder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restart_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_time: Option<String>,
    #[serde(default, rename = "numAllowedLocalASNumbers", skip_serializing_if = "Option::is_none")]
    pub num_allowed_local_as_numbers: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_security: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reachable_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_peering: Option<String>,
    /// 3.30: peer with the node's own workloads this selector matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_workload_selector: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl BgpPeerSpec {
    /// confd's test for a global BGPPeer: `nodeSelector` and `node` both the empty string.
    /// `nodeSelector: all()` is not global; it gives every node a node-specific peering.
    pub fn is_global_for_confd(&self) -> bool {
        self.node_selector.as_deref().unwrap_or("").is_empty() && self.node.as_deref().unwrap_or("").is_empty()
    }
}

/// `password: {secretKeyRef: {name, key}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRefHolder {
    pub secret_key_ref: SecretKeyRef,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpConfiguration {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: BgpConfigurationSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpConfigurationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_severity_screen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_to_node_mesh_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    #[serde(default, rename = "serviceClusterIPs", skip_serializing_if = "Option::is_none")]
    pub service_cluster_ips: Option<Vec<CidrEntry>>,
    #[serde(default, rename = "serviceExternalIPs", skip_serializing_if = "Option::is_none")]
    pub service_external_ips: Option<Vec<CidrEntry>>,
    #[serde(default, rename = "serviceLoadBalancerIPs", skip_serializing_if = "Option::is_none")]
    pub service_load_balancer_ips: Option<Vec<CidrEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored_interfaces: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_password: Option<SecretKeyRefHolder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_max_restart_time: Option<String>,
    /// Named BGP communities, for `prefixAdvertisements` to refer to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communities: Option<Vec<Community>>,
    /// Communities attached to the routes within a CIDR when they are advertised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_advertisements: Option<Vec<PrefixAdvertisement>>,
    /// 3.30: the node-side address of peerings with local workloads (Felix).
    #[serde(default, rename = "localWorkloadPeeringIPV4", skip_serializing_if = "Option::is_none")]
    pub local_workload_peering_ipv4: Option<String>,
    #[serde(default, rename = "localWorkloadPeeringIPV6", skip_serializing_if = "Option::is_none")]
    pub local_workload_peering_ipv6: Option<String>,
    /// 3.31: `Enabled` (default) or `Disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_load_balancer_aggregation: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `{name, value}`: a community (`aa:nn` or `aa:nn:mm`) by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Community {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// `{cidr, communities}`: community values or names for the routes within `cidr`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PrefixAdvertisement {
    #[serde(default)]
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
}

/// The name prefix of a node's own BGPConfiguration: `node.<node name>`.
pub const NODE_CONFIGURATION_PREFIX: &str = "node.";

impl BgpConfigurationSpec {
    pub fn effective_mesh(&self) -> bool {
        self.node_to_node_mesh_enabled.unwrap_or(true)
    }

    pub fn effective_as_number(&self) -> AsNumber {
        self.as_number.unwrap_or(AsNumber::CALICO_DEFAULT)
    }
}

/// An entry of `serviceClusterIPs`, `serviceExternalIPs` or `serviceLoadBalancerIPs`. Calico's
/// CRD lets `cidr` be left out, and confd skips such an entry (Calico's own confd fixture
/// `mesh/static-routes` has one): it reads as the empty string and is written back without.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CidrEntry {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cidr: String,
}

/// A `BGPFilter`: import and export rules per address family, which BGPPeers name in
/// `filters`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpFilter {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: BgpFilterSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BgpFilterSpec {
    #[serde(default, rename = "exportV4", skip_serializing_if = "Option::is_none")]
    pub export_v4: Option<Vec<BgpFilterRule>>,
    #[serde(default, rename = "importV4", skip_serializing_if = "Option::is_none")]
    pub import_v4: Option<Vec<BgpFilterRule>>,
    #[serde(default, rename = "exportV6", skip_serializing_if = "Option::is_none")]
    pub export_v6: Option<Vec<BgpFilterRule>>,
    #[serde(default, rename = "importV6", skip_serializing_if = "Option::is_none")]
    pub import_v6: Option<Vec<BgpFilterRule>>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl BgpFilterSpec {
    /// The rules for a direction (`import` / `export`) and family (4 / 6).
    pub fn rules(&self, export: bool, v6: bool) -> &[BgpFilterRule] {
        let rules = match (export, v6) {
            (true, false) => &self.export_v4,
            (false, false) => &self.import_v4,
            (true, true) => &self.export_v6,
            (false, true) => &self.import_v6,
        };
        rules.as_deref().unwrap_or_default()
    }
}

/// One rule: its matches (all optional) and its action.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpFilterRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    /// 3.29: the prefix lengths a route within `cidr` may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_length: Option<PrefixLength>,
    /// `RemotePeers`: routes learned over BGP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// An interface name or pattern (`*` wildcards) the route leaves through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// `Equal`, `NotEqual`, `In` or `NotIn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_operator: Option<String>,
    /// `Accept` or `Reject`.
    #[serde(default)]
    pub action: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixLength {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i32>,
}

/// Calico's `Node` resource; calplan manages `spec.bgp` and the labels selectors rely on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CalicoNode {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NodeSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<NodeBgpSpec>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeBgpSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(default, rename = "ipv4IPIPTunnelAddr", skip_serializing_if = "Option::is_none")]
    pub ipv4_ipip_tunnel_addr: Option<String>,
    #[serde(default, rename = "routeReflectorClusterID", skip_serializing_if = "Option::is_none")]
    pub route_reflector_cluster_id: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn api_version() -> String {
    API_VERSION.to_string()
}

/// Any of the resources calplan compiles and plans.
#[derive(Clone, Debug, PartialEq)]
pub enum Resource {
    IpPool(IpPool),
    BgpPeer(BgpPeer),
    BgpConfiguration(BgpConfiguration),
    Node(CalicoNode),
    BgpFilter(BgpFilter),
}

/// The kinds, in the order resources are listed and applied: a BGPFilter before the BGPPeers
/// that name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceKind {
    BgpConfiguration,
    IpPool,
    Node,
    BgpFilter,
    BgpPeer,
}

impl ResourceKind {
    /// Every kind, in apply order.
    pub const ALL: [ResourceKind; 5] =
        [ResourceKind::BgpConfiguration, ResourceKind::IpPool, ResourceKind::Node, ResourceKind::BgpFilter, ResourceKind::BgpPeer];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::IpPool => "IPPool",
            ResourceKind::BgpPeer => "BGPPeer",
            ResourceKind::BgpConfiguration => "BGPConfiguration",
            ResourceKind::Node => "Node",
            ResourceKind::BgpFilter => "BGPFilter",
        }
    }

    /// The plural Calico uses in etcd keys and `calicoctl get`.
    pub fn plural(self) -> &'static str {
        match self {
            ResourceKind::IpPool => "ippools",
            ResourceKind::BgpPeer => "bgppeers",
            ResourceKind::BgpConfiguration => "bgpconfigurations",
            ResourceKind::Node => "nodes",
            ResourceKind::BgpFilter => "bgpfilters",
        }
    }

    pub fn from_kind(kind: &str) -> Option<ResourceKind> {
        ResourceKind::ALL.into_iter().find(|candidate| candidate.as_str() == kind)
    }

    pub fn from_plural(plural: &str) -> Option<ResourceKind> {
        ResourceKind::ALL.into_iter().find(|candidate| candidate.plural() == plural)
    }
}

impl Resource {
    pub fn kind(&self) -> ResourceKind {
        match self {
            Resource::IpPool(_) => ResourceKind::IpPool,
            Resource::BgpPeer(_) => ResourceKind::BgpPeer,
            Resource::BgpConfiguration(_) => ResourceKind::BgpConfiguration,
            Resource::Node(_) => ResourceKind::Node,
            Resource::BgpFilter(_) => ResourceKind::BgpFilter,
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Resource::IpPool(resource) => &resource.metadata,
            Resource::BgpPeer(resource) => &resource.metadata,
            Resource::BgpConfiguration(resource) => &resource.metadata,
            Resource::Node(resource) => &resource.metadata,
            Resource::BgpFilter(resource) => &resource.metadata,
        }
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Resource::IpPool(resource) => &mut resource.metadata,
            Resource::BgpPeer(resource) => &mut resource.metadata,
            Resource::BgpConfiguration(resource) => &mut resource.metadata,
            Resource::Node(resource) => &mut resource.metadata,
            Resource::BgpFilter(resource) => &mut resource.metadata,
        }
    }

    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    /// The resource as JSON, with `apiVersion` and `kind` set.
    pub fn to_json(&self) -> Value {
        let mut value = match self {
            Resource::IpPool(resource) => serde_json::to_value(resource),
            Resource::BgpPeer(resource) => serde_json::to_value(resource),
            Resource::BgpConfiguration(resource) => serde_json::to_value(resource),
            Resource::Node(resource) => serde_json::to_value(resource),
            Resource::BgpFilter(resource) => serde_json::to_value(resource),
        }
        .expect("resources serialize");
        value["apiVersion"] = Value::from(API_VERSION);
        value["kind"] = Value::from(self.kind().as_str());
        value
    }

    /// Reads a resource of a known kind from JSON.
    pub fn from_json(kind: ResourceKind, value: Value) -> Result<Resource, serde_json::Error> {
        Ok(match kind {
            ResourceKind::IpPool => Resource::IpPool(serde_json::from_value(value)?),
            ResourceKind::BgpPeer => Resource::BgpPeer(serde_json::from_value(value)?),
            ResourceKind::BgpConfiguration => Resource::BgpConfiguration(serde_json::from_value(value)?),
            ResourceKind::Node => Resource::Node(serde_json::from_value(value)?),
            ResourceKind::BgpFilter => Resource::BgpFilter(serde_json::from_value(value)?),
        })
    }

    /// The resource as a YAML document, as `calicoctl apply -f` takes it. Values that YAML
    /// would read as something else (`!has(x)`, `true`, `1.10`) are quoted.
    pub fn to_yaml(&self) -> String {
        let mut value = self.to_json();
        if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.retain(|key, _| !matches!(key.as_str(), "resourceVersion" | "uid" | "creationTimestamp"));
        }
        serde_saphyr::to_string(&value).expect("resources serialize as YAML")
    }
}

/// One IPPool, BGPPeer, BGPConfiguration, BGPFilter or Node, keyed by kind and name, in apply
/// order.
pub type ResourceKey = (ResourceKind, String);

/// A set of resources, kept in the order they are listed and applied. Each resource is shared:
/// the planner copies the set at every stage, and a copy of 20,000 Nodes costs a pointer each
/// (and compares untouched resources by pointer) rather than copying every Node.
#[derive(Clone, Debug, Default)]
pub struct ResourceSet {
    pub resources: BTreeMap<ResourceKey, std::sync::Arc<Resource>>,
}

impl PartialEq for ResourceSet {
    fn eq(&self, other: &ResourceSet) -> bool {
        self.resources.len() == other.resources.len()
            && self
                .resources
                .iter()
                .zip(&other.resources)
                .all(|((key, a), (other_key, b))| key == other_key && (std::sync::Arc::ptr_eq(a, b) || a == b))
    }
}

impl ResourceSet {
    pub fn insert(&mut self, resource: Resource) -> Option<Resource> {
        self.resources
            .insert((resource.kind(), resource.name().to_string()), std::sync::Arc::new(resource))
            .map(std::sync::Arc::unwrap_or_clone)
    }

    pub fn get(&self, kind: ResourceKind, name: &str) -> Option<&Resource> {
        self.resources.get(&(kind, name.to_string())).map(|resource| &**resource)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.resources.values().map(|resource| &**resource)
    }

    pub fn pools(&self) -> impl Iterator<Item = &IpPool> {
        self.iter().filter_map(|resource| match resource {
            Resource::IpPool(pool) => Some(pool),
            _ => None,
        })
    }

    pub fn peers(&self) -> impl Iterator<Item = &BgpPeer> {
        self.iter().filter_map(|resource| match resource {
            Resource::BgpPeer(peer) => Some(peer),
            _ => None,
        })
    }

    pub fn nodes(&self) -> impl Iterator<Item = &CalicoNode> {
        self.iter().filter_map(|resource| match resource {
            Resource::Node(node) => Some(node),
            _ => None,
        })
    }

    /// The global configuration, `BGPConfiguration` named `default`.
    pub fn bgp_configuration(&self) -> Option<&BgpConfiguration> {
        match self.get(ResourceKind::BgpConfiguration, "default") {
            Some(Resource::BgpConfiguration(configuration)) => Some(configuration),
            _ => None,
        }
    }

    /// A node's own configuration, `BGPConfiguration` named `node.<node>`.
    pub fn node_bgp_configuration(&self, node: &str) -> Option<&BgpConfiguration> {
        match self.get(ResourceKind::BgpConfiguration, &format!("{NODE_CONFIGURATION_PREFIX}{node}")) {
            Some(Resource::BgpConfiguration(configuration)) => Some(configuration),
            _ => None,
        }
    }

    /// The BGPFilters, in name order.
    pub fn filters(&self) -> impl Iterator<Item = &BgpFilter> {
        self.iter().filter_map(|resource| match resource {
            Resource::BgpFilter(filter) => Some(filter),
            _ => None,
        })
    }
}
