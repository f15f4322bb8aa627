//! The node rulesets (`rules.nft`, `rules.iptables`) against the real tools: every file of
//! every valid scenario through `nft -c -f` and `iptables-restore --test`, reloads counted for
//! duplicates, and NAT outgoing and the BGP filter exercised with real packets. Each root test
//! works in network namespaces of its own, so the host's firewall is never touched; and the
//! goldens of the scenarios with an `expected/` folder.

use crate::golden;
use crate::scenarios::{artifacts_named, compile, pinned_scenarios, relative, valid_scenarios};
use calplan::netns::{self, InterfaceName, Namespace};
use calplan::pipeline::{self, Checked};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Stdio;

/// The rule files, by target and file name.
const RULE_TARGETS: [(&str, &str); 2] = [("nft", "rules.nft"), ("iptables", "rules.iptables")];

pub fn checked_text(text: &str) -> Checked {
    let checked = pipeline::check("intent.yaml", text.to_string(), None);
    assert!(checked.valid().is_some(), "test intent is invalid: {:?}", checked.diagnostics);
    checked
}

pub fn seed_text() -> String {
    std::fs::read_to_string(golden::root().join("testdata/seed-rr/intent.yaml")).unwrap()
}

pub fn interface(name: &str) -> InterfaceName {
    InterfaceName::new(name).unwrap()
}

/// Runs a program inside a namespace with `input` on its standard input; its standard output,
/// or the failure in words.
pub fn run_with_input(namespace: &Namespace, program: &str, args: &[&str], input: &str) -> Result<String, String> {
    namespace.run_with_input(program, args, input.as_bytes()).map_err(|error| error.to_string())
}

pub(crate) fn nft(namespace: &Namespace, args: &[&str], input: &str) -> Result<String, String> {
    run_with_input(namespace, "nft", args, input)
}

/// `nft -f -` of a ruleset.
fn nft_load(namespace: &Namespace, ruleset: &str) {
    nft(namespace, &["-f", "-"], ruleset).unwrap();
}

fn nft_ruleset(namespace: &Namespace) -> String {
    namespace.run("nft", ["list", "ruleset"]).unwrap()
}

fn iptables_restore(namespace: &Namespace, rules: &str) {
    run_with_input(namespace, "iptables-restore", &["--noflush"], rules).unwrap();
}

/// `iptables-save` without its timestamps and counters, for comparing states.
fn iptables_state(namespace: &Namespace) -> String {
    let text = namespace.run("iptables-save", std::iter::empty::<&str>()).unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| match line.rsplit_once(" [") {
            Some((head, _)) if line.starts_with(':') => head.to_string(),
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The rules (`-A` lines) of `iptables-save`.
fn iptables_rules(state: &str) -> Vec<&str> {
    state.lines().filter(|line| line.starts_with("-A ")).collect()
}

/// What calplan's loader does before reloading `rules.iptables` (see
/// `calplan_targets::iptables::HOOKS`): it removes the earlier jumps, as many as there are.
fn unhook(namespace: &Namespace) {
    for (table, chain, target) in calplan_targets::iptables::HOOKS {
        while namespace.run("iptables", ["-t", table, "-D", chain, "-j", target]).is_ok() {}
    }
}

// ---------------------------------------------------------------------------------------
// Without root

/// `expected/nodes/<node>/rules.{nft,iptables}` beside every scenario with an `expected/`
/// folder; `UPDATE_GOLDEN=1` rewrites them.
#[test]
fn rule_files_match_their_golden_files() {
    let mut failures = Vec::new();
    for (dir, checked) in pinned_scenarios() {
        let output = compile(&checked, &RULE_TARGETS.map(|(target, _)| target));
        failures.extend(golden::check_artifacts(&dir.join("expected"), &output, "nodes", &RULE_TARGETS.map(|(_, file)| file)));
    }
    golden::assert_all(failures);
}

/// Both renderers render the one rule model: the same sources accepted, the same pools
/// masqueraded and excluded, in each node's IPv4 rules.
#[test]
fn nft_and_iptables_render_the_same_rules() {
    for (dir, checked) in valid_scenarios() {
        let output = compile(&checked, &["nft", "iptables"]);
        for (path, nft) in artifacts_named(&output, "rules.nft") {
            let iptables = &output.get(&path.replace("rules.nft", "rules.iptables")).unwrap().contents;
            let ipv4_table = nft.split("table ip calplan {").nth(1).unwrap_or("");
            let ipv4_table = ipv4_table.split("\ntable ip6 calplan {").next().unwrap();
            let words = |text: &str| -> BTreeSet<String> {
                text.split(|c: char| c.is_whitespace() || c == ',')
                    .map(|word| word.trim_end_matches("/32").to_string())
                    .filter(|word| word.parse::<IpAddr>().is_ok() || word.parse::<ipnet::IpNet>().is_ok())
                    .collect()
            };
            assert_eq!(words(ipv4_table), words(iptables), "{}/{path}: the two rulesets name different addresses", relative(&dir));
            assert_eq!(ipv4_table.contains("masquerade"), iptables.contains("MASQUERADE"), "{path}");
            assert_eq!(ipv4_table.contains("ip protocol 4 "), iptables.contains("-p 4 "), "{path}");
            assert_eq!(ipv4_table.contains("udp dport 4789 "), iptables.contains("--dport 4789 "), "{path}");
        }
    }
}

/// Felix's sets: disabled pools are still pools (never masqueraded to), a disabled
/// natOutgoing pool still masquerades, tunnels are guarded only where a pool uses them, and
/// the BGP rule follows `listenPort` and admits the node's own external peers.
#[test]
fn rules_follow_felix_for_disabled_pools_tunnels_and_peers() {
    let text = seed_text()
        .replace(
            "      nodeSelector: all()\n",
            "      nodeSelector: all()\n    - {name: old-pool, cidr: 10.10.0.0/16, natOutgoing: true, disabled: true, ipipMode: Always}\n    - {name: quiet, cidr: 10.11.0.0/16, natOutgoing: false}\n",
        )
        .replace("    peers: []", "    listenPort: 1790\n    peers:\n      - {name: upstream, peerIP: 21.49.22.254, asNumber: 65001, nodeSelector: \"route-reflector == 'true'\"}");
    let output = compile(&checked_text(&text), &["nft", "iptables"]);
    let file = |node: &str, name: &str| output.get(&format!("nodes/{node}.zpepc.com.cn/{name}")).unwrap().contents.clone();
    let reflector = file("cs1-k8s-n1", "rules.nft");
    assert!(reflector.contains("set masquerade_pools {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge\n\t\telements = {\n\t\t\t10.10.0.0/16,\n\t\t\t192.168.0.0/16,\n\t\t}"), "{reflector}");
    assert!(reflector.contains("\t\t\t10.10.0.0/16,\n\t\t\t10.11.0.0/16,\n\t\t\t192.168.0.0/16,\n"), "every pool is excluded: {reflector}");
    assert!(reflector.contains("ip protocol 4 ip saddr @cluster_hosts accept"), "a disabled IPIP pool still tunnels: {reflector}");
    assert!(!reflector.contains("udp dport 4789"), "no VXLAN pool: {reflector}");
    assert!(reflector.contains("tcp dport 1790 ip saddr @external_bgp_peers accept"), "{reflector}");
    assert!(reflector.contains("\t\t\t21.49.22.254,\n"), "{reflector}");
    let client = file("cs1-k8s-m1", "rules.nft");
    assert!(!client.contains("external_bgp_peers"), "only the reflectors peer upstream: {client}");
    let iptables = file("cs1-k8s-n1", "rules.iptables");
    assert!(iptables.contains("-A CALPLAN-BGP -s 21.49.22.254 "), "{iptables}");
    assert!(iptables.contains("-A CALPLAN-POSTROUTING -s 10.10.0.0/16 -j CALPLAN-NAT-OUTGOING\n"), "{iptables}");
    assert!(!iptables.contains("-s 10.11.0.0/16"), "{iptables}");
}

/// IPv6 pools get an `ip6 calplan` table in `rules.nft`; `rules.iptables` says it leaves them
/// to nft.
#[test]
fn ipv6_pools_get_an_ip6_table() {
    let (_, checked) = valid_scenarios().into_iter().find(|(dir, _)| dir.ends_with("vxlan-multi-rr")).unwrap();
    let output = compile(&checked, &["nft", "iptables"]);
    let nft = &output.get("nodes/rack1-w1/rules.nft").unwrap().contents;
    assert!(nft.contains("table ip6 calplan {"), "{nft}");
    assert!(nft.contains("udp dport 4789 ip6 saddr @cluster_hosts accept"), "{nft}");
    assert!(nft.contains("\t\t\t2001:db8::10/127,\n\t\t\t2001:db8::20,\n"), "{nft}");
    assert!(!nft.contains("ip6 saddr @masquerade_pools"), "the IPv6 pool has no natOutgoing: {nft}");
    let iptables = &output.get("nodes/rack1-w1/rules.iptables").unwrap().contents;
    assert!(iptables.contains("# IPv6 is not here"), "{iptables}");
}

// ---------------------------------------------------------------------------------------
// Namespaces (root only)

/// Every `rules.nft` of every valid scenario passes `nft -c -f`, and every `rules.iptables`
/// `iptables-restore --test`, each in a fresh namespace.
#[test]
fn every_ruleset_passes_its_checker_needs_root() {
    let prefix = netns::unique_prefix("cplk").unwrap();
    let mut failures = Vec::new();
    let mut checked_files = 0;
    for (number, (dir, checked)) in valid_scenarios().into_iter().enumerate() {
        let output = compile(&checked, &["nft", "iptables"]);
        let namespace = Namespace::create(prefix.join(&number.to_string()).unwrap()).unwrap();
        for (path, text) in artifacts_named(&output, "rules.nft") {
            checked_files += 1;
            if let Err(error) = nft(&namespace, &["-c", "-f", "-"], text) {
                failures.push(format!("{}/{path}: {error}", relative(&dir)));
            }
        }
        for (path, text) in artifacts_named(&output, "rules.iptables") {
            checked_files += 1;
            if let Err(error) = run_with_input(&namespace, "iptables-restore", &["--test"], text) {
                failures.push(format!("{}/{path}: {error}", relative(&dir)));
            }
        }
    }
    assert!(checked_files > 20, "too few rulesets: {checked_files}");
    assert!(failures.is_empty(), "the checkers reject:\n{}", failures.join("\n"));
}

/// Loading `rules.nft` again changes nothing: not a rule, set element or table more. Loading
/// another node's file and then this one again gives back exactly the first state, and tables
/// that are not calplan's are untouched throughout.
#[test]
fn nft_rules_reload_without_duplicates_needs_root() {
    let namespace = Namespace::create(netns::unique_prefix("cpln").unwrap()).unwrap();
    let foreign = "table inet someone_else {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\ttcp dport 22 accept\n\t}\n}\n";
    nft_load(&namespace, foreign);
    for (dir, checked) in pinned_scenarios() {
        let output = compile(&checked, &["nft"]);
        let files = artifacts_named(&output, "rules.nft");
        let (_, first) = files[0];
        nft_load(&namespace, first);
        let once = nft_ruleset(&namespace);
        let rules = once.lines().filter(|line| line.contains("accept") || line.contains("drop") || line.contains("masquerade")).count();
        assert!(rules >= 3, "{}: too few rules loaded:\n{once}", relative(&dir));
        nft_load(&namespace, first);
        assert_eq!(nft_ruleset(&namespace), once, "{}: a second load changed the ruleset", relative(&dir));
        let (_, other) = files[files.len() - 1];
        nft_load(&namespace, other);
        nft_load(&namespace, first);
        assert_eq!(nft_ruleset(&namespace), once, "{}: loading another node's file in between left something", relative(&dir));
        assert!(once.contains("tcp dport 22 accept"), "a foreign table was touched:\n{once}");
    }
    // A cluster without NAT or IPv6 any more: the rules and tables it no longer needs go.
    let seed = seed_text().replace("natOutgoing: true", "natOutgoing: false");
    let output = compile(&checked_text(&seed), &["nft"]);
    nft_load(&namespace, artifacts_named(&output, "rules.nft")[0].1);
    let after = nft_ruleset(&namespace);
    assert!(!after.contains("masquerade") && !after.contains("table ip6 calplan"), "{after}");
    assert!(after.contains("table ip calplan") && after.contains("tcp dport 22 accept"), "{after}");
}

/// `rules.iptables` under `iptables-restore --noflush`: the CALPLAN chains are emptied and
/// filled on every load, so a plain second load repeats nothing but the jumps from the
/// built-in chains (iptables-restore cannot insert a rule only when it is missing); with the
/// step a loader takes (`HOOKS`: here, removing the earlier jumps first) a reload leaves
/// exactly the state of the first load. Rules that are not calplan's survive.
#[test]
fn iptables_rules_reload_without_duplicates_needs_root() {
    let namespace = Namespace::create(netns::unique_prefix("cpli").unwrap()).unwrap();
    namespace.run("iptables", ["-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"]).unwrap();
    namespace.run("iptables", ["-t", "nat", "-A", "POSTROUTING", "-s", "172.17.0.0/16", "-j", "MASQUERADE"]).unwrap();
    for (dir, checked) in pinned_scenarios() {
        let output = compile(&checked, &["iptables"]);
        let files = artifacts_named(&output, "rules.iptables");
        let (_, first) = files[0];
        unhook(&namespace);
        iptables_restore(&namespace, first);
        let once = iptables_state(&namespace);
        assert!(iptables_rules(&once).len() >= 6, "{}: too few rules loaded:\n{once}", relative(&dir));
        assert!(once.contains("-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"), "{once}");
        assert!(once.contains("-A POSTROUTING -s 172.17.0.0/16 -j MASQUERADE"), "{once}");

        // A plain reload: only the jumps repeat.
        iptables_restore(&namespace, first);
        let twice = iptables_state(&namespace);
        let mut extra: Vec<&str> = iptables_rules(&twice);
        for rule in iptables_rules(&once) {
            let at = extra.iter().position(|kept| *kept == rule).expect("a reload removed a rule");
            extra.remove(at);
        }
        extra.sort();
        let mut hooks: Vec<String> = calplan_targets::iptables::HOOKS
            .iter()
            .filter(|(_, _, target)| once.contains(&format!("-j {target}")))
            .map(|(_, chain, target)| format!("-A {chain} -j {target}"))
            .collect();
        hooks.sort();
        assert_eq!(extra, hooks, "{}: a plain reload repeated more than the jumps", relative(&dir));

        // The loader's reload: exactly the first state.
        unhook(&namespace);
        iptables_restore(&namespace, first);
        assert_eq!(iptables_state(&namespace), once, "{}: a reload changed the rules", relative(&dir));
        let (_, other) = files[files.len() - 1];
        unhook(&namespace);
        iptables_restore(&namespace, other);
        unhook(&namespace);
        iptables_restore(&namespace, first);
        assert_eq!(iptables_state(&namespace), once, "{}: loading another node's file in between left something", relative(&dir));
    }
    // A cluster without NAT any more: the NAT chain is emptied.
    let seed = seed_text().replace("natOutgoing: true", "natOutgoing: false");
    let output = compile(&checked_text(&seed), &["iptables"]);
    unhook(&namespace);
    iptables_restore(&namespace, artifacts_named(&output, "rules.iptables")[0].1);
    let after = iptables_state(&namespace);
    assert!(!after.contains("MASQUERADE --random-fully"), "{after}");
    assert!(after.contains("-A POSTROUTING -s 172.17.0.0/16 -j MASQUERADE"), "{after}");
}

/// A node with a pod behind it, an outside host and a pod elsewhere in the pool, each in its
/// own namespace, with the node's compiled rules loaded in the node's namespace:
///
/// ```text
/// pod 192.168.0.2 ── node cs1-k8s-n1 (21.49.22.7) ── outside 21.49.22.1 (+ 21.49.22.8, a cluster host)
///                         └── remote pod 192.168.1.2
/// ```
struct NatLab {
    node: Namespace,
    pod: Namespace,
    outside: Namespace,
    remote: Namespace,
}

const POD: &str = "192.168.0.2";
const REMOTE_POD: &str = "192.168.1.2";
const NODE: &str = "21.49.22.7";
const OUTSIDER: &str = "21.49.22.1";
const CLUSTER_HOST: &str = "21.49.22.8";

impl NatLab {
    fn build(tag: &str) -> NatLab {
        let prefix = netns::unique_prefix(tag).unwrap();
        let lab = NatLab {
            node: Namespace::create(prefix.join("node").unwrap()).unwrap(),
            pod: Namespace::create(prefix.join("pod").unwrap()).unwrap(),
            outside: Namespace::create(prefix.join("out").unwrap()).unwrap(),
            remote: Namespace::create(prefix.join("rpod").unwrap()).unwrap(),
        };
        let address = |namespace: &Namespace, device: &str, cidr: &str| {
            let (address, prefix_len) = cidr.split_once('/').unwrap();
            namespace.add_address(&interface(device), address.parse().unwrap(), prefix_len.parse().unwrap()).unwrap();
            namespace.set_up(&interface(device)).unwrap();
        };
        netns::veth(&lab.node, &interface("eth0"), &lab.outside, &interface("eth0")).unwrap();
        address(&lab.node, "eth0", &format!("{NODE}/24"));
        address(&lab.outside, "eth0", &format!("{OUTSIDER}/24"));
        address(&lab.outside, "eth0", &format!("{CLUSTER_HOST}/24"));
        for (namespace, pod, gateway, device) in
            [(&lab.pod, POD, "192.168.0.1", "cali0"), (&lab.remote, REMOTE_POD, "192.168.1.1", "cali1")]
        {
            netns::veth(&lab.node, &interface(device), namespace, &interface("eth0")).unwrap();
            address(&lab.node, device, &format!("{gateway}/26"));
            address(namespace, "eth0", &format!("{pod}/26"));
            namespace.ip(["route", "add", "default", "via", gateway]).unwrap();
        }
        // The outside knows no way to the pods: a reply reaches the pod only when the node
        // masqueraded the request. The remote pod routes the pool back through the node.
        lab.node.run("sysctl", ["-qw", "net.ipv4.ip_forward=1"]).unwrap();
        // Counters that record who the packets arrive from.
        let probe = "table ip probe {\n\tchain input {\n\t\ttype filter hook input priority -10; policy accept;\n\t\ticmp type echo-request ip saddr 21.49.22.7 counter\n\t\ticmp type echo-request ip saddr 192.168.0.2 counter\n\t}\n}\n";
        for namespace in [&lab.outside, &lab.remote] {
            nft_load(namespace, probe);
        }
        lab
    }

    /// How many echo requests from `source` reached `namespace`.
    fn seen_from(&self, namespace: &Namespace, source: &str) -> u64 {
        let ruleset = nft_ruleset(namespace);
        let line = ruleset.lines().find(|line| line.contains(&format!("ip saddr {source} "))).expect("probe rule");
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|word| *word == "packets").unwrap();
        words[at + 1].parse().unwrap()
    }

    fn ping(&self, from: &Namespace, to: &str) -> bool {
        from.run("ping", ["-c", "2", "-i", "0.2", "-W", "2", to]).is_ok()
    }

    /// What became of a TCP connection from `source` to the node's `port` (ncat, which CI
    /// installs): `refused` when the node answered (nothing listens there), `dropped` when the
    /// packets went unanswered.
    fn connect(&self, source: &str, port: u16) -> &'static str {
        let output = self
            .outside
            .command("ncat")
            .args(["--wait", "2", "--source", source, NODE, &port.to_string()])
            .stdin(Stdio::null())
            .output()
            .expect("ncat runs");
        let said = String::from_utf8_lossy(&output.stderr);
        if said.contains("Connection refused") {
            "refused"
        } else if said.contains("TIMEOUT") {
            "dropped"
        } else {
            panic!("ncat from {source} to port {port}: {said}")
        }
    }

    /// NAT outgoing and the BGP filter, with whatever rules the node has loaded.
    fn assert_behaves_like_felix(&self, ruleset: &str) {
        assert!(self.ping(&self.pod, OUTSIDER), "{ruleset}: the pod cannot reach the outside");
        assert!(self.seen_from(&self.outside, NODE) >= 2, "{ruleset}: the outside did not see the node's address");
        assert_eq!(self.seen_from(&self.outside, POD), 0, "{ruleset}: the pod's address leaked to the outside");
        assert!(self.ping(&self.pod, REMOTE_POD), "{ruleset}: the pod cannot reach a pod in the pool");
        assert!(self.seen_from(&self.remote, POD) >= 2, "{ruleset}: pod to pod traffic was masqueraded");
        assert_eq!(self.seen_from(&self.remote, NODE), 0, "{ruleset}: pod to pod traffic was masqueraded");
        assert_eq!(self.connect(CLUSTER_HOST, 179), "refused", "{ruleset}: a cluster host's BGP connection did not reach the node");
        assert_eq!(self.connect(OUTSIDER, 179), "dropped", "{ruleset}: an outsider's BGP connection was not dropped");
        assert_eq!(self.connect(OUTSIDER, 180), "refused", "{ruleset}: traffic that is not BGP was touched");
    }
}

fn seed_node_rules(file: &str) -> String {
    let output = compile(&checked_text(&seed_text()), &["nft", "iptables"]);
    output.get(&format!("nodes/cs1-k8s-n1.zpepc.com.cn/{file}")).unwrap().contents.clone()
}

/// Without rules, the pod's traffic leaves with its own address and gets no reply (the
/// outside has no route back), and BGP from anyone reaches the node: the lab itself proves
/// nothing by accident.
#[test]
fn nat_lab_without_rules_neither_masquerades_nor_filters_needs_root() {
    let lab = NatLab::build("cplz");
    assert!(!lab.ping(&lab.pod, OUTSIDER));
    assert!(lab.seen_from(&lab.outside, POD) >= 1);
    assert_eq!(lab.connect(OUTSIDER, 179), "refused");
}

/// `rules.nft` of the seed's node: pod traffic to the outside leaves with the node's address,
/// pod to pod keeps the pod's, BGP from a cluster host reaches the node and from anyone else
/// is dropped, and other ports are untouched.
#[test]
fn nft_nat_outgoing_and_bgp_filter_work_needs_root() {
    let lab = NatLab::build("cpla");
    nft_load(&lab.node, &seed_node_rules("rules.nft"));
    lab.assert_behaves_like_felix("rules.nft");
}

/// The same with `rules.iptables` under `iptables-restore --noflush`.
#[test]
fn iptables_nat_outgoing_and_bgp_filter_work_needs_root() {
    let lab = NatLab::build("cplb");
    iptables_restore(&lab.node, &seed_node_rules("rules.iptables"));
    lab.assert_behaves_like_felix("rules.iptables");
}
