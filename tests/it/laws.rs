//! The laws the planner keeps, checked over generated clusters:
//!
//! - importing a cluster and planning the imported intent against it changes nothing;
//! - the same inputs give the same plan, byte for byte.

use calplan::pipeline;
use calplan_plan::plan::Fingerprint;
use proptest::prelude::*;

/// A Calico export of a generated cluster, as `calicoctl get … -o yaml` would print it.
fn export() -> impl Strategy<Value = String> {
    let node = (any::<bool>(), prop::sample::select(vec!["", "rack: a", "rack: b", "zone: x"]), prop::option::of(64_600u32..64_610));
    let pool = (
        prop::sample::select(vec![24u8, 26, 28]),
        prop::sample::select(vec![("Never", "Never"), ("Always", "Never"), ("CrossSubnet", "Never"), ("Never", "Always")]),
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec!["all()", "has(rack)", "rack == 'a'"]),
    );
    let peer = (any::<bool>(), prop::sample::select(vec!["all()", "has(rack)", "!has(zone)"]), prop::option::of(0u8..4));
    (
        prop::collection::vec(node, 1..10),
        prop::collection::vec(pool, 1..4),
        prop::collection::vec(peer, 0..4),
        any::<bool>(),
        prop::option::of(64_512u32..64_520),
        any::<bool>(),
    )
        .prop_map(|(nodes, pools, peers, mesh, as_number, by_rack)| {
            let mut documents = Vec::new();
            let mut configuration = format!("apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {{name: default}}\nspec:\n  nodeToNodeMeshEnabled: {mesh}\n");
            if let Some(number) = as_number {
                configuration.push_str(&format!("  asNumber: {number}\n"));
            }
            documents.push(configuration);
            for (index, (reflector, labels, node_as)) in nodes.iter().enumerate() {
                let mut bgp = format!("ipv4Address: 10.0.0.{}/24", index + 10);
                // Settings that follow the rack label (`import` proposes rules for them), but
                // for nodes without a setting and every third node, an exception.
                let rack = labels.strip_prefix("rack: ").filter(|_| by_rack && index % 3 != 2);
                if *reflector {
                    bgp.push_str(&format!(", routeReflectorClusterID: 244.0.0.{}", if rack == Some("b") { 2 } else { 1 }));
                }
                let node_as = match rack {
                    Some(rack) => node_as.map(|_| if rack == "a" { 65101 } else { 65102 }),
                    None => *node_as,
                };
                if let Some(number) = node_as {
                    bgp.push_str(&format!(", asNumber: {number}"));
                }
                documents.push(format!(
                    "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: node-{index}, labels: {{{labels}}}}}\nspec: {{bgp: {{{bgp}}}}}\n"
                ));
            }
            for (index, (block, (ipip, vxlan), nat, disabled, selector)) in pools.iter().enumerate() {
                documents.push(format!(
                    "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: pool-{index}}}\nspec: {{cidr: 10.{}.0.0/16, blockSize: {block}, ipipMode: {ipip}, vxlanMode: {vxlan}, natOutgoing: {nat}, disabled: {disabled}, nodeSelector: \"{selector}\"}}\n",
                    100 + index
                ));
            }
            for (index, (by_selector, node_selector, target)) in peers.iter().enumerate() {
                let remote = if *by_selector {
                    "peerSelector: has(rack)".to_string()
                } else {
                    format!("peerIP: 10.0.0.{}, asNumber: 64999", 200 + target.unwrap_or(0))
                };
                documents.push(format!(
                    "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: peer-{index}}}\nspec: {{nodeSelector: \"{node_selector}\", {remote}}}\n"
                ));
            }
            documents.join("---\n")
        })
}

fn plan_against(intent_text: &str, loaded: &calplan::current::Loaded) -> Option<String> {
    let fingerprint = Fingerprint { name: "intent.yaml".into(), sha256: calplan_plan::current::text_digest(intent_text) };
    let checked = pipeline::check("intent.yaml", intent_text.to_string(), loaded.state.observed_ipam().as_ref());
    pipeline::plan(&checked, fingerprint, loaded).expect("every state on the way compiles").map(|plan| plan.to_json())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// `calplan import` writes the intent of a cluster as it stands, findings allowed: it is
    /// valid, and planning it against the same cluster changes nothing.
    #[test]
    fn importing_a_cluster_then_planning_it_changes_nothing(export in export()) {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("cluster.yaml");
        std::fs::write(&path, &export).unwrap();
        let loaded = calplan::current::load(&[path.display().to_string()]).unwrap();
        let resources = loaded.state.resources.clone().expect("the export reads");
        let imported = pipeline::import(&resources, "generated", Some("v3.30.0"), None, None);
        let (intent, checked) = (imported.text, imported.checked);
        prop_assert!(checked.valid().is_some(), "import gave\n{intent}\nwith {:?}", checked.diagnostics);
        let fingerprint = Fingerprint { name: "intent.yaml".into(), sha256: String::new() };
        let plan = pipeline::plan(&checked, fingerprint, &loaded).unwrap().unwrap();
        prop_assert!(plan.is_empty(), "import gave\n{intent}\nand the plan\n{}", calplan_plan::render::human(&plan, false));
    }
}

#[test]
fn plans_are_deterministic() {
    for dir in crate::scenarios::scenario_dirs() {
        if !dir.join("current").is_dir() {
            continue;
        }
        let relative = dir.strip_prefix(crate::golden::root()).unwrap().join("current").display().to_string();
        let text = std::fs::read_to_string(dir.join("intent.yaml")).unwrap();
        let first = plan_against(&text, &calplan::current::load(std::slice::from_ref(&relative)).unwrap());
        let second = plan_against(&text, &calplan::current::load(std::slice::from_ref(&relative)).unwrap());
        assert!(first.is_some(), "{}", dir.display());
        assert_eq!(first, second, "{}", dir.display());
    }
}

/// A BGPFilter exists before a peer names it (confd leaves out a filter that does not exist,
/// so the peer would run unfiltered in between) and goes only after no peer names it.
#[test]
fn bgp_filters_come_before_the_peers_that_name_them_and_go_after() {
    let current = "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: true}\n---\n\
        apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n1}\nspec: {bgp: {ipv4Address: 10.0.0.1/24}}\n---\n\
        apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pods}\nspec: {cidr: 192.168.0.0/16, blockSize: 26}\n---\n\
        apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {name: old-export}\nspec: {exportV4: [{action: Reject}]}\n---\n\
        apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor-old}\nspec: {peerIP: 10.0.0.254, asNumber: 65001, filters: [old-export]}\n";
    let intent = "apiVersion: calplan/v1\nkind: ClusterIntent\nmetadata: {name: filters}\nspec:\n  calicoVersion: \"3.30\"\n  bgp:\n    \
        filters:\n      - {name: new-export, exportV4: [{action: Accept, matchOperator: In, cidr: 192.168.0.0/16}, {action: Reject}]}\n    \
        peers:\n      - {name: tor-new, peerIP: 10.0.0.253, asNumber: 65001, filters: [new-export]}\n  \
        pools:\n    - {name: pods, cidr: 192.168.0.0/16, blockSize: 26}\n  nodes:\n    - {name: n1, ipv4Address: 10.0.0.1/24}\n";
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("cluster.yaml");
    std::fs::write(&path, current).unwrap();
    let loaded = calplan::current::load(&[path.display().to_string()]).unwrap();
    let plan: serde_json::Value = serde_json::from_str(&plan_against(intent, &loaded).expect("a plan")).unwrap();
    let stage_of = |action: &str, kind: &str, name: &str| -> usize {
        plan["stages"]
            .as_array()
            .unwrap()
            .iter()
            .position(|stage| {
                stage["changes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|change| change["action"] == action && change["kind"] == kind && change["name"] == name)
            })
            .unwrap_or_else(|| panic!("no {action} of {kind}/{name} in\n{plan:#}"))
    };
    assert!(stage_of("create", "BGPFilter", "new-export") < stage_of("create", "BGPPeer", "tor-new"));
    assert!(stage_of("delete", "BGPPeer", "tor-old") < stage_of("delete", "BGPFilter", "old-export"));
}
