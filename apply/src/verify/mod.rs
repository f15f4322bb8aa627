//! `calplan verify`: the live cluster against the intent, node by node — drift detection.
//!
//! For each node it reads what calico-node runs (confd's render, `bird.cfg` and the files it
//! includes, from `/etc/calico/confd/config`), BIRD's sessions (`birdcl show protocols` on
//! calico-node's socket) and the kernel's routes, and compares them with what the intent
//! compiles to: `bird-calico.cfg` (BGP-semantically, [`bird_config`]), the sessions `calplan
//! status` predicts, and `nodes/<node>/routes`. With Calico's resources in `--current`, each
//! node's `Node` resource is compared with what the intent (its node rules and reflectors) says
//! it should hold ([`node_resources`]). Every difference is reported with where it is.
//!
//! The comparison ([`compare`]) is pure: live texts in, differences out. Reading goes through
//! apply's transports (ssh, netns), nodes in parallel with a bound. Read-only: nothing on a node
//! is changed.

pub mod bird_config;
pub mod node_resources;

use crate::observe::parse_protocols;
use crate::transport::{Host, Inventory, Transport};
use bird_config::{BirdConfig, Block, Item, Location};
use ipnet::IpNet;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Where calico-node's confd writes its render.
pub const CONFD_CONFIG: &str = "/etc/calico/confd/config";

/// How many nodes are read at once by default: apply's bound ([`crate::fanout`]).
pub const DEFAULT_PARALLELISM: usize = crate::fanout::DEFAULT_PARALLELISM;

/// What the intent says one node should run.
#[derive(Clone, Debug)]
pub struct Expected {
    pub node: String,
    /// `nodes/<node>/bird-calico.cfg`, and the name to locate its lines by.
    pub render_name: String,
    pub render: String,
    /// `nodes/<node>/bird6-calico.cfg` (its name and text), for a node with an IPv6 address:
    /// calico-node's `bird6` runs confd's `bird6.cfg`.
    pub render6: Option<(String, String)>,
    /// The BGP protocols that must be Established (the sessions `calplan status` lists).
    pub sessions: Vec<String>,
    /// `nodes/<node>/routes`.
    pub routes: String,
    /// The intent's pools: kernel routes inside them are the cluster's.
    pub pools: Vec<IpNet>,
}

/// What was read from one node. Each part is an error when it could not be read.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// The render's files by name (`bird.cfg`, `bird6.cfg` when read, and every file they
    /// include).
    pub files: BTreeMap<String, String>,
    pub render_error: Option<String>,
    /// Why `bird6.cfg` could not be read, when it was asked for.
    pub render6_error: Option<String>,
    /// Where the render was read, for locations (`/etc/calico/confd/config`).
    pub confd_dir: String,
    pub protocols: Option<Result<String, String>>,
    /// `ip -j route show` of both families, as JSON texts.
    pub routes: Option<Result<Vec<String>, String>>,
}

/// One difference between the live node and the intent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// `node` (the Calico `Node` resource), `render`, `sessions` or `routes`.
    pub area: &'static str,
    /// What differs: `protocol Mesh_10_0_0_2`, `function calico_aggr`, `router id`, a session, a route.
    pub subject: String,
    /// What the intent wants (absent: nothing, the live thing is unexpected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What the node has (absent: nothing, the expected thing is missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<String>,
    /// Where on the node: a file and line of the render, or the command that was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Where in calplan's prediction (`nodes/<node>/bird-calico.cfg:LINE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_location: Option<String>,
}

impl Difference {
    fn new(area: &'static str, subject: impl Into<String>) -> Difference {
        Difference { area, subject: subject.into(), expected: None, live: None, location: None, expected_location: None }
    }

    fn expected(mut self, text: impl Into<String>, at: Option<&Location>) -> Difference {
        self.expected = Some(text.into());
        self.expected_location = at.map(Location::to_string);
        self
    }

    fn live(mut self, text: impl Into<String>, at: Option<String>) -> Difference {
        self.live = Some(text.into());
        self.location = at;
        self
    }

    fn at(mut self, location: Option<String>) -> Difference {
        self.location = location;
        self
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        let place = self.location.as_deref().map(|location| format!("{location}: ")).unwrap_or_default();
        let mut text = match (&self.expected, &self.live) {
            (Some(expected), Some(live)) => format!("{place}{}: expected `{expected}`, found `{live}`", self.subject),
            (Some(expected), None) => format!("{place}{}: missing, expected `{expected}`", self.subject),
            (None, Some(live)) => format!("{place}{}: not in the intent: `{live}`", self.subject),
            (None, None) => format!("{place}{}", self.subject),
        };
        if let Some(at) = &self.expected_location {
            let _ = write!(text, " (intent's render: {at})");
        }
        text
    }
}

/// Where a live file's line is, for reports: the file under the confd directory.
fn live_at(live: &Live, at: &Location) -> String {
    format!("{}/{}", live.confd_dir, at)
}

/// Every difference between what a node runs and what the intent wants of it.
pub fn compare(expected: &Expected, live: &Live) -> Vec<Difference> {
    let mut differences = Vec::new();
    match (&live.render_error, live.files.get("bird.cfg")) {
        (Some(error), _) => differences.push(Difference::new("render", "bird.cfg").live(format!("cannot be read: {error}"), None)),
        (None, None) => differences.push(Difference::new("render", "bird.cfg").live("absent", Some(live.confd_dir.clone()))),
        (None, Some(_)) => differences.extend(render_differences(&expected.render_name, &expected.render, live, IPV4_RENDER)),
    }
    if let Some((name, render)) = &expected.render6 {
        match (&live.render6_error, live.files.get(IPV6_RENDER)) {
            (Some(error), _) => differences.push(Difference::new("render", IPV6_RENDER).live(format!("cannot be read: {error}"), None)),
            (None, None) => differences
                .push(Difference::new("render", IPV6_RENDER).expected("confd's IPv6 render", None).at(Some(live.confd_dir.clone()))),
            (None, Some(_)) => differences.extend(render_differences(name, render, live, IPV6_RENDER)),
        }
    }
    if let Some(protocols) = &live.protocols {
        differences.extend(compare_sessions(&expected.sessions, protocols));
    }
    if let Some(routes) = &live.routes {
        differences.extend(compare_routes(expected, routes));
    }
    differences
}

/// confd's files for BIRD's two daemons, in the confd directory.
pub const IPV4_RENDER: &str = "bird.cfg";
pub const IPV6_RENDER: &str = "bird6.cfg";

/// How a node's render `root` ([`IPV4_RENDER`] or [`IPV6_RENDER`], read by [`read_render`])
/// differs from calplan's prediction `render`, named `name` in locations; nothing when it
/// renders as predicted.
pub fn render_differences(name: &str, render: &str, live: &Live, root: &str) -> Vec<Difference> {
    let Some(text) = live.files.get(root) else { return Vec::new() };
    let wanted = bird_config::read(name, render, &BTreeMap::new());
    let found = bird_config::read(root, text, &live.files);
    compare_render(&wanted, &found, live)
}

fn compare_render(wanted: &BirdConfig, found: &BirdConfig, live: &Live) -> Vec<Difference> {
    let mut out = Vec::new();
    for problem in &found.problems {
        out.push(Difference::new("render", "bird.cfg").live(problem.text.clone(), Some(live_at(live, &problem.at))));
    }
    let items = |kind: &str, wanted: &BTreeMap<String, Item>, found: &BTreeMap<String, Item>, out: &mut Vec<Difference>| {
        for name in wanted.keys().chain(found.keys()).collect::<BTreeSet<_>>() {
            let subject = if kind.is_empty() { name.clone() } else { format!("{kind} {name}") };
            match (wanted.get(name), found.get(name)) {
                (Some(w), Some(f)) if w.text != f.text => out.push(
                    Difference::new("render", subject)
                        .expected(w.text.clone(), Some(&w.at))
                        .live(f.text.clone(), Some(live_at(live, &f.at))),
                ),
                (Some(w), None) => out.push(Difference::new("render", subject).expected(w.text.clone(), Some(&w.at))),
                (None, Some(f)) => out.push(Difference::new("render", subject).live(f.text.clone(), Some(live_at(live, &f.at)))),
                _ => {}
            }
        }
    };
    items("", &wanted.globals, &found.globals, &mut out);
    items("function", &wanted.functions, &found.functions, &mut out);
    items("filter", &wanted.filters, &found.filters, &mut out);
    blocks("template", &wanted.templates, &found.templates, live, &mut out);
    blocks("protocol", &wanted.protocols, &found.protocols, live, &mut out);
    out
}

fn blocks(kind: &str, wanted: &BTreeMap<String, Block>, found: &BTreeMap<String, Block>, live: &Live, out: &mut Vec<Difference>) {
    let header = |block: &Block| match &block.from {
        Some(from) => format!("{} from {from}", block.kind),
        None => block.kind.clone(),
    };
    for name in wanted.keys().chain(found.keys()).collect::<BTreeSet<_>>() {
        let subject = format!("{kind} {name}");
        match (wanted.get(name), found.get(name)) {
            (Some(w), None) => out.push(Difference::new("render", subject).expected(format!("{} {{ … }}", header(w)), Some(&w.at))),
            (None, Some(f)) => {
                out.push(Difference::new("render", subject).live(format!("{} {{ … }}", header(f)), Some(live_at(live, &f.at))))
            }
            (Some(w), Some(f)) => {
                if header(w) != header(f) {
                    out.push(
                        Difference::new("render", subject.clone())
                            .expected(header(w), Some(&w.at))
                            .live(header(f), Some(live_at(live, &f.at))),
                    );
                }
                for (option, at) in &w.options {
                    if !f.options.contains_key(option) {
                        out.push(
                            Difference::new("render", subject.clone())
                                .expected(format!("{option};"), Some(at))
                                .at(Some(live_at(live, &f.at))),
                        );
                    }
                }
                for (option, at) in &f.options {
                    if !w.options.contains_key(option) {
                        out.push(Difference::new("render", subject.clone()).live(format!("{option};"), Some(live_at(live, at))));
                    }
                }
            }
            (None, None) => {}
        }
    }
}

fn compare_sessions(expected: &[String], protocols: &Result<String, String>) -> Vec<Difference> {
    const READ: &str = "show protocols";
    let text = match protocols {
        Ok(text) => text,
        Err(error) => return vec![Difference::new("sessions", "BIRD").live(format!("cannot be asked: {error}"), Some(READ.into()))],
    };
    let rows = parse_protocols(text);
    let mut out = Vec::new();
    for name in expected {
        match rows.get(name) {
            Some(row) if row.is_established() => {}
            Some(row) => out.push(
                Difference::new("sessions", format!("session {name}"))
                    .expected("Established", None)
                    .live(format!("{} {}", row.state, row.info).trim().to_string(), Some(READ.into())),
            ),
            None => out.push(Difference::new("sessions", format!("session {name}")).expected("Established", None).at(Some(READ.into()))),
        }
    }
    for row in rows.values().filter(|row| row.protocol.eq_ignore_ascii_case("BGP") && !expected.contains(&row.name)) {
        out.push(
            Difference::new("sessions", format!("session {}", row.name))
                .live(format!("{} {}", row.state, row.info).trim().to_string(), Some(READ.into())),
        );
    }
    out
}

/// A render without the lines that name blocks of `pools` (the host's blocks in its static
/// protocol, `calico_aggr`'s lines and comments for them), which depend on where Calico's
/// IPAM placed the blocks. Lines that name a pool itself stay.
pub fn without_blocks_in(text: &str, pools: &[IpNet]) -> String {
    if pools.is_empty() {
        return text.to_string();
    }
    let names_block = |line: &str| {
        let line = line.trim();
        let named = if let Some(rest) = line.strip_prefix("route ") {
            rest.strip_suffix(" blackhole;").map(str::trim)
        } else if let Some(rest) = line.strip_prefix("# Block ") {
            rest.split_whitespace().next()
        } else if let Some(rest) = line.strip_prefix("if ( net = ").or_else(|| line.strip_prefix("if ( net ~ ")) {
            rest.split_whitespace().next()
        } else {
            None
        };
        named.and_then(|cidr| cidr.parse::<IpNet>().ok()).is_some_and(|cidr| calplan_model::ipam::is_block_in(&cidr, pools))
    };
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n').filter(|line| !names_block(line)) {
        out.push_str(line);
    }
    out
}

/// Routes in the normal form `--current` route dumps are read into.
fn normalise(text: &str) -> BTreeSet<String> {
    let read = calplan_plan::current::ip_routes::read(calplan_diagnostics::FileId(0), text);
    read.value.unwrap_or_default().into_iter().collect()
}

/// Whether a kernel route (in normal form) is one the `routes` artifact speaks for: BIRD's,
/// Felix's (protocol 80), calplan's pins (protocol `kernel` with a next hop, or a blackhole:
/// routes the kernel never makes), and anything else inside a pool except the routes to local
/// workloads and the kernel's own.
pub fn is_cluster_route(line: &str, pools: &[IpNet]) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    let protocol = words.windows(2).find(|pair| pair[0] == "proto").map(|pair| pair[1]);
    let device = words.windows(2).find(|pair| pair[0] == "dev").map(|pair| pair[1]);
    let destination = words.iter().find(|word| word.contains('/')).and_then(|word| word.parse::<IpNet>().ok());
    let pin = protocol == Some("kernel")
        && (words.iter().any(|word| matches!(*word, "via" | "nexthop"))
            || words.first().is_some_and(|kind| matches!(*kind, "blackhole" | "unreachable" | "prohibit")));
    let cluster_protocol = pin || matches!(protocol, Some("bird" | "80"));
    let in_pool = destination.is_some_and(|destination| pools.iter().any(|pool| pool.contains(&destination)));
    let workload = device.is_some_and(|device| device.starts_with("cali"));
    cluster_protocol || (in_pool && !workload && protocol != Some("kernel"))
}

fn compare_routes(expected: &Expected, routes: &Result<Vec<String>, String>) -> Vec<Difference> {
    const READ: &str = "ip route show";
    let dumps = match routes {
        Ok(dumps) => dumps,
        Err(error) => return vec![Difference::new("routes", "kernel routes").live(format!("cannot be read: {error}"), Some(READ.into()))],
    };
    let live: BTreeSet<String> =
        dumps.iter().flat_map(|dump| normalise(dump)).filter(|line| is_cluster_route(line, &expected.pools)).collect();
    let wanted = normalise(&expected.routes);
    let mut out = Vec::new();
    for route in wanted.difference(&live) {
        out.push(Difference::new("routes", "route").expected(route.clone(), None).at(Some(READ.into())));
    }
    for route in live.difference(&wanted) {
        out.push(Difference::new("routes", "route").live(route.clone(), Some(READ.into())));
    }
    out
}

/// Where a node's confd render is, and BIRD's socket, for this host: the inventory's
/// `confdConfig` and `birdSocket`, else calico-node's own places.
fn confd_dir(host: &Host) -> String {
    host.settings.confd_config.clone().unwrap_or_else(|| CONFD_CONFIG.to_string())
}

fn calico_socket(host: &Host) -> String {
    host.settings
        .bird_socket
        .clone()
        .unwrap_or_else(|| calplan_model::ownership::bird_sockets(calplan_model::NodeAgent::CalicoNode).0.to_string())
}

/// The file names a render includes, as its `include` statements name them.
fn includes(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("include") {
        let after = &rest[start + "include".len()..];
        let line_start = rest[..start].rfind('\n').map_or(0, |n| n + 1);
        let commented = rest[line_start..start].contains('#');
        if !commented
            && let Some(quoted) = after.trim_start().strip_prefix('"')
            && let Some(end) = quoted.find('"')
        {
            names.push(quoted[..end].to_string());
        }
        rest = after;
    }
    names
}

/// Reads one node through the transport (its IPv6 render too with `ipv6`).
pub fn read(transport: &Transport, host: &Host, ipv6: bool) -> Live {
    let roots: &[&str] = if ipv6 { &[IPV4_RENDER, IPV6_RENDER] } else { &[IPV4_RENDER] };
    match render_files(transport, host, roots) {
        (live, true) => read_state(transport, host, ipv6, live),
        (live, false) => live,
    }
}

/// Reads a node's render alone: `root` ([`IPV4_RENDER`] or [`IPV6_RENDER`]) and every file
/// that includes.
pub fn read_render(transport: &Transport, host: &Host, root: &str) -> Live {
    render_files(transport, host, &[root]).0
}

/// The render's files from `roots` on, and whether the transport answered (else nothing more
/// can be read).
fn render_files(transport: &Transport, host: &Host, roots: &[&str]) -> (Live, bool) {
    let directory = confd_dir(host);
    let mut live = Live { confd_dir: directory.clone(), ..Live::default() };
    let mut queue: Vec<String> = roots.iter().rev().map(|root| root.to_string()).collect();
    while let Some(name) = queue.pop() {
        if live.files.contains_key(&name) {
            continue;
        }
        // Only plain file names are followed: an include elsewhere is reported as unread.
        if !crate::transport::is_safe_word(&name) || name.starts_with('-') || name.contains('/') {
            continue;
        }
        let path = format!("{directory}/{name}");
        match transport.run(host, &["cat", "--", &path], None) {
            Ok(output) if output.success => {
                queue.extend(includes(&output.stdout));
                live.files.insert(name, output.stdout);
            }
            Ok(output) if name == IPV4_RENDER => live.render_error = Some(format!("`cat {path}`: {}", output.stderr.trim())),
            Ok(output) if name == IPV6_RENDER => live.render6_error = Some(format!("`cat {path}`: {}", output.stderr.trim())),
            Ok(_) => {}
            Err(error) => {
                live.render_error = Some(error);
                return (live, false);
            }
        }
    }
    (live, true)
}

/// BIRD's sessions and the kernel's routes, after the render.
fn read_state(transport: &Transport, host: &Host, ipv6: bool, mut live: Live) -> Live {
    // calico-node runs one BIRD per family; both are asked, and their tables read as one.
    let (_, default_ipv6) = calplan_model::ownership::bird_sockets(calplan_model::NodeAgent::CalicoNode);
    let mut sockets = vec![calico_socket(host)];
    if ipv6 && let Some(socket) = host.settings.bird6_socket.clone().or_else(|| default_ipv6.map(str::to_string)) {
        sockets.push(socket);
    }
    // The inventory's client; else calico-node ships `birdcl`, and a host with BIRD 1.x's own
    // client has `birdc`.
    let clients: Vec<String> = match &host.settings.bird_client {
        Some(client) => vec![client.clone()],
        None => vec!["birdcl".into(), "birdc".into()],
    };
    let mut tables = String::new();
    let mut failure = None;
    for socket in &sockets {
        let mut table = Err(String::new());
        for client in &clients {
            table = match transport.run(host, &[client, "-s", socket, "show", "protocols"], None) {
                Ok(output) if output.success && output.stdout.contains("name") => Ok(output.stdout),
                Ok(output) => Err(format!("`{client} -s {socket} show protocols`: {}{}", output.stderr.trim(), output.stdout.trim())),
                Err(error) => Err(error),
            };
            if table.is_ok() {
                break;
            }
        }
        match table {
            Ok(text) => tables.push_str(&text),
            Err(error) => {
                failure.get_or_insert(error);
            }
        }
    }
    live.protocols = Some(match failure {
        Some(error) => Err(error),
        None => Ok(tables),
    });
    let mut dumps = Vec::new();
    for family in ["-4", "-6"] {
        match transport.run(host, &["ip", "-j", family, "route", "show"], None) {
            Ok(output) if output.success => dumps.push(if output.stdout.trim().is_empty() { "[]".into() } else { output.stdout }),
            Ok(output) if family == "-4" => {
                live.routes = Some(Err(format!("`ip -j -4 route show`: {}", output.stderr.trim())));
                return live;
            }
            Ok(_) => {}
            Err(error) => {
                live.routes = Some(Err(error));
                return live;
            }
        }
    }
    live.routes = Some(Ok(dumps));
    live
}

/// A node's differences.
#[derive(Clone, Debug, Serialize)]
pub struct NodeReport {
    pub node: String,
    pub differences: Vec<Difference>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub intent: String,
    pub nodes: Vec<NodeReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Report {
    pub fn differences(&self) -> usize {
        self.nodes.iter().map(|node| node.differences.len()).sum()
    }

    pub fn human(&self) -> String {
        let mut out = format!("calplan verify: {} against {} nodes\n", self.intent, self.nodes.len());
        for node in &self.nodes {
            if node.differences.is_empty() {
                let _ = writeln!(out, "\n{}: as intended", node.node);
                continue;
            }
            let _ = writeln!(out, "\n{}: {}", node.node, plural(node.differences.len(), "difference"));
            for area in ["node", "render", "sessions", "routes"] {
                let of_area: Vec<&Difference> = node.differences.iter().filter(|difference| difference.area == area).collect();
                if of_area.is_empty() {
                    continue;
                }
                let _ = writeln!(out, "  {area}:");
                for difference in of_area {
                    let _ = writeln!(out, "    - {}", difference.describe());
                }
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "\nnote: {note}");
        }
        let drifted = self.nodes.iter().filter(|node| !node.differences.is_empty()).count();
        if drifted == 0 {
            let _ = writeln!(out, "\nResult: the cluster is as intended ({} nodes).", self.nodes.len());
        } else {
            let _ = writeln!(out, "\nResult: {} on {drifted} of {} nodes.", plural(self.differences(), "difference"), self.nodes.len());
        }
        out
    }

    pub fn json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&serde_json::json!({
            "intent": self.intent,
            "differences": self.differences(),
            "nodes": self.nodes.iter().map(|node| (node.node.clone(), &node.differences)).collect::<BTreeMap<_, _>>(),
            "notes": self.notes,
        }))
        .expect("reports serialize");
        text.push('\n');
        text
    }
}

fn plural(count: usize, word: &str) -> String {
    if count == 1 { format!("1 {word}") } else { format!("{count} {word}s") }
}

/// What the intent wants of each node: its `bird-calico.cfg` (and `bird6-calico.cfg`) and
/// `routes` compiled, and the sessions `calplan status` lists.
pub fn expectations(analysis: &calplan_model::Analysis, templates: &calplan_targets::Templates) -> Result<Vec<Expected>, String> {
    let selected: BTreeSet<String> = ["bird-calico", "routes"].into_iter().map(String::from).collect();
    let context = calplan_targets::Context { analysis, templates, node: None, sink: None };
    let output = calplan_targets::compile(&context, Some(&selected)).map_err(|error| format!("cannot render: {error}"))?;
    let pools: Vec<IpNet> = analysis.model.pools.iter().map(|pool| *pool.cidr).collect();
    let peerings = &analysis.peerings;
    let mut expected = Vec::new();
    for node in &analysis.model.nodes {
        let name = node.name.value.clone();
        let render_name = format!("nodes/{name}/bird-calico.cfg");
        let artifact = |path: &str| output.get(path).map(|artifact| artifact.contents.clone()).unwrap_or_default();
        let sessions = peerings
            .node_index(&name)
            .map(|index| peerings.for_node(index).iter().map(|peering| peering.protocol_name()).collect())
            .unwrap_or_default();
        let render6 = node.ipv6_address.as_ref().map(|_| {
            let name6 = format!("nodes/{name}/bird6-calico.cfg");
            let text = artifact(&name6);
            (name6, text)
        });
        expected.push(Expected {
            render: artifact(&render_name),
            render6,
            routes: artifact(&format!("nodes/{name}/routes")),
            render_name,
            node: name,
            sessions,
            pools: pools.clone(),
        });
    }
    Ok(expected)
}

/// Reads every node (at most `parallelism` at once) and compares it with the intent.
pub fn verify(intent: &str, expected: &[Expected], transport: &Transport, inventory: &Inventory, parallelism: usize) -> Report {
    let nodes = crate::fanout::fan_out(expected, parallelism, |wanted| {
        let host = inventory.host(&wanted.node);
        let live = read(transport, &host, wanted.render6.is_some());
        NodeReport { node: wanted.node.clone(), differences: compare(wanted, &live) }
    });
    Report { intent: intent.to_string(), nodes, notes: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDER: &str = "router id 10.0.0.1;\nprotocol static {\n  route 10.244.0.0/26 blackhole;\n}\n\
        function calico_aggr () {\n  if ( net = 10.244.0.0/26 ) then { accept; }\n}\n\
        template bgp bgp_template {\n  local as 64512;\n}\n\
        protocol bgp Mesh_10_0_0_2 from bgp_template {\n  neighbor 10.0.0.2 as 64512;\n  passive on;\n  password \"<Secret s key k>\";\n}\n";

    fn expected() -> Expected {
        Expected {
            node: "n1".into(),
            render_name: "nodes/n1/bird-calico.cfg".into(),
            render: RENDER.into(),
            render6: None,
            sessions: vec!["Mesh_10_0_0_2".into()],
            routes: "blackhole 10.244.0.0/26 proto bird\n10.244.0.64/26 via 10.0.0.2 dev eth0 proto bird\n".into(),
            pools: vec!["10.244.0.0/16".parse().unwrap()],
        }
    }

    fn live(render: &str, protocols: &str, routes: &str) -> Live {
        Live {
            files: BTreeMap::from([("bird.cfg".to_string(), render.to_string())]),
            render_error: None,
            render6_error: None,
            confd_dir: CONFD_CONFIG.into(),
            protocols: Some(Ok(protocols.into())),
            routes: Some(Ok(vec![routes.into()])),
        }
    }

    const UP: &str = "BIRD 1.6.8 ready.\nname     proto    table    state  since       info\nMesh_10_0_0_2 BGP      master   up     10:31:07    Established\n";
    const ROUTES: &str = r#"[{"type":"blackhole","dst":"10.244.0.0/26","protocol":"bird","flags":[]},{"dst":"10.244.0.64/26","gateway":"10.0.0.2","dev":"eth0","protocol":"bird","flags":[]},{"dst":"10.0.0.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"10.0.0.1","flags":[]}]"#;

    /// Calico's IPAM places a new pool's blocks: the render-loaded barrier compares renders
    /// without the lines naming them, and keeps those naming the pool, other pools' blocks,
    /// and static routes outside pools.
    #[test]
    fn block_lines_of_unplaced_pools_are_left_out() {
        let render = "protocol static {\n   # IP blocks for this host.\n   route 10.244.3.0/24 blackhole;\n   route 192.168.0.0/26 blackhole;\n   # Static routes.\n   route 10.96.0.0/12 blackhole;\n}\nfunction calico_aggr ()\n{\n      # Block 10.244.3.0/24 is confirmed\n      if ( net = 10.244.3.0/24 ) then { accept; }\n      if ( net ~ 10.244.3.0/24 ) then { reject; }\n}\nfilter f {\n  if ( net ~ 10.244.0.0/16 ) then { accept; }\n}\n";
        let pools = ["10.244.0.0/16".parse().unwrap()];
        assert_eq!(
            without_blocks_in(render, &pools),
            "protocol static {\n   # IP blocks for this host.\n   route 192.168.0.0/26 blackhole;\n   # Static routes.\n   route 10.96.0.0/12 blackhole;\n}\nfunction calico_aggr ()\n{\n}\nfilter f {\n  if ( net ~ 10.244.0.0/16 ) then { accept; }\n}\n"
        );
        assert_eq!(without_blocks_in(render, &[]), render);
    }

    /// A pin left behind is a cluster route verify reports; the kernel's own routes are not.
    #[test]
    fn pins_are_cluster_routes_and_kernel_routes_are_not() {
        let pools = ["10.244.0.0/16".parse().unwrap()];
        assert!(is_cluster_route("10.244.1.0/24 via 10.0.0.2 dev eth0 proto kernel", &pools));
        assert!(is_cluster_route("blackhole 10.244.0.0/24 proto kernel", &pools));
        assert!(is_cluster_route("10.245.0.0/16 proto kernel nexthop via 10.0.0.2 dev eth0 nexthop via 10.0.0.3 dev eth0", &pools));
        assert!(!is_cluster_route("10.244.9.0/24 dev eth0 proto kernel scope link src 10.244.9.1", &pools));
        assert!(!is_cluster_route("10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.1", &pools));
        assert!(is_cluster_route("10.244.200.0/24 dev eth0 proto 252", &pools));
    }

    /// A dual-stack node's `bird6.cfg` is compared with its IPv6 prediction, located in it.
    #[test]
    fn the_ipv6_render_is_compared_too() {
        const RENDER6: &str = "router id 10.0.0.1;\nprotocol static {\n  route fd00:10::/122 blackhole;\n}\n";
        let mut wanted = expected();
        wanted.render6 = Some(("nodes/n1/bird6-calico.cfg".into(), RENDER6.into()));
        let mut found = live(RENDER, UP, ROUTES);
        assert_eq!(
            compare(&wanted, &found).iter().map(Difference::describe).collect::<Vec<_>>(),
            [format!("{CONFD_CONFIG}: bird6.cfg: missing, expected `confd's IPv6 render`")]
        );
        found.files.insert("bird6.cfg".into(), RENDER6.into());
        assert!(compare(&wanted, &found).is_empty(), "{:?}", compare(&wanted, &found));
        found.files.insert("bird6.cfg".into(), RENDER6.replace("fd00:10::/122", "fd00:10::40/122"));
        let differences = compare(&wanted, &found);
        assert_eq!(differences.len(), 2, "the route expected, and the one found: {differences:?}");
        assert!(
            differences[0].location.as_deref().is_some_and(|at| at.starts_with(&format!("{CONFD_CONFIG}/bird6.cfg:"))),
            "{differences:?}"
        );
        assert_eq!(differences[0].expected_location.as_deref().map(|at| at.starts_with("nodes/n1/bird6-calico.cfg:")), Some(true));
    }

    #[test]
    fn a_node_as_intended_has_no_differences_even_with_another_password_and_comments() {
        let render = format!(
            "# Generated by confd\n{}",
            RENDER.replace("<Secret s key k>", "real-secret").replace("passive on;", "passive on; # mesh")
        );
        let differences = compare(&expected(), &live(&render, UP, ROUTES));
        assert!(differences.is_empty(), "{differences:#?}");
    }

    #[test]
    fn each_kind_of_drift_is_located() {
        let edited = RENDER
            .replace("  passive on;\n", "")
            .replace("route 10.244.0.0/26 blackhole;", "route 10.244.0.0/26 blackhole;\n  route 10.9.9.0/24 blackhole;");
        let down = UP.replace("up     10:31:07    Established", "start  10:31:07    Active        Socket: Connection refused");
        let routes = ROUTES.replace("10.244.0.64/26", "10.244.7.0/26");
        let differences = compare(&expected(), &live(&edited, &down, &routes));
        let text: Vec<String> = differences.iter().map(Difference::describe).collect();
        let has = |needle: &str| text.iter().any(|line| line.contains(needle));
        assert!(
            has("/etc/calico/confd/config/bird.cfg:4: protocol static1: not in the intent: `route 10.9.9.0/24 blackhole;`"),
            "{text:#?}"
        );
        assert!(
            has("bird.cfg:12: protocol Mesh_10_0_0_2: missing, expected `passive on;` (intent's render: nodes/n1/bird-calico.cfg:13)"),
            "{text:#?}"
        );
        assert!(has("session Mesh_10_0_0_2: expected `Established`, found `start Active Socket: Connection refused`"), "{text:#?}");
        assert!(has("route: missing, expected `10.244.0.64/26 via 10.0.0.2 proto bird`"), "{text:#?}");
        assert!(has("route: not in the intent: `10.244.7.0/26 via 10.0.0.2 proto bird`"), "{text:#?}");
        assert_eq!(differences.len(), 5, "{text:#?}");
        assert!(!format!("{differences:?}").contains("Secret"), "passwords are never shown");
    }

    #[test]
    fn includes_are_followed_by_name() {
        assert_eq!(
            includes("include \"bird_aggr.cfg\";\n# include \"no.cfg\";\ninclude \"bird_ipam.cfg\";"),
            ["bird_aggr.cfg", "bird_ipam.cfg"]
        );
    }
}
