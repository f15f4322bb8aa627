//! `calplan apply PLANFILE [--state DIR] [--calico calicoctl|kubectl|etcd://HOST:PORT]
//! [--transport local|ssh|netns|kubectl] [--observe sessions|node-status] [--parallelism N]
//! [--only calico|nodes|routers] [--auto-approve]`

use super::{CliError, CliResult};
use crate::apply::calico::Backend;
use crate::apply::state::StateDir;
use crate::apply::transport::{Inventory, Transport, TransportKind};
use crate::apply::{self, Executor, Observe, Only, Options, Progress, lock::Lock};
use crate::current;
use calplan_plan::plan::{Plan, Stage, Target};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A plan saved with `calplan plan -o`
    plan: PathBuf,
    /// Where the lock, the record of what was applied and the applied files live
    #[arg(long, default_value = ".calplan")]
    state: PathBuf,
    /// Where Calico resources go: `calicoctl`, `kubectl`, or etcd (`etcd` for the one calicoctl's
    /// configuration names, `etcd://HOST:PORT`, `etcds://HOST:PORT[,HOST:PORT…]`)
    #[arg(long)]
    calico: Option<String>,
    #[command(flatten)]
    calico_config: super::input::CalicoConfig,
    /// How node-side commands reach their hosts: on this machine, in a network namespace, over
    /// ssh, or with `kubectl exec` in the node's calico-node pod
    #[arg(long, value_parser = super::named::<TransportKind>(), default_value = "local")]
    transport: TransportKind,
    /// Apply only Calico resources, node files or router files; the rest stays pending
    #[arg(long, value_parser = super::named::<Only>())]
    only: Option<Only>,
    /// How barriers read sessions: from BIRD through the transport, or from CalicoNodeStatus
    /// resources through the Kubernetes API where exec is not allowed (at most 10 at a time,
    /// deleted afterwards; also with `--only calico`)
    #[arg(long, value_parser = super::named::<Observe>(), default_value = "sessions")]
    observe: Observe,
    /// Do not ask for confirmation on a terminal
    #[arg(long)]
    auto_approve: bool,
    /// How to reach each host (YAML: `defaults` and `hosts` with address, user, port, identity,
    /// knownHosts, netns, root, birdSocket, bird6Socket, birdClient, firewall, frrPathspace,
    /// platform, calicoNamespace; and per host thisMachine)
    #[arg(long)]
    inventory: Option<PathBuf>,
    /// BGP passwords, laid out as Kubernetes mounts a Secret: DIR/<secret>/<key>
    #[arg(long)]
    secrets: Option<PathBuf>,
    /// How long each barrier may take, in seconds
    #[arg(long, default_value_t = 300)]
    barrier_timeout: u64,
    /// How many hosts are worked on at once (loads, barrier reads, confirmations, rollbacks)
    #[arg(long, default_value_t = apply::fanout::DEFAULT_PARALLELISM as u64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    parallelism: u64,
}

pub fn run(args: Args) -> CliResult {
    let (name, text) = super::input::read_plan_text(&args.plan)?;
    let plan = super::show::read_plan(&args.plan)?;
    let plan_digest = calplan_plan::current::text_digest(&text);
    let _lock = Lock::acquire(&args.state, &apply::lock::describe_holder(&format!("`{name}`")))
        .map_err(|error| CliError::Message(error.to_string()))?;
    let state = StateDir::new(&args.state);
    state.read().map_err(CliError::Message)?;
    check_fresh(&plan, args.calico_config.path.as_deref())?;
    if plan.is_empty() {
        super::info("The plan has no changes: nothing to apply.");
        return Ok(ExitCode::SUCCESS);
    }
    let backend = match args.calico.as_deref() {
        None => None,
        Some("calicoctl") => Some(Backend::Calicoctl(std::env::var("CALPLAN_CALICOCTL").unwrap_or_else(|_| "calicoctl".into()))),
        Some("kubectl") => Some(Backend::Kubectl(std::env::var("CALPLAN_KUBECTL").unwrap_or_else(|_| "kubectl".into()))),
        Some(address) if current::is_etcd(address)? => {
            Some(Backend::Etcd(current::etcd_client(address, args.calico_config.path.as_deref())?))
        }
        Some(other) => {
            return Err(CliError::Message(format!(
                "`--calico {other}`: expected `calicoctl`, `kubectl`, `etcd`, `etcd://HOST:PORT` or `etcds://HOST:PORT[,HOST:PORT…]`"
            )));
        }
    };
    let needs_calico = plan.changes().any(|change| change.target == Target::Calico);
    if backend.is_none() && needs_calico && args.only.is_none_or(|only| only == Only::Calico) {
        return Err(CliError::Message(
            "the plan changes Calico resources: give `--calico etcd://HOST:PORT`, `--calico calicoctl` or `--calico kubectl`".into(),
        ));
    }
    let inventory = match &args.inventory {
        Some(path) => Inventory::read(path).map_err(CliError::Message)?,
        None => Inventory::default(),
    };
    let secrets = apply::secrets::for_plan(&plan, args.secrets.as_deref()).map_err(CliError::Message)?;
    if !args.auto_approve && std::io::stdin().is_terminal() && !approved(&plan)? {
        anstream::eprintln!("Apply cancelled.");
        return Err(CliError::Reported);
    }
    let options = Options {
        backend,
        transport: Transport::new(args.transport),
        inventory,
        only: args.only,
        secrets,
        barrier_timeout: Duration::from_secs(args.barrier_timeout),
        parallelism: args.parallelism as usize,
        observe: args.observe,
        abort_after_step: std::env::var("CALPLAN_TEST_ABORT_AFTER_STEP").ok().and_then(|n| n.parse().ok()),
    };
    let mut executor = Executor::new(&plan, plan_digest, options, state);
    if let Some(baseline) = applied_baseline(&plan, args.calico_config.path.as_deref())? {
        executor = executor.with_applied_baseline(baseline);
    }
    let mut progress = Reporter::new();
    let ended = executor.run(&mut progress);
    progress.finish();
    match ended {
        Ok(ended) => {
            super::info(&ended.summary(plan.stages.len(), args.only, &args.state));
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Err(CliError::Message(format!("apply stopped: {error}"))),
    }
}

/// Refuses a plan whose current state no longer matches, saying what changed. A source is
/// unchanged when its fingerprint is (every file's content, for a directory); otherwise each
/// difference is named: a resource or a file. A resource or file the plan itself writes may
/// already be as the plan wants it (an earlier, interrupted apply of this plan, recorded in the
/// state directory the plan was made against); the executor checks each of those against the
/// plan again when it writes it. `calico_config` is `--calico-config`, for etcd sources.
pub(crate) fn check_fresh(plan: &Plan, calico_config: Option<&Path>) -> Result<(), CliError> {
    let touched = apply::planned_digests(plan);
    let touched_files = apply::planned_file_digests(plan);
    let mut changed = Vec::new();
    if Path::new(&plan.intent.name).is_file()
        && let Ok((_, text)) = super::read_file_as(Path::new(&plan.intent.name), super::FileKinds::Regular)
        && calplan_plan::current::text_digest(&text) != plan.intent.sha256
    {
        changed.push(format!("the intent `{}` changed since the plan was made", plan.intent.name));
    }
    // As the intent: a regular file is read again (a pipe cannot be).
    if let Some(nodes) = &plan.nodes
        && Path::new(&nodes.name).is_file()
        && let Ok((_, text)) = super::read_file_as(Path::new(&nodes.name), super::FileKinds::Regular)
        && calplan_plan::current::text_digest(&text) != nodes.sha256
    {
        changed.push(format!("the node inventory `{}` (`--nodes`) changed since the plan was made", nodes.name));
    }
    for source in &plan.current {
        let loaded = match current::load_again(std::slice::from_ref(&source.name), calico_config) {
            Ok(loaded) => loaded,
            Err(CliError::Message(message)) => {
                return Err(CliError::Message(format!("stale plan: cannot read `{}` again: {message}", source.name)));
            }
            Err(CliError::Reported) => return Err(CliError::Reported),
        };
        let Some(now) = loaded.state.sources.first() else { continue };
        if now.sha256 == source.sha256 {
            continue;
        }
        // A source that no longer reads (a file edited in an output directory, so that it no
        // longer matches its manifest) is what `plan` would refuse too.
        if loaded.diagnostics.has_errors() {
            let problems: Vec<&str> = loaded
                .diagnostics
                .iter()
                .filter(|diagnostic| diagnostic.is_error())
                .map(|diagnostic| diagnostic.message.as_str())
                .collect();
            changed.push(format!("`{}` changed and no longer reads: {}", source.name, problems.join("; ")));
            continue;
        }
        let before = changed.len();
        let mut explained = false;
        let keys: BTreeSet<&String> = source.resources.keys().chain(now.resources.keys()).collect();
        for key in keys {
            let (then, current) = (source.resources.get(key), now.resources.get(key));
            if then == current {
                continue;
            }
            if let Some((_, after)) = touched.get(key)
                && current == after.as_ref()
            {
                explained = true;
                continue;
            }
            changed.push(match (then, current) {
                (None, Some(_)) => format!("{key} was created in `{}`", source.name),
                (Some(_), None) => format!("{key} was deleted from `{}`", source.name),
                _ => format!("{key} changed in `{}`", source.name),
            });
        }
        // Files are compared only where the plan recorded them; `calico/` files are judged by
        // the resources in them, above.
        if !source.files.is_empty() {
            let paths: BTreeSet<&String> = source.files.keys().chain(now.files.keys()).collect();
            for path in paths.into_iter().filter(|path| !path.starts_with("calico/")) {
                let (then, current) = (source.files.get(path), now.files.get(path));
                if then == current {
                    continue;
                }
                if touched_files.get(path.as_str()).is_some_and(|after| after.as_ref() == current) {
                    explained = true;
                    continue;
                }
                changed.push(match (then, current) {
                    (None, Some(_)) => format!("`{path}` was added to `{}`", source.name),
                    (Some(_), None) => format!("`{path}` was removed from `{}`", source.name),
                    _ => format!("`{path}` changed in `{}`", source.name),
                });
            }
        }
        if changed.len() == before && !explained {
            changed.push(format!("`{}` changed since the plan was made", source.name));
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    Err(CliError::Message(format!(
        "stale plan: the state it was made from has changed, so calplan will not apply it:\n  - {}\nplan again against the cluster as it stands",
        changed.join("\n  - ")
    )))
}

/// The node and router files of the applied directories the plan was made against (already
/// checked unchanged by [`check_fresh`]), or `None` when it was made against none.
fn applied_baseline(plan: &Plan, calico_config: Option<&Path>) -> Result<Option<BTreeMap<String, String>>, CliError> {
    let kind = calplan_plan::current::SourceKind::AppliedState.as_str();
    let mut baseline: Option<BTreeMap<String, String>> = None;
    for source in plan.current.iter().filter(|source| source.kind == kind) {
        let loaded = current::load_again(std::slice::from_ref(&source.name), calico_config)?;
        let files = loaded.state.applied.unwrap_or_default();
        baseline.get_or_insert_with(BTreeMap::new).extend(
            files
                .into_iter()
                .filter(|(path, _)| path.starts_with("nodes/") || path.starts_with("routers/"))
                .map(|(path, text)| (path, text.to_string())),
        );
    }
    Ok(baseline)
}

/// Asks on the terminal, after showing the plan as `show` does: computed from the content this
/// apply writes, never from text stored in the file.
fn approved(plan: &Plan) -> Result<bool, CliError> {
    anstream::eprint!("{}", calplan_plan::render::human(plan, super::stderr_color()));
    anstream::eprint!("Apply these {}? Only 'yes' will be accepted: ", calplan_plan::render::stages_phrase(plan.stages.len()));
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|error| CliError::Message(format!("cannot read the answer: {error}")))?;
    Ok(answer.trim() == "yes")
}

/// Apply's progress: a line per stage and step, the spinner saying what it waits for.
struct Reporter(super::Progress);

impl Reporter {
    fn new() -> Reporter {
        Reporter(super::Progress::new())
    }

    fn finish(&self) {
        self.0.finish();
    }
}

impl Progress for Reporter {
    fn stage(&mut self, stage: &Stage, total: usize) {
        self.0.line(&format!("stage {}/{total}: {}", stage.number, stage.title));
        self.0.status(&format!("stage {}/{total}: {}", stage.number, stage.title));
    }

    fn step(&mut self, text: &str) {
        self.0.line(&format!("  {text}"));
    }

    fn waiting(&mut self, text: &str) {
        self.0.line(&format!("  waiting: {text}"));
        self.0.status(&format!("waiting: {text}"));
    }

    fn done(&mut self, text: &str) {
        self.0.line(&format!("  {text}"));
    }
}
