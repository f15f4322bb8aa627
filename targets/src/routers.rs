//! `routers/<router>/{routes.sh, frr.conf, ios.cfg, junos.set}`: what a router outside the
//! cluster needs to reach pods and services, for every router in each of the four dialects
//! (its `platform` decides which one apply loads and `calplan routes` prints).
//!
//! One [`RouterPlan`] per router holds the decisions — which static routes with which next
//! hops, which nodes it peers with over BGP and which prefixes it accepts from them — and the
//! templates only spell them. The plan reads the analysis only:
//! - `pools` is one route per pool, disabled pools included (they may still hold addresses
//!   during a migration); with `aggregate: false`, one route per block to the node holding it
//!   when that node is on the router's subnet (else through `via`). `services` is the
//!   `serviceClusterIPs`; anything else is the CIDR written.
//! - Next hops are the `via` entries in the router's address family (a node stands for its
//!   address); several give an ECMP route. Two entries for the same destination are merged.
//!   A router has one address, so destinations of the other family are left out, and the
//!   file says so.
//! - BGP neighbours are the nodes whose sessions (as Calico computes them from the generated
//!   `BGPPeer`s) reach the router's address: the reflectors or every node.
//!
//! It never holds a secret: a BGP password is named (Secret and key) in a comment, for the
//! operator or the loader to supply.

use crate::{Artifact, Context, Target, TemplateError, Templates};
use calplan_calico::resources::SecretKeyRef;
use calplan_model::{Analysis, Destination, NextHop, Node, PeerWith, Platform, Router};
use ipnet::IpNet;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// The route protocol number `routes.sh` marks its routes with, the same as apply's, so that
/// removing stale routes can never touch a route anyone else installed.
pub const ROUTE_PROTOCOL: u8 = 252;
/// How many equal-cost paths a BGP router installs for one prefix (service ranges are
/// advertised by every node that peers with it).
pub const MAXIMUM_PATHS: u32 = 16;

/// Every platform; each router gets the file of each.
pub const PLATFORMS: [Platform; 4] = [Platform::Linux, Platform::Frr, Platform::Ios, Platform::Junos];

/// The file a platform loads, and the template that renders it.
pub fn file_of(platform: Platform) -> (&'static str, &'static str) {
    match platform {
        Platform::Linux => ("routes.sh", "routes.sh.j2"),
        Platform::Frr => ("frr.conf", "frr.conf.j2"),
        Platform::Ios => ("ios.cfg", "ios.cfg.j2"),
        Platform::Junos => ("junos.set", "junos.set.j2"),
    }
}

pub struct Routers;

impl Target for Routers {
    fn name(&self) -> &'static str {
        "routers"
    }

    fn render(&self, context: &Context) -> Result<Vec<Artifact>, TemplateError> {
        let mut artifacts = Vec::new();
        for router in &context.analysis.model.routers {
            let plan = RouterPlan::new(context.analysis, router);
            for platform in PLATFORMS {
                let (file, template) = file_of(platform);
                let text = context.templates.render(template, &plan)?;
                artifacts.push(Artifact::new(
                    format!("routers/{}/{file}", router.name.value),
                    text,
                    format!("spec.routers[{}]", router.name.value),
                ));
            }
        }
        Ok(artifacts)
    }
}

/// One router's file for one platform.
pub fn render_router(templates: &Templates, analysis: &Analysis, router: &Router, platform: Platform) -> Result<String, TemplateError> {
    templates.render(file_of(platform).1, &RouterPlan::new(analysis, router))
}

/// What `calplan routes` prints for a router: on Linux the `ip route replace` commands of
/// `routes.sh` (what a person pastes into a shell), elsewhere the whole configuration.
pub fn paste_text(templates: &Templates, analysis: &Analysis, router: &Router, platform: Platform) -> Result<String, TemplateError> {
    let text = render_router(templates, analysis, router, platform)?;
    if platform != Platform::Linux {
        return Ok(text);
    }
    // What was left out stays in view: a person pasting the commands should know.
    let commands: String = text
        .lines()
        .filter(|line| line.starts_with("ip route replace ") || line.starts_with("# Left out: "))
        .map(|line| format!("{line}\n"))
        .collect();
    if !commands.contains("ip route replace ") {
        let why = if router.bgp.is_some() {
            "it learns the cluster's routes over BGP: see `--platform frr`"
        } else {
            "the intent gives it no static route"
        };
        return Ok(format!("{commands}# router {} needs no static route: {why}\n", router.name.value));
    }
    Ok(commands)
}

/// Everything the router templates render, for one router.
#[derive(Serialize)]
pub struct RouterPlan {
    router: String,
    cluster: String,
    platform: &'static str,
    /// `ipv4` or `ipv6`: the family of the router's address, and of everything it routes.
    family: &'static str,
    /// The keyword FRR and IOS put before `route` and `prefix-list`: `ip` or `ipv6`.
    ip: &'static str,
    /// The longest prefix of the family, for `le` in prefix lists.
    max_prefix_len: u8,
    address: String,
    routes: Vec<StaticRoute>,
    /// Why a route the intent asks for is not here (another family, no next hop).
    left_out: Vec<String>,
    /// The destinations `routes.sh` keeps, in each form `ip route` may print them.
    keep: Vec<String>,
    protocol: u8,
    bgp: Option<BgpPlan>,
}

#[derive(Serialize)]
struct StaticRoute {
    destination: String,
    /// The address part and, for IPv4, the netmask (IOS's `ip route NETWORK MASK HOP`).
    network: String,
    netmask: Option<String>,
    next_hops: Vec<String>,
    /// What in the intent asked for it: `pool default-ipv4-ippool`, `services`, ...
    origins: Vec<String>,
}

#[derive(Serialize)]
struct BgpPlan {
    as_number: u32,
    /// The router's address, when it is IPv4 (BGP router IDs are IPv4-shaped).
    router_id: Option<String>,
    neighbors: Vec<Neighbor>,
    /// Prefixes the router accepts from the cluster: its pools and advertised service
    /// ranges, and anything longer inside them (blocks, single services).
    accepted: Vec<AcceptedPrefix>,
    maximum_paths: u32,
    any_internal: bool,
    any_external: bool,
    /// The port the nodes listen on, when it is not 179.
    node_port: Option<u16>,
    password: Option<PasswordReference>,
    /// Which nodes, in words.
    peer_with: &'static str,
    /// Junos group names.
    external_group: String,
    internal_group: String,
}

#[derive(Serialize)]
struct Neighbor {
    address: String,
    remote_as: u32,
    /// The node's name, as the neighbor's description: cut to the 80 characters FRR's and IOS's
    /// `neighbor … description` take (a Kubernetes node name may have 253).
    node: String,
    internal: bool,
    /// Not on the router's subnet: the session needs more than one hop and a fixed source.
    multihop: bool,
}

/// The longest description FRR and IOS take for a neighbor.
const DESCRIPTION_MAX: usize = 80;

/// A node name as a neighbor's description: at most [`DESCRIPTION_MAX`] characters (node names
/// are ASCII, so characters are bytes), the cut marked with a final `~`.
fn description(name: &str) -> String {
    if name.len() <= DESCRIPTION_MAX {
        return name.to_string();
    }
    let mut cut: String = name.chars().take(DESCRIPTION_MAX - 1).collect();
    cut.push('~');
    cut
}

#[derive(Serialize)]
struct AcceptedPrefix {
    prefix: String,
    /// Longer prefixes are possible (`le`, `orlonger`): not a single address already.
    longer: bool,
}

#[derive(Serialize)]
struct PasswordReference {
    secret: String,
    key: String,
}

/// One destination while routes are gathered: next hops and origins in the order written.
#[derive(Default)]
struct Gathered {
    next_hops: Vec<IpAddr>,
    origins: Vec<String>,
}

impl RouterPlan {
    pub fn new(analysis: &Analysis, router: &Router) -> RouterPlan {
        let model = &analysis.model;
        let ipv4 = router.address.addr().is_ipv4();
        let subnet = router.address.trunc();
        let mut gathered: BTreeMap<IpNet, Gathered> = BTreeMap::new();
        let mut left_out = Vec::new();
        let same_family = |net: &IpNet| net.addr().is_ipv4() == ipv4;
        let family_word = if ipv4 { "IPv4" } else { "IPv6" };
        for route in &router.static_routes {
            let hops: Vec<IpAddr> = route
                .via
                .iter()
                .filter_map(|hop| match hop.value {
                    NextHop::Address(address) => Some(address),
                    NextHop::Node(id) => node_address(model.node(id), ipv4),
                })
                .filter(|address| address.is_ipv4() == ipv4)
                .collect();
            let mut wanted: Vec<(IpNet, Vec<IpAddr>, String)> = Vec::new();
            match &route.destination.value {
                Destination::Pools => {
                    for (index, pool) in model.pools.iter().enumerate() {
                        let origin = format!("pool {}", pool.name.value);
                        // A pool of the other family is left out whole, not block by block.
                        if route.aggregate || !same_family(&pool.cidr) {
                            wanted.push((pool.cidr.trunc(), hops.clone(), origin));
                            continue;
                        }
                        for block in analysis.placement.of_pool(index) {
                            let holder = model.node(block.node);
                            let origin = format!("block of {} in pool {}", holder.name.value, pool.name.value);
                            match node_address(holder, ipv4).filter(|address| subnet.contains(address)) {
                                Some(address) => wanted.push((block.cidr, vec![address], origin)),
                                // The holder is not on the router's link: the route goes
                                // through `via`, as the aggregate would.
                                None => wanted.push((block.cidr, hops.clone(), format!("{origin}, through `via`"))),
                            }
                        }
                    }
                }
                Destination::Services => {
                    wanted.extend(model.service_cluster_ips.iter().map(|cidr| (cidr.trunc(), hops.clone(), "services".to_string())));
                }
                Destination::Cidr(cidr) => wanted.push((cidr.trunc(), hops.clone(), cidr.to_string())),
            }
            for (destination, next_hops, origin) in wanted {
                if !same_family(&destination) {
                    left_out.push(format!("{destination} ({origin}): router {} has an {family_word} address only", router.name.value));
                    continue;
                }
                if next_hops.is_empty() {
                    left_out.push(format!("{destination} ({origin}): no {family_word} next hop in `via`"));
                    continue;
                }
                let entry = gathered.entry(destination).or_default();
                for hop in next_hops {
                    if !entry.next_hops.contains(&hop) {
                        entry.next_hops.push(hop);
                    }
                }
                if !entry.origins.contains(&origin) {
                    entry.origins.push(origin);
                }
            }
        }
        let keep: BTreeSet<String> = gathered.keys().flat_map(|destination| printed_forms(*destination)).collect();
        let routes = gathered
            .into_iter()
            .map(|(destination, entry)| StaticRoute {
                destination: destination.to_string(),
                network: destination.network().to_string(),
                netmask: match destination {
                    IpNet::V4(net) => Some(net.netmask().to_string()),
                    IpNet::V6(_) => None,
                },
                next_hops: entry.next_hops.iter().map(ToString::to_string).collect(),
                origins: entry.origins,
            })
            .collect();
        RouterPlan {
            router: router.name.value.clone(),
            cluster: model.name.value.clone(),
            platform: router.platform.as_str(),
            family: if ipv4 { "ipv4" } else { "ipv6" },
            ip: if ipv4 { "ip" } else { "ipv6" },
            max_prefix_len: router.address.max_prefix_len(),
            address: router.address.addr().to_string(),
            routes,
            left_out,
            keep: keep.into_iter().collect(),
            protocol: ROUTE_PROTOCOL,
            bgp: BgpPlan::new(analysis, router),
        }
    }
}

impl BgpPlan {
    fn new(analysis: &Analysis, router: &Router) -> Option<BgpPlan> {
        let bgp = router.bgp.as_ref()?;
        let model = &analysis.model;
        let ipv4 = router.address.addr().is_ipv4();
        let subnet = router.address.trunc();
        let router_as = bgp.as_number.value.0;
        // The nodes whose BIRD opens a session to this router's address, as confd derives
        // them from the BGPPeers (generated from `peerWith`, or written by the operator).
        let router_address = router.address.addr();
        let mut neighbors: Vec<(IpAddr, Neighbor)> = model
            .nodes
            .iter()
            .filter(|node| {
                analysis
                    .topology_index(node.id)
                    .is_some_and(|index| analysis.peerings.explicit_sessions(index).any(|session| session.data.ip == router_address))
            })
            .filter_map(|node| {
                let address = node_address(node, ipv4)?;
                let remote_as = model.node_as_number(node).0;
                let neighbor = Neighbor {
                    address: address.to_string(),
                    remote_as,
                    node: description(&node.name.value),
                    internal: remote_as == router_as,
                    multihop: !subnet.contains(&address),
                };
                Some((address, neighbor))
            })
            .collect();
        neighbors.sort_by_key(|(address, _)| *address);
        let neighbors: Vec<Neighbor> = neighbors.into_iter().map(|(_, neighbor)| neighbor).collect();
        let in_family = |net: &IpNet| net.addr().is_ipv4() == ipv4;
        let mut accepted: BTreeSet<IpNet> = model.pools.iter().map(|pool| pool.cidr.trunc()).filter(in_family).collect();
        accepted.extend(model.advertised_service_ranges().into_iter().map(|range| range.trunc()).filter(in_family));
        let cluster = &model.name.value;
        Some(BgpPlan {
            as_number: router_as,
            router_id: ipv4.then(|| router_address.to_string()),
            any_internal: neighbors.iter().any(|neighbor| neighbor.internal),
            any_external: neighbors.iter().any(|neighbor| !neighbor.internal),
            neighbors,
            accepted: accepted
                .into_iter()
                .map(|prefix| AcceptedPrefix { prefix: prefix.to_string(), longer: prefix.prefix_len() < prefix.max_prefix_len() })
                .collect(),
            maximum_paths: MAXIMUM_PATHS,
            node_port: model.bgp.listen_port.as_ref().map(|port| port.value).filter(|port| *port != 179),
            password: bgp.password.as_ref().map(|secret| PasswordReference { secret: secret.name.clone(), key: secret.key.clone() }),
            peer_with: peer_with_text(bgp.peer_with),
            external_group: format!("calplan-{cluster}"),
            internal_group: format!("calplan-{cluster}-internal"),
        })
    }
}

/// A node's address in the family.
fn node_address(node: &Node, ipv4: bool) -> Option<IpAddr> {
    if ipv4 { node.ipv4().map(IpAddr::V4) } else { node.ipv6_address.as_ref().map(|address| IpAddr::V6(address.addr())) }
}

/// The ways `ip route show` may print a destination: as written, a single address without
/// its prefix length, and the whole space as `default`.
fn printed_forms(destination: IpNet) -> Vec<String> {
    let mut forms = vec![destination.to_string()];
    if destination.prefix_len() == destination.max_prefix_len() {
        forms.push(destination.addr().to_string());
    }
    if destination.prefix_len() == 0 {
        forms.push("default".to_string());
    }
    forms
}

/// `peerWith` in words, for the files' headers.
fn peer_with_text(peer_with: PeerWith) -> &'static str {
    match peer_with {
        PeerWith::RouteReflectors => "the route reflectors",
        PeerWith::AllNodes => "every node",
    }
}

/// The Secrets (name, key) whose values an `frr.conf` needs, from its password placeholders.
pub fn frr_password_references(frr_conf: &str) -> BTreeSet<(String, String)> {
    frr_conf.lines().filter_map(password_placeholder).map(|(_, secret, key)| (secret, key)).collect()
}

/// `! neighbor ADDRESS password <key `KEY` of Secret `SECRET`: …>` → (address, secret, key).
fn password_placeholder(line: &str) -> Option<(String, String, String)> {
    let rest = line.trim_start().strip_prefix("! neighbor ")?;
    let (address, rest) = rest.split_once(" password <key `")?;
    let (key, rest) = rest.split_once("` of Secret `")?;
    let (secret, _) = rest.split_once('`')?;
    Some((address.to_string(), secret.to_string(), key.to_string()))
}

/// A router's passwords as apply carries them to the router: `SECRET\tKEY\tVALUE` lines,
/// read back by [`read_frr_secrets_file`].
pub fn frr_secrets_file(passwords: &BTreeMap<SecretKeyRef, String>) -> String {
    passwords.iter().map(|(secret, value)| format!("{}\t{}\t{value}\n", secret.name, secret.key)).collect()
}

/// The values of an [`frr_secrets_file`], keyed by Secret name and key, for [`fill_frr_passwords`].
pub fn read_frr_secrets_file(text: &str) -> BTreeMap<(String, String), String> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            Some(((parts.next()?.to_string(), parts.next()?.to_string()), parts.next()?.to_string()))
        })
        .collect()
}

/// The `frr.conf` a router loads: each password placeholder replaced by the password itself,
/// from `values` (keyed by Secret name and key). For apply, which holds the values; compile
/// never calls it. FRR reads a password as one word, so one with white space is refused.
pub fn fill_frr_passwords(frr_conf: &str, values: &BTreeMap<(String, String), String>) -> Result<String, String> {
    let mut out = String::with_capacity(frr_conf.len());
    for line in frr_conf.lines() {
        match password_placeholder(line) {
            Some((address, secret, key)) => {
                let value =
                    values.get(&(secret.clone(), key.clone())).ok_or_else(|| format!("no value for key `{key}` of Secret `{secret}`"))?;
                if value.is_empty() || value.chars().any(char::is_whitespace) {
                    return Err(format!(
                        "the password in key `{key}` of Secret `{secret}` is empty or holds white space, which FRR cannot read"
                    ));
                }
                let indent = &line[..line.len() - line.trim_start().len()];
                out.push_str(&format!("{indent}neighbor {address} password {value}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod password_tests {
    use super::*;

    #[test]
    fn placeholders_become_passwords_and_only_there() {
        let text = "router bgp 65010\n neighbor 10.0.1.11 remote-as 64512\n ! neighbor 10.0.1.11 password <key `password` of Secret `tor`: calplan never writes secrets>\n";
        assert_eq!(frr_password_references(text).into_iter().collect::<Vec<_>>(), [("tor".to_string(), "password".to_string())]);
        let values = BTreeMap::from([(("tor".to_string(), "password".to_string()), "s3cret".to_string())]);
        let filled = fill_frr_passwords(text, &values).unwrap();
        assert!(filled.contains(" neighbor 10.0.1.11 password s3cret\n") && !filled.contains('<'), "{filled}");
        let spaced = BTreeMap::from([(("tor".to_string(), "password".to_string()), "two words".to_string())]);
        assert!(fill_frr_passwords(text, &spaced).is_err());
    }

    #[test]
    fn descriptions_fit_what_frr_and_ios_take() {
        assert_eq!(description("cs1-k8s-m1.zpepc.com.cn"), "cs1-k8s-m1.zpepc.com.cn");
        let exact = "a".repeat(DESCRIPTION_MAX);
        assert_eq!(description(&exact), exact);
        let long = format!("{}.example.com", "n".repeat(240));
        let cut = description(&long);
        assert_eq!(cut.len(), DESCRIPTION_MAX);
        assert!(cut.ends_with('~') && long.starts_with(&cut[..DESCRIPTION_MAX - 1]), "{cut}");
    }
}
