//! The lab's layout, computed from an analysed intent: which namespaces exist, which L2
//! segments join them, which addresses each interface holds, where the emulated pods, BGP
//! speakers and the outside host sit. Pure: it decides names and addresses and touches
//! nothing; `up` builds what it describes and `lab.json` keeps it for `verify`, `apply` and
//! `down`.
//!
//! - Segments: every subnet the intent's addresses imply (node addresses with their prefix,
//!   router addresses, external peers inside one of those subnets); subnets that share a host
//!   (a dual-stack node, say) share a bridge. The bridges live in the fabric namespace, which
//!   also routes between segments with one address per subnet, as a data-centre fabric would.
//! - Every host gets a default route per family via the fabric. The brief asked for one only
//!   with several segments; a single-segment lab needs it too, because Calico's proxy ARP for
//!   `169.254.1.1` answers only for an address the node routes out of another interface, and
//!   NAT outgoing needs a way out to the outside host. The fabric knows no pod route, so a
//!   missing cluster route still fails rather than leaking through it.
//! - Emulated pods: one per advertised block, at the block's second address (the first one is
//!   the VXLAN tunnel address Felix takes), behind a `cali…` veth as Calico wires them.
//! - BGP speakers: every session a node has with an address that is not a node (external
//!   peers, routers that speak BGP) becomes an FRR neighbour. A router's sessions run in the
//!   router's namespace; external peers share a namespace per AS number (a top-of-rack switch
//!   with a loopback is one box), with one `bgpd` per local address so the same node can peer
//!   with two of its addresses.
//!
//! Interface names stay inside the lab's own namespaces, so they are short fixed names; every
//! namespace name starts with the lab prefix.

use calplan_apply::netns::{InterfaceName, NamespaceName};
use calplan_calico::resources::SecretKeyRef;
use calplan_model::{Analysis, Destination, NextHop, NodeAgent, Platform};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// FRR's run directory (Debian's `--localstatedir`); a path space's sockets are in
/// `FRR_RUN_DIR/<pathspace>`.
pub const FRR_RUN_DIR: &str = "/var/run/frr";

/// The TCP port every emulated pod listens on (router → pod and pod → pod checks).
pub const POD_PORT: u16 = 8080;
/// The TCP port the outside host answers on with the address it sees.
pub const OUTSIDE_PORT: u16 = 9000;
/// The next hop Calico gives every pod, answered by proxy ARP on the node's `cali*` side.
pub const POD_GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The MAC Calico gives the node's end of every workload veth, and its link-local address.
pub const CALI_MAC: &str = "ee:ee:ee:ee:ee:ee";
pub const POD_GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xecee, 0xeeff, 0xfeee, 0xeeee);
/// Felix's VXLAN settings (VXLANVNI, VXLANPort).
pub const VXLAN_VNI: u32 = 4096;
pub const VXLAN_PORT: u16 = 4789;

/// Everything the lab is made of; saved as `lab.json` in the lab's directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layout {
    /// The intent's `metadata.name`.
    pub name: String,
    /// Every namespace name starts with `prefix-`.
    pub prefix: String,
    pub dir: PathBuf,
    /// The intent the lab was brought up from.
    pub intent: String,
    pub fabric: String,
    pub segments: Vec<Segment>,
    pub nodes: Vec<NodeHost>,
    pub routers: Vec<RouterHost>,
    pub speakers: Vec<Speaker>,
    pub pods: Vec<Pod>,
    pub outside: Outside,
    /// Pools with IPIP: their data plane needs the kernel's `ipip` module.
    pub ipip_pools: Vec<String>,
    /// Whether this kernel can make `ipip` devices (found out by `up`).
    #[serde(default)]
    pub ipip_in_kernel: bool,
    /// What the lab emulates rather than runs from compiled artifacts, for reports.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Who runs the nodes: calico-node (BIRD 1.6 on confd's render of the lab's etcd) or
    /// calplan's BIRD 2.
    #[serde(default = "bird_agent")]
    pub node_agent: NodeAgent,
    /// The lab's etcd, in calico-node mode.
    #[serde(default)]
    pub etcd: Option<LabEtcd>,
    /// The folder holding BIRD 1.6's `bird`, `bird6` and `birdc`, in calico-node mode.
    #[serde(default)]
    pub bird16: Option<PathBuf>,
    /// In calico-node mode: calplan renders no `bird6-calico.cfg` (confd's `bird6.cfg`) for the intent,
    /// so calico-node's IPv6 BIRD runs its bootstrap configuration and IPv6 is not checked.
    #[serde(default)]
    pub ipv6_unrendered: bool,
}

fn bird_agent() -> NodeAgent {
    NodeAgent::Bird
}

/// The lab's own etcd on loopback: the datastore of a calico-node lab.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabEtcd {
    pub client_port: u16,
    pub peer_port: u16,
}

impl LabEtcd {
    /// `etcd://127.0.0.1:PORT`, as `--current` and `--calico` take it.
    pub fn source(&self) -> String {
        format!("etcd://127.0.0.1:{}", self.client_port)
    }
}

/// One L2 segment: a bridge in the fabric namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    pub bridge: String,
    pub subnets: Vec<IpNet>,
    /// The fabric's own address in each subnet, with the subnet's prefix length.
    pub gateways: Vec<IpNet>,
}

/// A host's link to a segment: a veth with `interface` in the host and `port` in the fabric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub segment: usize,
    pub interface: String,
    pub port: String,
    pub addresses: Vec<IpNet>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeHost {
    pub name: String,
    pub namespace: String,
    /// Where the executor keeps the node's files (BIRD 2 mode: with BIRD's socket and pid
    /// file beside them; calico-node mode: `DIR/etc/calplan`, calplan's own place on a node).
    pub root: PathBuf,
    /// The node's own directory: in calico-node mode, laid out as calico-node lays out a host
    /// (`etc/calico/confd/config/`, `var/run/calico/`).
    #[serde(default)]
    pub dir: PathBuf,
    pub link: Attachment,
    pub gateways: Vec<IpAddr>,
    pub router_id: Ipv4Addr,
    pub vteps: Vec<Vtep>,
}

/// A VXLAN tunnel endpoint as Felix programs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vtep {
    pub device: String,
    pub address: IpAddr,
    pub mac: String,
    /// The node's own address the tunnel runs over.
    pub underlay: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterHost {
    pub name: String,
    pub platform: String,
    pub namespace: String,
    pub root: PathBuf,
    pub link: Attachment,
    pub gateways: Vec<IpAddr>,
    /// The intent's static routes as `ip route replace` arguments, for when no compiled
    /// artifact carries them (IOS and Junos, or routers whose artifacts are not compiled).
    pub static_routes: Vec<Vec<String>>,
    /// Index into `Layout::speakers` when the router speaks BGP.
    pub speaker: Option<usize>,
}

/// A BGP speaker emulated by FRR.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Speaker {
    pub name: String,
    pub namespace: String,
    pub as_number: u32,
    pub root: PathBuf,
    /// Links of its own; empty for a router's speaker, which uses the router's link.
    pub links: Vec<Attachment>,
    pub loopbacks: Vec<IpAddr>,
    pub gateways: Vec<IpAddr>,
    pub instances: Vec<BgpInstance>,
    /// A router: FRR installs what it learns into the kernel (zebra runs).
    pub router: bool,
}

/// One `bgpd`: the sessions from one local address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpInstance {
    pub local: IpAddr,
    pub port: u16,
    pub router_id: Ipv4Addr,
    /// Its config, pid file, log and vty socket.
    pub dir: PathBuf,
    pub neighbors: Vec<Neighbor>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Neighbor {
    pub node: String,
    pub address: IpAddr,
    pub remote_as: u32,
    pub port: u16,
    pub password: Option<SecretKeyRef>,
    pub ttl_security: u8,
    pub multihop: bool,
    /// The node's BIRD protocol for this session.
    pub protocol: String,
}

/// An emulated pod: a namespace behind a `cali…` veth, as Calico wires a workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    pub node: String,
    pub block: IpNet,
    pub pool: String,
    pub address: IpAddr,
    pub host_interface: String,
}

/// The host outside the cluster that NAT outgoing is checked against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outside {
    pub namespace: String,
    pub address: IpNet,
    /// The fabric's address on the outside link.
    pub gateway: IpNet,
    pub port: String,
}

/// The lab's prefix: `cpl-`, the intent's name made namespace-safe (at most 12 characters),
/// and six hex digits of the lab directory's path, so that two labs of one intent in two
/// directories never share a name. Deterministic, so `down` finds a crashed lab's leftovers.
pub fn prefix(name: &str, dir: &Path) -> NamespaceName {
    let mut slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    slug.truncate(12);
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "lab" } else { slug };
    let hash = calplan_plan::current::text_digest(&dir.display().to_string());
    NamespaceName::new(format!("cpl-{slug}-{}", &hash[..6])).expect("built from safe characters")
}

/// A `cali` name as Calico makes them: `cali` and eleven hex digits of a hash of the workload.
pub(crate) fn cali_name(workload: &str) -> String {
    format!("cali{}", &calplan_plan::current::text_digest(workload)[..11])
}

/// A locally administered unicast MAC from a hash of `seed`.
fn mac_for(seed: &str) -> String {
    let hash = calplan_plan::current::text_digest(seed);
    let bytes: Vec<&str> = (0..5).map(|index| &hash[index * 2..index * 2 + 2]).collect();
    format!("02:{}", bytes.join(":"))
}

fn add(address: IpAddr, offset: i128) -> Option<IpAddr> {
    match address {
        IpAddr::V4(v4) => {
            let value = i128::from(u32::from(v4)) + offset;
            u32::try_from(value).ok().map(|value| IpAddr::V4(Ipv4Addr::from(value)))
        }
        IpAddr::V6(v6) => {
            let value = u128::from(v6).checked_add_signed(offset)?;
            Some(IpAddr::V6(Ipv6Addr::from(value)))
        }
    }
}

/// A host address of `subnet` nobody uses: the first, then the last, then counting up.
fn free_address(subnet: &IpNet, used: &BTreeSet<IpAddr>) -> Option<IpAddr> {
    let host_bits = u32::from(subnet.max_prefix_len() - subnet.prefix_len());
    if host_bits < 2 {
        return None;
    }
    let network = subnet.network();
    let last = if subnet.addr().is_ipv4() { add(subnet.broadcast(), -1) } else { add(subnet.broadcast(), 0) };
    let mut candidates = vec![add(network, 1), last];
    candidates.extend((2..258).map(|offset| add(network, offset)));
    candidates.into_iter().flatten().find(|candidate| subnet.contains(candidate) && *candidate != network && !used.contains(candidate))
}

fn with_prefix(address: IpAddr, subnet: &IpNet) -> IpNet {
    IpNet::new(address, subnet.prefix_len()).expect("a prefix length of the same family")
}

/// The address a pod gets in its block: the second one, the first being Felix's VXLAN tunnel
/// address (or the only one, in a `/32` block).
pub fn pod_address(block: &IpNet) -> IpAddr {
    if block.prefix_len() == block.max_prefix_len() { block.addr() } else { add(block.network(), 1).expect("inside the block") }
}

/// The lab's layout for an analysed intent.
pub fn plan(analysis: &Analysis, intent: &str, dir: &Path, node_agent: NodeAgent) -> Result<Layout, String> {
    let model = &analysis.model;
    let prefix = prefix(&model.name.value, dir);
    let namespace = |suffix: &str| prefix.join(suffix).map(|name| name.to_string()).map_err(|error| error.to_string());
    let hosts = dir.join("hosts");

    // Subnets per host, joined into segments where a host holds several.
    let mut host_subnets: Vec<Vec<IpNet>> = Vec::new();
    for node in &model.nodes {
        let mut subnets = Vec::new();
        subnets.extend(node.ipv4_address.as_ref().map(|address| IpNet::V4(address.trunc())));
        subnets.extend(node.ipv6_address.as_ref().map(|address| IpNet::V6(address.trunc())));
        if subnets.is_empty() {
            return Err(format!("node `{}` has no address: the lab cannot place it", node.name.value));
        }
        host_subnets.push(subnets);
    }
    for router in &model.routers {
        host_subnets.push(vec![router.address.trunc()]);
    }
    let mut segments: Vec<BTreeSet<IpNet>> = Vec::new();
    for subnets in &host_subnets {
        let mut merged: BTreeSet<IpNet> = subnets.iter().copied().collect();
        segments.retain(|segment| {
            if segment.iter().any(|subnet| merged.contains(subnet)) {
                merged.extend(segment.iter().copied());
                false
            } else {
                true
            }
        });
        segments.push(merged);
    }
    segments.sort();
    let segment_of = |subnet: &IpNet| segments.iter().position(|segment| segment.contains(subnet));
    let subnet_of = |address: &IpAddr| segments.iter().flatten().find(|subnet| subnet.contains(address)).copied();

    // Every address someone holds, so the fabric's and the speakers' own are free ones.
    let mut used: BTreeSet<IpAddr> = BTreeSet::new();
    for node in &model.nodes {
        used.extend(node.ipv4_address.as_ref().map(|address| IpAddr::V4(address.addr())));
        used.extend(node.ipv6_address.as_ref().map(|address| IpAddr::V6(address.addr())));
    }
    used.extend(model.routers.iter().map(|router| router.address.addr()));
    let peerings = &analysis.peerings;
    for index in 0..peerings.topology.nodes.len() {
        for peering in peerings.for_node(index) {
            used.insert(peering.data.ip);
            used.extend(peering.data.reachable_by);
        }
    }
    let mut layout_segments = Vec::new();
    for (index, subnets) in segments.iter().enumerate() {
        let mut gateways = Vec::new();
        for subnet in subnets {
            let gateway = free_address(subnet, &used).ok_or_else(|| format!("no free address in {subnet} for the lab's fabric"))?;
            used.insert(gateway);
            gateways.push(with_prefix(gateway, subnet));
        }
        layout_segments.push(Segment { bridge: format!("br{index}"), subnets: subnets.iter().copied().collect(), gateways });
    }
    let gateway_for = |address: IpAddr| -> Option<IpAddr> {
        let subnet = subnet_of(&address)?;
        let segment = &layout_segments[segment_of(&subnet)?];
        segment.gateways.iter().find(|gateway| subnet.contains(&gateway.addr())).map(IpNet::addr)
    };

    // Nodes.
    let mut vteps: BTreeMap<(String, bool), IpAddr> = BTreeMap::new();
    for block in analysis.placement.blocks.iter().filter(|block| block.is_advertised()) {
        if block.pool.is_some_and(|pool| model.pools[pool].vxlan_mode.is_enabled()) {
            let owner = model.node(block.node).name.value.clone();
            vteps.entry((owner, block.cidr.addr().is_ipv4())).or_insert(block.cidr.network());
        }
    }
    let mut nodes = Vec::new();
    for (index, node) in model.nodes.iter().enumerate() {
        let addresses: Vec<IpNet> = node
            .ipv4_address
            .iter()
            .map(|address| IpNet::V4(**address))
            .chain(node.ipv6_address.iter().map(|address| IpNet::V6(**address)))
            .collect();
        let first = addresses[0];
        let segment = segment_of(&first.trunc()).expect("every node subnet is in a segment");
        // Felix's same-subnet VXLAN routes name the interface holding the address.
        let interface = node
            .interfaces
            .iter()
            .flatten()
            .find(|interface| interface.addresses.iter().any(|held| held.addr() == first.addr()))
            .map(|interface| interface.name.value.clone())
            .filter(|name| InterfaceName::new(name.clone()).is_ok() && !name.starts_with("cali") && name != "lo")
            .unwrap_or_else(|| "eth0".to_string());
        let gateways = addresses.iter().filter_map(|address| gateway_for(address.addr())).collect();
        let router_id = node.ipv4().unwrap_or_else(|| Ipv4Addr::new(240, 1, (index / 250) as u8, (index % 250 + 1) as u8));
        let mut node_vteps = Vec::new();
        for (ipv4, device) in [(true, "vxlan.calico"), (false, "vxlan-v6.calico")] {
            let Some(address) = vteps.get(&(node.name.value.clone(), ipv4)) else { continue };
            let Some(underlay) = addresses.iter().find(|held| held.addr().is_ipv4() == ipv4) else { continue };
            node_vteps.push(Vtep {
                device: device.to_string(),
                address: *address,
                mac: mac_for(&format!("{prefix}/{}/{device}", node.name.value)),
                underlay: underlay.addr(),
            });
        }
        let node_dir = hosts.join(format!("n{index}"));
        nodes.push(NodeHost {
            name: node.name.value.clone(),
            namespace: namespace(&format!("n{index}"))?,
            root: match node_agent {
                NodeAgent::Bird => node_dir.clone(),
                NodeAgent::CalicoNode => node_dir.join("etc/calplan"),
            },
            dir: node_dir,
            link: Attachment { segment, interface, port: format!("n{index}"), addresses },
            gateways,
            router_id,
            vteps: node_vteps,
        });
    }

    // Speakers: every session of a node with an address that is not a node.
    let router_by_address: BTreeMap<IpAddr, usize> =
        model.routers.iter().enumerate().map(|(index, router)| (router.address.addr(), index)).collect();
    // (speaker key, local address) → neighbours; the key is a router index or an AS number.
    let mut sessions: BTreeMap<(SpeakerKey, IpAddr), (u16, u32, Vec<Neighbor>)> = BTreeMap::new();
    for (index, topology_node) in peerings.topology.nodes.iter().enumerate() {
        for peering in peerings.for_node(index) {
            if peering.remote_node.is_some() {
                continue;
            }
            let remote = peering.data.ip;
            let node_address = if remote.is_ipv4() { topology_node.ipv4.map(IpAddr::V4) } else { topology_node.ipv6.map(IpAddr::V6) };
            let Some(node_address) = node_address else { continue };
            let key = match router_by_address.get(&remote) {
                Some(router) => SpeakerKey::Router(*router),
                None => SpeakerKey::External(peering.data.as_number.0),
            };
            let on_link = subnet_of(&remote).is_some_and(|subnet| subnet.contains(&node_address));
            let port = if peering.data.port == 0 { 179 } else { peering.data.port };
            let entry = sessions.entry((key, remote)).or_insert_with(|| (port, peering.data.as_number.0, Vec::new()));
            if entry.2.iter().any(|neighbor| neighbor.address == node_address) {
                continue;
            }
            entry.2.push(Neighbor {
                node: topology_node.name.clone(),
                address: node_address,
                // The AS the node presents: the peering's own local AS where it has one.
                remote_as: peering
                    .data
                    .local_as_number
                    .filter(|number| peerings.release.local_as() && number.0 != 0)
                    .unwrap_or(peerings.topology.node_as(topology_node))
                    .0,
                port: match peerings.topology.node_port(index) {
                    0 => 179,
                    port => port,
                },
                password: peering.data.password.clone(),
                ttl_security: peering.data.ttl_security,
                multihop: !on_link,
                protocol: peering.protocol_name(),
            });
        }
    }
    // A router on FRR runs FRR even without sessions: its static routes are in frr.conf.
    for (index, router) in model.routers.iter().enumerate() {
        if *router.platform == Platform::Frr && !sessions.keys().any(|(key, _)| *key == SpeakerKey::Router(index)) {
            let as_number = router.bgp.as_ref().map_or(0, |bgp| bgp.as_number.0);
            sessions.insert((SpeakerKey::Router(index), router.address.addr()), (179, as_number, Vec::new()));
        }
    }
    let mut speakers: Vec<Speaker> = Vec::new();
    let mut router_speaker: BTreeMap<usize, usize> = BTreeMap::new();
    let keys: BTreeSet<SpeakerKey> = sessions.keys().map(|(key, _)| *key).collect();
    for key in keys {
        let speaker_index = speakers.len();
        let (name, namespace_name, root, as_number, router) = match key {
            SpeakerKey::Router(router_index) => {
                let router = &model.routers[router_index];
                router_speaker.insert(router_index, speaker_index);
                // The router's own AS, else the one the cluster's BGPPeer gives its address.
                let as_number = router.bgp.as_ref().map_or_else(
                    || sessions.iter().find(|((k, _), _)| *k == key).map_or(0, |(_, (_, as_number, _))| *as_number),
                    |bgp| bgp.as_number.0,
                );
                // zebra runs as FRR's user, which cannot be trusted to reach the lab's
                // directory (a home directory is often mode 0700): a router's FRR keeps its
                // files in FRR's own run directory, under the path space `vtysh -N` (and so
                // apply's `frr-reload.py --pathspace`) looks in.
                let namespace_name = namespace(&format!("r{router_index}"))?;
                let root = Path::new(FRR_RUN_DIR).join(&namespace_name);
                (router.name.value.clone(), namespace_name, root, as_number, true)
            }
            SpeakerKey::External(as_number) => {
                let number = speakers.iter().filter(|speaker| !speaker.router).count();
                (format!("as{as_number}"), namespace(&format!("e{number}"))?, hosts.join(format!("e{number}")), as_number, false)
            }
        };
        let mut speaker = Speaker {
            name,
            namespace: namespace_name,
            as_number,
            root: root.clone(),
            links: Vec::new(),
            loopbacks: Vec::new(),
            gateways: Vec::new(),
            instances: Vec::new(),
            router,
        };
        let locals: Vec<(IpAddr, u16, Vec<Neighbor>)> = sessions
            .iter()
            .filter(|((k, _), _)| *k == key)
            .map(|((_, local), (port, _, neighbors))| (*local, *port, neighbors.clone()))
            .collect();
        for (instance_index, (local, port, neighbors)) in locals.into_iter().enumerate() {
            let router_id = match local {
                IpAddr::V4(v4) => v4,
                IpAddr::V6(_) => Ipv4Addr::new(240, 0, speaker_index as u8, instance_index as u8 + 1),
            };
            if !router {
                match subnet_of(&local) {
                    Some(subnet) => {
                        let segment = segment_of(&subnet).expect("a known subnet");
                        attach(&mut speaker, segment, with_prefix(local, &subnet), speaker_index);
                    }
                    None => speaker.loopbacks.push(local),
                }
            }
            // A router's one instance lives in the path space's directory itself.
            let dir = if router { root.clone() } else { root.join(format!("bgp{instance_index}")) };
            speaker.instances.push(BgpInstance { local, port, router_id, dir, neighbors });
        }
        speakers.push(speaker);
    }
    // An external speaker reached only at loopbacks gets a link of its own on the segment of
    // the first node it peers with.
    for (speaker_index, speaker) in speakers.iter_mut().enumerate() {
        if speaker.router || !speaker.links.is_empty() {
            continue;
        }
        let Some(neighbor) = speaker.instances.iter().flat_map(|instance| &instance.neighbors).next().cloned() else { continue };
        let Some(subnet) = subnet_of(&neighbor.address) else { continue };
        let address = free_address(&subnet, &used).ok_or_else(|| format!("no free address in {subnet} for a BGP peer"))?;
        used.insert(address);
        let segment = segment_of(&subnet).expect("a known subnet");
        attach(speaker, segment, with_prefix(address, &subnet), speaker_index);
    }
    for speaker in &mut speakers {
        speaker.gateways =
            speaker.links.iter().flat_map(|link| &link.addresses).filter_map(|address| gateway_for(address.addr())).collect();
        speaker.gateways.sort();
        speaker.gateways.dedup_by_key(|gateway| gateway.is_ipv4());
    }

    // Routers.
    let mut routers = Vec::new();
    for (index, router) in model.routers.iter().enumerate() {
        let subnet = router.address.trunc();
        let segment = segment_of(&subnet).expect("every router subnet is in a segment");
        let mut static_routes = Vec::new();
        for route in &router.static_routes {
            let destinations: Vec<IpNet> = match &route.destination.value {
                Destination::Pools if route.aggregate => model.pools.iter().filter(|pool| !*pool.disabled).map(|pool| *pool.cidr).collect(),
                Destination::Pools => analysis
                    .placement
                    .blocks
                    .iter()
                    .filter(|block| block.is_advertised() && block.pool.is_some_and(|pool| !*model.pools[pool].disabled))
                    .map(|block| block.cidr)
                    .collect(),
                Destination::Services => model.service_cluster_ips.iter().map(|cidr| **cidr).collect(),
                Destination::Cidr(cidr) => vec![*cidr],
            };
            for destination in destinations {
                let hops: Vec<IpAddr> = route
                    .via
                    .iter()
                    .filter_map(|hop| match hop.value {
                        NextHop::Node(node) => {
                            let node = model.node(node);
                            if destination.addr().is_ipv4() {
                                node.ipv4().map(IpAddr::V4)
                            } else {
                                node.ipv6_address.as_ref().map(|address| IpAddr::V6(address.addr()))
                            }
                        }
                        NextHop::Address(address) => Some(address),
                    })
                    .filter(|hop| hop.is_ipv4() == destination.addr().is_ipv4())
                    .collect();
                let mut arguments = vec![destination.to_string()];
                match hops.as_slice() {
                    [] => continue,
                    [one] => arguments.extend(["via".to_string(), one.to_string()]),
                    many => {
                        for hop in many {
                            arguments.extend(["nexthop".to_string(), "via".to_string(), hop.to_string()]);
                        }
                    }
                }
                static_routes.push(arguments);
            }
        }
        let address = router.address.value;
        routers.push(RouterHost {
            name: router.name.value.clone(),
            platform: router.platform.as_str().to_string(),
            namespace: namespace(&format!("r{index}"))?,
            root: hosts.join(format!("r{index}")),
            link: Attachment { segment, interface: "eth0".to_string(), port: format!("r{index}"), addresses: vec![address] },
            gateways: gateway_for(address.addr()).into_iter().collect(),
            static_routes,
            speaker: router_speaker.get(&index).copied(),
        });
    }

    // Pods, one per advertised block.
    let mut pods = Vec::new();
    let mut blocks: Vec<&calplan_model::ipam::Block> =
        analysis.placement.blocks.iter().filter(|block| block.is_advertised() && block.pool.is_some()).collect();
    blocks.sort_by_key(|block| (block.node, block.cidr));
    for (index, block) in blocks.into_iter().enumerate() {
        let namespace_name = namespace(&format!("p{index}"))?;
        pods.push(Pod {
            name: format!("pod{index}"),
            host_interface: cali_name(&namespace_name),
            namespace: namespace_name,
            node: model.node(block.node).name.value.clone(),
            block: block.cidr,
            pool: block.pool.map(|pool| model.pools[pool].name.value.clone()).unwrap_or_default(),
            address: pod_address(&block.cidr),
        });
    }

    // The outside host: a /24 that overlaps nothing the cluster uses.
    let mut taken: Vec<IpNet> = model.pools.iter().map(|pool| *pool.cidr).collect();
    taken.extend(segments.iter().flatten().copied());
    taken.extend(model.service_cluster_ips.iter().map(|cidr| **cidr));
    taken.extend(model.advertised_service_ranges());
    taken.extend(used.iter().map(|address| IpNet::from(*address)));
    let outside_subnet = ["203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24", "100.127.254.0/24", "172.31.254.0/24", "10.254.254.0/24"]
        .iter()
        .filter_map(|text| text.parse::<IpNet>().ok())
        .find(|candidate| !taken.iter().any(|used| used.contains(candidate) || candidate.contains(used)))
        .ok_or("no free /24 for the lab's outside host")?;
    let outside = Outside {
        namespace: namespace("out")?,
        address: with_prefix(add(outside_subnet.network(), 2).expect("in the subnet"), &outside_subnet),
        gateway: with_prefix(add(outside_subnet.network(), 1).expect("in the subnet"), &outside_subnet),
        port: "out0".to_string(),
    };

    let ipip_pools =
        model.pools.iter().filter(|pool| pool.ipip_mode.is_enabled() && !*pool.disabled).map(|pool| pool.name.value.clone()).collect();
    let platforms: BTreeSet<Platform> = model.routers.iter().map(|router| *router.platform).collect();
    let mut notes = Vec::new();
    if platforms.contains(&Platform::Ios) || platforms.contains(&Platform::Junos) {
        notes.push("IOS and Junos routers are emulated by Linux routing carrying the same routes (and FRR for their BGP sessions)".into());
    }
    Ok(Layout {
        name: model.name.value.clone(),
        prefix: prefix.to_string(),
        dir: dir.to_path_buf(),
        intent: intent.to_string(),
        fabric: namespace("fab")?,
        segments: layout_segments,
        nodes,
        routers,
        speakers,
        pods,
        outside,
        ipip_pools,
        ipip_in_kernel: false,
        notes,
        node_agent,
        etcd: None,
        bird16: None,
        ipv6_unrendered: false,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SpeakerKey {
    Router(usize),
    External(u32),
}

/// Adds `address` to the speaker's link on `segment`, making the link if needed.
fn attach(speaker: &mut Speaker, segment: usize, address: IpNet, speaker_index: usize) {
    if let Some(link) = speaker.links.iter_mut().find(|link| link.segment == segment) {
        if !link.addresses.contains(&address) {
            link.addresses.push(address);
        }
        return;
    }
    let number = speaker.links.len();
    speaker.links.push(Attachment {
        segment,
        interface: format!("eth{number}"),
        port: format!("e{speaker_index}s{number}"),
        addresses: vec![address],
    });
}

impl Layout {
    pub fn node(&self, name: &str) -> Option<&NodeHost> {
        self.nodes.iter().find(|node| node.name == name)
    }

    /// Every namespace of the lab, the fabric first and the outside host last.
    pub fn namespaces(&self) -> Vec<String> {
        let mut all = vec![self.fabric.clone()];
        all.extend(self.nodes.iter().map(|node| node.namespace.clone()));
        all.extend(self.routers.iter().map(|router| router.namespace.clone()));
        all.extend(self.speakers.iter().filter(|speaker| !speaker.router).map(|speaker| speaker.namespace.clone()));
        all.extend(self.pods.iter().map(|pod| pod.namespace.clone()));
        all.push(self.outside.namespace.clone());
        all
    }

    /// Whether traffic from `from`'s pods to `block` needs an IPIP tunnel this kernel lacks:
    /// the node's `routes` route it through `tunl0`.
    pub fn path_needs_ipip(&self, routes: &str, block: &IpNet) -> bool {
        !self.ipip_in_kernel
            && routes.lines().any(|line| {
                line.split_whitespace().find(|word| word.contains('/')) == Some(&block.to_string()) && line.contains("dev tunl0")
            })
    }

    /// Whether the lab checks and probes traffic of this family: not IPv6 in a calico-node
    /// lab without an IPv6 render.
    pub fn checks_family(&self, ipv4: bool) -> bool {
        ipv4 || !self.ipv6_unrendered
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(name: &str) -> Analysis {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata").join(name).join("intent.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let mut sources = calplan_diagnostics::SourceMap::new();
        let file = sources.add("intent.yaml", text.clone());
        let mut diagnostics = calplan_diagnostics::Diagnostics::new();
        let intent = calplan_syntax::parse_intent(file, &text, &mut diagnostics).intent.expect("the scenario parses");
        let analysis = Analysis::new(calplan_model::lower(file, &text, &intent, &mut diagnostics), None);
        assert!(!diagnostics.has_errors(), "{name} is valid");
        analysis
    }

    #[test]
    fn the_seed_is_one_segment_with_a_pod_per_node_and_a_free_outside_subnet() {
        let layout = plan(&analysis("seed-rr"), "intent.yaml", Path::new("/tmp/lab"), NodeAgent::Bird).unwrap();
        assert!(layout.prefix.starts_with("cpl-cs1-"), "{}", layout.prefix);
        assert_eq!(layout.segments.len(), 1);
        assert_eq!(layout.segments[0].gateways, ["21.49.22.1/24".parse::<IpNet>().unwrap()], "the can-reach target is free");
        assert_eq!(layout.pods.len(), 6);
        assert_eq!(layout.pods[0].address.to_string(), "192.168.0.1");
        assert!(layout.pods.iter().all(|pod| pod.host_interface.len() == 15 && pod.host_interface.starts_with("cali")));
        assert_eq!(layout.routers[0].static_routes[0], ["192.168.0.0/16", "nexthop", "via", "21.49.22.7", "nexthop", "via", "21.49.22.8"]);
        assert_eq!(layout.outside.address.to_string(), "203.0.113.2/24");
        for name in layout.namespaces() {
            assert!(NamespaceName::new(name.clone()).is_ok() && name.starts_with(&format!("{}-", layout.prefix)), "{name}");
        }
        assert_ne!(prefix("cs1", Path::new("/tmp/a")), prefix("cs1", Path::new("/tmp/b")));
    }

    #[test]
    fn external_peers_share_a_namespace_per_as_with_a_bgpd_per_address() {
        let layout = plan(&analysis("vxlan-multi-rr"), "intent.yaml", Path::new("/tmp/lab"), NodeAgent::Bird).unwrap();
        assert_eq!(layout.speakers.len(), 1, "{:#?}", layout.speakers);
        let tor = &layout.speakers[0];
        assert_eq!(tor.as_number, 65010);
        let locals: Vec<String> = tor.instances.iter().map(|instance| instance.local.to_string()).collect();
        assert_eq!(locals, ["10.1.0.1", "10.255.0.1", "2001:db8::1"]);
        assert_eq!(tor.loopbacks, ["10.255.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(tor.links.len(), 1);
        // 10.1.0.1 is the peer's: the fabric takes another address.
        assert!(!layout.segments[0].gateways.iter().any(|gateway| gateway.addr().to_string() == "10.1.0.1"));
        // One segment carries the IPv4 subnet and both IPv6 subnets (rack2-w1 is dual-stack).
        assert_eq!(layout.segments.len(), 1);
        assert_eq!(layout.segments[0].subnets.len(), 3);
        let w1 = layout.node("rack1-w1").unwrap();
        assert_eq!(w1.link.interface, "ens3");
        assert_eq!(w1.vteps.len(), 2);
        assert_eq!(layout.outside.address.to_string(), "198.51.100.2/24", "203.0.113.0/26 is a LoadBalancer range");
    }

    #[test]
    fn a_bgp_router_runs_its_sessions_in_its_own_namespace() {
        let layout = plan(&analysis("mesh-ipip"), "intent.yaml", Path::new("/tmp/lab"), NodeAgent::CalicoNode).unwrap();
        assert_eq!(layout.segments.len(), 2);
        let router = &layout.routers[0];
        let speaker = &layout.speakers[router.speaker.unwrap()];
        assert!(speaker.router && speaker.namespace == router.namespace);
        assert_eq!(speaker.instances[0].neighbors.len(), 4);
        assert!(speaker.instances[0].neighbors.iter().filter(|neighbor| neighbor.multihop).count() == 2, "the b nodes are a subnet away");
        assert_eq!(layout.ipip_pools, ["pods", "internal-only"]);
    }
}
