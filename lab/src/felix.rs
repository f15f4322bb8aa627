//! What Felix does on a real node and the lab must do in its place (there is no Felix here):
//! the VXLAN forwarding entries and routes (`vxlan.calico` devices, a permanent neighbour and
//! FDB entry per remote tunnel endpoint, and the `proto 80` lines of `nodes/<node>/routes`),
//! and NAT outgoing where no compiled `rules.nft` does it. It programs from the routes file
//! apply recorded, so after each stage of `lab apply` it follows what the plan applied. It
//! removes only routes of Felix's protocol (80) and replaces only its own nft table, so it
//! never undoes what BIRD, apply or the kernel put there.

use crate::topology::{Layout, NodeHost};
use crate::{in_namespace, ip_batch, run};
use std::collections::BTreeSet;

/// The nft table the lab's NAT outgoing lives in.
pub const NAT_TABLE: &str = "calplan-lab-felix";

/// Felix's route protocol number.
const FELIX_PROTOCOL: &str = "80";

/// `ip -batch` lines that create a node's VXLAN devices (before BIRD starts, as Felix does).
pub fn vxlan_devices(node: &NodeHost) -> Vec<String> {
    let mut lines = Vec::new();
    for vtep in &node.vteps {
        let (mtu, length) = if vtep.address.is_ipv4() { (1450, 32) } else { (1430, 128) };
        lines.push(format!(
            "link add name {} type vxlan id {} local {} dev {} dstport {} nolearning",
            vtep.device,
            crate::topology::VXLAN_VNI,
            vtep.underlay,
            node.link.interface,
            crate::topology::VXLAN_PORT
        ));
        lines.push(format!("link set dev {} address {} mtu {mtu}", vtep.device, vtep.mac));
        let nodad = if vtep.address.is_ipv6() { " nodad" } else { "" };
        lines.push(format!("address add {}/{length} dev {}{nodad}", vtep.address, vtep.device));
        lines.push(format!("link set dev {} up", vtep.device));
    }
    lines
}

/// Programs a node's VXLAN neighbours, FDB entries and Felix's routes from its `routes` file,
/// and removes Felix routes the file no longer lists.
pub fn sync_node(layout: &Layout, node: &NodeHost, routes: &str) -> Result<(), String> {
    let mut lines = Vec::new();
    let mut fdb = Vec::new();
    for vtep in &node.vteps {
        for other in layout.nodes.iter().filter(|other| other.name != node.name) {
            for remote in other.vteps.iter().filter(|remote| remote.device == vtep.device) {
                lines.push(format!("neigh replace {} lladdr {} dev {} nud permanent", remote.address, remote.mac, vtep.device));
                fdb.push(format!("fdb replace {} dev {} dst {} self permanent", remote.mac, vtep.device, remote.underlay));
            }
        }
    }
    let wanted: Vec<&str> = routes.lines().filter(|line| is_felix_route(line)).collect();
    let devices: BTreeSet<&str> = node.vteps.iter().map(|vtep| vtep.device.as_str()).collect();
    for line in &wanted {
        // A route over a device this node lacks (no VXLAN of that family here) cannot load.
        if let Some(device) = device_of(line)
            && device.starts_with("vxlan")
            && !devices.contains(device)
        {
            continue;
        }
        lines.push(format!("route replace {line}"));
    }
    if !fdb.is_empty() {
        let mut input = fdb.join("\n");
        input.push('\n');
        in_namespace(&node.namespace, "bridge", &["-batch", "-"], Some(&input))?;
    }
    ip_batch(Some(&node.namespace), &lines)?;
    // Felix's routes the file no longer lists.
    let keep: BTreeSet<String> = wanted.iter().filter_map(|line| destination_of(line)).collect();
    let mut stale = Vec::new();
    for family in ["-4", "-6"] {
        let held = run("ip", &["-n", &node.namespace, family, "route", "show", "proto", FELIX_PROTOCOL], None)?;
        for line in held.lines().filter(|line| !line.starts_with(' ') && !line.starts_with('\t')) {
            let Some(destination) = destination_of(line) else { continue };
            let normal = if destination.contains('/') {
                destination.clone()
            } else {
                format!("{destination}/{}", if family == "-4" { 32 } else { 128 })
            };
            if !keep.contains(&normal) && !keep.contains(&destination) {
                let kind = if line.starts_with("blackhole") { "blackhole " } else { "" };
                stale.push(format!("route del {kind}{destination} proto {FELIX_PROTOCOL}"));
            }
        }
    }
    ip_batch(Some(&node.namespace), &stale)
}

fn is_felix_route(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    words.windows(2).any(|pair| pair == ["proto", FELIX_PROTOCOL])
}

fn device_of(line: &str) -> Option<&str> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words.windows(2).find(|pair| pair[0] == "dev").map(|pair| pair[1])
}

fn destination_of(line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    let first = words.next()?;
    let destination = if matches!(first, "blackhole" | "unreachable" | "prohibit" | "throw") { words.next()? } else { first };
    Some(destination.to_string())
}

/// NAT outgoing as Felix programs it (masquerade what leaves a `natOutgoing` pool for an
/// address outside every pool), for a node without a compiled `rules.nft`.
pub fn nat_ruleset(nat_pools: &[ipnet::IpNet], all_pools: &[ipnet::IpNet]) -> Option<String> {
    let mut out = String::from("table inet calplan-lab-felix\ndelete table inet calplan-lab-felix\ntable inet calplan-lab-felix {\n");
    let mut any = false;
    for (family, ipv4) in [("ipv4_addr", true), ("ipv6_addr", false)] {
        let nat: Vec<String> = nat_pools.iter().filter(|pool| pool.addr().is_ipv4() == ipv4).map(ToString::to_string).collect();
        if nat.is_empty() {
            continue;
        }
        any = true;
        let all: Vec<String> = all_pools.iter().filter(|pool| pool.addr().is_ipv4() == ipv4).map(ToString::to_string).collect();
        let version = if ipv4 { "4" } else { "6" };
        out.push_str(&format!(
            "  set nat_pools_v{version} {{ type {family}; flags interval; elements = {{ {} }} }}\n  set all_pools_v{version} {{ type {family}; flags interval; elements = {{ {} }} }}\n",
            nat.join(", "),
            all.join(", ")
        ));
    }
    if !any {
        return None;
    }
    out.push_str("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
    for (ip, ipv4) in [("ip", true), ("ip6", false)] {
        if nat_pools.iter().any(|pool| pool.addr().is_ipv4() == ipv4) {
            let version = if ipv4 { "4" } else { "6" };
            out.push_str(&format!("    {ip} saddr @nat_pools_v{version} {ip} daddr != @all_pools_v{version} masquerade\n"));
        }
    }
    out.push_str("  }\n}\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn felix_routes_are_told_by_their_protocol() {
        assert!(is_felix_route("172.16.0.64/26 via 172.16.0.64 dev vxlan.calico proto 80 onlink"));
        assert!(!is_felix_route("192.168.1.0/26 via 21.49.22.5 proto bird"));
        assert_eq!(device_of("172.16.0.64/26 via 172.16.0.64 dev vxlan.calico proto 80 onlink"), Some("vxlan.calico"));
        assert_eq!(destination_of("blackhole 172.16.0.0/26 proto 80").as_deref(), Some("172.16.0.0/26"));
        let rules =
            nat_ruleset(&["192.168.0.0/16".parse().unwrap()], &["192.168.0.0/16".parse().unwrap(), "fd00::/64".parse().unwrap()]).unwrap();
        assert!(rules.contains("ip saddr @nat_pools_v4 ip daddr != @all_pools_v4 masquerade"), "{rules}");
        assert!(!rules.contains("ip6 saddr"));
    }
}
