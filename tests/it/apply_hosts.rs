//! `apply`'s node and router paths against the real programs: BIRD 2 running in network
//! namespaces (one per node, on one bridge), reconfigured by `calplan apply --transport netns`
//! and, through a real OpenSSH server on loopback, by `--transport ssh`; route pins in the
//! namespaces' kernels; nftables and iptables rulesets loaded into them.
//!
//! Everything here needs root (namespaces, sshd), and says so in its name. Calico resources
//! go to a stand-in `calicoctl` that keeps them as files (calicoctl itself cannot be installed
//! here), so that a plan made after the apply reads back what the apply wrote.

use crate::bird::bird16;
use crate::cli::{both, calplan_with as calplan, text};
use crate::golden;
use calplan::apply::hosts::{self, Loaded};
use calplan::apply::transport::{Host, HostSettings, Transport, TransportKind};
use calplan::netns::{self, Daemon, InterfaceName, Namespace};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn path(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

fn interface(name: &str) -> InterfaceName {
    InterfaceName::new(name).unwrap()
}

/// The `protocol bgp NAME` sessions a BIRD configuration declares.
pub(crate) fn bgp_protocols(config: &str) -> BTreeSet<String> {
    config
        .lines()
        .filter_map(|line| line.strip_prefix("protocol bgp "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The rows of `birdc show protocols` whose protocol is BGP: name → Established or not.
fn bgp_rows(table: &str) -> BTreeMap<String, bool> {
    table
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            (words.len() > 3 && words[1] == "BGP").then(|| (words[0].to_string(), line.contains("Established")))
        })
        .collect()
}

/// A node's BIRD-programmed routes as `(destination, gateway or "blackhole")`, from `ip -j`.
fn bird_routes(namespace: &str) -> BTreeSet<(String, String)> {
    let output = Command::new("ip").args(["-n", namespace, "-j", "-4", "route", "show", "proto", "bird"]).output().unwrap();
    let entries: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap_or_default();
    entries
        .iter()
        .map(|entry| {
            let mut destination = entry["dst"].as_str().unwrap_or_default().to_string();
            if !destination.contains('/') {
                destination.push_str("/32");
            }
            let gateway = if entry["type"] == "blackhole" {
                "blackhole".to_string()
            } else {
                entry["gateway"].as_str().unwrap_or_default().to_string()
            };
            (destination, gateway)
        })
        .collect()
}

/// The same pairs from a `nodes/<node>/routes` artifact.
fn artifact_routes(routes: &str) -> BTreeSet<(String, String)> {
    routes
        .lines()
        .filter(|line| line.contains("proto bird"))
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words[0] == "blackhole" {
                (words[1].to_string(), "blackhole".to_string())
            } else {
                let via = words.iter().position(|word| *word == "via").map(|index| words[index + 1]).unwrap_or_default();
                (words[0].to_string(), via.to_string())
            }
        })
        .collect()
}

/// The route pins a node holds: routes of protocol `kernel` at the pins' metric (multipath
/// next-hop lines with them), and any of the protocol pins had before.
pub(crate) fn pins(namespace: &str) -> String {
    let mut all = String::new();
    for family in ["-4", "-6"] {
        for protocol in ["kernel", "252"] {
            let output = Command::new("ip").args(["-n", namespace, family, "route", "show", "proto", protocol]).output().unwrap();
            let mut pin = false;
            for line in text(&output.stdout).lines() {
                if !line.starts_with(char::is_whitespace) {
                    pin = line.contains(" metric 4096") || protocol == "252";
                }
                if pin {
                    all.push_str(line);
                    all.push('\n');
                }
            }
        }
    }
    all
}

/// BIRD 2, checked to be BIRD 2.
fn bird2() -> PathBuf {
    let bird = PathBuf::from(std::env::var_os("CALPLAN_BIRD").unwrap_or_else(|| "/usr/sbin/bird".into()));
    let version = Command::new(&bird).arg("--version").output().expect("BIRD 2 runs (Debian's bird2)");
    assert!(both(&version).contains("BIRD version 2."), "`{}` is not BIRD 2", bird.display());
    bird
}

/// Who runs a [`Cluster`]'s nodes, and so where BIRD's files are.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    /// BIRD 2 on calplan's `bird.cfg`, in the node's root, with its socket beside it.
    Bird2,
    /// As calico-node lays a node out, under the node's directory: BIRD 1.6 (Calico's BIRD is a
    /// fork of it) on a copy of `etc/calico/confd/config/bird.cfg` (confd's render) without the
    /// fork-only statement, its socket at `var/run/calico/bird.ctl`; calplan's own files (route
    /// pins) in `etc/calplan`.
    CalicoNode,
}

/// A cluster in namespaces: a node per namespace on one bridge (which lives in a namespace of
/// its own, so the host's network is never touched), each with a directory for its files and
/// BIRD started on the configuration found there. Fields drop in teardown order: daemons,
/// then namespaces, then the files.
pub(crate) struct Cluster {
    birds: Vec<Option<Daemon>>,
    pub(crate) nodes: Vec<Namespace>,
    _switch: Namespace,
    scratch: tempfile::TempDir,
    pub(crate) names: Vec<String>,
    kind: NodeKind,
}

/// A host of a [`Cluster`]: a node runs BIRD on `bird` (its configuration and, if it needs
/// one, its secrets file); a router runs nothing.
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) address: ipnet::Ipv4Net,
    pub(crate) bird: Option<(String, Option<String>)>,
}

impl Cluster {
    /// One namespace per member. Members in other subnets share the segment through on-link
    /// routes; `stand_ins` are devices the kernel may lack (`tunl0`), as veth pairs.
    fn start(members: &[Member], stand_ins: &[&str]) -> Cluster {
        Cluster::start_as(NodeKind::Bird2, members, stand_ins)
    }

    pub(crate) fn start_as(kind: NodeKind, members: &[Member], stand_ins: &[&str]) -> Cluster {
        let bird = match kind {
            NodeKind::Bird2 => bird2(),
            NodeKind::CalicoNode => bird16(),
        };
        let prefix = netns::unique_prefix("cpa").unwrap();
        let switch = Namespace::create(prefix.join("sw").unwrap()).unwrap();
        let bridge = interface("br0");
        switch.add_bridge(&bridge).unwrap();
        switch.set_up(&bridge).unwrap();
        let mut cluster = Cluster {
            birds: Vec::new(),
            nodes: Vec::new(),
            _switch: switch,
            scratch: tempfile::tempdir().unwrap(),
            names: Vec::new(),
            kind,
        };
        let networks: BTreeSet<String> = members.iter().map(|member| member.address.trunc().to_string()).collect();
        for (number, Member { name, address, bird: config }) in members.iter().enumerate() {
            let namespace = Namespace::create(prefix.join(&format!("n{number}")).unwrap()).unwrap();
            let (inside, outside) = (interface("eth0"), interface(&format!("p{number}")));
            netns::veth(&namespace, &inside, &cluster._switch, &outside).unwrap();
            cluster._switch.set_master(&outside, &bridge).unwrap();
            cluster._switch.set_up(&outside).unwrap();
            namespace.add_address(&inside, address.addr().into(), address.prefix_len()).unwrap();
            namespace.set_up(&inside).unwrap();
            for network in networks.iter().filter(|network| **network != address.trunc().to_string()) {
                namespace.ip(["route", "add", network.as_str(), "dev", "eth0"]).unwrap();
            }
            for (stand_in, device) in stand_ins.iter().enumerate() {
                let (device, peer) = (interface(device), interface(&format!("standin{stand_in}")));
                netns::veth(&namespace, &device, &namespace, &peer).unwrap();
                namespace.set_up(&device).unwrap();
                namespace.set_up(&peer).unwrap();
            }
            let root = cluster.root(number);
            std::fs::create_dir_all(&root).unwrap();
            std::fs::create_dir_all(cluster.bird_config(number).parent().unwrap()).unwrap();
            std::fs::create_dir_all(cluster.bird_socket(number).parent().unwrap()).unwrap();
            cluster.nodes.push(namespace);
            cluster.names.push(name.clone());
            cluster.birds.push(None);
            if let Some((config, secrets)) = config {
                std::fs::write(cluster.bird_config(number), config).unwrap();
                if let Some(secrets) = secrets {
                    std::fs::write(root.join(calplan_targets::bird::SECRETS_FILE), secrets).unwrap();
                }
                cluster.start_bird_with(number, &bird);
            }
        }
        cluster
    }

    /// Where calplan keeps the node's files (the inventory's `root`).
    pub(crate) fn root(&self, number: usize) -> PathBuf {
        match self.kind {
            NodeKind::Bird2 => self.node_dir(number),
            NodeKind::CalicoNode => self.node_dir(number).join("etc/calplan"),
        }
    }

    /// Everything of the node's lives below this directory.
    pub(crate) fn node_dir(&self, number: usize) -> PathBuf {
        self.scratch.path().join(format!("n{number}"))
    }

    /// The configuration BIRD runs.
    pub(crate) fn bird_config(&self, number: usize) -> PathBuf {
        match self.kind {
            NodeKind::Bird2 => self.root(number).join("bird.cfg"),
            // Stock BIRD 1.6 runs a copy of confd's render without the fork-only statement.
            NodeKind::CalicoNode => self.node_dir(number).join("etc/calico/confd/config/bird-running.cfg"),
        }
    }

    /// Where a calico-node node's confd writes its render (calico-node's layout).
    pub(crate) fn confd_render(&self, number: usize) -> PathBuf {
        self.node_dir(number).join("etc/calico/confd/config/bird.cfg")
    }

    pub(crate) fn bird_socket(&self, number: usize) -> PathBuf {
        match self.kind {
            NodeKind::Bird2 => self.root(number).join("bird.ctl"),
            NodeKind::CalicoNode => self.node_dir(number).join("var/run/calico/bird.ctl"),
        }
    }

    /// The client of the BIRD the nodes run.
    pub(crate) fn birdc_program(&self) -> PathBuf {
        match self.kind {
            NodeKind::Bird2 => PathBuf::from("birdc"),
            NodeKind::CalicoNode => bird16().with_file_name("birdc"),
        }
    }

    pub(crate) fn namespace(&self, number: usize) -> &str {
        self.nodes[number].name().as_str()
    }

    pub(crate) fn number(&self, name: &str) -> usize {
        self.names.iter().position(|known| known == name).unwrap_or_else(|| panic!("no node `{name}`"))
    }

    /// How calplan's library reaches a member through the netns transport.
    fn host(&self, number: usize) -> Host {
        let root = self.root(number);
        let settings = HostSettings {
            netns: Some(self.namespace(number).to_string()),
            root: Some(path(&root).to_string()),
            bird_socket: Some(path(&root.join("bird.ctl")).to_string()),
            ..HostSettings::default()
        };
        Host { name: self.names[number].clone(), settings }
    }

    pub(crate) fn birdc(&self, number: usize, args: &[&str]) -> String {
        let output = Command::new(self.birdc_program()).arg("-s").arg(self.bird_socket(number)).args(args).output().expect("birdc runs");
        text(&output.stdout)
    }

    /// Stops a node's BIRD (killed, as a crash would), leaving its kernel routes.
    pub(crate) fn stop_bird(&mut self, number: usize) {
        self.birds[number] = None;
    }

    pub(crate) fn start_bird(&mut self, number: usize) {
        let bird = match self.kind {
            NodeKind::Bird2 => bird2(),
            NodeKind::CalicoNode => bird16(),
        };
        self.start_bird_with(number, &bird);
    }

    fn start_bird_with(&mut self, number: usize, bird: &Path) {
        let directory = self.node_dir(number);
        let (config, socket, pid, log) =
            (self.bird_config(number), self.bird_socket(number), directory.join("bird.pid"), directory.join("bird.log"));
        let arguments = [Path::new("-f"), Path::new("-c"), &config, Path::new("-s"), &socket, Path::new("-P"), &pid];
        self.birds[number] = Some(self.nodes[number].spawn(bird, arguments, &log).unwrap());
    }

    /// The inventory for `--transport netns` (and, with `ssh`, for `--transport ssh`); the
    /// nodes in `iptables` load `rules.iptables` instead of `rules.nft`.
    pub(crate) fn inventory(&self, ssh: Option<(&SshServer, &str)>, iptables: &[&str]) -> PathBuf {
        let mut hosts = serde_json::Map::new();
        for (number, name) in self.names.iter().enumerate() {
            let root = self.root(number);
            let mut host = serde_json::json!({
                "netns": self.namespace(number),
                "root": path(&root),
                "birdSocket": path(&self.bird_socket(number)),
            });
            if self.kind == NodeKind::CalicoNode {
                // BIRD 1.6's own client, in the place of calico-node's `birdcl`; calico-node's
                // IPv6 daemon (not running here: an IPv4 cluster) beside the IPv4 one.
                host["birdClient"] = Value::from(path(&self.birdc_program()));
                host["bird6Socket"] = Value::from(path(&self.node_dir(number).join("var/run/calico/bird6.ctl")));
                host["confdConfig"] = Value::from(path(self.confd_render(number).parent().unwrap()));
            }
            if iptables.contains(&name.as_str()) {
                host["firewall"] = Value::from("iptables");
            }
            if let Some((server, known_hosts)) = ssh {
                for (key, value) in server.settings(known_hosts) {
                    host[key] = value;
                }
            }
            hosts.insert(name.clone(), host);
        }
        let file = self.scratch.path().join(match ssh {
            Some((_, known_hosts)) => format!("inventory-ssh-{known_hosts}.yaml"),
            None => "inventory.yaml".to_string(),
        });
        // JSON is YAML: the inventory reader takes it as it is.
        std::fs::write(&file, serde_json::to_string_pretty(&serde_json::json!({ "hosts": hosts })).unwrap()).unwrap();
        file
    }

    /// Polls until every node has exactly `expected[node]` as its BGP sessions, all
    /// Established; panics with every table after `within`.
    pub(crate) fn wait_sessions(&mut self, expected: &BTreeMap<String, BTreeSet<String>>, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let mut pending = Vec::new();
            for (name, sessions) in expected {
                let number = self.number(name);
                if let Some(Some(bird)) = self.birds.get_mut(number)
                    && let Err(stopped) = bird.check_running()
                {
                    panic!("{stopped}: {}", std::fs::read_to_string(self.node_dir(number).join("bird.log")).unwrap_or_default());
                }
                let rows = bgp_rows(&self.birdc(number, &["show", "protocols"]));
                let names: BTreeSet<String> = rows.keys().cloned().collect();
                if &names != sessions || !rows.values().all(|up| *up) {
                    pending.push(format!("{name}: {rows:?}, expected {sessions:?}"));
                }
            }
            if pending.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "sessions not as expected after {within:?}:\n{}", pending.join("\n"));
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls until each node's kernel holds exactly the BIRD routes its `routes` lists.
    pub(crate) fn wait_routes(&self, routes: &BTreeMap<String, String>, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let gaps: Vec<String> = routes
                .iter()
                .filter_map(|(name, routes)| {
                    let (held, wanted) = (bird_routes(self.namespace(self.number(name))), artifact_routes(routes));
                    (held != wanted).then(|| format!("{name}: kernel {held:?}, artifact {wanted:?}"))
                })
                .collect();
            if gaps.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "kernel routes differ after {within:?}:\n{}", gaps.join("\n"));
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A compiled intent: the output directory and its node files by node name.
struct Compiled {
    dir: PathBuf,
}

impl Compiled {
    fn new(intent: &str, dir: &Path, targets: Option<&str>) -> Compiled {
        let mut args = vec!["compile", intent, "-o", path(dir)];
        if let Some(targets) = targets {
            args.extend(["--target", targets]);
        }
        let output = calplan(&args, &[]);
        assert!(output.status.success(), "compile {intent}: {}", both(&output));
        Compiled { dir: dir.to_path_buf() }
    }

    fn node_file(&self, node: &str, file: &str) -> String {
        std::fs::read_to_string(self.dir.join("nodes").join(node).join(file)).unwrap_or_else(|error| panic!("{node}/{file}: {error}"))
    }

    fn nodes(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.join("nodes"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn sessions(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.nodes().into_iter().map(|node| (node.clone(), bgp_protocols(&self.node_file(&node, "bird.cfg")))).collect()
    }

    fn routes(&self) -> BTreeMap<String, String> {
        self.nodes().into_iter().map(|node| (node.clone(), self.node_file(&node, "routes"))).collect()
    }
}

/// A stand-in for `calicoctl` (which cannot be installed here) that keeps what it is given:
/// `apply -f FILE` stores the file, `delete -f FILE` removes it, `get` prints them all. Its
/// store is a directory of Calico resources, which is also a `--current` source.
pub(crate) struct CalicoStandIn {
    program: PathBuf,
    pub(crate) store: PathBuf,
    log: PathBuf,
}

impl CalicoStandIn {
    /// Starts with the resources in `exports` (Calico YAML files).
    pub(crate) fn new(directory: &Path, exports: &[PathBuf]) -> CalicoStandIn {
        let store = directory.join("calico-store");
        std::fs::create_dir_all(&store).unwrap();
        for export in exports {
            let text = std::fs::read_to_string(export).unwrap();
            let read = calplan_plan::current::calico_yaml::read(calplan_diagnostics::FileId(0), &text);
            for resource in read.value.unwrap_or_else(|| panic!("{} reads", export.display())).iter() {
                let file = store.join(format!("{}-{}.yaml", resource.kind().plural(), resource.name()));
                std::fs::write(file, resource.to_yaml()).unwrap();
            }
        }
        let (program, log) = (directory.join("calicoctl"), directory.join("calicoctl.log"));
        let script = format!(
            "#!/bin/sh\n# calicoctl stand-in: records each call, keeps resources as files\necho \"$*\" >> '{log}'\ncase \"$1\" in\n  get) for file in '{store}'/*.yaml; do echo ---; cat \"$file\"; done ;;\n  apply) cp \"$3\" '{store}/' ;;\n  delete) rm -f '{store}'/\"$(basename \"$3\")\" ;;\n  *) echo \"stand-in: $1 is not simulated\" >&2; exit 1 ;;\nesac\n",
            log = log.display(),
            store = store.display()
        );
        std::fs::write(&program, script).unwrap();
        std::fs::set_permissions(&program, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        CalicoStandIn { program, store, log }
    }

    pub(crate) fn environment(&self) -> [(&'static str, &str); 1] {
        [("CALPLAN_CALICOCTL", path(&self.program))]
    }
}

/// Samples a namespace's route pins while an apply runs: the most it saw at once.
pub(crate) struct PinWatcher {
    stop: Arc<AtomicBool>,
    most: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PinWatcher {
    pub(crate) fn start(namespace: &str) -> PinWatcher {
        let (stop, most) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let (thread_stop, thread_most, namespace) = (stop.clone(), most.clone(), namespace.to_string());
        let thread = std::thread::spawn(move || {
            while !thread_stop.load(Ordering::Relaxed) {
                thread_most.fetch_max(pins(&namespace).lines().count(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        PinWatcher { stop, most, thread: Some(thread) }
    }

    pub(crate) fn most(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        self.most.load(Ordering::Relaxed)
    }
}

/// The seed cluster on its full mesh, in namespaces, BIRD running what `mesh.yaml` compiles
/// to; the compiled directory (node files only where calplan plans them) is the applied state
/// the plan starts from.
struct MeshToReflectors {
    cluster: Cluster,
    work: tempfile::TempDir,
    before: Compiled,
    after: Compiled,
    calico: CalicoStandIn,
}

const MESH_INTENT: &str = "testdata/mesh-to-rr/mesh.yaml";
const REFLECTOR_INTENT: &str = "testdata/mesh-to-rr/intent.yaml";

impl MeshToReflectors {
    fn start() -> MeshToReflectors {
        let work = tempfile::tempdir().unwrap();
        // The targets the cluster ran before calplan managed it: BIRD and the routes. Files of
        // other targets (rulesets, routers) are created by the plan.
        let before = Compiled::new(MESH_INTENT, &work.path().join("before"), Some("calico,bird,bird-calico,routes"));
        let after = Compiled::new(REFLECTOR_INTENT, &work.path().join("after"), None);
        let checked = calplan::pipeline::check("mesh.yaml", std::fs::read_to_string(golden::root().join(MESH_INTENT)).unwrap(), None);
        let analysis = checked.valid().expect("the mesh intent is valid");
        let mut members: Vec<Member> = analysis
            .model
            .nodes
            .iter()
            .map(|node| {
                let name = node.name.value.clone();
                let address = node.ipv4_address.as_ref().expect("IPv4 nodes").value;
                let config = before.node_file(&name, "bird.cfg");
                Member { name, address, bird: Some((config, None)) }
            })
            .collect();
        for router in &analysis.model.routers {
            let ipnet::IpNet::V4(address) = router.address.value else { panic!("an IPv4 router") };
            members.push(Member { name: router.name.value.clone(), address, bird: None });
        }
        let mut cluster = Cluster::start(&members, &[]);
        cluster.wait_sessions(&before.sessions(), Duration::from_secs(90));
        cluster.wait_routes(&before.routes(), Duration::from_secs(30));
        let calico = CalicoStandIn::new(work.path(), &[golden::root().join("testdata/mesh-to-rr/current/cluster.yaml")]);
        MeshToReflectors { cluster, work, before, after, calico }
    }

    fn plan(&self, file: &str) -> PathBuf {
        let plan = self.work.path().join(file);
        let output = calplan(
            &["plan", REFLECTOR_INTENT, "--current", path(&self.before.dir), "--current", path(&self.calico.store), "-o", path(&plan)],
            &[],
        );
        assert!(output.status.success(), "plan: {}", both(&output));
        plan
    }

    fn apply(&self, plan: &Path, state: &Path, inventory: &Path, transport: &str, extra: &[(&str, &str)]) -> Output {
        self.apply_within(plan, state, inventory, transport, extra, "60")
    }

    /// `calplan apply` with each barrier given `barrier_timeout` seconds.
    fn apply_within(
        &self,
        plan: &Path,
        state: &Path,
        inventory: &Path,
        transport: &str,
        extra: &[(&str, &str)],
        barrier_timeout: &str,
    ) -> Output {
        self.apply_with(plan, state, inventory, transport, extra, &["--barrier-timeout", barrier_timeout])
    }

    /// `calplan apply` with more arguments.
    fn apply_with(
        &self,
        plan: &Path,
        state: &Path,
        inventory: &Path,
        transport: &str,
        extra: &[(&str, &str)],
        arguments: &[&str],
    ) -> Output {
        let mut environment: Vec<(&str, &str)> = self.calico.environment().to_vec();
        environment.extend_from_slice(extra);
        let mut all = vec!["apply", path(plan), "--state", path(state), "--transport", transport, "--inventory", path(inventory)];
        all.extend(["--calico", "calicoctl", "--auto-approve"]);
        all.extend_from_slice(arguments);
        calplan(&all, &environment)
    }

    /// What every apply that completed must leave: the reflector design's sessions and
    /// routes, no pins, every stage recorded complete, and nothing left to plan.
    fn assert_converged(&mut self, state: &Path, stage_count: usize) {
        self.cluster.wait_sessions(&self.after.sessions(), Duration::from_secs(10));
        for (node, sessions) in self.after.sessions() {
            assert!(sessions.iter().all(|name| name.starts_with("Node_")), "{node}: {sessions:?}");
            assert!(!sessions.is_empty());
        }
        self.cluster.wait_routes(&self.after.routes(), Duration::from_secs(10));
        for number in 0..self.after.nodes().len() {
            let namespace = self.cluster.namespace(number);
            assert_eq!(pins(namespace), "", "{}: route pins left behind", self.cluster.names[number]);
            let on_disk = std::fs::read_to_string(self.cluster.root(number).join("bird.cfg")).unwrap();
            assert_eq!(on_disk, self.after.node_file(&self.cluster.names[number], "bird.cfg"), "{}", self.cluster.names[number]);
        }
        let record: Value = serde_json::from_str(&std::fs::read_to_string(state.join("state.json")).unwrap()).unwrap();
        let stages = record["stages"].as_array().unwrap();
        assert_eq!(stages.len(), stage_count, "{record:#}");
        assert!(stages.iter().all(|stage| stage["outcome"] == "complete"), "{record:#}");
        // A plan against what the state directory says was applied, and the datastore as the
        // apply left it, is empty.
        let output = calplan(
            &[
                "plan",
                REFLECTOR_INTENT,
                "--current",
                path(&state.join("applied")),
                "--current",
                path(&self.calico.store),
                "--detailed-exitcode",
            ],
            &[],
        );
        assert_eq!(output.status.code(), Some(0), "a plan after the apply is not empty:\n{}", both(&output));
        assert!(text(&output.stdout).contains("No changes."), "{}", both(&output));
    }
}

/// The seed notes' migration, for real: six BIRD 2 nodes on the full mesh; `calplan apply`
/// pins routes, adds the reflectors' peerings, waits on the barrier until the real sessions
/// are Established, turns the mesh off, waits again, and unpins.
#[test]
fn mesh_to_route_reflectors_through_the_netns_transport_needs_root() {
    let started = Instant::now();
    let mut lab = MeshToReflectors::start();
    let plan = lab.plan("mesh-to-rr.plan");
    let plan_json: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let stages = plan_json["stages"].as_array().unwrap();
    let titles: Vec<&str> = stages.iter().map(|stage| stage["title"].as_str().unwrap()).collect();
    assert_eq!((titles[0], titles[titles.len() - 1]), ("Pin routes", "Unpin routes"), "{titles:?}");
    assert!(titles.contains(&"Nodes") && titles.contains(&"Node-to-node mesh off"), "{titles:?}");
    let iptables_node = lab.cluster.names[5].clone();
    let inventory = lab.cluster.inventory(None, &[&iptables_node]);
    let state = lab.work.path().join("state");
    let watcher = PinWatcher::start(lab.cluster.namespace(0));
    let output = lab.apply(&plan, &state, &inventory, "netns", &[]);
    let most_pins = watcher.most();
    let stderr = text(&output.stderr);
    if std::env::var_os("CALPLAN_TEST_SHOW").is_some() {
        eprintln!("{stderr}");
    }
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    // Each session barrier was waited on until BIRD's sessions came up: BIRD waits two
    // seconds (`connect delay time 2`) before it opens a new session, so a barrier that held
    // at once would not have looked at them. The pins were there while sessions changed.
    assert_eq!(stderr.matches("waiting: every node has the sessions listed in the expected status Established").count(), 2, "{stderr}");
    let waits = barrier_waits(&stderr);
    assert!(waits["Nodes"] >= 1.0, "the barrier after the reflectors' sessions held after {}s:\n{stderr}", waits["Nodes"]);
    let pinned = lab.before.node_file(&lab.cluster.names[0], "routes").lines().count();
    assert_eq!(most_pins, pinned, "node 0 held {most_pins} pins at most, not {pinned}");
    lab.assert_converged(&state, stages.len());
    // The rulesets the plan created are loaded: nftables on five nodes, iptables on one.
    for number in 0..6 {
        let namespace = lab.cluster.namespace(number);
        let nft = Command::new("ip").args(["netns", "exec", namespace, "nft", "list", "ruleset"]).output().unwrap();
        let iptables = Command::new("ip").args(["netns", "exec", namespace, "iptables-save"]).output().unwrap();
        let (nft, iptables) = (text(&nft.stdout), text(&iptables.stdout));
        if lab.cluster.names[number] == iptables_node {
            assert!(!nft.contains("table ip calplan"), "{nft}");
            assert_eq!(iptables.matches("-A INPUT -j CALPLAN-INPUT").count(), 1, "{iptables}");
            assert_eq!(iptables.matches("-A POSTROUTING -j CALPLAN-POSTROUTING").count(), 1, "{iptables}");
            assert!(iptables.contains("-A CALPLAN-CLUSTER-HOSTS -s 21.49.22."), "{iptables}");
        } else {
            assert!(nft.contains("table ip calplan") && nft.contains("tcp dport 179 ip saddr @cluster_hosts accept"), "{nft}");
            assert!(!iptables.contains("CALPLAN"), "{iptables}");
        }
    }
    // The router loaded its platform's file (routes.sh) and holds its routes, ECMP included.
    let router = lab.cluster.number("cs1-harbor-1");
    let script = std::fs::read_to_string(lab.after.dir.join("routers/cs1-harbor-1/routes.sh")).unwrap();
    let expected: Vec<String> =
        script.lines().filter_map(|line| line.trim().strip_prefix("ip route replace ")).map(str::to_string).collect();
    assert!(expected.iter().any(|route| route.contains("nexthop")), "an ECMP route: {script}");
    let host = lab.cluster.host(router);
    let kernel = calplan::apply::observe::kernel_routes(&Transport::new(TransportKind::Netns), &host).unwrap();
    assert_eq!(hosts::routes_present(&kernel, &expected), Vec::<String>::new(), "{kernel:?}");
    assert!(lab.cluster.root(router).join("frr.conf").is_file(), "another platform's file is kept beside, not loaded");
    let log = std::fs::read_to_string(&lab.calico.log).unwrap();
    assert!(log.lines().any(|line| line.starts_with("apply -f") && line.ends_with("bgppeers-peer-with-route-reflectors.yaml")), "{log}");
    // Applying the same plan again does nothing: every stage is recorded as done.
    let output = lab.apply(&plan, &state, &inventory, "netns", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert_eq!(text(&output.stderr).matches("already applied").count(), stages.len(), "{}", both(&output));
    eprintln!("mesh to reflectors through netns: {:?}", started.elapsed());
}

/// How long each stage's barrier took to hold, by stage title, from apply's progress lines.
pub(crate) fn barrier_waits(stderr: &str) -> BTreeMap<String, f64> {
    let mut waits = BTreeMap::new();
    let mut title = String::new();
    for line in stderr.lines() {
        if let Some(rest) = line.strip_prefix("stage ").and_then(|rest| rest.split_once(": ")) {
            title = rest.1.to_string();
        } else if let Some(seconds) = line.trim().strip_prefix("barrier held after ").and_then(|rest| rest.strip_suffix('s')) {
            waits.insert(title.clone(), seconds.parse().unwrap());
        }
    }
    waits
}

/// The number of steps (changes taken, barriers passed) before the stage titled `title`, and
/// that stage's changes, from a saved plan: where the test-only abort hook stops.
fn steps_before(plan: &Path, title: &str) -> (usize, Vec<Value>) {
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(plan).unwrap()).unwrap();
    let mut steps = 0;
    for stage in plan["stages"].as_array().unwrap() {
        let changes = stage["changes"].as_array().unwrap();
        if stage["title"] == title {
            return (steps, changes.clone());
        }
        steps += changes.len() + usize::from(stage.get("barrier").is_some());
    }
    panic!("no stage `{title}`");
}

/// A barrier that cannot hold rolls its stage back, on a stage that an interrupted apply had
/// already half loaded: the apply stops after two nodes' BIRD took the stage's configuration
/// (a crash), a route reflector's BIRD dies, and the apply is run again. It loads the stage
/// again, waits for sessions to the dead reflector that never come, and puts every node's
/// BIRD back on the configuration of the stage before (BIRD's own `configure undo` would go
/// back only to the configuration the first run loaded), then exits 1 naming the barrier. With
/// the reflector back, a third run converges.
#[test]
fn a_barrier_that_fails_rolls_bird_back_even_after_a_crash_needs_root() {
    let mut lab = MeshToReflectors::start();
    let plan = lab.plan("mesh-to-rr.plan");
    let inventory = lab.cluster.inventory(None, &[]);
    let state = lab.work.path().join("state");
    let (steps, changes) = steps_before(&plan, "Node-to-node mesh off");
    let bird_changes: Vec<&Value> = changes.iter().filter(|change| change["kind"] == "bird.cfg").collect();
    assert!(changes[0]["kind"] == "BGPConfiguration" && bird_changes.len() >= 3, "{changes:#?}");
    // Stop once the datastore and two nodes' BIRD have the stage's change (the nodes are
    // loaded in parallel: any two).
    let abort = (steps + 3).to_string();
    let output = lab.apply(&plan, &state, &inventory, "netns", &[("CALPLAN_TEST_ABORT_AFTER_STEP", &abort)]);
    assert_eq!(output.status.code(), Some(99), "{}", both(&output));
    let reconfigured: Vec<&str> = bird_changes
        .iter()
        .map(|change| change["name"].as_str().unwrap())
        .filter(|name| {
            let sessions = bgp_rows(&lab.cluster.birdc(lab.cluster.number(name), &["show", "protocols"]));
            !sessions.is_empty() && !sessions.keys().any(|session| session.starts_with("Mesh_"))
        })
        .collect();
    assert!(reconfigured.len() >= 2, "the stage's configuration runs on {reconfigured:?} only");
    let reflector = lab.cluster.number("cs1-k8s-n1.zpepc.com.cn");
    lab.cluster.stop_bird(reflector);
    let started = Instant::now();
    let output = lab.apply_within(&plan, &state, &inventory, "netns", &[], "6");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() >= Duration::from_secs(6), "the barrier was waited on for its timeout");
    assert!(
        stderr.contains("stage 5 (Node-to-node mesh off): barrier not met") || stderr.contains("(Node-to-node mesh off): barrier not met"),
        "{stderr}"
    );
    assert!(stderr.contains("`cs1-k8s-n1.zpepc.com.cn`") && stderr.contains("the stage's changes were rolled back"), "{stderr}");
    // Every node the stage reconfigured runs the previous stage's configuration again: on
    // disk, and in BIRD, whose mesh sessions are back and up.
    for change in &bird_changes {
        let name = change["name"].as_str().unwrap();
        let number = lab.cluster.number(name);
        let previous = change["before"]["text"].as_str().unwrap();
        assert_eq!(std::fs::read_to_string(lab.cluster.root(number).join("bird.cfg")).unwrap(), previous, "{name}");
        let wanted = bgp_protocols(previous);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let rows = bgp_rows(&lab.cluster.birdc(number, &["show", "protocols"]));
            let names: BTreeSet<String> = rows.keys().cloned().collect();
            let mesh_up = rows.iter().filter(|(name, _)| name.starts_with("Mesh_")).all(|(_, up)| *up);
            if names == wanted && mesh_up {
                break;
            }
            assert!(Instant::now() < deadline, "{name} runs {rows:?}, not the previous configuration's {wanted:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(wanted.iter().any(|name| name.starts_with("Mesh_")), "{wanted:?}");
    }
    let record: Value = serde_json::from_str(&std::fs::read_to_string(state.join("state.json")).unwrap()).unwrap();
    let last = record["stages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["outcome"], "rolledBack", "{record:#}");
    assert!(last["error"].as_str().unwrap().contains("barrier not met"), "{record:#}");
    // With the reflector back, the same plan converges.
    lab.cluster.start_bird(reflector);
    let output = lab.apply(&plan, &state, &inventory, "netns", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let stages = serde_json::from_str::<Value>(&std::fs::read_to_string(&plan).unwrap()).unwrap()["stages"].as_array().unwrap().len();
    lab.assert_converged(&state, stages);
}

/// The same migration with every file pushed, and every command run, over SSH: a real OpenSSH
/// server on loopback, `ip netns exec` on the far side into each node's namespace. First with
/// a `known_hosts` holding another key: ssh refuses the server, and the apply stops before it
/// changes anything anywhere (the server never even authenticates anyone). Then with the right
/// one: BIRD reconfigured, rulesets loaded and routes pinned and unpinned, through ssh.
#[test]
fn mesh_to_route_reflectors_through_a_real_sshd_needs_root() {
    let started = Instant::now();
    let server = SshServer::start();
    let mut lab = MeshToReflectors::start();
    let plan = lab.plan("mesh-to-rr.plan");
    let state = lab.work.path().join("state");
    let files_before: Vec<BTreeSet<PathBuf>> = (0..lab.cluster.names.len()).map(|number| files_in(&lab.cluster.root(number))).collect();

    let wrong = lab.cluster.inventory(Some((&server, "wrong_known_hosts")), &[]);
    let output = lab.apply(&plan, &state, &wrong, "ssh", &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Host key verification failed") && stderr.contains("nothing was changed"), "{stderr}");
    assert!(!server.log().contains("Accepted publickey"), "ssh went past the host key check:\n{}", server.log());
    assert!(!lab.calico.log.exists(), "the datastore was written");
    for (number, files) in files_before.iter().enumerate() {
        assert_eq!(&files_in(&lab.cluster.root(number)), files, "{}: files were written", lab.cluster.names[number]);
        assert_eq!(pins(lab.cluster.namespace(number)), "");
    }
    assert!(!state.join("state.json").exists());

    let inventory = lab.cluster.inventory(Some((&server, "known_hosts")), &[]);
    let output = lab.apply(&plan, &state, &inventory, "ssh", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(server.log().contains("Accepted publickey for root from 127.0.0.1"), "{}", server.log());
    let stages = serde_json::from_str::<Value>(&std::fs::read_to_string(&plan).unwrap()).unwrap()["stages"].as_array().unwrap().len();
    lab.assert_converged(&state, stages);
    for number in 0..6 {
        let nft = Command::new("ip")
            .args(["netns", "exec", lab.cluster.namespace(number), "nft", "list", "table", "ip", "calplan"])
            .output()
            .unwrap();
        assert!(text(&nft.stdout).contains("tcp dport 179 ip saddr @cluster_hosts accept"), "{}", both(&nft));
    }
    // The shared connections were ended with the apply, and their sockets with them.
    let sockets: Vec<PathBuf> = std::fs::read_dir(state.join("ssh")).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert!(sockets.is_empty(), "{sockets:?}");
    eprintln!("mesh to reflectors through ssh: {:?}", started.elapsed());
}

fn files_in(directory: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(directory).unwrap().map(|entry| entry.unwrap().path()).collect()
}

/// Names that would do harm in a shell never reach one: an inventory with a host name, a
/// namespace or a root holding shell syntax is refused when read, and a plan naming such a
/// host (no inventory entry, so the name itself would be ssh's destination) is refused before
/// anything runs. A real sshd stands by, so that a name that got through would really run.
#[test]
fn hostile_names_never_reach_a_shell_real_sshd_needs_root() {
    let server = SshServer::start();
    let directory = tempfile::tempdir().unwrap();
    let marker = directory.path().join("pwned");
    let settings: serde_json::Map<String, Value> =
        server.settings("known_hosts").into_iter().map(|(key, value)| (key.to_string(), value)).collect();
    let hostile = format!("x;touch {}", marker.display());
    let cases = [
        ("host name", serde_json::json!({ "hosts": { hostile.clone(): settings.clone() } })),
        ("netns", serde_json::json!({ "hosts": { "n1": { "netns": hostile.clone() } }, "defaults": settings.clone() })),
        ("root", serde_json::json!({ "hosts": { "n1": { "root": format!("/tmp/$(touch {})", marker.display()) } } })),
        ("user", serde_json::json!({ "defaults": { "user": "-oProxyCommand=touch /tmp/x" } })),
    ];
    let plan = directory.path().join("plan.json");
    let output = calplan(&["plan", "testdata/seed-rr/intent.yaml", "--current", "testdata/mesh-to-rr/current", "-o", path(&plan)], &[]);
    assert!(output.status.success(), "{}", both(&output));
    for (what, inventory) in cases {
        let file = directory.path().join("inventory.yaml");
        std::fs::write(&file, inventory.to_string()).unwrap();
        let output = calplan(
            &[
                "apply",
                path(&plan),
                "--state",
                path(&directory.path().join("state")),
                "--transport",
                "ssh",
                "--inventory",
                path(&file),
                "--only",
                "nodes",
                "--auto-approve",
            ],
            &[],
        );
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
        assert!(
            stderr.contains("inventory")
                && (stderr.contains("will not pass to a shell")
                    || stderr.contains("plain names")
                    || stderr.contains("must not start with")),
            "{what}: {stderr}"
        );
    }
    // A plan naming a hostile host: saved plans are files anyone could write (this one is
    // well-formed, with a matching digest, so apply reads it and must refuse the name itself).
    use calplan_plan::plan::{Action, Change, Content, Fingerprint, Plan, Stage, Target};
    let hostile_plan = Plan {
        intent: Fingerprint { name: "-".into(), sha256: String::new() },
        current: Vec::new(),
        nodes: None,
        node_agent: calplan_model::NodeAgent::Bird,
        router_platforms: Default::default(),
        stages: vec![Stage {
            number: 1,
            title: "Hostile".into(),
            reason: "test".into(),
            disruption: None,
            changes: vec![Change {
                action: Action::Create,
                kind: "routes".into(),
                name: hostile.clone(),
                target: Target::Node { node: hostile.clone() },
                before: None,
                after: Some(Content::File { text: "x".into() }),
                reason: None,
                informational: false,
            }],
            manual: Vec::new(),
            barrier: None,
            expected_status: Default::default(),
        }],
        notes: Vec::new(),
    };
    std::fs::write(&plan, hostile_plan.to_json()).unwrap();
    let file = directory.path().join("inventory.yaml");
    std::fs::write(&file, serde_json::json!({ "defaults": settings }).to_string()).unwrap();
    let output = calplan(
        &[
            "apply",
            path(&plan),
            "--state",
            path(&directory.path().join("state")),
            "--transport",
            "ssh",
            "--inventory",
            path(&file),
            "--auto-approve",
        ],
        &[],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("will not pass to a shell"), "{stderr}");
    assert!(!marker.exists(), "a hostile name ran");
    assert!(!server.log().contains("Accepted publickey"), "nothing reached the server:\n{}", server.log());
}

/// The last contents a plan gives each node's `file`.
fn last_files(plan: &Path, file: &str) -> BTreeMap<String, String> {
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(plan).unwrap()).unwrap();
    let mut files = BTreeMap::new();
    for change in plan["stages"].as_array().unwrap().iter().flat_map(|stage| stage["changes"].as_array().unwrap()) {
        if change["kind"] == file
            && let Some(text) = change["after"]["text"].as_str()
        {
            files.insert(change["name"].as_str().unwrap().to_string(), text.to_string());
        }
    }
    files
}

/// Where in a saved plan to stop.
type StepOf = Box<dyn Fn(&Path) -> usize>;

/// An apply interrupted on the hosts (the test-only hook stops the process dead after a given
/// step, as a crash would; one host at a time, so that the steps count in plan order and each
/// point below is the state it names) and run again converges to what an uninterrupted one
/// leaves: with
/// some pins in and some not; with one node's rulesets loaded and the next not (one node on
/// iptables, whose jumps must not double); with some nodes' BIRD on the stage's configuration,
/// unconfirmed; after a barrier held but before BIRD was told to keep the configuration; with
/// some pins removed.
#[test]
fn an_apply_interrupted_on_the_hosts_converges_when_run_again_needs_root() {
    let plan_of = |lab: &MeshToReflectors| lab.plan("mesh-to-rr.plan");
    let points: Vec<(&str, StepOf)> = vec![
        ("three pins in", Box::new(|plan: &Path| steps_before(plan, "Pin routes").0 + 3)),
        // Right after the iptables node's file: the run again loads it a second time.
        (
            "rulesets loaded, the iptables node's last",
            Box::new(|plan: &Path| {
                let (steps, changes) = steps_before(plan, "Pools and settings");
                let iptables =
                    changes.iter().position(|change| change["kind"] == "rules.iptables" && change["name"] == "cs1-k8s-n3.zpepc.com.cn");
                steps + iptables.expect("the plan loads rules.iptables on the iptables node") + 1
            }),
        ),
        ("three nodes' BIRD unconfirmed", Box::new(|plan: &Path| steps_before(plan, "Nodes").0 + 5)),
        (
            "barrier held, not confirmed",
            Box::new(|plan: &Path| {
                let (steps, changes) = steps_before(plan, "Nodes");
                steps + changes.len() + 1
            }),
        ),
        ("some pins removed", Box::new(|plan: &Path| steps_before(plan, "Unpin routes").0 + 2)),
    ];
    for (what, point) in points {
        let started = Instant::now();
        let mut lab = MeshToReflectors::start();
        let plan = plan_of(&lab);
        let iptables_node = lab.cluster.names[5].clone();
        assert_eq!(iptables_node, "cs1-k8s-n3.zpepc.com.cn");
        let inventory = lab.cluster.inventory(None, &[&iptables_node]);
        let state = lab.work.path().join("state");
        let step = point(&plan).to_string();
        let serial = ["--parallelism", "1", "--barrier-timeout", "60"];
        let output = lab.apply_with(&plan, &state, &inventory, "netns", &[("CALPLAN_TEST_ABORT_AFTER_STEP", &step)], &serial);
        assert_eq!(output.status.code(), Some(99), "{what}: {}", both(&output));
        let output = lab.apply(&plan, &state, &inventory, "netns", &[]);
        assert_eq!(output.status.code(), Some(0), "{what}: {}", both(&output));
        let stages = serde_json::from_str::<Value>(&std::fs::read_to_string(&plan).unwrap()).unwrap()["stages"].as_array().unwrap().len();
        lab.assert_converged(&state, stages);
        let saved = text(&lab.cluster.nodes[5].command("iptables-save").output().unwrap().stdout);
        assert_eq!(saved.matches("-A INPUT -j CALPLAN-INPUT").count(), 1, "{what}: {saved}");
        for number in 0..5 {
            let listed = text(&lab.cluster.nodes[number].command("nft").args(["list", "ruleset"]).output().unwrap().stdout);
            assert_eq!(listed.matches("table ip calplan").count(), 1, "{what}: {listed}");
        }
        eprintln!("interrupted ({what}, after step {step}) and run again: {:?}", started.elapsed());
    }
}

/// Every file below `directory` that holds `needle`.
fn files_holding(directory: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(directory).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if std::fs::read(&path).is_ok_and(|bytes| String::from_utf8_lossy(&bytes).contains(needle)) {
            found.push(path);
        }
    }
    found
}

/// BGP passwords through apply: `testdata/mesh-ipip`'s full mesh (without its router, which
/// would need FRR) first runs without a password, then a plan turns on `nodeMeshPassword`.
/// `--secrets DIR` supplies the value (DIR/<secret>/<key>, as Kubernetes mounts a Secret);
/// apply writes it to each node's `bird-secrets.conf` with mode 0600, BIRD's sessions come
/// back up with TCP-MD5 on both ends, and the value is nowhere else: not in the plan, its
/// rendering, the state directory, the datastore or anything apply printed.
#[test]
fn bgp_passwords_reach_bird_and_nothing_else_needs_root() {
    const PASSWORD: &str = "Mesh-Passw0rd-7d1e9c";
    let work = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(golden::root().join("testdata/mesh-ipip/intent.yaml")).unwrap();
    let without_router = &text[..text.find("\n  routers:").expect("mesh-ipip has routers") + 1];
    let with_password = work.path().join("mesh-ipip.yaml");
    std::fs::write(&with_password, without_router).unwrap();
    let open: String = without_router.lines().filter(|line| !line.contains("nodeMeshPassword")).map(|line| format!("{line}\n")).collect();
    let without_password = work.path().join("mesh-ipip-open.yaml");
    std::fs::write(&without_password, &open).unwrap();
    let before = Compiled::new(path(&without_password), &work.path().join("before"), None);
    let after = Compiled::new(path(&with_password), &work.path().join("after"), None);
    assert!(after.node_file("node-a1", "bird.cfg").contains("# Secret bgp-secrets, key mesh-password"));

    let checked = calplan::pipeline::check("mesh-ipip.yaml", open.clone(), None);
    let members: Vec<Member> = checked
        .valid()
        .expect("the open mesh is valid")
        .model
        .nodes
        .iter()
        .map(|node| {
            let name = node.name.value.clone();
            let config = before.node_file(&name, "bird.cfg");
            Member { address: node.ipv4_address.as_ref().unwrap().value, bird: Some((config, None)), name }
        })
        .collect();
    // The kernel here has no ipip module: `tunl0` is a stand-in, as in the BIRD tests.
    let mut cluster = Cluster::start(&members, &["tunl0"]);
    cluster.wait_sessions(&before.sessions(), Duration::from_secs(60));
    let exports: Vec<PathBuf> =
        ["bgpconfigurations.yaml", "ippools.yaml", "nodes.yaml"].iter().map(|file| before.dir.join("calico").join(file)).collect();
    let calico = CalicoStandIn::new(work.path(), &exports);

    let plan = work.path().join("passwords.plan");
    let output =
        calplan(&["plan", path(&with_password), "--current", path(&before.dir), "--current", path(&calico.store), "-o", path(&plan)], &[]);
    assert!(output.status.success(), "{}", both(&output));
    let secrets = work.path().join("secrets");
    std::fs::create_dir_all(secrets.join("bgp-secrets")).unwrap();
    std::fs::write(secrets.join("bgp-secrets/mesh-password"), format!("{PASSWORD}\n")).unwrap();
    let inventory = cluster.inventory(None, &[]);
    let state = work.path().join("state");
    let mut args = vec!["apply", path(&plan), "--state", path(&state), "--transport", "netns", "--inventory", path(&inventory)];
    args.extend(["--calico", "calicoctl", "--secrets", path(&secrets), "--auto-approve", "--barrier-timeout", "60"]);
    let applied = calplan(&args, &calico.environment());
    assert_eq!(applied.status.code(), Some(0), "{}", both(&applied));

    let planned = last_files(&plan, "bird.cfg");
    for number in 0..cluster.names.len() {
        let file = cluster.root(number).join(calplan_targets::bird::SECRETS_FILE);
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions()) & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
        assert!(std::fs::read_to_string(&file).unwrap().contains(PASSWORD));
        let config = std::fs::read_to_string(cluster.root(number).join("bird.cfg")).unwrap();
        assert_eq!(Some(&config), planned.get(&cluster.names[number]), "{}", cluster.names[number]);
        assert!(config.contains("password bgp_password_bgp_secrets_mesh_password_"));
    }
    cluster.wait_sessions(&after.sessions(), Duration::from_secs(60));

    let shown = calplan(&["show", path(&plan)], &[]);
    assert!(!both(&applied).contains(PASSWORD) && !both(&shown).contains(PASSWORD), "apply or show printed the password");
    for place in [&plan, &state, &calico.store, &calico.log] {
        let holding = if place.is_dir() {
            files_holding(place, PASSWORD)
        } else {
            files_holding(place.parent().unwrap(), PASSWORD).into_iter().filter(|file| file == place).collect()
        };
        assert!(holding.is_empty(), "the password is in {holding:?}");
    }
    let output = calplan(
        &["plan", path(&with_password), "--current", path(&state.join("applied")), "--current", path(&calico.store), "--detailed-exitcode"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
}

/// Both rulesets through the loader, loaded twice (an interrupted apply run again) and then
/// changed and removed: nothing doubles, and what calplan no longer declares goes, while a
/// rule of someone else's in the same chains stays.
#[test]
fn rulesets_reload_without_duplicates_and_leave_cleanly_needs_root() {
    let prefix = netns::unique_prefix("cpf").unwrap();
    let namespace = Namespace::create(prefix.join("n0").unwrap()).unwrap();
    let root = tempfile::tempdir().unwrap();
    let transport = Transport::new(TransportKind::Netns);
    let settings = |firewall: &str| HostSettings {
        netns: Some(namespace.name().to_string()),
        root: Some(path(root.path()).to_string()),
        firewall: Some(firewall.to_string()),
        ..HostSettings::default()
    };
    let run = |program: &str, args: &[&str]| text(&namespace.command(program).args(args).output().unwrap().stdout);

    // iptables: someone else's rule sits in INPUT beside calplan's jump.
    let host = Host { name: "n0".into(), settings: settings("iptables") };
    run("iptables", &["-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "ACCEPT"]);
    let rules = "*filter\n:CALPLAN-INPUT - [0:0]\n:CALPLAN-OLD - [0:0]\n-I INPUT 1 -j CALPLAN-INPUT\n-A INPUT -j CALPLAN-OLD\n\
                 -A CALPLAN-INPUT -p tcp -m tcp --dport 179 -m comment --comment \"calplan: BGP\" -j ACCEPT\nCOMMIT\n";
    for _ in 0..2 {
        assert_eq!(hosts::load(&transport, &host, "rules.iptables", Some(rules), None), Ok(Loaded::Loaded));
    }
    let saved = run("iptables-save", &[]);
    assert_eq!(saved.matches("-A INPUT -j CALPLAN-INPUT").count(), 1, "{saved}");
    assert_eq!(saved.matches("-A INPUT -j CALPLAN-OLD").count(), 1, "{saved}");
    assert_eq!(saved.matches("--dport 179").count(), 1, "{saved}");
    let lines: Vec<&str> = saved.lines().filter(|line| line.starts_with("-A INPUT")).collect();
    assert_eq!(lines[0], "-A INPUT -j CALPLAN-INPUT", "the jump stays first: {saved}");
    // The next version drops CALPLAN-OLD: its jump and the chain go.
    let next =
        "*filter\n:CALPLAN-INPUT - [0:0]\n-I INPUT 1 -j CALPLAN-INPUT\n-A CALPLAN-INPUT -p tcp -m tcp --dport 179 -j ACCEPT\nCOMMIT\n";
    assert_eq!(hosts::load(&transport, &host, "rules.iptables", Some(next), None), Ok(Loaded::Loaded));
    let saved = run("iptables-save", &[]);
    assert!(!saved.contains("CALPLAN-OLD") && saved.matches("-A INPUT -j CALPLAN-INPUT").count() == 1, "{saved}");
    assert_eq!(hosts::load(&transport, &host, "rules.iptables", None, None), Ok(Loaded::Loaded));
    let saved = run("iptables-save", &[]);
    assert!(!saved.contains("CALPLAN") && saved.contains("--dport 53 -j ACCEPT"), "{saved}");
    assert!(!root.path().join("rules.iptables").exists());

    // nftables: a file without its own `delete table` is made to replace its table anyway.
    let host = Host { name: "n0".into(), settings: settings("nft") };
    let ruleset =
        "table inet calplan {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\ttcp dport 179 accept\n\t}\n}\n";
    for _ in 0..2 {
        assert_eq!(hosts::load(&transport, &host, "rules.nft", Some(ruleset), None), Ok(Loaded::Loaded));
    }
    let listed = run("nft", &["list", "table", "inet", "calplan"]);
    assert_eq!(listed.matches("tcp dport 179 accept").count(), 1, "{listed}");
    let broken = "table inet calplan {\n\tchain input {\n\t\tno such statement\n\t}\n}\n";
    assert!(hosts::load(&transport, &host, "rules.nft", Some(broken), None).is_err(), "nft -c refuses it");
    assert_eq!(run("nft", &["list", "table", "inet", "calplan"]), listed, "a refused file changes nothing");
    assert_eq!(hosts::load(&transport, &host, "rules.nft", None, None), Ok(Loaded::Loaded));
    let ruleset = run("nft", &["list", "ruleset"]);
    assert!(!ruleset.contains("calplan"), "the table went with its file: {ruleset}");
}

/// A real OpenSSH server on a loopback port of its own: its host key, a user key allowed in,
/// and a `known_hosts` holding the host key, all in a temporary directory; killed when dropped.
pub(crate) struct SshServer {
    child: Child,
    port: u16,
    directory: tempfile::TempDir,
}

impl SshServer {
    pub(crate) fn start() -> SshServer {
        // Debian's service creates sshd's privilege separation directory when it starts; a
        // test server started by hand needs it too.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let mut last_log = String::new();
        for _ in 0..3 {
            let directory = tempfile::tempdir().unwrap();
            let file = |name: &str| directory.path().join(name);
            for key in ["host_key", "user_key", "other_host_key"] {
                let output =
                    Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"]).arg(file(key)).output().unwrap();
                assert!(output.status.success(), "ssh-keygen: {}", both(&output));
            }
            std::fs::copy(file("user_key.pub"), file("authorized_keys")).unwrap();
            let port = crate::current::free_port();
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {pid}\nAuthorizedKeysFile {authorized}\nUsePAM no\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 # The temporary directory sits in /tmp, which is world-writable.\nStrictModes no\nLogLevel VERBOSE\n",
                host_key = file("host_key").display(),
                pid = file("sshd.pid").display(),
                authorized = file("authorized_keys").display(),
            );
            std::fs::write(file("sshd_config"), config).unwrap();
            for (known_hosts, key) in [("known_hosts", "host_key.pub"), ("wrong_known_hosts", "other_host_key.pub")] {
                let public = std::fs::read_to_string(file(key)).unwrap();
                let public: Vec<&str> = public.split_whitespace().take(2).collect();
                std::fs::write(file(known_hosts), format!("[127.0.0.1]:{port} {}\n", public.join(" "))).unwrap();
            }
            let log = std::fs::File::create(file("sshd.log")).unwrap();
            // sshd re-executes itself, so it must be started by its absolute path.
            let child = Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(file("sshd_config"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("sshd runs (Debian's openssh-server)");
            let mut server = SshServer { child, port, directory };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if server.child.try_wait().unwrap().is_some() {
                    break;
                }
                if server.accepts() {
                    return server;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            last_log = std::fs::read_to_string(server.directory.path().join("sshd.log")).unwrap_or_default();
        }
        panic!("sshd did not accept connections on loopback:\n{last_log}");
    }

    /// Whether the server answers with an SSH banner (a port merely open could be another
    /// program's that took it first).
    fn accepts(&self) -> bool {
        use std::io::Read;
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut banner = [0u8; 8];
        stream.read_exact(&mut banner).is_ok() && banner.starts_with(b"SSH-2.0")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }

    /// Inventory settings that reach this server as root with the generated key, checking its
    /// host key against `known_hosts` (`known_hosts`, or `wrong_known_hosts` holding another).
    pub(crate) fn settings(&self, known_hosts: &str) -> Vec<(&'static str, Value)> {
        vec![
            ("address", Value::from("127.0.0.1")),
            ("port", Value::from(self.port)),
            ("user", Value::from("root")),
            ("identity", Value::from(path(&self.file("user_key")))),
            ("knownHosts", Value::from(path(&self.file(known_hosts)))),
        ]
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.file("sshd.log")).unwrap_or_default()
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        // Only the server this test started, by its own handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
