//! calico-node's node address autodetection, simulated over a node's interface inventory.
//!
//! Follows `node/pkg/lifecycle/startup/autodetection`: interfaces are walked in the reverse of
//! the kernel's order and addresses in kernel order; regexes are matched unanchored; the
//! default exclusion list applies to `first-found` and `skip-interface`. `can-reach` is
//! simulated by a route lookup over the node's own connected subnets; what depends on the
//! node's default route or on Kubernetes cannot be simulated, and says so.

use crate::model::{AutodetectionMethod, CanReachTarget, Interface};
use ipnet::IpNet;
use regex::Regex;
use std::net::IpAddr;
use std::sync::OnceLock;

/// calico-node's `DEFAULT_INTERFACES_TO_EXCLUDE`.
pub const DEFAULT_EXCLUDED_INTERFACES: &[&str] = &[
    "^docker.*",
    "^cbr.*",
    "^dummy.*",
    "^podman.*",
    "^virbr.*",
    "^lxcbr.*",
    "^veth.*",
    "^lo",
    "^br-.*",
    "^cali.*",
    "^tunl.*",
    "^flannel.*",
    "^kube-ipvs.*",
    "^cni.*",
    r"^vxlan\.calico.*",
    r"^vxlan-v6\.calico.*",
    r"^wireguard\.cali.*",
    r"^wg-v6\.cali.*",
    "^nodelocaldns.*",
];

fn default_exclusions() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| Regex::new(&join(DEFAULT_EXCLUDED_INTERFACES.iter().copied())).expect("valid regex"))
}

/// Calico joins patterns as `(r1)|(r2)|...`.
fn join<'a>(patterns: impl Iterator<Item = &'a str>) -> String {
    patterns.map(|pattern| format!("({pattern})")).collect::<Vec<_>>().join("|")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// What a method would pick on a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detection {
    /// The address (with the interface's prefix length) and the interface it is on.
    Found { address: IpNet, interface: String },
    /// calico-node would fail: `failed to autodetect an IPv4 address`.
    NotFound { reason: String },
    /// The answer depends on something the inventory does not describe.
    CannotSimulate { reason: String },
}

/// Simulates `method` on a node with these interfaces (in kernel order).
pub fn detect(method: &AutodetectionMethod, interfaces: &[Interface], family: Family) -> Detection {
    let candidates = |include: Option<&Regex>, exclude: Option<&Regex>, cidrs: Option<&[IpNet]>| {
        interfaces
            .iter()
            .rev()
            .filter(|interface| include.is_none_or(|pattern| pattern.is_match(&interface.name)))
            .filter(|interface| exclude.is_none_or(|pattern| !pattern.is_match(&interface.name)))
            .flat_map(|interface| interface.addresses.iter().map(move |address| (interface, address.value)))
            .filter(|(_, address)| matches_family(address.addr(), family) && is_global_unicast(address.addr()))
            .find(|(_, address)| cidrs.is_none_or(|cidrs| cidrs.iter().any(|cidr| cidr.contains(&address.addr()))))
            .map(|(interface, address)| Detection::Found { address, interface: interface.name.value.clone() })
    };
    let not_found = |what: &str| Detection::NotFound { reason: format!("no {what} has a global unicast {} address", family_name(family)) };
    match method {
        AutodetectionMethod::FirstFound => {
            candidates(None, Some(default_exclusions()), None).unwrap_or_else(|| not_found("interface outside Calico's exclusion list"))
        }
        AutodetectionMethod::Interface(patterns) => match Regex::new(&join(patterns.iter().map(String::as_str))) {
            Ok(include) => candidates(Some(&include), None, None).unwrap_or_else(|| not_found("matching interface")),
            Err(error) => Detection::NotFound { reason: error.to_string() },
        },
        AutodetectionMethod::SkipInterface(patterns) => {
            let all = DEFAULT_EXCLUDED_INTERFACES.iter().copied().chain(patterns.iter().map(String::as_str));
            match Regex::new(&join(all)) {
                Ok(exclude) => candidates(None, Some(&exclude), None).unwrap_or_else(|| not_found("remaining interface")),
                Err(error) => Detection::NotFound { reason: error.to_string() },
            }
        }
        AutodetectionMethod::Cidr(cidrs) => {
            candidates(None, None, Some(cidrs)).unwrap_or_else(|| not_found("address inside the given CIDRs on any interface"))
        }
        AutodetectionMethod::CanReach(CanReachTarget::Hostname(host)) => {
            Detection::CannotSimulate { reason: format!("`can-reach={host}` resolves a hostname at start-up, which calplan does not do") }
        }
        AutodetectionMethod::CanReach(CanReachTarget::Address(destination)) => {
            // The kernel picks the source address of the most specific connected route.
            let best = interfaces
                .iter()
                .flat_map(|interface| interface.addresses.iter().map(move |address| (interface, address.value)))
                .filter(|(_, address)| matches_family(address.addr(), family) && address.contains(destination))
                .max_by_key(|(_, address)| address.prefix_len());
            match best {
                Some((interface, address)) => Detection::Found { address, interface: interface.name.value.clone() },
                None => Detection::CannotSimulate {
                    reason: format!(
                        "{destination} is outside every subnet on the node, so the answer depends on its default route, which the inventory does not describe"
                    ),
                },
            }
        }
        AutodetectionMethod::KubernetesInternalIp => Detection::CannotSimulate {
            reason: "`kubernetes-internal-ip` reads the Kubernetes Node's InternalIP, which calplan does not see".to_string(),
        },
    }
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

fn matches_family(address: IpAddr, family: Family) -> bool {
    matches!((address, family), (IpAddr::V4(_), Family::V4) | (IpAddr::V6(_), Family::V6))
}

/// Go's `net.IP.IsGlobalUnicast`: not loopback, link-local, multicast, unspecified or the
/// IPv4 broadcast address. Private ranges count.
pub fn is_global_unicast(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_link_local() || v4.is_multicast() || v4.is_unspecified() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_loopback() || v6.is_multicast() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calplan_diagnostics::{Span, Spanned};

    fn interfaces(list: &[(&str, &[&str])]) -> Vec<Interface> {
        list.iter()
            .map(|(name, addresses)| Interface {
                name: Spanned::new(name.to_string(), Span::default()),
                addresses: addresses.iter().map(|a| Spanned::new(a.parse().unwrap(), Span::default())).collect(),
            })
            .collect()
    }

    fn found(detection: Detection) -> String {
        match detection {
            Detection::Found { address, interface } => format!("{interface} {address}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn first_found_walks_interfaces_in_reverse_and_skips_excluded() {
        let list = interfaces(&[("eth0", &["21.49.22.4/24"]), ("eth1", &["10.0.0.4/8"]), ("docker0", &["172.17.0.1/16"])]);
        // The seed's trap: eth1 is listed after eth0, so first-found picks it.
        assert_eq!(found(detect(&AutodetectionMethod::FirstFound, &list, Family::V4)), "eth1 10.0.0.4/8");
        let reach = AutodetectionMethod::CanReach(CanReachTarget::Address("21.49.22.1".parse().unwrap()));
        assert_eq!(found(detect(&reach, &list, Family::V4)), "eth0 21.49.22.4/24");
    }

    #[test]
    fn interface_regexes_are_unanchored() {
        let list = interfaces(&[("eth0", &["21.49.22.4/24"]), ("veth0abc", &["10.9.0.1/24"])]);
        let method = AutodetectionMethod::Interface(vec!["eth0".into()]);
        assert_eq!(found(detect(&method, &list, Family::V4)), "veth0abc 10.9.0.1/24");
    }

    #[test]
    fn what_cannot_be_simulated_says_so() {
        let list = interfaces(&[("eth0", &["21.49.22.4/24"])]);
        let reach = AutodetectionMethod::CanReach(CanReachTarget::Address("8.8.8.8".parse().unwrap()));
        assert!(matches!(detect(&reach, &list, Family::V4), Detection::CannotSimulate { .. }));
        assert!(matches!(detect(&AutodetectionMethod::KubernetesInternalIp, &list, Family::V4), Detection::CannotSimulate { .. }));
        let only_excluded = interfaces(&[("docker0", &["172.17.0.1/16"]), ("lo", &["127.0.0.1/8"])]);
        assert!(matches!(detect(&AutodetectionMethod::FirstFound, &only_excluded, Family::V4), Detection::NotFound { .. }));
    }
}
