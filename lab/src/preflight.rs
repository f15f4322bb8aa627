//! `lab up`'s first step: every program the lab will run, found before anything is created.
//! A missing one refuses the lab with the whole list and the command that installs each (a
//! missing `ncat` would otherwise let `up` succeed and `verify` report TCP gaps).
//!
//! Which programs depend on the lab: BIRD 2 and `birdc` for a BIRD 2 lab; Debian's BIRD 1.6
//! (`bird`, `birdc`, and `bird6` for nodes with IPv6) and `etcd` for a calico-node lab; FRR's
//! daemons and `vtysh` where a router or an external peer speaks BGP, `frr-reload.py` where a
//! router loads a compiled `frr.conf`; the rest always. It also warns when the kernel's ARP
//! table, shared by every namespace, is nearly full.

use calplan_model::{Analysis, NodeAgent, Platform};
use std::path::{Path, PathBuf};

/// What preflight found that the lab needs later.
#[derive(Debug, Default)]
pub struct Programs {
    /// BIRD 1.6's folder, in calico-node mode.
    pub bird16: Option<PathBuf>,
    /// What may keep the lab from working, though nothing is missing.
    pub warnings: Vec<String>,
}

/// One program the lab needs, and how to get it.
struct Needed {
    program: &'static str,
    what: &'static str,
    install: &'static str,
}

const fn needed(program: &'static str, what: &'static str, install: &'static str) -> Needed {
    Needed { program, what, install }
}

/// Whether `program` (a name looked up on `PATH`, or an absolute path) can be run.
pub fn available(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &Path| path.metadata().is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        return executable(Path::new(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).any(|directory| executable(&directory.join(program)))
}

/// Checks every program `lab up` will run for this intent and node agent.
pub fn check(analysis: &Analysis, agent: NodeAgent) -> Result<Programs, String> {
    let model = &analysis.model;
    let mut list = vec![
        needed("ip", "namespaces, links, addresses, routes", "apt-get install iproute2"),
        needed("bridge", "VXLAN forwarding entries", "apt-get install iproute2"),
        needed("nsenter", "running programs in the lab's namespaces", "apt-get install util-linux"),
        needed("sysctl", "forwarding and proxy ARP", "apt-get install procps"),
        needed("kill", "ending the lab's processes", "apt-get install procps"),
        needed("ping", "reachability checks and probes", "apt-get install iputils-ping"),
        needed("ncat", "the pods' and the outside host's listeners", "apt-get install ncat"),
        needed("nft", "NAT outgoing and calplan's rulesets", "apt-get install nftables"),
    ];
    match agent {
        NodeAgent::Bird => {
            list.push(needed("bird", "BIRD 2 on the nodes", "apt-get install bird2"));
            list.push(needed("birdc", "BIRD 2's client", "apt-get install bird2"));
        }
        NodeAgent::CalicoNode => list.push(needed("etcd", "the lab's Calico datastore", "apt-get install etcd-server")),
    }
    let bgp_routers = model.routers.iter().any(|router| *router.platform == Platform::Frr);
    let peers = analysis
        .peerings
        .topology
        .nodes
        .iter()
        .enumerate()
        .any(|(index, _)| analysis.peerings.for_node(index).iter().any(|peering| peering.remote_node.is_none()));
    if bgp_routers || peers || !model.routers.is_empty() {
        list.push(needed("/usr/lib/frr/bgpd", "FRR for BGP routers and peers", "apt-get install frr"));
        list.push(needed("/usr/lib/frr/zebra", "FRR's routing manager for routers", "apt-get install frr"));
        list.push(needed("/usr/lib/frr/staticd", "FRR's static routes for routers", "apt-get install frr"));
        list.push(needed("vtysh", "FRR's shell", "apt-get install frr"));
    }
    if bgp_routers {
        list.push(needed("/usr/lib/frr/frr-reload.py", "apply's reload of a router's frr.conf", "apt-get install frr-pythontools"));
    }
    let mut missing: Vec<String> = list
        .iter()
        .filter(|item| !available(item.program))
        .map(|item| format!("  {} ({}): {}", item.program, item.what, item.install))
        .collect();
    let mut programs = Programs::default();
    match agent {
        NodeAgent::Bird => {
            if available("bird") {
                // BIRD prints its version on standard error.
                let version = std::process::Command::new("bird")
                    .arg("--version")
                    .output()
                    .map(|output| format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
                    .unwrap_or_default();
                if !version.contains("BIRD version 2.") {
                    missing.push(format!("  bird is not BIRD 2 ({}): apt-get install bird2", version.trim()));
                }
            }
        }
        NodeAgent::CalicoNode => {
            let install = "apt-get download bird && dpkg -x bird_*.deb target/bird16 (Debian's BIRD 1.6, which conflicts with bird2 as a package), or set CALPLAN_BIRD16 to its usr/sbin/bird";
            match crate::daemons::find_bird16() {
                None => missing.push(format!("  BIRD 1.6 (calico-node's BIRD): {install}")),
                Some(dir) => {
                    let mut wanted = vec!["bird", "birdc"];
                    if model.nodes.iter().any(|node| node.ipv6_address.is_some()) {
                        wanted.push("bird6");
                    }
                    for program in wanted {
                        if !available(&dir.join(program).display().to_string()) {
                            missing.push(format!("  {} (BIRD 1.6): {install}", dir.join(program).display()));
                        }
                    }
                    programs.bird16 = Some(dir);
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(format!("nothing was created: the lab needs programs this machine lacks:\n{}", missing.join("\n")));
    }
    if let Some((entries, limit)) = neighbour_table() {
        // The kernel keeps one ARP table for every namespace: once its collectable entries
        // reach the limit, no lab host can resolve another's address (BGP fails with "No route
        // to host"). The count includes permanent entries (VXLAN's), which the limit spares,
        // so this is a warning, not a refusal.
        if entries * 10 >= limit * 9 {
            programs.warnings.push(format!(
                "the kernel's ARP table, which every network namespace shares, holds {entries} entries and takes at most \
                 {limit} that are not permanent (`net.ipv4.neigh.default.gc_thresh3`): if other labs fill it, this lab's hosts \
                 cannot resolve one another (\"No route to host\")"
            ));
        }
    }
    Ok(programs)
}

/// The kernel's ARP table: its entries (all namespaces together) and its hard limit.
fn neighbour_table() -> Option<(u64, u64)> {
    let stats = std::fs::read_to_string("/proc/net/stat/arp_cache").ok()?;
    let entries = u64::from_str_radix(stats.lines().nth(1)?.split_whitespace().next()?, 16).ok()?;
    let limit = std::fs::read_to_string("/proc/sys/net/ipv4/neigh/default/gc_thresh3").ok()?.trim().parse().ok()?;
    Some((entries, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_the_path_or_by_their_path() {
        assert!(available("sh"));
        assert!(available("/bin/sh"));
        assert!(!available("calplan-no-such-program"));
        assert!(!available("/nonexistent/bird"));
    }
}
