//! Clusters installed by the Tigera operator: pools its `Installation` lists change through the
//! Installation, never as IPPools; changes that restart calico-node everywhere (Installation
//! encapsulation, BGPConfiguration `bindMode` and `listenPort`) are stages of their own, marked
//! disruptive, each with a barrier on the sessions coming back.

use crate::apply::KubectlStandIn;
use crate::cli::{calplan_with as run, text};
use crate::current::Etcd;
use serde_json::Value;
use std::path::Path;

/// The seed's mesh cluster as intent, with `edit` applied to its text.
fn intent(directory: &Path, edit: impl Fn(String) -> String) -> String {
    let text = std::fs::read_to_string(crate::golden::root().join("testdata/mesh-to-rr/mesh.yaml")).unwrap();
    let path = directory.join("intent.yaml");
    std::fs::write(&path, edit(text)).unwrap();
    path.display().to_string()
}

/// The operator's Installation as `kubectl get installation default -o yaml` prints it, its one
/// pool the seed's (unnamed, so the operator calls it `default-ipv4-ippool`), no encapsulation.
const INSTALLATION: &str = "apiVersion: operator.tigera.io/v1
kind: Installation
metadata:
  name: default
  resourceVersion: \"8812\"
spec:
  registry: quay.io/
  calicoNetwork:
    bgp: Enabled
    mtu: 1440
    ipPools:
    - blockSize: 26
      cidr: 192.168.0.0/16
      encapsulation: None
      natOutgoing: Enabled
      nodeSelector: all()
";

fn operator_intent(directory: &Path) -> String {
    intent(directory, |text| {
        text.replace("  datastore: etcdv3\n", "  datastore: etcdv3\n  installation: operator\n")
            .replace("      ipipMode: Never\n", "      ipipMode: Always\n")
            .replace("      natOutgoing: true\n", "      natOutgoing: false\n")
    })
}

fn plan_json(args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    let output = run(&args, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn changes(stage: &Value) -> Vec<&Value> {
    stage["changes"].as_array().unwrap().iter().collect()
}

#[test]
fn operator_pools_change_through_the_installation_and_encapsulation_stands_alone() {
    let directory = tempfile::tempdir().unwrap();
    let intent = operator_intent(directory.path());
    let installation = directory.path().join("installation.yaml");
    std::fs::write(&installation, INSTALLATION).unwrap();
    let plan = plan_json(&["plan", &intent, "--current", "testdata/mesh-to-rr/current", "--current", installation.to_str().unwrap()]);
    let stages = plan["stages"].as_array().unwrap();
    let all: Vec<&Value> = stages.iter().flat_map(changes).collect();
    assert!(all.iter().all(|change| change["kind"] != "IPPool"), "never the IPPool: {plan:#}");
    let installation_changes: Vec<(&Value, &Value)> = stages
        .iter()
        .flat_map(|stage| changes(stage).into_iter().map(move |change| (stage, change)))
        .filter(|(_, change)| change["kind"] == "Installation")
        .collect();
    assert_eq!(installation_changes.len(), 2, "NAT with the settings, encapsulation alone: {plan:#}");
    let (settings, nat) = installation_changes[0];
    let pool = |change: &Value| change["after"]["value"]["spec"]["calicoNetwork"]["ipPools"][0].clone();
    assert_eq!(pool(nat)["natOutgoing"], "Disabled");
    assert_eq!(pool(nat)["encapsulation"], "None", "the encapsulation waits for its own stage");
    assert!(pool(nat).get("name").is_none(), "an unnamed entry stays unnamed: {nat:#}");
    assert_eq!(nat["after"]["value"]["spec"]["registry"], "quay.io/", "the rest of the Installation is kept");
    assert!(nat["reason"].as_str().unwrap().contains("never to the IPPool"), "{nat:#}");
    assert!(settings.get("barrier").is_none() || settings["barrier"]["type"] != "sessionsEstablished");
    let (restart, encapsulation) = installation_changes[1];
    assert_eq!(pool(encapsulation)["encapsulation"], "IPIP");
    assert_eq!(restart["title"], "Pool encapsulation");
    assert_eq!(restart["changes"].as_array().unwrap().len(), 1, "the restart comes alone");
    assert!(restart["disruption"].as_str().unwrap().contains("calico-node restarts on every node"), "{restart:#}");
    assert_eq!(restart["barrier"]["type"], "sessionsEstablished");
    assert_eq!(restart["barrier"]["sessions"].as_object().unwrap().len(), 6, "every node's sessions come back");
    // Without the Installation among the sources the plan says so, and still never edits the IPPool.
    let blind = plan_json(&["plan", &intent, "--current", "testdata/mesh-to-rr/current"]);
    assert!(
        blind["notes"].as_array().unwrap().iter().any(|note| note.as_str().unwrap().contains("kubectl get installation default -o yaml"))
    );
    assert!(blind["stages"].as_array().unwrap().iter().flat_map(changes).all(|change| change["kind"] != "IPPool"));
    // compile writes the Installation's pool list, and an applied directory carries it.
    let out = directory.path().join("out");
    let output = run(&["compile", &intent, "-o", out.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let compiled = std::fs::read_to_string(out.join("calico/installation.yaml")).unwrap();
    assert!(compiled.contains("kind: Installation") && compiled.contains("encapsulation: IPIP"), "{compiled}");
    let again = plan_json(&["plan", &intent, "--current", out.to_str().unwrap()]);
    assert!(again["stages"].as_array().unwrap().iter().flat_map(changes).all(|change| change["kind"] != "Installation"), "{again:#}");
}

#[test]
fn bind_mode_and_listen_port_restart_calico_node_in_stages_of_their_own() {
    let directory = tempfile::tempdir().unwrap();
    let intent = intent(directory.path(), |text| {
        text.replace("    nodeToNodeMesh: true\n", "    nodeToNodeMesh: true\n    bindMode: NodeIP\n    listenPort: 1179\n")
    });
    let plan = plan_json(&["plan", &intent, "--current", "testdata/mesh-to-rr/current"]);
    for title in ["BGP bind mode", "BGP listen port"] {
        let stage =
            plan["stages"].as_array().unwrap().iter().find(|stage| stage["title"] == title).unwrap_or_else(|| panic!("{title}: {plan:#}"));
        assert_eq!(stage["changes"].as_array().unwrap().len(), 1, "{stage:#}");
        assert!(stage["disruption"].as_str().unwrap().contains("calico-node restarts BIRD on every node"), "{stage:#}");
        assert_eq!(stage["barrier"]["type"], "sessionsEstablished", "{stage:#}");
    }
    let settings = plan["stages"].as_array().unwrap().iter().find(|stage| stage["title"] == "Pools and settings");
    assert!(
        settings.is_none_or(|stage| changes(stage).iter().all(|change| !change["diff"].as_str().unwrap().contains("bindMode"))),
        "bindMode waits for its own stage"
    );
}

#[test]
fn the_installation_is_written_through_kubectl_and_the_ippool_left_alone_stand_in_real_etcd() {
    let etcd = Etcd::start();
    crate::current::create_resources(&etcd.client(), "testdata/mesh-to-rr/current");
    let directory = tempfile::tempdir().unwrap();
    let installation = directory.path().join("installation.yaml");
    std::fs::write(&installation, INSTALLATION).unwrap();
    // The stand-in API server holds the same Installation.
    let stored = calplan_plan::current::calico_yaml::installation(calplan_diagnostics::FileId(0), INSTALLATION).unwrap();
    let key = "/stand-in/operator.tigera.io/installations/default";
    etcd.client().create(key, stored.to_string().as_bytes()).unwrap();
    let pool_key = "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool";
    let pool_before = etcd.client().get(pool_key).unwrap().unwrap();
    let intent = operator_intent(directory.path());
    let plan = directory.path().join("operator.plan");
    let output = run(
        &["plan", &intent, "--current", &etcd.source(), "--current", installation.to_str().unwrap(), "-o", plan.to_str().unwrap()],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let kubectl = KubectlStandIn::new(directory.path(), &etcd);
    let output = run(
        &[
            "apply",
            plan.to_str().unwrap(),
            "--calico",
            "kubectl",
            "--only",
            "calico",
            "--state",
            directory.path().join("state").to_str().unwrap(),
            "--auto-approve",
        ],
        &kubectl.environment(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let written: Value = serde_json::from_slice(&etcd.client().get(key).unwrap().unwrap().value).unwrap();
    let pool = &written["spec"]["calicoNetwork"]["ipPools"][0];
    assert_eq!((pool["encapsulation"].as_str(), pool["natOutgoing"].as_str()), (Some("IPIP"), Some("Disabled")), "{written:#}");
    assert_eq!(written["spec"]["calicoNetwork"]["mtu"], 1440);
    assert_eq!(
        etcd.client().get(pool_key).unwrap().unwrap().mod_revision,
        pool_before.mod_revision,
        "the IPPool is the operator's to change"
    );
    let lines = kubectl.lines();
    let writes: Vec<&String> = lines.iter().filter(|line| line.starts_with("apply")).collect();
    assert!(writes.iter().all(|line| line.contains("-installation-default.json") && !line.contains("ippool")), "{writes:#?}");
    assert_eq!(writes.iter().filter(|line| !line.contains("--dry-run")).count(), 2, "{writes:#?}");
}
