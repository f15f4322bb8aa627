//! `nodes/<node>/bird-calico.cfg`: what calico-node's confd would render for the node, in the
//! BIRD 1.x dialect of Calico's own templates, so an operator can diff it against
//! `/etc/calico/confd/config/bird.cfg` on a live node.
//!
//! It follows Calico v3.30.7's `bird.cfg.template`, with `bird_aggr.cfg` and `bird_ipam.cfg`
//! put inline where `bird.cfg` includes them (one comment line names each), so it is one file.
//! Text, comments, section order and sort orders are confd's: keys sort as strings (`ls` and
//! `gets` of confd's store), hosts by name, passive ends by string comparison of addresses.
//! The peerings themselves come from [`NodeView::peerings`] and the raw confd entries in
//! `Peerings`; this module decides nothing about who peers with whom.
//!
//! What calplan cannot know is left out or marked: BGP passwords render as a placeholder
//! naming the Secret (never a value); BGPFilters, community advertisements and per-service
//! `/32` routes are not in the intent, so their parts render as confd renders them without
//! any; IPv6 lives in confd's `bird6.cfg`, which is not rendered. For a `calicoVersion` other
//! than 3.30 the file still follows 3.30 and says so on its first line.

use crate::node_view::NodeView;
use crate::{Artifact, Context, Target, TemplateError, per_node};
use calplan_calico::peering::{Family, PeerData, PeerType, Peering, mesh_by_remote_node};
use calplan_calico::resources::{EncapsulationMode, SecretKeyRef};
use calplan_model::CalicoVersion;
use ipnet::IpNet;
use serde::Serialize;
use std::collections::HashMap;

pub struct BirdCalico;

impl Target for BirdCalico {
    fn name(&self) -> &'static str {
        "bird-calico"
    }

    fn render(&self, context: &Context) -> Result<Vec<Artifact>, TemplateError> {
        per_node(context, |view| {
            let config = CalicoBird::new(view);
            let text = context.templates.render("bird-calico.cfg.j2", &config)?;
            Ok(vec![Artifact::new(format!("{}/bird-calico.cfg", view.directory()), text, view.source())])
        })
    }
}

/// Everything `bird-calico.cfg.j2` renders, for one node.
#[derive(Serialize)]
struct CalicoBird {
    /// Set when the intent's Calico release is not the one rendered.
    version_note: Option<String>,
    node_name: String,
    /// The node's IPv4 address, `""` without one (as confd's `ip_addr_v4`).
    node_ip: String,
    router_id: String,
    listen: Option<Listen>,
    /// The `debug` clause for the device, direct and template protocols.
    debug: Option<&'static str>,
    ignored_interfaces: Vec<String>,
    node_as: String,
    mesh: Mesh,
    /// Global, then node-specific peers.
    peer_sections: [PeerSection; 2],
    aggr: Aggr,
    ipam: Ipam,
}

#[derive(Serialize)]
struct Listen {
    /// `# Set global listen_port` is printed when a listen port is configured.
    global_port: bool,
    address: Option<String>,
    port: Option<u16>,
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
    /// A host without IPv4: only its `# For peer` line.
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

/// `# ------------- Global peers -------------` or the node-specific one.
#[derive(Serialize)]
struct PeerSection {
    title: &'static str,
    /// What confd prints when the section has no `peer_v4` keys.
    none_configured: &'static str,
    entries: Vec<PeerEntry>,
}

/// One key under `peer_v4`, in key order.
#[derive(Serialize)]
struct PeerEntry {
    /// The full confd key, as the `# For peer` line prints it.
    key: String,
    /// `None` for the node itself (`# Skipping ourselves`).
    session: Option<ExplicitSession>,
}

#[derive(Serialize)]
struct ExplicitSession {
    name: String,
    ttl_security: Option<u8>,
    ip: String,
    port: Option<u16>,
    as_number: String,
    source_address: bool,
    internal: bool,
    passive: bool,
    restart_time: Option<u64>,
    rr_cluster_id: Option<String>,
    password: Option<String>,
    /// `keepOriginalNextHop` towards an eBGP peer.
    keep_next_hop: bool,
    next_hop_mode: Option<String>,
    allow_local_as: Option<u32>,
}

/// `bird_aggr.cfg`.
#[derive(Serialize)]
struct Aggr {
    /// The node has block affinities (a pending one is not in confd's store).
    has_blocks: bool,
    blackholes: Vec<String>,
    static_routes: Vec<String>,
    global_reachable: Vec<ReachableRoute>,
    node_reachable: Vec<ReachableRoute>,
    blocks: Vec<AggregatedBlock>,
}

#[derive(Serialize)]
struct ReachableRoute {
    ip: String,
    gateway: String,
}

#[derive(Serialize)]
struct AggregatedBlock {
    cidr: String,
    state: &'static str,
}

/// `bird_ipam.cfg`.
#[derive(Serialize)]
struct Ipam {
    /// Pools in key order, with whether BGP export is disabled.
    pools: Vec<IpamPool>,
    static_routes: Vec<String>,
    /// On a route reflector with `serviceLoadBalancerIPs`: the IPv4 ones, as configured.
    reflector_load_balancer_ips: Option<Vec<String>>,
    reject_cidrs: Vec<String>,
    /// The node's network (`network_v4`): the kernel filter's pool part needs it.
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

impl CalicoBird {
    fn new(view: &NodeView) -> CalicoBird {
        let model = &view.analysis.model;
        let peerings = &view.analysis.peerings;
        let node = view.node;
        let node_ip = node.ipv4().map(|ip| ip.to_string()).unwrap_or_default();
        let node_as = model.node_as_number(node);
        let own_cluster_id = node.route_reflector_cluster_id.as_ref().map(|id| id.value.to_string());
        let version = model.calico_version.value;
        let listen_port = model.bgp.listen_port.as_ref().map(|port| port.value).filter(|port| *port != 0);
        let listen_address = (model.bgp.bind_mode_node_ip && !node_ip.is_empty()).then(|| node_ip.clone());
        let password = |secret: &Option<SecretKeyRef>| secret.as_ref().map(|secret| format!("<Secret {} key {}>", secret.name, secret.key));

        // The sessions of this node, by (type, confd key), to give each raw entry its
        // computed passive / rr client / eBGP flags.
        let sessions: HashMap<(PeerType, String), &Peering> =
            view.peerings.iter().map(|peering| ((peering.peer_type, peering.data.key()), peering)).collect();
        let explicit = |peer_type: PeerType, prefix: &str, key: &str, data: &PeerData| -> PeerEntry {
            let session = if data.ip.to_string() == node_ip {
                None
            } else {
                sessions.get(&(peer_type, key.to_string())).map(|peering| ExplicitSession {
                    name: peering.protocol_name(),
                    ttl_security: (data.ttl_security != 0).then_some(data.ttl_security),
                    ip: data.ip.to_string(),
                    port: (data.port != 0).then_some(data.port),
                    as_number: data.as_number.to_string(),
                    source_address: data.source_address,
                    internal: !peering.external,
                    passive: peering.passive,
                    restart_time: data.restart_time,
                    rr_cluster_id: peering.rr_client.then(|| peering.local_cluster_id.clone()),
                    password: password(&data.password),
                    keep_next_hop: peering.external && data.keep_next_hop,
                    next_hop_mode: data.next_hop_mode.clone(),
                    allow_local_as: (data.num_allow_local_as != 0).then_some(data.num_allow_local_as),
                })
            };
            PeerEntry { key: format!("{prefix}/{key}"), session }
        };
        let topology_index = view.topology_index();
        let global: Vec<(&String, &PeerData)> = peerings.global_peers().iter().filter(|(_, data)| data.ip.is_ipv4()).collect();
        let specific: Vec<(&String, &PeerData)> = topology_index
            .map(|index| peerings.node_specific_peers(index).iter().filter(|(_, data)| data.ip.is_ipv4()).collect())
            .unwrap_or_default();
        let global_peers = global.iter().map(|(key, data)| explicit(PeerType::Global, "/bgp/v1/global/peer_v4", key, data)).collect();
        let node_prefix = format!("/bgp/v1/host/{}/peer_v4", node.name.value);
        let node_peers = specific.iter().map(|(key, data)| explicit(PeerType::NodeSpecific, &node_prefix, key, data)).collect();

        // Only a mesh member lists the hosts; that list is every node, so it is built only then.
        // `topology.nodes` is in name order already, as confd's `lsdir` lists hosts.
        let mesh_enabled = *model.bgp.node_to_node_mesh;
        let mesh_hosts = if mesh_enabled && own_cluster_id.is_none() {
            // `bird.cfg` is the IPv4 mesh: each host's IPv4 session, never its IPv6 one.
            let mesh_sessions = mesh_by_remote_node(&view.peerings, Family::V4);
            peerings
                .topology
                .nodes
                .iter()
                .enumerate()
                .map(|(index, host)| {
                    let ip = host.ipv4.map(|ip| ip.to_string()).unwrap_or_default();
                    let entry = if ip == node_ip {
                        MeshEntry::Ourselves
                    } else if host.is_route_reflector() {
                        MeshEntry::RouteReflector { cluster_id: host.rr_cluster_id.clone() }
                    } else {
                        mesh_sessions.get(&index).map_or(MeshEntry::NoAddress, |peering| {
                            MeshEntry::Session(MeshSession {
                                id: ip.replace('.', "_"),
                                port: (peering.data.port != 0).then_some(peering.data.port),
                                as_number: peering.data.as_number.to_string(),
                                passive: peering.passive,
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
        let confd_order = |cidrs: &mut Vec<String>| cidrs.sort_by_key(|cidr| cidr.replace('/', "-"));
        let ipv4_strings = |cidrs: &[IpNet]| {
            let mut strings: Vec<String> = cidrs.iter().filter(|cidr| cidr.addr().is_ipv4()).map(ToString::to_string).collect();
            confd_order(&mut strings);
            strings
        };
        let static_routes = ipv4_strings(&services.advertised);

        let mut blocks: Vec<_> = view.blocks.iter().filter(|block| block.cidr.addr().is_ipv4() && block.is_advertised()).collect();
        blocks.sort_by_key(|block| block.cidr.to_string().replace('/', "-"));
        let reachable = |entries: &[(&String, &PeerData)]| -> Vec<ReachableRoute> {
            entries
                .iter()
                .filter_map(|(_, data)| Some(ReachableRoute { ip: data.ip.to_string(), gateway: data.reachable_by?.to_string() }))
                .collect()
        };
        let aggr = Aggr {
            has_blocks: !blocks.is_empty(),
            blackholes: blocks.iter().filter(|block| !block.is_host_block()).map(|block| block.cidr.to_string()).collect(),
            static_routes: static_routes.clone(),
            global_reachable: reachable(&global),
            node_reachable: reachable(&specific),
            blocks: blocks.iter().map(|block| AggregatedBlock { cidr: block.cidr.to_string(), state: block.state.as_str() }).collect(),
        };

        let mut pools: Vec<IpamPool> = model
            .pools
            .iter()
            .filter(|pool| pool.is_ipv4())
            .map(|pool| IpamPool {
                cidr: pool.cidr.to_string(),
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
        pools.sort_by_key(|pool| pool.cidr.replace('/', "-"));
        let load_balancer_ips = &model.bgp.service_load_balancer_ips;
        let ipam = Ipam {
            pools,
            static_routes,
            reflector_load_balancer_ips: (own_cluster_id.is_some() && !load_balancer_ips.is_empty())
                .then(|| load_balancer_ips.iter().filter(|cidr| cidr.addr().is_ipv4()).map(|cidr| cidr.to_string()).collect()),
            reject_cidrs: ipv4_strings(&services.rejected),
            network: node.ipv4_address.as_ref().map(|address| address.trunc().to_string()),
        };

        CalicoBird {
            version_note: (version != CalicoVersion::DEFAULT).then(|| {
                format!("# calplan renders Calico {}'s confd templates; this cluster runs Calico {version}.", CalicoVersion::DEFAULT)
            }),
            node_name: node.name.value.clone(),
            router_id: crate::bird::router_id(node).to_string(),
            listen: (listen_port.is_some() || listen_address.is_some()).then_some(Listen {
                global_port: listen_port.is_some(),
                address: listen_address,
                port: listen_port,
            }),
            debug: crate::bird::debug_clause(model.bgp.log_severity),
            ignored_interfaces: model.bgp.ignored_interfaces.clone(),
            node_as: node_as.to_string(),
            mesh: Mesh { own_cluster_id, enabled: mesh_enabled, hosts: mesh_hosts },
            peer_sections: [
                PeerSection { title: "Global peers", none_configured: "No global peers configured.", entries: global_peers },
                PeerSection { title: "Node-specific peers", none_configured: "No node-specific peers configured.", entries: node_peers },
            ],
            aggr,
            ipam,
            node_ip,
        }
    }
}
