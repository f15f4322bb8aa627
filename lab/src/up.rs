//! `lab up`: builds the layout — namespaces, bridges, links, addresses, pods — starts the
//! daemons, then loads the compiled artifacts through apply's executor (netns transport, the
//! lab's inventory, the record backend), as apply would on real hosts.
//!
//! The layout is written to the lab's directory before anything is created, so that `down`
//! finds whatever a crashed `up` left. It must not create anything outside the lab's
//! namespaces (links are made with `ip -n`), and it must not start a process it does not record.

use crate::topology::{self, Layout, NodeHost, Speaker};
use crate::{daemons, felix, frr, in_namespace, ip_batch, parallel, plans, run};
use calplan_apply::calico::{Backend, RECORD_WORKLOADS};
use calplan_apply::state::StateDir;
use calplan_apply::transport::{HostSettings, Inventory, Transport, TransportKind};
use calplan_apply::{Executor, Options, Progress};
use calplan_model::{Analysis, NodeAgent};
use calplan_plan::plan::{Fingerprint, Stage, Target};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// Test hook: `CALPLAN_TEST_LAB_CRASH=after-network` (or `after-daemons`, or in calico-node mode
/// `after-calico-node`) ends `up` there, as a crash would, so that a test can show `down`
/// cleans up after it.
const CRASH_HOOK: &str = "CALPLAN_TEST_LAB_CRASH";

fn crash_point(point: &str) {
    if std::env::var(CRASH_HOOK).as_deref() == Ok(point) {
        eprintln!("calplan: test hook: stopping {point}");
        std::process::exit(99);
    }
}

pub struct UpOptions<'a> {
    /// The intent's path as given, for the layout and messages.
    pub intent: &'a str,
    /// The intent's text: a calico-node lab keeps a copy, from which its calico-node
    /// emulation takes what Calico resources do not say (the release it renders for).
    pub intent_text: &'a str,
    pub fingerprint: Fingerprint,
    pub dir: &'a Path,
    pub barrier_timeout: Duration,
    /// Who runs the nodes (`--node-agent`, else the intent's `spec.nodeAgent`).
    pub node_agent: NodeAgent,
}

/// The copy of the intent a calico-node lab keeps.
pub const INTENT_COPY: &str = "intent.yaml";

/// Namespaces on this host whose names start with `prefix-`.
pub fn existing_namespaces(prefix: &str) -> Result<Vec<String>, String> {
    let listing = run("ip", &["netns", "list"], None)?;
    let wanted = format!("{prefix}-");
    Ok(listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(&wanted))
        .map(str::to_string)
        .collect())
}

/// The inventory that reaches the lab's nodes and routers through their namespaces. A
/// calico-node lab's nodes are read as calico-node's are, on `var/run/calico/bird.ctl` and
/// `bird6.ctl`, with BIRD 1.6's client in the place of calico-node's `birdcl`.
pub fn inventory(layout: &Layout) -> Inventory {
    let mut hosts = BTreeMap::new();
    let client = daemons::bird16_client(layout).ok().map(|client| client.display().to_string());
    for node in &layout.nodes {
        let calico_node = layout.node_agent == NodeAgent::CalicoNode;
        hosts.insert(
            node.name.clone(),
            HostSettings {
                netns: Some(node.namespace.clone()),
                root: Some(node.root.display().to_string()),
                bird_socket: Some(daemons::bird_socket(layout, node).display().to_string()),
                bird6_socket: calico_node.then(|| daemons::bird6_socket(node).display().to_string()),
                bird_client: if calico_node { client.clone() } else { None },
                // Where confd's render is, for `calplan verify --inventory DIR/inventory.json`.
                confd_config: calico_node
                    .then(|| daemons::render_path(node, false).parent().expect("a render is in a directory").display().to_string()),
                firewall: Some("nft".into()),
                ..HostSettings::default()
            },
        );
    }
    for router in &layout.routers {
        hosts.insert(
            router.name.clone(),
            HostSettings {
                netns: Some(router.namespace.clone()),
                root: Some(router.root.display().to_string()),
                platform: Some(router.platform.clone()),
                // FRR's vtysh finds a path space's sockets in /var/run/frr/<pathspace>, which the
                // lab links to the router's FRR directory (daemons::start_frr).
                frr_pathspace: router.speaker.map(|_| router.namespace.clone()),
                ..HostSettings::default()
            },
        );
    }
    Inventory { defaults: HostSettings::default(), hosts }
}

/// The inventory file in the lab's directory: [`inventory`] as `--inventory` reads it (JSON,
/// which is YAML), so that `calplan apply` and `calplan verify --transport netns` reach the
/// lab's nodes as they would a cluster's.
pub const INVENTORY_FILE: &str = "inventory.json";

fn write_inventory(layout: &Layout) -> Result<(), String> {
    let mut text = serde_json::to_string_pretty(&inventory(layout)).expect("inventories serialize");
    text.push('\n');
    calplan_apply::state::write_atomically(&layout.dir.join(INVENTORY_FILE), text.as_bytes(), 0o644)
}

/// Apply's options for the lab: the record backend (or in calico-node mode the lab's etcd),
/// the netns transport, the lab's passwords.
pub fn executor_options(
    layout: &Layout,
    secrets: BTreeMap<String, String>,
    barrier_timeout: Duration,
    parallelism: usize,
) -> Result<Options, String> {
    let backend = match layout.node_agent {
        NodeAgent::Bird => Backend::Record(layout.state_dir()),
        NodeAgent::CalicoNode => Backend::Etcd(crate::datastore::client(layout)?),
    };
    Ok(Options {
        parallelism,
        observe: calplan_apply::Observe::Sessions,
        backend: Some(backend),
        transport: Transport::new(TransportKind::Netns),
        inventory: inventory(layout),
        only: None,
        secrets,
        barrier_timeout,
        abort_after_step: None,
    })
}

/// The lab's password file for every node whose `bird.cfg` in `files` names secrets.
pub fn secrets_for<'a>(files: impl Iterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    files.filter_map(|(host, text)| Some((host.to_string(), frr::bird_secrets(text).or_else(|| frr::frr_secrets(text))?))).collect()
}

/// Progress as plain lines.
pub struct Lines<'a>(pub &'a mut dyn FnMut(&str));

impl Progress for Lines<'_> {
    fn stage(&mut self, stage: &Stage, total: usize) {
        (self.0)(&format!("stage {}/{total}: {}", stage.number, stage.title));
    }
    fn step(&mut self, text: &str) {
        (self.0)(&format!("  {text}"));
    }
    fn waiting(&mut self, text: &str) {
        (self.0)(&format!("  waiting: {text}"));
    }
    fn done(&mut self, text: &str) {
        (self.0)(&format!("  {text}"));
    }
}

pub fn up(analysis: &Analysis, options: &UpOptions, say: &mut dyn FnMut(&str)) -> Result<Layout, String> {
    let started = Instant::now();
    let agent = options.node_agent;
    let programs = crate::preflight::check(analysis, agent)?;
    let output = crate::compile(analysis)?;
    let mut layout = topology::plan(analysis, options.intent, options.dir, agent)?;
    layout.bird16 = programs.bird16;
    for warning in &programs.warnings {
        say(&format!("warning: {warning}"));
    }
    if options.dir.join(crate::LAYOUT_FILE).exists() {
        return Err(format!("a lab is already up in `{}`: `calplan lab down` it first", options.dir.display()));
    }
    let mut leftovers = existing_namespaces(&layout.prefix)?;
    if let Ok(entries) = std::fs::read_dir(topology::FRR_RUN_DIR) {
        let frr = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with(&format!("{}-", layout.prefix))));
        leftovers.extend(frr.map(|path| path.display().to_string()));
    }
    if !leftovers.is_empty() {
        return Err(format!(
            "what an earlier lab `{}` made is still there ({}): `calplan lab down` it first",
            layout.prefix,
            leftovers.join(", ")
        ));
    }
    std::fs::create_dir_all(options.dir).map_err(|error| format!("cannot create `{}`: {error}", options.dir.display()))?;
    let routers_compiled: Vec<bool> = layout
        .routers
        .iter()
        .map(|router| output.get(&format!("routers/{}/{}", router.name, platform_file(&router.platform))).is_some())
        .collect();
    for (router, compiled) in layout.routers.iter().zip(&routers_compiled) {
        if !compiled || matches!(router.platform.as_str(), "ios" | "junos") {
            let bgp = if router.speaker.is_some() { "; FRR speaks its BGP" } else { "" };
            let why = if *compiled { "calplan has no transport to it" } else { "no compiled file for its platform" };
            layout.notes.push(format!("router `{}` ({}, {why}): Linux routes carry its static routes{bgp}", router.name, router.platform));
        }
    }
    if agent == NodeAgent::CalicoNode {
        layout.notes.extend(calico_node_notes());
        let ipv6 = analysis.model.nodes.iter().any(|node| node.ipv6_address.is_some());
        if ipv6 && !output.artifacts.iter().any(|(_, artifact)| artifact.path.ends_with("/bird6-calico.cfg")) {
            layout.ipv6_unrendered = true;
            layout.notes.push(
                "IPv6 not checked: calplan renders no `bird6-calico.cfg` for this intent (confd's `bird6.cfg`), so calico-node's IPv6 BIRD runs its bootstrap configuration; IPv6 sessions, routes and paths are left out".into(),
            );
        }
        let copy = layout.dir.join(INTENT_COPY);
        calplan_apply::state::write_atomically(&copy, options.intent_text.as_bytes(), 0o644)?;
    }
    crate::write_layout(&layout)?;
    write_inventory(&layout)?;
    say(&format!(
        "lab `{}` in `{}` (namespaces `{}-*`, nodes run by {})",
        layout.name,
        layout.dir.display(),
        layout.prefix,
        agent.as_str()
    ));

    build_network(&mut layout)?;
    crate::write_layout(&layout)?;
    crash_point("after-network");
    say(&format!(
        "network: {} nodes, {} routers, {} BGP peers, {} pods on {} segments ({:.1}s)",
        layout.nodes.len(),
        layout.routers.len(),
        layout.speakers.iter().filter(|speaker| !speaker.router).count(),
        layout.pods.len(),
        layout.segments.len(),
        started.elapsed().as_secs_f64()
    ));

    // Listeners, BIRD and FRR.
    let mut listeners: Vec<(String, String, u16, String)> =
        layout.pods.iter().map(|pod| (pod.namespace.clone(), pod.address.to_string(), topology::POD_PORT, pod.name.clone())).collect();
    listeners.push((
        layout.outside.namespace.clone(),
        layout.outside.address.addr().to_string(),
        topology::OUTSIDE_PORT,
        "outside".to_string(),
    ));
    for (namespace, address, port, name) in &listeners {
        daemons::start_listener(&layout, namespace, address, *port, name)?;
    }
    match agent {
        NodeAgent::Bird => {
            for result in parallel(&layout.nodes, |node| daemons::start_bird(&layout, node)) {
                result?;
            }
        }
        NodeAgent::CalicoNode => {
            // The datastore first (calico-node needs it to start), then BIRD on its bootstrap
            // configuration, then confd's and Felix's emulation, which renders from now on.
            crate::datastore::start(&mut layout)?;
            if let Some(etcd) = &layout.etcd {
                let source = etcd.source();
                let applied = layout.state_dir().join("applied");
                layout.notes.push(format!("the datastore is `{source}`: plan with `--current {source} --current {}`", applied.display()));
            }
            crate::write_layout(&layout)?;
            let client = crate::datastore::client(&layout)?;
            crate::datastore::seed_ipam(&layout, analysis, &client)?;
            for result in parallel(&layout.nodes, |node| daemons::start_bird16(&layout, node)) {
                result?;
            }
            say(&format!(
                "datastore: etcd on {} with the IPAM of {} blocks; BIRD 1.6 on its bootstrap configuration ({:.1}s)",
                layout.etcd.as_ref().map(|etcd| etcd.source()).unwrap_or_default(),
                analysis.placement.blocks.len(),
                started.elapsed().as_secs_f64()
            ));
        }
    }
    for (speaker_index, speaker) in layout.speakers.iter().enumerate() {
        let router = layout.routers.iter().position(|router| router.speaker == Some(speaker_index));
        // A router on FRR with its compiled frr.conf: apply loads it into an empty FRR.
        let apply_loads = router.is_some_and(|index| layout.routers[index].platform == "frr" && routers_compiled[index]);
        let configs: Vec<Option<String>> = speaker
            .instances
            .iter()
            .map(|instance| if apply_loads || speaker.as_number == 0 { None } else { Some(frr::bgpd_config(speaker, instance)) })
            .collect();
        daemons::start_frr(speaker, &configs)?;
    }
    // Routers whose platform file is not there to load, or which calplan cannot reach.
    for (router, compiled) in layout.routers.iter().zip(&routers_compiled) {
        if *compiled && matches!(router.platform.as_str(), "linux" | "frr") {
            continue;
        }
        // `proto` before any `nexthop`: iproute2 reads everything after one as next hops.
        let lines: Vec<String> =
            router.static_routes.iter().map(|route| format!("route replace {} proto static {}", route[0], route[1..].join(" "))).collect();
        ip_batch(Some(&router.namespace), &lines)?;
    }
    crash_point("after-daemons");
    say(&format!(
        "daemons: BIRD on {} nodes, FRR for {} speakers ({:.1}s)",
        layout.nodes.len(),
        layout.speakers.len(),
        started.elapsed().as_secs_f64()
    ));

    // The artifacts, through apply. In calico-node mode, as a cluster is installed: first the
    // datastore (and the routers), then calico-node starts on every node and renders it.
    let plans = plans::bring_up(analysis, &output, options.fingerprint.clone(), agent, !layout.ipv6_unrendered);
    let lock = calplan_apply::lock::Lock::acquire(&layout.state_dir(), &calplan_apply::lock::describe_holder("`calplan lab up`"))
        .map_err(|error| error.to_string())?;
    for (number, plan) in plans.iter().enumerate() {
        let plan_text = plan.to_json();
        let file = if number == 0 { "bring-up.plan".to_string() } else { format!("bring-up-{}.plan", number + 1) };
        calplan_apply::state::write_atomically(&layout.dir.join(file), plan_text.as_bytes(), 0o644)?;
        if number > 0 && agent == NodeAgent::CalicoNode {
            crate::calico_node::start(&layout)?;
            crash_point("after-calico-node");
            say(&format!("calico-node emulation running: confd renders the datastore ({:.1}s)", started.elapsed().as_secs_f64()));
        }
        let secrets = secrets_for(plan.changes().filter_map(|change| match (&change.target, &change.after) {
            (Target::Node { node }, Some(calplan_plan::plan::Content::File { text })) if change.kind == "bird.cfg" => {
                Some((node.as_str(), text.as_str()))
            }
            (Target::Router { router }, Some(calplan_plan::plan::Content::File { text })) if change.kind == "frr.conf" => {
                Some((router.as_str(), text.as_str()))
            }
            _ => None,
        }));
        let state = StateDir::new(&layout.state_dir());
        let digest = calplan_plan::current::text_digest(&plan_text);
        let mut executor = Executor::new(
            plan,
            digest,
            executor_options(&layout, secrets, options.barrier_timeout, calplan_apply::fanout::DEFAULT_PARALLELISM)?,
            state,
        );
        executor.run(&mut Lines(&mut *say)).map_err(|error| format!("loading the artifacts failed: {error}"))?;
    }
    drop(lock);
    if agent == NodeAgent::CalicoNode {
        // Felix's part is the emulation's, from the datastore: wait until it has caught up.
        let client = crate::datastore::client(&layout)?;
        let revision = crate::calico_node::latest_revision(&client)?;
        crate::calico_node::wait_rendered(&layout.dir, revision, options.barrier_timeout)?;
        crate::write_layout(&layout)?;
        say(&format!(
            "lab `{}` is up ({:.1}s); `calplan lab verify` checks it; its datastore is {}",
            layout.name,
            started.elapsed().as_secs_f64(),
            layout.etcd.as_ref().map(|etcd| etcd.source()).unwrap_or_default()
        ));
        return Ok(layout);
    }

    // Felix's part: VXLAN routes and NAT outgoing where no rules.nft does it.
    let pools: Vec<ipnet::IpNet> = analysis.model.pools.iter().map(|pool| *pool.cidr).collect();
    let nat_pools: Vec<ipnet::IpNet> = analysis.model.pools.iter().filter(|pool| *pool.nat_outgoing).map(|pool| *pool.cidr).collect();
    let nat = felix::nat_ruleset(&nat_pools, &pools);
    let felix_work = |node: &NodeHost| -> Result<bool, String> {
        let routes = output.get(&format!("nodes/{}/routes", node.name)).map(|artifact| artifact.contents.as_str()).unwrap_or("");
        felix::sync_node(&layout, node, routes)?;
        if let (Some(rules), None) = (&nat, output.get(&format!("nodes/{}/rules.nft", node.name))) {
            in_namespace(&node.namespace, "nft", &["-f", "-"], Some(rules))?;
            return Ok(true);
        }
        Ok(false)
    };
    let mut emulated_nat = false;
    for result in parallel(&layout.nodes, felix_work) {
        emulated_nat |= result?;
    }
    say(&format!(
        "Felix's part done: VXLAN forwarding, and NAT outgoing where no rules.nft does it ({:.1}s)",
        started.elapsed().as_secs_f64()
    ));
    if emulated_nat {
        layout.notes.push("NAT outgoing is Felix's rule, emulated by the lab (no compiled rules.nft)".into());
    }
    if layout.nodes.iter().any(|node| !node.vteps.is_empty()) {
        layout.notes.push("VXLAN: real `vxlan` devices; their routes, neighbours and FDB entries are programmed as Felix would".into());
    }
    // The record's IPAM: the pods' addresses.
    let workloads: String = layout.pods.iter().map(|pod| format!("{} {} {}\n", pod.address, pod.name, pod.node)).collect();
    calplan_apply::state::write_atomically(&layout.state_dir().join(RECORD_WORKLOADS), workloads.as_bytes(), 0o644)?;
    crate::write_layout(&layout)?;
    say(&format!("lab `{}` is up ({:.1}s); `calplan lab verify` checks it", layout.name, started.elapsed().as_secs_f64()));
    Ok(layout)
}

/// What a calico-node lab emulates, for its reports.
fn calico_node_notes() -> Vec<String> {
    let notes = vec![
        "calico-node emulated: Debian's BIRD 1.6 (Calico runs its fork of 1.6) on each node's `bird-calico.cfg`, rendered by the lab's confd emulation from the lab's etcd and reloaded on every change (calico-node.log)".to_string(),
        "the fork-only `krt_tunnel = \"…\";` statement is neutralised as `print \"krt_tunnel\";` in every render: BIRD 1.6 programs IPIP pools' routes without the tunnel device the fork would name".to_string(),
        "Felix emulated from the datastore: VXLAN forwarding and NAT outgoing by the same process; routes to pods by the lab's pod wiring".to_string(),
    ];
    notes
}

/// The file a router platform loads.
pub fn platform_file(platform: &str) -> &'static str {
    match platform {
        "frr" => "frr.conf",
        "ios" => "ios.cfg",
        "junos" => "junos.set",
        _ => "routes.sh",
    }
}

fn nodad(address: &IpAddr) -> &'static str {
    if address.is_ipv6() { " nodad" } else { "" }
}

fn default_routes(gateways: &[IpAddr]) -> Vec<String> {
    gateways.iter().map(|gateway| format!("route replace default via {gateway}")).collect()
}

/// Namespaces, the fabric and its bridges, every host's links and addresses, the pods.
fn build_network(layout: &mut Layout) -> Result<(), String> {
    let namespaces = layout.namespaces();
    let adds: Vec<String> = namespaces.iter().map(|name| format!("netns add {name}")).collect();
    ip_batch(None, &adds)?;
    for result in parallel(&namespaces, |name| ip_batch(Some(name), &["link set dev lo up".to_string()])) {
        result?;
    }

    // The fabric: a bridge per segment with the fabric's addresses, a port per host link.
    let mut fabric = Vec::new();
    for segment in &layout.segments {
        fabric.push(format!("link add name {} type bridge", segment.bridge));
        fabric.push(format!("link set dev {} up", segment.bridge));
        for gateway in &segment.gateways {
            fabric.push(format!("address add {gateway} dev {}{}", segment.bridge, nodad(&gateway.addr())));
        }
    }
    let mut links: Vec<(&str, &topology::Attachment)> = Vec::new();
    links.extend(layout.nodes.iter().map(|node| (node.namespace.as_str(), &node.link)));
    links.extend(layout.routers.iter().map(|router| (router.namespace.as_str(), &router.link)));
    for speaker in layout.speakers.iter().filter(|speaker| !speaker.router) {
        links.extend(speaker.links.iter().map(|link| (speaker.namespace.as_str(), link)));
    }
    for (namespace, link) in &links {
        fabric.push(format!("link add name {} type veth peer name {} netns {namespace}", link.port, link.interface));
        fabric.push(format!("link set dev {} master {}", link.port, layout.segments[link.segment].bridge));
        fabric.push(format!("link set dev {} up", link.port));
    }
    let outside = &layout.outside;
    fabric.push(format!("link add name {} type veth peer name eth0 netns {}", outside.port, outside.namespace));
    fabric.push(format!("address add {} dev {}", outside.gateway, outside.port));
    fabric.push(format!("link set dev {} up", outside.port));
    for speaker in layout.speakers.iter().filter(|speaker| !speaker.router) {
        for loopback in &speaker.loopbacks {
            let via = speaker.links.iter().flat_map(|link| &link.addresses).find(|address| address.addr().is_ipv4() == loopback.is_ipv4());
            if let Some(via) = via {
                fabric.push(format!("route replace {} via {}", ipnet::IpNet::from(*loopback), via.addr()));
            }
        }
    }
    ip_batch(Some(&layout.fabric), &fabric)?;
    in_namespace(
        &layout.fabric,
        "sysctl",
        &["-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv4.conf.all.send_redirects=0"],
        None,
    )?;

    // IPIP: this kernel may lack the module.
    let probe = ip_batch(Some(&layout.fabric), &["link add name cplipip0 type ipip remote 192.0.2.1 local 192.0.2.2".to_string()]);
    layout.ipip_in_kernel = probe.is_ok();
    if layout.ipip_in_kernel {
        ip_batch(Some(&layout.fabric), &["link delete dev cplipip0".to_string()])?;
    }
    let needs_tunl0 = !layout.ipip_pools.is_empty();
    if needs_tunl0 && !layout.ipip_in_kernel {
        layout.notes.push(format!(
            "this kernel has no `ipip` module: IPIP pools ({}) are verified on the control plane only (sessions and BIRD's routes, with `tunl0` a stand-in device), not with traffic",
            layout.ipip_pools.join(", ")
        ));
    }

    // Nodes, with their pods' host sides.
    let layout_view: &Layout = layout;
    let node_work = |node: &NodeHost| -> Result<(), String> {
        let mut lines = Vec::new();
        for address in &node.link.addresses {
            lines.push(format!("address add {address} dev {}{}", node.link.interface, nodad(&address.addr())));
        }
        lines.push(format!("link set dev {} up", node.link.interface));
        lines.extend(default_routes(&node.gateways));
        lines.extend(felix::vxlan_devices(node));
        if needs_tunl0 {
            if layout_view.ipip_in_kernel {
                lines.push("link set dev tunl0 up".to_string());
            } else {
                // A stand-in with carrier, so BIRD's `dev tunl0 onlink` routes load.
                lines.push("link add name tunl0 type veth peer name tunl0p".to_string());
                lines.push("link set dev tunl0 up".to_string());
                lines.push("link set dev tunl0p up".to_string());
            }
        }
        let mut sysctls = vec!["net.ipv4.ip_forward=1".to_string(), "net.ipv6.conf.all.forwarding=1".to_string()];
        for pod in layout_view.pods.iter().filter(|pod| pod.node == node.name) {
            let (pod_lines, pod_sysctls) = crate::pods::host_side(pod);
            lines.extend(pod_lines);
            sysctls.extend(pod_sysctls);
        }
        ip_batch(Some(&node.namespace), &lines)?;
        let sysctl_args: Vec<&str> = ["-q", "-w"].into_iter().chain(sysctls.iter().map(String::as_str)).collect();
        in_namespace(&node.namespace, "sysctl", &sysctl_args, None)?;
        Ok(())
    };
    for result in parallel(&layout_view.nodes, node_work) {
        result?;
    }

    // Pods, routers, peers, the outside host.
    let pod_work = |pod: &topology::Pod| -> Result<(), String> { ip_batch(Some(&pod.namespace), &crate::pods::pod_side(pod)) };
    for result in parallel(&layout_view.pods, pod_work) {
        result?;
    }
    for router in &layout_view.routers {
        let mut lines: Vec<String> =
            router.link.addresses.iter().map(|address| format!("address add {address} dev eth0{}", nodad(&address.addr()))).collect();
        lines.push("link set dev eth0 up".to_string());
        lines.extend(default_routes(&router.gateways));
        ip_batch(Some(&router.namespace), &lines)?;
    }
    for speaker in layout_view.speakers.iter().filter(|speaker| !speaker.router) {
        ip_batch(Some(&speaker.namespace), &speaker_lines(speaker))?;
    }
    ip_batch(
        Some(&outside.namespace),
        &[
            format!("address add {} dev eth0", outside.address),
            "link set dev eth0 up".to_string(),
            format!("route replace default via {}", outside.gateway.addr()),
        ],
    )?;
    Ok(())
}

fn speaker_lines(speaker: &Speaker) -> Vec<String> {
    let mut lines = Vec::new();
    for link in &speaker.links {
        for address in &link.addresses {
            lines.push(format!("address add {address} dev {}{}", link.interface, nodad(&address.addr())));
        }
        lines.push(format!("link set dev {} up", link.interface));
    }
    for loopback in &speaker.loopbacks {
        let length = if loopback.is_ipv4() { 32 } else { 128 };
        lines.push(format!("address add {loopback}/{length} dev lo{}", nodad(loopback)));
    }
    lines.extend(default_routes(&speaker.gateways));
    lines
}
