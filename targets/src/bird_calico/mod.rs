//! `nodes/<node>/bird-calico.cfg` and `nodes/<node>/bird6-calico.cfg`: what calico-node's confd
//! renders for the node as `bird.cfg` and `bird6.cfg` (BIRD 1.x's IPv4 and IPv6 daemons), so
//! an operator can diff them against `/etc/calico/confd/config/` on a live node.
//!
//! They follow the confd templates of the intent's Calico release
//! (`confd/etc/calico/confd/templates/bird{,6}{,_aggr,_ipam}.cfg.template`), with the
//! `bird_aggr.cfg` and `bird_ipam.cfg` that `bird.cfg` includes put in place of its `include`
//! lines (a comment line marks each), so each is one file. Text, comments, section order and
//! sort orders are confd's: keys sort as strings (`ls` and `gets` of confd's store), hosts by
//! name, passive ends by string comparison of addresses; only blank lines differ (confd's
//! own tests compare with `diff --ignore-blank-lines`). One template renders both families
//! from the data below; what differs between releases is decided where the data is computed
//! ([`Peerings`](calplan_calico::peering::Peerings) for sessions, [`NodeView`] for routes), never by a
//! copy of the template. `bench/confd-fidelity.py` compares the result with every fixture of
//! each release's confd test suite.
//!
//! What calico-node learns outside Calico's datastore comes from the current state when it
//! gives it ([`calplan_model::kubernetes`]), and is otherwise left out or marked. A BGP
//! password renders as a placeholder naming the Secret, never a value: with the cluster's
//! Secrets read, only where the Secret has the key in calico-node's namespace (confd renders
//! no `password` otherwise); without them, always, as the Secret's existence is unknown.
//! Per-Service routes (`/32` and `/128`, e.g. Services with `externalTrafficPolicy: Local`
//! that have an endpoint on the node) join the static routes when Services and their
//! endpoints were read. Peerings with local workloads come from the nodes' endpoint status
//! files (Felix's `/var/run/calico/endpoint-status/`) when the current state has them, and
//! their parts otherwise render as confd renders them without any.

mod filters;

use crate::node_view::NodeView;
use crate::{Artifact, Context, Target, TemplateError, per_node};
use calplan_calico::Community;
use calplan_calico::peering::{Family, PeerData, PeerType, Peering, mesh_by_remote_node};
use calplan_calico::resources::{EncapsulationMode, SecretKeyRef};
use calplan_model::ipam::AffinityState;
use calplan_model::{BgpFilter, Model, Node, PrefixAdvertisement, RouterIdSource};
use ipnet::IpNet;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

pub use filters::function_name as filter_function_name;

pub struct BirdCalico;

impl Target for BirdCalico {
    fn name(&self) -> &'static str {
        "bird-calico"
    }

    fn render(&self, context: &Context) -> Result<Vec<Artifact>, TemplateError> {
        per_node(context, |view| {
            let mut artifacts = Vec::with_capacity(2);
            for (v6, file) in [(false, "bird-calico.cfg"), (true, "bird6-calico.cfg")] {
                let config = CalicoBird::new(view, v6);
                let text = context.templates.render("bird-calico.cfg.j2", &config)?;
                artifacts.push(Artifact::new(format!("{}/{file}", view.directory()), text, view.source()));
            }
            Ok(artifacts)
        })
    }
}

/// Everything `bird-calico.cfg.j2` renders, for one node and address family.
#[derive(Serialize)]
struct CalicoBird {
    v6: bool,
    /// `apply_communities`: the prefix advertisements of this family.
    communities: Vec<CommunityBlock>,
    node_name: String,
    /// The node's address of this family, `""` without one (confd's `ip_addr_v4` / `_v6`).
    node_ip: String,
    router_id: String,
    /// The comment bird6.cfg puts after the router ID.
    router_id_comment: Option<&'static str>,
    /// `# Set node listen_port` / `# Set global listen_port`.
    listen_comment: Option<&'static str>,
    /// The `listen bgp` statement, when an address or port is set.
    listen: Option<String>,
    /// The `debug` clause for the device, direct and template protocols.
    debug: Option<&'static str>,
    ignored_interfaces: Vec<String>,
    node_as: String,
    /// `bgpFilterBIRDFuncs`' lines.
    filter_lines: Vec<filters::FilterLine>,
    mesh: Mesh,
    /// Global, then node-specific peers.
    peer_sections: [PeerSection; 2],
    aggr: Aggr,
    ipam: Ipam,
}

#[derive(Serialize)]
struct CommunityBlock {
    cidr: String,
    /// `bgp_community.add((a, b));` or `bgp_large_community.add((a, b, c));`.
    statements: Vec<String>,
}

#[derive(Serialize)]
struct Mesh {
    /// The node is a route reflector: no mesh, whatever `nodeToNodeMeshEnabled` says.
    own_cluster_id: Option<String>,
    enabled: bool,
    hosts: Vec<MeshHost>,
}

/// One host of `lsdir /bgp/v1/host`, in name order.
#[derive(Serialize)]
struct MeshHost {
    name: String,
    ip: String,
    entry: MeshEntry,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum MeshEntry {
    Ourselves,
    RouteReflector {
        cluster_id: String,
    },
    /// A host without an address of this family: bird.cfg prints only its `# For peer` line.
    NoAddress,
    Session(MeshSession),
}

#[derive(Serialize)]
struct MeshSession {
    id: String,
    port: Option<u16>,
    as_number: String,
    passive: bool,
    restart_time: Option<u64>,
    password: Option<String>,
}

/// `# ------------- Global peers -------------` or the node-specific one, and the local
/// workload peers that follow it.
#[derive(Serialize)]
struct PeerSection {
    title: &'static str,
    /// What confd prints when the section has no `peer_v4` keys.
    none_configured: &'static str,
    local_title: &'static str,
    /// Global sessions carry the `passive on` of a peering between Calico nodes.
    global: bool,
    entries: Vec<PeerEntry>,
    /// Some entries are peerings with local workloads (3.30), listed after the others.
    has_local: bool,
}

impl PeerSection {
    fn new(title: &'static str, none_configured: &'static str, local_title: &'static str, global: bool, entries: Vec<PeerEntry>) -> Self {
        let has_local = entries.iter().any(|entry| entry.local);
        PeerSection { title, none_configured, local_title, global, entries, has_local }
    }
}

/// One key under `peer_v4` / `peer_v6`, in key order.
#[derive(Serialize)]
struct PeerEntry {
    /// The full confd key, as the `# For peer` line prints it.
    key: String,
    ip: String,
    /// A peering with a local workload, rendered in the local section.
    local: bool,
    /// `None` for the node itself (`# Skipping ourselves`).
    session: Option<ExplicitSession>,
}

#[derive(Serialize)]
struct ExplicitSession {
    name: String,
    ip: String,
    ttl_security: Option<u8>,
    /// `local as N` (3.31).
    local_as: Option<String>,
    port: Option<u16>,
    as_number: String,
    source_address: bool,
    import_filters: Vec<String>,
    export_filters: Vec<String>,
    internal: bool,
    /// A global peering with a Calico node whose address sorts after this node's.
    calico_passive: bool,
    restart_time: Option<u64>,
    rr_cluster_id: Option<String>,
    password: Option<String>,
    /// `keepOriginalNextHop` towards an eBGP peer.
    keep_next_hop: bool,
    next_hop_mode: Option<String>,
    allow_local_as: Option<u32>,
    /// A local workload peering's `passive on;`.
    passive_mode: bool,
}

/// `bird_aggr.cfg`.
#[derive(Serialize)]
struct Aggr {
    /// The node's blocks of this family, as confd's store lists them.
    blocks: Vec<AggregatedBlock>,
    /// The blocks that get a blackhole route (all but `/32` and `/128` ones).
    blackholes: Vec<String>,
    static_routes: Vec<String>,
    global_reachable: Vec<ReachableRoute>,
    node_reachable: Vec<ReachableRoute>,
}

#[derive(Serialize)]
struct ReachableRoute {
    ip: String,
    gateway: String,
}

#[derive(Serialize)]
struct AggregatedBlock {
    cidr: String,
    /// The affinity's state; `""` for an affinity stored without one ("implicitly confirmed").
    state: &'static str,
}

/// `bird_ipam.cfg`.
#[derive(Serialize)]
struct Ipam {
    /// Pools of this family in key order.
    pools: Vec<IpamPool>,
    static_routes: Vec<String>,
    /// On a route reflector with `serviceLoadBalancerIPs`: this family's, as configured.
    reflector_load_balancer_ips: Option<Vec<String>>,
    reject_cidrs: Vec<String>,
    /// The node's IPv4 network (`network_v4`): the IPv4 kernel filter's pool part needs it.
    network: Option<String>,
}

#[derive(Serialize)]
struct IpamPool {
    cidr: String,
    export_disabled: bool,
    /// `vxlan`, `cross-subnet` or `tunnel` (`krt_tunnel = "<ipip>"`).
    kernel: &'static str,
    /// `tunl0` for IPIP pools, else empty.
    ipip: &'static str,
}

/// confd's sort of keys holding a CIDR: `/` written as `-`, compared as strings.
fn key_order(cidr: &str) -> String {
    cidr.replace('/', "-")
}

fn family_of(ip: &IpAddr) -> bool {
    ip.is_ipv6()
}

impl CalicoBird {
    fn new(view: &NodeView, v6: bool) -> CalicoBird {
        let model = &view.analysis.model;
        let peerings = &view.analysis.peerings;
        let node = view.node;
        let node_ip = match v6 {
            false => node.ipv4().map(|ip| ip.to_string()),
            true => node.ipv6_address.as_ref().map(|address| address.addr().to_string()),
        }
        .unwrap_or_default();
        let node_as = model.node_as_number(node);
        let own_cluster_id = node.route_reflector_cluster_id.as_ref().map(|id| id.value.to_string());
        let node_configuration = node.bgp_configuration.as_ref();
        // calico-node's namespace, where confd looks for Secrets (its `NAMESPACE`).
        let namespace = match model.installation {
            calplan_model::Installation::Operator => "calico-system",
            calplan_model::Installation::Manifest => "kube-system",
        };
        let observed = &view.analysis.kubernetes;
        let password = |secret: &Option<SecretKeyRef>| {
            secret
                .as_ref()
                .filter(|secret| observed.secret_exists(namespace, &secret.name, &secret.key) != Some(false))
                .map(|secret| format!("<Secret {} key {}>", secret.name, secret.key))
        };
        let filters: BTreeMap<&str, &BgpFilter> = model.filters.iter().map(|filter| (filter.name.value.as_str(), filter)).collect();

        // The sessions of this node, by (type, confd key), to give each raw entry its
        // computed passive / rr client / eBGP flags.
        let sessions: HashMap<(PeerType, String), &Peering> =
            view.peerings.iter().map(|peering| ((peering.peer_type, peering.data.key()), peering)).collect();
        let explicit = |peer_type: PeerType, prefix: &str, key: &str, data: &PeerData| -> PeerEntry {
            let ip = data.ip.to_string();
            let session = if !data.local_bgp_peer && ip == node_ip {
                None
            } else {
                sessions.get(&(peer_type, key.to_string())).map(|peering| {
                    let named = |export: bool| -> Vec<String> {
                        data.filters
                            .iter()
                            .filter(|name| filters.get(name.as_str()).is_some_and(|filter| !filter.rules(export, v6).is_empty()))
                            .map(|name| filters::function_name(name, export, v6))
                            .collect()
                    };
                    ExplicitSession {
                        name: peering.protocol_name(),
                        ip: ip.clone(),
                        ttl_security: (data.ttl_security != 0).then_some(data.ttl_security),
                        local_as: data.local_as_number.filter(|number| number.0 != 0).map(|number| number.to_string()),
                        port: (data.port != 0).then_some(data.port),
                        as_number: data.as_number.to_string(),
                        source_address: data.source_address && !data.local_bgp_peer,
                        import_filters: named(false),
                        export_filters: named(true),
                        internal: !peering.external,
                        calico_passive: data.calico_node && ip > node_ip,
                        restart_time: data.restart_time,
                        rr_cluster_id: peering.rr_client.then(|| peering.local_cluster_id.to_string()),
                        password: password(&data.password),
                        keep_next_hop: peering.external && data.keep_next_hop,
                        next_hop_mode: data.next_hop_mode.clone(),
                        allow_local_as: (data.num_allow_local_as != 0).then_some(data.num_allow_local_as),
                        passive_mode: data.local_bgp_peer,
                    }
                })
            };
            PeerEntry { key: format!("{prefix}/{key}"), ip, local: data.local_bgp_peer, session }
        };
        let peer_dir = if v6 { "peer_v6" } else { "peer_v4" };
        let global: Vec<(&str, &PeerData)> = match view.topology_index() {
            Some(index) => peerings.global_peers_of(index),
            None => peerings.global_peers().collect(),
        }
        .into_iter()
        .filter(|(_, data)| family_of(&data.ip) == v6)
        .collect();
        let specific: Vec<(&str, &PeerData)> = view
            .topology_index()
            .map(|index| peerings.node_specific_peers(index).filter(|(_, data)| family_of(&data.ip) == v6).collect())
            .unwrap_or_default();
        let global_prefix = format!("/bgp/v1/global/{peer_dir}");
        let global_peers = global.iter().map(|(key, data)| explicit(PeerType::Global, &global_prefix, key, data)).collect();
        let node_prefix = format!("/bgp/v1/host/{}/{peer_dir}", node.name.value);
        let node_peers = specific.iter().map(|(key, data)| explicit(PeerType::NodeSpecific, &node_prefix, key, data)).collect();

        // Only a mesh member lists the hosts; that list is every node, so it is built only then.
        // `topology.nodes` is in name order already, as confd's `lsdir` lists hosts.
        let mesh_enabled = *model.bgp.node_to_node_mesh;
        let mesh_hosts = if mesh_enabled && own_cluster_id.is_none() {
            // Each host's session of this family only: a dual-stack host has one per family,
            // and confd decides each one's `passive` from that family's addresses.
            let mesh_sessions = mesh_by_remote_node(&view.peerings, if v6 { Family::V6 } else { Family::V4 });
            peerings
                .topology
                .nodes
                .iter()
                .enumerate()
                .map(|(index, host)| {
                    let ip = match v6 {
                        false => host.ipv4.map(|ip| ip.to_string()),
                        true => host.ipv6.map(|ip| ip.to_string()),
                    }
                    .unwrap_or_default();
                    let entry = if ip == node_ip {
                        MeshEntry::Ourselves
                    } else if host.is_route_reflector() {
                        MeshEntry::RouteReflector { cluster_id: host.rr_cluster_id.clone() }
                    } else {
                        mesh_sessions.get(&index).map_or(MeshEntry::NoAddress, |peering| {
                            MeshEntry::Session(MeshSession {
                                id: ip.replace(['.', ':'], "_"),
                                port: (peering.data.port != 0).then_some(peering.data.port),
                                as_number: peering.data.as_number.to_string(),
                                passive: ip > node_ip,
                                restart_time: peering.data.restart_time,
                                password: password(&peering.data.password),
                            })
                        })
                    };
                    MeshHost { name: host.name.clone(), ip, entry }
                })
                .collect()
        } else {
            Vec::new()
        };

        let services = view.service_ranges();
        let of_family = |cidrs: &[IpNet]| -> Vec<String> {
            let mut strings: Vec<String> = cidrs.iter().filter(|cidr| cidr.addr().is_ipv6() == v6).map(ToString::to_string).collect();
            strings.sort_by_key(|cidr| key_order(cidr));
            strings
        };
        let mut static_routes = of_family(&services.advertised);
        if let Some(observed_services) = &observed.services {
            let per_service = view.service_advertisement().routes(observed_services);
            static_routes.extend(per_service.into_iter().filter(|route| route.contains(':') == v6));
            static_routes.sort_by_key(|cidr| key_order(cidr));
            static_routes.dedup();
        }

        let mut blocks: Vec<_> = view.blocks.iter().filter(|block| block.cidr.addr().is_ipv6() == v6 && block.is_advertised()).collect();
        blocks.sort_by_key(|block| key_order(&block.cidr.to_string()));
        let reachable = |entries: &[(&str, &PeerData)]| -> Vec<ReachableRoute> {
            entries
                .iter()
                .filter_map(|(_, data)| Some(ReachableRoute { ip: data.ip.to_string(), gateway: data.reachable_by?.to_string() }))
                .collect()
        };
        let aggr = Aggr {
            blackholes: blocks.iter().filter(|block| !block.is_host_block()).map(|block| block.cidr.to_string()).collect(),
            blocks: blocks
                .iter()
                .map(|block| AggregatedBlock {
                    cidr: block.cidr.to_string(),
                    state: match block.state {
                        AffinityState::Implicit => "",
                        state => state.as_str(),
                    },
                })
                .collect(),
            static_routes: static_routes.clone(),
            global_reachable: reachable(&global),
            node_reachable: reachable(&specific),
        };

        let mut pools: Vec<IpamPool> = model
            .pools
            .iter()
            .filter(|pool| pool.is_ipv4() != v6)
            .map(|pool| IpamPool {
                cidr: pool.cidr.trunc().to_string(),
                export_disabled: *pool.disable_bgp_export,
                kernel: if pool.vxlan_mode.is_enabled() {
                    "vxlan"
                } else if *pool.ipip_mode == EncapsulationMode::CrossSubnet {
                    "cross-subnet"
                } else {
                    "tunnel"
                },
                ipip: if pool.ipip_mode.is_enabled() { "tunl0" } else { "" },
            })
            .collect();
        pools.sort_by_key(|pool| key_order(&pool.cidr));
        let load_balancer_ips = &model.bgp.service_load_balancer_ips;
        let ipam = Ipam {
            pools,
            static_routes,
            reflector_load_balancer_ips: (own_cluster_id.is_some() && !load_balancer_ips.is_empty())
                .then(|| load_balancer_ips.iter().filter(|cidr| cidr.addr().is_ipv6() == v6).map(|cidr| cidr.to_string()).collect()),
            reject_cidrs: of_family(&services.rejected),
            network: if v6 { None } else { node.ipv4_address.as_ref().map(|address| address.trunc().to_string()) },
        };

        let (listen_comment, listen_port) = match node_configuration.and_then(|configuration| configuration.listen_port.as_ref()) {
            Some(port) if port.value != 0 => (Some("# Set node listen_port"), Some(port.value)),
            _ => match model.bgp.listen_port.as_ref().map(|port| port.value).filter(|port| *port != 0) {
                Some(port) => (Some("# Set global listen_port"), Some(port)),
                None => (None, None),
            },
        };
        let listen_address = (model.bgp.bind_mode_node_ip && !node_ip.is_empty()).then(|| node_ip.clone());
        let listen = (listen_address.is_some() || listen_port.is_some()).then(|| {
            let address = listen_address.map(|address| format!(" address {address}")).unwrap_or_default();
            let port = listen_port.map(|port| format!(" port {port}")).unwrap_or_default();
            format!("listen bgp{address}{port};")
        });
        let (router_id, hashed) = confd_router_id(model, node);
        let router_id_comment = v6.then_some(if hashed {
            "  # Use IP address generated by nodename's hash"
        } else {
            "  # Use IPv4 address since router id is 4 octets, even in MP-BGP"
        });
        let mut named_filters: Vec<&BgpFilter> = model.filters.iter().collect();
        named_filters.sort_by(|a, b| a.name.value.cmp(&b.name.value));

        CalicoBird {
            v6,
            communities: community_blocks(model, node, v6),
            node_name: node.name.value.clone(),
            router_id,
            router_id_comment,
            listen_comment,
            listen,
            debug: crate::bird::debug_clause(view.log_severity()),
            ignored_interfaces: model.bgp.ignored_interfaces.clone(),
            node_as: node_as.to_string(),
            filter_lines: filters::function_lines(&named_filters, v6),
            mesh: Mesh { own_cluster_id, enabled: mesh_enabled, hosts: mesh_hosts },
            peer_sections: [
                PeerSection::new("Global peers", "No global peers configured.", "Global local bgp peers", true, global_peers),
                PeerSection::new(
                    "Node-specific peers",
                    "No node-specific peers configured.",
                    "Node-specific local BGP peers",
                    false,
                    node_peers,
                ),
            ],
            aggr,
            ipam,
            node_ip,
        }
    }
}

/// The router ID confd writes (`CALICO_ROUTER_ID`, else the node's IPv4 address, which is
/// empty on a node without one), and whether it was hashed from the node's name.
fn confd_router_id(model: &Model, node: &Node) -> (String, bool) {
    match model.bgp.router_id.as_ref().map(|source| source.value) {
        Some(RouterIdSource::Hash) => (crate::bird::hashed_router_id(&node.name.value).to_string(), true),
        Some(RouterIdSource::Address(address)) => (address.to_string(), false),
        None => (node.ipv4().map(|ip| ip.to_string()).unwrap_or_default(), false),
    }
}

/// `apply_communities`' body: the node's own `prefixAdvertisements` when its BGPConfiguration
/// has them, else the cluster's; each community a value, or a name resolved in the same
/// configuration's `communities`; values without repeats, sorted as strings.
fn community_blocks(model: &Model, node: &Node, v6: bool) -> Vec<CommunityBlock> {
    let (advertisements, definitions) =
        match node.bgp_configuration.as_ref().filter(|configuration| configuration.prefix_advertisements.is_some()) {
            Some(configuration) => (configuration.prefix_advertisements.as_deref(), &configuration.communities),
            None => (model.bgp.prefix_advertisements.as_deref(), &model.bgp.communities),
        };
    advertisements
        .unwrap_or_default()
        .iter()
        .filter(|advertisement: &&PrefixAdvertisement| advertisement.cidr.text.contains(':') == v6)
        .map(|advertisement| {
            let mut values: Vec<String> = advertisement
                .communities
                .iter()
                .filter_map(|community| {
                    if Community::looks_like_value(&community.value) {
                        // A value out of range is refused by Calico and by validation.
                        Community::parse(&community.value).ok()?;
                        Some(community.value.clone())
                    } else {
                        definitions
                            .iter()
                            .find(|definition| definition.name.value == community.value)
                            .map(|definition| definition.value.value.clone())
                    }
                })
                .collect();
            values.sort();
            values.dedup();
            let statements = values
                .iter()
                .map(|value| {
                    let parts: Vec<&str> = value.split(':').collect();
                    if parts.len() == 2 {
                        format!("bgp_community.add(({}, {}));", parts[0], parts[1])
                    } else {
                        format!("bgp_large_community.add(({}));", parts.join(", "))
                    }
                })
                .collect();
            CommunityBlock { cidr: advertisement.cidr.text.clone(), statements }
        })
        .collect()
}
