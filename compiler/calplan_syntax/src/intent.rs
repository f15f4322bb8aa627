//! The intent file's serde types: field names and shapes exactly as the operator writes them.
//!
//! Values stay as written (strings for CIDRs, selectors and AS numbers); the model resolves and
//! checks them, with these spans. The JSON Schema in `schemas/intent.schema.json` is generated
//! from these types, so doc comments here are the schema's descriptions.

use crate::Spanned;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

pub const API_VERSION: &str = "calplan/v1";
pub const KIND: &str = "ClusterIntent";

/// A Calico cluster's network intent: its pools, BGP topology, nodes and border routers.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "calplan ClusterIntent")]
pub struct IntentFile {
    /// Always `calplan/v1`.
    pub api_version: Spanned<String>,
    /// Always `ClusterIntent`.
    pub kind: Spanned<String>,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// The cluster's name.
    pub name: Spanned<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    /// The Calico release whose behaviour the artifacts follow where releases differ, such as
    /// `"3.30"`. Quote it: unquoted, YAML reads `3.30` as the number 3.3.
    pub calico_version: Option<Spanned<String>>,
    /// Where Calico keeps its resources.
    pub datastore: Option<Spanned<Datastore>>,
    /// Who runs BGP, routes and NAT on the nodes: `calico-node` (default; calplan changes the
    /// datastore only and observes) or `bird` (plain hosts where calplan loads BIRD 2 and the
    /// rulesets itself).
    pub node_agent: Option<Spanned<NodeAgent>>,
    /// How Calico is installed: `manifest` (default) or `operator` (the Tigera operator owns the
    /// pools its `Installation` lists).
    pub installation: Option<Spanned<Installation>>,
    /// calico-node's node address autodetection (`IP_AUTODETECTION_METHOD` syntax).
    pub node_address_autodetection: Option<Autodetection>,
    /// The cluster's Service CIDRs (kube-apiserver `--service-cluster-ip-range`).
    #[serde(rename = "serviceClusterIPs")]
    pub service_cluster_ips: Option<Vec<Spanned<String>>>,
    /// The most pods the kubelet runs on one node (its `maxPods`), for capacity checks.
    pub max_pods_per_node: Option<Spanned<u32>>,
    pub bgp: Option<Bgp>,
    /// Calico IP pools.
    #[serde(default)]
    pub pools: Vec<Pool>,
    /// The cluster's nodes. Optional: with `nodeRules`, or with nodes read from the cluster
    /// (`--current`, `--nodes`), an entry here pins facts of one node (an address, a label)
    /// and works offline.
    #[serde(default)]
    pub nodes: Vec<Node>,
    /// Rules for the nodes selectors match: AS number, labels, route-reflector cluster ID and
    /// address autodetection, for nodes listed here and nodes read from the cluster alike.
    #[serde(default)]
    pub node_rules: Vec<crate::node_rules::NodeRule>,
    /// Hosts and routers outside the cluster that need routes to pods and services.
    #[serde(default)]
    pub routers: Vec<Router>,
    /// Findings accepted for now, each with the reason a reviewer reads: their diagnostics are
    /// not reported (check counts them) and do not stop `compile` or `plan`. Findings that mean
    /// an invalid artifact cannot be allowed.
    #[serde(default)]
    pub allow: Vec<Allow>,
}

/// One rule whose findings are allowed.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Allow {
    /// The rule, by code (`E0402`) or name (`routes-not-propagated`).
    pub rule: Spanned<String>,
    /// Why the findings are accepted, for whoever reviews the intent; required, not blank.
    pub reason: Spanned<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum Datastore {
    #[serde(rename = "etcdv3")]
    Etcdv3,
    #[serde(rename = "kubernetes")]
    Kubernetes,
}

/// Who owns a node's BGP daemon, routes and NAT.
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeAgent {
    /// calico-node: confd renders BIRD's configuration from the datastore, Felix programs
    /// routes, tunnels and NAT.
    #[serde(rename = "calico-node")]
    CalicoNode,
    /// calplan: BIRD 2 on calplan's `bird.cfg`, and calplan's rulesets.
    #[serde(rename = "bird")]
    Bird,
}

/// How Calico was installed, which decides where IP pools are changed.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum Installation {
    /// Calico's manifests: resources are changed directly.
    #[serde(rename = "manifest")]
    Manifest,
    /// The Tigera operator: pools listed in `Installation.spec.calicoNetwork.ipPools` are
    /// changed there.
    #[serde(rename = "operator")]
    Operator,
}

impl NodeAgent {
    /// The name the intent and the command line use.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeAgent::CalicoNode => "calico-node",
            NodeAgent::Bird => "bird",
        }
    }
}

impl Installation {
    /// The name the intent uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Installation::Manifest => "manifest",
            Installation::Operator => "operator",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Autodetection {
    /// `first-found`, `can-reach=DEST`, `interface=REGEX,...`, `skip-interface=REGEX,...`,
    /// `cidr=CIDR,...` or `kubernetes-internal-ip`.
    pub ipv4: Option<Spanned<String>>,
    pub ipv6: Option<Spanned<String>>,
}

/// The cluster-wide BGP settings (Calico's `BGPConfiguration` named `default`) and peerings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Bgp {
    /// The cluster's AS number, plain (`64512`) or dotted (`"1.10"`, quoted); default 64512.
    pub as_number: Option<Spanned<AsNumberText>>,
    /// Whether every node peers with every other node; default true.
    pub node_to_node_mesh: Option<Spanned<bool>>,
    /// BIRD's logging: `Debug`, `Info` (default), `Warning`, `Error`, `Fatal` or `None`.
    pub log_severity: Option<Spanned<LogSeverity>>,
    /// Advertise `serviceClusterIPs` to BGP peers from every node.
    #[serde(rename = "advertiseServiceClusterIPs")]
    pub advertise_service_cluster_ips: Option<Spanned<bool>>,
    /// Service external IP ranges to advertise.
    #[serde(rename = "serviceExternalIPs")]
    pub service_external_ips: Option<Vec<Spanned<String>>>,
    /// Service LoadBalancer IP ranges to advertise.
    #[serde(rename = "serviceLoadBalancerIPs")]
    pub service_load_balancer_ips: Option<Vec<Spanned<String>>>,
    /// The port BIRD listens on, 1–65535; default 179.
    #[schemars(range(min = 1))]
    pub listen_port: Option<Spanned<u16>>,
    /// `NodeIP` makes BIRD listen on the node's address only.
    pub bind_mode: Option<Spanned<BindMode>>,
    /// Interfaces whose routes BIRD ignores, on top of Calico's own (`cali*`, `kube-ipvs*`):
    /// names of letters, digits, `_`, `.` and `-`, with `*` for any characters, at most 15.
    pub ignored_interfaces: Option<Vec<Spanned<String>>>,
    /// Password for the node-to-node mesh sessions, by reference.
    pub node_mesh_password: Option<Password>,
    /// Graceful-restart time of mesh sessions, such as `120s`.
    pub node_mesh_max_restart_time: Option<Spanned<String>>,
    /// Named BGP communities (`aa:nn` or `aa:nn:mm`) for `prefixAdvertisements` to use.
    pub communities: Option<Vec<Community>>,
    /// Communities to attach to the routes within a CIDR when nodes advertise them.
    pub prefix_advertisements: Option<Vec<PrefixAdvertisement>>,
    /// Calico 3.30: the node-side IPv4 address of peerings with the node's own workloads
    /// (BGPPeers with `localWorkloadSelector`), usually link-local.
    #[serde(rename = "localWorkloadPeeringIPV4")]
    pub local_workload_peering_ipv4: Option<Spanned<String>>,
    /// Calico 3.30: the same for IPv6.
    #[serde(rename = "localWorkloadPeeringIPV6")]
    pub local_workload_peering_ipv6: Option<Spanned<String>>,
    /// Calico 3.31: `Enabled` (default) advertises `serviceLoadBalancerIPs` ranges whole;
    /// `Disabled` advertises only each service's own address.
    pub service_load_balancer_aggregation: Option<Spanned<Aggregation>>,
    /// calico-node's `CALICO_ROUTER_ID`: `hash` (derived from the node's name, for nodes
    /// without IPv4) or one IPv4 address for every node; default the node's IPv4 address.
    #[serde(rename = "routerID")]
    pub router_id: Option<Spanned<String>>,
    /// BGPFilters, which peers name in their `filters`.
    #[serde(default)]
    pub filters: Vec<BgpFilter>,
    /// Route-reflector clusters: the shorthand for Calico's documented route-reflector design.
    #[serde(default)]
    pub route_reflectors: Vec<RouteReflectorCluster>,
    /// Any BGPPeer Calico accepts.
    #[serde(default)]
    pub peers: Vec<Peer>,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum LogSeverity {
    Debug,
    Info,
    Warning,
    Error,
    Fatal,
    None,
}

impl LogSeverity {
    pub const ALL: [LogSeverity; 6] =
        [LogSeverity::Debug, LogSeverity::Info, LogSeverity::Warning, LogSeverity::Error, LogSeverity::Fatal, LogSeverity::None];

    /// The name, as the intent and Calico's `logSeverityScreen` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogSeverity::Debug => "Debug",
            LogSeverity::Info => "Info",
            LogSeverity::Warning => "Warning",
            LogSeverity::Error => "Error",
            LogSeverity::Fatal => "Fatal",
            LogSeverity::None => "None",
        }
    }
}

/// A named community: `{name, value}`, the value `aa:nn` (16-bit halves) or `aa:nn:mm`
/// (32-bit parts, a large community).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Community {
    pub name: Spanned<String>,
    pub value: Spanned<String>,
}

/// The communities for the routes within one CIDR: values, or names from `communities`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrefixAdvertisement {
    pub cidr: Spanned<String>,
    #[serde(default)]
    pub communities: Vec<Spanned<String>>,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum Aggregation {
    Enabled,
    Disabled,
}

impl Aggregation {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Enabled => "Enabled",
            Aggregation::Disabled => "Disabled",
        }
    }
}

/// A Calico `BGPFilter`: rules per direction and address family, applied in order; a route
/// no rule decides goes on to Calico's own export or import policy.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BgpFilter {
    /// The BGPFilter's name, as peers' `filters` name it.
    pub name: Spanned<String>,
    #[serde(rename = "exportV4")]
    pub export_v4: Option<Vec<BgpFilterRule>>,
    #[serde(rename = "importV4")]
    pub import_v4: Option<Vec<BgpFilterRule>>,
    #[serde(rename = "exportV6")]
    pub export_v6: Option<Vec<BgpFilterRule>>,
    #[serde(rename = "importV6")]
    pub import_v6: Option<Vec<BgpFilterRule>>,
}

/// One BGPFilter rule: what it matches (all optional) and its action.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BgpFilterRule {
    /// `Accept` or `Reject`.
    pub action: Spanned<FilterAction>,
    /// The prefix the route is compared with; needs `matchOperator`.
    pub cidr: Option<Spanned<String>>,
    /// `Equal`, `NotEqual`, `In` (within `cidr`) or `NotIn`.
    pub match_operator: Option<Spanned<MatchOperator>>,
    /// Calico 3.29: the prefix lengths a route within `cidr` may have.
    pub prefix_length: Option<PrefixLength>,
    /// `RemotePeers`: routes learned over BGP.
    pub source: Option<Spanned<FilterSource>>,
    /// The interface the route goes through, `*` matching any characters (`eth*`).
    pub interface: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrefixLength {
    pub min: Option<Spanned<i64>>,
    pub max: Option<Spanned<i64>>,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum FilterAction {
    Accept,
    Reject,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum MatchOperator {
    Equal,
    NotEqual,
    In,
    NotIn,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum FilterSource {
    RemotePeers,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum BindMode {
    None,
    #[serde(rename = "NodeIP")]
    NodeIp,
}

/// An AS number as written: an integer, or a string holding a plain or dotted (`"1.10"`) one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsNumberText(pub String);

impl<'de> Deserialize<'de> for AsNumberText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // calplan's deserializer hands any scalar over as the text written, so `1.10` keeps
        // its second digit here; the schema has already rejected an unquoted dotted number.
        String::deserialize(deserializer).map(AsNumberText)
    }
}

impl JsonSchema for AsNumberText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AsNumber".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An AS number from 1 to 4294967295 (0 is reserved): an integer, or a quoted plain or dotted (`\"1.10\"`) one.",
            "anyOf": [
                { "type": "integer", "minimum": 1, "maximum": 4294967295u64 },
                { "type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$" }
            ]
        })
    }
}

/// One route-reflector cluster: its reflectors and the nodes they serve.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteReflectorCluster {
    /// The cluster ID in IPv4 form, typically an unused address such as `244.0.0.1`.
    #[serde(rename = "clusterID")]
    pub cluster_id: Spanned<String>,
    /// The nodes that reflect routes in this cluster, by name.
    #[serde(default)]
    pub nodes: Vec<Spanned<String>>,
    /// Reflectors chosen by rule: a selector, a count, and a label to count per value of.
    pub reflectors: Option<crate::node_rules::ReflectorSelection>,
    /// The nodes that peer with these reflectors (a Calico selector); default `all()`.
    pub clients: Option<Spanned<String>>,
}

/// A Calico `BGPPeer`, field for field.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Peer {
    /// The BGPPeer's name.
    pub name: Spanned<String>,
    /// The remote address, `IP` or `IP:PORT` (`[IPv6]:PORT`).
    #[serde(rename = "peerIP")]
    pub peer_ip: Option<Spanned<String>>,
    /// Calico nodes to peer with, instead of `peerIP`.
    pub peer_selector: Option<Spanned<String>>,
    /// The remote AS; not with `peerSelector`.
    pub as_number: Option<Spanned<AsNumberText>>,
    /// The one node that peers; with neither `node` nor `nodeSelector` every node does.
    pub node: Option<Spanned<String>>,
    /// The nodes that peer.
    pub node_selector: Option<Spanned<String>>,
    /// The AS the nodes present to this peer.
    #[serde(rename = "localASNumber")]
    pub local_as_number: Option<Spanned<AsNumberText>>,
    /// Keep the original next hop (eBGP only).
    pub keep_original_next_hop: Option<Spanned<bool>>,
    /// `Auto`, `Self` or `Keep`.
    pub next_hop_mode: Option<Spanned<NextHopMode>>,
    /// Graceful-restart time, such as `120s`.
    pub max_restart_time: Option<Spanned<String>>,
    /// BGP keepalive time, such as `30s`.
    pub keepalive_time: Option<Spanned<String>>,
    /// `UseNodeIP` (default) or `None`.
    pub source_address: Option<Spanned<SourceAddress>>,
    /// `Auto` (default) or `Manual`.
    pub reverse_peering: Option<Spanned<ReversePeering>>,
    pub password: Option<Password>,
    /// Hop limit for GTSM.
    pub ttl_security: Option<Spanned<u8>>,
    #[serde(rename = "numAllowedLocalASNumbers")]
    pub num_allowed_local_as_numbers: Option<Spanned<u32>>,
    /// A gateway to reach the peer through.
    pub reachable_by: Option<Spanned<String>>,
    /// The BGPFilters (`bgp.filters`) applied to this peer's routes, in order.
    pub filters: Option<Vec<Spanned<String>>>,
    /// Calico 3.30: peer with the node's own workloads this selector matches (pods running a
    /// BGP speaker), instead of `peerIP` or `peerSelector`; needs `asNumber`.
    pub local_workload_selector: Option<Spanned<String>>,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum NextHopMode {
    Auto,
    #[serde(rename = "Self")]
    SelfAddress,
    Keep,
}

impl NextHopMode {
    pub fn as_str(self) -> &'static str {
        match self {
            NextHopMode::Auto => "Auto",
            NextHopMode::SelfAddress => "Self",
            NextHopMode::Keep => "Keep",
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum SourceAddress {
    #[serde(rename = "UseNodeIP")]
    UseNodeIp,
    None,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum ReversePeering {
    Auto,
    Manual,
}

/// A BGP password, by reference to a Kubernetes Secret; never written inline.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Password {
    pub secret_key_ref: SecretKeyRef,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret's name (a DNS-1123 subdomain).
    pub name: Spanned<String>,
    /// The key within the Secret's data: letters, digits, `-`, `_` and `.`.
    pub key: Spanned<String>,
}

/// A Calico `IPPool`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Pool {
    pub name: Spanned<String>,
    /// The pool's CIDR, strictly masked.
    pub cidr: Spanned<String>,
    /// Prefix length of the blocks handed to nodes: 20–32 for IPv4 (default 26), 116–128 for
    /// IPv6 (default 122).
    pub block_size: Option<Spanned<u8>>,
    pub ipip_mode: Option<Spanned<EncapsulationMode>>,
    pub vxlan_mode: Option<Spanned<EncapsulationMode>>,
    /// Masquerade traffic from this pool to destinations outside every pool.
    pub nat_outgoing: Option<Spanned<bool>>,
    /// No new addresses are handed out from a disabled pool.
    pub disabled: Option<Spanned<bool>>,
    /// Do not advertise this pool's routes over BGP.
    #[serde(rename = "disableBGPExport")]
    pub disable_bgp_export: Option<Spanned<bool>>,
    /// The nodes that take blocks from this pool; default `all()`.
    pub node_selector: Option<Spanned<String>>,
    /// `Workload`, `Tunnel`, `LoadBalancer`; default `[Workload, Tunnel]`.
    pub allowed_uses: Option<Vec<Spanned<AllowedUse>>>,
    /// `Automatic` (default) or `Manual`.
    pub assignment_mode: Option<Spanned<AssignmentMode>>,
    /// Calico 3.31: the namespaces whose pods take addresses from this pool (a selector).
    pub namespace_selector: Option<Spanned<String>>,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum EncapsulationMode {
    Never,
    Always,
    CrossSubnet,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AllowedUse {
    Workload,
    Tunnel,
    LoadBalancer,
}

impl AllowedUse {
    pub fn as_str(self) -> &'static str {
        match self {
            AllowedUse::Workload => "Workload",
            AllowedUse::Tunnel => "Tunnel",
            AllowedUse::LoadBalancer => "LoadBalancer",
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum AssignmentMode {
    Automatic,
    Manual,
}

/// A cluster node, as Calico's `Node` resource describes it for BGP.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Node {
    /// The node's name (a DNS-1123 subdomain).
    pub name: Spanned<String>,
    /// The node's IPv4 address with its subnet's prefix length, such as `21.49.22.4/24`.
    pub ipv4_address: Option<Spanned<String>>,
    /// The node's IPv6 address with its prefix length.
    pub ipv6_address: Option<Spanned<String>>,
    /// This node's own AS number, overriding the cluster's.
    pub as_number: Option<Spanned<AsNumberText>>,
    /// Make this node a route reflector with this cluster ID (the literal form of
    /// `bgp.routeReflectors`).
    #[serde(rename = "routeReflectorClusterID")]
    pub route_reflector_cluster_id: Option<Spanned<String>>,
    /// The node's labels, which selectors match.
    #[serde(default)]
    pub labels: BTreeMap<Spanned<String>, Spanned<String>>,
    /// The node's interfaces in kernel order (as `ip -j addr` lists them), for autodetection.
    pub interfaces: Option<Vec<Interface>>,
    /// The node's own BGP settings (Calico's `BGPConfiguration` named `node.<name>`), over
    /// the cluster's.
    pub bgp_configuration: Option<NodeBgpConfiguration>,
}

/// What a node's own BGPConfiguration may set.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeBgpConfiguration {
    /// The port this node's BIRD listens on (and its peers connect to).
    pub listen_port: Option<Spanned<u16>>,
    /// BIRD's logging on this node.
    pub log_severity: Option<Spanned<LogSeverity>>,
    /// Named communities for this node's `prefixAdvertisements`.
    pub communities: Option<Vec<Community>>,
    /// Replaces the cluster's `prefixAdvertisements` on this node.
    pub prefix_advertisements: Option<Vec<PrefixAdvertisement>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Interface {
    /// The interface's name, as the kernel has it (`eth0`).
    pub name: Spanned<String>,
    /// The interface's addresses in kernel order, with prefix lengths.
    #[serde(default)]
    pub addresses: Vec<Spanned<String>>,
}

/// A host or router outside the cluster.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Router {
    pub name: Spanned<String>,
    pub platform: Spanned<Platform>,
    /// The router's address on the nodes' network, with prefix length.
    pub address: Spanned<String>,
    /// Static routes towards the cluster.
    #[serde(default)]
    pub static_routes: Vec<StaticRoute>,
    /// Peer with the cluster over BGP instead of (or beside) static routes.
    pub bgp: Option<RouterBgp>,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Linux,
    Frr,
    Ios,
    Junos,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Linux => "linux",
            Platform::Frr => "frr",
            Platform::Ios => "ios",
            Platform::Junos => "junos",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StaticRoute {
    /// `pools`, `services`, or a CIDR.
    pub destination: Spanned<String>,
    /// Next hops: node names or addresses; several give an ECMP route.
    pub via: Vec<Spanned<String>>,
    /// One route per pool (default); `false` routes each block to the node that holds it.
    pub aggregate: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouterBgp {
    /// The router's AS number.
    pub as_number: Spanned<AsNumberText>,
    /// Which nodes the router peers with.
    pub peer_with: Spanned<PeerWith>,
    pub password: Option<Password>,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum PeerWith {
    RouteReflectors,
    AllNodes,
}
