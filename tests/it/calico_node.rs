//! `apply` against calico-node nodes: the seed's migration (`testdata/calico-node-rr`) on six
//! nodes in network namespaces laid out as calico-node lays a host out, running BIRD 1.6 (Calico
//! runs its fork of it) on a configuration that a confd stand-in renders from the datastore
//! whenever the datastore changes, as confd does. calplan writes the datastore and pins routes,
//! and nothing else: it never writes BIRD's configuration or a ruleset, and its barriers wait
//! on the sessions BIRD 1.6 reports — through the namespaces (`netns`), a real sshd (`ssh`), and
//! `kubectl exec` into the nodes' calico-node pods, which a stand-in `kubectl` maps onto the
//! namespaces (no Kubernetes API server can run here).
//!
//! Everything here needs root (namespaces, sshd), and says so in its name.

use crate::apply_hosts::{CalicoStandIn, Cluster, Member, NodeKind, PinWatcher, SshServer, barrier_waits, bgp_protocols, pins};
use crate::bird::{bird16, without_krt_tunnel};
use crate::cli::{both, calplan_with as calplan, text};
use crate::golden;
use calplan_calico::resources::ResourceSet;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BEFORE: &str = "testdata/calico-node-rr/before.yaml";
const INTENT: &str = "testdata/calico-node-rr/intent.yaml";

fn path(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Every node's `bird-calico.cfg` for a set of Calico resources, rendered as confd would from
/// the datastore: the resources are read into a model (the intent's nodes and pools as the
/// base, exactly as the planner derives each stage's state) and the `bird-calico` target runs.
fn render(resources: &ResourceSet, base: &calplan_model::Model) -> BTreeMap<String, String> {
    let (model, _) = calplan_model::from_resources::from_resources(resources, base);
    let analysis = calplan_model::Analysis::new(model, None);
    let templates = calplan_targets::Templates::builtin();
    let context = calplan_targets::Context { analysis: &analysis, templates: &templates, node: None, sink: None };
    let selected = BTreeSet::from(["bird-calico".to_string()]);
    let output = calplan_targets::compile(&context, Some(&selected)).expect("renders");
    output
        .artifacts
        .into_iter()
        .filter_map(|(_, artifact)| {
            let node = artifact.path.strip_prefix("nodes/")?.strip_suffix("/bird-calico.cfg")?.to_string();
            Some((node, artifact.contents))
        })
        .collect()
}

fn read_store(store: &Path) -> ResourceSet {
    let mut resources = ResourceSet::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(store).unwrap().map(|entry| entry.unwrap().path()).collect();
    files.sort();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        let read = calplan_plan::current::calico_yaml::read(calplan_diagnostics::FileId(0), &text);
        for resource in read.value.iter().flat_map(|set| set.iter()) {
            resources.insert(resource.clone());
        }
    }
    resources
}

/// confd's part, for the test: watches the datastore (the calicoctl stand-in's store) and,
/// whenever it changes, renders every node's configuration, writes it where calico-node keeps
/// it and has BIRD reload it. It records every text it wrote, so a test can tell its writes
/// from anyone else's.
struct Confd {
    stop: Arc<AtomicBool>,
    written: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Confd {
    fn start(cluster: &Cluster, store: &Path, base: calplan_model::Model) -> Confd {
        let stop = Arc::new(AtomicBool::new(false));
        let written: Arc<Mutex<BTreeMap<String, Vec<String>>>> = Arc::default();
        let nodes: Vec<(String, PathBuf, PathBuf, PathBuf)> = cluster
            .names
            .iter()
            .enumerate()
            .filter(|(number, _)| cluster.bird_config(*number).is_file())
            .map(|(number, name)| (name.clone(), cluster.confd_render(number), cluster.bird_config(number), cluster.bird_socket(number)))
            .collect();
        for (name, _, config, _) in &nodes {
            written.lock().unwrap().entry(name.clone()).or_default().push(std::fs::read_to_string(config).unwrap());
        }
        let birdc = bird16().with_file_name("birdc");
        let (thread_stop, thread_written, store) = (stop.clone(), written.clone(), store.to_path_buf());
        let thread = std::thread::spawn(move || {
            let mut last = None;
            while !thread_stop.load(Ordering::Relaxed) {
                let resources = read_store(&store);
                if last.as_ref() != Some(&resources) {
                    let rendered = render(&resources, &base);
                    for (name, render, config, socket) in &nodes {
                        let Some(render_text) = rendered.get(name) else { continue };
                        // confd's file, where calico-node keeps it (what `verify` and apply's
                        // barriers read), then the copy stock BIRD 1.6 runs.
                        if std::fs::read_to_string(render).ok().as_ref() != Some(render_text) {
                            std::fs::create_dir_all(render.parent().unwrap()).unwrap();
                            std::fs::write(render, render_text).unwrap();
                        }
                        let text = &without_krt_tunnel(render_text);
                        if std::fs::read_to_string(config).ok().as_ref() == Some(text) {
                            continue;
                        }
                        std::fs::write(config, text).unwrap();
                        thread_written.lock().unwrap().entry(name.clone()).or_default().push(text.clone());
                        // As confd does after a render: BIRD reloads (it checks the file first). A
                        // BIRD that is down reads the file when it starts again.
                        let output = Command::new(&birdc).arg("-s").arg(socket).arg("configure").output().unwrap();
                        let answer = text_of(&output);
                        if !answer.contains("Unable to connect") {
                            assert!(answer.contains("Reconfigur"), "BIRD 1.6 on {name} refused confd's render: {answer}");
                        }
                    }
                    last = Some(resources);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Confd { stop, written, thread: Some(thread) }
    }

    /// Whether confd wrote exactly this text for the node.
    fn wrote(&self, node: &str, text: &str) -> bool {
        self.written.lock().unwrap().get(node).is_some_and(|texts| texts.iter().any(|written| written == text))
    }
}

impl Drop for Confd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // A panic in the thread (BIRD refused a render) fails the test here.
            let joined = thread.join();
            if !std::thread::panicking() {
                joined.expect("confd's stand-in failed");
            }
        }
    }
}

fn text_of(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The seed cluster on its full mesh as calico-node nodes: BIRD 1.6 on confd's render of the
/// datastore (which starts as `before.yaml`'s resources), with the compiled `before.yaml` as the
/// applied directory the plan starts from.
struct CalicoNodes {
    // Drop order: confd first (it talks to BIRD), then the cluster.
    confd: Confd,
    cluster: Cluster,
    work: tempfile::TempDir,
    before: PathBuf,
    after: PathBuf,
    calico: CalicoStandIn,
}

impl CalicoNodes {
    fn start() -> CalicoNodes {
        let work = tempfile::tempdir().unwrap();
        let (before, after) = (work.path().join("before"), work.path().join("after"));
        for (intent, dir) in [(BEFORE, &before), (INTENT, &after)] {
            let output = calplan(&["compile", intent, "-o", path(dir)], &[]);
            assert!(output.status.success(), "compile {intent}: {}", both(&output));
        }
        let checked = calplan::pipeline::check("before.yaml", std::fs::read_to_string(golden::root().join(BEFORE)).unwrap(), None);
        let analysis = checked.valid().expect("before.yaml is valid");
        assert_eq!(analysis.model.node_agent, calplan_model::NodeAgent::CalicoNode);
        let members: Vec<Member> = analysis
            .model
            .nodes
            .iter()
            .map(|node| {
                let name = node.name.value.clone();
                let config = std::fs::read_to_string(before.join("nodes").join(&name).join("bird-calico.cfg")).unwrap();
                Member {
                    name,
                    address: node.ipv4_address.as_ref().expect("IPv4 nodes").value,
                    bird: Some((without_krt_tunnel(&config), None)),
                }
            })
            .collect();
        let cluster = Cluster::start_as(NodeKind::CalicoNode, &members, &[]);
        let exports: Vec<PathBuf> = std::fs::read_dir(before.join("calico"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|file| file.extension().is_some_and(|extension| extension == "yaml") && !file.ends_with("calico-node-env.yaml"))
            .collect();
        let calico = CalicoStandIn::new(work.path(), &exports);
        let confd = Confd::start(&cluster, &calico.store, analysis.model.clone());
        let mut nodes = CalicoNodes { confd, cluster, work, before, after, calico };
        let (sessions, routes) = (nodes.sessions(&nodes.before), nodes.routes(&nodes.before));
        nodes.cluster.wait_sessions(&sessions, Duration::from_secs(90));
        nodes.cluster.wait_routes(&routes, Duration::from_secs(30));
        nodes
    }

    /// The `protocol bgp` sessions each node's render in `dir` declares.
    fn sessions(&self, dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
        self.cluster
            .names
            .iter()
            .map(|name| {
                (name.clone(), bgp_protocols(&std::fs::read_to_string(dir.join("nodes").join(name).join("bird-calico.cfg")).unwrap()))
            })
            .collect()
    }

    fn routes(&self, dir: &Path) -> BTreeMap<String, String> {
        self.cluster
            .names
            .iter()
            .map(|name| (name.clone(), std::fs::read_to_string(dir.join("nodes").join(name).join("routes")).unwrap()))
            .collect()
    }

    fn plan(&self) -> PathBuf {
        let plan = self.work.path().join("calico-node.plan");
        let output =
            calplan(&["plan", INTENT, "--current", path(&self.before), "--current", path(&self.calico.store), "-o", path(&plan)], &[]);
        assert!(output.status.success(), "plan: {}", both(&output));
        plan
    }

    /// `calplan apply` with the calicoctl stand-in as the datastore, and `args` (the transport).
    fn apply(&self, plan: &Path, state: &Path, args: &[&str], environment: &[(&str, &str)]) -> Output {
        let mut all = vec!["apply", path(plan), "--state", path(state), "--calico", "calicoctl", "--auto-approve"];
        // Apply's own default (300 s), as on a real cluster: two peers that each met the other
        // not yet reconfigured both back off (`error wait time 5,30`, doubling per error) and
        // accept a connection only in the two seconds before their next attempt (`connect delay
        // time 2`), so on a loaded machine they can miss each other for minutes (a full run
        // once kept a pair apart for all of the 150 s this used to allow).
        if !args.contains(&"--barrier-timeout") {
            all.extend(["--barrier-timeout", "300"]);
        }
        all.extend_from_slice(args);
        let mut variables: Vec<(&str, &str)> = self.calico.environment().to_vec();
        variables.extend_from_slice(environment);
        calplan(&all, &variables)
    }

    /// The end of each node's BIRD log, for a failure's message.
    fn bird_logs(&self) -> String {
        let mut out = String::new();
        for (number, name) in self.cluster.names.iter().enumerate() {
            let log = std::fs::read_to_string(self.cluster.node_dir(number).join("bird.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            out.push_str(&format!("--- BIRD on {name} (last 25 lines)\n{}\n", lines[lines.len().saturating_sub(25)..].join("\n")));
        }
        out
    }

    /// Every file below each node's directory but BIRD's runtime (socket, pid file, log), with
    /// its contents.
    fn files(&self) -> BTreeMap<PathBuf, String> {
        let mut files = BTreeMap::new();
        for number in 0..self.cluster.names.len() {
            collect(&self.cluster.node_dir(number), &mut files);
        }
        files.retain(|file, _| !["bird.ctl", "bird.pid", "bird.log"].iter().any(|runtime| file.ends_with(runtime)));
        files
    }

    /// What every apply of the plan must leave: calplan wrote nothing on the nodes but its pins
    /// (gone again), no ruleset; BIRD runs confd's render of the final state, with its
    /// sessions up and its routes in the kernels; and a plan made against the state directory
    /// and the datastore is empty.
    fn assert_converged(&mut self, state: &Path, files_before: &BTreeMap<PathBuf, String>, stage_count: usize) {
        let after = self.after.clone();
        self.cluster.wait_sessions(&self.sessions(&after), Duration::from_secs(30));
        self.cluster.wait_routes(&self.routes(&after), Duration::from_secs(30));
        let files_after = self.files();
        for (file, contents) in &files_after {
            if files_before.get(file) == Some(contents) {
                continue;
            }
            // Only confd's render changed, and only confd wrote it.
            if let Some(number) = (0..self.cluster.names.len()).find(|number| *file == self.cluster.confd_render(*number)) {
                let node = &self.cluster.names[number];
                let predicted = std::fs::read_to_string(after.join("nodes").join(node).join("bird-calico.cfg")).unwrap();
                assert_eq!(contents, &predicted, "{node}: confd's render is not the plan's prediction");
                continue;
            }
            let number = (0..self.cluster.names.len()).find(|number| *file == self.cluster.bird_config(*number));
            let number = number.unwrap_or_else(|| panic!("`{}` was written on a calico-node node:\n{contents}", file.display()));
            let node = &self.cluster.names[number];
            assert!(self.confd.wrote(node, contents), "{node}: BIRD's configuration holds what confd never rendered:\n{contents}");
            let predicted = std::fs::read_to_string(after.join("nodes").join(node).join("bird-calico.cfg")).unwrap();
            assert_eq!(contents, &without_krt_tunnel(&predicted), "{node}: confd's render is not the plan's prediction");
        }
        for number in 0..self.cluster.names.len() {
            let name = &self.cluster.names[number];
            assert_eq!(pins(self.cluster.namespace(number)), "", "{name}: route pins left behind");
            let nft = self.cluster.nodes[number].command("nft").args(["list", "ruleset"]).output().unwrap();
            let iptables = self.cluster.nodes[number].command("iptables-save").output().unwrap();
            assert!(!text(&nft.stdout).contains("calplan") && !text(&iptables.stdout).contains("CALPLAN"), "{name}: a ruleset was loaded");
        }
        let record: Value = serde_json::from_str(&std::fs::read_to_string(state.join("state.json")).unwrap()).unwrap();
        let stages = record["stages"].as_array().unwrap();
        assert_eq!(stages.len(), stage_count, "{record:#}");
        assert!(stages.iter().all(|stage| stage["outcome"] == "complete"), "{record:#}");
        // The state records confd's render as the plan predicted it.
        for name in &self.cluster.names {
            let recorded = std::fs::read_to_string(state.join("applied/nodes").join(name).join("bird-calico.cfg")).unwrap();
            assert_eq!(recorded, std::fs::read_to_string(after.join("nodes").join(name).join("bird-calico.cfg")).unwrap(), "{name}");
        }
        let output = calplan(
            &["plan", INTENT, "--current", path(&state.join("applied")), "--current", path(&self.calico.store), "--detailed-exitcode"],
            &[],
        );
        assert_eq!(output.status.code(), Some(0), "a plan after the apply is not empty:\n{}", both(&output));
        assert!(text(&output.stdout).contains("No changes."), "{}", both(&output));
    }
}

fn collect(directory: &Path, files: &mut BTreeMap<PathBuf, String>) {
    for entry in std::fs::read_dir(directory).into_iter().flatten().flatten() {
        let file = entry.path();
        if file.is_dir() {
            collect(&file, files);
        } else if let Ok(contents) = std::fs::read_to_string(&file) {
            files.insert(file, contents);
        }
    }
}

/// The plan's stages and the number of them, checked to be a calico-node plan: pins are the
/// only node files it loads, and the render changes ride along as information.
fn calico_node_plan(plan: &Path) -> usize {
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(plan).unwrap()).unwrap();
    assert_eq!(plan["nodeAgent"], "calico-node");
    let changes: Vec<&Value> = plan["stages"].as_array().unwrap().iter().flat_map(|stage| stage["changes"].as_array().unwrap()).collect();
    for change in changes.iter().filter(|change| change["target"]["type"] == "node") {
        let informational = change["informational"] == true;
        match change["kind"].as_str().unwrap() {
            "route-pins" => assert!(!informational),
            "bird-calico.cfg" | "routes" => assert!(informational, "{change}"),
            other => panic!("a calico-node plan carries `{other}`"),
        }
    }
    assert!(changes.iter().any(|change| change["kind"] == "bird-calico.cfg"));
    plan["stages"].as_array().unwrap().len()
}

/// The migration on calico-node nodes through their namespaces: calplan writes the datastore
/// (the reflectors' peering, the nodes' labels and cluster IDs, the mesh off) and the pins, and
/// nothing else; confd re-renders, BIRD 1.6 reconfigures; each barrier waits until BIRD 1.6
/// reports the sessions of the stage Established (BIRD waits two seconds before it opens a
/// session, so a barrier that held at once would not have looked), and the apply converges.
#[test]
fn calico_node_apply_writes_only_the_datastore_and_pins_and_waits_on_bird_1_6_through_netns_needs_root() {
    let started = Instant::now();
    let mut nodes = CalicoNodes::start();
    let plan = nodes.plan();
    let stage_count = calico_node_plan(&plan);
    let files_before = nodes.files();
    let inventory = nodes.cluster.inventory(None, &[]);
    let state = nodes.work.path().join("state");
    let watcher = PinWatcher::start(nodes.cluster.namespace(0));
    let output = nodes.apply(&plan, &state, &["--transport", "netns", "--inventory", path(&inventory)], &[]);
    let most_pins = watcher.most();
    let stderr = text(&output.stderr);
    if std::env::var_os("CALPLAN_TEST_SHOW").is_some() {
        eprintln!("{stderr}");
    }
    assert_eq!(output.status.code(), Some(0), "{stderr}\n{}", nodes.bird_logs());
    assert_eq!(stderr.matches("waiting: every node has the sessions listed in the expected status Established").count(), 2, "{stderr}");
    let waits = barrier_waits(&stderr);
    assert!(waits["Nodes"] >= 1.0, "the barrier after the reflectors' sessions held after {}s:\n{stderr}", waits["Nodes"]);
    let pinned = std::fs::read_to_string(nodes.before.join("nodes").join(&nodes.cluster.names[0]).join("routes")).unwrap();
    assert_eq!(most_pins, pinned.lines().count(), "node 0 held {most_pins} pins at most");
    nodes.assert_converged(&state, &files_before, stage_count);
    eprintln!("calico-node migration through netns: {:?}", started.elapsed());
}

/// calico-node's BIRD learns the kernel routes of other programs (`learn`) and advertises those
/// inside a pool as routes of its own; pins must not be such routes, or every node would
/// advertise them, reflectors would prefer them, and their removal would make BIRD 1.6 replace
/// (delete, then add) routes all over the cluster. On the seed's mesh of BIRD 1.6 nodes on
/// confd's render: a route pinned on node 0 as apply pins it stays out of node 0's BIRD and off
/// its peers, while the same kind of route under another protocol (a control, which is what
/// pins used to be) is learned and reaches a peer as node 0's.
#[test]
fn calico_node_bird_neither_learns_nor_advertises_pins_needs_root() {
    let nodes = CalicoNodes::start();
    let cluster = &nodes.cluster;
    let routes = std::fs::read_to_string(nodes.before.join("nodes").join(&cluster.names[0]).join("routes")).unwrap();
    let via: Vec<&str> = routes.lines().filter(|line| line.contains(" via ")).collect();
    let (pinned, control) = (calplan_apply::hosts::pin_arguments(via[0]), calplan_apply::hosts::pin_arguments(via[1]));
    let address_of = |number: usize| {
        let output =
            Command::new("ip").args(["-n", cluster.namespace(number), "-4", "-o", "address", "show", "dev", "eth0"]).output().unwrap();
        let shown = text(&output.stdout);
        shown.split_whitespace().skip_while(|word| *word != "inet").nth(1).unwrap().split('/').next().unwrap().to_string()
    };
    let own = address_of(0);
    let observer = (1..cluster.names.len()).find(|number| ![&pinned[2], &control[2]].contains(&&address_of(*number))).unwrap();
    let from_node_0 = format!("Mesh_{}", own.replace('.', "_"));

    let mut batch = calplan_apply::hosts::pin_batch(std::slice::from_ref(&pinned));
    batch.push_str(&format!("route replace {} proto 252 metric 4096\n", control.join(" ")));
    for line in batch.lines() {
        cluster.nodes[0].ip(line.split_whitespace()).unwrap();
    }

    // The control is learned and advertised: once a peer has it from node 0, BIRD has seen both.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cluster.birdc(observer, &["show", "route", &control[0], "all"]).contains(&from_node_0) {
        assert!(Instant::now() < deadline, "the control route never reached {} from node 0", cluster.names[observer]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let learned = cluster.birdc(0, &["show", "route", "protocol", "kernel1"]);
    assert!(learned.contains(&control[0]), "node 0's BIRD did not learn the control route: {learned}");
    assert!(!learned.contains(&pinned[0]), "node 0's BIRD learned the pin: {learned}");
    let seen = cluster.birdc(observer, &["show", "route", &pinned[0], "all"]);
    assert!(!seen.contains(&from_node_0), "node 0 advertised its pin: {seen}");
    assert!(seen.contains(&pinned[2]), "the pinned block is still the owner's: {seen}");
}

/// The same through a real sshd: every command, the barriers' BIRD 1.6 reads included, runs
/// over ssh on the far side (into the node's namespace there, as on a host).
#[test]
fn calico_node_apply_waits_on_bird_1_6_through_a_real_sshd_needs_root() {
    let server = SshServer::start();
    let mut nodes = CalicoNodes::start();
    let plan = nodes.plan();
    let stage_count = calico_node_plan(&plan);
    let files_before = nodes.files();
    let inventory = nodes.cluster.inventory(Some((&server, "known_hosts")), &[]);
    let state = nodes.work.path().join("state");
    let output = nodes.apply(&plan, &state, &["--transport", "ssh", "--inventory", path(&inventory)], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}\n{}", nodes.bird_logs());
    assert!(server.log().contains("Accepted publickey for root from 127.0.0.1"), "{}", server.log());
    assert!(barrier_waits(&stderr)["Nodes"] >= 1.0, "{stderr}");
    nodes.assert_converged(&state, &files_before, stage_count);
}

/// A stand-in for `kubectl` (no Kubernetes API server can run here) that knows one calico-node
/// pod per node and maps `kubectl exec` in a pod onto the node's namespace (`nsenter`), with the
/// pod's paths (`/var/run/calico`, `/etc/calplan`) under the node's directory and calico-node's
/// `birdcl` played by BIRD 1.6's own client. `CalicoNodeStatus` resources are kept as files,
/// and reading one fills its `status.bgp` from the node's BIRD as calico-node would. Every
/// call's arguments are recorded, one line each, so that tests can assert them.
struct KubectlStandIn {
    program: PathBuf,
    log: PathBuf,
    /// Where the `CalicoNodeStatus` resources are kept, and the file holding the most that
    /// ever existed at once.
    statuses: PathBuf,
    most: PathBuf,
    /// Pod name by node name.
    pods: BTreeMap<String, String>,
}

/// Python 3 for the stand-in: Debian's own where it is (a version manager's shim on `PATH` can
/// cost half a second per call), else the first on `PATH`.
fn python3() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/python3");
    if debian.is_file() {
        return debian;
    }
    let found = Command::new("sh").args(["-c", "command -v python3"]).output().expect("sh runs");
    PathBuf::from(text(&found.stdout).trim())
}

impl KubectlStandIn {
    /// Pods live in `namespace`; another node's pod and a pod in another namespace are
    /// listed too, so that picking by `spec.nodeName` and namespace is put to the test.
    fn new(directory: &Path, cluster: &Cluster, namespace: &str) -> KubectlStandIn {
        let (program, log, config) = (directory.join("kubectl"), directory.join("kubectl.log"), directory.join("kubectl.json"));
        let mut pods = BTreeMap::new();
        let mut listed = Vec::new();
        for (number, name) in cluster.names.iter().enumerate() {
            // Pod names do not follow node names: the stand-in's are made up, as the
            // DaemonSet's are random.
            let pod = format!("calico-node-{}", ["x7k2p", "m4q9z", "b8w3t", "r5n1c", "h2v6d", "p9j4s", "t3e8a"][number % 7]);
            listed.push(serde_json::json!({
                "name": pod, "namespace": namespace, "node": name, "phase": "Running",
                "netns": cluster.namespace(number), "dir": path(&cluster.node_dir(number)),
            }));
            pods.insert(name.clone(), pod);
        }
        listed.push(serde_json::json!({"name": "calico-node-zz999", "namespace": namespace, "node": "another-node", "phase": "Running", "netns": "none", "dir": "/nonexistent"}));
        listed.push(serde_json::json!({"name": "calico-node-yy111", "namespace": "elsewhere", "node": cluster.names[0], "phase": "Running", "netns": "none", "dir": "/nonexistent"}));
        let (statuses, most) = (directory.join("statuses"), directory.join("statuses.most"));
        let settings = serde_json::json!({
            "log": path(&log), "birdcl": path(&bird16().with_file_name("birdc")), "pods": listed,
            "statuses": path(&statuses), "most": path(&most),
        });
        std::fs::write(&config, serde_json::to_string_pretty(&settings).unwrap()).unwrap();
        let script = format!(
            r#"#!{python}
# kubectl stand-in (no API server can run here): `get pods` lists the test's calico-node pods,
# `exec` runs the command in the pod's node namespace. Records every call.
import json, os, re, subprocess, sys
settings = json.load(open({config:?}))
args = sys.argv[1:]
with open(settings["log"], "a") as log:
    log.write(" ".join(args) + "\n")
def option(name):
    return args[args.index(name) + 1] if name in args else None
if args[:2] == ["get", "pods"]:
    items = []
    if option("--selector") == "k8s-app=calico-node":
        for pod in settings["pods"]:
            if pod["namespace"] == option("--namespace"):
                items.append({{"metadata": {{"name": pod["name"], "namespace": pod["namespace"], "labels": {{"k8s-app": "calico-node"}}}},
                              "spec": {{"nodeName": pod["node"]}}, "status": {{"phase": pod["phase"]}}}})
    print(json.dumps({{"apiVersion": "v1", "kind": "List", "items": items}}))
    sys.exit(0)
if args[:1] == ["exec"]:
    split = args.index("--")
    before, command = args[1:split], args[split + 1:]
    namespace, container = option("--namespace"), option("--container")
    positional = [word for index, word in enumerate(before) if not word.startswith("-") and before[index - 1] not in ("--namespace", "--container")]
    pod = [p for p in settings["pods"] if p["name"] == positional[0] and p["namespace"] == namespace]
    if not pod or container != "calico-node":
        sys.stderr.write("Error from server (NotFound): pods \"%s\" not found\n" % positional[0])
        sys.exit(1)
    pod = pod[0]
    command = [word.replace("/var/run/calico/", pod["dir"] + "/var/run/calico/").replace("/etc/calplan", pod["dir"] + "/etc/calplan")
               .replace("/etc/calico/confd/", pod["dir"] + "/etc/calico/confd/") for word in command]
    if command[0] == "birdcl":
        command[0] = settings["birdcl"]
    os.execvp("nsenter", ["nsenter", "--net=/run/netns/" + pod["netns"]] + command)
# CalicoNodeStatus: kept as files; `get` plays calico-node filling `status.bgp` from BIRD, as
# node/pkg/status/populators/peers.go does (`show protocols`, BGP rows named Type_address).
statuses = settings["statuses"]
os.makedirs(statuses, exist_ok=True)
def count_stored():
    stored = len(os.listdir(statuses))
    most = int(open(settings["most"]).read()) if os.path.exists(settings["most"]) else 0
    open(settings["most"], "w").write(str(max(most, stored)))
if args[:2] == ["apply", "--filename"] and args[2] == "-":
    resource = json.load(sys.stdin)
    assert resource["apiVersion"] == "projectcalico.org/v3" and resource["kind"] == "CalicoNodeStatus", resource
    json.dump(resource, open(os.path.join(statuses, resource["metadata"]["name"]), "w"))
    count_stored()
    print("caliconodestatus.projectcalico.org/%s created" % resource["metadata"]["name"])
    sys.exit(0)
if args[:2] == ["get", "caliconodestatus"]:
    path = os.path.join(statuses, args[2])
    if not os.path.exists(path):
        sys.stderr.write("Error from server (NotFound): caliconodestatuses.projectcalico.org \"%s\" not found\n" % args[2])
        sys.exit(1)
    resource = json.load(open(path))
    pod = [p for p in settings["pods"] if p["node"] == resource["spec"]["node"] and p["netns"] != "none"]
    if pod:
        pod = pod[0]
        table = subprocess.run(["nsenter", "--net=/run/netns/" + pod["netns"], settings["birdcl"], "-s", pod["dir"] + "/var/run/calico/bird.ctl", "show", "protocols"], capture_output=True, text=True).stdout
        peers = []
        for line in table.splitlines():
            columns = line.split()
            match = re.match(r"^(Global|Node|Mesh)_(.+)$", columns[0]) if len(columns) >= 6 and columns[1] == "BGP" else None
            if match:
                kind = {{"Global": "GlobalPeer", "Node": "NodePeer", "Mesh": "NodeMesh"}}[match.group(1)]
                peers.append({{"peerIP": match.group(2).replace("_", "."), "type": kind, "state": columns[5], "since": columns[4]}})
        established = len([peer for peer in peers if peer["state"] == "Established"])
        resource["status"] = {{"lastUpdated": "2026-01-01T00:00:00Z", "bgp": {{"numberEstablishedV4": established, "numberNotEstablishedV4": len(peers) - established, "numberEstablishedV6": 0, "numberNotEstablishedV6": 0, "peersV4": peers}}}}
    print(json.dumps(resource))
    sys.exit(0)
if args[:2] == ["delete", "caliconodestatus"]:
    path = os.path.join(statuses, args[2])
    if os.path.exists(path):
        os.remove(path)
    sys.exit(0)
sys.stderr.write("stand-in: %s is not simulated\n" % " ".join(args))
sys.exit(1)
"#,
            config = path(&config),
            python = python3().display()
        );
        std::fs::write(&program, script).unwrap();
        std::fs::set_permissions(&program, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        KubectlStandIn { program, log, pods, statuses, most }
    }

    /// The `CalicoNodeStatus` resources that exist now, and the most that existed at once.
    fn statuses(&self) -> (usize, usize) {
        let now = std::fs::read_dir(&self.statuses).map_or(0, |entries| entries.count());
        (now, std::fs::read_to_string(&self.most).map_or(0, |text| text.trim().parse().unwrap()))
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_string).collect()
    }
}

/// The same migration through `--transport kubectl`, with no inventory at all: each node's
/// commands run in its calico-node pod, found by label and `spec.nodeName` in `calico-system`
/// and then `kube-system` (where the manifests put it). The barriers read BIRD through
/// `birdcl -s /var/run/calico/bird.ctl show protocols` in the `calico-node` container, the pins
/// go through the same pods, the unpinning reads confd's render and `show status` there, and
/// nothing else is run there: no BIRD reload, no ruleset.
#[test]
fn calico_node_apply_through_kubectl_exec_stand_in_needs_root() {
    let started = Instant::now();
    let mut nodes = CalicoNodes::start();
    eprintln!("calico-node cluster up: {:?}", started.elapsed());
    let plan = nodes.plan();
    let stage_count = calico_node_plan(&plan);
    let files_before = nodes.files();
    let kubectl = KubectlStandIn::new(nodes.work.path(), &nodes.cluster, "kube-system");
    let state = nodes.work.path().join("state");
    let output = nodes.apply(&plan, &state, &["--transport", "kubectl"], &[("CALPLAN_KUBECTL", path(&kubectl.program))]);
    let stderr = text(&output.stderr);
    if std::env::var_os("CALPLAN_TEST_SHOW").is_some() {
        eprintln!("{stderr}");
    }
    assert_eq!(output.status.code(), Some(0), "{stderr}\n{}\n{}", kubectl.calls().join("\n"), nodes.bird_logs());
    assert!(barrier_waits(&stderr)["Nodes"] >= 1.0, "{stderr}");
    nodes.assert_converged(&state, &files_before, stage_count);

    let calls = kubectl.calls();
    let listings: Vec<&String> = calls.iter().filter(|call| call.starts_with("get ")).collect();
    assert_eq!(
        listings,
        [
            "get pods --namespace calico-system --selector k8s-app=calico-node --output json",
            "get pods --namespace kube-system --selector k8s-app=calico-node --output json"
        ],
        "the pods are listed once per namespace, the operator's first"
    );
    for (node, pod) in &kubectl.pods {
        let prefix = format!("exec --namespace kube-system {pod} --container calico-node ");
        let in_pod: Vec<&str> = calls.iter().filter_map(|call| call.strip_prefix(&prefix)).collect();
        assert!(in_pod.contains(&"-- birdcl -s /var/run/calico/bird.ctl show protocols"), "{node}: {in_pod:#?}");
        assert!(in_pod.contains(&"-- birdcl -s /var/run/calico/bird6.ctl show protocols"), "{node}: {in_pod:#?}");
        assert!(in_pod.contains(&"--stdin -- ip -batch -"), "{node}: the pins went through its pod: {in_pod:#?}");
        // The unpinning waited for confd's render, read where calico-node keeps it, and for
        // BIRD to have loaded it.
        assert!(in_pod.contains(&"-- cat -- /etc/calico/confd/config/bird.cfg"), "{node}: {in_pod:#?}");
        assert!(in_pod.contains(&"-- birdcl -s /var/run/calico/bird.ctl show status"), "{node}: {in_pod:#?}");
        for forbidden in ["configure", "bird -p", "nft", "iptables"] {
            assert!(!in_pod.iter().any(|call| call.contains(forbidden)), "{node} ran `{forbidden}`: {in_pod:#?}");
        }
    }
    assert!(!calls.iter().any(|call| call.contains("calico-node-zz999") || call.contains("calico-node-yy111")), "{calls:#?}");
}

/// Where `exec` is not allowed: `apply --only calico --observe node-status` writes only the
/// datastore and reads the barriers' sessions from `CalicoNodeStatus` resources (created for the
/// barrier's nodes, filled by calico-node, deleted after each round). First with a reflector's
/// BIRD down: the barrier fails, the stage is rolled back, and no status is left behind. Then,
/// with it back, the same plan converges; never more than ten statuses existed at once.
#[test]
fn calico_node_barriers_read_calico_node_status_through_the_api_stand_in_needs_root() {
    let mut nodes = CalicoNodes::start();
    let plan = nodes.plan();
    calico_node_plan(&plan);
    let kubectl = KubectlStandIn::new(nodes.work.path(), &nodes.cluster, "calico-system");
    let state = nodes.work.path().join("state");
    let environment = [("CALPLAN_KUBECTL", path(&kubectl.program))];
    let reflector = nodes.cluster.number("cs1-k8s-n1.zpepc.com.cn");
    nodes.cluster.stop_bird(reflector);
    let output = nodes.apply(&plan, &state, &["--only", "calico", "--observe", "node-status", "--barrier-timeout", "8"], &environment);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("barrier not met") && stderr.contains("`cs1-k8s-n1.zpepc.com.cn`"), "{stderr}");
    assert!(stderr.contains("the stage's changes were rolled back"), "{stderr}");
    assert_eq!(kubectl.statuses().0, 0, "a status was left behind after the failure: {:#?}", kubectl.calls());

    nodes.cluster.start_bird(reflector);
    let output = nodes.apply(&plan, &state, &["--only", "calico", "--observe", "node-status"], &environment);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr
            .contains("observing through CalicoNodeStatus, at most 10 at a time: the 2 route reflectors in every round, the 4 other nodes"),
        "{stderr}"
    );
    assert!(barrier_waits(&stderr)["Nodes"] >= 1.0, "{stderr}");
    let after = nodes.after.clone();
    nodes.cluster.wait_sessions(&nodes.sessions(&after), Duration::from_secs(30));
    let (left, most) = kubectl.statuses();
    assert_eq!(left, 0, "statuses left behind");
    assert!((1..=10).contains(&most), "{most} statuses at once");
    let calls = kubectl.calls();
    assert!(calls.iter().any(|call| call == "apply --filename -"), "{calls:#?}");
    assert!(calls.iter().any(|call| call == "get caliconodestatus calplan-cs1-k8s-n1.zpepc.com.cn --output json"), "{calls:#?}");
    assert!(calls.iter().any(|call| call == "delete caliconodestatus calplan-cs1-k8s-n1.zpepc.com.cn --ignore-not-found"), "{calls:#?}");
    assert!(!calls.iter().any(|call| call.starts_with("exec")), "no exec: {calls:#?}");
}

/// On calico-node, BIRD 1.6 deletes and re-adds every route it exports when confd's render
/// changes a filter, as a pool migration's renders do: the plan pins each node's routes before
/// anything changes; the new pool's blocks, which Calico's IPAM places as pods arrive, are
/// pinned where they are once the pool-empty barrier held and before the old pool's deletion
/// reloads BIRD; and the pins go only behind a barrier on each changed render being loaded
/// (named by the digest of the plan's own prediction, the new pool's blocks left out). A change
/// that leaves the render alone (NAT outgoing, Felix's) pins nothing.
#[test]
fn calico_node_plans_pin_routes_while_confds_renders_change() {
    let work = tempfile::tempdir().unwrap();
    let before = work.path().join("before");
    let output = calplan(&["compile", INTENT, "-o", path(&before)], &[]);
    assert!(output.status.success(), "{}", both(&output));
    let plan_of = |intent: &Path| -> Value {
        let output = calplan(&["plan", path(intent), "--current", path(&before), "--format", "json"], &[]);
        assert!(output.status.success(), "{}", both(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    };

    let plan = plan_of(&golden::root().join("testdata/pool-migration/intent.yaml"));
    let stages = plan["stages"].as_array().unwrap();
    let titles: Vec<&str> = stages.iter().map(|stage| stage["title"].as_str().unwrap()).collect();
    assert_eq!((titles[0], titles[titles.len() - 1]), ("Pin routes", "Unpin routes"), "{titles:?}");
    let pins = stages[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|change| change["kind"] == "route-pins" && change["name"] == "cs1-k8s-m2.zpepc.com.cn")
        .map(|change| change["after"]["text"].as_str().unwrap().to_string())
        .unwrap();
    for route in ["192.168.0.0/26 via 21.49.22.4", "blackhole 192.168.0.64/26"] {
        assert!(pins.contains(route), "today's routes are pinned: `{route}` missing from\n{pins}");
    }
    assert!(!pins.contains("10.244."), "the new pool's forecast blocks are not pinned:\n{pins}");
    let placed = titles.iter().position(|title| *title == "Pin placed blocks").expect("a stage pins the placed blocks");
    assert_eq!(titles[placed + 1], "Delete emptied pools", "{titles:?}");
    assert!(stages[placed - 1]["barrier"]["type"] == "poolEmpty", "{titles:?}");
    for change in stages[placed]["changes"].as_array().unwrap() {
        let text = change["after"]["text"].as_str().unwrap();
        let directive = text.lines().find_map(calplan_plan::plan::placed_pins_pools);
        assert_eq!(directive, Some(vec!["10.244.0.0/16".parse().unwrap()]), "{text}");
    }
    let barrier = &stages[stages.len() - 2]["barrier"];
    assert_eq!(barrier["type"], "renderLoaded", "{barrier:#}");
    assert_eq!(barrier["unplacedPools"], serde_json::json!(["10.244.0.0/16"]), "{barrier:#}");
    assert!(
        barrier["routes"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|routes| routes.as_array().unwrap())
            .all(|route| !route.as_str().unwrap().contains("10.244.")),
        "{barrier:#}"
    );
    let renders = barrier["renders"].as_object().unwrap();
    assert_eq!(renders.len(), 6, "every node's render changes: {barrier:#}");
    // Each digest is that of the node's last predicted render in the plan (IPv4 here).
    for (node, digests) in renders {
        let last = stages
            .iter()
            .flat_map(|stage| stage["changes"].as_array().unwrap())
            .filter(|change| change["kind"] == "bird-calico.cfg" && change["name"] == *node)
            .filter_map(|change| change["after"]["text"].as_str())
            .next_back()
            .unwrap();
        assert_eq!(digests, &serde_json::json!([calplan_plan::current::text_digest(last)]), "{node}");
    }

    let nat = work.path().join("nat.yaml");
    let text = std::fs::read_to_string(golden::root().join(INTENT)).unwrap();
    assert!(text.contains("natOutgoing: true"));
    std::fs::write(&nat, text.replacen("natOutgoing: true", "natOutgoing: false", 1)).unwrap();
    let plan = plan_of(&nat);
    let titles: Vec<&str> = plan["stages"].as_array().unwrap().iter().map(|stage| stage["title"].as_str().unwrap()).collect();
    assert!(!titles.contains(&"Pin routes"), "{titles:?}");
}

/// A stage that takes sessions down waits for them to be gone as well as for its new ones to
/// be up: the mesh-off stage's barrier names each node's mesh sessions (on calico-node they go
/// only once confd's new render is loaded, well after the reflectors' sessions are up).
#[test]
fn a_session_barrier_waits_for_the_sessions_its_stage_removes() {
    let work = tempfile::tempdir().unwrap();
    let before = work.path().join("before");
    let output = calplan(&["compile", BEFORE, "-o", path(&before)], &[]);
    assert!(output.status.success(), "{}", both(&output));
    let output = calplan(&["plan", INTENT, "--current", path(&before), "--format", "json"], &[]);
    assert!(output.status.success(), "{}", both(&output));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    let stage = plan["stages"].as_array().unwrap().iter().find(|stage| stage["title"] == "Node-to-node mesh off").unwrap();
    let barrier = &stage["barrier"];
    assert_eq!(barrier["type"], "sessionsEstablished", "{barrier:#}");
    assert_eq!(barrier["gone"]["cs1-k8s-m1.zpepc.com.cn"], serde_json::json!(["Mesh_21_49_22_5", "Mesh_21_49_22_6", "Mesh_21_49_22_9"]));
    assert_eq!(barrier["sessions"]["cs1-k8s-m1.zpepc.com.cn"], serde_json::json!(["Node_21_49_22_7", "Node_21_49_22_8"]));
    assert!(barrier["gone"].get("cs1-k8s-n1.zpepc.com.cn").is_none(), "a reflector loses no session there: {barrier:#}");
}
