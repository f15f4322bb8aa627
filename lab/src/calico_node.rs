//! The calico-node emulation of a calico-node lab: one process per lab (`calplan lab
//! calico-node --dir DIR`, started by `lab up`, ended by `lab down`) doing on every node what
//! calico-node's confd and Felix do, from the lab's etcd and nothing else.
//!
//! - confd: whenever the datastore changes (etcd's watch), it reads every Calico key at one
//!   revision, renders each node's BIRD configuration with calplan's own renderer for the
//!   intent's `calicoVersion` (`bird-calico.cfg`, the node's `calico-node` render), and for
//!   each node whose render changed writes it beside the old one, has BIRD 1.6 check it (`bird
//!   -p -c`, confd's check command), moves it into place and reconfigures that node's BIRD
//!   (`birdc configure` on calico-node's socket; confd's reload is `sv hup bird`, the same
//!   request). A render BIRD refuses is logged and the node keeps its configuration, as confd
//!   leaves it. Its log (`DIR/calico-node.log`) names each node it re-rendered after which
//!   revision.
//! - Felix: the VXLAN neighbours, FDB entries and routes of `nodes/<node>/routes` (protocol
//!   80), and NAT outgoing for the `natOutgoing` pools, from the same revision.
//!
//! confd's file (`etc/calico/confd/config/bird.cfg` in the node's directory) is the render as
//! confd writes it, a BGP password's placeholder `<Secret NAME key KEY>` filled with the lab's
//! value for that Secret as confd reads the Secret's value; so `calplan verify` reads it as it
//! reads a cluster's. Stock BIRD 1.6 runs a copy beside it (`bird-running.cfg`) with the one
//! statement it does not know, the fork-only `krt_tunnel = "…";`, made `print "krt_tunnel";`
//! (SPEC §8's one substitution).

use crate::topology::{Layout, NodeHost};
use crate::{daemons, felix, frr, in_namespace, parallel};
use calplan_apply::etcd::Client;
use calplan_model::ipam::ObservedIpam;
use calplan_model::{Analysis, Model};
use calplan_plan::current::etcd_layout;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Where the emulation says how far it got: the last revision it rendered, as JSON.
pub const STATUS_FILE: &str = "calico-node.json";
/// Its log and pid file, in the lab's directory.
pub const LOG_FILE: &str = "calico-node.log";
pub const PID_FILE: &str = "calico-node.pid";

/// How long the emulation waits for more changes after one before it renders (confd batches
/// what arrives together the same way), and at most.
const QUIET: Duration = Duration::from_millis(40);
const BATCH_AT_MOST: Duration = Duration::from_millis(400);

/// The one substitution SPEC §8 permits for stock BIRD 1.6: Calico's fork's
/// `krt_tunnel = "…";` (BIRD-programmed IPIP routes) becomes the no-op `print "krt_tunnel";`.
pub fn without_krt_tunnel(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("krt_tunnel = \"") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "krt_tunnel = \"".len()..];
        match after.find("\";") {
            Some(end) => {
                out.push_str("print \"krt_tunnel\";");
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Fills each `password "<Secret NAME key KEY>";` placeholder with the lab's value for that
/// Secret (the one the emulated peers use), as confd fills it with the Secret's value.
pub fn with_lab_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("\"<Secret ") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find(">\"") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let inner = &after["<Secret ".len()..end];
        match inner.split_once(" key ") {
            Some((name, key)) => {
                let secret = calplan_calico::resources::SecretKeyRef { name: name.to_string(), key: key.to_string(), optional: None };
                out.push_str(&format!("\"{}\"", frr::lab_password(&secret)));
            }
            None => out.push_str(&rest[start..start + end + 3]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// What stock BIRD 1.6 runs for a render of calplan's: [`without_krt_tunnel`], then
/// [`with_lab_passwords`].
pub fn for_bird16(render: &str) -> String {
    with_lab_passwords(&without_krt_tunnel(render))
}

/// One revision of the datastore, rendered for every node it has.
pub struct Rendered {
    pub revision: i64,
    /// Per node: BIRD's configuration for IPv4, as confd writes it (passwords filled).
    pub bird: BTreeMap<String, String>,
    /// Per node: for IPv6 (nodes with an IPv6 render).
    pub bird6: BTreeMap<String, String>,
    /// Per node: `nodes/<node>/routes`, for Felix's part.
    pub routes: BTreeMap<String, String>,
    /// Felix's NAT outgoing ruleset, if any pool has `natOutgoing`.
    pub nat: Option<String>,
    /// What did not resolve (a resource the model could not take).
    pub problems: Vec<String>,
}

/// The model and analysis of what a datastore holds, with `base` for what Calico resources do
/// not say (the intent's release, routers, interfaces): what confd sees, and what a plan made
/// with `--current etcd://…` predicts from.
pub fn analyse(base: &Model, snapshot: &etcd_layout::Snapshot) -> Result<(Analysis, Vec<String>), String> {
    let read = etcd_layout::read(calplan_diagnostics::FileId(0), snapshot);
    let Some(state) = read.value else {
        let messages: Vec<String> = read.diagnostics.iter().map(|diagnostic| diagnostic.message.clone()).collect();
        return Err(format!("the datastore holds what calplan cannot read: {}", messages.join("; ")));
    };
    let (model, problems) = calplan_model::from_resources::from_resources(&state.resources, base);
    let pools = state.resources.pools().filter_map(|pool| pool.spec.cidr.parse().ok()).collect();
    let observed = ObservedIpam { affinities: state.affinities, pools };
    Ok((Analysis::new(model, Some(&observed)), problems))
}

/// Renders every node of a datastore snapshot.
pub fn render(base: &Model, snapshot: &etcd_layout::Snapshot) -> Result<Rendered, String> {
    let (analysis, problems) = analyse(base, snapshot)?;
    let templates = calplan_targets::Templates::builtin();
    let context = calplan_targets::Context { analysis: &analysis, templates: &templates, node: None, sink: None };
    let selected: BTreeSet<String> = ["bird-calico", "bird6-calico", "routes"].iter().map(|name| name.to_string()).collect();
    let output = calplan_targets::compile(&context, Some(&selected)).map_err(|error| format!("cannot render: {error}"))?;
    let mut rendered = Rendered {
        revision: snapshot.revision,
        bird: BTreeMap::new(),
        bird6: BTreeMap::new(),
        routes: BTreeMap::new(),
        nat: None,
        problems,
    };
    for (_, artifact) in &output.artifacts {
        let Some(rest) = artifact.path.strip_prefix("nodes/") else { continue };
        let Some((node, file)) = rest.split_once('/') else { continue };
        match file {
            "bird-calico.cfg" => {
                rendered.bird.insert(node.to_string(), with_lab_passwords(&artifact.contents));
            }
            "bird6-calico.cfg" => {
                rendered.bird6.insert(node.to_string(), with_lab_passwords(&artifact.contents));
            }
            "routes" => {
                rendered.routes.insert(node.to_string(), artifact.contents.clone());
            }
            _ => {}
        }
    }
    let pools: Vec<ipnet::IpNet> = analysis.model.pools.iter().map(|pool| *pool.cidr).collect();
    let nat_pools: Vec<ipnet::IpNet> = analysis.model.pools.iter().filter(|pool| *pool.nat_outgoing).map(|pool| *pool.cidr).collect();
    rendered.nat = felix::nat_ruleset(&nat_pools, &pools);
    Ok(rendered)
}

/// What the emulation last did on each node, so that only changes are written.
#[derive(Default)]
struct Applied {
    bird: BTreeMap<(String, bool), String>,
    routes: BTreeMap<String, String>,
    nat: BTreeMap<String, Option<String>>,
}

/// The emulation's main loop: renders the datastore as it is now, then again after every
/// change etcd reports, until the process is ended (by `lab down`).
pub fn serve(layout: &Layout, base: &Model) -> Result<(), String> {
    let client = crate::datastore::client(layout)?;
    let port = layout.etcd.as_ref().map(|etcd| etcd.client_port).ok_or("the lab has no etcd")?;
    let mut applied = Applied::default();
    let (sender, receiver) = std::sync::mpsc::channel::<i64>();
    let mut watching = false;
    let mut pending_since: Option<Instant> = None;
    loop {
        let started = pending_since.take().unwrap_or_else(Instant::now);
        let snapshot = match client.calico_snapshot() {
            Ok(snapshot) => snapshot,
            Err(error) => {
                log(&format!("cannot read the datastore: {error}"));
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        pass(layout, base, &snapshot, &mut applied, started);
        if !watching {
            let sender = sender.clone();
            let from = snapshot.revision + 1;
            std::thread::spawn(move || crate::watch::watch(port, from, sender));
            watching = true;
        }
        // Wait for a change newer than what was rendered, then for the burst to end.
        let mut newest = match receiver.recv() {
            Ok(revision) => revision,
            Err(_) => return Err("the watch on the lab's etcd ended".into()),
        };
        pending_since = Some(Instant::now());
        let batch_start = Instant::now();
        while batch_start.elapsed() < BATCH_AT_MOST {
            match receiver.recv_timeout(QUIET) {
                Ok(revision) => newest = newest.max(revision),
                Err(_) => break,
            }
        }
        if newest <= snapshot.revision {
            pending_since = None;
        }
    }
}

fn log(line: &str) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "[{now:.3}] {line}");
    let _ = out.flush();
}

/// One render of the datastore at one revision, and what follows from it on the nodes.
fn pass(layout: &Layout, base: &Model, snapshot: &etcd_layout::Snapshot, applied: &mut Applied, started: Instant) {
    let revision = snapshot.revision;
    let rendered = match render(base, snapshot) {
        Ok(rendered) => rendered,
        Err(error) => {
            log(&format!("revision {revision}: {error}"));
            return;
        }
    };
    for problem in &rendered.problems {
        log(&format!("revision {revision}: {problem}"));
    }
    // confd's part, node by node.
    let mut work: Vec<(&NodeHost, bool, &String)> = Vec::new();
    for node in &layout.nodes {
        if let Some(text) = rendered.bird.get(&node.name) {
            work.push((node, false, text));
        }
        if daemons::runs_bird6(node)
            && let Some(text) = rendered.bird6.get(&node.name)
        {
            work.push((node, true, text));
        }
    }
    work.retain(|(node, ipv6, text)| applied.bird.get(&(node.name.clone(), *ipv6)) != Some(*text));
    let results = parallel(&work, |(node, ipv6, text)| reconfigure(layout, node, *ipv6, text));
    let mut reconfigured = 0;
    for ((node, ipv6, text), result) in work.iter().zip(results) {
        let file = if *ipv6 { "bird6.cfg" } else { "bird.cfg" };
        match result {
            Ok(()) => {
                reconfigured += 1;
                applied.bird.insert((node.name.clone(), *ipv6), (*text).clone());
                log(&format!("revision {revision}: re-rendered {file} for {}; BIRD reconfigured", node.name));
            }
            Err(error) => log(&format!("revision {revision}: {file} for {}: {error}; the node keeps its configuration", node.name)),
        }
    }
    // Felix's part.
    let felix_nodes: Vec<&NodeHost> = layout
        .nodes
        .iter()
        .filter(|node| {
            let routes = rendered.routes.get(&node.name).cloned().unwrap_or_default();
            let concerned = !node.vteps.is_empty() || routes.contains(" proto 80") || applied.routes.contains_key(&node.name);
            concerned && applied.routes.get(&node.name) != Some(&routes)
        })
        .collect();
    for (node, result) in felix_nodes
        .iter()
        .zip(parallel(&felix_nodes, |node| felix::sync_node(layout, node, rendered.routes.get(&node.name).map_or("", String::as_str))))
    {
        match result {
            Ok(()) => {
                applied.routes.insert(node.name.clone(), rendered.routes.get(&node.name).cloned().unwrap_or_default());
            }
            Err(error) => log(&format!("revision {revision}: Felix's routes on {}: {error}", node.name)),
        }
    }
    let nat_nodes: Vec<&NodeHost> = layout.nodes.iter().filter(|node| applied.nat.get(&node.name) != Some(&rendered.nat)).collect();
    for (node, result) in nat_nodes.iter().zip(parallel(&nat_nodes, |node| load_nat(node, rendered.nat.as_deref()))) {
        match result {
            Ok(()) => {
                applied.nat.insert(node.name.clone(), rendered.nat.clone());
            }
            Err(error) => log(&format!("revision {revision}: Felix's NAT on {}: {error}", node.name)),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    log(&format!(
        "revision {revision}: {reconfigured} of {} renders changed and loaded, Felix updated {} nodes, in {seconds:.3}s",
        work.len(),
        felix_nodes.len()
    ));
    let status = serde_json::json!({ "revision": revision, "reconfigured": reconfigured, "seconds": seconds });
    let _ = calplan_apply::state::write_atomically(&layout.dir.join(STATUS_FILE), format!("{status}\n").as_bytes(), 0o644);
}

/// confd's steps for one render: the new file beside the old, checked by BIRD 1.6, moved into
/// place, BIRD told to reconfigure. `text` is confd's file; BIRD 1.6 checks and runs its copy
/// without the fork-only statement.
fn reconfigure(layout: &Layout, node: &NodeHost, ipv6: bool, text: &str) -> Result<(), String> {
    let (path, running) = (daemons::render_path(node, ipv6), daemons::running_path(node, ipv6));
    let staged = running.with_extension("cfg.confd");
    std::fs::write(&staged, without_krt_tunnel(text)).map_err(|error| format!("cannot write `{}`: {error}", staged.display()))?;
    let bird16 = layout.bird16.as_deref().ok_or("the lab has no BIRD 1.6")?;
    let program = bird16.join(if ipv6 { "bird6" } else { "bird" });
    let staged_text = staged.display().to_string();
    if let Err(error) = crate::run(&program.display().to_string(), &["-p", "-c", &staged_text], None) {
        let _ = std::fs::remove_file(&staged);
        return Err(format!("BIRD 1.6 refuses the render: {error}"));
    }
    calplan_apply::state::write_atomically(&path, text.as_bytes(), 0o644)?;
    std::fs::rename(&staged, &running).map_err(|error| format!("cannot move `{staged_text}` into place: {error}"))?;
    let socket = if ipv6 { daemons::bird6_socket(node) } else { daemons::bird_socket(layout, node) };
    let client = daemons::bird16_client(layout)?;
    let output = crate::run(&client.display().to_string(), &["-v", "-s", &socket.display().to_string(), "configure"], None)?;
    let replies = calplan_apply::hosts::parse_bird_replies(&output);
    if let Some(error) = replies.iter().find(|reply| reply.code >= 8000) {
        return Err(format!("BIRD refused to reconfigure: {}", error.text));
    }
    if !replies.iter().any(|reply| matches!(reply.code, 3..=5)) {
        return Err(format!("BIRD did not reconfigure: {}", output.trim()));
    }
    Ok(())
}

/// Felix's NAT outgoing on a node: the emulated table, replaced whole, or removed when no pool
/// has `natOutgoing` any more.
fn load_nat(node: &NodeHost, ruleset: Option<&str>) -> Result<(), String> {
    match ruleset {
        Some(rules) => in_namespace(&node.namespace, "nft", &["-f", "-"], Some(rules)).map(drop),
        None => {
            let _ = in_namespace(&node.namespace, "nft", &["delete", "table", "inet", felix::NAT_TABLE], None);
            Ok(())
        }
    }
}

/// Starts the emulation for a lab (its own process, in this machine's network namespace, so
/// that it reaches the lab's etcd on loopback) and waits for its first pass.
pub fn start(layout: &Layout) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|error| format!("cannot find calplan's own binary: {error}"))?;
    let dir = layout.dir.display().to_string();
    let _ = std::fs::remove_file(layout.dir.join(STATUS_FILE));
    let pid =
        daemons::spawn_detached_here(&exe, &["lab", "calico-node", "--dir", &dir], &layout.dir.join(LOG_FILE), &layout.dir.join(PID_FILE))?;
    let status = layout.dir.join(STATUS_FILE);
    daemons::wait_until(Duration::from_secs(30), "the calico-node emulation has not rendered", || {
        status.exists() || !daemons::is_running(pid)
    })?;
    if !daemons::is_running(pid) {
        let log = std::fs::read_to_string(layout.dir.join(LOG_FILE)).unwrap_or_default();
        return Err(format!("the calico-node emulation stopped: {}", log.lines().rev().take(5).collect::<Vec<_>>().join("\n")));
    }
    Ok(())
}

/// The last revision the emulation rendered (and loaded), from its status file.
pub fn rendered_revision(dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join(STATUS_FILE)).ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?["revision"].as_i64()
}

/// Waits until the emulation has rendered the datastore at `revision` or later.
pub fn wait_rendered(dir: &Path, revision: i64, within: Duration) -> Result<(), String> {
    daemons::wait_until(within, &format!("the calico-node emulation has not rendered revision {revision}"), || {
        rendered_revision(dir).is_some_and(|done| done >= revision)
    })
}

/// The datastore's revision now (read on a range that holds no key, which costs nothing).
pub fn latest_revision(client: &Client) -> Result<i64, String> {
    client.range_prefix("/calplan-lab/revision/", None).map(|range| range.revision).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_become_what_stock_bird_1_6_runs() {
        let render = "filter f {\n  krt_tunnel = \"tunl0\";\n  accept;\n}\nprotocol bgp x {\n  password \"<Secret bgp-secrets key rr-password>\";\n}\n";
        let text = for_bird16(render);
        assert!(text.contains("print \"krt_tunnel\";"), "{text}");
        assert!(text.contains("password \"lab-bgp-secrets-rr-password\";"), "{text}");
        assert!(!text.contains("<Secret"), "{text}");
        assert_eq!(for_bird16("no placeholders\n"), "no placeholders\n");
    }
}
