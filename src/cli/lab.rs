//! `calplan lab up|verify|apply|down`: the intent's cluster in network namespaces on this
//! machine, with the real daemons (SPEC §7). Root only.
//!
//! ```text
//! calplan lab up     INTENT   [--dir DIR] [--node-agent calico-node|bird] [--barrier-timeout SECONDS]
//! calplan lab verify INTENT   [--dir DIR] [--timeout SECONDS]
//! calplan lab apply  PLANFILE [--dir DIR] [--all-at-once] [--allow-loss] [--barrier-timeout SECONDS]
//! calplan lab down   INTENT   [--dir DIR]
//! ```
//!
//! The lab lives in `DIR`, by default `.calplan-lab/<intent name>`; `lab apply` finds it from
//! the plan's current state (`--current DIR/state/applied`) when `--dir` is not given. Its
//! nodes are run by calico-node (BIRD 1.6 on confd's render of the lab's etcd) or by calplan's
//! BIRD 2, as `--node-agent` or else the intent's `spec.nodeAgent` says; `verify`, `apply` and
//! `down` follow what the lab was brought up with. `calplan lab calico-node --dir DIR` (hidden)
//! is the lab's calico-node emulation, which `up` starts and `down` ends.

use super::{CliError, CliResult, input};
use crate::lab;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: LabCommand,
}

#[derive(clap::Subcommand, Debug)]
enum LabCommand {
    /// Build the intent's cluster in namespaces and load its artifacts through apply
    Up {
        intent: PathBuf,
        /// The lab's directory (default `.calplan-lab/<intent name>`)
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Who runs the nodes: calico-node (BIRD 1.6 on confd's render of the lab's etcd, as
        /// Calico runs them) or bird (calplan's BIRD 2); default the intent's `spec.nodeAgent`
        #[arg(long, value_enum)]
        node_agent: Option<AgentArg>,
        /// How long the sessions may take to come up, in seconds
        #[arg(long, default_value_t = 120)]
        barrier_timeout: u64,
    },
    /// Check sessions, routes, reachability, NAT and external peers against the intent
    Verify {
        intent: PathBuf,
        #[arg(long)]
        dir: Option<PathBuf>,
        /// How long the lab may take to converge, in seconds
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Apply a saved plan to the lab while probing, and report loss per stage
    Apply {
        plan: PathBuf,
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Apply the plan's changes as one stage without route pins: the unsafe order, to see
        /// what the staging prevents
        #[arg(long)]
        all_at_once: bool,
        /// Exit 0 even when packets were lost
        #[arg(long)]
        allow_loss: bool,
        #[arg(long, default_value_t = 120)]
        barrier_timeout: u64,
        /// How many hosts apply works on at once
        #[arg(long, default_value_t = calplan_apply::fanout::DEFAULT_PARALLELISM as u64, value_parser = clap::value_parser!(u64).range(1..=4096))]
        parallelism: u64,
    },
    /// Remove everything the lab created
    Down {
        intent: PathBuf,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The lab's calico-node emulation (confd and Felix from the lab's etcd); `lab up` starts it
    #[command(hide = true)]
    CalicoNode {
        #[arg(long)]
        dir: PathBuf,
    },
}

/// `--node-agent`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum AgentArg {
    #[value(name = "calico-node")]
    CalicoNode,
    Bird,
}

impl From<AgentArg> for calplan_model::NodeAgent {
    fn from(agent: AgentArg) -> Self {
        match agent {
            AgentArg::CalicoNode => calplan_model::NodeAgent::CalicoNode,
            AgentArg::Bird => calplan_model::NodeAgent::Bird,
        }
    }
}

fn message(error: String) -> CliError {
    CliError::Message(error)
}

/// The lab's directory: `--dir`, or the default for the intent's name.
fn lab_dir(dir: Option<&Path>, name: &str) -> Result<PathBuf, CliError> {
    let dir = dir.map_or_else(|| lab::default_dir(name), Path::to_path_buf);
    lab::absolute_dir(&dir).map_err(message)
}

/// The intent's name, even from an intent with errors (`down` must work whatever it holds).
fn intent_name(path: &Path) -> Result<String, CliError> {
    let (name, text) = input::read_text(path)?;
    let checked = crate::pipeline::check(&name, text, None);
    // The name becomes a directory under `.calplan-lab/`: only a valid one (no `/`, no `..`).
    checked
        .analysis
        .map(|analysis| analysis.model.name.value.clone())
        .filter(|cluster| calplan_model::lower::is_dns_subdomain(cluster))
        .ok_or_else(|| CliError::Message(format!("`{name}` is not an intent calplan can read; give `--dir`")))
}

pub fn run(args: Args) -> CliResult {
    match args.command {
        LabCommand::Up { intent, dir, node_agent, barrier_timeout } => {
            up(&intent, dir.as_deref(), node_agent.map(Into::into), Duration::from_secs(barrier_timeout))
        }
        LabCommand::Verify { intent, dir, timeout } => verify(&intent, dir.as_deref(), Duration::from_secs(timeout)),
        LabCommand::Apply { plan, dir, all_at_once, allow_loss, barrier_timeout, parallelism } => {
            apply(&plan, dir.as_deref(), all_at_once, allow_loss, Duration::from_secs(barrier_timeout), parallelism as usize)
        }
        LabCommand::Down { intent, dir } => down(&intent, dir.as_deref()),
        LabCommand::CalicoNode { dir } => calico_node(&dir),
    }
}

/// The lab's calico-node emulation: until it is ended.
fn calico_node(dir: &Path) -> CliResult {
    let dir = lab::absolute_dir(dir).map_err(message)?;
    let layout = lab::read_layout(&dir).map_err(message)?;
    let copy = dir.join(lab::up::INTENT_COPY);
    let text = std::fs::read_to_string(&copy).map_err(|error| message(format!("cannot read `{}`: {error}", copy.display())))?;
    let checked = crate::pipeline::check(&copy.display().to_string(), text, None);
    let Some(analysis) = checked.valid() else {
        return Err(message(format!("`{}` is no longer a valid intent", copy.display())));
    };
    lab::calico_node::serve(&layout, &analysis.model).map_err(message)?;
    Ok(ExitCode::SUCCESS)
}

fn up(intent: &Path, dir: Option<&Path>, node_agent: Option<calplan_model::NodeAgent>, barrier_timeout: Duration) -> CliResult {
    let (name, text) = input::read_text(intent)?;
    let fingerprint = calplan_plan::plan::Fingerprint { name: name.clone(), sha256: calplan_plan::current::text_digest(&text) };
    let checked = crate::pipeline::check(&name, text.clone(), None);
    input::report(&checked);
    let Some(analysis) = checked.valid() else { return Err(CliError::Reported) };
    let dir = lab_dir(dir, &analysis.model.name.value)?;
    let node_agent = node_agent.unwrap_or(analysis.model.node_agent);
    let options = lab::up::UpOptions { intent: &name, intent_text: &text, fingerprint, dir: &dir, barrier_timeout, node_agent };
    let progress = super::Progress::new();
    lab::up::up(analysis, &options, &mut |line| progress.line(line)).map_err(|error| {
        if error.starts_with("nothing was created") {
            CliError::Message(format!("lab up refused: {error}"))
        } else {
            CliError::Message(format!(
                "lab up failed: {error}\n(what was built stays for inspection: `calplan lab down {name}` removes it)"
            ))
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn verify(intent: &Path, dir: Option<&Path>, timeout: Duration) -> CliResult {
    let started = Instant::now();
    let checked = input::checked_intent(intent)?;
    let analysis = checked.valid().expect("checked");
    let dir = lab_dir(dir, &analysis.model.name.value)?;
    let layout = lab::read_layout(&dir).map_err(message)?;
    // A calico-node lab's IPAM is live, and authoritative (as `--current etcd://…` makes it).
    let observed_checked;
    let analysis = match lab::datastore::observed_ipam(&layout).map_err(message)? {
        Some(observed) => {
            let (name, text) = input::read_text(intent)?;
            observed_checked = crate::pipeline::check(&name, text, Some(&observed));
            observed_checked.valid().ok_or_else(|| message(format!("`{name}` is not valid against the lab's IPAM")))?
        }
        None => analysis,
    };
    let output = lab::compile(analysis).map_err(message)?;
    let report =
        lab::verify::verify(&layout, analysis, &output, &lab::verify::VerifyOptions { timeout, intent: intent.display().to_string() });
    super::print_stdout(&report.render())?;
    super::info(&format!("verified in {:.1}s", started.elapsed().as_secs_f64()));
    Ok(if report.gaps() == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The lab a plan was made against: `--dir`, else the lab whose applied state is one of the
/// plan's current sources, else the default lab of the plan's intent.
fn plan_lab(plan: &calplan_plan::plan::Plan, dir: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(dir) = dir {
        return lab::absolute_dir(dir).map_err(message);
    }
    for source in &plan.current {
        let path = Path::new(&source.name);
        let lab_dir = path.parent().filter(|state| state.file_name().is_some_and(|name| name == "state")).and_then(Path::parent);
        if let Some(lab_dir) = lab_dir.filter(|lab_dir| lab_dir.join(lab::LAYOUT_FILE).is_file()) {
            return lab::absolute_dir(lab_dir).map_err(message);
        }
    }
    let name = intent_name(Path::new(&plan.intent.name))?;
    lab_dir(None, &name)
}

fn apply(
    plan_path: &Path,
    dir: Option<&Path>,
    all_at_once: bool,
    allow_loss: bool,
    barrier_timeout: Duration,
    parallelism: usize,
) -> CliResult {
    let (name, text) = input::read_plan_text(plan_path)?;
    let saved = super::show::read_plan(plan_path)?;
    let dir = plan_lab(&saved, dir)?;
    let layout = lab::read_layout(&dir).map_err(message)?;
    super::apply::check_fresh(&saved, None)?;
    if saved.is_empty() {
        super::info("The plan has no changes: nothing to apply.");
        return Ok(ExitCode::SUCCESS);
    }
    let (plan, digest) = if all_at_once {
        let collapsed = lab::plans::all_at_once(&saved);
        let digest = calplan_plan::current::text_digest(&collapsed.to_json());
        (collapsed, digest)
    } else {
        (saved, calplan_plan::current::text_digest(&text))
    };
    let options = lab::run::ApplyOptions { barrier_timeout, parallelism, settle: Duration::from_secs(15) };
    let progress = super::Progress::new();
    let report = lab::run::apply(&layout, &plan, &name, digest, &options, &mut |line| progress.line(line)).map_err(message)?;
    progress.finish();
    super::print_stdout(&report.render())?;
    if report.error.is_some() || (!report.hitless && !allow_loss) {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn down(intent: &Path, dir: Option<&Path>) -> CliResult {
    let dir = match dir {
        Some(dir) => lab::absolute_dir(dir).map_err(message)?,
        None => lab_dir(None, &intent_name(intent)?)?,
    };
    // The prefix from the layout when there is one, else from the directory and the intent.
    let prefix = match lab::read_layout(&dir) {
        Ok(layout) => layout.prefix,
        Err(_) => lab::topology::prefix(&intent_name(intent)?, &dir).to_string(),
    };
    let removed = lab::down::down(&prefix, &dir).map_err(message)?;
    super::info(&format!(
        "lab `{prefix}` down: {} processes ended, {} namespaces deleted{}",
        removed.processes,
        removed.namespaces,
        if removed.directory { format!(", `{}` removed", dir.display()) } else { String::new() }
    ));
    Ok(ExitCode::SUCCESS)
}
