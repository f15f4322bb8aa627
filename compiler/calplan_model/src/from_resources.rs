//! A model read back from Calico resources: for `calplan import`, and for the intermediate
//! states of a plan, whose artifacts are compiled from the resources each stage leaves behind.
//!
//! What Calico resources do not hold (routers, interfaces, `maxPodsPerNode`, the intent's
//! service range) comes from a base model. Every BGPPeer is taken literally, so compiling the
//! result gives back the same resources.

use crate::lower::{is_dns_subdomain, parse_peer_address};
use crate::model::*;
use calplan_calico::resources::*;
use calplan_calico::resources::{BgpFilterRule, Community};
use calplan_calico::{Selector, duration_seconds};
use calplan_diagnostics::{Span, Spanned};
use std::collections::BTreeMap;

/// A field's text, with the empty string counted as absent, as confd does.
fn text(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|text| !text.is_empty())
}

fn span(at: Option<Span>) -> Span {
    at.unwrap_or_default()
}

fn spanned<T>(value: T, at: Option<Span>) -> Spanned<T> {
    Spanned::new(value, span(at))
}

/// Builds a model from `resources`, taking everything else from `base`. Resources that do not
/// resolve (an unparsable CIDR, say) are left out and described in the returned problems.
pub fn from_resources(resources: &ResourceSet, base: &Model) -> (Model, Vec<String>) {
    let mut problems = Vec::new();
    let selector = |text: &str, problems: &mut Vec<String>, what: &str| -> Option<SelectorText> {
        match Selector::parse(text) {
            Ok(selector) => Some(SelectorText { text: text.to_string(), selector }),
            Err(error) => {
                problems.push(format!("{what}: selector `{text}` does not parse ({error})"));
                None
            }
        }
    };

    // Nodes, in name order; interfaces come from the base model's node of the same name.
    let mut nodes = Vec::new();
    for node in resources.nodes() {
        let name = &node.metadata.name;
        let base_node = base.node_by_name(name);
        let at = base_node.map(|node| node.span);
        let bgp = node.spec.bgp.clone().unwrap_or_default();
        let ipv4_address = bgp.ipv4_address.as_deref().and_then(|text| {
            text.parse::<ipnet::Ipv4Net>()
                .or_else(|_| text.parse::<std::net::Ipv4Addr>().map(ipnet::Ipv4Net::from))
                .map_err(|_| problems.push(format!("Node `{name}`: ipv4Address `{text}` does not parse")))
                .ok()
        });
        let ipv6_address = bgp.ipv6_address.as_deref().and_then(|text| {
            text.parse::<ipnet::Ipv6Net>()
                .or_else(|_| text.parse::<std::net::Ipv6Addr>().map(ipnet::Ipv6Net::from))
                .map_err(|_| problems.push(format!("Node `{name}`: ipv6Address `{text}` does not parse")))
                .ok()
        });
        let route_reflector_cluster_id = bgp.route_reflector_cluster_id.as_deref().filter(|id| !id.is_empty()).and_then(|text| {
            text.parse().map_err(|_| problems.push(format!("Node `{name}`: routeReflectorClusterID `{text}` is not in IPv4 form"))).ok()
        });
        let bgp_configuration = resources.node_bgp_configuration(name).map(|configuration| {
            let spec = &configuration.spec;
            NodeBgpConfiguration {
                listen_port: spec.listen_port.map(|port| spanned(port, at)),
                log_severity: spec.log_severity_screen.as_deref().and_then(log_severity),
                communities: communities(&spec.communities, at),
                prefix_advertisements: spec.prefix_advertisements.as_ref().map(|list| prefix_advertisements(list, at, &mut problems)),
            }
        });
        nodes.push(Node {
            bgp_configuration,
            id: NodeId(nodes.len() as u32),
            name: spanned(name.clone(), at),
            ipv4_address: ipv4_address.map(|address| spanned(address, at)),
            ipv6_address: ipv6_address.map(|address| spanned(address, at)),
            as_number: bgp.as_number.map(|number| spanned(number, at)),
            route_reflector_cluster_id: route_reflector_cluster_id.map(|id| spanned(id, at)),
            labels: node.metadata.labels.iter().map(|(key, value)| (key.clone(), spanned(value.clone(), at))).collect(),
            interfaces: base_node.and_then(|node| node.interfaces.clone()),
            span: span(at),
        });
    }
    let node_ids: BTreeMap<&str, NodeId> = nodes.iter().map(|node| (node.name.value.as_str(), node.id)).collect();

    let mut clusters: BTreeMap<std::net::Ipv4Addr, RouteReflectorCluster> = BTreeMap::new();
    for node in &nodes {
        if let Some(id) = &node.route_reflector_cluster_id {
            clusters
                .entry(id.value)
                .or_insert_with(|| RouteReflectorCluster {
                    cluster_id: id.clone(),
                    nodes: Vec::new(),
                    clients: None,
                    generated_peers: false,
                    span: node.span,
                })
                .nodes
                .push(Spanned::new(node.id, node.span));
        }
    }

    let mut pools = Vec::new();
    for pool in resources.pools() {
        let name = &pool.metadata.name;
        let at = base.pools.iter().find(|base_pool| base_pool.name.value == *name).map(|pool| pool.span);
        let Ok(cidr) = pool.spec.cidr.parse::<ipnet::IpNet>() else {
            problems.push(format!("IPPool `{name}`: cidr `{}` does not parse", pool.spec.cidr));
            continue;
        };
        let Some(node_selector) = selector(pool.spec.effective_node_selector(), &mut problems, &format!("IPPool `{name}`")) else {
            continue;
        };
        let allowed_uses: Vec<AllowedUse> = pool
            .spec
            .effective_allowed_uses()
            .iter()
            .filter_map(|used| match used.as_str() {
                "Workload" => Some(AllowedUse::Workload),
                "Tunnel" => Some(AllowedUse::Tunnel),
                "LoadBalancer" => Some(AllowedUse::LoadBalancer),
                _ => None,
            })
            .collect();
        pools.push(Pool {
            name: spanned(name.clone(), at),
            cidr: spanned(cidr, at),
            block_size: spanned(pool.spec.effective_block_size(), at),
            block_size_set: pool.spec.block_size.is_some(),
            ipip_mode: spanned(pool.spec.ipip_mode.unwrap_or_default(), at),
            vxlan_mode: spanned(pool.spec.vxlan_mode.unwrap_or_default(), at),
            nat_outgoing: spanned(pool.spec.nat_outgoing.unwrap_or(false), at),
            disabled: spanned(pool.spec.disabled.unwrap_or(false), at),
            disable_bgp_export: spanned(pool.spec.disable_bgp_export.unwrap_or(false), at),
            node_selector: spanned(node_selector, at),
            allowed_uses_set: pool.spec.allowed_uses.is_some(),
            allowed_uses: spanned(allowed_uses, at),
            assignment_manual: pool.spec.assignment_mode.as_deref() == Some("Manual"),
            namespace_selector: text(&pool.spec.namespace_selector)
                .and_then(|s| selector(s, &mut problems, &format!("IPPool `{name}`")))
                .map(|s| spanned(s, at)),
            span: span(at),
        });
    }

    // The intent's order where the intent has the pool: targets render pools in model order,
    // and a stage's files should read as `compile` writes them.
    pools.sort_by_key(|pool| {
        (base.pools.iter().position(|known| known.name.value == pool.name.value).unwrap_or(usize::MAX), pool.name.value.clone())
    });

    let mut peers = Vec::new();
    for peer in resources.peers() {
        let name = &peer.metadata.name;
        let at = base.peers.iter().find(|base_peer| base_peer.name.value == *name).map(|peer| peer.span);
        let spec = &peer.spec;
        let what = format!("BGPPeer `{name}`");
        let duration = |value: &Option<String>| {
            text(value).and_then(|text| duration_seconds(text).map(|seconds| spanned(Duration { seconds, text: text.to_string() }, at)))
        };
        peers.push(Peer {
            name: spanned(name.clone(), at),
            peer_ip: text(&spec.peer_ip).and_then(parse_peer_address).map(|address| spanned(address, at)),
            peer_selector: text(&spec.peer_selector).and_then(|s| selector(s, &mut problems, &what)).map(|s| spanned(s, at)),
            as_number: spec.as_number.map(|number| spanned(number, at)),
            node: text(&spec.node).and_then(|node| node_ids.get(node)).map(|id| spanned(*id, at)),
            node_selector: text(&spec.node_selector).and_then(|s| selector(s, &mut problems, &what)).map(|s| spanned(s, at)),
            local_as_number: spec.local_as_number.map(|number| spanned(number, at)),
            keep_original_next_hop: spec.keep_original_next_hop,
            next_hop_mode: spec.next_hop_mode.as_deref().and_then(|mode| match mode {
                "Auto" => Some(NextHopMode::Auto),
                "Self" => Some(NextHopMode::SelfAddress),
                "Keep" => Some(NextHopMode::Keep),
                _ => None,
            }),
            max_restart_time: duration(&spec.max_restart_time),
            keepalive_time: duration(&spec.keepalive_time),
            source_address: spec
                .source_address
                .as_deref()
                .map(|source| if source == "None" { SourceAddress::None } else { SourceAddress::UseNodeIp }),
            reverse_peering: spec
                .reverse_peering
                .as_deref()
                .map(|reverse| if reverse == "Manual" { ReversePeering::Manual } else { ReversePeering::Auto }),
            password: spec.password.as_ref().map(|holder| SecretRef {
                name: holder.secret_key_ref.name.clone(),
                key: holder.secret_key_ref.key.clone(),
                span: span(at),
            }),
            ttl_security: spec.ttl_security,
            num_allowed_local_as_numbers: spec.num_allowed_local_as_numbers,
            reachable_by: text(&spec.reachable_by).and_then(|gateway| gateway.parse().ok()).map(|gateway| spanned(gateway, at)),
            filters: spec.filters.iter().flatten().map(|filter| spanned(filter.clone(), at)).collect(),
            local_workload_selector: text(&spec.local_workload_selector)
                .and_then(|s| selector(s, &mut problems, &what))
                .map(|s| spanned(s, at)),
            unresolved: false,
            span: span(at),
        });
    }

    let configuration = resources.bgp_configuration().map(|configuration| configuration.spec.clone()).unwrap_or_default();
    let cidrs = |entries: &Option<Vec<CidrEntry>>| -> Vec<Spanned<ipnet::IpNet>> {
        entries.iter().flatten().filter_map(|entry| entry.cidr.parse().ok()).map(|cidr| Spanned::new(cidr, base.bgp.span)).collect()
    };
    let advertised_cluster_ips = cidrs(&configuration.service_cluster_ips);
    let mut service_cluster_ips = base.service_cluster_ips.clone();
    for cidr in &advertised_cluster_ips {
        if !service_cluster_ips.iter().any(|known| known.value == cidr.value) {
            service_cluster_ips.push(cidr.clone());
        }
    }
    let bgp = BgpSettings {
        as_number: Spanned::new(configuration.effective_as_number(), base.bgp.span),
        as_number_set: configuration.as_number.is_some(),
        node_to_node_mesh: Spanned::new(configuration.effective_mesh(), base.bgp.span),
        node_to_node_mesh_set: configuration.node_to_node_mesh_enabled.is_some(),
        log_severity: configuration
            .log_severity_screen
            .as_deref()
            .and_then(|text| LogSeverity::ALL.into_iter().find(|severity| severity.as_str() == text))
            .unwrap_or(LogSeverity::Info),
        log_severity_set: configuration.log_severity_screen.is_some(),
        advertise_service_cluster_ips: !advertised_cluster_ips.is_empty(),
        advertise_service_cluster_ips_span: None,
        service_external_ips: cidrs(&configuration.service_external_ips),
        service_load_balancer_ips: cidrs(&configuration.service_load_balancer_ips),
        listen_port: configuration.listen_port.map(|port| Spanned::new(port, base.bgp.span)),
        bind_mode_node_ip: configuration.bind_mode.as_deref() == Some("NodeIP"),
        ignored_interfaces: configuration.ignored_interfaces.clone().unwrap_or_default(),
        node_mesh_password: configuration.node_mesh_password.as_ref().map(|holder| SecretRef {
            name: holder.secret_key_ref.name.clone(),
            key: holder.secret_key_ref.key.clone(),
            span: base.bgp.span,
        }),
        node_mesh_max_restart_time: configuration.node_mesh_max_restart_time.as_deref().and_then(|text| {
            duration_seconds(text).map(|seconds| Spanned::new(Duration { seconds, text: text.to_string() }, base.bgp.span))
        }),
        communities: communities(&configuration.communities, Some(base.bgp.span)),
        prefix_advertisements: configuration
            .prefix_advertisements
            .as_ref()
            .map(|list| prefix_advertisements(list, Some(base.bgp.span), &mut problems)),
        local_workload_peering_ipv4: text(&configuration.local_workload_peering_ipv4)
            .and_then(|address| address.parse().ok())
            .map(|address| Spanned::new(address, base.bgp.span)),
        local_workload_peering_ipv6: text(&configuration.local_workload_peering_ipv6)
            .and_then(|address| address.parse().ok())
            .map(|address| Spanned::new(address, base.bgp.span)),
        service_load_balancer_aggregation: configuration.service_load_balancer_aggregation.as_deref().and_then(|value| match value {
            "Enabled" => Some(Spanned::new(Aggregation::Enabled, base.bgp.span)),
            "Disabled" => Some(Spanned::new(Aggregation::Disabled, base.bgp.span)),
            _ => None,
        }),
        // calico-node's environment, not the datastore's.
        router_id: base.bgp.router_id.clone(),
        span: base.bgp.span,
    };

    let mut filters = Vec::new();
    for filter in resources.filters() {
        let name = &filter.metadata.name;
        // The name becomes part of a BIRD symbol: only what Calico allows in names.
        if !is_dns_subdomain(name) {
            problems.push(format!("BGPFilter `{name}`: the name is not a DNS-1123 subdomain; the filter is left out"));
            continue;
        }
        let at = base.filters.iter().find(|known| known.name.value == *name).map(|known| known.span);
        let rules = |rules: &Option<Vec<BgpFilterRule>>, problems: &mut Vec<String>| -> Option<Vec<FilterRule>> {
            rules.as_ref().map(|rules| rules.iter().filter_map(|rule| filter_rule(rule, at, name, problems)).collect())
        };
        filters.push(crate::model::BgpFilter {
            name: spanned(name.clone(), at),
            export_v4: rules(&filter.spec.export_v4, &mut problems),
            import_v4: rules(&filter.spec.import_v4, &mut problems),
            export_v6: rules(&filter.spec.export_v6, &mut problems),
            import_v6: rules(&filter.spec.import_v6, &mut problems),
            span: span(at),
        });
    }

    // Routers keep their static routes; their next hops are re-resolved by node name.
    let routers = base
        .routers
        .iter()
        .map(|router| {
            let mut router = router.clone();
            for route in &mut router.static_routes {
                route.via.retain_mut(|hop| match hop.value {
                    NextHop::Node(id) => match node_ids.get(base.node(id).name.value.as_str()) {
                        Some(new_id) => {
                            hop.value = NextHop::Node(*new_id);
                            true
                        }
                        None => false,
                    },
                    NextHop::Address(_) => true,
                });
            }
            router
        })
        .collect();

    for node in &nodes {
        if !is_dns_subdomain(&node.name) {
            problems.push(format!("Node `{}`: the name is not a DNS-1123 subdomain", node.name.value));
        }
    }
    let model = Model {
        file: base.file,
        name: base.name.clone(),
        calico_version: base.calico_version.clone(),
        datastore: base.datastore,
        node_agent: base.node_agent,
        installation: base.installation,
        autodetection: base.autodetection.clone(),
        node_rules: Default::default(),
        service_cluster_ips,
        max_pods_per_node: base.max_pods_per_node.clone(),
        bgp,
        route_reflector_clusters: clusters.into_values().collect(),
        peers,
        filters,
        pools,
        nodes,
        routers,
        generates_peers: false,
        allow: base.allow.clone(),
    };
    (model, problems)
}

fn log_severity(text: &str) -> Option<LogSeverity> {
    LogSeverity::ALL.into_iter().find(|severity| severity.as_str() == text)
}

/// The named communities whose values Calico accepts; the others never reach BIRD.
fn communities(list: &Option<Vec<Community>>, at: Option<Span>) -> Vec<CommunityDefinition> {
    list.iter()
        .flatten()
        .filter(|community| calplan_calico::Community::parse(&community.value).is_ok())
        .map(|community| CommunityDefinition { name: spanned(community.name.clone(), at), value: spanned(community.value.clone(), at) })
        .collect()
}

fn prefix_advertisements(
    list: &[calplan_calico::resources::PrefixAdvertisement],
    at: Option<Span>,
    problems: &mut Vec<String>,
) -> Vec<crate::model::PrefixAdvertisement> {
    list.iter()
        .filter_map(|advertisement| {
            let Ok(net) = advertisement.cidr.parse() else {
                problems.push(format!("BGPConfiguration: prefix advertisement `{}` is not a CIDR", advertisement.cidr));
                return None;
            };
            Some(crate::model::PrefixAdvertisement {
                cidr: spanned(CidrText { net, text: advertisement.cidr.clone() }, at),
                communities: advertisement.communities.iter().map(|community| spanned(community.clone(), at)).collect(),
            })
        })
        .collect()
}

fn filter_rule(rule: &BgpFilterRule, at: Option<Span>, filter: &str, problems: &mut Vec<String>) -> Option<FilterRule> {
    let mut note = |what: String| problems.push(format!("BGPFilter `{filter}`: {what}; the rule is left out"));
    let action = match rule.action.as_str() {
        "Accept" => FilterAction::Accept,
        "Reject" => FilterAction::Reject,
        other => {
            note(format!("action `{other}` is neither `Accept` nor `Reject`"));
            return None;
        }
    };
    let cidr = match rule.cidr.as_deref().filter(|text| !text.is_empty()) {
        Some(text) => match text.parse() {
            Ok(net) => Some(spanned(CidrText { net, text: text.to_string() }, at)),
            Err(_) => {
                note(format!("`{text}` is not a CIDR"));
                return None;
            }
        },
        None => None,
    };
    let match_operator = match rule.match_operator.as_deref().filter(|text| !text.is_empty()) {
        None => None,
        Some("Equal") => Some(MatchOperator::Equal),
        Some("NotEqual") => Some(MatchOperator::NotEqual),
        Some("In") => Some(MatchOperator::In),
        Some("NotIn") => Some(MatchOperator::NotIn),
        Some(other) => {
            note(format!("`{other}` is not a match operator"));
            return None;
        }
    };
    let source = match rule.source.as_deref().filter(|text| !text.is_empty()) {
        None => None,
        Some("RemotePeers") => Some(FilterSource::RemotePeers),
        Some(other) => {
            note(format!("`{other}` is not a route source"));
            return None;
        }
    };
    let interface = match rule.interface.as_deref().filter(|text| !text.is_empty()) {
        None => None,
        Some(text) if crate::grammar::filter_interface_problem(text).is_none() => Some(spanned(text.to_string(), at)),
        Some(text) => {
            note(format!("`{text}` is not an interface pattern Calico accepts"));
            return None;
        }
    };
    Some(FilterRule {
        action,
        cidr,
        match_operator,
        prefix_length: rule.prefix_length.map(|lengths| (lengths.min, lengths.max)),
        source,
        interface,
        span: span(at),
    })
}
