//! `calplan verify` against nodes run as calico-node runs them: one network namespace per node,
//! BIRD 1.6 on the node's `bird-calico.cfg` (with the one `krt_tunnel` substitution SPEC §8
//! allows), and confd's files laid out as calico-node has them (`bird.cfg` including
//! `bird_aggr.cfg` and `bird_ipam.cfg`). Each kind of drift is introduced and must be reported,
//! located; a clean cluster must pass. Needs root (namespaces).

use crate::bird::{Lab, bird16, without_krt_tunnel};
use crate::cli::{calplan_with as run, text};
use calplan::pipeline::{self, Checked};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

/// A route-reflected cluster whose clients peer by label: `rack == 'a'` selects them.
const INTENT: &str = "apiVersion: calplan/v1
kind: ClusterIntent
metadata:
  name: drift
spec:
  calicoVersion: \"3.30\"
  bgp:
    asNumber: 64512
    nodeToNodeMesh: false
    peers:
      - {name: rack-a-to-reflectors, nodeSelector: \"rack == 'a'\", peerSelector: has(route-reflector)}
  pools:
    - {name: pods, cidr: 10.244.0.0/16, blockSize: 24, natOutgoing: true}
  nodes:
    - {name: rr1, ipv4Address: 10.0.0.1/24, routeReflectorClusterID: 1.0.0.1, labels: {route-reflector: \"true\"}}
    - {name: w1, ipv4Address: 10.0.0.2/24, labels: {rack: a}}
    - {name: w2, ipv4Address: 10.0.0.3/24, labels: {rack: a}}
";

fn checked(text: &str) -> Checked {
    pipeline::check("intent.yaml", text.to_string(), None)
}

/// The renders and routes confd would give for an intent, valid or not (a drifted datastore
/// need not pass calplan's checks to be rendered by confd).
fn render(checked: &Checked) -> calplan_targets::Output {
    let analysis = checked.analysis.as_ref().expect("an intent");
    let templates = calplan_targets::Templates::builtin();
    let selected: BTreeSet<String> = ["bird-calico", "routes"].into_iter().map(String::from).collect();
    calplan_targets::compile(&calplan_targets::Context { analysis, templates: &templates, node: None, sink: None }, Some(&selected))
        .expect("renders")
}

/// `bird-calico.cfg` split back into confd's files: `bird.cfg` including the two others where
/// calplan's render marks them inline.
fn confd_files(render: &str) -> BTreeMap<&'static str, String> {
    let lines: Vec<&str> = render.lines().collect();
    let position = |needle: &str, from: usize| from + lines[from..].iter().position(|line| line.starts_with(needle)).expect(needle);
    let aggr = position("# include \"bird_aggr.cfg\";", 0);
    let ipam = position("# include \"bird_ipam.cfg\";", aggr);
    let router = position("router id", ipam);
    let joined = |range: &[&str]| range.iter().map(|line| format!("{line}\n")).collect::<String>();
    BTreeMap::from([
        (
            "bird.cfg",
            format!("{}include \"bird_aggr.cfg\";\ninclude \"bird_ipam.cfg\";\n{}", joined(&lines[..aggr]), joined(&lines[router..])),
        ),
        ("bird_aggr.cfg", joined(&lines[aggr + 1..ipam])),
        ("bird_ipam.cfg", joined(&lines[ipam + 1..router])),
    ])
}

/// The nodes of `intent`, each running BIRD 1.6 on `live`'s render of it, with confd's files.
struct CalicoNodes {
    lab: Lab,
    /// Each node's inventory entry (its namespace, confd folder and BIRD socket).
    hosts: serde_json::Map<String, Value>,
    inventory: PathBuf,
    intent: PathBuf,
}

impl CalicoNodes {
    fn start(intent: &str, live: &str) -> CalicoNodes {
        let wanted = checked(intent);
        let live_output = render(&checked(live));
        let bird = bird16();
        let mut lab = Lab::network(&wanted, &[], bird.with_file_name("birdc"));
        let mut hosts = serde_json::Map::new();
        for (number, name) in lab.names.clone().iter().enumerate() {
            let folder = lab.scratch.path().join(format!("n{number}"));
            let text = &live_output.get(&format!("nodes/{name}/bird-calico.cfg")).unwrap().contents;
            let confd = folder.join("confd");
            std::fs::create_dir_all(&confd).unwrap();
            for (file, content) in confd_files(text) {
                std::fs::write(confd.join(file), content).unwrap();
            }
            let config = folder.join("run.cfg");
            std::fs::write(&config, without_krt_tunnel(text)).unwrap();
            lab.spawn_bird(number, &bird, &config);
            hosts.insert(
                name.clone(),
                serde_json::json!({
                    "netns": lab.nodes[number].name().as_str(),
                    "confdConfig": confd.display().to_string(),
                    "birdSocket": folder.join("bird.ctl").display().to_string(),
                }),
            );
        }
        let path = lab.scratch.path().join("inventory.yaml");
        // JSON is YAML: the inventory reader takes it as it is.
        std::fs::write(&path, serde_json::json!({ "hosts": hosts }).to_string()).unwrap();
        let intent_path = lab.scratch.path().join("intent.yaml");
        std::fs::write(&intent_path, intent).unwrap();
        CalicoNodes { lab, hosts, inventory: path, intent: intent_path }
    }

    fn confd(&self, node: &str) -> PathBuf {
        let number = self.lab.names.iter().position(|name| name == node).unwrap();
        self.lab.scratch.path().join(format!("n{number}/confd"))
    }

    /// The inventory reaching each node over ssh (to this machine's sshd, then into the node's
    /// namespace), as `--transport ssh` uses it.
    fn ssh_inventory(&self, server: &crate::apply_hosts::SshServer) -> PathBuf {
        let mut hosts = self.hosts.clone();
        for host in hosts.values_mut() {
            for (key, value) in server.settings("known_hosts") {
                host[key] = value;
            }
        }
        let path = self.lab.scratch.path().join("inventory-ssh.yaml");
        std::fs::write(&path, serde_json::json!({ "hosts": hosts }).to_string()).unwrap();
        path
    }

    fn verify(&self, format: &str) -> Output {
        self.verify_with(format, "netns", &self.inventory)
    }

    fn verify_with(&self, format: &str, transport: &str, inventory: &std::path::Path) -> Output {
        self.verify_args(format, transport, inventory, &[])
    }

    fn verify_args(&self, format: &str, transport: &str, inventory: &std::path::Path, more: &[&str]) -> Output {
        let path =
            format!("{}:{}", crate::golden::root().join("target/bird16/usr/sbin").display(), std::env::var("PATH").unwrap_or_default());
        run(
            &[
                "verify",
                self.intent.to_str().unwrap(),
                "--transport",
                transport,
                "--inventory",
                inventory.to_str().unwrap(),
                "--format",
                format,
            ]
            .into_iter()
            .chain(more.iter().copied())
            .collect::<Vec<_>>(),
            &[("PATH", &path)],
        )
    }

    /// `verify --format json` once the cluster has converged: its exit code and differences.
    fn differences(&self) -> (Option<i32>, Value) {
        let output = self.verify("json");
        let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{}", text(&output.stderr)));
        (output.status.code(), report)
    }
}

fn sessions(intent: &str) -> Vec<Vec<String>> {
    crate::bird::node_sessions(&checked(intent))
}

fn lines_of(report: &Value, node: &str) -> Vec<String> {
    report["nodes"][node]
        .as_array()
        .unwrap()
        .iter()
        .map(|difference| {
            format!(
                "{} {} | {} | {} | {}",
                difference["area"].as_str().unwrap(),
                difference["subject"].as_str().unwrap(),
                difference["expected"].as_str().unwrap_or("-"),
                difference["live"].as_str().unwrap_or("-"),
                difference["location"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

/// Polls `verify` until it passes (BGP converging) or the deadline.
fn converged(nodes: &CalicoNodes) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (code, report) = nodes.differences();
        if code == Some(0) || std::time::Instant::now() > deadline {
            assert_eq!(code, Some(0), "a clean cluster passes: {report:#}");
            return report;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn verify_passes_a_clean_cluster_over_netns_and_a_real_sshd_and_reports_each_drift_located_needs_root() {
    let mut nodes = CalicoNodes::start(INTENT, INTENT);
    nodes.lab.wait_established(&sessions(INTENT), Duration::from_secs(60));
    let report = converged(&nodes);
    assert_eq!(report["differences"], 0);
    let human = text(&nodes.verify("human").stdout);
    assert!(human.contains("Result: the cluster is as intended (3 nodes)."), "{human}");
    // The same through OpenSSH (a real sshd on loopback, host keys checked).
    let server = crate::apply_hosts::SshServer::start();
    let over_ssh = nodes.verify_with("human", "ssh", &nodes.ssh_inventory(&server));
    assert_eq!(over_ssh.status.code(), Some(0), "{}{}", text(&over_ssh.stdout), text(&over_ssh.stderr));
    assert!(text(&over_ssh.stdout).contains("Result: the cluster is as intended (3 nodes)."));

    // A hand edit: a static route added to w1's render.
    let aggr = nodes.confd("w1").join("bird_aggr.cfg");
    let original = std::fs::read_to_string(&aggr).unwrap();
    let edited = original.replacen("protocol static {\n", "protocol static {\n   route 10.99.0.0/16 blackhole;\n", 1);
    assert_ne!(edited, original);
    std::fs::write(&aggr, &edited).unwrap();
    let (code, report) = nodes.differences();
    assert_eq!(code, Some(1));
    let line = edited.lines().position(|line| line.contains("10.99.0.0/16")).unwrap() + 1;
    assert_eq!(
        lines_of(&report, "w1"),
        [format!("render protocol static1 | - | route 10.99.0.0/16 blackhole; | {}:{line}", aggr.display())]
    );
    assert!(lines_of(&report, "w2").is_empty() && lines_of(&report, "rr1").is_empty());
    let human = nodes.verify("human");
    assert_eq!(human.status.code(), Some(1));
    assert!(text(&human.stdout).contains("Result: 1 difference on 1 of 3 nodes."), "{}", text(&human.stdout));
    std::fs::write(&aggr, &original).unwrap();

    // A confd of another release: its IPAM file without `reject_local_routes` (as before 3.30).
    let ipam = nodes.confd("w2").join("bird_ipam.cfg");
    let original = std::fs::read_to_string(&ipam).unwrap();
    let start = original.find("function reject_local_routes").unwrap();
    let end = start + original[start..].find("\n}\n").unwrap() + 3;
    let older = format!("{}{}", &original[..start], &original[end..]).replace("  reject_local_routes();\n", "");
    std::fs::write(&ipam, older).unwrap();
    let (code, report) = nodes.differences();
    assert_eq!(code, Some(1));
    let found = lines_of(&report, "w2");
    assert!(found.iter().any(|line| line.starts_with("render function reject_local_routes | ") && line.contains("| - | -")), "{found:#?}");
    assert!(
        found.iter().any(|line| line.starts_with("render function calico_export_to_bgp_peers") && line.contains("bird_ipam.cfg:")),
        "{found:#?}"
    );
    assert_eq!(found.len(), 2, "{found:#?}");
    std::fs::write(&ipam, original).unwrap();

    // A route nobody intended in w1's kernel (a pin left behind).
    let w1 = nodes.lab.names.iter().position(|name| name == "w1").unwrap();
    nodes.lab.nodes[w1].ip(["route", "add", "10.244.200.0/24", "dev", "eth0", "proto", "252"]).unwrap();
    let (code, report) = nodes.differences();
    assert_eq!(code, Some(1));
    assert_eq!(lines_of(&report, "w1"), ["routes route | - | 10.244.200.0/24 dev eth0 proto 252 | ip route show"]);
    nodes.lab.nodes[w1].ip(["route", "del", "10.244.200.0/24", "dev", "eth0", "proto", "252"]).unwrap();
    assert_eq!(converged(&nodes)["differences"], 0, "the cluster is clean again");
}

#[test]
fn a_node_that_joined_without_its_labels_is_reported_needs_root() {
    // The datastore as it is: w2 joined without `rack: a`, so confd rendered no peering for it.
    let live =
        INTENT.replace("    - {name: w2, ipv4Address: 10.0.0.3/24, labels: {rack: a}}", "    - {name: w2, ipv4Address: 10.0.0.3/24}");
    assert_ne!(live, INTENT);
    let mut nodes = CalicoNodes::start(INTENT, &live);
    // What does run: rr1 and w1 peer; w2 peers with nobody.
    let running = vec![vec!["Node_10_0_0_2".to_string()], vec!["Node_10_0_0_1".to_string()], Vec::new()];
    assert_eq!(nodes.lab.names, ["rr1", "w1", "w2"]);
    nodes.lab.wait_established(&running, Duration::from_secs(60));
    let (code, report) = nodes.differences();
    assert_eq!(code, Some(1), "{report:#}");
    let w2 = lines_of(&report, "w2");
    assert!(w2.iter().any(|line| line.starts_with("render protocol Node_10_0_0_1 | bgp from bgp_template")), "{w2:#?}");
    assert!(w2.iter().any(|line| line.starts_with("sessions session Node_10_0_0_1 | Established | - |")), "{w2:#?}");
    assert!(
        w2.iter().any(|line| line.starts_with("routes route | ") && line.contains("via 10.0.0.")),
        "w2 lacks routes to the others' blocks: {w2:#?}"
    );
    let rr1 = lines_of(&report, "rr1");
    assert!(rr1.iter().any(|line| line.starts_with("render protocol Node_10_0_0_3")), "{rr1:#?}");
    assert!(rr1.iter().any(|line| line.starts_with("sessions session Node_10_0_0_3")), "{rr1:#?}");
    let w1 = lines_of(&report, "w1");
    assert!(!w1.is_empty() && w1.iter().all(|line| line.starts_with("routes route")), "w1 only misses w2's block: {w1:#?}");
    let human = text(&nodes.verify("human").stdout);
    assert!(human.contains("\nw2: ") && human.contains("  sessions:\n") && human.contains("  routes:\n"), "{human}");
}

#[test]
fn a_node_that_joined_without_what_its_rules_imply_is_reported_from_its_calico_node_needs_root() {
    // The intent gives the workers `rack: a` by rule; the cluster's w2 joined without it.
    let rules = INTENT
        .replace("    - {name: w1, ipv4Address: 10.0.0.2/24, labels: {rack: a}}", "    - {name: w1, ipv4Address: 10.0.0.2/24}")
        .replace("    - {name: w2, ipv4Address: 10.0.0.3/24, labels: {rack: a}}", "    - {name: w2, ipv4Address: 10.0.0.3/24}")
        .replace(
            "  nodes:\n",
            "  nodeRules:\n    - {name: workers, nodeSelector: \"!has(route-reflector)\", labels: {rack: a}}\n  nodes:\n",
        );
    assert_ne!(rules, INTENT);
    let live =
        INTENT.replace("    - {name: w2, ipv4Address: 10.0.0.3/24, labels: {rack: a}}", "    - {name: w2, ipv4Address: 10.0.0.3/24}");
    let mut nodes = CalicoNodes::start(&rules, &live);
    // The cluster's Calico Nodes, as the live datastore has them.
    let drifted = checked(&live);
    let exported: Vec<String> = calplan_model::calico::resources(&drifted.analysis.as_ref().expect("an intent").model)
        .nodes()
        .map(|node| calplan_calico::resources::Resource::Node(node.clone()).to_yaml())
        .collect();
    let current = nodes.lab.scratch.path().join("nodes-export.yaml");
    std::fs::write(&current, exported.join("---\n")).unwrap();
    let running = vec![vec!["Node_10_0_0_2".to_string()], vec!["Node_10_0_0_1".to_string()], Vec::new()];
    nodes.lab.wait_established(&running, Duration::from_secs(60));
    let inventory = nodes.inventory.clone();
    let output = nodes.verify_args("json", "netns", &inventory, &["--current", current.to_str().unwrap()]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{}", text(&output.stderr)));
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let w2 = lines_of(&report, "w2");
    assert_eq!(w2[0], "node label `rack` | a | - | Calico Node (--current)", "{w2:#?}");
    assert!(w2.iter().any(|line| line.starts_with("sessions session Node_10_0_0_1 | Established | - |")), "{w2:#?}");
    // w1 has what its rule implies: no Node drift, only the route to w2's block it misses.
    let w1 = lines_of(&report, "w1");
    assert!(w1.iter().all(|line| !line.starts_with("node ")), "{w1:#?}");
    let human = text(&nodes.verify_args("human", "netns", &inventory, &["--current", current.to_str().unwrap()]).stdout);
    assert!(human.contains("  node:\n    - Calico Node (--current): label `rack`: missing, expected `a`"), "{human}");
}
