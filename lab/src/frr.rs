//! FRR configurations for the BGP speakers the lab emulates (external peers, and routers whose
//! compiled `frr.conf` is not there to run), written from the sessions the nodes' BIRD expects:
//! one `router bgp` per `bgpd`, a neighbour per node session, with the lab's password values,
//! TTL security and multihop as BIRD's side has them. Pure text; `up` writes and runs it.

use crate::topology::{BgpInstance, Speaker};
use calplan_calico::resources::SecretKeyRef;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// The value the lab gives a referenced secret: the same on both ends of a session, and never
/// a real password (the lab never reads one).
pub fn lab_password(secret: &SecretKeyRef) -> String {
    format!("lab-{}-{}", secret.name, secret.key)
}

/// A router's password file for apply, with the lab's values for every Secret its `frr.conf`
/// names.
pub fn frr_secrets(frr_conf: &str) -> Option<String> {
    let references = calplan_targets::routers::frr_password_references(frr_conf);
    (!references.is_empty()).then(|| calplan_targets::routers::frr_secrets_file(&lab_passwords(references)))
}

/// `bird-secrets.conf` for a node, with the lab's values for every Secret its `bird.cfg` names.
pub fn bird_secrets(bird_cfg: &str) -> Option<String> {
    let references = calplan_targets::bird::password_references(bird_cfg);
    if references.is_empty() {
        return None;
    }
    calplan_targets::bird::secrets_file(&lab_passwords(references)).ok()
}

/// The lab's value for each referenced Secret key.
fn lab_passwords(references: BTreeSet<(String, String)>) -> BTreeMap<SecretKeyRef, String> {
    references
        .into_iter()
        .map(|(name, key)| {
            let secret = SecretKeyRef { name, key, optional: None };
            let value = lab_password(&secret);
            (secret, value)
        })
        .collect()
}

/// The configuration of one `bgpd`.
pub fn bgpd_config(speaker: &Speaker, instance: &BgpInstance) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out, "! BGP speaker `{}` (AS {}) from {}, emulated by the calplan lab.", speaker.name, speaker.as_number, instance.local);
    out.push_str("frr defaults traditional\n");
    let _ = writeln!(out, "hostname {}", speaker.name);
    out.push_str("!\n");
    let _ = writeln!(out, "router bgp {}", speaker.as_number);
    let _ = writeln!(out, " bgp router-id {}", instance.router_id);
    out.push_str(" no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n no bgp network import-check\n");
    if speaker.router {
        out.push_str(" bgp bestpath as-path multipath-relax\n");
    }
    for neighbor in &instance.neighbors {
        let address = neighbor.address;
        let _ = writeln!(out, " neighbor {address} remote-as {}", neighbor.remote_as);
        let _ = writeln!(out, " neighbor {address} description {} {}", neighbor.node, neighbor.protocol);
        let _ = writeln!(out, " neighbor {address} update-source {}", instance.local);
        if neighbor.port != 179 {
            let _ = writeln!(out, " neighbor {address} port {}", neighbor.port);
        }
        if let Some(secret) = &neighbor.password {
            let _ = writeln!(out, " neighbor {address} password {}", lab_password(secret));
        }
        // FRR takes TTL security or multihop, not both; BIRD's side decides which.
        if neighbor.ttl_security > 0 {
            let _ = writeln!(out, " neighbor {address} ttl-security hops {}", neighbor.ttl_security);
        } else if neighbor.multihop && neighbor.remote_as != speaker.as_number {
            let _ = writeln!(out, " neighbor {address} ebgp-multihop 8");
        }
        let _ = writeln!(out, " neighbor {address} timers connect 2");
    }
    for (family, ipv4) in [("ipv4", true), ("ipv6", false)] {
        let neighbors: Vec<_> = instance.neighbors.iter().filter(|neighbor| neighbor.address.is_ipv4() == ipv4).collect();
        if neighbors.is_empty() {
            continue;
        }
        let _ = writeln!(out, " address-family {family} unicast");
        for neighbor in neighbors {
            let _ = writeln!(out, "  neighbor {} activate", neighbor.address);
        }
        // A router learns each block from several nodes (every reflector reflects it): it
        // load-shares over them, as the nodes themselves do.
        if speaker.router {
            out.push_str("  maximum-paths 16\n  maximum-paths ibgp 16\n");
        }
        out.push_str(" exit-address-family\n");
    }
    out.push_str("exit\n!\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Neighbor;
    use std::path::PathBuf;

    #[test]
    fn neighbours_carry_what_birds_side_expects() {
        let neighbor = |address: &str, ttl, multihop| Neighbor {
            node: "rack1-rr".into(),
            address: address.parse().unwrap(),
            remote_as: 64600,
            port: 1790,
            password: (ttl > 0).then(|| SecretKeyRef { name: "tor".into(), key: "password".into(), optional: None }),
            ttl_security: ttl,
            multihop,
            protocol: "Node_10_1_0_1".into(),
        };
        let instance = BgpInstance {
            local: "10.1.0.1".parse().unwrap(),
            port: 179,
            router_id: "10.1.0.1".parse().unwrap(),
            dir: PathBuf::from("/tmp/x"),
            neighbors: vec![neighbor("10.1.0.10", 2, false), neighbor("2001:db8::10", 0, true)],
        };
        let speaker = Speaker {
            name: "as65010".into(),
            namespace: "cpl-x-e0".into(),
            as_number: 65010,
            root: PathBuf::from("/tmp"),
            links: Vec::new(),
            loopbacks: Vec::new(),
            gateways: Vec::new(),
            instances: vec![instance.clone()],
            router: false,
        };
        let text = bgpd_config(&speaker, &instance);
        assert!(text.contains(" neighbor 10.1.0.10 password lab-tor-password\n"), "{text}");
        assert!(text.contains(" neighbor 10.1.0.10 ttl-security hops 2\n"));
        assert!(text.contains(" neighbor 10.1.0.10 port 1790\n"));
        assert!(text.contains(" neighbor 2001:db8::10 ebgp-multihop 8\n"));
        assert!(text.contains(" address-family ipv6 unicast\n  neighbor 2001:db8::10 activate\n"));
        let secrets = bird_secrets("  password bgp_password_tor_password_e5359601;    # Secret tor, key password\n").unwrap();
        assert!(secrets.contains("\"lab-tor-password\""), "{secrets}");
    }
}
