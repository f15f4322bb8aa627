//! `calplan lab`: scenarios built in network namespaces with BIRD 2 and FRR, or in calico-node
//! mode with BIRD 1.6 on confd's render of a lab etcd, verified, probed while plans are
//! applied, and torn down without a trace. Root only, as the names say.
//!
//! Lab tests run one at a time (a lock below): they measure packet loss at 20 ms resolution,
//! and two labs converging at once on two cores would only add noise.

use crate::cli::{both, calplan_with as calplan, text};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

static ONE_LAB_AT_A_TIME: Mutex<()> = Mutex::new(());

fn namespaces_with(prefix: &str) -> Vec<String> {
    let listing = Command::new("ip").args(["netns", "list"]).output().expect("ip runs");
    text(&listing.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(&format!("{prefix}-")))
        .map(str::to_string)
        .collect()
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().to_string()))
        .is_some_and(|rest| !rest.starts_with('Z'))
}

/// A lab in a directory of its own; `down` when dropped, so a failing test leaves nothing.
struct Lab {
    _scratch: tempfile::TempDir,
    dir: PathBuf,
    intent: String,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Lab {
    fn new(intent: &str) -> Lab {
        let serial = ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("lab");
        Lab { _scratch: scratch, dir, intent: intent.to_string(), _serial: serial }
    }

    fn dir(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn up(&self) {
        self.up_with(&[]);
    }

    fn up_with(&self, extra: &[&str]) {
        let mut args = vec!["lab", "up", &self.intent, "--dir", self.dir()];
        args.extend_from_slice(extra);
        let output = calplan(&args, &[]);
        assert_eq!(output.status.code(), Some(0), "lab up {}:\n{}", self.intent, both(&output));
    }

    /// The lab's etcd, in calico-node mode (`etcd://127.0.0.1:PORT`).
    fn etcd(&self) -> String {
        format!("etcd://127.0.0.1:{}", self.layout()["etcd"]["clientPort"])
    }

    /// `lab verify`, giving the lab `timeout` seconds to converge.
    fn verify_within(&self, intent: &str, timeout: &str) -> Output {
        calplan(&["lab", "verify", intent, "--dir", self.dir(), "--timeout", timeout], &[])
    }

    fn verify(&self, intent: &str) -> Output {
        self.verify_within(intent, "45")
    }

    fn layout(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.join("lab.json")).expect("lab.json")).unwrap()
    }

    fn prefix(&self) -> String {
        self.layout()["prefix"].as_str().unwrap().to_string()
    }

    /// Every process the lab runs: those in its namespaces, and in calico-node mode its etcd
    /// and calico-node emulation (in this machine's namespace, named by their pid files).
    fn processes(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = namespaces_with(&self.prefix())
            .iter()
            .flat_map(|namespace| {
                let output = Command::new("ip").args(["netns", "pids", namespace]).output().unwrap();
                text(&output.stdout).lines().filter_map(|line| line.trim().parse().ok()).collect::<Vec<u32>>()
            })
            .collect();
        for file in ["etcd/etcd.pid", "calico-node.pid"] {
            if let Some(pid) = std::fs::read_to_string(self.dir.join(file)).ok().and_then(|text| text.trim().parse().ok()) {
                assert!(running(pid), "the lab's `{file}` names a process that does not run");
                pids.push(pid);
            }
        }
        pids
    }

    /// Processes whose command line names the lab's directory (its etcd, its emulation, …).
    fn naming_the_directory(&self) -> Vec<u32> {
        let dir = self.dir.display().to_string();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|entry| entry.file_name().to_string_lossy().parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|line| {
                    String::from_utf8_lossy(&line).split('\0').any(|arg| arg == dir || arg.starts_with(&format!("{dir}/")))
                })
            })
            .filter(|pid| running(*pid))
            .collect()
    }

    /// `lab down`, then nothing of the lab is left: no namespace, no process, no directory.
    fn down_and_check(&self) {
        let (prefix, processes) = (self.prefix(), self.processes());
        assert!(!processes.is_empty(), "the lab runs processes");
        let output = calplan(&["lab", "down", &self.intent, "--dir", self.dir()], &[]);
        assert_eq!(output.status.code(), Some(0), "lab down:\n{}", both(&output));
        assert_eq!(namespaces_with(&prefix), Vec::<String>::new(), "namespaces left behind");
        let alive: Vec<u32> = processes.into_iter().filter(|pid| running(*pid)).collect();
        assert!(alive.is_empty(), "processes left behind: {alive:?}");
        assert!(!self.dir.exists(), "the lab's directory (and with it any etcd data) is left behind");
        assert_eq!(self.naming_the_directory(), Vec::<u32>::new(), "processes of the lab's left behind");
        assert!(!Path::new("/var/run/frr").read_dir().is_ok_and(|mut entries| {
            entries.any(|entry| entry.is_ok_and(|entry| entry.file_name().to_string_lossy().starts_with(&prefix)))
        }));
    }

    /// Plans `intent` against the lab's applied state (and in calico-node mode its etcd).
    fn plan(&self, intent: &str) -> PathBuf {
        let plan = self._scratch.path().join("change.plan");
        let args = self.plan_args(intent, &["-o", plan.to_str().unwrap()]);
        let output = calplan(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
        assert_eq!(output.status.code(), Some(0), "plan:\n{}", both(&output));
        plan
    }

    fn plan_args<'a>(&self, intent: &'a str, extra: &[&'a str]) -> Vec<String> {
        let mut args: Vec<String> = ["plan", intent, "--current"].map(String::from).to_vec();
        args.push(self.dir.join("state/applied").display().to_string());
        if self.layout()["etcd"].is_object() {
            args.extend(["--current".to_string(), self.etcd()]);
        }
        args.extend(extra.iter().map(|arg| arg.to_string()));
        args
    }

    /// Whether a plan of `intent` against the lab is empty.
    fn plans_nothing(&self, intent: &str) -> Output {
        let args = self.plan_args(intent, &["--detailed-exitcode"]);
        calplan(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
    }

    fn apply(&self, plan: &Path, extra: &[&str]) -> (Output, Value) {
        let mut args = vec!["lab", "apply", plan.to_str().unwrap(), "--dir", self.dir()];
        args.extend_from_slice(extra);
        let output = calplan(&args, &[]);
        let report =
            std::fs::read_to_string(self.dir.join("apply-report.json")).unwrap_or_else(|_| panic!("no report:\n{}", both(&output)));
        (output, serde_json::from_str(&report).unwrap())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.dir.exists() {
            let _ = calplan(&["lab", "down", &self.intent, "--dir", self.dir()], &[]);
        }
    }
}

fn lost(report: &Value) -> u64 {
    report["intervals"].as_array().unwrap().iter().map(|interval| interval["lost"].as_u64().unwrap()).sum()
}

/// The seed cluster: six BIRD 2 nodes with two reflectors, the harbor host on its compiled
/// routes, a pod per node; every check passes, and `down` leaves nothing behind.
#[test]
fn lab_up_verify_down_on_the_seed_leaves_nothing_behind_needs_root() {
    let lab = Lab::new("testdata/seed-rr/intent.yaml");
    lab.up();
    let layout = lab.layout();
    assert_eq!(layout["pods"].as_array().unwrap().len(), 6);
    let output = lab.verify("testdata/seed-rr/intent.yaml");
    let report = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    for expected in [
        "ok   cs1-k8s-m1.zpepc.com.cn: 2 Established (21.49.22.7 node specific, 21.49.22.8 node specific)",
        "ok   cs1-k8s-n1.zpepc.com.cn: 6 routes as in nodes/cs1-k8s-n1.zpepc.com.cn/routes",
        "ok   cs1-harbor-1 → pod0 (192.168.0.1 on cs1-k8s-m1.zpepc.com.cn): ping answered, TCP :8080 connected",
        "Pod → pod across nodes (every pair: 15)",
        "arrives from 21.49.22.4 (its node is 21.49.22.4)",
        "Result: all 39 checks passed.",
    ] {
        assert!(report.contains(expected), "`{expected}` missing from:\n{report}");
    }
    // What the lab runs is what apply recorded: the intent plans to nothing against it.
    let current = lab.dir.join("state/applied");
    let output = calplan(&["plan", "testdata/seed-rr/intent.yaml", "--current", current.to_str().unwrap(), "--detailed-exitcode"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    // Verifying another intent against this lab finds the differences.
    let output = lab.verify_within("testdata/mesh-to-rr/mesh.yaml", "2");
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(text(&output.stdout).contains("GAP "), "{}", both(&output));
    lab.down_and_check();
}

/// Dual stack with VXLAN on real `vxlan` devices (IPv4 Always, IPv6 CrossSubnet across two
/// subnets on one segment), two reflector clusters, and a top-of-rack peer emulated by FRR on
/// three addresses (one a loopback behind `reachableBy`, one with TTL security and a password).
#[test]
fn lab_carries_vxlan_dual_stack_and_external_peers_needs_root() {
    let lab = Lab::new("testdata/vxlan-multi-rr/intent.yaml");
    lab.up_with(&["--node-agent", "bird"]);
    let output = lab.verify("testdata/vxlan-multi-rr/intent.yaml");
    let report = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(report.contains("Pod → pod across nodes (every pair: 12)"), "{report}");
    assert!(report.contains("ok   pod1 (fd00:10::1 on rack1-rr) ↔ pod7 (fd00:10::c1 on rack2-w1): ping answered"), "{report}");
    for local in ["10.1.0.1", "10.255.0.1", "2001:db8::1"] {
        assert!(report.contains(&format!("ok   as65010 from {local}: learned")), "{local}:\n{report}");
    }
    lab.down_and_check();
}

/// The pool-migration scenario's intent (a /24-block pool on its own CIDR) runs as compiled,
/// on BIRD 2.
#[test]
fn lab_carries_the_migrated_pool_needs_root() {
    let lab = Lab::new("testdata/pool-migration/intent.yaml");
    lab.up_with(&["--node-agent", "bird"]);
    let output = lab.verify("testdata/pool-migration/intent.yaml");
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(text(&output.stdout).contains("ok   cs1-harbor-1 → pod0 (10.244.0.1 on cs1-k8s-m1.zpepc.com.cn)"), "{}", both(&output));
    lab.down_and_check();
}

/// The scenarios no other lab test runs, in both modes: Calico 3.31's BGP API (a node with
/// its own listen port, a peer met with its own local AS, filters, communities, dual stack)
/// and the seed on the Kubernetes datastore. Each is up, verified without a gap, and down.
#[test]
fn lab_verifies_the_bgp_api_and_kdd_scenarios_in_both_modes_needs_root() {
    for intent in ["testdata/bgp-api/intent.yaml", "testdata/seed-kdd/intent.yaml"] {
        for agent in ["bird", "calico-node"] {
            let lab = Lab::new(intent);
            lab.up_with(&["--node-agent", agent]);
            let output = lab.verify(intent);
            assert_eq!(output.status.code(), Some(0), "{intent} on {agent}:\n{}", both(&output));
            assert!(text(&output.stdout).contains("checks passed"), "{intent} on {agent}:\n{}", both(&output));
            lab.down_and_check();
        }
    }
}

/// IPIP without an `ipip` module: the mesh, the routes BIRD programs through `tunl0` (a
/// stand-in device), and the same-subnet paths are checked; the tunnelled paths are reported
/// as control plane only. The top-of-rack router runs its compiled `frr.conf`.
#[test]
fn lab_checks_ipip_on_the_control_plane_without_the_module_needs_root() {
    let lab = Lab::new("testdata/mesh-ipip/intent.yaml");
    lab.up();
    // The router sessions never come up (the known gap below): give the rest 15 seconds.
    let output = lab.verify_within("testdata/mesh-ipip/intent.yaml", "15");
    let report = text(&output.stdout);
    let ipip_in_kernel = lab.layout()["ipipInKernel"].as_bool().unwrap();
    if !ipip_in_kernel {
        assert!(report.contains("this kernel has no `ipip` module"), "{report}");
        assert!(report.contains("through IPIP, control plane only"), "{report}");
    }
    for expected in [
        "ok   node-a1: 4 routes as in nodes/node-a1/routes",
        "ok   pod2 (10.244.2.1 on node-b1) ↔ pod4 (10.244.3.1 on node-b2): ping answered",
    ] {
        assert!(report.contains(expected), "`{expected}` missing from:\n{report}");
    }
    // The router's BGP password reaches its FRR through apply (the placeholder in frr.conf is
    // filled on the router only), so its password-protected sessions come up: no gap at all.
    let gaps: Vec<&str> = report.lines().filter(|line| line.trim_start().starts_with("GAP")).collect();
    assert!(gaps.is_empty(), "gaps: {gaps:#?}\n{report}");
    lab.down_and_check();
}

/// The same IPIP cluster on calico-node: BIRD 1.6 on confd's render, its fork-only
/// `krt_tunnel` statement neutralised in the copy BIRD runs (and said so), the mesh and BIRD's
/// tunnelled routes checked on the control plane. `calplan verify` reads the lab as a cluster:
/// confd's render is as intended, and the routes BIRD 1.6 programs without `tunl0` are reported
/// as the drift from Calico's fork they are.
#[test]
fn calico_node_lab_checks_ipip_on_the_control_plane_needs_root() {
    let lab = Lab::new("testdata/mesh-ipip/intent.yaml");
    lab.up_with(&["--node-agent", "calico-node"]);
    let output = lab.verify_within("testdata/mesh-ipip/intent.yaml", "20");
    let report = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    for expected in [
        "ok   node-a1: 4 routes as in nodes/node-a1/routes",
        "neutralised as `print \"krt_tunnel\";`",
        "ok   pod2 (10.244.2.1 on node-b1) ↔ pod4 (10.244.3.1 on node-b2): ping answered",
    ] {
        assert!(report.contains(expected), "`{expected}` missing from:\n{report}");
    }
    let intent = lab._scratch.path().join("calico-node.yaml");
    let text_of_intent = std::fs::read_to_string("testdata/mesh-ipip/intent.yaml").unwrap();
    std::fs::write(&intent, text_of_intent.replace("nodeAgent: bird ", "nodeAgent: calico-node ")).unwrap();
    let inventory = lab.dir.join("inventory.json");
    let output = calplan(
        &[
            "verify",
            intent.to_str().unwrap(),
            "--current",
            &lab.etcd(),
            "--transport",
            "netns",
            "--inventory",
            inventory.to_str().unwrap(),
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    for node in ["node-a1", "node-a2", "node-b1", "node-b2"] {
        let differences = report["nodes"][node].as_array().unwrap_or_else(|| panic!("{node}: {report:#}"));
        assert!(!differences.is_empty(), "{node}: {report:#}");
        for difference in differences {
            assert_eq!(difference["area"], "routes", "{node}: confd's render is as confd writes it: {report:#}");
        }
        assert!(
            differences.iter().any(|difference| difference["expected"].as_str().is_some_and(|route| route.contains("dev tunl0"))),
            "{node}: the fork's tunnelled route is missing: {report:#}"
        );
    }
    lab.down_and_check();
}

/// The seed notes' migration, proved in the lab: the mesh cluster brought up from
/// `mesh.yaml`, the seed intent planned against what the lab applied, and the plan carried
/// out while pods and the harbor host ping each other every 20 ms: not one request lost.
#[test]
fn mesh_to_route_reflectors_is_hitless_in_the_lab_needs_root() {
    let lab = Lab::new("testdata/mesh-to-rr/mesh.yaml");
    lab.up();
    let plan = lab.plan("testdata/seed-rr/intent.yaml");
    let (output, report) = lab.apply(&plan, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let labels: Vec<&str> = report["intervals"].as_array().unwrap().iter().map(|interval| interval["label"].as_str().unwrap()).collect();
    // The planner's order (its stages may grow; these are the ones the migration needs).
    let position =
        |title: &str| labels.iter().position(|label| label.ends_with(title)).unwrap_or_else(|| panic!("no `{title}` stage: {labels:?}"));
    assert_eq!(position("before the plan"), 0);
    assert_eq!(position("Pin routes"), 1);
    assert!(position("Nodes") < position("Node-to-node mesh off"), "{labels:?}");
    assert_eq!(position("Unpin routes"), labels.len() - 2, "{labels:?}");
    assert_eq!(position("after the plan"), labels.len() - 1);
    assert_eq!(lost(&report), 0, "{}", both(&output));
    assert_eq!(report["hitless"], true);
    assert!(report["probes"].as_array().unwrap().len() >= 20, "pod pairs and router → pod: {report:#}");
    // Probes ran throughout: every stage longer than a few probe intervals saw requests (a
    // datastore-only stage can be over in 5 ms, before any of the 21 probes' next request).
    for interval in report["intervals"].as_array().unwrap() {
        if interval["seconds"].as_f64().unwrap() >= 0.1 {
            assert!(interval["sent"].as_u64().unwrap() > 0, "every stage was probed: {report:#}");
        }
    }
    assert!(text(&output.stdout).contains("Hitless: no echo request was lost in any stage."), "{}", both(&output));
    // The lab now runs the seed design.
    let output = lab.verify("testdata/seed-rr/intent.yaml");
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    lab.down_and_check();
}

/// The same change in one stage without pins (the mesh off as the reflectors arrive): the
/// probes see the sessions being replaced, proving they would see a bad plan.
#[test]
fn the_migration_all_at_once_loses_packets_needs_root() {
    let lab = Lab::new("testdata/mesh-to-rr/mesh.yaml");
    lab.up();
    let plan = lab.plan("testdata/seed-rr/intent.yaml");
    let (output, report) = lab.apply(&plan, &["--all-at-once"]);
    assert_eq!(output.status.code(), Some(1), "loss fails the run:\n{}", both(&output));
    assert!(report["error"].is_null(), "the apply itself completed: {report:#}");
    let stage = &report["intervals"][1];
    assert_eq!(stage["label"], "1 Everything at once");
    assert!(stage["lost"].as_u64().unwrap() > 0, "{}", both(&output));
    assert!(text(&output.stdout).contains("Not hitless"), "{}", both(&output));
    lab.down_and_check();
}

/// `up` dies once BIRD and the listeners run; `down` still finds and removes all of it.
#[test]
fn lab_down_cleans_up_after_a_crashed_up_needs_root() {
    let lab = Lab::new("testdata/seed-rr/intent.yaml");
    let output = calplan(&["lab", "up", &lab.intent, "--dir", lab.dir()], &[("CALPLAN_TEST_LAB_CRASH", "after-daemons")]);
    assert_eq!(output.status.code(), Some(99), "{}", both(&output));
    assert!(!lab.processes().is_empty());
    // A second `up` refuses to build over the remains.
    let output = calplan(&["lab", "up", &lab.intent, "--dir", lab.dir()], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(text(&output.stderr).contains("is already up"), "{}", both(&output));
    lab.down_and_check();
}

/// calico-node mode: the seed on its mesh, as Calico runs it — BIRD 1.6 on confd's render of a
/// real etcd, which calplan's apply writes — then the migration to route reflectors applied
/// exactly as on a real cluster (resources into etcd, pins through the namespaces, barriers
/// reading BIRD 1.6 on calico-node's sockets) while every path is probed: nothing lost, the
/// confd emulation re-rendered every node after the revisions apply wrote, and only it wrote
/// BIRD's configuration.
#[test]
fn calico_node_lab_migrates_the_mesh_to_reflectors_hitlessly_needs_root() {
    let lab = Lab::new("testdata/calico-node-rr/before.yaml");
    lab.up();
    assert_eq!(lab.layout()["nodeAgent"], "calico-node", "the intent's nodeAgent is the default");
    let output = lab.verify("testdata/calico-node-rr/before.yaml");
    let report = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    for expected in [
        "ok   cs1-k8s-n1.zpepc.com.cn: 5 Established",
        "ok   cs1-k8s-n1.zpepc.com.cn: 1 renders as predicted",
        "neutralised as `print \"krt_tunnel\";`",
        "arrives from 21.49.22.4 (its node is 21.49.22.4)",
    ] {
        assert!(report.contains(expected), "`{expected}` missing from:\n{report}");
    }
    let node = lab.dir.join("hosts/n3");
    assert!(node.join("var/run/calico/bird.ctl").exists(), "calico-node's socket");
    let plan = lab.plan("testdata/calico-node-rr/intent.yaml");
    let (output, report) = lab.apply(&plan, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert_eq!(lost(&report), 0, "{}", both(&output));
    assert!(report["intervals"].as_array().unwrap().iter().any(|interval| interval["label"] == "4 Node-to-node mesh off"), "{report:#}");
    // BIRD runs confd's render, written by the emulation only: its log names each re-render.
    let log = std::fs::read_to_string(lab.dir.join("calico-node.log")).unwrap();
    assert!(log.lines().any(|line| line.contains("re-rendered bird.cfg for cs1-k8s-n1.zpepc.com.cn")), "{log}");
    let config = std::fs::read_to_string(node.join("etc/calico/confd/config/bird.cfg")).unwrap();
    assert!(config.contains("rr client") || config.contains("route reflector"), "n1 reflects now:\n{config}");
    assert!(!node.join("etc/calplan/bird.cfg").exists(), "calplan wrote no BIRD configuration");
    let output = lab.verify("testdata/calico-node-rr/intent.yaml");
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let output = lab.plans_nothing("testdata/calico-node-rr/intent.yaml");
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    // `calplan verify`, as against a cluster: every node's confd render, sessions and routes
    // read through the netns transport with the lab's inventory, as the intent wants them.
    let inventory = lab.dir.join("inventory.json");
    let etcd = lab.etcd();
    let verify = |intent: &str| {
        calplan(
            &["verify", intent, "--current", &etcd, "--transport", "netns", "--inventory", inventory.to_str().unwrap(), "--format", "json"],
            &[],
        )
    };
    let output = verify("testdata/calico-node-rr/intent.yaml");
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["differences"], 0, "{report:#}");
    // The intent before the migration is not what runs: its mesh sessions are reported.
    let output = verify("testdata/calico-node-rr/before.yaml");
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report["differences"].as_u64().unwrap() > 0, "{report:#}");
    lab.down_and_check();
}

/// The same migration in one stage without pins: the mesh goes as the reflectors arrive, and
/// the probes see it on calico-node too.
#[test]
fn calico_node_lab_migration_all_at_once_loses_packets_needs_root() {
    let lab = Lab::new("testdata/calico-node-rr/before.yaml");
    lab.up();
    let plan = lab.plan("testdata/calico-node-rr/intent.yaml");
    let (output, report) = lab.apply(&plan, &["--all-at-once"]);
    assert_eq!(output.status.code(), Some(1), "loss fails the run:\n{}", both(&output));
    assert!(report["error"].is_null(), "the apply itself completed: {report:#}");
    assert!(report["intervals"][1]["lost"].as_u64().unwrap() > 0, "{}", both(&output));
    lab.down_and_check();
}

/// The notes' block-size change on calico-node: a new pool, the old one disabled, each pod
/// holding an old address recreated by the lab as `kubectl delete pod` would (its replacement
/// gets an address from a block Calico's IPAM claims for the node in the new pool), the
/// pool-empty barrier met, the old pool deleted. The other pods lose nothing while one is
/// recreated; each recreated pod's downtime is reported.
#[test]
fn calico_node_lab_pool_migration_recreates_pods_without_loss_needs_root() {
    let lab = Lab::new("testdata/calico-node-rr/intent.yaml");
    lab.up();
    let plan = lab.plan("testdata/pool-migration/intent.yaml");
    let (output, report) = lab.apply(&plan, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert_eq!(lost(&report), 0, "{}", both(&output));
    let recreated = report["recreated"].as_array().unwrap();
    assert_eq!(recreated.len(), 6, "{report:#}");
    for pod in recreated {
        let address: std::net::IpAddr = pod["newAddress"].as_str().unwrap().parse().unwrap();
        assert!("10.244.0.0/16".parse::<ipnet::IpNet>().unwrap().contains(&address), "{pod}");
        assert!(pod["downtimeMs"].as_f64().is_some_and(|ms| ms > 0.0), "{pod}");
    }
    assert!(text(&output.stdout).contains("kubectl delete pod"), "{}", both(&output));
    // The lab's IPAM starts each node where its host name points, as Calico's does: not the
    // blocks the plan forecast (one per node from the pool's start), so the plan pins the
    // blocks as placed before the old pool goes, and its last barrier does not wait for the
    // forecast.
    let forecast: ipnet::IpNet = "10.244.0.0/21".parse().unwrap();
    assert!(
        recreated.iter().any(|pod| !forecast.contains(&pod["newAddress"].as_str().unwrap().parse::<std::net::IpAddr>().unwrap())),
        "{report:#}"
    );
    assert!(text(&output.stderr).contains("Pin placed blocks"), "{}", both(&output));
    let pod0 = recreated.iter().find(|pod| pod["pod"] == "pod0").expect("pod0 is recreated");
    let output = lab.verify("testdata/pool-migration/intent.yaml");
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let answered = format!("→ pod0 ({} on cs1-k8s-m1.zpepc.com.cn): ping answered", pod0["newAddress"].as_str().unwrap());
    assert!(text(&output.stdout).contains(&answered), "{}", both(&output));
    lab.down_and_check();
}

/// Dual stack, VXLAN, reflectors and a password-protected top-of-rack peer on calico-node:
/// Felix's VXLAN forwarding and NAT come from the datastore, the peer learns every IPv4 block,
/// and each dual-stack node's `bird6` runs confd's IPv6 render, which carries the IPv6 pods.
#[test]
fn calico_node_lab_carries_vxlan_and_external_peers_needs_root() {
    let lab = Lab::new("testdata/vxlan-multi-rr/intent.yaml");
    lab.up();
    let output = lab.verify("testdata/vxlan-multi-rr/intent.yaml");
    let report = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    for expected in [
        "ok   pod0 (172.16.0.1 on rack1-rr) ↔ pod6 (172.16.0.193 on rack2-w1): ping answered",
        "ok   pod1 (fd00:10::1 on rack1-rr) ↔ pod7 (fd00:10::c1 on rack2-w1): ping answered",
        "ok   as65010 from 10.255.0.1: learned",
    ] {
        assert!(report.contains(expected), "`{expected}` missing from:\n{report}");
    }
    // `calplan verify` as against a cluster: each dual-stack node's `bird6.cfg` is compared
    // with its IPv6 prediction too.
    let inventory = lab.dir.join("inventory.json");
    let etcd = lab.etcd();
    let args = ["verify", "testdata/vxlan-multi-rr/intent.yaml", "--current", &etcd, "--transport", "netns", "--inventory"];
    let output = calplan(&[&args[..], &[inventory.to_str().unwrap(), "--format", "json"]].concat(), &[]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["differences"], 0, "{report:#}\n{}", both(&output));
    // A statement confd never rendered, in one node's `bird6.cfg`, is found there.
    let hosts: Value = serde_json::from_str(&std::fs::read_to_string(&inventory).unwrap()).unwrap();
    let confd = PathBuf::from(hosts["hosts"]["rack1-rr"]["confdConfig"].as_str().unwrap());
    let render6 = confd.join("bird6.cfg");
    let text6 = std::fs::read_to_string(&render6).unwrap();
    std::fs::write(&render6, format!("{text6}protocol static extra6 {{\n  route fd00:99::/64 blackhole;\n}}\n")).unwrap();
    let output = calplan(&[&args[..], &[inventory.to_str().unwrap(), "--format", "json"]].concat(), &[]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["differences"], 1, "{report:#}");
    let difference = &report["nodes"]["rack1-rr"][0];
    assert_eq!(difference["subject"], "protocol extra6", "{report:#}");
    assert!(difference["location"].as_str().unwrap().starts_with(&format!("{}:", render6.display())), "{report:#}");
    std::fs::write(&render6, text6).unwrap();
    lab.down_and_check();
}

/// Before anything is made, `lab up` looks for every program it will run, and refuses with
/// the list of what is missing and how to install it.
#[test]
fn lab_up_refuses_without_the_programs_it_needs() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("lab");
    let output = calplan(
        &["lab", "up", "testdata/calico-node-rr/before.yaml", "--dir", dir.to_str().unwrap()],
        &[("PATH", "/nonexistent"), ("CALPLAN_BIRD16", "/nonexistent/bird")],
    );
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let stderr = text(&output.stderr);
    for expected in [
        "nothing was created",
        "ncat (",
        "apt-get install ncat",
        "etcd (",
        "apt-get install etcd-server",
        "BIRD 1.6",
        "apt-get download bird",
    ] {
        assert!(stderr.contains(expected), "`{expected}` missing from:\n{stderr}");
    }
    assert!(!dir.exists(), "nothing was created");
}

/// A calico-node lab's `up` dies once etcd, BIRD 1.6 and the calico-node emulation run (the
/// last two in this machine's namespace): `down` still ends them all and removes the etcd's
/// data with the lab's directory.
#[test]
fn calico_node_lab_down_cleans_up_etcd_and_the_emulation_after_a_crash_needs_root() {
    let lab = Lab::new("testdata/calico-node-rr/before.yaml");
    let output = calplan(&["lab", "up", &lab.intent, "--dir", lab.dir()], &[("CALPLAN_TEST_LAB_CRASH", "after-calico-node")]);
    assert_eq!(output.status.code(), Some(99), "{}", both(&output));
    assert!(lab.dir.join("etcd/data").is_dir(), "etcd keeps its data in the lab's directory");
    for file in ["etcd/etcd.pid", "calico-node.pid"] {
        assert!(lab.dir.join(file).is_file(), "{file}: etcd and the emulation run (`down_and_check` checks they end)");
    }
    lab.down_and_check();
}
