//! `calplan verify INTENT [--current SOURCE]... [--transport ssh|netns] [--inventory FILE]
//! [--format human|json] [--parallelism N]`: the live cluster against the intent, each node's
//! confd render, sessions and kernel routes; exit 1 with every difference. The engine is
//! `calplan_apply::verify`.

use super::{CliError, CliResult, input};
use crate::apply::transport::{Inventory, Transport, TransportKind};
use crate::apply::verify;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The intent file; `-` reads standard input
    intent: PathBuf,
    /// Live IPAM data (etcd, an earlier output directory, `ipam show --show-blocks`) so that the
    /// expected render places blocks where the cluster has them; repeatable
    #[arg(long)]
    current: Vec<String>,
    #[command(flatten)]
    calico_config: input::CalicoConfig,
    /// How nodes are reached
    #[arg(long, value_parser = super::named::<TransportKind>(), default_value = "ssh")]
    transport: TransportKind,
    /// How to reach each node (YAML: `defaults` and `hosts`; `confdConfig` and `birdSocket` say
    /// where calico-node keeps its render and BIRD's socket when not in calico-node's places)
    #[arg(long)]
    inventory: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// How many nodes are read at once
    #[arg(long, default_value_t = verify::DEFAULT_PARALLELISM)]
    parallelism: usize,
    #[command(flatten)]
    nodes: input::Nodes,
    #[command(flatten)]
    levels: input::Levels,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    Human,
    Json,
}

pub fn run(args: Args) -> CliResult {
    if args.transport == TransportKind::Local {
        return Err(CliError::Message(
            "`verify` reads every node of the cluster: give `--transport ssh` (with `--inventory` where names are not addresses) \
             or `--transport netns`"
                .into(),
        ));
    }
    if args.parallelism == 0 {
        return Err(CliError::Message("`--parallelism` is at least 1".into()));
    }
    let loaded = crate::current::load_with(&args.current, args.calico_config.path.as_deref())?;
    crate::current::report(&loaded)?;
    let cluster = args.nodes.read(Some(&loaded.state))?;
    let (name, mut checked) = input::read_and_check_with(&args.intent, &args.levels, loaded.state.observed_ipam().as_ref(), &cluster)?;
    if let Some(analysis) = checked.analysis.as_mut() {
        loaded.state.add_outside_datastore(analysis);
    }
    input::report(&checked);
    input::report_allowed(&checked);
    let Some(analysis) = checked.valid() else { return Err(CliError::Reported) };
    if analysis.model.node_agent == calplan_model::NodeAgent::Bird {
        return Err(CliError::Message(
            "`verify` compares calico-node's render; this intent's nodes run calplan's BIRD 2 (`spec.nodeAgent: bird`), which \
             `calplan lab verify` and apply's barriers check"
                .into(),
        ));
    }
    let templates = calplan_targets::Templates::builtin();
    let expected = verify::expectations(analysis, &templates).map_err(CliError::Message)?;
    let inventory = match &args.inventory {
        Some(path) => Inventory::read(path).map_err(CliError::Message)?,
        None => Inventory::default(),
    };
    let transport = Transport::new(args.transport);
    let mut report = verify::verify(&name, &expected, &transport, &inventory, args.parallelism);
    // The nodes' Calico resources, where `--current` has them: a node that joined since the
    // last apply lacks what the intent's rules give it.
    match &loaded.state.resources {
        Some(current) if current.nodes().next().is_some() => {
            let mut drift = verify::node_resources::drift(&analysis.resources, current);
            for node in &mut report.nodes {
                if let Some(differences) = drift.remove(&node.node) {
                    node.differences.splice(0..0, differences);
                }
            }
        }
        _ => report.notes.push(
            "the nodes' Calico `Node` resources are not compared: pass them with `--current` (etcd, calicoctl or kubectl exports)".into(),
        ),
    }
    let text = match args.format {
        Format::Human => report.human(),
        Format::Json => report.json(),
    };
    super::print_stdout(&text)?;
    Ok(if report.differences() == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
