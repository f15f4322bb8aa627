//! The Calico resources an intent compiles to: the IPPools, the `default` BGPConfiguration, the
//! BGPPeers (the route-reflector design as Calico documents it, the operator's own peers, and
//! the cluster side of routers that speak BGP) and each node's `spec.bgp` and labels.
//!
//! These are computed here rather than in a target because validation needs them: the
//! peerings Calico derives from exactly these resources are what the BGP checks examine.

use crate::lower::{ROUTE_REFLECTOR_CLUSTER_LABEL, ROUTE_REFLECTOR_LABEL};
use crate::model::*;
use calplan_calico::resources::*;
use calplan_calico::resources::{BgpFilter, Community, PrefixLength};
use std::collections::BTreeMap;

/// The name of the BGPPeer through which every node peers with the reflectors.
pub const ROUTE_REFLECTOR_PEER: &str = "peer-with-route-reflectors";
/// The name of the BGPPeer joining reflectors of different clusters.
pub const ROUTE_REFLECTOR_MESH_PEER: &str = "route-reflector-mesh";

pub fn resources(model: &Model) -> ResourceSet {
    let mut set = ResourceSet::default();
    for pool in &model.pools {
        set.insert(Resource::IpPool(ip_pool(pool)));
    }
    set.insert(Resource::BgpConfiguration(bgp_configuration(model)));
    for node in &model.nodes {
        if let Some(configuration) = node_bgp_configuration(node) {
            set.insert(Resource::BgpConfiguration(configuration));
        }
    }
    for filter in &model.filters {
        set.insert(Resource::BgpFilter(bgp_filter(filter)));
    }
    for peer in model.peers.iter().map(|peer| bgp_peer(model, peer)) {
        set.insert(Resource::BgpPeer(peer));
    }
    if model.generates_peers {
        for peer in route_reflector_peers(model).into_iter().chain(model.routers.iter().flat_map(|router| router_peers(model, router))) {
            set.insert(Resource::BgpPeer(peer));
        }
    }
    for node in &model.nodes {
        set.insert(Resource::Node(calico_node(node)));
    }
    set
}

/// The names of the BGPPeers calplan generates (the route-reflector design and the cluster
/// side of routers that speak BGP), each with the span of the declaration that causes it, so
/// that validation can point at a clash with a name the operator chose.
pub fn generated_peer_names(model: &Model) -> Vec<(String, calplan_diagnostics::Span)> {
    let mut names = Vec::new();
    if !model.generates_peers {
        return names;
    }
    let clusters: Vec<&RouteReflectorCluster> =
        model.route_reflector_clusters.iter().filter(|cluster| cluster.generated_peers && !cluster.nodes.is_empty()).collect();
    for peer in route_reflector_peers(model) {
        let name = peer.metadata.name;
        let cluster = clusters
            .iter()
            .find(|cluster| name == format!("{ROUTE_REFLECTOR_PEER}-{}", cluster.cluster_id.value.to_string().replace('.', "-")))
            .or(clusters.first());
        if let Some(cluster) = cluster {
            names.push((name, cluster.span));
        }
    }
    for router in &model.routers {
        if let Some(bgp) = &router.bgp {
            names.extend(router_peers(model, router).into_iter().map(|peer| (peer.metadata.name, bgp.span)));
        }
    }
    names
}

fn resource_meta(name: &str) -> ObjectMeta {
    ObjectMeta::named(name)
}

pub fn ip_pool(pool: &Pool) -> IpPool {
    IpPool {
        api_version: API_VERSION.into(),
        kind: "IPPool".into(),
        metadata: resource_meta(&pool.name),
        spec: IpPoolSpec {
            cidr: pool.cidr.to_string(),
            block_size: Some(*pool.block_size),
            ipip_mode: Some(*pool.ipip_mode),
            vxlan_mode: Some(*pool.vxlan_mode),
            nat_outgoing: Some(*pool.nat_outgoing),
            disabled: pool.disabled.value.then_some(true),
            disable_bgp_export: pool.disable_bgp_export.value.then_some(true),
            node_selector: Some(pool.node_selector.text.clone()),
            allowed_uses: pool.allowed_uses_set.then(|| pool.allowed_uses.iter().map(|used| used.as_str().to_string()).collect()),
            assignment_mode: pool.assignment_manual.then(|| "Manual".to_string()),
            namespace_selector: pool.namespace_selector.as_ref().map(|selector| selector.text.clone()),
            extra: BTreeMap::new(),
        },
    }
}

fn cidrs(ranges: &[calplan_diagnostics::Spanned<ipnet::IpNet>]) -> Option<Vec<CidrEntry>> {
    (!ranges.is_empty()).then(|| ranges.iter().map(|range| CidrEntry { cidr: range.to_string() }).collect())
}

fn secret(reference: &SecretRef) -> SecretKeyRefHolder {
    SecretKeyRefHolder { secret_key_ref: SecretKeyRef { name: reference.name.clone(), key: reference.key.clone(), optional: None } }
}

pub fn bgp_configuration(model: &Model) -> BgpConfiguration {
    let bgp = &model.bgp;
    BgpConfiguration {
        api_version: API_VERSION.into(),
        kind: "BGPConfiguration".into(),
        metadata: resource_meta("default"),
        spec: BgpConfigurationSpec {
            log_severity_screen: Some(bgp.log_severity.as_str().to_string()),
            node_to_node_mesh_enabled: Some(*bgp.node_to_node_mesh),
            as_number: Some(*bgp.as_number),
            service_cluster_ips: if bgp.advertise_service_cluster_ips { cidrs(&model.service_cluster_ips) } else { None },
            service_external_ips: cidrs(&bgp.service_external_ips),
            service_load_balancer_ips: cidrs(&bgp.service_load_balancer_ips),
            listen_port: bgp.listen_port.as_ref().map(|port| port.value),
            bind_mode: bgp.bind_mode_node_ip.then(|| "NodeIP".to_string()),
            ignored_interfaces: (!bgp.ignored_interfaces.is_empty()).then(|| bgp.ignored_interfaces.clone()),
            node_mesh_password: bgp.node_mesh_password.as_ref().map(secret),
            node_mesh_max_restart_time: bgp.node_mesh_max_restart_time.as_ref().map(|time| time.text.clone()),
            communities: communities(&bgp.communities),
            prefix_advertisements: bgp.prefix_advertisements.as_deref().map(prefix_advertisements),
            local_workload_peering_ipv4: bgp.local_workload_peering_ipv4.as_ref().map(|address| address.to_string()),
            local_workload_peering_ipv6: bgp.local_workload_peering_ipv6.as_ref().map(|address| address.to_string()),
            service_load_balancer_aggregation: bgp.service_load_balancer_aggregation.as_ref().map(|value| value.as_str().to_string()),
            extra: BTreeMap::new(),
        },
    }
}

fn communities(definitions: &[CommunityDefinition]) -> Option<Vec<Community>> {
    (!definitions.is_empty()).then(|| {
        definitions
            .iter()
            .map(|definition| Community { name: definition.name.value.clone(), value: definition.value.value.clone() })
            .collect()
    })
}

fn prefix_advertisements(advertisements: &[crate::model::PrefixAdvertisement]) -> Vec<calplan_calico::resources::PrefixAdvertisement> {
    advertisements
        .iter()
        .map(|advertisement| calplan_calico::resources::PrefixAdvertisement {
            cidr: advertisement.cidr.text.clone(),
            communities: advertisement.communities.iter().map(|community| community.value.clone()).collect(),
        })
        .collect()
}

/// A node's own BGPConfiguration, `node.<name>`, when the intent gives it one.
pub fn node_bgp_configuration(node: &Node) -> Option<BgpConfiguration> {
    let configuration = node.bgp_configuration.as_ref()?;
    Some(BgpConfiguration {
        api_version: API_VERSION.into(),
        kind: "BGPConfiguration".into(),
        metadata: resource_meta(&format!("{NODE_CONFIGURATION_PREFIX}{}", node.name.value)),
        spec: BgpConfigurationSpec {
            log_severity_screen: configuration.log_severity.map(|severity| severity.as_str().to_string()),
            listen_port: configuration.listen_port.as_ref().map(|port| port.value),
            communities: communities(&configuration.communities),
            prefix_advertisements: configuration.prefix_advertisements.as_deref().map(prefix_advertisements),
            ..BgpConfigurationSpec::default()
        },
    })
}

pub fn bgp_filter(filter: &crate::model::BgpFilter) -> BgpFilter {
    let rules = |rules: &Option<Vec<FilterRule>>| {
        rules.as_ref().map(|rules| {
            rules
                .iter()
                .map(|rule| BgpFilterRule {
                    cidr: rule.cidr.as_ref().map(|cidr| cidr.text.clone()),
                    prefix_length: rule.prefix_length.map(|(min, max)| PrefixLength { min, max }),
                    source: rule.source.map(|_| "RemotePeers".to_string()),
                    interface: rule.interface.as_ref().map(|interface| interface.value.clone()),
                    match_operator: rule.match_operator.map(|operator| operator_name(operator).to_string()),
                    action: match rule.action {
                        FilterAction::Accept => "Accept".to_string(),
                        FilterAction::Reject => "Reject".to_string(),
                    },
                    extra: BTreeMap::new(),
                })
                .collect()
        })
    };
    BgpFilter {
        api_version: API_VERSION.into(),
        kind: "BGPFilter".into(),
        metadata: resource_meta(&filter.name),
        spec: BgpFilterSpec {
            export_v4: rules(&filter.export_v4),
            import_v4: rules(&filter.import_v4),
            export_v6: rules(&filter.export_v6),
            import_v6: rules(&filter.import_v6),
            extra: BTreeMap::new(),
        },
    }
}

/// The operator's name as Calico writes it.
pub fn operator_name(operator: MatchOperator) -> &'static str {
    match operator {
        MatchOperator::Equal => "Equal",
        MatchOperator::NotEqual => "NotEqual",
        MatchOperator::In => "In",
        MatchOperator::NotIn => "NotIn",
    }
}

fn new_peer(name: String, spec: BgpPeerSpec) -> BgpPeer {
    BgpPeer { api_version: API_VERSION.into(), kind: "BGPPeer".into(), metadata: resource_meta(&name), spec }
}

/// Calico's documented route-reflector design: every node (reflectors included, which joins
/// the reflectors to each other) peers with the nodes labelled `route-reflector: "true"`.
/// When clusters serve different clients, each cluster gets its own BGPPeer and the
/// reflectors are meshed with each other.
fn route_reflector_peers(model: &Model) -> Vec<BgpPeer> {
    let generated: Vec<&RouteReflectorCluster> =
        model.route_reflector_clusters.iter().filter(|cluster| cluster.generated_peers && !cluster.nodes.is_empty()).collect();
    if generated.is_empty() {
        return Vec::new();
    }
    let reflectors = format!("{ROUTE_REFLECTOR_LABEL} == 'true'");
    if generated.iter().all(|cluster| cluster.clients.is_none()) {
        return vec![new_peer(
            ROUTE_REFLECTOR_PEER.to_string(),
            BgpPeerSpec { node_selector: Some("all()".into()), peer_selector: Some(reflectors), ..BgpPeerSpec::default() },
        )];
    }
    let mut peers: Vec<BgpPeer> = generated
        .iter()
        .map(|cluster| {
            let id = cluster.cluster_id.value;
            new_peer(
                format!("{ROUTE_REFLECTOR_PEER}-{}", id.to_string().replace('.', "-")),
                BgpPeerSpec {
                    node_selector: Some(cluster.clients.as_ref().map_or_else(|| "all()".to_string(), |clients| clients.text.clone())),
                    peer_selector: Some(format!("{ROUTE_REFLECTOR_CLUSTER_LABEL} == '{id}'")),
                    ..BgpPeerSpec::default()
                },
            )
        })
        .collect();
    peers.push(new_peer(
        ROUTE_REFLECTOR_MESH_PEER.to_string(),
        BgpPeerSpec { node_selector: Some(reflectors.clone()), peer_selector: Some(reflectors), ..BgpPeerSpec::default() },
    ));
    peers
}

fn bgp_peer(model: &Model, peer: &Peer) -> BgpPeer {
    new_peer(
        peer.name.value.clone(),
        BgpPeerSpec {
            node: peer.node.as_ref().map(|id| model.node(id.value).name.value.clone()),
            node_selector: peer.node_selector.as_ref().map(|selector| selector.text.clone()),
            peer_ip: peer.peer_ip.as_ref().map(|address| address.to_string()),
            peer_selector: peer.peer_selector.as_ref().map(|selector| selector.text.clone()),
            as_number: peer.as_number.as_ref().map(|number| number.value),
            local_as_number: peer.local_as_number.as_ref().map(|number| number.value),
            keep_original_next_hop: peer.keep_original_next_hop,
            next_hop_mode: peer.next_hop_mode.map(|mode| mode.as_str().to_string()),
            password: peer.password.as_ref().map(secret),
            source_address: peer.source_address.map(|source| match source {
                SourceAddress::UseNodeIp => "UseNodeIP".to_string(),
                SourceAddress::None => "None".to_string(),
            }),
            max_restart_time: peer.max_restart_time.as_ref().map(|time| time.text.clone()),
            keepalive_time: peer.keepalive_time.as_ref().map(|time| time.text.clone()),
            num_allowed_local_as_numbers: peer.num_allowed_local_as_numbers,
            ttl_security: peer.ttl_security,
            reachable_by: peer.reachable_by.as_ref().map(|address| address.to_string()),
            filters: (!peer.filters.is_empty()).then(|| peer.filters.iter().map(|filter| filter.value.clone()).collect()),
            local_workload_selector: peer.local_workload_selector.as_ref().map(|selector| selector.text.clone()),
            reverse_peering: peer.reverse_peering.map(|reverse| match reverse {
                ReversePeering::Auto => "Auto".to_string(),
                ReversePeering::Manual => "Manual".to_string(),
            }),
            extra: BTreeMap::new(),
        },
    )
}

/// The cluster side of a router that speaks BGP: a BGPPeer from the reflectors (or every
/// node) to the router's address.
fn router_peers(model: &Model, router: &Router) -> Vec<BgpPeer> {
    let Some(bgp) = &router.bgp else { return Vec::new() };
    let spec = |node_selector: Option<String>, node: Option<String>| BgpPeerSpec {
        node_selector,
        node,
        peer_ip: Some(router.address.addr().to_string()),
        as_number: Some(*bgp.as_number),
        password: bgp.password.as_ref().map(secret),
        ..BgpPeerSpec::default()
    };
    let name = format!("router-{}", router.name.value);
    match bgp.peer_with {
        PeerWith::AllNodes => vec![new_peer(name, spec(Some("all()".into()), None))],
        PeerWith::RouteReflectors => {
            let reflectors: Vec<&Node> = model.nodes.iter().filter(|node| node.is_route_reflector()).collect();
            if reflectors.iter().all(|node| node.labels.get(ROUTE_REFLECTOR_LABEL).is_some_and(|value| value.value == "true")) {
                vec![new_peer(name, spec(Some(format!("{ROUTE_REFLECTOR_LABEL} == 'true'")), None))]
            } else {
                reflectors
                    .iter()
                    .map(|node| new_peer(format!("{name}-{}", node.name.value), spec(None, Some(node.name.value.clone()))))
                    .collect()
            }
        }
    }
}

pub fn calico_node(node: &Node) -> CalicoNode {
    let bgp = NodeBgpSpec {
        as_number: node.as_number.as_ref().map(|number| number.value),
        ipv4_address: node.ipv4_address.as_ref().map(|address| address.to_string()),
        ipv6_address: node.ipv6_address.as_ref().map(|address| address.to_string()),
        ipv4_ipip_tunnel_addr: None,
        route_reflector_cluster_id: node.route_reflector_cluster_id.as_ref().map(|id| id.to_string()),
        extra: BTreeMap::new(),
    };
    let mut metadata = resource_meta(&node.name);
    metadata.labels = node.label_values();
    CalicoNode { api_version: API_VERSION.into(), kind: "Node".into(), metadata, spec: NodeSpec { bgp: Some(bgp), extra: BTreeMap::new() } }
}
