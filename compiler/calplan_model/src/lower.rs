//! Lowering: the intent's syntax to the typed model, resolving every value and reference.
//!
//! A value that does not resolve is reported and left out (an invalid pool is not in the
//! model), so later rules only see values that mean something and do not pile follow-on
//! errors onto the first.

use crate::grammar::*;
use crate::model::*;
use crate::rules::*;
use calplan_calico::resources::EncapsulationMode;
use calplan_calico::{AsNumber, GoDurationError, Selector, parse_go_duration, seconds_as_confd_rounds};
use calplan_diagnostics::{Diagnostic, Diagnostics, FileId, Span, Spanned};
use calplan_syntax::intent;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

/// The label every route reflector carries, as in Calico's documented design.
pub const ROUTE_REFLECTOR_LABEL: &str = "route-reflector";
/// The label naming a reflector's cluster, when several clusters serve different clients.
pub const ROUTE_REFLECTOR_CLUSTER_LABEL: &str = "route-reflector-cluster";

mod node_rules;

/// Lowers a parsed intent. `source` is the intent's text, used to point inside quoted values.
pub fn lower(file: FileId, source: &str, intent: &intent::IntentFile, diagnostics: &mut Diagnostics) -> Model {
    lower_with_cluster(file, source, intent, &crate::node_rules::ClusterNodes::default(), diagnostics)
}

/// Lowers a parsed intent with the nodes read from the cluster, which join the intent's own
/// and to which its `nodeRules` apply (see `crate::node_rules`).
pub fn lower_with_cluster(
    file: FileId,
    source: &str,
    intent: &intent::IntentFile,
    cluster: &crate::node_rules::ClusterNodes,
    diagnostics: &mut Diagnostics,
) -> Model {
    let mut lowerer = Lowerer { file, source, diagnostics, node_ids: HashMap::new(), release: Release::DEFAULT };
    lowerer.model(intent, cluster)
}

struct Lowerer<'a> {
    file: FileId,
    source: &'a str,
    diagnostics: &'a mut Diagnostics,
    node_ids: HashMap<String, NodeId>,
    /// The intent's Calico release, once read: fields it lacks are reported.
    release: Release,
}

impl Lowerer<'_> {
    fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn model(&mut self, intent: &intent::IntentFile, cluster: &crate::node_rules::ClusterNodes) -> Model {
        let spec = &intent.spec;
        self.name(&intent.metadata.name, "cluster");
        let calico_version = self.calico_version(spec.calico_version.as_ref(), intent.metadata.name.span);
        self.release = calico_version.value;
        let datastore = spec.datastore.as_ref().map_or(Datastore::Kubernetes, |datastore| datastore.value);
        let node_agent = spec.node_agent.as_ref().map_or(NodeAgent::CalicoNode, |agent| agent.value);
        let installation = spec.installation.as_ref().map_or(Installation::Manifest, |installation| installation.value);
        let autodetection = Autodetection {
            ipv4: spec.node_address_autodetection.as_ref().and_then(|a| a.ipv4.as_ref()).and_then(|m| self.autodetection(m)),
            ipv6: spec.node_address_autodetection.as_ref().and_then(|a| a.ipv6.as_ref()).and_then(|m| self.autodetection(m)),
        };
        let service_cluster_ips = self.cidrs(spec.service_cluster_ips.as_deref().unwrap_or_default(), "service range");
        let max_pods_per_node = spec.max_pods_per_node.clone().unwrap_or_else(|| Spanned::new(110, intent.metadata.name.span));

        // Nodes first: everything else refers to them.
        let mut nodes = Vec::new();
        for node in &spec.nodes {
            if let Some(lowered) = self.node(node, NodeId(nodes.len() as u32)) {
                self.node_ids.entry(lowered.name.value.clone()).or_insert(lowered.id);
                nodes.push(lowered);
            }
        }
        // Then the cluster's, and the rules for all of them.
        let mut node_rules = self.cluster_nodes(intent, cluster, &mut nodes);
        self.apply_node_rules(&spec.node_rules, &autodetection, &mut nodes, &mut node_rules);
        let default_bgp = intent::Bgp {
            as_number: None,
            node_to_node_mesh: None,
            log_severity: None,
            advertise_service_cluster_ips: None,
            service_external_ips: None,
            service_load_balancer_ips: None,
            listen_port: None,
            bind_mode: None,
            ignored_interfaces: None,
            node_mesh_password: None,
            node_mesh_max_restart_time: None,
            communities: None,
            prefix_advertisements: None,
            local_workload_peering_ipv4: None,
            local_workload_peering_ipv6: None,
            service_load_balancer_aggregation: None,
            router_id: None,
            filters: Vec::new(),
            route_reflectors: Vec::new(),
            peers: Vec::new(),
        };
        let bgp_syntax = spec.bgp.as_ref().unwrap_or(&default_bgp);
        let bgp_span = spec.bgp.as_ref().map_or(intent.metadata.name.span, |_| {
            bgp_syntax
                .as_number
                .as_ref()
                .map(|a| a.span)
                .or(bgp_syntax.node_to_node_mesh.as_ref().map(|m| m.span))
                .unwrap_or(intent.metadata.name.span)
        });
        let bgp = self.bgp(bgp_syntax, bgp_span);
        let route_reflector_clusters = self.route_reflectors(&bgp_syntax.route_reflectors, &mut nodes, &mut node_rules);
        let filters: Vec<BgpFilter> = bgp_syntax.filters.iter().filter_map(|filter| self.filter(filter)).collect();
        let filter_names: Vec<String> = bgp_syntax.filters.iter().map(|filter| filter.name.value.clone()).collect();
        let peers = bgp_syntax.peers.iter().filter_map(|peer| self.peer(peer, &filter_names)).collect();
        let pools = spec.pools.iter().filter_map(|pool| self.pool(pool)).collect();
        let routers =
            spec.routers.iter().enumerate().filter_map(|(index, router)| self.router(router, RouterId(index as u32))).collect::<Vec<_>>();
        let routers = routers.into_iter().enumerate().map(|(index, mut router)| {
            router.id = RouterId(index as u32);
            router
        });
        Model {
            file: self.file,
            name: intent.metadata.name.clone(),
            calico_version,
            datastore,
            node_agent,
            installation,
            autodetection,
            service_cluster_ips,
            max_pods_per_node,
            bgp,
            route_reflector_clusters,
            peers,
            filters,
            pools,
            nodes,
            routers: routers.collect(),
            generates_peers: true,
            allow: spec.allow.iter().map(|entry| AllowEntry { rule: entry.rule.clone(), reason: entry.reason.clone() }).collect(),
            node_rules,
        }
    }

    fn calico_version(&mut self, written: Option<&Spanned<String>>, fallback: Span) -> Spanned<Release> {
        let Some(written) = written else { return Spanned::new(Release::DEFAULT, fallback) };
        // `MAJOR.MINOR` or `MAJOR.MINOR.PATCH`, digits only: nothing else may follow.
        let parts: Vec<&str> = written.split('.').collect();
        let numeric =
            (2..=3).contains(&parts.len()) && parts.iter().all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
        if let Some(release) = numeric.then(|| Release::parse(&written.value)).flatten() {
            return Spanned::new(release, written.span);
        }
        let help = if written.value == "3.3" {
            "YAML read an unquoted `3.30` as the number 3.3: quote the release, as `\"3.30\"`".to_string()
        } else {
            format!("calplan renders for Calico {}; write one of them, quoted, such as \"{}\"", Release::supported_list(), Release::DEFAULT)
        };
        self.report(
            Diagnostic::new(&UNSUPPORTED_CALICO_VERSION, written.span, format!("calplan does not render for Calico `{}`", written.value))
                .label("not a supported release")
                .help(help),
        );
        Spanned::new(Release::DEFAULT, written.span)
    }

    fn name(&mut self, name: &Spanned<String>, what: &str) -> bool {
        if is_dns_subdomain(&name.value) {
            return true;
        }
        let suggestion = suggest_dns_name(&name.value);
        self.report(
            Diagnostic::new(&INVALID_NAME, name.span, format!("`{}` is not a valid {what} name", name.value))
                .label("not a DNS-1123 subdomain")
                .help(format!(
                    "names are lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit, at most 253 characters{}",
                    suggestion.map(|s| format!("; for example `{s}`")).unwrap_or_default()
                )),
        );
        false
    }

    fn node(&mut self, node: &intent::Node, id: NodeId) -> Option<Node> {
        // A bad name is reported and the node kept: references to it then resolve, rather than
        // each reporting a missing node that is only misnamed.
        self.name(&node.name, "node");
        let ipv4_address = node.ipv4_address.as_ref().and_then(|text| self.host_address::<Ipv4Net>(text, "IPv4"));
        let ipv6_address = node.ipv6_address.as_ref().and_then(|text| self.host_address::<Ipv6Net>(text, "IPv6"));
        let as_number = node.as_number.as_ref().and_then(|text| self.as_number(text));
        let route_reflector_cluster_id = node.route_reflector_cluster_id.as_ref().and_then(|text| self.cluster_id(text));
        let mut labels = BTreeMap::new();
        for (key, value) in &node.labels {
            if self.label(key, value) {
                labels.insert(key.value.clone(), value.clone());
            }
        }
        let bgp_configuration = node.bgp_configuration.as_ref().map(|configuration| NodeBgpConfiguration {
            listen_port: configuration.listen_port.clone(),
            log_severity: configuration.log_severity.as_ref().map(|severity| severity.value),
            communities: self.communities(configuration.communities.as_deref()),
            prefix_advertisements: None,
        });
        let bgp_configuration = bgp_configuration.map(|mut lowered| {
            let syntax = node.bgp_configuration.as_ref().expect("lowered from it");
            lowered.prefix_advertisements =
                self.prefix_advertisements(syntax.prefix_advertisements.as_deref(), &lowered.communities, syntax.communities.as_deref());
            lowered
        });
        let interfaces = node.interfaces.as_ref().map(|interfaces| {
            interfaces
                .iter()
                .map(|interface| {
                    self.interface_name(&interface.name);
                    Interface {
                        name: interface.name.clone(),
                        addresses: interface.addresses.iter().filter_map(|address| self.interface_address(address)).collect(),
                    }
                })
                .collect()
        });
        Some(Node {
            id,
            name: node.name.clone(),
            ipv4_address,
            ipv6_address,
            as_number,
            route_reflector_cluster_id,
            labels,
            interfaces,
            bgp_configuration,
            span: node.name.span,
        })
    }

    fn host_address<T: std::str::FromStr>(&mut self, text: &Spanned<String>, family: &str) -> Option<Spanned<T>> {
        if let Ok(address) = text.parse::<T>() {
            return Some(Spanned::new(address, text.span));
        }
        let help = if !text.contains('/') && text.parse::<IpAddr>().is_ok() {
            format!("add the prefix length of the node's subnet, such as `{}/24`", text.value)
        } else {
            format!("write an {family} address with its prefix length, such as `21.49.22.4/24`")
        };
        self.report(
            Diagnostic::new(&INVALID_ADDRESS, text.span, format!("`{}` is not an {family} address with a prefix length", text.value))
                .label("not an address/prefix")
                .help(help),
        );
        None
    }

    fn interface_name(&mut self, name: &Spanned<String>) -> bool {
        let Some(problem) = interface_name_problem(&name.value) else { return true };
        self.report(
            Diagnostic::new(&INVALID_INTERFACE, name.span, format!("interface name `{}` {problem}", name.value))
                .label("not an interface name")
                .help("write the name as `ip -j addr` shows it (`ifname`), such as `eth0` or `ens3`"),
        );
        false
    }

    fn ignored_interfaces(&mut self, patterns: &[Spanned<String>]) -> Vec<String> {
        let mut valid = Vec::new();
        for pattern in patterns {
            match ignored_interface_problem(&pattern.value) {
                None => valid.push(pattern.value.clone()),
                Some(problem) => self.report(
                    Diagnostic::new(&INVALID_INTERFACE, pattern.span, format!("ignored interface `{}` {problem}", pattern.value))
                        .label("not an interface pattern Calico accepts")
                        .help("write one interface name per entry, with `*` for any characters, such as `docker*`"),
                ),
            }
        }
        valid
    }

    fn interface_address(&mut self, text: &Spanned<String>) -> Option<Spanned<IpNet>> {
        match text.parse::<IpNet>() {
            Ok(address) => Some(Spanned::new(address, text.span)),
            Err(_) => {
                self.report(
                    Diagnostic::new(&INVALID_ADDRESS, text.span, format!("`{}` is not an address with a prefix length", text.value))
                        .label("not an address/prefix")
                        .help("write interface addresses as `ip addr` shows them, such as `172.17.0.1/16`"),
                );
                None
            }
        }
    }

    fn cidr(&mut self, text: &Spanned<String>, what: &str) -> Option<Spanned<IpNet>> {
        match text.parse::<IpNet>() {
            Ok(cidr) => Some(Spanned::new(cidr, text.span)),
            Err(_) => {
                let message = if what == "pool" {
                    "IPPool CIDR must be a valid subnet".to_string()
                } else {
                    format!("`{}` is not a valid {what} CIDR", text.value)
                };
                let help = match text.parse::<IpAddr>() {
                    Ok(IpAddr::V4(_)) => format!("add a prefix length: `{}/32` for one address", text.value),
                    Ok(IpAddr::V6(_)) => format!("add a prefix length: `{}/128` for one address", text.value),
                    Err(_) => "write an address and a prefix length, such as `192.168.0.0/16`".to_string(),
                };
                self.report(Diagnostic::new(&INVALID_CIDR, text.span, message).label(format!("`{}`", text.value)).help(help));
                None
            }
        }
    }

    fn cidrs(&mut self, texts: &[Spanned<String>], what: &str) -> Vec<Spanned<IpNet>> {
        texts.iter().filter_map(|text| self.cidr(text, what)).collect()
    }

    fn as_number(&mut self, text: &Spanned<intent::AsNumberText>) -> Option<Spanned<AsNumber>> {
        match text.0.parse::<AsNumber>() {
            Ok(AsNumber(0)) => {
                self.report(
                    Diagnostic::new(&INVALID_AS_NUMBER, text.span, "AS number 0 is reserved")
                        .label("AS 0 cannot be used")
                        .help("AS 0 marks a route that must not be used (RFC 7607): BIRD refuses it and Calico reads it as unset; write the AS number from 1 to 4294967295"),
                );
                None
            }
            Ok(number) => Some(Spanned::new(number, text.span)),
            Err(error) => {
                self.report(
                    Diagnostic::new(&INVALID_AS_NUMBER, text.span, error.to_string())
                        .label("not an AS number")
                        .help("write a number from 1 to 4294967295, or dotted as \"HIGH.LOW\" with both parts below 65536"),
                );
                None
            }
        }
    }

    fn cluster_id(&mut self, text: &Spanned<String>) -> Option<Spanned<Ipv4Addr>> {
        match text.parse::<Ipv4Addr>() {
            Ok(id) => Some(Spanned::new(id, text.span)),
            Err(_) => {
                self.report(
                    Diagnostic::new(
                        &INVALID_CLUSTER_ID,
                        text.span,
                        format!("route-reflector cluster ID `{}` is not in IPv4 form", text.value),
                    )
                    .label("not an IPv4 address")
                    .help("cluster IDs are 32-bit numbers written as IPv4 addresses; use an unused one such as `244.0.0.1`"),
                );
                None
            }
        }
    }

    fn selector(&mut self, text: &Spanned<String>) -> Option<Spanned<SelectorText>> {
        if let Some(c) = first_control_character(&text.value) {
            // Calico's parser would take it inside a quoted value, which no label value can
            // equal: the selector could never match what it says.
            self.report(
                Diagnostic::new(&INVALID_SELECTOR, text.span, format!("selector holds {}", describe_character(c)))
                    .label("not one line of printable text")
                    .help("write the selector on one line; label values hold no control characters"),
            );
            return None;
        }
        match Selector::parse(&text.value) {
            Ok(selector) => Some(Spanned::new(SelectorText { text: text.value.clone(), selector }, text.span)),
            Err(error) => {
                let inner = inner_span(self.source, text.span, &text.value, error.start, error.end);
                self.report(
                    Diagnostic::new(&INVALID_SELECTOR, inner, format!("invalid selector `{}`: {}", text.value, error.message))
                        .label(error.message.clone())
                        .help("Calico selectors: `all()`, `has(key)`, `key == 'value'`, `key != 'value'`, `key in {'a', 'b'}`, `key not in {...}`, `!`, `&&`, `||`, parentheses"),
                );
                None
            }
        }
    }

    fn node_reference(&mut self, name: &Spanned<String>) -> Option<Spanned<NodeId>> {
        if let Some(id) = self.node_ids.get(&name.value) {
            return Some(Spanned::new(*id, name.span));
        }
        let known: Vec<&str> = self.node_ids.keys().map(String::as_str).collect();
        let help = match calplan_syntax::schema::did_you_mean(&name.value, known.iter().copied()) {
            Some(suggestion) => format!("did you mean `{suggestion}`?"),
            None => "declare the node under `spec.nodes`, or correct the name".to_string(),
        };
        self.report(
            Diagnostic::new(&UNKNOWN_NODE, name.span, format!("no node named `{}`", name.value))
                .label("not declared under `spec.nodes`")
                .help(help),
        );
        None
    }

    fn label(&mut self, key: &Spanned<String>, value: &Spanned<String>) -> bool {
        let key_problem = label_key_problem(&key.value);
        if let Some(problem) = &key_problem {
            self.report(
                Diagnostic::new(&INVALID_LABEL, key.span, format!("invalid label key `{}`: {problem}", key.value))
                    .label("not a label key")
                    .help("a key is an optional DNS-subdomain prefix and `/`, then up to 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit"),
            );
        }
        let value_ok = value.value.is_empty() || is_label_name(&value.value);
        if !value_ok {
            self.report(
                Diagnostic::new(&INVALID_LABEL, value.span, format!("invalid value `{}` for label `{}`", value.value, key.value))
                    .label("not a label value")
                    .help("a value is empty or up to 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit"),
            );
        }
        key_problem.is_none() && value_ok
    }

    fn duration(&mut self, text: &Spanned<String>) -> Option<Spanned<Duration>> {
        match parse_go_duration(&text.value) {
            Ok(nanoseconds) => {
                Some(Spanned::new(Duration { seconds: seconds_as_confd_rounds(nanoseconds), text: text.value.clone() }, text.span))
            }
            Err(GoDurationError::OutOfRange) => {
                self.report(
                    Diagnostic::new(&INVALID_DURATION, text.span, format!("`{}` is longer than a Go duration can be", text.value))
                        .label("beyond 2562047h47m16.854775807s")
                        .help("Calico reads durations with Go's `time.ParseDuration`, which refuses more than about 292 years; write a realistic time such as `120s`"),
                );
                None
            }
            Err(GoDurationError::Negative) => {
                self.report(
                    Diagnostic::new(&INVALID_DURATION, text.span, format!("`{}` is negative", text.value))
                        .label("a negative duration")
                        .help("write a time of zero or more, such as `120s`"),
                );
                None
            }
            Err(GoDurationError::Invalid) => {
                self.report(
                    Diagnostic::new(&INVALID_DURATION, text.span, format!("`{}` is not a duration", text.value))
                        .label("not a Go duration")
                        .help("write a number with a unit: `120s`, `2m`, `1m30s`"),
                );
                None
            }
        }
    }

    fn secret(&mut self, password: &intent::Password) -> SecretRef {
        let reference = &password.secret_key_ref;
        if let Some(problem) = secret_name_problem(&reference.name.value) {
            self.report(
                Diagnostic::new(
                    &INVALID_SECRET_REFERENCE,
                    reference.name.span,
                    format!("Secret name `{}` {problem}", reference.name.value),
                )
                .label("not a Kubernetes Secret name")
                .help("name the Secret as Kubernetes does: lowercase letters, digits, `-` and `.`, such as `bgp-secrets`"),
            );
        }
        if let Some(problem) = secret_key_problem(&reference.key.value) {
            self.report(
                Diagnostic::new(&INVALID_SECRET_REFERENCE, reference.key.span, format!("Secret key `{}` {problem}", reference.key.value))
                    .label("not a key a Secret can hold")
                    .help("name the key within the Secret's data: letters, digits, `-`, `_` and `.`, such as `rr-password`"),
            );
        }
        SecretRef { name: reference.name.value.clone(), key: reference.key.value.clone(), span: reference.name.span }
    }

    fn autodetection(&mut self, method: &Spanned<String>) -> Option<Spanned<AutodetectionMethod>> {
        if let Some(c) = first_control_character(&method.value) {
            self.report(
                Diagnostic::new(
                    &INVALID_AUTODETECTION_METHOD,
                    method.span,
                    format!("the autodetection method holds {}", describe_character(c)),
                )
                .label("not one line of printable text")
                .help("write the method on one line, such as `interface=eth.*`; interface names hold no control characters"),
            );
            return None;
        }
        let text = method.value.trim();
        let (kind, argument) = text.split_once('=').unwrap_or((text, ""));
        let argument_span = |lowerer: &Self| {
            let offset = kind.len() + 1;
            inner_span(lowerer.source, method.span, &method.value, offset.min(method.len()), method.len())
        };
        let parsed = match kind {
            "" | "first-found" if argument.is_empty() => Ok(AutodetectionMethod::FirstFound),
            "kubernetes-internal-ip" if argument.is_empty() => Ok(AutodetectionMethod::KubernetesInternalIp),
            "can-reach" if !argument.is_empty() => Ok(AutodetectionMethod::CanReach(match argument.parse::<IpAddr>() {
                Ok(address) => CanReachTarget::Address(address),
                Err(_) if is_hostname(argument) => CanReachTarget::Hostname(argument.to_string()),
                Err(_) => {
                    let span = argument_span(self);
                    self.report(
                        Diagnostic::new(
                            &INVALID_AUTODETECTION_METHOD,
                            span,
                            format!("`{argument}` is neither an IP address nor a hostname"),
                        )
                        .label("can-reach needs an address or hostname")
                        .help("write `can-reach=DEST`, DEST being an address the nodes' correct interface routes to, such as a gateway"),
                    );
                    return None;
                }
            })),
            "interface" | "skip-interface" if !argument.is_empty() => {
                let mut patterns = Vec::new();
                for pattern in argument.split(',') {
                    if let Err(error) = regex::Regex::new(pattern) {
                        let span = argument_span(self);
                        self.report(
                            Diagnostic::new(&INVALID_AUTODETECTION_METHOD, span, format!("invalid interface regex `{pattern}`"))
                                .label(first_line(&error.to_string()))
                                .help("interface patterns are Go regular expressions separated by commas, such as `eth.*,ens.*`"),
                        );
                        return None;
                    }
                    patterns.push(pattern.to_string());
                }
                Ok(if kind == "interface" {
                    AutodetectionMethod::Interface(patterns)
                } else {
                    AutodetectionMethod::SkipInterface(patterns)
                })
            }
            "cidr" if !argument.is_empty() => {
                let mut cidrs = Vec::new();
                for cidr in argument.split(',') {
                    match cidr.trim().parse::<IpNet>() {
                        Ok(cidr) => cidrs.push(cidr),
                        Err(_) => {
                            let span = argument_span(self);
                            self.report(
                                Diagnostic::new(&INVALID_AUTODETECTION_METHOD, span, format!("`{cidr}` is not a CIDR"))
                                    .label("cidr= takes CIDRs separated by commas")
                                    .help("write `cidr=10.0.0.0/8,192.168.0.0/16`"),
                            );
                            return None;
                        }
                    }
                }
                Ok(AutodetectionMethod::Cidr(cidrs))
            }
            _ => Err(()),
        };
        match parsed {
            Ok(parsed) => Some(Spanned::new(parsed, method.span)),
            Err(()) => {
                self.report(
                    Diagnostic::new(&INVALID_AUTODETECTION_METHOD, method.span, format!("Invalid IP autodetection method: {}", method.value))
                        .label("calico-node would exit at start-up")
                        .help("use `first-found`, `can-reach=DEST`, `interface=REGEX`, `skip-interface=REGEX`, `cidr=CIDR` or `kubernetes-internal-ip`"),
                );
                None
            }
        }
    }

    fn bgp(&mut self, bgp: &intent::Bgp, span: Span) -> BgpSettings {
        let as_number = bgp.as_number.as_ref().and_then(|number| self.as_number(number));
        let communities = self.communities(bgp.communities.as_deref());
        let prefix_advertisements =
            self.prefix_advertisements(bgp.prefix_advertisements.as_deref(), &communities, bgp.communities.as_deref());
        for (field, written) in [
            ("localWorkloadPeeringIPV4", bgp.local_workload_peering_ipv4.as_ref().map(|text| text.span)),
            ("localWorkloadPeeringIPV6", bgp.local_workload_peering_ipv6.as_ref().map(|text| text.span)),
            ("serviceLoadBalancerAggregation", bgp.service_load_balancer_aggregation.as_ref().map(|value| value.span)),
        ] {
            if let Some(span) = written {
                self.in_release("BGPConfiguration", field, span);
            }
        }
        let local_workload_peering_ipv4 = bgp.local_workload_peering_ipv4.as_ref().and_then(|text| self.plain_address(text, "IPv4"));
        let local_workload_peering_ipv6 = bgp.local_workload_peering_ipv6.as_ref().and_then(|text| self.plain_address(text, "IPv6"));
        let router_id = bgp.router_id.as_ref().and_then(|text| self.router_id(text));
        BgpSettings {
            communities,
            prefix_advertisements,
            local_workload_peering_ipv4,
            local_workload_peering_ipv6,
            service_load_balancer_aggregation: bgp.service_load_balancer_aggregation.clone(),
            router_id,
            as_number_set: as_number.is_some(),
            as_number: as_number.unwrap_or_else(|| Spanned::new(AsNumber::CALICO_DEFAULT, span)),
            node_to_node_mesh_set: bgp.node_to_node_mesh.is_some(),
            node_to_node_mesh: bgp.node_to_node_mesh.clone().unwrap_or_else(|| Spanned::new(true, span)),
            log_severity_set: bgp.log_severity.is_some(),
            log_severity: bgp.log_severity.as_ref().map_or(LogSeverity::Info, |severity| severity.value),
            advertise_service_cluster_ips: bgp.advertise_service_cluster_ips.as_ref().is_some_and(|flag| flag.value),
            advertise_service_cluster_ips_span: bgp.advertise_service_cluster_ips.as_ref().map(|flag| flag.span),
            service_external_ips: self.cidrs(bgp.service_external_ips.as_deref().unwrap_or_default(), "service external IP"),
            service_load_balancer_ips: self.cidrs(bgp.service_load_balancer_ips.as_deref().unwrap_or_default(), "service LoadBalancer IP"),
            listen_port: bgp.listen_port.clone(),
            bind_mode_node_ip: bgp.bind_mode.as_ref().is_some_and(|mode| mode.value == intent::BindMode::NodeIp),
            ignored_interfaces: self.ignored_interfaces(bgp.ignored_interfaces.as_deref().unwrap_or_default()),
            node_mesh_password: bgp.node_mesh_password.as_ref().map(|password| self.secret(password)),
            node_mesh_max_restart_time: bgp.node_mesh_max_restart_time.as_ref().and_then(|text| self.duration(text)),
            span,
        }
    }

    /// Resolves `bgp.routeReflectors` and gathers the clusters nodes declare literally; marks
    /// every reflector with its cluster ID and the labels the generated BGPPeers select on.
    fn route_reflectors(
        &mut self,
        clusters: &[intent::RouteReflectorCluster],
        nodes: &mut [Node],
        node_rules: &mut crate::node_rules::NodeRules,
    ) -> Vec<RouteReflectorCluster> {
        let mut resolved = Vec::new();
        let mut assigned: HashMap<NodeId, Span> = HashMap::new();
        for cluster in clusters {
            let Some(cluster_id) = self.cluster_id(&cluster.cluster_id) else { continue };
            let clients = cluster.clients.as_ref().and_then(|text| self.selector(text));
            let mut members = Vec::new();
            for name in &cluster.nodes {
                let Some(id) = self.node_reference(name) else { continue };
                if let Some(earlier) = assigned.get(&id.value) {
                    self.report(
                        Diagnostic::new(
                            &REFLECTOR_LISTED_TWICE,
                            name.span,
                            format!("node `{}` is listed as a reflector twice", name.value),
                        )
                        .label("listed again here")
                        .secondary(*earlier, "first listed here")
                        .help("a node reflects routes for one cluster ID; list it once"),
                    );
                    continue;
                }
                assigned.insert(id.value, name.span);
                members.push(id);
            }
            if let Some(selection) = &cluster.reflectors {
                node_rules.chosen_by_rule.insert(cluster_id.value);
                for id in self.chosen_reflectors(selection, cluster_id.value, nodes, node_rules) {
                    if let Some(earlier) = assigned.get(&id.value) {
                        let name = &nodes[id.value.0 as usize].name.value;
                        self.report(
                            Diagnostic::new(&REFLECTOR_LISTED_TWICE, id.span, format!("node `{name}` is chosen as a reflector twice"))
                                .label("chosen again by this selection")
                                .secondary(*earlier, "first chosen here")
                                .help("a node reflects routes for one cluster ID; make the clusters' reflector selectors exclusive"),
                        );
                        continue;
                    }
                    assigned.insert(id.value, id.span);
                    members.push(id);
                }
            }
            resolved.push(RouteReflectorCluster {
                cluster_id,
                nodes: members,
                clients,
                generated_peers: true,
                span: cluster.cluster_id.span,
            });
        }
        // One BGPPeer serves every cluster when all have the default clients; otherwise each
        // cluster's reflectors are told apart by a label naming their cluster.
        let per_cluster_labels = resolved.iter().any(|cluster| cluster.clients.is_some());
        for cluster in &resolved {
            for member in &cluster.nodes {
                let node = &mut nodes[member.value.0 as usize];
                if let Some(literal) = &node.route_reflector_cluster_id
                    && literal.value != cluster.cluster_id.value
                {
                    let message = format!(
                        "node `{}` is a reflector in cluster `{}` and declares cluster ID `{}`",
                        node.name.value, cluster.cluster_id.value, literal.value
                    );
                    self.diagnostics.push(
                        Diagnostic::new(&INVALID_CLUSTER_ID, literal.span, message)
                            .label("conflicts with `bgp.routeReflectors`")
                            .secondary(member.span, "listed as a reflector here")
                            .help("give the cluster ID in one place"),
                    );
                }
                node.route_reflector_cluster_id = Some(cluster.cluster_id.clone());
                node.labels.insert(ROUTE_REFLECTOR_LABEL.to_string(), Spanned::new("true".to_string(), member.span));
                if per_cluster_labels {
                    node.labels.insert(
                        ROUTE_REFLECTOR_CLUSTER_LABEL.to_string(),
                        Spanned::new(cluster.cluster_id.value.to_string(), cluster.cluster_id.span),
                    );
                }
            }
        }
        // Reflectors declared on nodes directly, whose peerings the operator writes.
        let mut literal: BTreeMap<Ipv4Addr, RouteReflectorCluster> = BTreeMap::new();
        for node in nodes.iter() {
            let Some(cluster_id) = &node.route_reflector_cluster_id else { continue };
            if assigned.contains_key(&node.id) {
                continue;
            }
            literal
                .entry(cluster_id.value)
                .or_insert_with(|| RouteReflectorCluster {
                    cluster_id: cluster_id.clone(),
                    nodes: Vec::new(),
                    clients: None,
                    generated_peers: false,
                    span: cluster_id.span,
                })
                .nodes
                .push(Spanned::new(node.id, cluster_id.span));
        }
        resolved.extend(literal.into_values());
        resolved
    }

    fn peer(&mut self, peer: &intent::Peer, filter_names: &[String]) -> Option<Peer> {
        self.name(&peer.name, "BGP peer");
        for (field, written) in [
            ("localWorkloadSelector", peer.local_workload_selector.as_ref().map(|text| text.span)),
            ("nextHopMode", peer.next_hop_mode.as_ref().map(|mode| mode.span)),
            ("reversePeering", peer.reverse_peering.as_ref().map(|reverse| reverse.span)),
            ("localASNumber", peer.local_as_number.as_ref().map(|number| number.span)),
            ("keepaliveTime", peer.keepalive_time.as_ref().map(|time| time.span)),
        ] {
            if let Some(span) = written {
                self.in_release("BGPPeer", field, span);
            }
        }
        for filter in peer.filters.iter().flatten() {
            if !filter_names.contains(&filter.value) {
                let help = match calplan_syntax::schema::did_you_mean(&filter.value, filter_names.iter().map(String::as_str)) {
                    Some(suggestion) => format!("did you mean `{suggestion}`?"),
                    None => "define the filter under `bgp.filters`, or remove the name".to_string(),
                };
                self.report(
                    Diagnostic::new(&UNKNOWN_BGP_FILTER, filter.span, format!("no BGPFilter named `{}`", filter.value))
                        .label("confd leaves this filter out")
                        .help(help),
                );
            }
        }
        let errors_before = self.diagnostics.error_count();
        let local_workload_selector = peer.local_workload_selector.as_ref().and_then(|text| self.selector(text));
        let peer_ip = peer.peer_ip.as_ref().and_then(|text| self.peer_address(text));
        let peer_selector = peer.peer_selector.as_ref().and_then(|text| self.selector(text));
        let node = peer.node.as_ref().and_then(|name| self.node_reference(name));
        let node_selector = peer.node_selector.as_ref().and_then(|text| self.selector(text));
        let as_number = peer.as_number.as_ref().and_then(|number| self.as_number(number));
        let local_as_number = peer.local_as_number.as_ref().and_then(|number| self.as_number(number));
        let max_restart_time = peer.max_restart_time.as_ref().and_then(|text| self.duration(text));
        let keepalive_time = peer.keepalive_time.as_ref().and_then(|text| self.duration(text));
        let reachable_by = peer.reachable_by.as_ref().and_then(|text| match text.parse::<IpAddr>() {
            Ok(address) => Some(Spanned::new(address, text.span)),
            Err(_) => {
                self.report(
                    Diagnostic::new(&INVALID_ADDRESS, text.span, format!("`{}` is not an IP address", text.value))
                        .label("reachableBy takes a gateway address")
                        .help("write the address of the gateway that reaches the peer"),
                );
                None
            }
        });
        let password = peer.password.as_ref().map(|password| self.secret(password));
        let unresolved = self.diagnostics.error_count() > errors_before;
        Some(Peer {
            name: peer.name.clone(),
            peer_ip,
            peer_selector,
            as_number,
            node,
            node_selector,
            local_as_number,
            keep_original_next_hop: peer.keep_original_next_hop.as_ref().map(|flag| flag.value),
            next_hop_mode: peer.next_hop_mode.as_ref().map(|mode| mode.value),
            max_restart_time,
            keepalive_time,
            source_address: peer.source_address.as_ref().map(|source| source.value),
            reverse_peering: peer.reverse_peering.as_ref().map(|reverse| reverse.value),
            password,
            ttl_security: peer.ttl_security.as_ref().map(|ttl| ttl.value),
            num_allowed_local_as_numbers: peer.num_allowed_local_as_numbers.as_ref().map(|number| number.value),
            reachable_by,
            filters: peer.filters.iter().flatten().filter(|filter| self.name(filter, "BGPFilter")).cloned().collect(),
            local_workload_selector,
            unresolved,
            span: peer.name.span,
        })
    }

    fn peer_address(&mut self, text: &Spanned<String>) -> Option<Spanned<PeerAddress>> {
        match parse_peer_address(&text.value) {
            Some(PeerAddress { port: Some(0), .. }) => {
                self.report(
                    Diagnostic::new(&INVALID_ADDRESS, text.span, format!("`{}` has port 0", text.value))
                        .label("port 0 is no port")
                        .help("write a port from 1 to 65535, or leave the port out for BGP's 179"),
                );
                None
            }
            Some(address) => Some(Spanned::new(address, text.span)),
            None => {
                self.report(
                    Diagnostic::new(&INVALID_ADDRESS, text.span, format!("`{}` is not a peer address", text.value))
                        .label("not IP, IP:PORT or [IPv6]:PORT")
                        .help("write the peer's address, optionally with a port: `172.19.4.87`, `172.19.4.87:179`, `[fd00::1]:179`"),
                );
                None
            }
        }
    }

    fn pool(&mut self, pool: &intent::Pool) -> Option<Pool> {
        self.name(&pool.name, "pool");
        if let Some(mode) = &pool.assignment_mode {
            self.in_release("IPPool", "assignmentMode", mode.span);
        }
        if let Some(selector) = &pool.namespace_selector {
            self.in_release("IPPool", "namespaceSelector", selector.span);
        }
        if let Some(load_balancer) = pool.allowed_uses.iter().flatten().find(|used| used.value == AllowedUse::LoadBalancer) {
            self.in_release("IPPool", "allowedUses: LoadBalancer", load_balancer.span);
        }
        let namespace_selector = pool.namespace_selector.as_ref().and_then(|text| self.selector(text));
        let cidr = self.cidr(&pool.cidr, "pool");
        let node_selector = match &pool.node_selector {
            Some(text) => self.selector(text),
            None => Some(Spanned::new(SelectorText { text: "all()".into(), selector: Selector::All }, pool.name.span)),
        };
        let cidr = cidr?;
        let node_selector = node_selector?;
        let head = pool.name.span;
        let mode = |mode: &Option<Spanned<intent::EncapsulationMode>>| match mode {
            Some(mode) => Spanned::new(
                match mode.value {
                    intent::EncapsulationMode::Never => EncapsulationMode::Never,
                    intent::EncapsulationMode::Always => EncapsulationMode::Always,
                    intent::EncapsulationMode::CrossSubnet => EncapsulationMode::CrossSubnet,
                },
                mode.span,
            ),
            None => Spanned::new(EncapsulationMode::Never, head),
        };
        let flag = |flag: &Option<Spanned<bool>>| flag.clone().unwrap_or_else(|| Spanned::new(false, head));
        let default_block = if matches!(cidr.value, IpNet::V4(_)) { 26 } else { 122 };
        let allowed_uses = match &pool.allowed_uses {
            Some(uses) => {
                let span = uses.first().map_or(head, |first| first.span);
                let mut values: Vec<AllowedUse> = uses.iter().map(|used| used.value).collect();
                values.dedup();
                Spanned::new(values, span)
            }
            None => Spanned::new(vec![AllowedUse::Workload, AllowedUse::Tunnel], head),
        };
        Some(Pool {
            name: pool.name.clone(),
            cidr,
            block_size_set: pool.block_size.is_some(),
            block_size: pool.block_size.clone().unwrap_or_else(|| Spanned::new(default_block, head)),
            ipip_mode: mode(&pool.ipip_mode),
            vxlan_mode: mode(&pool.vxlan_mode),
            nat_outgoing: flag(&pool.nat_outgoing),
            disabled: flag(&pool.disabled),
            disable_bgp_export: flag(&pool.disable_bgp_export),
            node_selector,
            allowed_uses_set: pool.allowed_uses.is_some(),
            allowed_uses,
            assignment_manual: pool.assignment_mode.as_ref().is_some_and(|mode| mode.value == intent::AssignmentMode::Manual),
            namespace_selector,
            span: head,
        })
    }

    /// Reports a field the intent's release does not have.
    fn in_release(&mut self, kind: &str, field: &str, span: Span) {
        let Some(introduced) = calplan_calico::release::introduced(kind, field) else { return };
        let release = self.release;
        if introduced <= release.version() {
            return;
        }
        let help = if Release::of(introduced).is_some() {
            format!("if the cluster runs Calico {introduced} or later, write `calicoVersion: \"{introduced}\"`; otherwise remove the field")
        } else {
            format!("calplan renders for Calico {}; remove the field", Release::supported_list())
        };
        let what = match field.split_once(": ") {
            Some((field_name, value)) => format!("`{value}` in `{field_name}`"),
            None => format!("`{field}`"),
        };
        self.report(
            Diagnostic::new(
                &FIELD_NOT_IN_RELEASE,
                span,
                format!(
                    "{what} is {} {kind} field from Calico {introduced} on; this intent follows Calico {release}",
                    if kind.starts_with('I') { "an" } else { "a" }
                ),
            )
            .label(format!("not in Calico {release}"))
            .help(help),
        );
    }

    fn plain_address<T: std::str::FromStr>(&mut self, text: &Spanned<String>, family: &str) -> Option<Spanned<T>> {
        match text.parse::<T>() {
            Ok(address) => Some(Spanned::new(address, text.span)),
            Err(_) => {
                self.report(
                    Diagnostic::new(&INVALID_ADDRESS, text.span, format!("`{}` is not an {family} address", text.value))
                        .label(format!("not an {family} address"))
                        .help("write one address without a prefix length, usually a link-local one such as `169.254.0.179` or `fe80::179`"),
                );
                None
            }
        }
    }

    fn router_id(&mut self, text: &Spanned<String>) -> Option<Spanned<RouterIdSource>> {
        if text.value == "hash" {
            return Some(Spanned::new(RouterIdSource::Hash, text.span));
        }
        match text.parse::<Ipv4Addr>() {
            Ok(address) => Some(Spanned::new(RouterIdSource::Address(address), text.span)),
            Err(_) => {
                self.report(
                    Diagnostic::new(&INVALID_ADDRESS, text.span, format!("`{}` is neither `hash` nor an IPv4 address", text.value))
                        .label("not a router ID")
                        .help("write `hash` to derive each node's router ID from its name, or one IPv4 address"),
                );
                None
            }
        }
    }

    fn communities(&mut self, communities: Option<&[intent::Community]>) -> Vec<CommunityDefinition> {
        let mut defined = Vec::new();
        for community in communities.unwrap_or_default() {
            // Calico validates a community's name as it does a resource's; a bad name is
            // reported and the community kept, so its uses resolve rather than each reporting an
            // undefined name.
            self.name(&community.name, "community");
            if let Err(problem) = calplan_calico::Community::parse(&community.value.value) {
                self.report(
                    Diagnostic::new(
                        &INVALID_COMMUNITY,
                        community.value.span,
                        format!("`{}` is not a BGP community", community.value.value),
                    )
                    .label(problem)
                    .help("write two numbers below 65536 (`65001:100`), or three below 4294967296 for a large community (`65001:100:1`)"),
                );
                continue;
            }
            defined.push(CommunityDefinition { name: community.name.clone(), value: community.value.clone() });
        }
        defined
    }

    fn prefix_advertisements(
        &mut self,
        written: Option<&[intent::PrefixAdvertisement]>,
        defined: &[CommunityDefinition],
        communities: Option<&[intent::Community]>,
    ) -> Option<Vec<PrefixAdvertisement>> {
        if written.is_none_or(<[_]>::is_empty)
            && let Some(first) = communities.and_then(<[_]>::first)
        {
            self.report(
                Diagnostic::new(&INVALID_COMMUNITY, first.name.span, "communities are defined but not used in `prefixAdvertisements`")
                    .label("Calico refuses communities no prefix advertisement uses")
                    .help("use the community in a `prefixAdvertisements` entry, or remove it"),
            );
        }
        let written = written?;
        let names: Vec<&str> = communities.unwrap_or_default().iter().map(|community| community.name.value.as_str()).collect();
        let mut advertisements = Vec::new();
        for advertisement in written {
            for community in &advertisement.communities {
                if calplan_calico::Community::looks_like_value(&community.value) {
                    if let Err(problem) = calplan_calico::Community::parse(&community.value) {
                        self.report(
                            Diagnostic::new(&INVALID_COMMUNITY, community.span, format!("`{}` is not a BGP community", community.value))
                                .label(problem)
                                .help("write two numbers below 65536 (`65001:100`), or three below 4294967296 (`65001:100:1`)"),
                        );
                    }
                } else if !defined.iter().any(|definition| definition.name.value == community.value) {
                    let help = match calplan_syntax::schema::did_you_mean(&community.value, names.iter().copied()) {
                        Some(suggestion) => format!("did you mean `{suggestion}`?"),
                        None => "write a value (`65001:100`) or the name of one of `communities`".to_string(),
                    };
                    self.report(
                        Diagnostic::new(
                            &INVALID_COMMUNITY,
                            community.span,
                            format!("community `{}` is neither a value nor a defined name", community.value),
                        )
                        .label("community used is invalid or not defined")
                        .help(help),
                    );
                }
            }
            let Some(cidr) = self.cidr(&advertisement.cidr, "prefix advertisement") else { continue };
            advertisements.push(PrefixAdvertisement {
                cidr: Spanned::new(CidrText { net: cidr.value, text: advertisement.cidr.value.clone() }, cidr.span),
                communities: advertisement.communities.clone(),
            });
        }
        Some(advertisements)
    }

    fn filter(&mut self, filter: &intent::BgpFilter) -> Option<BgpFilter> {
        let name_ok = self.name(&filter.name, "BGP filter");
        let mut lists: [Option<Vec<FilterRule>>; 4] = [None, None, None, None];
        for (slot, (rules, v6, field)) in lists.iter_mut().zip([
            (&filter.export_v4, false, "exportV4"),
            (&filter.import_v4, false, "importV4"),
            (&filter.export_v6, true, "exportV6"),
            (&filter.import_v6, true, "importV6"),
        ]) {
            if let Some(rules) = rules {
                *slot = Some(rules.iter().filter_map(|rule| self.filter_rule(rule, v6, field)).collect());
            }
        }
        let [export_v4, import_v4, export_v6, import_v6] = lists;
        name_ok.then(|| BgpFilter { name: filter.name.clone(), export_v4, import_v4, export_v6, import_v6, span: filter.name.span })
    }

    fn filter_rule(&mut self, rule: &intent::BgpFilterRule, v6: bool, field: &str) -> Option<FilterRule> {
        let family = if v6 { "IPv6" } else { "IPv4" };
        let mut ok = true;
        let cidr = rule.cidr.as_ref().and_then(|text| {
            let cidr = self.cidr(text, "BGPFilter")?;
            if cidr.addr().is_ipv6() != v6 {
                self.report(
                    Diagnostic::new(&INVALID_BGP_FILTER, text.span, format!("`{}` is not an {family} CIDR", text.value))
                        .label(format!("`{field}` rules match {family} routes"))
                        .help(format!(
                            "move the rule to the `{}` list of its family",
                            if v6 { field.replace('6', "4") } else { field.replace('4', "6") }
                        )),
                );
                return None;
            }
            Some(Spanned::new(CidrText { net: cidr.value, text: text.value.clone() }, text.span))
        });
        if rule.cidr.is_some() && cidr.is_none() {
            ok = false;
        }
        match (&rule.cidr, &rule.match_operator) {
            (Some(cidr), None) => {
                ok = false;
                self.report(
                    Diagnostic::new(&INVALID_BGP_FILTER, cidr.span, "MatchOperator cannot be empty when CIDR is not")
                        .label("a `cidr` without `matchOperator`")
                        .help("add `matchOperator: In` (routes within the CIDR), `NotIn`, `Equal` or `NotEqual`"),
                );
            }
            (None, Some(operator)) => {
                ok = false;
                self.report(
                    Diagnostic::new(&INVALID_BGP_FILTER, operator.span, "CIDR cannot be empty when MatchOperator is not")
                        .label("a `matchOperator` without `cidr`")
                        .help("add the `cidr` the operator compares routes with, or remove the operator"),
                );
            }
            _ => {}
        }
        let mut prefix_length = None;
        if let Some(lengths) = &rule.prefix_length {
            let at = lengths.min.as_ref().or(lengths.max.as_ref()).map_or(rule.action.span, |bound| bound.span);
            self.in_release("BGPFilter", "prefixLength", at);
            if rule.cidr.is_none() {
                ok = false;
                self.report(
                    Diagnostic::new(&INVALID_BGP_FILTER, at, "CIDR cannot be empty when PrefixLength is not")
                        .label("a `prefixLength` without `cidr`")
                        .help("add the `cidr` whose routes the lengths apply to"),
                );
            }
            let most = if v6 { 128 } else { 32 };
            let mut bound = |value: &Option<Spanned<i64>>| -> Option<i32> {
                let value = value.as_ref()?;
                if !(0..=most).contains(&value.value) {
                    ok = false;
                    self.report(
                        Diagnostic::new(&INVALID_BGP_FILTER, value.span, format!("{} is not an {family} prefix length", value.value))
                            .label(format!("not within 0–{most}"))
                            .help(format!("{family} prefix lengths are 0 to {most}")),
                    );
                    return None;
                }
                Some(value.value as i32)
            };
            prefix_length = Some((bound(&lengths.min), bound(&lengths.max)));
        }
        if let Some(interface) = &rule.interface
            && let Some(problem) = crate::grammar::filter_interface_problem(&interface.value)
        {
            ok = false;
            self.report(
                Diagnostic::new(&INVALID_BGP_FILTER, interface.span, format!("`{}` is not an interface name or pattern", interface.value))
                    .label(problem)
                    .help("write an interface name such as `eth0`, or a pattern such as `eth*` or `*.calico`, at most 15 characters"),
            );
        }
        ok.then(|| FilterRule {
            action: rule.action.value,
            cidr,
            match_operator: rule.match_operator.as_ref().map(|operator| operator.value),
            prefix_length,
            source: rule.source.as_ref().map(|source| source.value),
            interface: rule.interface.clone(),
            span: rule.action.span,
        })
    }

    fn router(&mut self, router: &intent::Router, id: RouterId) -> Option<Router> {
        self.name(&router.name, "router");
        let address = match router.address.parse::<IpNet>() {
            Ok(address) => Some(Spanned::new(address, router.address.span)),
            Err(_) => {
                self.report(
                    Diagnostic::new(
                        &INVALID_ADDRESS,
                        router.address.span,
                        format!("`{}` is not an address with a prefix length", router.address.value),
                    )
                    .label("not an address/prefix")
                    .help("write the router's address on the nodes' network with its prefix length, such as `21.49.22.3/24`"),
                );
                None
            }
        };
        let mut static_routes = Vec::new();
        for route in &router.static_routes {
            let destination = match route.destination.value.as_str() {
                "pools" => Some(Destination::Pools),
                "services" => Some(Destination::Services),
                _ => self.cidr(&route.destination, "destination").map(|cidr| Destination::Cidr(cidr.value)),
            };
            let via = route
                .via
                .iter()
                .filter_map(|hop| match hop.parse::<IpAddr>() {
                    Ok(address) => Some(Spanned::new(NextHop::Address(address), hop.span)),
                    Err(_) => self.node_reference(hop).map(|id| Spanned::new(NextHop::Node(id.value), hop.span)),
                })
                .collect();
            if let Some(destination) = destination {
                static_routes.push(StaticRoute {
                    destination: Spanned::new(destination, route.destination.span),
                    via,
                    aggregate: route.aggregate.as_ref().is_none_or(|flag| flag.value),
                    span: route.destination.span,
                });
            }
        }
        let bgp = router.bgp.as_ref().and_then(|bgp| {
            let as_number = self.as_number(&bgp.as_number)?;
            Some(RouterBgp {
                as_number,
                peer_with: bgp.peer_with.value,
                password: bgp.password.as_ref().map(|password| self.secret(password)),
                span: bgp.peer_with.span,
            })
        });
        let address = address?;
        Some(Router {
            id,
            name: router.name.clone(),
            platform: router.platform.clone(),
            address,
            static_routes,
            bgp,
            span: router.name.span,
        })
    }
}

/// The span of `value[start..end]` inside the source span of a (possibly quoted) scalar.
pub fn inner_span(source: &str, span: Span, value: &str, start: usize, end: usize) -> Span {
    let written = source.get(span.start as usize..span.end as usize).unwrap_or("");
    if written == value {
        return span.sub(start, end);
    }
    let quoted =
        written.len() >= 2 && (written.starts_with('\'') && written.ends_with('\'') || written.starts_with('"') && written.ends_with('"'));
    if quoted && &written[1..written.len() - 1] == value {
        return span.sub(start + 1, end + 1);
    }
    span
}

fn first_line(text: &str) -> String {
    text.lines().rev().find(|line| line.contains("error")).unwrap_or(text.lines().next().unwrap_or(text)).trim().to_string()
}

fn dns_subdomain() -> &'static regex::Regex {
    static PATTERN: OnceLock<regex::Regex> = OnceLock::new();
    PATTERN.get_or_init(|| regex::Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$").expect("valid regex"))
}

pub fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && dns_subdomain().is_match(name)
}

/// Kubernetes' `IsDNS1123Label`: a namespace's rule.
pub fn is_dns_label(name: &str) -> bool {
    name.len() <= 63 && !name.contains('.') && dns_subdomain().is_match(name)
}

fn suggest_dns_name(name: &str) -> Option<String> {
    let lowered: String =
        name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect();
    let trimmed = lowered.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string();
    is_dns_subdomain(&trimmed).then_some(trimmed)
}

fn is_hostname(text: &str) -> bool {
    is_dns_subdomain(&text.to_lowercase())
}

pub fn is_label_name(text: &str) -> bool {
    static PATTERN: OnceLock<regex::Regex> = OnceLock::new();
    let pattern = PATTERN.get_or_init(|| regex::Regex::new(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$").expect("valid regex"));
    text.len() <= 63 && pattern.is_match(text)
}

pub fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Some(format!("the prefix `{prefix}` is not a DNS subdomain"));
    }
    if !is_label_name(name) {
        return Some(format!("the name `{name}` is not 1–63 letters, digits, `-`, `_` or `.` beginning and ending with a letter or digit"));
    }
    None
}

pub fn parse_peer_address(text: &str) -> Option<PeerAddress> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(PeerAddress { ip, port: None });
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, port) = rest.split_once("]:")?;
        return Some(PeerAddress { ip: IpAddr::V6(ip.parse().ok()?), port: Some(port.parse().ok()?) });
    }
    let (ip, port) = text.rsplit_once(':')?;
    Some(PeerAddress { ip: IpAddr::V4(ip.parse().ok()?), port: Some(port.parse().ok()?) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addresses() {
        assert_eq!(parse_peer_address("1.2.3.4").unwrap().port, None);
        assert_eq!(parse_peer_address("1.2.3.4:180").unwrap().port, Some(180));
        assert_eq!(parse_peer_address("[fd00::1]:179").unwrap().port, Some(179));
        assert_eq!(parse_peer_address("fd00::1").unwrap().port, None);
        assert!(parse_peer_address("1.2.3:4").is_none());
    }

    #[test]
    fn names_and_labels() {
        assert!(is_dns_subdomain("cs1-k8s-m1.zpepc.com.cn"));
        assert!(!is_dns_subdomain("Pool_A"));
        assert_eq!(suggest_dns_name("Pool_A").as_deref(), Some("pool-a"));
        assert!(label_key_problem("kubernetes.io/os").is_none());
        assert!(label_key_problem("rack id").is_some());
        assert!(is_label_name("true"));
    }
}
