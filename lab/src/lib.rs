//! `lab`: the intent's cluster built on this machine — a network namespace per node, router,
//! external peer and emulated pod, bridges for the L2 segments, an underlay fabric and an
//! outside host — running the real daemons (on the nodes BIRD 2, or in calico-node mode BIRD
//! 1.6 on confd's render of the lab's own etcd; FRR for BGP routers and peers), with the
//! compiled artifacts loaded through apply's executor over the `netns` transport. `verify` compares what runs with what the intent promises; `apply` carries out a
//! plan while probing continuously and reports loss per stage; `down` removes it all.
//!
//! It must not touch the host's own network: every link is created inside a lab namespace, and
//! the only host-level objects are namespace names carrying the lab's prefix. It ends only
//! processes running inside its own namespaces (or named by its own pid files and still in
//! them), never by a search for a program's name.
//!
//! ```text
//! DIR/lab.json            the layout (topology.rs), written before anything is created
//! DIR/hosts/<host>/       per node, router and peer: the files apply writes, BIRD's socket,
//!                         the peers' FRR sockets, pid files and logs (a calico-node node as
//!                         calico-node lays a host out: etc/calico/confd/config/bird{,6}.cfg,
//!                         var/run/calico/bird{,6}.ctl, calplan's pins in etc/calplan;
//!                         bird{,6}-running.cfg, the copy BIRD 1.6 runs)
//! DIR/etcd/               calico-node mode: the lab's etcd (data, log, pid file)
//! DIR/calico-node.{log,pid,json}  the calico-node emulation: what it rendered after which
//!                         revision, its pid, the last revision it loaded
//! DIR/intent.yaml         calico-node mode: the intent the lab was brought up from
//! DIR/inventory.json     how apply's netns transport reaches every node and router (as
//!                         `--inventory` reads it: `calplan verify --transport netns`)
//! /var/run/frr/<namespace>/  a router's FRR (zebra runs as FRR's user, which may not reach
//!                         DIR): its path space, as `vtysh -N` and `frr-reload.py` find it
//! DIR/listeners/         the listeners in the pods and the outside host: pid files, logs
//! DIR/state/              apply's state directory: lock, state.json and applied/ (with the
//!                         Calico resources the record backend keeps)
//! DIR/bring-up*.plan      the plans `up` applied (calico-node mode: the datastore, then
//!                         calico-node's render)
//! DIR/probes/             `lab apply`'s ping logs
//! ```

pub mod calico_node;
pub mod daemons;
pub mod datastore;
pub mod down;
pub mod felix;
pub mod frr;
pub mod plans;
pub mod pods;
pub mod preflight;
pub mod probe;
pub mod run;
pub mod topology;
pub mod up;
pub mod verify;
pub mod watch;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use topology::Layout;

/// The layout file in the lab's directory.
pub const LAYOUT_FILE: &str = "lab.json";

/// `.calplan-lab/<intent name>`, relative to the working directory.
pub fn default_dir(name: &str) -> PathBuf {
    Path::new(".calplan-lab").join(name)
}

/// The directory as an absolute path without `..`, so that the prefix (a hash of it) is the
/// same however it was named, and so that every path calplan builds under it is one apply's
/// transport accepts.
pub fn absolute_dir(dir: &Path) -> Result<PathBuf, String> {
    let absolute = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir().map_err(|error| format!("cannot read the working directory: {error}"))?.join(dir)
    };
    let mut clean = PathBuf::new();
    for component in absolute.components() {
        match component {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::CurDir => {}
            other => clean.push(other),
        }
    }
    // A directory that exists is named by its real path (no symbolic links in between).
    let clean = std::fs::canonicalize(&clean).unwrap_or(clean);
    let text = clean.display().to_string();
    if !text.split('/').all(|part| part.is_empty() || calplan_apply::transport::is_safe_word(part)) {
        return Err(format!("the lab directory `{text}` must be a path of plain names (letters, digits, `.`, `_`, `-`)"));
    }
    Ok(clean)
}

pub fn read_layout(dir: &Path) -> Result<Layout, String> {
    let path = dir.join(LAYOUT_FILE);
    let text = std::fs::read_to_string(&path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => format!("no lab in `{}`: bring one up with `calplan lab up INTENT`", dir.display()),
        _ => format!("cannot read `{}`: {error}", path.display()),
    })?;
    serde_json::from_str(&text).map_err(|error| format!("`{}` is not a calplan lab layout: {error}", path.display()))
}

pub fn write_layout(layout: &Layout) -> Result<(), String> {
    let mut text = serde_json::to_string_pretty(layout).expect("layouts serialize");
    text.push('\n');
    calplan_apply::state::write_atomically(&layout.dir.join(LAYOUT_FILE), text.as_bytes(), 0o644)
}

/// Compiles every target for an analysis, as `compile` would.
pub fn compile(analysis: &calplan_model::Analysis) -> Result<calplan_targets::Output, String> {
    let templates = calplan_targets::Templates::builtin();
    let context = calplan_targets::Context { analysis, templates: &templates, node: None, sink: None };
    calplan_targets::compile(&context, None).map_err(|error| format!("cannot render the artifacts: {error}"))
}

/// Runs a program to completion, feeding `stdin`; its standard output, or an error naming the
/// whole command.
pub(crate) fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let describe = || std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run `{program}`: {error}"))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped");
        pipe.write_all(input.as_bytes()).map_err(|error| format!("cannot feed `{}`: {error}", describe()))?;
    }
    let output = child.wait_with_output().map_err(|error| format!("`{}`: {error}", describe()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let detail = if stderr.trim().is_empty() { stdout.trim() } else { stderr.trim() };
        Err(format!("`{}` failed ({}): {detail}", describe(), output.status))
    }
}

/// `nsenter`'s arguments that run a program in a named namespace. Unlike `ip netns exec` it
/// makes no mount namespace (nothing here needs the namespace's own `/sys`): with hundreds of
/// namespaces, each mount namespace `ip netns exec` makes and tears down costs tens to hundreds
/// of milliseconds when many run at once.
pub(crate) fn enter(namespace: &str) -> String {
    format!("--net=/run/netns/{namespace}")
}

/// Runs a program inside a namespace (`nsenter` execs it).
pub(crate) fn in_namespace(namespace: &str, program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let net = enter(namespace);
    let mut all = vec![net.as_str(), program];
    all.extend_from_slice(args);
    run("nsenter", &all, stdin)
}

/// `ip [-n NAMESPACE] -batch -` with these lines: one process for many changes. The lines are
/// built from validated names and parsed addresses only.
pub(crate) fn ip_batch(namespace: Option<&str>, lines: &[String]) -> Result<(), String> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut input = lines.join("\n");
    input.push('\n');
    let result = match namespace {
        Some(namespace) => run("ip", &["-n", namespace, "-batch", "-"], Some(&input)),
        None => run("ip", &["-batch", "-"], Some(&input)),
    };
    result.map(|_| ()).map_err(|error| format!("{error}\nbatch:\n{input}"))
}

/// Runs `work` on every item with a few threads (the work is mostly waiting on processes),
/// results in the items' order.
pub(crate) fn parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(4, |count| count.get() * 4).clamp(4, 16);
    calplan_apply::fanout::fan_out(items, workers, work)
}
