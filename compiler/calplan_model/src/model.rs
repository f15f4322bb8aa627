//! The resolved, typed intent: what every phase after parsing works from.
//!
//! Values are parsed (`IpNet`, `AsNumber`, `Selector`) and references resolved (`NodeId`);
//! each keeps the span it was written at so that validation can point at it. Defaults are
//! applied here, once, and documented on the field.

pub use calplan_calico::Release;
use calplan_calico::resources::EncapsulationMode;
use calplan_calico::{AsNumber, Selector};
use calplan_diagnostics::{FileId, Span, Spanned};
pub use calplan_syntax::intent::{
    Aggregation, AllowedUse, Datastore, FilterAction, FilterSource, Installation, LogSeverity, MatchOperator, NextHopMode, NodeAgent,
    PeerWith, Platform, ReversePeering, SourceAddress,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Index of a node in [`Model::nodes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

/// Index of a router in [`Model::routers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouterId(pub u32);

#[derive(Clone, Debug)]
pub struct Model {
    pub file: FileId,
    pub name: Spanned<String>,
    /// The Calico release the artifacts follow; default [`Release::DEFAULT`].
    pub calico_version: Spanned<Release>,
    /// Default `kubernetes`, as Calico's own manifests.
    pub datastore: Datastore,
    /// Default `calico-node`. What it implies is answered in `crate::ownership` only.
    pub node_agent: NodeAgent,
    /// Default `manifest`.
    pub installation: Installation,
    pub autodetection: Autodetection,
    pub service_cluster_ips: Vec<Spanned<IpNet>>,
    /// Default 110, the kubelet's.
    pub max_pods_per_node: Spanned<u32>,
    pub bgp: BgpSettings,
    pub route_reflector_clusters: Vec<RouteReflectorCluster>,
    pub peers: Vec<Peer>,
    /// BGPFilters, in the order written.
    pub filters: Vec<BgpFilter>,
    pub pools: Vec<Pool>,
    pub nodes: Vec<Node>,
    pub routers: Vec<Router>,
    /// Whether calplan writes the BGPPeers for route-reflector clusters and BGP-speaking
    /// routers. False for a model read back from Calico resources, whose BGPPeers are all
    /// literal already.
    pub generates_peers: bool,
    /// `spec.allow`: rules whose findings the intent accepts, as written (resolving the names
    /// and applying them is `calplan_validate::levels`').
    pub allow: Vec<AllowEntry>,
    /// `spec.nodeRules` and what they did to each node (`crate::node_rules`).
    pub node_rules: crate::node_rules::NodeRules,
}

/// One entry of `spec.allow`.
#[derive(Clone, Debug)]
pub struct AllowEntry {
    /// The rule's code or name, as written.
    pub rule: Spanned<String>,
    pub reason: Spanned<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Autodetection {
    pub ipv4: Option<Spanned<AutodetectionMethod>>,
    pub ipv6: Option<Spanned<AutodetectionMethod>>,
}

/// One of calico-node's `IP_AUTODETECTION_METHOD`s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AutodetectionMethod {
    FirstFound,
    /// `can-reach=DEST`: the source address of a route to `DEST`. A hostname cannot be resolved
    /// offline and is kept as written.
    CanReach(CanReachTarget),
    Interface(Vec<String>),
    SkipInterface(Vec<String>),
    Cidr(Vec<IpNet>),
    KubernetesInternalIp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CanReachTarget {
    Address(IpAddr),
    Hostname(String),
}

impl std::fmt::Display for AutodetectionMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AutodetectionMethod::FirstFound => f.write_str("first-found"),
            AutodetectionMethod::CanReach(CanReachTarget::Address(address)) => write!(f, "can-reach={address}"),
            AutodetectionMethod::CanReach(CanReachTarget::Hostname(host)) => write!(f, "can-reach={host}"),
            AutodetectionMethod::Interface(patterns) => write!(f, "interface={}", patterns.join(",")),
            AutodetectionMethod::SkipInterface(patterns) => write!(f, "skip-interface={}", patterns.join(",")),
            AutodetectionMethod::Cidr(cidrs) => {
                let cidrs: Vec<String> = cidrs.iter().map(ToString::to_string).collect();
                write!(f, "cidr={}", cidrs.join(","))
            }
            AutodetectionMethod::KubernetesInternalIp => f.write_str("kubernetes-internal-ip"),
        }
    }
}

/// The cluster-wide BGP settings.
#[derive(Clone, Debug)]
pub struct BgpSettings {
    /// Default 64512, Calico's.
    pub as_number: Spanned<AsNumber>,
    /// Whether `asNumber` was written; an unset AS is left out of the BGPConfiguration.
    pub as_number_set: bool,
    /// Default true, Calico's.
    pub node_to_node_mesh: Spanned<bool>,
    pub node_to_node_mesh_set: bool,
    /// Default `Info`.
    pub log_severity: LogSeverity,
    pub log_severity_set: bool,
    pub advertise_service_cluster_ips: bool,
    /// Where `advertiseServiceClusterIPs` is written, when it is.
    pub advertise_service_cluster_ips_span: Option<Span>,
    pub service_external_ips: Vec<Spanned<IpNet>>,
    pub service_load_balancer_ips: Vec<Spanned<IpNet>>,
    pub listen_port: Option<Spanned<u16>>,
    pub bind_mode_node_ip: bool,
    pub ignored_interfaces: Vec<String>,
    pub node_mesh_password: Option<SecretRef>,
    pub node_mesh_max_restart_time: Option<Spanned<Duration>>,
    pub communities: Vec<CommunityDefinition>,
    /// `None` when not written; `Some` (perhaps empty) when written.
    pub prefix_advertisements: Option<Vec<PrefixAdvertisement>>,
    pub local_workload_peering_ipv4: Option<Spanned<Ipv4Addr>>,
    pub local_workload_peering_ipv6: Option<Spanned<Ipv6Addr>>,
    /// `None` is Calico's default, `Enabled`.
    pub service_load_balancer_aggregation: Option<Spanned<Aggregation>>,
    /// calico-node's `CALICO_ROUTER_ID`; `None` uses each node's IPv4 address.
    pub router_id: Option<Spanned<RouterIdSource>>,
    /// Where the `bgp` section is, for diagnostics about the topology as a whole.
    pub span: Span,
}

/// Where BIRD's router ID comes from (`CALICO_ROUTER_ID`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouterIdSource {
    /// `hash`: four bytes of SHA-256 of the node's name.
    Hash,
    /// One address for every node.
    Address(Ipv4Addr),
}

impl std::fmt::Display for RouterIdSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouterIdSource::Hash => f.write_str("hash"),
            RouterIdSource::Address(address) => write!(f, "{address}"),
        }
    }
}

/// A named community of `communities`; the value is checked (`aa:nn` or `aa:nn:mm`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommunityDefinition {
    pub name: Spanned<String>,
    pub value: Spanned<String>,
}

/// One entry of `prefixAdvertisements`: each community is a value or a defined name, as
/// written (confd resolves names at render time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixAdvertisement {
    pub cidr: Spanned<CidrText>,
    pub communities: Vec<Spanned<String>>,
}

/// A CIDR with the text it was written as: confd renders BGPFilter and prefix-advertisement
/// CIDRs as written (`9000::0/64`), and the text has parsed, so it holds nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CidrText {
    pub net: IpNet,
    pub text: String,
}

/// A node's own BGPConfiguration (`node.<name>`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeBgpConfiguration {
    pub listen_port: Option<Spanned<u16>>,
    pub log_severity: Option<LogSeverity>,
    pub communities: Vec<CommunityDefinition>,
    pub prefix_advertisements: Option<Vec<PrefixAdvertisement>>,
}

/// A `BGPFilter`; a direction and family left out is `None`, as Calico keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BgpFilter {
    pub name: Spanned<String>,
    pub export_v4: Option<Vec<FilterRule>>,
    pub import_v4: Option<Vec<FilterRule>>,
    pub export_v6: Option<Vec<FilterRule>>,
    pub import_v6: Option<Vec<FilterRule>>,
    pub span: Span,
}

impl BgpFilter {
    /// The rules for a direction and family.
    pub fn rules(&self, export: bool, v6: bool) -> &[FilterRule] {
        let rules = match (export, v6) {
            (true, false) => &self.export_v4,
            (false, false) => &self.import_v4,
            (true, true) => &self.export_v6,
            (false, true) => &self.import_v6,
        };
        rules.as_deref().unwrap_or_default()
    }
}

/// One BGPFilter rule, checked: a `cidr` has its `matchOperator` and the family of its list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterRule {
    pub action: FilterAction,
    pub cidr: Option<Spanned<CidrText>>,
    pub match_operator: Option<MatchOperator>,
    /// `prefixLength: {min, max}` (3.29), each bound as written.
    pub prefix_length: Option<(Option<i32>, Option<i32>)>,
    pub source: Option<FilterSource>,
    /// An interface pattern: letters, digits, `_`, `.`, `-` and `*`, at most 15 characters.
    pub interface: Option<Spanned<String>>,
    pub span: Span,
}

/// A duration as Calico writes it (`120s`, `1m30s`), in whole seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duration {
    pub seconds: u64,
    pub text: String,
}

/// A reference to a key of a Kubernetes Secret; the value never enters calplan's model.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretRef {
    pub name: String,
    pub key: String,
    pub span: Span,
}

/// A selector as written, with its parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorText {
    pub text: String,
    pub selector: Selector,
}

/// A route-reflector cluster from `bgp.routeReflectors`, or gathered from nodes'
/// `routeReflectorClusterID`s.
#[derive(Clone, Debug)]
pub struct RouteReflectorCluster {
    pub cluster_id: Spanned<Ipv4Addr>,
    pub nodes: Vec<Spanned<NodeId>>,
    /// The nodes that peer with these reflectors; `None` is `all()`.
    pub clients: Option<Spanned<SelectorText>>,
    /// Whether calplan writes the BGPPeers for this cluster (the shorthand) or the operator
    /// writes them in `bgp.peers` (nodes with a literal `routeReflectorClusterID`).
    pub generated_peers: bool,
    pub span: Span,
}

/// A `BGPPeer`, field for field.
#[derive(Clone, Debug)]
pub struct Peer {
    pub name: Spanned<String>,
    pub peer_ip: Option<Spanned<PeerAddress>>,
    pub peer_selector: Option<Spanned<SelectorText>>,
    pub as_number: Option<Spanned<AsNumber>>,
    pub node: Option<Spanned<NodeId>>,
    pub node_selector: Option<Spanned<SelectorText>>,
    pub local_as_number: Option<Spanned<AsNumber>>,
    pub keep_original_next_hop: Option<bool>,
    pub next_hop_mode: Option<NextHopMode>,
    pub max_restart_time: Option<Spanned<Duration>>,
    pub keepalive_time: Option<Spanned<Duration>>,
    pub source_address: Option<SourceAddress>,
    pub reverse_peering: Option<ReversePeering>,
    pub password: Option<SecretRef>,
    pub ttl_security: Option<u8>,
    pub num_allowed_local_as_numbers: Option<u32>,
    pub reachable_by: Option<Spanned<IpAddr>>,
    pub filters: Vec<Spanned<String>>,
    /// Calico 3.30: peer with the node's own workloads this selector matches.
    pub local_workload_selector: Option<Spanned<SelectorText>>,
    /// A field was written but did not resolve (and is reported): rules that judge what the
    /// peer lacks pass it over rather than report a consequence of that error.
    pub unresolved: bool,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerAddress {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

impl std::fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.ip, self.port) {
            (ip, None) => write!(f, "{ip}"),
            (IpAddr::V4(ip), Some(port)) => write!(f, "{ip}:{port}"),
            (IpAddr::V6(ip), Some(port)) => write!(f, "[{ip}]:{port}"),
        }
    }
}

/// An `IPPool`.
#[derive(Clone, Debug)]
pub struct Pool {
    pub name: Spanned<String>,
    /// As written; strict masking is a validation rule.
    pub cidr: Spanned<IpNet>,
    /// Default 26 (IPv4) or 122 (IPv6), Calico's.
    pub block_size: Spanned<u8>,
    pub block_size_set: bool,
    pub ipip_mode: Spanned<EncapsulationMode>,
    pub vxlan_mode: Spanned<EncapsulationMode>,
    pub nat_outgoing: Spanned<bool>,
    pub disabled: Spanned<bool>,
    pub disable_bgp_export: Spanned<bool>,
    /// Default `all()`.
    pub node_selector: Spanned<SelectorText>,
    /// Default `[Workload, Tunnel]`.
    pub allowed_uses: Spanned<Vec<AllowedUse>>,
    pub allowed_uses_set: bool,
    pub assignment_manual: bool,
    /// Calico 3.31: the namespaces whose pods take addresses from the pool.
    pub namespace_selector: Option<Spanned<SelectorText>>,
    pub span: Span,
}

impl Pool {
    /// How many blocks of `block_size` the pool holds (saturating for huge IPv6 pools).
    pub fn block_count(&self) -> u128 {
        let bits = i32::from(*self.block_size) - i32::from(self.cidr.prefix_len());
        if bits < 0 { 0 } else { 1u128.checked_shl(bits as u32).unwrap_or(u128::MAX) }
    }

    pub fn addresses_per_block(&self) -> u128 {
        let bits = u32::from(self.cidr.max_prefix_len()) - u32::from(*self.block_size);
        1u128.checked_shl(bits).unwrap_or(u128::MAX)
    }

    pub fn is_ipv4(&self) -> bool {
        matches!(*self.cidr, IpNet::V4(_))
    }
}

/// A cluster node.
#[derive(Clone, Debug)]
pub struct Node {
    pub id: NodeId,
    pub name: Spanned<String>,
    /// The node's address with its subnet's prefix length (`21.49.22.4/24`).
    pub ipv4_address: Option<Spanned<Ipv4Net>>,
    pub ipv6_address: Option<Spanned<Ipv6Net>>,
    pub as_number: Option<Spanned<AsNumber>>,
    /// Set when the node is a route reflector.
    pub route_reflector_cluster_id: Option<Spanned<Ipv4Addr>>,
    /// Declared labels and the labels calplan adds (route-reflector markers); the span of an
    /// added label is the declaration that caused it.
    pub labels: BTreeMap<String, Spanned<String>>,
    pub interfaces: Option<Vec<Interface>>,
    /// The node's own BGPConfiguration, when it has one.
    pub bgp_configuration: Option<NodeBgpConfiguration>,
    pub span: Span,
}

impl Node {
    /// The labels as selectors see them.
    pub fn label_values(&self) -> BTreeMap<String, String> {
        self.labels.iter().map(|(key, value)| (key.clone(), value.value.clone())).collect()
    }

    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.ipv4_address.as_ref().map(|address| address.addr())
    }

    pub fn is_route_reflector(&self) -> bool {
        self.route_reflector_cluster_id.is_some()
    }
}

#[derive(Clone, Debug)]
pub struct Interface {
    pub name: Spanned<String>,
    pub addresses: Vec<Spanned<IpNet>>,
}

/// A host or router outside the cluster.
#[derive(Clone, Debug)]
pub struct Router {
    pub id: RouterId,
    pub name: Spanned<String>,
    pub platform: Spanned<Platform>,
    pub address: Spanned<IpNet>,
    pub static_routes: Vec<StaticRoute>,
    pub bgp: Option<RouterBgp>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct StaticRoute {
    pub destination: Spanned<Destination>,
    pub via: Vec<Spanned<NextHop>>,
    /// Default true: one route per pool rather than per block.
    pub aggregate: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Pools,
    Services,
    Cidr(IpNet),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHop {
    Node(NodeId),
    Address(IpAddr),
}

#[derive(Clone, Debug)]
pub struct RouterBgp {
    pub as_number: Spanned<AsNumber>,
    pub peer_with: PeerWith,
    pub password: Option<SecretRef>,
    pub span: Span,
}

impl Model {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    pub fn router(&self, id: RouterId) -> &Router {
        &self.routers[id.0 as usize]
    }

    pub fn node_by_name(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|node| *node.name == name)
    }

    /// The address autodetection calico-node runs on a node: a rule's, else the cluster's.
    pub fn node_autodetection(&self, node: NodeId) -> &Autodetection {
        self.node_rules.autodetection.get(&node).unwrap_or(&self.autodetection)
    }

    /// The AS a node speaks: its own, else the cluster's.
    pub fn node_as_number(&self, node: &Node) -> AsNumber {
        node.as_number.as_ref().map_or(*self.bgp.as_number, |number| **number)
    }

    /// Every service range the cluster advertises (cluster IPs when asked, external, LB).
    pub fn advertised_service_ranges(&self) -> Vec<IpNet> {
        let mut ranges = Vec::new();
        if self.bgp.advertise_service_cluster_ips {
            ranges.extend(self.service_cluster_ips.iter().map(|cidr| **cidr));
        }
        ranges.extend(self.bgp.service_external_ips.iter().map(|cidr| **cidr));
        ranges.extend(self.bgp.service_load_balancer_ips.iter().map(|cidr| **cidr));
        ranges
    }
}
