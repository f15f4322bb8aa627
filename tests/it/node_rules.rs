//! Intents at cluster scale: the seed's cluster written as rules with its nodes from
//! `kubectl get nodes -o yaml`, node inventories read at the command line, and the artifacts
//! rules produce.

use crate::cli::{calplan, text};
use crate::golden;

/// The seed's intent with no node listed: its reflectors chosen by rule among the nodes
/// `kubectl get nodes` lists, the first master's interfaces still pinned for the autodetection
/// check.
fn seed_as_rules() -> String {
    let seed = std::fs::read_to_string(golden::root().join("testdata/seed-rr/intent.yaml")).unwrap();
    let start = seed.find("  nodes:\n").unwrap();
    let end = seed.find("  routers:\n").unwrap();
    let rules = "  nodeRules:\n    - {name: linux, nodeSelector: \"kubernetes.io/os == 'linux'\", labels: {kubernetes.io/os: linux}}\n  nodes:\n    - name: cs1-k8s-m1.zpepc.com.cn\n      interfaces:\n        - {name: eth0, addresses: [21.49.22.4/24]}\n        - {name: docker0, addresses: [172.17.0.1/16]}\n";
    let seed = format!("{}{rules}{}", &seed[..start], &seed[end..]);
    seed.replace(
        "        nodes: [cs1-k8s-n1.zpepc.com.cn, cs1-k8s-n2.zpepc.com.cn]\n",
        "        reflectors: {nodeSelector: \"kubernetes.io/hostname in {'cs1-k8s-n1.zpepc.com.cn', 'cs1-k8s-n2.zpepc.com.cn', 'cs1-k8s-n3.zpepc.com.cn'}\", count: 2}\n",
    )
}

fn compile_dir(args: &[&str]) -> (tempfile::TempDir, std::process::Output) {
    let out = tempfile::tempdir().unwrap();
    let mut all: Vec<&str> = vec!["compile"];
    all.extend_from_slice(args);
    all.extend(["-o", out.path().to_str().unwrap()]);
    let output = calplan(&all);
    (out, output)
}

#[test]
fn the_seed_written_as_rules_compiles_to_the_seeds_renders() {
    let scratch = tempfile::tempdir().unwrap();
    let intent = scratch.path().join("rules.yaml");
    std::fs::write(&intent, seed_as_rules()).unwrap();
    let (listed, output) = compile_dir(&["testdata/seed-rr/intent.yaml"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let (ruled, output) = compile_dir(&[intent.to_str().unwrap(), "--nodes", "testdata/seed-kdd/current/nodes.yaml"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let node_names = ["m1", "m2", "m3", "n1", "n2", "n3"].map(|short| format!("cs1-k8s-{short}.zpepc.com.cn"));
    for node in &node_names {
        for file in ["bird-calico.cfg", "bird.cfg", "routes"] {
            let path = format!("nodes/{node}/{file}");
            let read = |dir: &tempfile::TempDir| std::fs::read_to_string(dir.path().join(&path)).unwrap_or_else(|_| panic!("{path}"));
            assert_eq!(read(&ruled), read(&listed), "{path} differs");
        }
    }
    let read = |dir: &tempfile::TempDir, path: &str| std::fs::read_to_string(dir.path().join(path)).unwrap();
    assert_eq!(read(&ruled, "calico/bgppeers.yaml"), read(&listed, "calico/bgppeers.yaml"));
    assert_eq!(read(&ruled, "routers/cs1-harbor-1/routes.sh"), read(&listed, "routers/cs1-harbor-1/routes.sh"));
    // The reflectors are the first two the selector allows, with the seed's cluster ID.
    let nodes = read(&ruled, "calico/nodes.yaml");
    assert_eq!(nodes.matches("routeReflectorClusterID: \"1.0.0.1\"").count(), 2, "{nodes}");
}

#[test]
fn an_inventory_is_held_to_kubernetes_grammar_at_its_lines() {
    let scratch = tempfile::tempdir().unwrap();
    let inventory = scratch.path().join("nodes.yaml");
    std::fs::write(
        &inventory,
        "nodes:\n  - {name: n1, ipv4Address: 10.0.0.1/24, labels: {rack: r1}}\n  - {name: N_2, ipv4Address: 10.0.0.2/24}\n  - {name: n3, ipv4Address: 10.0.0.3, labels: {\"rack id\": r1}}\n  - {name: n4, ipv4Adress: 10.0.0.4/24}\n",
    )
    .unwrap();
    let intent = scratch.path().join("intent.yaml");
    std::fs::write(
        &intent,
        "apiVersion: calplan/v1\nkind: ClusterIntent\nmetadata: {name: x}\nspec:\n  nodeRules:\n    - {name: r1, nodeSelector: rack == 'r1', asNumber: 65001}\n",
    )
    .unwrap();
    let output = calplan(&["check", intent.to_str().unwrap(), "--nodes", inventory.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    for expected in [
        "`N_2` is not a valid node name",
        "nodes.yaml:3:12]",
        "`10.0.0.3` is not an IPv4 address with a prefix length",
        "invalid label key `rack id`",
        "unknown field `ipv4Adress`",
        "did you mean `ipv4Address`?",
        "error: cannot read the nodes of",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    // A good inventory: the rule covers n1, and a rule for no node is reported.
    std::fs::write(&inventory, "- {name: n1, ipv4Address: 10.0.0.1/24, labels: {rack: r1}}\n").unwrap();
    std::fs::write(
        &intent,
        "apiVersion: calplan/v1\nkind: ClusterIntent\nmetadata: {name: x}\nspec:\n  nodeRules:\n    - {name: r1, nodeSelector: rack == 'r1', asNumber: 65001}\n    - {name: r2, nodeSelector: rack == 'r2', asNumber: 65002}\n",
    )
    .unwrap();
    let output = calplan(&["check", intent.to_str().unwrap(), "--nodes", inventory.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("W0505") && stderr.contains("node rule `r2` selects no node"), "{stderr}");
}

#[test]
fn a_rule_that_sets_autodetection_gets_its_own_calico_node_settings() {
    let scratch = tempfile::tempdir().unwrap();
    let intent = scratch.path().join("intent.yaml");
    let text_of = std::fs::read_to_string(golden::root().join("testdata/node-rules/intent.yaml")).unwrap().replace(
        "      labels: {bgp-group: r2}\n",
        "      labels: {bgp-group: r2}\n      nodeAddressAutodetection: {ipv4: \"interface=eth1\"}\n",
    );
    std::fs::write(&intent, text_of).unwrap();
    let (out, output) = compile_dir(&[intent.to_str().unwrap(), "--current", "testdata/node-rules/current"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let env = std::fs::read_to_string(out.path().join("calico/calico-node-env-rack-2.yaml")).unwrap();
    assert!(env.contains("now r2-infra-a, r2-w1"), "{env}");
    assert!(env.contains("value: interface=eth1"), "{env}");
    let cluster = std::fs::read_to_string(out.path().join("calico/calico-node-env.yaml")).unwrap();
    assert!(cluster.contains("value: can-reach=10.0.0.1"), "{cluster}");
    assert!(!out.path().join("calico/calico-node-env-rack-1.yaml").exists());
}

/// `import` of a cluster whose nodes' settings follow their labels (an AS per rack, a
/// reflector cluster per rack) proposes node rules instead of listing the nodes, lists the one
/// node that fits no rule (and the reflectors, for their marker labels), and planning the
/// imported intent against the same cluster changes nothing.
#[test]
fn import_proposes_rules_for_settings_that_follow_labels() {
    let directory = tempfile::tempdir().unwrap();
    let intent = directory.path().join("imported.yaml");
    let current = "testdata/import-racks/current";
    let output = calplan(&["import", "--current", current, "-o", intent.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let imported = std::fs::read_to_string(&intent).unwrap();
    golden::assert_all(golden::check(&golden::root().join("testdata/import-racks/imported.yaml"), &imported).err().into_iter().collect());
    assert!(imported.contains("nodeSelector: rack == 'r1'\n    asNumber: 65001"), "{imported}");
    assert!(
        imported.contains("nodeSelector: node-role == 'infra' && rack == 'r3'\n    routeReflectorClusterID: \"244.0.3.1\""),
        "{imported}"
    );
    assert!(!imported.contains("name: r1-n3"), "a node the rules describe is not listed:\n{imported}");
    assert!(imported.contains("- name: r3-n4\n    ipv4Address: 10.0.3.4/24\n    asNumber: 65100"), "{imported}");
    assert!(text(&output.stderr).contains("1 node fit no rule and is listed in `nodes`: `r3-n4`"), "{}", text(&output.stderr));
    let output = calplan(&["plan", intent.to_str().unwrap(), "--current", current, "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "an empty plan:\n{}{}", text(&output.stdout), text(&output.stderr));
    // The rules are what the plan reads: a node joining rack r2 gets the rack's AS.
    let cluster = directory.path().join("cluster.yaml");
    let mut export = std::fs::read_to_string(format!("{current}/cluster.yaml")).unwrap();
    export.push_str("---\napiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: r2-n5, labels: {rack: r2}}\nspec: {bgp: {ipv4Address: 10.0.2.5/24}}\n");
    std::fs::write(&cluster, export).unwrap();
    let output = calplan(&["plan", intent.to_str().unwrap(), "--current", cluster.to_str().unwrap()]);
    let shown = text(&output.stdout);
    assert!(shown.contains("r2-n5") && shown.contains("65002"), "the joining node gets its rack's AS:\n{shown}{}", text(&output.stderr));
}

/// Without settings that labels explain (one node per value, or nothing set), `import` lists
/// the nodes as before and proposes no rule.
#[test]
fn import_proposes_no_rule_for_a_single_node() {
    let export = "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: a, labels: {rack: r1}}\nspec: {bgp: {ipv4Address: 10.0.0.1/24, asNumber: 65001}}\n---\n\
        apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: b, labels: {rack: r2}}\nspec: {bgp: {ipv4Address: 10.0.0.2/24, asNumber: 65002}}\n";
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("cluster.yaml");
    std::fs::write(&path, export).unwrap();
    let loaded = calplan::current::load(&[path.display().to_string()]).unwrap();
    let resources = loaded.state.resources.expect("the export reads");
    let proposal = calplan_plan::import::propose_node_rules(&resources);
    assert!(proposal.rules.is_empty(), "{proposal:?}");
}

/// A plan made with `--nodes` records the inventory's digest; once the inventory changes (a
/// node joined, a label moved), `apply` refuses the plan, naming the inventory, before it
/// reaches any datastore.
#[test]
fn a_plan_is_stale_once_its_node_inventory_changes() {
    let scratch = tempfile::tempdir().unwrap();
    let intent = scratch.path().join("rules.yaml");
    std::fs::write(&intent, seed_as_rules()).unwrap();
    let inventory = scratch.path().join("nodes.yaml");
    let original = std::fs::read_to_string(golden::root().join("testdata/seed-kdd/current/nodes.yaml")).unwrap();
    std::fs::write(&inventory, &original).unwrap();
    let plan = scratch.path().join("change.plan");
    let (intent, inventory_path) = (intent.to_str().unwrap(), inventory.to_str().unwrap());
    let output = calplan(&["plan", intent, "--nodes", inventory_path, "-o", plan.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert_eq!(saved["nodes"]["sha256"], calplan_plan::current::text_digest(&original), "{}", saved["nodes"]);
    let apply = || {
        let state = scratch.path().join("state");
        let args = ["apply", plan.to_str().unwrap(), "--only", "calico", "--calico", "etcd://127.0.0.1:9", "--state"];
        calplan(&[&args[..], &[state.to_str().unwrap(), "--auto-approve"]].concat())
    };
    // Unchanged, the plan is fresh: apply gets as far as the datastore (nothing listens there).
    let stderr = text(&apply().stderr);
    assert!(!stderr.contains("stale plan"), "{stderr}");
    std::fs::write(&inventory, original.replacen("cs1-k8s-n3", "cs1-k8s-n4", 1)).unwrap();
    let output = apply();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("stale plan") && stderr.contains(&format!("the node inventory `{inventory_path}` (`--nodes`) changed")),
        "{stderr}"
    );
}
