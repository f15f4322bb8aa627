//! `calplan compile INTENT -o DIR [--current SOURCE]... [--target NAME,...] [--node NAME] [--templates DIR] [--allow|--warn|--deny RULE]...`

use super::{CliError, CliResult, input};
use calplan_targets::{Context, Templates};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The intent file; `-` reads standard input
    intent: PathBuf,
    /// The output directory: new, empty, or an earlier output of calplan, which is replaced
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// Live IPAM data (etcd://HOST:PORT, an earlier output directory, ...) to place blocks
    /// where the cluster really has them, and Secrets and Services (`kubectl get
    /// secrets,services,endpoints,endpointslices -A -o yaml`) for confd's passwords and
    /// per-Service routes; repeatable
    #[arg(long)]
    current: Vec<String>,
    #[command(flatten)]
    calico_config: super::input::CalicoConfig,
    /// Only these targets: calico, bird, bird-calico, routes, nft, iptables, routers
    #[arg(long, value_delimiter = ',')]
    target: Vec<String>,
    /// Only this node's artifacts
    #[arg(long)]
    node: Option<String>,
    /// A directory of templates overriding the built-in ones by file name
    #[arg(long)]
    templates: Option<PathBuf>,
    #[command(flatten)]
    nodes: input::Nodes,
    #[command(flatten)]
    levels: input::Levels,
}

pub fn run(args: Args) -> CliResult {
    let known = calplan_targets::target_names();
    for name in &args.target {
        if !known.contains(&name.as_str()) {
            return Err(CliError::Message(format!(
                "unknown target `{name}`; the targets are {}",
                known.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let templates = load_templates(args.templates.as_deref())?;
    let loaded = crate::current::load_with(&args.current, args.calico_config.path.as_deref())?;
    crate::current::report(&loaded)?;
    let cluster = args.nodes.read(Some(&loaded.state))?;
    let (_, mut checked) = input::read_and_check_with(&args.intent, &args.levels, loaded.state.observed_ipam().as_ref(), &cluster)?;
    if let Some(analysis) = checked.analysis.as_mut() {
        loaded.state.add_outside_datastore(analysis);
    }
    input::report(&checked);
    input::report_allowed(&checked);
    let Some(analysis) = checked.valid() else { return Err(CliError::Reported) };
    if let Some(node) = args.node.as_ref().filter(|node| analysis.model.node_by_name(node).is_none()) {
        return Err(CliError::Message(format!("no node named `{node}` in `{}`", args.intent.display())));
    }
    let selected: Option<BTreeSet<String>> = (!args.target.is_empty()).then(|| args.target.iter().cloned().collect());
    let progress = super::Progress::counter("writing artifacts:");
    let count = super::output_dir::write_output(&args.output, |sink| {
        let counting = |artifact: &calplan_targets::Artifact| {
            let written = sink(artifact);
            progress.tick();
            written
        };
        let context = Context { analysis, templates: &templates, node: args.node.as_deref(), sink: Some(&counting) };
        calplan_targets::compile(&context, selected.as_ref()).map_err(|error| format!("cannot render: {error}"))
    })?;
    progress.finish();
    super::info(&format!("wrote {count} artifacts to `{}`", args.output.display()));
    Ok(ExitCode::SUCCESS)
}

fn load_templates(directory: Option<&Path>) -> Result<Templates, CliError> {
    let mut overrides = BTreeMap::new();
    if let Some(directory) = directory {
        let entries = std::fs::read_dir(directory)
            .map_err(|error| CliError::Message(format!("cannot read templates `{}`: {error}", directory.display())))?;
        for entry in entries {
            let entry = entry.map_err(|error| CliError::Message(format!("cannot read templates `{}`: {error}", directory.display())))?;
            if !entry.path().is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(entry.path())
                .map_err(|error| CliError::Message(format!("cannot read template `{}`: {error}", entry.path().display())))?;
            overrides.insert(name, text);
        }
    }
    Templates::new(overrides).map_err(|error| CliError::Message(format!("templates: {error}")))
}
