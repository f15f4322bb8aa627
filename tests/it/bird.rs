//! The node artifacts (`bird.cfg`, `bird-calico.cfg`, `routes`) against the real tools and
//! their golden files: every `bird.cfg` through BIRD 2's parser, every `bird-calico.cfg`
//! through BIRD 1.6's, every `routes` line through `ip route replace`, and the seed cluster
//! run for real, one network namespace per node, until BGP converges and the kernels hold the
//! routes the artifacts promise.
//!
//! BIRD 2 is `/usr/sbin/bird` (or `CALPLAN_BIRD`). BIRD 1.6 conflicts with it as a package, so
//! it is unpacked into a folder of its own: `CALPLAN_BIRD16`, by default
//! `target/bird16/usr/sbin/bird` (`apt-get download bird && dpkg -x bird_*.deb target/bird16`).

use crate::golden;
use crate::scenarios::{compile, pinned_scenarios, relative, valid_scenarios};
use calplan::netns::{self, Daemon, InterfaceName, Namespace};
use calplan::pipeline::{self, Checked};
use calplan_calico::resources::SecretKeyRef;
use calplan_model::ipam::{AffinityState, ObservedAffinity, ObservedIpam};
use calplan_targets::Output;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The node artifacts this module owns, by target name and file name.
const NODE_TARGETS: [(&str, &str); 3] = [("bird", "bird.cfg"), ("bird-calico", "bird-calico.cfg"), ("routes", "routes")];

fn program(variable: &str, default: &Path) -> PathBuf {
    std::env::var_os(variable).map(PathBuf::from).unwrap_or_else(|| default.to_path_buf())
}

/// BIRD 2's binary, checked to be BIRD 2.
pub(crate) fn bird2() -> PathBuf {
    let bird = program("CALPLAN_BIRD", Path::new("/usr/sbin/bird"));
    let version = Command::new(&bird).arg("--version").output().unwrap_or_else(|error| {
        panic!("cannot run BIRD 2 at `{}` ({error}); install Debian's `bird2` or set CALPLAN_BIRD", bird.display())
    });
    let text = format!("{}{}", String::from_utf8_lossy(&version.stdout), String::from_utf8_lossy(&version.stderr));
    assert!(text.contains("BIRD version 2."), "`{}` is not BIRD 2: {text}", bird.display());
    bird
}

/// BIRD 1.6's binary, unpacked from Debian's `bird` package.
pub(crate) fn bird16() -> PathBuf {
    let bird = program("CALPLAN_BIRD16", &golden::root().join("target/bird16/usr/sbin/bird"));
    assert!(
        bird.is_file(),
        "BIRD 1.6 is not at `{}`: unpack Debian's `bird` package there (`apt-get download bird && dpkg -x bird_*.deb target/bird16`) or set CALPLAN_BIRD16 to its `usr/sbin/bird`",
        bird.display()
    );
    bird
}

/// BIRD 1.6's IPv6 daemon, `bird6`, beside `bird`.
pub(crate) fn bird16_v6() -> PathBuf {
    let bird6 = bird16().with_file_name("bird6");
    assert!(bird6.is_file(), "BIRD 1.6's `bird6` is not beside `bird` at `{}`", bird6.display());
    bird6
}

/// `bird -p -c FILE`: `Err` with BIRD's message when the file does not parse.
pub(crate) fn parses(bird: &Path, file: &Path) -> Result<(), String> {
    let output = Command::new(bird).arg("-p").arg("-c").arg(file).output().map_err(|error| format!("{}: {error}", bird.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
    }
}

/// The one substitution SPEC §8 permits for stock BIRD 1.6, as the lab makes it.
pub(crate) use calplan::lab::calico_node::without_krt_tunnel;

/// Test values for every password a node's sessions use, as the secrets file defines them.
fn test_secrets(checked: &Checked, node: &str) -> String {
    let analysis = checked.valid().unwrap();
    let index = analysis.peerings.node_index(node).expect("node in topology");
    let passwords: BTreeMap<SecretKeyRef, String> = analysis
        .peerings
        .for_node(index)
        .into_iter()
        .filter_map(|peering| peering.data.password.clone())
        .map(|secret| {
            let value = format!("test-{}-{}", secret.name, secret.key);
            (secret, value)
        })
        .collect();
    calplan_targets::bird::secrets_file(&passwords).expect("test values quote")
}

fn node_of(path: &str) -> &str {
    path.split('/').nth(1).expect("nodes/<node>/file")
}

#[test]
fn every_bird_cfg_parses_under_bird_2() {
    let bird = bird2();
    let mut failures = Vec::new();
    let mut parsed = 0;
    for (dir, checked) in valid_scenarios() {
        let output = compile(&checked, &["bird"]);
        let scratch = tempfile::tempdir().unwrap();
        for (_, artifact) in &output.artifacts {
            assert!(!artifact.path.ends_with(calplan_targets::bird::SECRETS_FILE), "compile wrote a secrets file: {}", artifact.path);
            let folder = scratch.path().join(node_of(&artifact.path));
            std::fs::create_dir_all(&folder).unwrap();
            let file = folder.join("bird.cfg");
            std::fs::write(&file, &artifact.contents).unwrap();
            // The secrets file is the operator's (or apply's); here the test supplies it.
            if artifact.contents.contains(&format!("include \"{}\";", calplan_targets::bird::SECRETS_FILE)) {
                std::fs::write(folder.join(calplan_targets::bird::SECRETS_FILE), test_secrets(&checked, node_of(&artifact.path))).unwrap();
            }
            parsed += 1;
            if let Err(message) = parses(&bird, &file) {
                failures.push(format!("{}/{}: {message}", relative(&dir), artifact.path));
            }
        }
    }
    assert!(parsed > 6, "too few bird.cfg files: {parsed}");
    assert!(failures.is_empty(), "BIRD 2 rejects:\n{}", failures.join("\n"));
}

/// Every `bird-calico.cfg` through BIRD 1.6's `bird -p`, every `bird6-calico.cfg` through its
/// `bird6 -p`, as calico-node's confd checks its renders.
#[test]
fn every_bird_calico_cfg_parses_under_bird_1_6() {
    let (bird, bird6) = (bird16(), bird16_v6());
    let mut failures = Vec::new();
    let mut parsed = [0, 0];
    let scratch = tempfile::tempdir().unwrap();
    for (dir, checked) in valid_scenarios() {
        for (_, artifact) in &compile(&checked, &["bird-calico"]).artifacts {
            let file = scratch.path().join(artifact.path.replace('/', "_"));
            std::fs::write(&file, without_krt_tunnel(&artifact.contents)).unwrap();
            let v6 = artifact.path.ends_with("/bird6-calico.cfg");
            parsed[usize::from(v6)] += 1;
            if let Err(message) = parses(if v6 { &bird6 } else { &bird }, &file) {
                failures.push(format!("{}/{}: {message}", relative(&dir), artifact.path));
            }
        }
    }
    assert!(parsed[0] > 6 && parsed[0] == parsed[1], "too few renders: {parsed:?}");
    assert!(failures.is_empty(), "BIRD 1.6 rejects:\n{}", failures.join("\n"));
}

/// `expected/nodes/<node>/{bird.cfg,bird-calico.cfg,routes}` beside every scenario that has
/// an `expected/` folder.
#[test]
fn node_artifacts_match_their_golden_files() {
    let mut failures = Vec::new();
    for (dir, checked) in pinned_scenarios() {
        let targets: Vec<&str> = NODE_TARGETS.iter().map(|(target, _)| *target).collect();
        let output = compile(&checked, &targets);
        let files: Vec<&str> = NODE_TARGETS.iter().map(|(_, file)| *file).collect();
        failures.extend(golden::check_artifacts(&dir.join("expected"), &output, "nodes", &files));
    }
    golden::assert_all(failures);
}

#[test]
fn compile_is_deterministic_and_references_passwords_only_by_name() {
    let dir = golden::root().join("testdata/mesh-ipip");
    let checked = pipeline::check("intent.yaml", std::fs::read_to_string(dir.join("intent.yaml")).unwrap(), None);
    let targets: Vec<&str> = NODE_TARGETS.iter().map(|(target, _)| *target).collect();
    let first = compile(&checked, &targets);
    let second = compile(&checked, &targets);
    assert_eq!(first.manifest_json(), second.manifest_json());
    for (_, artifact) in &first.artifacts {
        assert!(!artifact.secret, "{} is marked secret but holds none", artifact.path);
        if artifact.path.ends_with("/bird.cfg") {
            assert!(artifact.contents.contains("include \"bird-secrets.conf\";"), "{}", artifact.path);
            assert!(artifact.contents.contains("password bgp_password_bgp_secrets_mesh_password_"), "{}", artifact.path);
        }
        if artifact.path.ends_with("/bird-calico.cfg") {
            assert!(artifact.contents.contains("password \"<Secret bgp-secrets key mesh-password>\";"), "{}", artifact.path);
        }
    }
    // Without passwords there is nothing to include.
    let seed = golden::root().join("testdata/seed-rr/intent.yaml");
    let checked = pipeline::check("intent.yaml", std::fs::read_to_string(seed).unwrap(), None);
    for (_, artifact) in &compile(&checked, &["bird"]).artifacts {
        assert!(!artifact.contents.contains("include"), "{}", artifact.path);
    }
}

/// confd's treatment of affinity states, in all three node artifacts: a pending block is
/// neither blackholed nor advertised (so no other node routes to it); a `/32` block is
/// advertised and routed to but gets no blackhole.
#[test]
fn pending_blocks_are_not_advertised_and_host_blocks_not_blackholed() {
    let text = std::fs::read_to_string(golden::root().join("testdata/seed-rr/intent.yaml")).unwrap();
    let m1 = "cs1-k8s-m1.zpepc.com.cn";
    let affinity = |block: &str, state| ObservedAffinity { block: block.parse().unwrap(), node: m1.into(), state };
    let observed = [
        affinity("192.168.0.0/26", AffinityState::Confirmed),
        affinity("192.168.200.0/26", AffinityState::Pending),
        affinity("192.168.201.7/32", AffinityState::Confirmed),
    ];
    let observed = ObservedIpam { affinities: observed.to_vec(), pools: Vec::new() };
    let checked = pipeline::check("intent.yaml", text, Some(&observed));
    let output = compile(&checked, &["bird", "bird-calico", "routes"]);
    let file = |node: &str, name: &str| output.get(&format!("nodes/{node}.zpepc.com.cn/{name}")).unwrap().contents.clone();

    let bird = file("cs1-k8s-m1", "bird.cfg");
    assert!(bird.contains("route 192.168.0.0/26 blackhole;"));
    assert!(!bird.contains("192.168.200.0"), "a pending block is not in BIRD at all:\n{bird}");
    assert!(!bird.contains("route 192.168.201.7/32 blackhole;"));
    assert!(bird.contains("if net = 192.168.201.7/32 then accept;"), "a /32 block is still aggregated");

    let calico = file("cs1-k8s-m1", "bird-calico.cfg");
    assert!(!calico.contains("192.168.200.0"));
    assert!(!calico.contains("route 192.168.201.7/32 blackhole;"));
    assert!(calico.contains("# Block 192.168.201.7/32 is confirmed\n      if ( net = 192.168.201.7/32 ) then { accept; }"));

    let own = file("cs1-k8s-m1", "routes");
    assert!(own.contains("blackhole 192.168.0.0/26 proto bird\n"));
    assert!(!own.contains("192.168.200.0") && !own.contains("192.168.201.7"), "{own}");
    let other = file("cs1-k8s-m2", "routes");
    assert!(other.contains("192.168.0.0/26 via 21.49.22.4 proto bird\n"));
    assert!(other.contains("192.168.201.7/32 via 21.49.22.4 proto bird\n"));
    assert!(!other.contains("192.168.200.0"), "{other}");
}

/// The text of one `protocol bgp NAME …` block of a BIRD configuration.
fn protocol_block<'a>(config: &'a str, name: &str) -> &'a str {
    let start = config.find(&format!("protocol bgp {name} ")).unwrap_or_else(|| panic!("no protocol `{name}` in:\n{config}"));
    let end = config[start..].find("\n}").map_or(config.len(), |end| start + end + 2);
    &config[start..end]
}

/// A dual-stack node has two mesh sessions with each dual-stack peer, and confd decides each
/// one's `passive` from that family's addresses. Here the IPv4 and IPv6 string orders differ,
/// so the two sessions to one peer have opposite ends passive; each file must take its own
/// family's (`bird-calico.cfg` took the IPv6 session's `passive` for the IPv4 one).
#[test]
fn dual_stack_mesh_sessions_take_their_own_familys_passive() {
    let text = "apiVersion: calplan/v1\nkind: ClusterIntent\nmetadata: {name: dual}\nspec:\n  \
                pools:\n    - {name: v4, cidr: 10.244.0.0/16}\n    - {name: v6, cidr: 'fd00:244::/64', blockSize: 122}\n  \
                nodes:\n    \
                - {name: a, ipv4Address: 10.0.0.1/24, ipv6Address: '2001:db8::2/64'}\n    \
                - {name: b, ipv4Address: 10.0.0.2/24, ipv6Address: '2001:db8::1/64'}\n";
    let checked = pipeline::check("intent.yaml", text.to_string(), None);
    assert!(!checked.diagnostics.has_errors(), "{:?}", checked.diagnostics);
    let output = compile(&checked, &["bird", "bird-calico"]);
    let file = |node: &str, name: &str| output.get(&format!("nodes/{node}/{name}")).unwrap().contents.clone();
    // IPv4: "10.0.0.2" > "10.0.0.1", so `a` waits for `b`. IPv6: "2001:db8::2" > "2001:db8::1",
    // so `b` waits for `a`.
    for (node, peer_v4, v4_passive, peer_v6, v6_passive) in
        [("a", "Mesh_10_0_0_2", true, "Mesh_2001_db8__1", false), ("b", "Mesh_10_0_0_1", false, "Mesh_2001_db8__2", true)]
    {
        let calico = file(node, "bird-calico.cfg");
        let block = protocol_block(&calico, peer_v4);
        assert_eq!(block.contains("passive on;"), v4_passive, "`{node}` bird-calico.cfg:\n{block}");
        let bird = file(node, "bird.cfg");
        let block = protocol_block(&bird, peer_v4);
        assert_eq!(block.contains("passive on;"), v4_passive, "`{node}` bird.cfg:\n{block}");
        let block = protocol_block(&bird, peer_v6);
        assert_eq!(block.contains("passive on;"), v6_passive, "`{node}` bird.cfg:\n{block}");
    }
}

// ---------------------------------------------------------------------------------------
// Namespaces (root only)

/// One route as `ip route` states it, for comparing an artifact line with the kernel's table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct KernelRoute {
    destination: String,
    blackhole: bool,
    gateway: Option<String>,
    /// `None` in an artifact line means "whichever device the kernel resolves".
    device: Option<String>,
    protocol: String,
    onlink: bool,
}

impl KernelRoute {
    /// A `routes` line: `[blackhole] DEST [via GW] [dev DEV] proto P [onlink]`.
    fn parse_line(line: &str) -> KernelRoute {
        let mut words = line.split_whitespace().peekable();
        let blackhole = words.next_if_eq(&"blackhole").is_some();
        let mut route = KernelRoute {
            destination: words.next().expect("destination").to_string(),
            blackhole,
            gateway: None,
            device: None,
            protocol: String::new(),
            onlink: false,
        };
        while let Some(word) = words.next() {
            match word {
                "via" => route.gateway = words.next().map(str::to_string),
                "dev" => route.device = words.next().map(str::to_string),
                "proto" => route.protocol = words.next().unwrap_or_default().to_string(),
                "onlink" => route.onlink = true,
                other => panic!("unexpected `{other}` in `{line}`"),
            }
        }
        route
    }

    /// An entry of `ip -j route show`.
    fn from_json(entry: &serde_json::Value) -> KernelRoute {
        let text = |key: &str| entry.get(key).and_then(|value| value.as_str()).map(str::to_string);
        let mut destination = text("dst").unwrap_or_default();
        if !destination.contains('/') {
            destination.push_str(if destination.contains(':') { "/128" } else { "/32" });
        }
        KernelRoute {
            destination,
            blackhole: text("type").as_deref() == Some("blackhole"),
            gateway: text("gateway"),
            device: text("dev"),
            protocol: entry
                .get("protocol")
                .map(|value| value.as_str().map_or_else(|| value.to_string(), str::to_string))
                .unwrap_or_default(),
            onlink: entry.get("flags").and_then(|flags| flags.as_array()).is_some_and(|flags| flags.iter().any(|flag| flag == "onlink")),
        }
    }

    fn matches(&self, kernel: &KernelRoute) -> bool {
        self.destination == kernel.destination
            && self.blackhole == kernel.blackhole
            && self.gateway == kernel.gateway
            && self.protocol == kernel.protocol
            && self.onlink == kernel.onlink
            && self.device.as_ref().is_none_or(|device| Some(device) == kernel.device.as_ref())
    }
}

fn kernel_routes(namespace: &Namespace, family: &str) -> Vec<KernelRoute> {
    let text = namespace.ip(["-j", family, "route", "show"]).expect("ip route");
    let entries: Vec<serde_json::Value> = serde_json::from_str(if text.trim().is_empty() { "[]" } else { &text }).expect("ip -j route");
    entries.iter().map(KernelRoute::from_json).collect()
}

fn interface(name: &str) -> InterfaceName {
    InterfaceName::new(name).unwrap()
}

/// Every `routes` line of the pinned scenarios is accepted by `ip route replace`, in a
/// namespace per node that has the devices the lines name and the node's addresses.
#[test]
fn routes_load_with_ip_route_replace_needs_root() {
    let prefix = netns::unique_prefix("cplr").unwrap();
    let mut failures = Vec::new();
    let mut loaded = 0;
    for (scenario, (dir, checked)) in pinned_scenarios().into_iter().enumerate() {
        let analysis = checked.valid().unwrap();
        for (node_number, (_, artifact)) in compile(&checked, &["routes"]).artifacts.iter().enumerate() {
            let node = analysis.model.node_by_name(node_of(&artifact.path)).unwrap();
            let namespace = Namespace::create(prefix.join(&format!("{scenario}-{node_number}")).unwrap()).unwrap();
            // The node's addresses sit on the interface the intent says holds them (Felix's
            // same-subnet VXLAN routes name it), else on `eth0`.
            let holder = |address: std::net::IpAddr| {
                let listed = node.interfaces.iter().flatten().find(|held| held.addresses.iter().any(|net| net.addr() == address));
                listed.map_or_else(|| "eth0".to_string(), |held| held.name.value.clone())
            };
            let addresses: Vec<(String, std::net::IpAddr, u8)> = node
                .ipv4_address
                .iter()
                .map(|net| (net.addr().into(), net.prefix_len()))
                .chain(node.ipv6_address.iter().map(|net| (net.addr().into(), net.prefix_len())))
                .map(|(address, prefix_len)| (holder(address), address, prefix_len))
                .collect();
            let mut devices: BTreeSet<String> = ["tunl0", "vxlan.calico", "vxlan-v6.calico"].map(String::from).into();
            devices.extend(addresses.iter().map(|(device, _, _)| device.clone()));
            for line in artifact.contents.lines() {
                devices.extend(KernelRoute::parse_line(line).device);
            }
            // Stand-ins for the devices: veth pairs inside the namespace, which any kernel has.
            for (number, device) in devices.iter().enumerate() {
                let (name, peer) = (interface(device), interface(&format!("peer{number}")));
                netns::veth(&namespace, &name, &namespace, &peer).unwrap();
                namespace.set_up(&name).unwrap();
                namespace.set_up(&peer).unwrap();
            }
            for (device, address, prefix_len) in &addresses {
                namespace.add_address(&interface(device), *address, *prefix_len).unwrap();
            }
            for line in artifact.contents.lines() {
                let mut args = vec!["route", "replace"];
                args.extend(line.split_whitespace());
                loaded += 1;
                if let Err(error) = namespace.ip(&args) {
                    failures.push(format!("{}/{}: `{line}`: {error}", relative(&dir), artifact.path));
                }
            }
        }
    }
    assert!(loaded > 20, "too few routes: {loaded}");
    assert!(failures.is_empty(), "`ip route replace` rejects:\n{}", failures.join("\n"));
}

/// A cluster of BIRD 2 nodes on one L2 segment: what a lab run is made of, kept in teardown
/// order (daemons before the namespaces they run in, the scratch directory last).
pub(crate) struct Lab {
    pub(crate) daemons: Vec<Daemon>,
    pub(crate) nodes: Vec<Namespace>,
    switch: Namespace,
    pub(crate) scratch: tempfile::TempDir,
    pub(crate) birdc: PathBuf,
    pub(crate) names: Vec<String>,
}

impl Lab {
    /// One namespace per node with its addresses on `eth0`, all on a bridge that lives in a
    /// namespace of its own (so nothing touches the host's), and BIRD 2 started on each node's
    /// compiled `bird.cfg` with a test-supplied secrets file. Nodes in different subnets share
    /// the segment through on-link routes, standing in for the routers a real network has.
    /// `stand_ins` are devices the kernel may lack (`tunl0`), created as veth pairs.
    fn start(checked: &Checked, output: &Output, stand_ins: &[&str]) -> Lab {
        let bird = bird2();
        let mut lab = Lab::network(checked, stand_ins, bird.with_file_name("birdc"));
        for (number, name) in lab.names.clone().iter().enumerate() {
            let folder = lab.scratch.path().join(format!("n{number}"));
            let config = folder.join("bird.cfg");
            let text = &output.get(&format!("nodes/{name}/bird.cfg")).unwrap().contents;
            std::fs::write(&config, text).unwrap();
            if text.contains(&format!("include \"{}\";", calplan_targets::bird::SECRETS_FILE)) {
                std::fs::write(folder.join(calplan_targets::bird::SECRETS_FILE), test_secrets(checked, name)).unwrap();
            }
            lab.spawn_bird(number, &bird, &config);
        }
        lab
    }

    /// The namespaces, addresses and bridge, a scratch folder `n<number>` per node, no daemons.
    pub(crate) fn network(checked: &Checked, stand_ins: &[&str], birdc: PathBuf) -> Lab {
        let analysis = checked.valid().unwrap();
        let prefix = netns::unique_prefix("cpl").unwrap();
        let switch = Namespace::create(prefix.join("sw").unwrap()).unwrap();
        let bridge = interface("br0");
        switch.add_bridge(&bridge).unwrap();
        switch.set_up(&bridge).unwrap();
        let mut lab =
            Lab { daemons: Vec::new(), nodes: Vec::new(), switch, scratch: tempfile::tempdir().unwrap(), birdc, names: Vec::new() };
        let networks: BTreeSet<String> =
            analysis.model.nodes.iter().filter_map(|node| node.ipv4_address.as_ref().map(|net| net.trunc().to_string())).collect();
        for (number, node) in analysis.model.nodes.iter().enumerate() {
            let namespace = Namespace::create(prefix.join(&format!("n{number}")).unwrap()).unwrap();
            let (inside, outside) = (interface("eth0"), interface(&format!("p{number}")));
            netns::veth(&namespace, &inside, &lab.switch, &outside).unwrap();
            lab.switch.set_master(&outside, &bridge).unwrap();
            lab.switch.set_up(&outside).unwrap();
            let address = node.ipv4_address.as_ref().expect("lab nodes have IPv4");
            namespace.add_address(&inside, address.addr().into(), address.prefix_len()).unwrap();
            namespace.set_up(&inside).unwrap();
            for network in networks.iter().filter(|network| **network != address.trunc().to_string()) {
                namespace.ip(["route", "add", network.as_str(), "dev", "eth0"]).unwrap();
            }
            for (stand_in, device) in stand_ins.iter().enumerate() {
                let (name, peer) = (interface(device), interface(&format!("standin{stand_in}")));
                netns::veth(&namespace, &name, &namespace, &peer).unwrap();
                namespace.set_up(&name).unwrap();
                namespace.set_up(&peer).unwrap();
            }
            std::fs::create_dir_all(lab.scratch.path().join(format!("n{number}"))).unwrap();
            lab.nodes.push(namespace);
            lab.names.push(node.name.value.clone());
        }
        lab
    }

    /// Starts `bird` on `config` in node `number`'s namespace, its socket `n<number>/bird.ctl`.
    pub(crate) fn spawn_bird(&mut self, number: usize, bird: &Path, config: &Path) {
        let folder = self.scratch.path().join(format!("n{number}"));
        let (socket, pid, log) = (folder.join("bird.ctl"), folder.join("bird.pid"), folder.join("bird.log"));
        let arguments = [Path::new("-f"), Path::new("-c"), config, Path::new("-s"), &socket, Path::new("-P"), &pid];
        self.daemons.push(self.nodes[number].spawn(bird, arguments, &log).unwrap());
    }

    fn birdc(&self, number: usize, args: &[&str]) -> String {
        let socket = self.scratch.path().join(format!("n{number}/bird.ctl"));
        let output = Command::new(&self.birdc).arg("-s").arg(socket).args(args).output().expect("birdc runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn log(&self, number: usize) -> String {
        std::fs::read_to_string(self.scratch.path().join(format!("n{number}/bird.log"))).unwrap_or_default()
    }

    /// Polls `birdc show protocols` until every node has `sessions[node]` Established.
    pub(crate) fn wait_established(&mut self, sessions: &[Vec<String>], within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let mut pending = Vec::new();
            for (number, expected) in sessions.iter().enumerate() {
                if let Err(stopped) = self.daemons[number].check_running() {
                    panic!("{stopped}:\n{}", self.log(number));
                }
                let table = self.birdc(number, &["show", "protocols"]);
                for session in expected {
                    let up =
                        table.lines().any(|line| line.split_whitespace().next() == Some(session.as_str()) && line.contains("Established"));
                    if !up {
                        pending.push(format!("{} {session}", self.names[number]));
                    }
                }
            }
            if pending.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                let tables: Vec<String> = (0..self.nodes.len()).map(|number| self.birdc(number, &["show", "protocols"])).collect();
                panic!("sessions not Established after {within:?}: {pending:?}\n\n{}", tables.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Polls the kernels until each holds exactly the BIRD routes its `routes` file lists.
    fn wait_routes(&self, output: &Output, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let mut gaps = Vec::new();
            for (number, name) in self.names.iter().enumerate() {
                let routes = &output.get(&format!("nodes/{name}/routes")).unwrap().contents;
                let wanted: Vec<KernelRoute> =
                    routes.lines().map(KernelRoute::parse_line).filter(|route| route.protocol == "bird").collect();
                assert!(wanted.len() >= self.names.len(), "a route per node's block: {routes}");
                let held: Vec<KernelRoute> =
                    kernel_routes(&self.nodes[number], "-4").into_iter().filter(|route| route.protocol == "bird").collect();
                gaps.extend(
                    wanted
                        .iter()
                        .filter(|route| !held.iter().any(|kernel| route.matches(kernel)))
                        .map(|route| format!("{name}: missing {route:?}")),
                );
                gaps.extend(
                    held.iter()
                        .filter(|kernel| !wanted.iter().any(|route| route.matches(kernel)))
                        .map(|kernel| format!("{name}: unexpected {kernel:?}")),
                );
            }
            if gaps.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "kernel routes differ from the `routes` artifacts after {within:?}:\n{}", gaps.join("\n"));
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The sessions each node should have up: those with other cluster nodes (routers and
/// external peers are not part of a node lab).
pub(crate) fn node_sessions(checked: &Checked) -> Vec<Vec<String>> {
    let analysis = checked.valid().unwrap();
    analysis
        .model
        .nodes
        .iter()
        .map(|node| {
            let index = analysis.peerings.node_index(&node.name.value).unwrap();
            let sessions = analysis.peerings.for_node(index);
            sessions.iter().filter(|peering| peering.remote_node.is_some()).map(|peering| peering.protocol_name()).collect()
        })
        .collect()
}

pub(crate) fn checked_scenario(name: &str) -> Checked {
    let text = std::fs::read_to_string(golden::root().join("testdata").join(name).join("intent.yaml")).unwrap();
    pipeline::check("intent.yaml", text, None)
}

/// The seed cluster (two route reflectors, four clients) converges: every session the
/// analysis expects is Established and every kernel holds exactly its `routes`.
#[test]
fn seed_cluster_converges_under_bird_2_needs_root() {
    let checked = checked_scenario("seed-rr");
    let output = compile(&checked, &["bird", "routes"]);
    let sessions = node_sessions(&checked);
    assert!(sessions.iter().all(|node| !node.is_empty()));
    let mut lab = Lab::start(&checked, &output, &[]);
    lab.wait_established(&sessions, Duration::from_secs(90));
    lab.wait_routes(&output, Duration::from_secs(30));
}

/// A password-protected full mesh across two subnets with IPIP CrossSubnet: the sessions come
/// up with the passwords from the secrets file (TCP-MD5 needs both ends to agree), and BIRD 2
/// programs `via <peer> dev tunl0 onlink` across subnets and plain routes within one, Calico's
/// `krt_tunnel` without the fork. The kernel here has no ipip module, so `tunl0` is a stand-in.
#[test]
fn mesh_ipip_cluster_converges_with_passwords_and_tunnels_needs_root() {
    let checked = checked_scenario("mesh-ipip");
    let output = compile(&checked, &["bird", "routes"]);
    let sessions = node_sessions(&checked);
    assert!(sessions.iter().all(|node| node.len() == 3), "a full mesh of four: {sessions:?}");
    let mut lab = Lab::start(&checked, &output, &["tunl0"]);
    lab.wait_established(&sessions, Duration::from_secs(90));
    lab.wait_routes(&output, Duration::from_secs(30));
}
