use super::{SHOW_AT_MOST, count};
use calplan_diagnostics::{Diagnostic, Diagnostics, Span, declare_rule};
use calplan_model::{AllowedUse, Analysis, Pool};
use ipnet::IpNet;
use std::collections::BTreeMap;

declare_rule! {
    /// ## What it does
    /// Checks that pools, service ranges (`serviceClusterIPs`, `bgp.serviceExternalIPs`,
    /// `bgp.serviceLoadBalancerIPs`) and host networks (the subnets of the nodes' and routers'
    /// addresses) do not overlap one another. Nodes and routers sharing a subnet is normal and
    /// not reported; a pool used only for LoadBalancer addresses may lie inside the external
    /// and LoadBalancer service ranges it serves.
    ///
    /// The check sorts the ranges and sweeps them once, keeping the chain of ranges that
    /// contain the current one (two CIDRs are always nested or disjoint), so it costs
    /// `O(n log n)` for `n` ranges rather than comparing every pair.
    ///
    /// Two pools overlapping cannot be allowed (Calico refuses the second pool); the other
    /// overlaps can.
    ///
    /// ## Why is this bad?
    /// Calico refuses a pool that overlaps another (`IPPool(b) CIDR overlaps with IPPool(a)
    /// CIDR 10.0.0.0/16`) because IPAM would hand the same address out twice. A pool over a
    /// service range or a host network sends traffic for services or hosts to pods, or the
    /// reverse.
    ///
    /// ## Example
    /// ```yaml
    /// serviceClusterIPs: [10.96.0.0/12]
    /// pools:
    ///   - {name: default-ipv4-ippool, cidr: 10.96.0.0/16}   # inside the service range
    /// ```
    pub static RULE = ("E0301", "overlapping-prefixes", Error, "pools, service ranges or host networks that overlap");
}

/// Which list of service IPs a range is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServiceField {
    Cluster,
    External,
    LoadBalancer,
}

impl ServiceField {
    fn as_str(self) -> &'static str {
        match self {
            ServiceField::Cluster => "serviceClusterIPs",
            ServiceField::External => "bgp.serviceExternalIPs",
            ServiceField::LoadBalancer => "bgp.serviceLoadBalancerIPs",
        }
    }
}

/// A node or router whose address lies in a host network.
struct Host<'a> {
    kind: &'static str,
    name: &'a str,
    address: String,
    span: Span,
}

enum Owner<'a> {
    Pool(&'a Pool),
    Service(ServiceField),
    /// One host network, with every node and router on it.
    Hosts(Vec<Host<'a>>),
}

struct Range<'a> {
    cidr: IpNet,
    span: Span,
    owner: Owner<'a>,
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    let mut ranges: Vec<Range> = Vec::new();
    for pool in &model.pools {
        ranges.push(Range { cidr: pool.cidr.trunc(), span: pool.cidr.span, owner: Owner::Pool(pool) });
    }
    for (field, list) in [
        (ServiceField::Cluster, &model.service_cluster_ips),
        (ServiceField::External, &model.bgp.service_external_ips),
        (ServiceField::LoadBalancer, &model.bgp.service_load_balancer_ips),
    ] {
        for cidr in list {
            ranges.push(Range { cidr: cidr.trunc(), span: cidr.span, owner: Owner::Service(field) });
        }
    }
    // One range per host network, however many hosts share it: 5,000 nodes on a few subnets
    // are a few ranges.
    let mut host_networks: BTreeMap<IpNet, Vec<Host>> = BTreeMap::new();
    for node in &model.nodes {
        let addresses = node
            .ipv4_address
            .as_ref()
            .map(|address| (IpNet::V4(address.trunc()), address.to_string(), address.span))
            .into_iter()
            .chain(node.ipv6_address.as_ref().map(|address| (IpNet::V6(address.trunc()), address.to_string(), address.span)));
        for (network, address, span) in addresses {
            host_networks.entry(network).or_default().push(Host { kind: "node", name: &node.name.value, address, span });
        }
    }
    for router in &model.routers {
        let host = Host { kind: "router", name: &router.name.value, address: router.address.to_string(), span: router.address.span };
        host_networks.entry(router.address.trunc()).or_default().push(host);
    }
    for (cidr, hosts) in host_networks {
        ranges.push(Range { cidr, span: hosts[0].span, owner: Owner::Hosts(hosts) });
    }

    let cidrs: Vec<IpNet> = ranges.iter().map(|range| range.cidr).collect();
    // Per pool or service range, the host networks it overlaps: one diagnostic each.
    let mut over_hosts: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (outer, inner) in containments(&cidrs) {
        let (first, second) = (&ranges[outer], &ranges[inner]);
        match (&first.owner, &second.owner) {
            (Owner::Hosts(_), Owner::Hosts(_)) => {}
            (Owner::Hosts(_), _) => over_hosts.entry(inner).or_default().push(outer),
            (_, Owner::Hosts(_)) => over_hosts.entry(outer).or_default().push(inner),
            (Owner::Pool(_), Owner::Pool(_)) => diagnostics.push(pools_overlap(first, second)),
            (Owner::Pool(pool), Owner::Service(field)) | (Owner::Service(field), Owner::Pool(pool)) => {
                if !serves_load_balancers(pool, *field) {
                    let (pool_range, service) = if matches!(first.owner, Owner::Pool(_)) { (first, second) } else { (second, first) };
                    diagnostics.push(pool_overlaps_service(pool, pool_range, service, *field));
                }
            }
            (Owner::Service(a), Owner::Service(b)) => {
                if a != b {
                    diagnostics.push(services_overlap(first, *a, second, *b));
                }
            }
        }
    }
    for (index, hosts) in over_hosts {
        let hosts: Vec<&Range> = hosts.iter().map(|&host| &ranges[host]).collect();
        diagnostics.push(overlaps_hosts(&ranges[index], &hosts));
    }
}

/// Every pair `(outer, inner)` of indices where `cidrs[outer]` contains `cidrs[inner]` (equal
/// CIDRs included, each pair once), for truncated CIDRs.
///
/// Sorted by network address and then prefix length, a range comes after every range that
/// contains it, and the ranges that contain it are exactly the chain on the stack once the
/// ranges that end before it are popped: CIDRs are nested or disjoint, never partly
/// overlapping.
fn containments(cidrs: &[IpNet]) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..cidrs.len()).collect();
    order.sort_by_key(|&index| (cidrs[index].network(), cidrs[index].prefix_len(), index));
    let mut stack: Vec<usize> = Vec::new();
    let mut pairs = Vec::new();
    for index in order {
        while let Some(&top) = stack.last() {
            if cidrs[top].contains(&cidrs[index]) {
                break;
            }
            stack.pop();
        }
        pairs.extend(stack.iter().map(|&outer| (outer, index)));
        stack.push(index);
    }
    pairs
}

/// A LoadBalancer-only pool is where Calico takes the addresses it advertises as external and
/// LoadBalancer service ranges, so it belongs inside them.
fn serves_load_balancers(pool: &Pool, field: ServiceField) -> bool {
    pool.allowed_uses.value == [AllowedUse::LoadBalancer] && field != ServiceField::Cluster
}

/// The later of two ranges in the file, then the earlier.
fn later_first<'r, 'a>(a: &'r Range<'a>, b: &'r Range<'a>) -> (&'r Range<'a>, &'r Range<'a>) {
    if a.span.start >= b.span.start { (a, b) } else { (b, a) }
}

fn pools_overlap(a: &Range, b: &Range) -> Diagnostic {
    let (new, other) = later_first(a, b);
    let (Owner::Pool(new_pool), Owner::Pool(other_pool)) = (&new.owner, &other.owner) else { unreachable!("two pools") };
    Diagnostic::new(
        &RULE,
        new.span,
        format!("IPPool({}) CIDR overlaps with IPPool({}) CIDR {}", new_pool.name.value, other_pool.name.value, other.cidr),
    )
    .label(format!("overlaps `{}`", other_pool.name.value))
    .secondary(other.span, format!("`{}` is {}", other_pool.name.value, other.cidr))
    .help(
        "give each pool a range of its own: IPAM would hand the same address to two pods, and Calico refuses to create the second pool; to move pods to a new pool, give it a CIDR outside the old one",
    )    // Calico refuses the second pool: `calico/ippools.yaml` could not be applied.
    .not_overridable()
}

fn pool_overlaps_service(pool: &Pool, pool_range: &Range, service: &Range, field: ServiceField) -> Diagnostic {
    Diagnostic::new(
        &RULE,
        pool_range.span,
        format!("pool `{}` ({}) overlaps service range {} in `{}`", pool.name.value, pool_range.cidr, service.cidr, field.as_str()),
    )
    .label("overlaps service addresses")
    .secondary(service.span, format!("service range in `{}`", field.as_str()))
    .help(format!(
        "pods and services must not share addresses: traffic for one would be taken for the other; choose a pool outside {}",
        service.cidr
    ))
}

fn services_overlap(a: &Range, a_field: ServiceField, b: &Range, b_field: ServiceField) -> Diagnostic {
    let (later, earlier) = later_first(a, b);
    let (later_field, earlier_field) = if std::ptr::eq(later, a) { (a_field, b_field) } else { (b_field, a_field) };
    Diagnostic::new(
        &RULE,
        later.span,
        format!("service range {} in `{}` overlaps {} in `{}`", later.cidr, later_field.as_str(), earlier.cidr, earlier_field.as_str()),
    )
    .label(format!("overlaps `{}`", earlier_field.as_str()))
    .secondary(earlier.span, format!("in `{}`", earlier_field.as_str()))
    .help("cluster IPs, external IPs and LoadBalancer IPs each need a range of their own: kube-proxy and BIRD treat them differently")
}

fn overlaps_hosts(range: &Range, host_networks: &[&Range]) -> Diagnostic {
    let (subject, kind) = match &range.owner {
        Owner::Pool(pool) => (format!("pool `{}` ({})", pool.name.value, range.cidr), "pod"),
        Owner::Service(field) => (format!("service range {} in `{}`", range.cidr, field.as_str()), "service"),
        Owner::Hosts(_) => unreachable!("host networks do not conflict with each other"),
    };
    let hosts: Vec<&Host> = host_networks
        .iter()
        .flat_map(|network| match &network.owner {
            Owner::Hosts(hosts) => hosts.iter(),
            _ => [].iter(),
        })
        .collect();
    let whose = if hosts.len() <= 2 {
        hosts.iter().map(|host| format!("{} `{}`", host.kind, host.name)).collect::<Vec<_>>().join(" and ")
    } else {
        let nodes = hosts.iter().filter(|host| host.kind == "node").count();
        let routers = hosts.len() - nodes;
        match (nodes, routers) {
            (_, 0) => count(nodes, "node"),
            (0, _) => count(routers, "router"),
            _ => format!("{} and {}", count(nodes, "node"), count(routers, "router")),
        }
    };
    let message = match host_networks {
        [network] => format!("{subject} overlaps {}, the subnet of {whose}", network.cidr),
        _ => format!("{subject} overlaps the subnets of {whose}"),
    };
    let subnets: Vec<String> = host_networks.iter().map(|network| network.cidr.to_string()).collect();
    let mut diagnostic = Diagnostic::new(&RULE, range.span, message).label("overlaps host addresses");
    for host in hosts.iter().take(SHOW_AT_MOST) {
        diagnostic = diagnostic.secondary(host.span, format!("{} `{}` is {}", host.kind, host.name, host.address));
    }
    let outside = if subnets.len() <= SHOW_AT_MOST {
        subnets.join(", ")
    } else {
        format!("{} and {} more", subnets[..SHOW_AT_MOST].join(", "), subnets.len() - SHOW_AT_MOST)
    };
    diagnostic.help(format!(
        "{kind} addresses must not be host addresses: traffic for the hosts would be routed as {kind} traffic, or the reverse; choose a range outside {outside}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{check_rule, intent};

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|text| text.parse().unwrap()).collect()
    }

    #[test]
    fn the_sweep_finds_every_containment_and_nothing_else() {
        let cidrs =
            nets(&["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "11.0.0.0/8", "10.2.0.0/16", "10.1.0.0/16", "fd00::/8", "10.0.0.0/32"]);
        let mut pairs = containments(&cidrs);
        pairs.sort();
        assert_eq!(pairs, [(0, 1), (0, 2), (0, 4), (0, 5), (0, 7), (1, 2), (1, 5), (5, 2)]);
    }

    #[test]
    fn the_sweep_agrees_with_comparing_every_pair() {
        // A deterministic spread of nested and disjoint prefixes, both families.
        let mut cidrs = Vec::new();
        for index in 0u32..300 {
            let prefix = 8 + (index * 7) % 25;
            let address = std::net::Ipv4Addr::from(index.wrapping_mul(2_654_435_761));
            cidrs.push(IpNet::V4(ipnet::Ipv4Net::new(address, prefix as u8).unwrap().trunc()));
        }
        cidrs.push("fd00::/16".parse().unwrap());
        cidrs.push("fd00:1::/32".parse().unwrap());
        let mut swept = containments(&cidrs);
        swept.sort();
        let mut brute = Vec::new();
        for outer in 0..cidrs.len() {
            for inner in 0..cidrs.len() {
                let contains = cidrs[outer].contains(&cidrs[inner]);
                let ordered = (cidrs[outer].prefix_len(), outer) < (cidrs[inner].prefix_len(), inner);
                if outer != inner && contains && (cidrs[outer] != cidrs[inner] || ordered) {
                    brute.push((outer, inner));
                }
            }
        }
        brute.sort();
        assert_eq!(swept, brute);
    }

    #[test]
    fn shared_node_subnets_are_fine_and_a_pool_over_them_is_one_diagnostic() {
        let nodes: String = (1..=50).map(|n| format!("    - {{name: n{n}, ipv4Address: 21.49.{}.{n}/24}}\n", n % 2)).collect();
        let text = intent(&format!(
            "  serviceClusterIPs: [10.96.0.0/12]\n  bgp:\n    serviceLoadBalancerIPs: [172.20.0.0/24]\n  pools:\n    - {{name: a, cidr: 10.244.0.0/16}}\n    - {{name: b, cidr: 10.244.128.0/20}}\n    - {{name: c, cidr: 21.49.0.0/16}}\n    - {{name: d, cidr: 10.100.0.0/16}}\n    - {{name: lb, cidr: 172.20.0.0/24, allowedUses: [LoadBalancer]}}\n  nodes:\n{nodes}"
        ));
        let found = check_rule(&text, "E0301");
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].contains("IPPool(b) CIDR overlaps with IPPool(a) CIDR 10.244.0.0/16"), "{found:#?}");
        assert!(found[1].contains("pool `c` (21.49.0.0/16) overlaps the subnets of 50 nodes"), "{found:#?}");
        assert!(found[2].contains("pool `d` (10.100.0.0/16) overlaps service range 10.96.0.0/12 in `serviceClusterIPs`"), "{found:#?}");
    }
}
