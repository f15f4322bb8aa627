//! The router artifacts (`routes.sh`, `frr.conf`, `ios.cfg`, `junos.set`) and `calplan
//! routes`: every `frr.conf` through `vtysh --dryrun -f`, every `routes.sh` through `sh -n`
//! and run for real in a namespace of its own (twice, beside stale and foreign routes), FRR's
//! BGP session with BIRD nodes run for real, and the goldens of the scenarios with an
//! `expected/` folder. IOS and Junos have no checker that runs here: their files are parsed
//! and held to the same routes and sessions as the files that are checked (tests named
//! `…_no_real_checker`).

use crate::cli::calplan;
use crate::golden;
use crate::rules::{checked_text, interface};
use crate::scenarios::{artifacts_named, compile, pinned_scenarios, relative, valid_scenarios};
use calplan::netns::{self, Namespace};
use calplan::pipeline::Checked;
use calplan_targets::Output;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const ROUTER_FILES: [&str; 4] = ["routes.sh", "frr.conf", "ios.cfg", "junos.set"];

/// Routers of every kind the intent allows: static ECMP and single routes, per-block routes
/// (`aggregate: false`, with a holder off the router's subnet), services, explicit CIDRs and a
/// `/32`, a disabled pool, an IPv6 router that also speaks BGP, an iBGP router peering with
/// the reflectors, and an eBGP router peering with every node (one of them off its subnet).
const MATRIX: &str = r#"apiVersion: calplan/v1
kind: ClusterIntent
metadata: {name: matrix}
spec:
  serviceClusterIPs: [10.96.0.0/12, "fd00:96::/108"]
  bgp:
    asNumber: 64512
    nodeToNodeMesh: false
    advertiseServiceClusterIPs: true
    routeReflectors:
      - clusterID: 1.0.0.1
        nodes: [n1]
  pools:
    - {name: pods, cidr: 10.244.0.0/16, blockSize: 24, natOutgoing: true}
    - {name: old, cidr: 10.245.0.0/16, blockSize: 24, disabled: true}
    - {name: pods-v6, cidr: "fd00:10::/64", blockSize: 122}
  nodes:
    - {name: n1, ipv4Address: 10.0.0.11/24, ipv6Address: "2001:db8::11/64"}
    - {name: n2, ipv4Address: 10.0.0.12/24, ipv6Address: "2001:db8::12/64"}
    - {name: n3, ipv4Address: 10.0.1.13/24}
  routers:
    - name: edge-linux
      platform: linux
      address: 10.0.0.1/24
      staticRoutes:
        - {destination: pools, via: [n1, n2]}
        - {destination: pools, via: [n1], aggregate: false}
        - {destination: services, via: [10.0.0.5]}
        - {destination: 172.20.0.0/16, via: [n2]}
        - {destination: 10.99.0.5/32, via: [n1]}
    - name: edge-v6
      platform: junos
      address: "2001:db8::1/64"
      staticRoutes:
        - {destination: pools, via: [n1, n2]}
        - {destination: services, via: [n2]}
      bgp: {asNumber: 65000, peerWith: allNodes}
    - name: edge-frr
      platform: frr
      address: 10.0.0.2/24
      bgp: {asNumber: 64512, peerWith: routeReflectors}
    - name: edge-ios
      platform: ios
      address: 10.0.0.3/24
      bgp: {asNumber: 65001, peerWith: allNodes}
"#;

/// Every valid scenario and the matrix, compiled, by a name for messages.
fn all_router_outputs() -> Vec<(String, Checked, Output)> {
    let mut outputs: Vec<(String, Checked, Output)> = valid_scenarios()
        .into_iter()
        .map(|(dir, checked)| {
            let output = compile(&checked, &["routers"]);
            (relative(&dir), checked, output)
        })
        .collect();
    let matrix = checked_text(MATRIX);
    let output = compile(&matrix, &["routers"]);
    outputs.push(("the matrix intent".to_string(), matrix, output));
    outputs
}

fn router_of(path: &str) -> &str {
    path.split('/').nth(1).expect("routers/<router>/file")
}

/// A destination as `ip route` prints it is as `ip route replace` took it, except a single
/// address, printed without its prefix length.
fn destination(text: &str) -> String {
    if text.contains('/') {
        return text.to_string();
    }
    format!("{text}/{}", if text.contains(':') { 128 } else { 32 })
}

/// `(destination, next hop)` pairs of each kind of file, for comparing dialects.
type Routes = BTreeSet<(String, String)>;

fn routes_sh_routes(text: &str) -> Routes {
    let mut routes = Routes::new();
    for line in text.lines().filter_map(|line| line.strip_prefix("ip route replace ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        for (at, word) in words.iter().enumerate() {
            if *word == "via" {
                routes.insert((words[0].to_string(), words[at + 1].to_string()));
            }
        }
    }
    routes
}

fn frr_routes(text: &str) -> Routes {
    text.lines()
        .filter_map(|line| line.strip_prefix("ip route ").or_else(|| line.strip_prefix("ipv6 route ")))
        .map(|rest| {
            let words: Vec<&str> = rest.split_whitespace().collect();
            assert_eq!(words.len(), 2, "`{rest}`");
            (words[0].to_string(), words[1].to_string())
        })
        .collect()
}

/// `ip route NETWORK MASK HOP` and `ipv6 route PREFIX HOP`.
fn ios_routes(text: &str) -> Routes {
    let mut routes = Routes::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["ip", "route", network, mask, hop] => {
                let mask: std::net::Ipv4Addr = mask.parse().unwrap_or_else(|_| panic!("bad mask in `{line}`"));
                let bits = u32::from(mask);
                assert_eq!(bits.leading_ones() + bits.trailing_zeros(), 32, "not a contiguous mask: `{line}`");
                let net: ipnet::Ipv4Net = format!("{network}/{}", bits.leading_ones()).parse().unwrap();
                assert_eq!(net.trunc(), net, "host bits set: `{line}`");
                routes.insert((net.to_string(), hop.to_string()));
            }
            ["ipv6", "route", prefix, hop] => {
                routes.insert((prefix.to_string(), hop.to_string()));
            }
            _ => {}
        }
    }
    routes
}

/// `set routing-options [rib inet6.0] static route PREFIX next-hop (HOP | [ HOP ... ])`.
fn junos_routes(text: &str) -> Routes {
    let mut routes = Routes::new();
    for line in text.lines() {
        let Some(rest) = line
            .strip_prefix("set routing-options static route ")
            .or_else(|| line.strip_prefix("set routing-options rib inet6.0 static route "))
        else {
            continue;
        };
        let (prefix, hops) = rest.split_once(" next-hop ").unwrap_or_else(|| panic!("`{line}`"));
        for hop in hops.split_whitespace().filter(|word| !matches!(*word, "[" | "]")) {
            routes.insert((prefix.to_string(), hop.to_string()));
        }
    }
    routes
}

/// `(neighbor, remote AS)` of each dialect's BGP configuration.
type Sessions = BTreeSet<(String, u32)>;

fn frr_or_ios_sessions(text: &str) -> Sessions {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["neighbor", address, "remote-as", number] => Some((address.to_string(), number.parse().unwrap())),
                _ => None,
            }
        })
        .collect()
}

fn junos_sessions(text: &str) -> Sessions {
    let local_as: Option<u32> =
        text.lines().find_map(|line| line.strip_prefix("set routing-options autonomous-system ")).map(|n| n.parse().unwrap());
    let mut sessions = Sessions::new();
    for line in text.lines().filter_map(|line| line.strip_prefix("set protocols bgp group ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [group, "neighbor", address, "description", _] = words.as_slice() {
            let internal = text.contains(&format!("set protocols bgp group {group} type internal"));
            let peer_as = text
                .lines()
                .find_map(|other| other.strip_prefix(&format!("set protocols bgp group {group} neighbor {address} peer-as ")))
                .map(|number| number.parse().unwrap());
            let remote_as = if internal { local_as.expect("autonomous-system") } else { peer_as.expect("peer-as of an external neighbor") };
            sessions.insert((address.to_string(), remote_as));
        }
    }
    sessions
}

/// The prefixes each dialect accepts from the cluster.
fn accepted_prefixes(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [_, "prefix-list", _, "seq", _, "permit", prefix, ..] => Some(prefix.to_string()),
                [
                    "set",
                    "policy-options",
                    "policy-statement",
                    "calplan-from-cluster",
                    "term",
                    "cluster",
                    "from",
                    "route-filter",
                    prefix,
                    "orlonger",
                ] => Some(prefix.to_string()),
                _ => None,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Without root

/// `expected/routers/<router>/{routes.sh,frr.conf,ios.cfg,junos.set}` beside every scenario
/// with an `expected/` folder; `UPDATE_GOLDEN=1` rewrites them.
#[test]
fn router_files_match_their_golden_files() {
    let mut failures = Vec::new();
    for (dir, checked) in pinned_scenarios() {
        let output = compile(&checked, &["routers"]);
        failures.extend(golden::check_artifacts(&dir.join("expected"), &output, "routers", &ROUTER_FILES));
    }
    golden::assert_all(failures);
}

/// Every router gets all four files, whatever its platform.
#[test]
fn every_router_gets_every_dialect() {
    for (name, checked, output) in all_router_outputs() {
        for router in &checked.valid().unwrap().model.routers {
            for file in ROUTER_FILES {
                assert!(
                    output.get(&format!("routers/{}/{file}", router.name.value)).is_some(),
                    "{name}: {} has no {file}",
                    router.name.value
                );
            }
        }
    }
}

/// The matrix's decisions: ECMP, per-block routes to their holders (through `via` for a
/// holder off the router's subnet), disabled pools kept, other-family destinations left out
/// with a reason, BGP neighbours from Calico's own peerings.
#[test]
fn router_routes_and_sessions_follow_the_intent() {
    let output = compile(&checked_text(MATRIX), &["routers"]);
    let file = |router: &str, name: &str| output.get(&format!("routers/{router}/{name}")).unwrap().contents.clone();
    let linux = file("edge-linux", "routes.sh");
    for line in [
        "ip route replace 10.244.0.0/16 proto 252 nexthop via 10.0.0.11 nexthop via 10.0.0.12\n",
        "ip route replace 10.245.0.0/16 proto 252 nexthop via 10.0.0.11 nexthop via 10.0.0.12\n",
        "ip route replace 10.244.0.0/24 via 10.0.0.11 proto 252\n",
        "ip route replace 10.244.1.0/24 via 10.0.0.12 proto 252\n",
        "# block of n3 in pool pods, through `via`\nip route replace 10.244.2.0/24 via 10.0.0.11 proto 252\n",
        "ip route replace 10.96.0.0/12 via 10.0.0.5 proto 252\n",
        "ip route replace 10.99.0.5/32 via 10.0.0.11 proto 252\n",
        "# Left out: fd00:10::/64 (pool pods-v6): router edge-linux has an IPv4 address only.\n",
        "# Left out: fd00:96::/108 (services): router edge-linux has an IPv4 address only.\n",
        "\t\t10.244.0.0/16 | 10.244.0.0/24 | 10.244.1.0/24 | 10.244.2.0/24 | 10.245.0.0/16 | 10.96.0.0/12 | 10.99.0.5 | 10.99.0.5/32 | 172.20.0.0/16) continue ;;\n",
    ] {
        assert!(linux.contains(line), "missing {line:?} in:\n{linux}");
    }
    let v6 = file("edge-v6", "junos.set");
    assert!(v6.contains("set routing-options rib inet6.0 static route fd00:10::/64 next-hop [ 2001:db8::11 2001:db8::12 ]\n"), "{v6}");
    assert_eq!(junos_sessions(&v6), [("2001:db8::11".to_string(), 64512), ("2001:db8::12".to_string(), 64512)].into(), "{v6}");
    let ibgp = file("edge-frr", "frr.conf");
    assert_eq!(frr_or_ios_sessions(&ibgp), [("10.0.0.11".to_string(), 64512)].into(), "only the reflector: {ibgp}");
    assert!(ibgp.contains("  maximum-paths ibgp 16\n") && !ibgp.contains("  maximum-paths 16\n"), "{ibgp}");
    let ebgp = file("edge-ios", "frr.conf");
    assert_eq!(frr_or_ios_sessions(&ebgp).len(), 3, "{ebgp}");
    assert!(ebgp.contains(" neighbor 10.0.1.13 ebgp-multihop\n neighbor 10.0.1.13 update-source 10.0.0.3\n"), "{ebgp}");
    assert!(!ebgp.contains("neighbor 10.0.0.11 ebgp-multihop"), "{ebgp}");
}

/// A password is named, never written: the Secret and key appear, in a comment.
#[test]
fn router_passwords_are_referenced_not_written() {
    let (_, checked) = valid_scenarios().into_iter().find(|(dir, _)| dir.ends_with("mesh-ipip")).unwrap();
    let output = compile(&checked, &["routers"]);
    for (path, text) in ROUTER_FILES.iter().flat_map(|file| artifacts_named(&output, file)) {
        if path.ends_with("routes.sh") {
            continue;
        }
        for line in text.lines().filter(|line| line.contains("password") || line.contains("authentication-key")) {
            let comment = line.trim_start().starts_with('!') || line.starts_with('#');
            assert!(comment && line.contains("key `tor-password` of Secret `bgp-secrets`"), "{path}: `{line}`");
        }
        assert!(text.contains("tor-password"), "{path} does not say the session needs a password");
    }
}

/// `frr.conf`, `ios.cfg` and `junos.set` hold the same static routes as `routes.sh` (which
/// runs for real below), and the same BGP sessions and accepted prefixes as `frr.conf`
/// (which vtysh checks); every line of `ios.cfg` and `junos.set` is a comment or a command of
/// the shapes calplan writes.
#[test]
fn ios_and_junos_say_what_the_checked_files_say_no_real_checker() {
    for (name, _, output) in all_router_outputs() {
        for (path, linux) in artifacts_named(&output, "routes.sh") {
            let router = router_of(path);
            let get = |file: &str| output.get(&format!("routers/{router}/{file}")).unwrap().contents.clone();
            let (frr, ios, junos) = (get("frr.conf"), get("ios.cfg"), get("junos.set"));
            let static_routes = routes_sh_routes(linux);
            assert_eq!(frr_routes(&frr), static_routes, "{name}: {router}: frr.conf and routes.sh differ");
            assert_eq!(ios_routes(&ios), static_routes, "{name}: {router}: ios.cfg and routes.sh differ");
            assert_eq!(junos_routes(&junos), static_routes, "{name}: {router}: junos.set and routes.sh differ");
            let sessions = frr_or_ios_sessions(&frr);
            assert_eq!(frr_or_ios_sessions(&ios), sessions, "{name}: {router}: ios.cfg and frr.conf peer differently");
            assert_eq!(junos_sessions(&junos), sessions, "{name}: {router}: junos.set and frr.conf peer differently");
            let accepted = accepted_prefixes(&frr);
            assert_eq!(accepted_prefixes(&ios), accepted, "{name}: {router}");
            assert_eq!(accepted_prefixes(&junos), accepted, "{name}: {router}");
            ios_grammar(&ios).unwrap_or_else(|line| panic!("{name}: {router}: ios.cfg: unexpected line `{line}`"));
            junos_grammar(&junos).unwrap_or_else(|line| panic!("{name}: {router}: junos.set: unexpected line `{line}`"));
        }
    }
}

/// Every line of an `ios.cfg` is a comment or one of the commands calplan writes, each with
/// well-formed arguments.
pub(crate) fn ios_grammar(text: &str) -> Result<(), String> {
    let address = |word: &str| word.parse::<IpAddr>().is_ok();
    let prefix = |word: &str| word.parse::<ipnet::IpNet>().is_ok_and(|net| net.trunc() == net);
    let number = |word: &str| word.parse::<u32>().is_ok();
    let name = |word: &str| word.starts_with("CALPLAN-") && word.bytes().all(|b| b.is_ascii_uppercase() || b == b'-');
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let ok = match words.as_slice() {
            [] => true,
            [first, ..] if first.starts_with('!') => true,
            ["ip", "route", network, mask, hop] => address(network) && address(mask) && address(hop),
            ["ipv6", "route", net, hop] => prefix(net) && address(hop),
            ["ip" | "ipv6", "prefix-list", list, "seq", seq, "permit", net] => name(list) && number(seq) && prefix(net),
            ["ip" | "ipv6", "prefix-list", list, "seq", seq, "permit", net, "le", len] => {
                name(list) && number(seq) && prefix(net) && number(len)
            }
            ["route-map", map, "permit" | "deny", seq] => name(map) && number(seq),
            ["match", "ip" | "ipv6", "address", "prefix-list", list] => name(list),
            ["router", "bgp", asn] => number(asn),
            ["bgp", "router-id", id] => id.parse::<std::net::Ipv4Addr>().is_ok(),
            ["bgp", "log-neighbor-changes"]
            | ["no", "bgp", "default", "ipv4-unicast"]
            | ["bgp", "bestpath", "as-path", "multipath-relax"] => true,
            ["neighbor", peer, "remote-as", asn] => address(peer) && number(asn),
            ["neighbor", peer, "description", _] => address(peer),
            ["neighbor", peer, "ebgp-multihop", ttl] => address(peer) && number(ttl),
            ["neighbor", peer, "activate"] => address(peer),
            ["neighbor", peer, "route-map", map, "in" | "out"] => address(peer) && name(map),
            ["address-family", "ipv4" | "ipv6", "unicast"] | ["exit-address-family"] | ["end"] => true,
            ["maximum-paths", paths] | ["maximum-paths", "ibgp", paths] => number(paths),
            _ => false,
        };
        if !ok {
            return Err(line.to_string());
        }
    }
    Ok(())
}

/// Every line of a `junos.set` is a comment or a `set` under the hierarchies calplan writes,
/// with balanced brackets and quotes.
pub(crate) fn junos_grammar(text: &str) -> Result<(), String> {
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let known = ["set routing-options ", "set policy-options policy-statement calplan-", "set protocols bgp group calplan-"];
        let balanced = words.iter().filter(|word| **word == "[").count() == words.iter().filter(|word| **word == "]").count()
            && line.matches('"').count() % 2 == 0;
        if !known.iter().any(|start| line.starts_with(start)) || !balanced {
            return Err(line.to_string());
        }
    }
    Ok(())
}

/// `calplan routes` prints what the router's platform needs: for the seed's Linux host the
/// `ip route replace` lines of its `routes.sh`; with `--platform`, another dialect's file.
#[test]
fn routes_command_prints_the_routers_commands() {
    let output = calplan(&["routes", "testdata/seed-rr/intent.yaml", "--router", "cs1-harbor-1"]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "ip route replace 10.96.0.0/12 via 21.49.22.8 proto 252\n\
         ip route replace 192.168.0.0/16 proto 252 nexthop via 21.49.22.7 nexthop via 21.49.22.8\n"
    );
    let golden_frr = std::fs::read_to_string(golden::root().join("testdata/mesh-ipip/expected/routers/tor-a/frr.conf")).unwrap();
    let output = calplan(&["routes", "testdata/mesh-ipip/intent.yaml", "--router", "tor-a"]);
    assert_eq!(String::from_utf8(output.stdout).unwrap(), golden_frr, "the router's own platform, frr");
    let output = calplan(&["routes", "testdata/seed-rr/intent.yaml", "--router", "cs1-harbor-1", "--platform", "junos"]);
    let junos = String::from_utf8(output.stdout).unwrap();
    assert!(junos.contains("set routing-options static route 192.168.0.0/16 next-hop [ 21.49.22.7 21.49.22.8 ]\n"), "{junos}");
    let output = calplan(&["routes", "testdata/mesh-ipip/intent.yaml", "--router", "tor-a", "--platform", "linux"]);
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "# router tor-a needs no static route: it learns the cluster's routes over BGP: see `--platform frr`\n"
    );
}

#[test]
fn routes_command_names_the_known_routers() {
    let output = calplan(&["routes", "testdata/seed-rr/intent.yaml", "--router", "harbor"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "error: no router named `harbor` in `testdata/seed-rr/intent.yaml`; the routers are `cs1-harbor-1`\n"
    );
    let output = calplan(&["routes", "testdata/seed-rr/intent.yaml", "--router", "cs1-harbor-1", "--platform", "eos"]);
    assert_eq!(output.status.code(), Some(1));
}

/// Every `frr.conf` is accepted by FRR 8.4's own parser (`vtysh --dryrun -f`).
#[test]
fn every_frr_conf_passes_vtysh_dryrun() {
    let scratch = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut checked_files = 0;
    for (name, _, output) in all_router_outputs() {
        for (path, text) in artifacts_named(&output, "frr.conf") {
            let file = scratch.path().join(path.replace('/', "_"));
            std::fs::write(&file, text).unwrap();
            let result = Command::new("vtysh").arg("--dryrun").arg("-f").arg(&file).output().expect("vtysh runs (Debian's `frr`)");
            checked_files += 1;
            if !result.status.success() {
                failures.push(format!(
                    "{name}: {path}: {}{}",
                    String::from_utf8_lossy(&result.stdout),
                    String::from_utf8_lossy(&result.stderr)
                ));
            }
        }
    }
    assert!(checked_files >= 5, "too few frr.conf files: {checked_files}");
    assert!(failures.is_empty(), "vtysh rejects:\n{}", failures.join("\n"));
}

/// Every `routes.sh` is POSIX sh that `sh -n` (dash) accepts.
#[test]
fn every_routes_sh_passes_sh_n() {
    let scratch = tempfile::tempdir().unwrap();
    for (name, _, output) in all_router_outputs() {
        for (path, text) in artifacts_named(&output, "routes.sh") {
            assert!(text.starts_with("#!/bin/sh\n") && text.contains("\nset -eu\n"), "{name}: {path}");
            let file = scratch.path().join(path.replace('/', "_"));
            std::fs::write(&file, text).unwrap();
            let result = Command::new("sh").arg("-n").arg(&file).output().unwrap();
            assert!(result.status.success(), "{name}: {path}: {}", String::from_utf8_lossy(&result.stderr));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Namespaces (root only)

/// A kernel route as `ip -j route` reports it: destination with its prefix length, and the
/// sorted gateways (one, or several for a multipath route).
fn kernel_routes(namespace: &Namespace, family: &str, protocol: Option<&str>) -> BTreeMap<String, Vec<String>> {
    let mut args = vec!["-j", family, "route", "show"];
    if let Some(protocol) = protocol {
        args.extend(["proto", protocol]);
    }
    let text = namespace.ip(&args).unwrap();
    let entries: Vec<serde_json::Value> = serde_json::from_str(if text.trim().is_empty() { "[]" } else { &text }).unwrap();
    entries
        .iter()
        .map(|entry| {
            let text = |value: &serde_json::Value, key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_string);
            let mut hops: Vec<String> = match entry.get("nexthops").and_then(|hops| hops.as_array()) {
                Some(hops) => hops.iter().filter_map(|hop| text(hop, "gateway")).collect(),
                None => text(entry, "gateway").into_iter().collect(),
            };
            hops.sort();
            let kind = text(entry, "type").filter(|kind| kind != "unicast").map(|kind| format!("{kind} ")).unwrap_or_default();
            (format!("{kind}{}", destination(&text(entry, "dst").unwrap_or_default())), hops)
        })
        .collect()
}

/// What a `routes.sh` promises: each destination with its sorted next hops.
fn promised(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut routes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (destination, hop) in routes_sh_routes(text) {
        routes.entry(destination).or_default().push(hop);
    }
    routes.values_mut().for_each(|hops| hops.sort());
    routes
}

/// A namespace standing in for the router: its address on `eth0` (a veth pair inside the
/// namespace, so the next hops are on a connected subnet).
fn router_namespace(name: netns::NamespaceName, address: ipnet::IpNet) -> Namespace {
    let namespace = Namespace::create(name).unwrap();
    netns::veth(&namespace, &interface("eth0"), &namespace, &interface("peer0")).unwrap();
    namespace.set_up(&interface("eth0")).unwrap();
    namespace.set_up(&interface("peer0")).unwrap();
    namespace.add_address(&interface("eth0"), address.addr(), address.prefix_len()).unwrap();
    namespace
}

fn run_script(namespace: &Namespace, script: &Path) -> Result<String, String> {
    namespace.run("sh", [script]).map_err(|error| error.to_string())
}

/// Every `routes.sh` runs for real in a namespace standing in for its router: its routes
/// appear with protocol 252, a second run changes nothing, a stale protocol-252 route of every
/// shape `ip route` prints (multipath, single address, blackhole, a wanted destination with an
/// old next hop) is removed or corrected, and routes of other protocols survive.
#[test]
fn routes_sh_installs_its_routes_and_removes_only_stale_ones_needs_root() {
    let prefix = netns::unique_prefix("cplh").unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for (number, (name, checked, output)) in all_router_outputs().into_iter().enumerate() {
        let analysis = checked.valid().unwrap();
        for (index, (path, text)) in artifacts_named(&output, "routes.sh").into_iter().enumerate() {
            let router = analysis.model.routers.iter().find(|router| router.name.value == router_of(path)).unwrap();
            let address = router.address.value;
            let ipv4 = address.addr().is_ipv4();
            let family = if ipv4 { "-4" } else { "-6" };
            let namespace = router_namespace(prefix.join(&format!("{number}-{index}")).unwrap(), address);
            // A gateway on the router's subnet that no route of calplan's uses.
            let gateway = address.hosts().nth(200).unwrap().to_string();
            let foreign = if ipv4 { "10.123.0.0/16" } else { "fd00:123::/64" };
            namespace.ip(["route", "add", foreign, "via", &gateway, "proto", "static"]).unwrap();
            let second_gateway = address.hosts().nth(201).unwrap().to_string();
            // Protocol before `nexthop`: iproute2 reads everything after it as next hops.
            let stale: Vec<String> = if ipv4 {
                vec![
                    format!("10.124.0.0/16 proto 252 nexthop via {gateway} nexthop via {second_gateway}"),
                    format!("10.125.0.7/32 via {gateway} proto 252"),
                    "blackhole 10.126.0.0/16 proto 252".to_string(),
                ]
            } else {
                vec![format!("fd00:124::/64 via {gateway} proto 252"), format!("fd00:125::7/128 via {gateway} proto 252")]
            };
            for route in &stale {
                let mut args: Vec<&str> = vec!["route", "add"];
                args.extend(route.split_whitespace());
                namespace.ip(&args).unwrap();
            }
            let wanted = promised(text);
            if let Some(first) = wanted.keys().next() {
                // A route calplan wants, with a next hop it no longer wants: corrected.
                namespace.ip(["route", "add", first.as_str(), "via", &gateway, "proto", "252"]).unwrap();
            }
            let script = scratch.path().join(path.replace('/', "_"));
            std::fs::write(&script, text).unwrap();
            if let Err(error) = run_script(&namespace, &script) {
                panic!("{name}: {path} fails: {error}");
            }
            ran += 1;
            let installed = kernel_routes(&namespace, family, Some("252"));
            assert_eq!(installed, wanted, "{name}: {path}: the protocol-252 routes are not the script's");
            let everything = kernel_routes(&namespace, family, None);
            assert_eq!(everything.get(foreign), Some(&vec![gateway.clone()]), "{name}: {path}: a foreign route was removed");
            run_script(&namespace, &script).unwrap();
            assert_eq!(kernel_routes(&namespace, family, None), everything, "{name}: {path}: a second run changed the table");
        }
    }
    assert!(ran >= 5, "too few scripts ran: {ran}");
}

// ---------------------------------------------------------------------------------------
// FRR and BIRD, for real (root only)

/// The seed cluster's two route reflectors, running BIRD 2 on their compiled `bird.cfg`, and
/// a border router running FRR's bgpd on its compiled `frr.conf`, on one L2 segment: the
/// sessions come up on both sides, the router accepts the reflectors' blocks and the service
/// range (from both, as equal-cost paths), and sends the cluster nothing.
#[test]
fn frr_router_exchanges_routes_with_bird_reflectors_needs_root() {
    let text = crate::rules::seed_text().replace(
        "  routers:\n",
        "  routers:\n    - name: border\n      platform: frr\n      address: 21.49.22.2/24\n      bgp: {asNumber: 65010, peerWith: routeReflectors}\n",
    );
    let checked = checked_text(&text);
    let output = compile(&checked, &["bird", "routers"]);
    let frr_conf = &output.get("routers/border/frr.conf").unwrap().contents;
    assert_eq!(frr_or_ios_sessions(frr_conf), [("21.49.22.7".to_string(), 63400), ("21.49.22.8".to_string(), 63400)].into(), "{frr_conf}");

    let scratch = tempfile::tempdir().unwrap();
    let prefix = netns::unique_prefix("cplf").unwrap();
    let switch = Namespace::create(prefix.join("sw").unwrap()).unwrap();
    switch.add_bridge(&interface("br0")).unwrap();
    switch.set_up(&interface("br0")).unwrap();
    let attach = |namespace: &Namespace, number: usize, address: &str| {
        let outside = interface(&format!("p{number}"));
        netns::veth(namespace, &interface("eth0"), &switch, &outside).unwrap();
        switch.set_master(&outside, &interface("br0")).unwrap();
        switch.set_up(&outside).unwrap();
        namespace.add_address(&interface("eth0"), address.parse().unwrap(), 24).unwrap();
        namespace.set_up(&interface("eth0")).unwrap();
    };
    let bird = std::env::var_os("CALPLAN_BIRD").map_or_else(|| "/usr/sbin/bird".into(), std::path::PathBuf::from);
    let reflectors = [("cs1-k8s-n1.zpepc.com.cn", "21.49.22.7"), ("cs1-k8s-n2.zpepc.com.cn", "21.49.22.8")];
    // Declared before the daemons, so that the daemons stop first, also on a panic.
    let router = Namespace::create(prefix.join("r").unwrap()).unwrap();
    attach(&router, 9, "21.49.22.2");
    let mut namespaces = Vec::new();
    let mut daemons = Vec::new();
    for (number, (node, address)) in reflectors.iter().enumerate() {
        let namespace = Namespace::create(prefix.join(&format!("n{number}")).unwrap()).unwrap();
        attach(&namespace, number, address);
        let config = scratch.path().join(format!("bird{number}.cfg"));
        std::fs::write(&config, &output.get(&format!("nodes/{node}/bird.cfg")).unwrap().contents).unwrap();
        let socket = scratch.path().join(format!("bird{number}.ctl"));
        let log = scratch.path().join(format!("bird{number}.log"));
        daemons.push(namespace.spawn(&bird, [Path::new("-f"), Path::new("-c"), &config, Path::new("-s"), &socket], &log).unwrap());
        namespaces.push(namespace);
    }
    let frr_file = scratch.path().join("frr.conf");
    std::fs::write(&frr_file, frr_conf).unwrap();
    let vty = scratch.path().join("vty");
    std::fs::create_dir_all(&vty).unwrap();
    // Without zebra (`-Z`) bgpd treats next hops as reachable and installs nothing in the
    // kernel; `-S` keeps it root in a scratch directory that belongs to no `frr` user.
    let frr_args: Vec<std::ffi::OsString> = vec![
        "-Z".into(),
        "-S".into(),
        "-f".into(),
        frr_file.clone().into(),
        "--vty_socket".into(),
        vty.clone().into(),
        "-i".into(),
        scratch.path().join("bgpd.pid").into(),
        "--log".into(),
        format!("file:{}", scratch.path().join("bgpd.log").display()).into(),
    ];
    daemons.push(router.spawn("/usr/lib/frr/bgpd", &frr_args, &scratch.path().join("bgpd.out")).unwrap());

    let vtysh = |command: &str| -> String {
        let output = Command::new("vtysh").arg("--vty_socket").arg(&vty).arg("-c").arg(command).output().expect("vtysh runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let expected_blocks = ["192.168.0.192/26", "192.168.1.0/26"];
    loop {
        for daemon in &mut daemons {
            if let Err(stopped) = daemon.check_running() {
                let logs: Vec<String> = ["bgpd.log", "bgpd.out", "bird0.log", "bird1.log"]
                    .iter()
                    .map(|file| std::fs::read_to_string(scratch.path().join(file)).unwrap_or_default())
                    .collect();
                panic!("{stopped}\n{}", logs.join("\n"));
            }
        }
        let table: serde_json::Value = serde_json::from_str(&vtysh("show bgp ipv4 unicast json")).unwrap_or(serde_json::Value::Null);
        let routes = table.get("routes").cloned().unwrap_or_default();
        // The peers whose paths FRR installs for a prefix: the best one and its equal-cost
        // companions. (The reflectors may send several paths each, with ADD-PATH.)
        let installed_from = |prefix: &str| -> BTreeSet<String> {
            let paths = routes.get(prefix).and_then(|paths| paths.as_array()).cloned().unwrap_or_default();
            paths
                .iter()
                .filter(|path| path.get("valid").and_then(|v| v.as_bool()) == Some(true))
                .filter(|path| path.get("bestpath").is_some() || path.get("multipath").and_then(|m| m.as_bool()) == Some(true))
                .filter_map(|path| path.get("peerId").and_then(|peer| peer.as_str()).map(str::to_string))
                .collect()
        };
        let both: BTreeSet<String> = ["21.49.22.7".to_string(), "21.49.22.8".to_string()].into();
        if expected_blocks.iter().all(|block| !installed_from(block).is_empty()) && installed_from("10.96.0.0/12") == both {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "FRR did not learn the reflectors' routes (blocks {expected_blocks:?}, 10.96.0.0/12 from both as equal-cost paths):\n{}\n{}\n{}",
                vtysh("show bgp summary"),
                vtysh("show bgp ipv4 unicast"),
                std::fs::read_to_string(scratch.path().join("bgpd.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Nothing flows the other way: the reflectors learn no route from the router.
    let analysis = checked.valid().unwrap();
    for (number, (node, _)) in reflectors.iter().enumerate() {
        let index = analysis.peerings.node_index(node).unwrap();
        let peering = analysis
            .peerings
            .for_node(index)
            .into_iter()
            .find(|peering| peering.data.ip.to_string() == "21.49.22.2")
            .expect("a session to the router");
        let socket = scratch.path().join(format!("bird{number}.ctl"));
        let birdc = Command::new(bird.with_file_name("birdc"))
            .arg("-s")
            .arg(&socket)
            .args(["show", "route", "protocol", &peering.protocol_name()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&birdc.stdout);
        assert!(!text.contains("via 21.49.22.2"), "the router sent the cluster routes:\n{text}");
    }
}
