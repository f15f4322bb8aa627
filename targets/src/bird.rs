//! `nodes/<node>/bird.cfg`: a BIRD 2 configuration that realises on one node what calico-node
//! 3.30 configures, and runs as-is under BIRD 2 (2.0.12 is the reference).
//!
//! The sessions come from [`NodeView::peerings`], where confd's rules (names, passive ends,
//! `rr client`, ports, next-hop handling) are already computed; this module only translates
//! them, with the node's blocks and service ranges, into BIRD 2's dialect. Where BIRD 2 differs
//! from Calico's BIRD 1.x fork the choice is explained in the template and below. It never
//! holds a secret: a BGP password is a symbol that `bird-secrets.conf` defines, a file calplan
//! does not write (see [`secrets_file`] for its format).

use crate::node_view::NodeView;
use crate::{Artifact, Context, Target, TemplateError, per_node};
use calplan_calico::peering::{PeerType, Peering, PeeringOrigin};
use calplan_calico::resources::{EncapsulationMode, SecretKeyRef};
use calplan_model::{LogSeverity, Model, Node, RouterIdSource};
use ipnet::IpNet;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

/// The file, beside `bird.cfg`, that defines the password symbols.
pub const SECRETS_FILE: &str = "bird-secrets.conf";

pub struct Bird;

impl Target for Bird {
    fn name(&self) -> &'static str {
        "bird"
    }

    fn render(&self, context: &Context) -> Result<Vec<Artifact>, TemplateError> {
        per_node(context, |view| {
            let config = BirdConfig::new(view);
            let text = context.templates.render("bird.cfg.j2", &config)?;
            Ok(vec![Artifact::new(format!("{}/bird.cfg", view.directory()), text, view.source())])
        })
    }
}

/// Everything `bird.cfg.j2` renders, for one node.
#[derive(Serialize)]
struct BirdConfig {
    node: String,
    cluster: String,
    calico_version: String,
    router_id: String,
    /// The router ID is Calico's `CALICO_ROUTER_ID=hash` of the node name (no IPv4 address).
    router_id_hashed: bool,
    /// `include`d when a session has a password.
    secrets_file: Option<&'static str>,
    /// The `debug` clause confd derives from `logSeverityScreen`.
    debug: Option<&'static str>,
    ignored_interfaces: Vec<String>,
    families: Vec<FamilyConfig>,
    sessions: Vec<BgpSession>,
}

/// The per-family half of the configuration: BIRD 2 keeps IPv4 and IPv6 in separate tables,
/// so each family has its own static protocol, filters and kernel protocol.
#[derive(Serialize)]
struct FamilyConfig {
    /// `ipv4` or `ipv6`: the channel and the suffix of this family's names.
    channel: &'static str,
    /// Own blocks that get a blackhole (not `/32`/`/128`, not pending).
    blackholed_blocks: Vec<String>,
    /// Own blocks that are advertised as a whole (pending ones are not).
    aggregated_blocks: Vec<String>,
    advertised_service_ranges: Vec<String>,
    rejected_service_ranges: Vec<String>,
    /// Routes to peers through a gateway (`reachableBy`).
    reachable_by: Vec<ReachableBy>,
    /// Pools with `disableBGPExport`.
    unexported_pools: Vec<String>,
    exported_pools: Vec<String>,
    /// On a route reflector: LoadBalancer ranges it passes on, as confd's RR rule.
    reflected_load_balancer_ranges: Vec<String>,
    kernel_pools: Vec<KernelPool>,
}

#[derive(Serialize)]
struct ReachableBy {
    destination: String,
    gateway: String,
}

/// How routes into one pool reach the kernel.
#[derive(Serialize)]
struct KernelPool {
    cidr: String,
    programming: KernelProgramming,
    /// The node's own network, for CrossSubnet.
    network: Option<String>,
}

#[derive(Clone, Copy, Serialize)]
#[serde(rename_all = "kebab-case")]
enum KernelProgramming {
    /// VXLAN: Felix programs these routes; BIRD must not.
    Felix,
    /// IPIP Always: every remote block through `tunl0`.
    Tunnel,
    /// IPIP CrossSubnet: through `tunl0` only when the next hop is outside the node's network.
    TunnelAcrossSubnets,
    /// No encapsulation: the route as BGP resolved it.
    Direct,
}

/// One `protocol bgp`.
#[derive(Serialize)]
struct BgpSession {
    name: String,
    /// Where the session comes from, for the reader.
    origin: String,
    channel: &'static str,
    local_address: Option<String>,
    local_port: Option<u16>,
    local_as: String,
    /// bindMode NodeIP: BIRD 2 binds the listening socket to the local address.
    strict_bind: bool,
    /// bindMode NodeIP without a local address, which BIRD 2 cannot bind to.
    listens_everywhere: bool,
    /// bindMode NodeIP, but another session of the family cannot bind to the node's address.
    listens_with_others: bool,
    neighbor: String,
    neighbor_port: Option<u16>,
    neighbor_as: String,
    /// `ttl security on; multihop N` when set; `multihop` alone for non-mesh sessions.
    ttl_security: Option<u8>,
    multihop: bool,
    passive: bool,
    /// `rr client; rr cluster id <id>` when set.
    rr_cluster_id: Option<String>,
    graceful_restart_time: Option<u64>,
    password: Option<PasswordReference>,
    allow_local_as: Option<u32>,
    next_hop: Option<&'static str>,
    /// The peer is in the node's AS: tunnel-device routes are not exported to it.
    internal: bool,
}

#[derive(Serialize)]
struct PasswordReference {
    symbol: String,
    secret: String,
    key: String,
}

impl BirdConfig {
    fn new(view: &NodeView) -> BirdConfig {
        let model = &view.analysis.model;
        let node = view.node;
        let passwords: BTreeSet<&SecretKeyRef> = view.peerings.iter().filter_map(|peering| peering.data.password.as_ref()).collect();
        let ipv6_present = node.ipv6_address.is_some() || view.blocks.iter().any(|block| !block.cidr.addr().is_ipv4());
        let ipv4_present = node.ipv4_address.is_some() || view.blocks.iter().any(|block| block.cidr.addr().is_ipv4());
        let families = [(true, ipv4_present), (false, ipv6_present)]
            .into_iter()
            .filter(|(_, present)| *present)
            .map(|(ipv4, _)| FamilyConfig::new(view, ipv4))
            .collect();
        BirdConfig {
            node: node.name.value.clone(),
            cluster: model.name.value.clone(),
            calico_version: model.calico_version.value.to_string(),
            router_id: router_id(model, node).to_string(),
            router_id_hashed: node.ipv4_address.is_none(),
            secrets_file: (!passwords.is_empty()).then_some(SECRETS_FILE),
            debug: debug_clause(view.log_severity()),
            ignored_interfaces: model.bgp.ignored_interfaces.clone(),
            families,
            sessions: listening_agreed(view.peerings.iter().filter_map(|peering| BgpSession::new(view, peering)).collect()),
        }
    }
}

/// BIRD 2's listening sockets bound to an address and to every address collide (its manual:
/// all sessions of one family and port set `strict bind`, or none does), so a session that
/// cannot bind to the node's address (sourceAddress None) takes the others of its family
/// and port with it: they listen on every address too, and say why.
fn listening_agreed(mut sessions: Vec<BgpSession>) -> Vec<BgpSession> {
    let everywhere: Vec<(&'static str, Option<u16>)> =
        sessions.iter().filter(|session| session.listens_everywhere).map(|session| (session.channel, session.local_port)).collect();
    for session in &mut sessions {
        if session.strict_bind && everywhere.contains(&(session.channel, session.local_port)) {
            session.strict_bind = false;
            session.listens_with_others = true;
        }
    }
    sessions
}

impl FamilyConfig {
    fn new(view: &NodeView, ipv4: bool) -> FamilyConfig {
        let model = &view.analysis.model;
        let in_family = |cidr: &IpNet| cidr.addr().is_ipv4() == ipv4;
        let blocks: Vec<_> = view.blocks.iter().filter(|block| in_family(&block.cidr) && block.is_advertised()).collect();
        let services = view.service_ranges();
        let strings = |cidrs: &[IpNet]| cidrs.iter().filter(|cidr| in_family(cidr)).map(ToString::to_string).collect::<Vec<_>>();
        let pools: Vec<_> = model.pools.iter().filter(|pool| in_family(&pool.cidr)).collect();
        let own_network = if ipv4 {
            view.node.ipv4_address.as_ref().map(|address| IpNet::V4(address.trunc()))
        } else {
            view.node.ipv6_address.as_ref().map(|address| IpNet::V6(address.trunc()))
        };
        let reachable_by: BTreeMap<IpAddr, IpAddr> = view
            .peerings
            .iter()
            .filter(|peering| peering.data.ip.is_ipv4() == ipv4)
            .filter_map(|peering| Some((peering.data.ip, peering.data.reachable_by?)))
            .fold(BTreeMap::new(), |mut routes, (peer, gateway)| {
                routes.entry(peer).or_insert(gateway);
                routes
            });
        let is_reflector = view.node.is_route_reflector();
        FamilyConfig {
            channel: if ipv4 { "ipv4" } else { "ipv6" },
            blackholed_blocks: blocks.iter().filter(|block| !block.is_host_block()).map(|block| block.cidr.to_string()).collect(),
            aggregated_blocks: blocks.iter().map(|block| block.cidr.to_string()).collect(),
            advertised_service_ranges: strings(&services.advertised),
            rejected_service_ranges: strings(&services.rejected),
            reachable_by: reachable_by
                .into_iter()
                .map(|(peer, gateway)| ReachableBy { destination: IpNet::from(peer).to_string(), gateway: gateway.to_string() })
                .collect(),
            unexported_pools: pools.iter().filter(|pool| *pool.disable_bgp_export).map(|pool| pool.cidr.to_string()).collect(),
            exported_pools: pools.iter().filter(|pool| !*pool.disable_bgp_export).map(|pool| pool.cidr.to_string()).collect(),
            reflected_load_balancer_ranges: if is_reflector {
                model.bgp.service_load_balancer_ips.iter().filter(|cidr| in_family(cidr)).map(|cidr| cidr.to_string()).collect()
            } else {
                Vec::new()
            },
            kernel_pools: pools
                .iter()
                .map(|pool| {
                    let programming = if pool.vxlan_mode.is_enabled() {
                        KernelProgramming::Felix
                    } else {
                        match *pool.ipip_mode {
                            EncapsulationMode::Always => KernelProgramming::Tunnel,
                            EncapsulationMode::CrossSubnet => KernelProgramming::TunnelAcrossSubnets,
                            EncapsulationMode::Never => KernelProgramming::Direct,
                        }
                    };
                    // Without an address the node has no network to compare next hops with;
                    // confd then tunnels everything, which is what `Tunnel` does.
                    let (programming, network) = match (programming, own_network) {
                        (KernelProgramming::TunnelAcrossSubnets, Some(network)) => (programming, Some(network.to_string())),
                        (KernelProgramming::TunnelAcrossSubnets, None) => (KernelProgramming::Tunnel, None),
                        (programming, _) => (programming, None),
                    };
                    KernelPool { cidr: pool.cidr.to_string(), programming, network }
                })
                .collect(),
        }
    }
}

impl BgpSession {
    fn new(view: &NodeView, peering: &Peering) -> Option<BgpSession> {
        let model = &view.analysis.model;
        let data = &peering.data;
        let local_ip = match data.ip {
            IpAddr::V4(_) => view.node.ipv4().map(IpAddr::V4),
            IpAddr::V6(_) => view.node.ipv6_address.as_ref().map(|address| IpAddr::V6(address.addr())),
        }?;
        let local_address = data.source_address.then(|| local_ip.to_string());
        let next_hop = match data.next_hop_mode.as_deref() {
            Some("Self") => Some("self"),
            Some("Keep") => Some("keep"),
            _ if data.keep_next_hop && peering.external => Some("keep"),
            _ => None,
        };
        Some(BgpSession {
            name: peering.protocol_name(),
            origin: origin(peering),
            channel: if data.ip.is_ipv4() { "ipv4" } else { "ipv6" },
            strict_bind: model.bgp.bind_mode_node_ip && local_address.is_some(),
            listens_everywhere: model.bgp.bind_mode_node_ip && local_address.is_none(),
            listens_with_others: false,
            local_address,
            // The node's own BGPConfiguration's port, else the cluster's (as confd's `listen bgp
            // port`; BIRD 2 listens per protocol).
            local_port: view
                .node
                .bgp_configuration
                .as_ref()
                .and_then(|configuration| configuration.listen_port.as_ref())
                .filter(|port| port.value != 0)
                .or(model.bgp.listen_port.as_ref())
                .map(|port| port.value),
            // The peering's own local AS (`localASNumber`, from 3.31), else the node's.
            local_as: data.local_as_number.filter(|number| number.0 != 0).unwrap_or_else(|| model.node_as_number(view.node)).to_string(),
            neighbor: data.ip.to_string(),
            neighbor_port: (data.port != 0).then_some(data.port),
            neighbor_as: data.as_number.to_string(),
            ttl_security: (data.ttl_security != 0).then_some(data.ttl_security),
            multihop: peering.peer_type != PeerType::Mesh,
            passive: peering.passive,
            rr_cluster_id: peering.rr_client.then(|| peering.local_cluster_id.to_string()),
            graceful_restart_time: data.restart_time,
            password: data.password.as_ref().map(|secret| PasswordReference {
                symbol: password_symbol(secret),
                secret: secret.name.clone(),
                key: secret.key.clone(),
            }),
            allow_local_as: (data.num_allow_local_as != 0).then_some(data.num_allow_local_as),
            next_hop,
            internal: !peering.external,
        })
    }
}

fn origin(peering: &Peering) -> String {
    let kind = peering.peer_type.as_str();
    match &peering.data.origin {
        PeeringOrigin::Mesh => kind.to_string(),
        PeeringOrigin::Peer(name) => format!("{kind}, from BGPPeer `{name}`"),
        PeeringOrigin::Reverse(name) => format!("{kind}, the automatic reverse of BGPPeer `{name}`"),
    }
}

/// confd's logging: `Debug` logs everything, `Info` (the default) state changes, anything
/// else nothing (`getLogSeverityKVPair` maps it to `none`).
pub(crate) fn debug_clause(severity: LogSeverity) -> Option<&'static str> {
    match severity {
        LogSeverity::Debug => Some("debug all;"),
        LogSeverity::Info => Some("debug { states };"),
        _ => None,
    }
}

/// The node's router ID: `bgp.routerID` (`CALICO_ROUTER_ID`) when set, else the node's IPv4
/// address, else (a node without one) the hash of its name.
pub fn router_id(model: &Model, node: &Node) -> Ipv4Addr {
    match model.bgp.router_id.as_ref().map(|source| source.value) {
        Some(RouterIdSource::Address(address)) => address,
        Some(RouterIdSource::Hash) => hashed_router_id(&node.name.value),
        None => node.ipv4().unwrap_or_else(|| hashed_router_id(&node.name.value)),
    }
}

/// What `CALICO_ROUTER_ID=hash` gives: the first four bytes of SHA-256 of the node name, the
/// first octet lowered by 32 when above 223 (confd's `hashToIPv4`), so it is never multicast
/// or reserved.
pub fn hashed_router_id(node_name: &str) -> Ipv4Addr {
    let digest = Sha256::digest(node_name.as_bytes());
    let first = if digest[0] > 223 { digest[0] - 32 } else { digest[0] };
    Ipv4Addr::new(first, digest[1], digest[2], digest[3])
}

/// The BIRD symbol that stands for a Secret's key in `bird.cfg`: readable (`bgp_password_`,
/// then the Secret's name and key with every other character as `_`) and, because that
/// mapping is not one-to-one, ending in eight hex digits of SHA-256 over name and key.
pub fn password_symbol(secret: &SecretKeyRef) -> String {
    let readable = |text: &str| -> String { text.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect() };
    let mut hasher = Sha256::new();
    hasher.update(secret.name.as_bytes());
    hasher.update([0]);
    hasher.update(secret.key.as_bytes());
    let digest = crate::artifact::hex(&hasher.finalize()[..4]);
    format!("bgp_password_{}_{}_{digest}", readable(&secret.name), readable(&secret.key))
}

/// Why a secrets file cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretValueError {
    pub secret: String,
    pub key: String,
}

impl std::fmt::Display for SecretValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the value of key `{}` in Secret `{}` holds a double quote, backslash or line break, which a BIRD 2 string cannot hold",
            self.key, self.secret
        )
    }
}

impl std::error::Error for SecretValueError {}

/// The Secrets (name, key) whose values a `bird.cfg` needs, from the `# Secret NAME, key KEY`
/// comments its `password` lines carry.
pub fn password_references(bird_cfg: &str) -> BTreeSet<(String, String)> {
    bird_cfg
        .lines()
        .filter_map(|line| line.split_once("# Secret ")?.1.split_once(", key "))
        .map(|(name, key)| (name.trim().to_string(), key.trim().to_string()))
        .collect()
}

/// The text of `bird-secrets.conf` for the given passwords: one `define` per Secret key, which
/// the `password` lines of `bird.cfg` use by name. For the code that holds real values (apply,
/// tests); compile never calls it. BIRD 2.0's strings have no escapes, so a value with `"`,
/// `\` or a line break is refused rather than mangled.
pub fn secrets_file(passwords: &BTreeMap<SecretKeyRef, String>) -> Result<String, SecretValueError> {
    let mut text = String::from("# BGP passwords for bird.cfg. Holds secrets: keep it mode 0600.\n");
    for (secret, value) in passwords {
        if value.contains(['"', '\\', '\n', '\r']) {
            return Err(SecretValueError { secret: secret.name.clone(), key: secret.key.clone() });
        }
        text.push_str(&format!("define {} = \"{value}\";\n", password_symbol(secret)));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, key: &str) -> SecretKeyRef {
        SecretKeyRef { name: name.into(), key: key.into(), optional: None }
    }

    #[test]
    fn password_symbols_are_identifiers_and_tell_lookalikes_apart() {
        let dashed = password_symbol(&secret("bgp-secrets", "rr.password"));
        assert!(dashed.starts_with("bgp_password_bgp_secrets_rr_password_"), "{dashed}");
        assert!(dashed.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert_ne!(dashed, password_symbol(&secret("bgp.secrets", "rr-password")));
        assert_ne!(password_symbol(&secret("a", "bc")), password_symbol(&secret("ab", "c")));
    }

    #[test]
    fn secrets_file_refuses_values_bird_cannot_quote() {
        let mut passwords = BTreeMap::new();
        passwords.insert(secret("s", "k"), "plain-value".to_string());
        let text = secrets_file(&passwords).unwrap();
        assert!(text.contains(&format!("define {} = \"plain-value\";", password_symbol(&secret("s", "k")))));
        passwords.insert(secret("s", "q"), "has\"quote".to_string());
        assert_eq!(secrets_file(&passwords).unwrap_err().key, "q");
    }
}
