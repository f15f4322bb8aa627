//! `lab verify`: what runs in the lab against what the intent promises, every gap reported.
//!
//! - BGP sessions: `birdc show protocols` on every node against the sessions `calplan status`
//!   predicts (and no others);
//! - kernel routes: each node's `ip route` (both families), normalised as route dumps are read
//!   for `--current`, against `nodes/<node>/routes`;
//! - router → pod: ping and a TCP connect to the pod's listener (the seed's `curl` from the
//!   harbor host);
//! - pod → pod across nodes: every pair, or a stated sample in large labs;
//! - NAT outgoing: a pod's connection to the outside host arrives from its node's address;
//! - external peers: what each emulated peer's FRR learned, against every block it should
//!   hear of and everything the nodes' BIRD says it sends.
//!
//! Sessions, routes and reachability are polled until they hold or the deadline passes, so a
//! lab that is still converging is given the time it needs and no more. Read-only: it changes
//! nothing in the lab.

use crate::topology::{Layout, NodeHost, OUTSIDE_PORT, POD_PORT, Pod, Speaker};
use crate::{daemons, in_namespace, parallel, run};
use calplan_apply::observe::parse_protocols;
use calplan_model::{Analysis, NodeAgent};
use calplan_targets::Output;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Above this many pods, pod → pod checks a sample rather than every pair.
pub const EVERY_PAIR_UP_TO: usize = 20;

/// One line of the report: `Some(true)` passed, `Some(false)` a gap, `None` not checked (and why).
#[derive(Clone, Debug)]
pub struct Row {
    pub ok: Option<bool>,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Section {
    pub title: String,
    pub rows: Vec<Row>,
    /// How long the section's checks took, converging included.
    pub seconds: f64,
}

#[derive(Clone, Debug)]
pub struct Report {
    pub heading: String,
    pub sections: Vec<Section>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn gaps(&self) -> usize {
        self.sections.iter().flat_map(|section| &section.rows).filter(|row| row.ok == Some(false)).count()
    }

    pub fn passed(&self) -> usize {
        self.sections.iter().flat_map(|section| &section.rows).filter(|row| row.ok == Some(true)).count()
    }

    /// The report as text; sections with many passing rows list their gaps and a count.
    pub fn render(&self) -> String {
        let mut out = format!("{}\n", self.heading);
        for section in &self.sections {
            let _ = writeln!(out, "\n{} [{:.1}s]", section.title, section.seconds);
            let many = section.rows.len() > 40;
            let mut hidden = 0;
            for row in &section.rows {
                if many && row.ok == Some(true) {
                    hidden += 1;
                    continue;
                }
                let mark = match row.ok {
                    Some(true) => "ok  ",
                    Some(false) => "GAP ",
                    None => "skip",
                };
                let _ = writeln!(out, "  {mark} {}", row.text);
            }
            if hidden > 0 {
                let _ = writeln!(out, "  ok   … and {hidden} more");
            }
            if section.rows.is_empty() {
                out.push_str("  (nothing to check)\n");
            }
        }
        if !self.notes.is_empty() {
            out.push_str("\nNotes\n");
            for note in &self.notes {
                let _ = writeln!(out, "  - {note}");
            }
        }
        let gaps = self.gaps();
        if gaps == 0 {
            let _ = writeln!(out, "\nResult: all {} checks passed.", self.passed());
        } else {
            let _ = writeln!(out, "\nResult: {gaps} gaps ({} checks passed).", self.passed());
        }
        out
    }
}

pub struct VerifyOptions {
    /// How long sessions, routes and reachability may take to converge.
    pub timeout: Duration,
    /// The intent's name as given, for the heading.
    pub intent: String,
}

/// A node's routes as the lab compares them: the artifact's lines, or the kernel's routes
/// that belong to the cluster, in the normal form of `current::ip_routes`.
fn normalise(text: &str) -> BTreeSet<String> {
    let read = calplan_plan::current::ip_routes::read(calplan_diagnostics::FileId(0), text);
    read.value.unwrap_or_default().into_iter().collect()
}

/// The kernel's routes of a node that the `routes` artifact speaks for: BIRD's, Felix's,
/// calplan's pins, and anything else inside a pool except the routes to local workloads.
fn kernel_cluster_routes(node: &NodeHost, pools: &[IpNet]) -> Result<BTreeSet<String>, String> {
    let mut lines = BTreeSet::new();
    for family in ["-4", "-6"] {
        let json = run("ip", &["-n", &node.namespace, "-j", family, "route", "show"], None)?;
        for line in normalise(if json.trim().is_empty() { "[]" } else { &json }) {
            if calplan_apply::verify::is_cluster_route(&line, pools) {
                lines.insert(line);
            }
        }
    }
    Ok(lines)
}

/// Polls `check` on every item until all pass or the deadline; the last results.
fn converge<T: Sync>(items: &[T], deadline: Instant, check: impl Fn(&T) -> Row + Sync) -> Vec<Row> {
    let mut rows: Vec<Row> = parallel(items, &check);
    loop {
        let failing: Vec<usize> = rows.iter().enumerate().filter(|(_, row)| row.ok == Some(false)).map(|(index, _)| index).collect();
        if failing.is_empty() || Instant::now() >= deadline {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(300));
        let again = parallel(&failing, |index| check(&items[*index]));
        for (index, row) in failing.into_iter().zip(again) {
            rows[index] = row;
        }
    }
}

/// `ping -c 1` from a namespace.
pub fn ping(namespace: &str, target: IpAddr) -> bool {
    in_namespace(namespace, "ping", &["-n", "-q", "-c", "1", "-W", "1", &target.to_string()], None).is_ok()
}

/// A TCP connection from a namespace to `target:port`; what the listener answered (the
/// address it saw the connection come from).
pub fn connect(namespace: &str, target: IpAddr, port: u16) -> Result<String, String> {
    in_namespace(namespace, "ncat", &["--wait", "2", "--recv-only", &target.to_string(), &port.to_string()], None)
        .map(|text| text.trim().to_string())
}

fn pod_text(pod: &Pod) -> String {
    format!("{} ({} on {})", pod.name, pod.address, pod.node)
}

pub fn verify(layout: &Layout, analysis: &Analysis, output: &Output, options: &VerifyOptions) -> Report {
    let deadline = Instant::now() + options.timeout;
    let pools: Vec<IpNet> = analysis.model.pools.iter().map(|pool| *pool.cidr).collect();
    let routes_of = |node: &str| output.get(&format!("nodes/{node}/routes")).map(|artifact| artifact.contents.clone()).unwrap_or_default();
    let mut sections = Vec::new();
    let mut notes = layout.notes.clone();
    let mut mark = Instant::now();
    let lap = |mark: &mut Instant| {
        let seconds = mark.elapsed().as_secs_f64();
        *mark = Instant::now();
        seconds
    };

    // Sessions.
    let peerings = &analysis.peerings;
    let expected: Vec<(String, Vec<(String, String)>)> = (0..peerings.topology.nodes.len())
        .map(|index| {
            let rows = peerings
                .for_node(index)
                .iter()
                .filter(|peering| layout.checks_family(peering.data.ip.is_ipv4()))
                .map(|peering| (peering.protocol_name(), format!("{} {}", peering.status_address(), peering.peer_type.as_str())))
                .collect();
            (peerings.topology.nodes[index].name.clone(), rows)
        })
        .collect();
    let rows = converge(&expected, deadline, |(name, sessions)| {
        let Some(node) = layout.node(name) else {
            return Row { ok: Some(false), text: format!("{name}: not in the lab (it was brought up from `{}`)", layout.intent) };
        };
        let table = match daemons::birdc(layout, node, &["show", "protocols"]) {
            Ok(table) => table,
            Err(error) => return Row { ok: Some(false), text: format!("{name}: {error}") },
        };
        let live = parse_protocols(&table);
        let mut problems = Vec::new();
        for (protocol, status) in sessions {
            match live.get(protocol) {
                Some(row) if row.is_established() => {}
                Some(row) => problems.push(format!("`{protocol}` ({status}) is {} {}", row.state, row.info)),
                None => problems.push(format!("`{protocol}` ({status}) is not configured")),
            }
        }
        let wanted: BTreeSet<&str> = sessions.iter().map(|(protocol, _)| protocol.as_str()).collect();
        for row in live.values().filter(|row| row.protocol == "BGP" && !wanted.contains(row.name.as_str())) {
            problems.push(format!("unexpected session `{}` ({})", row.name, row.info));
        }
        if problems.is_empty() {
            let list: Vec<&str> = sessions.iter().map(|(_, status)| status.as_str()).collect();
            Row { ok: Some(true), text: format!("{name}: {} Established ({})", sessions.len(), list.join(", ")) }
        } else {
            Row { ok: Some(false), text: format!("{name}: {}", problems.join("; ")) }
        }
    });
    sections.push(Section { title: "BGP sessions (birdc show protocols, against `calplan status`)".into(), rows, seconds: lap(&mut mark) });

    // confd's render, in calico-node mode.
    if layout.node_agent == NodeAgent::CalicoNode {
        let names: Vec<String> = analysis.model.nodes.iter().map(|node| node.name.value.clone()).collect();
        let rows = converge(&names, deadline, |name| render_check(layout, output, name));
        sections.push(Section {
            title: "confd's render (etc/calico/confd/config/bird.cfg, against bird-calico.cfg)".into(),
            rows,
            seconds: lap(&mut mark),
        });
    }

    // Kernel routes.
    let names: Vec<String> = analysis.model.nodes.iter().map(|node| node.name.value.clone()).collect();
    let rows = converge(&names, deadline, |name| {
        let Some(node) = layout.node(name) else { return Row { ok: Some(false), text: format!("{name}: not in the lab") } };
        let mut wanted = normalise(&routes_of(name));
        if !layout.checks_family(false) {
            wanted.retain(|line| !line.contains(':'));
        }
        let mut held = match kernel_cluster_routes(node, &pools) {
            Ok(held) => held,
            Err(error) => return Row { ok: Some(false), text: format!("{name}: {error}") },
        };
        if !layout.checks_family(false) {
            held.retain(|line| !line.contains(':'));
        }
        // Stock BIRD 1.6 cannot program what Calico's fork programs through `tunl0`
        // (`krt_tunnel` is neutralised): those routes are checked in BIRD's own table.
        let mut in_bird = Vec::new();
        if layout.node_agent == NodeAgent::CalicoNode {
            let tunnelled: Vec<String> = wanted.iter().filter(|line| line.contains(" dev tunl0")).cloned().collect();
            for line in &tunnelled {
                wanted.remove(line);
                let destination = line.split_whitespace().next().unwrap_or_default().to_string();
                held.retain(|held_line| held_line.split_whitespace().next() != Some(destination.as_str()));
                in_bird.push(destination);
            }
        }
        let mut missing: Vec<&String> = wanted.difference(&held).collect();
        let unexpected: Vec<&String> = held.difference(&wanted).collect();
        let absent_in_bird: Vec<String> = match in_bird.is_empty() {
            true => Vec::new(),
            false => match daemons::birdc(layout, node, &["show", "route"]) {
                Ok(table) => {
                    in_bird.iter().filter(|prefix| !table.lines().any(|line| line.starts_with(prefix.as_str()))).cloned().collect()
                }
                Err(error) => return Row { ok: Some(false), text: format!("{name}: {error}") },
            },
        };
        let absent_lines: Vec<String> = absent_in_bird.iter().map(|prefix| format!("{prefix} (through tunl0) in BIRD's table")).collect();
        missing.extend(absent_lines.iter());
        let tunnel_note = if in_bird.is_empty() {
            String::new()
        } else {
            format!(" ({} through tunl0 in BIRD's table: control plane only)", in_bird.len())
        };
        if missing.is_empty() && unexpected.is_empty() {
            Row { ok: Some(true), text: format!("{name}: {} routes as in nodes/{name}/routes{tunnel_note}", wanted.len() + in_bird.len()) }
        } else {
            let mut text = format!("{name}:");
            if !missing.is_empty() {
                let _ = write!(text, " missing {}", some(&missing));
            }
            if !unexpected.is_empty() {
                let _ = write!(text, "{}unexpected {}", if missing.is_empty() { " " } else { "; " }, some(&unexpected));
            }
            Row { ok: Some(false), text }
        }
    });
    sections.push(Section { title: "Kernel routes (ip route, against nodes/<node>/routes)".into(), rows, seconds: lap(&mut mark) });

    // Router → pod.
    let mut router_checks: Vec<(usize, usize)> = Vec::new();
    let mut skipped = Vec::new();
    let expected = crate::topology::plan(analysis, &layout.intent, &layout.dir, layout.node_agent).ok();
    for (router_index, router) in layout.routers.iter().enumerate() {
        let routes = expected
            .as_ref()
            .and_then(|expected| expected.routers.iter().find(|other| other.name == router.name))
            .map_or(&router.static_routes, |other| &other.static_routes);
        for (pod_index, pod) in layout.pods.iter().enumerate() {
            if !router_reaches(layout, analysis, router_index, routes, pod) || !layout.checks_family(pod.address.is_ipv4()) {
                continue;
            }
            if layout.ipip_pools.contains(&pod.pool) && !layout.ipip_in_kernel {
                skipped.push(Row {
                    ok: None,
                    text: format!("{} → {}: IPIP pool `{}`, control plane only", router.name, pod_text(pod), pod.pool),
                });
                continue;
            }
            router_checks.push((router_index, pod_index));
        }
    }
    let mut rows = converge(&router_checks, deadline, |(router_index, pod_index)| {
        let (router, pod) = (&layout.routers[*router_index], &layout.pods[*pod_index]);
        let pinged = ping(&router.namespace, pod.address);
        let connected = connect(&router.namespace, pod.address, POD_PORT);
        let text = format!(
            "{} → {}: ping {}, TCP :{POD_PORT} {}",
            router.name,
            pod_text(pod),
            word(pinged),
            connected.as_ref().map_or("failed", |_| "connected")
        );
        Row { ok: Some(pinged && connected.is_ok()), text }
    });
    rows.extend(skipped);
    sections.push(Section { title: "Router → pod (ping, and a TCP connect as the seed's curl)".into(), rows, seconds: lap(&mut mark) });

    // Pod → pod.
    let (pairs, sample) = pod_pairs(&layout.pods);
    let mut checked_pairs = Vec::new();
    let mut rows = Vec::new();
    for (a, b) in pairs {
        let (from, to) = (&layout.pods[a], &layout.pods[b]);
        let (from_routes, to_routes) = (routes_of(&from.node), routes_of(&to.node));
        let routed = |routes: &str, block: &IpNet| routes.lines().any(|line| line.split_whitespace().any(|word| word == block.to_string()));
        if !layout.checks_family(from.address.is_ipv4()) {
            rows.push(Row { ok: None, text: format!("{} ↔ {}: IPv6, not checked (no IPv6 render)", pod_text(from), pod_text(to)) });
        } else if !routed(&from_routes, &to.block) || !routed(&to_routes, &from.block) {
            rows.push(Row {
                ok: None,
                text: format!("{} ↔ {}: no route between them by design (nodes/<node>/routes)", pod_text(from), pod_text(to)),
            });
        } else if layout.path_needs_ipip(&from_routes, &to.block) || layout.path_needs_ipip(&to_routes, &from.block) {
            rows.push(Row { ok: None, text: format!("{} ↔ {}: through IPIP, control plane only", pod_text(from), pod_text(to)) });
        } else {
            checked_pairs.push((a, b));
        }
    }
    let mut checked = converge(&checked_pairs, deadline, |(a, b)| {
        let (from, to) = (&layout.pods[*a], &layout.pods[*b]);
        let ok = ping(&from.namespace, to.address);
        Row { ok: Some(ok), text: format!("{} ↔ {}: ping {}", pod_text(from), pod_text(to), word(ok)) }
    });
    checked.extend(rows);
    let title = if sample {
        format!("Pod → pod across nodes (a sample of {} pairs: each pod with the next and the opposite one)", checked.len())
    } else {
        format!("Pod → pod across nodes (every pair: {})", checked.len())
    };
    sections.push(Section { title, rows: checked, seconds: lap(&mut mark) });

    // NAT outgoing.
    let outside = layout.outside.address.addr();
    let nat_pools: BTreeSet<String> =
        analysis.model.pools.iter().filter(|pool| *pool.nat_outgoing).map(|pool| pool.name.value.clone()).collect();
    let nat_pods: Vec<&Pod> = layout
        .pods
        .iter()
        .filter(|pod| nat_pools.contains(&pod.pool) && pod.address.is_ipv4() == outside.is_ipv4())
        .take(EVERY_PAIR_UP_TO)
        .collect();
    let rows = converge(&nat_pods, deadline, |pod| {
        let node_address = layout
            .node(&pod.node)
            .and_then(|node| node.link.addresses.iter().find(|address| address.addr().is_ipv4() == outside.is_ipv4()))
            .map(IpNet::addr);
        match connect(&pod.namespace, outside, OUTSIDE_PORT) {
            Ok(seen) => {
                let ok = node_address.is_some_and(|address| address.to_string() == seen);
                let expected = node_address.map_or("?".to_string(), |address| address.to_string());
                Row { ok: Some(ok), text: format!("{} → {outside}: arrives from {seen} (its node is {expected})", pod_text(pod)) }
            }
            Err(_) => Row { ok: Some(false), text: format!("{} → {outside}: no connection", pod_text(pod)) },
        }
    });
    sections.push(Section {
        title: format!("NAT outgoing (the outside host {outside} sees the node's address)"),
        rows,
        seconds: lap(&mut mark),
    });

    // External peers.
    let mut instances: Vec<(usize, usize)> = Vec::new();
    for (speaker_index, speaker) in layout.speakers.iter().enumerate() {
        for instance_index in 0..speaker.instances.len() {
            let instance = &speaker.instances[instance_index];
            if !instance.neighbors.is_empty() && layout.checks_family(instance.local.is_ipv4()) {
                instances.push((speaker_index, instance_index));
            }
        }
    }
    let blocks: Vec<IpNet> = analysis
        .placement
        .blocks
        .iter()
        .filter(|block| block.is_advertised() && block.pool.is_some_and(|pool| !*analysis.model.pools[pool].disable_bgp_export))
        .map(|block| block.cidr)
        .collect();
    let rows = converge(&instances, deadline, |(speaker_index, instance_index)| {
        let speaker = &layout.speakers[*speaker_index];
        learned_check(layout, speaker, *instance_index, &blocks)
    });
    sections.push(Section {
        title: "BGP peers outside the cluster (what FRR learned: every block, and all the nodes send)".into(),
        rows,
        seconds: lap(&mut mark),
    });

    if sample {
        notes.push(format!("{} pods: pod → pod checks a sample, not every pair", layout.pods.len()));
    }
    Report { heading: format!("lab `{}` ({}) against `{}`", layout.name, layout.prefix, options.intent), sections, notes }
}

/// A node's live render (what its BIRD runs) against the intent's `bird-calico.cfg`, as the
/// lab's confd emulation prepares it for BIRD 1.6.
fn render_check(layout: &Layout, output: &Output, name: &str) -> Row {
    let Some(node) = layout.node(name) else { return Row { ok: Some(false), text: format!("{name}: not in the lab") } };
    let mut differences = Vec::new();
    let mut compared = 0;
    for (ipv6, file) in [(false, "bird-calico.cfg"), (true, "bird6-calico.cfg")] {
        let Some(artifact) = output.get(&format!("nodes/{name}/{file}")) else { continue };
        if ipv6 && !daemons::runs_bird6(node) {
            continue;
        }
        compared += 1;
        let path = daemons::render_path(node, ipv6);
        let live = std::fs::read_to_string(&path).unwrap_or_default();
        let predicted = crate::calico_node::with_lab_passwords(&artifact.contents);
        if live != predicted {
            let line = live
                .lines()
                .zip(predicted.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(live.lines().count().min(predicted.lines().count()));
            let shown = predicted.lines().nth(line).unwrap_or("(end of file)").trim().to_string();
            differences.push(format!("{} differs from {file} from line {} (`{shown}`)", path.display(), line + 1));
        }
    }
    if differences.is_empty() {
        Row { ok: Some(true), text: format!("{name}: {compared} renders as predicted") }
    } else {
        Row { ok: Some(false), text: format!("{name}: {}", differences.join("; ")) }
    }
}

/// A few routes of a list, quoted, and how many more there are.
fn some(lines: &[&String]) -> String {
    const SHOWN: usize = 4;
    let mut text = lines.iter().take(SHOWN).map(|line| format!("`{line}`")).collect::<Vec<_>>().join(", ");
    if lines.len() > SHOWN {
        let _ = write!(text, " and {} more", lines.len() - SHOWN);
    }
    text
}

fn word(ok: bool) -> &'static str {
    if ok { "answered" } else { "failed" }
}

/// Whether a router should reach a pod: a static route of its covers the pod, or it learns
/// the pod's block over BGP.
/// `routes` are the router's static routes in the verified intent (its pools may have
/// changed since `up`).
fn router_reaches(layout: &Layout, analysis: &Analysis, router_index: usize, routes: &[Vec<String>], pod: &Pod) -> bool {
    let router = &layout.routers[router_index];
    let family = router.link.addresses.first().is_some_and(|address| address.addr().is_ipv4()) == pod.address.is_ipv4();
    if !family {
        return false;
    }
    let static_route = routes
        .iter()
        .any(|route| route.first().and_then(|destination| destination.parse::<IpNet>().ok()).is_some_and(|net| net.contains(&pod.address)));
    let bgp = router.speaker.is_some_and(|index| !layout.speakers[index].instances.iter().all(|instance| instance.neighbors.is_empty()))
        && analysis.model.pools.iter().any(|pool| pool.name.value == pod.pool && !*pool.disable_bgp_export);
    static_route || bgp
}

/// Pairs of pods on different nodes, same family: every pair up to [`EVERY_PAIR_UP_TO`] pods,
/// else each pod with the next one and the one half-way round; and whether it is a sample.
pub fn pod_pairs(pods: &[Pod]) -> (Vec<(usize, usize)>, bool) {
    let sample = pods.len() > EVERY_PAIR_UP_TO;
    let mut pairs = BTreeSet::new();
    for ipv4 in [true, false] {
        let family: Vec<usize> = (0..pods.len()).filter(|index| pods[*index].address.is_ipv4() == ipv4).collect();
        let count = family.len();
        if sample {
            for position in 0..count {
                for step in [1, count / 2] {
                    let (a, b) = (family[position], family[(position + step) % count]);
                    if pods[a].node != pods[b].node {
                        pairs.insert((a.min(b), a.max(b)));
                    }
                }
            }
        } else {
            for (position, a) in family.iter().enumerate() {
                for b in &family[position + 1..] {
                    if pods[*a].node != pods[*b].node {
                        pairs.insert((*a, *b));
                    }
                }
            }
        }
    }
    (pairs.into_iter().collect(), sample)
}

/// Prefixes in `birdc show route export PROTOCOL` output.
fn bird_exports(layout: &Layout, node: &NodeHost, protocol: &str) -> Result<BTreeSet<IpNet>, String> {
    let text = daemons::birdc(layout, node, &["show", "route", "export", protocol])?;
    Ok(text.lines().filter_map(|line| line.split_whitespace().next()).filter_map(|word| word.parse::<IpNet>().ok()).collect())
}

fn learned_check(layout: &Layout, speaker: &Speaker, instance_index: usize, blocks: &[IpNet]) -> Row {
    let instance = &speaker.instances[instance_index];
    let label = format!("{} from {}", speaker.name, instance.local);
    let mut learned: BTreeSet<IpNet> = BTreeSet::new();
    for (family, ipv4) in [("ipv4", true), ("ipv6", false)] {
        if !instance.neighbors.iter().any(|neighbor| neighbor.address.is_ipv4() == ipv4) {
            continue;
        }
        let json = match daemons::vtysh(speaker, instance, &format!("show bgp {family} unicast json")) {
            Ok(json) => json,
            Err(error) => return Row { ok: Some(false), text: format!("{label}: {error}") },
        };
        let value: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        if let Some(routes) = value.get("routes").and_then(|routes| routes.as_object()) {
            learned.extend(routes.keys().filter_map(|prefix| prefix.parse::<IpNet>().ok()));
        }
    }
    let mut expected: BTreeSet<IpNet> = BTreeSet::new();
    let families: BTreeSet<bool> = instance.neighbors.iter().map(|neighbor| neighbor.address.is_ipv4()).collect();
    expected.extend(blocks.iter().filter(|block| families.contains(&block.addr().is_ipv4())));
    for neighbor in &instance.neighbors {
        let Some(node) = layout.node(&neighbor.node) else { continue };
        // A session that is down exports nothing (and the sessions check says so).
        if let Ok(sent) = bird_exports(layout, node, &neighbor.protocol) {
            expected.extend(sent);
        }
    }
    let missing: Vec<String> = expected.difference(&learned).map(ToString::to_string).collect();
    if missing.is_empty() {
        Row { ok: Some(true), text: format!("{label}: learned {} prefixes, all {} expected", learned.len(), expected.len()) }
    } else {
        Row { ok: Some(false), text: format!("{label}: missing {}", some(&missing.iter().collect::<Vec<_>>())) }
    }
}
