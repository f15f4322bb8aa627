//! `calplan status [INTENT] [--current SOURCE]... [--node NAME] [--format human|json]`

use super::{CliError, CliResult, input};
use crate::current;
use calplan_calico::peering::Peerings;
use calplan_calico::status::{self, StatusRow};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The intent file; `-` reads standard input
    intent: Option<PathBuf>,
    /// The cluster as it stands: Calico exports, an earlier output directory, or etcd
    /// (`etcd`, `etcd://HOST:PORT`, `etcds://HOST:PORT[,HOST:PORT…]`)
    #[arg(long)]
    current: Vec<String>,
    #[command(flatten)]
    calico_config: input::CalicoConfig,
    /// Only this node
    #[arg(long)]
    node: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    #[command(flatten)]
    nodes: input::Nodes,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    Human,
    Json,
}

pub fn run(args: Args) -> CliResult {
    // The intent, when given, is checked even when the tables come from the current state.
    let cluster = args.nodes.read(None)?;
    let checked = args.intent.as_deref().map(|path| input::checked_intent_with(path, &cluster)).transpose()?;
    let (mut tables, described) = if !args.current.is_empty() {
        let loaded = current::load_with(&args.current, args.calico_config.path.as_deref())?;
        current::report(&loaded)?;
        let Some(resources) = &loaded.state.resources else {
            return Err(CliError::Message("the current state has no Calico resources to predict sessions from".into()));
        };
        // The cluster's own release when the datastore says, else the intent's.
        let release = loaded
            .state
            .release()
            .or(checked.as_ref().and_then(|checked| checked.valid()).map(|analysis| analysis.model.calico_version.value))
            .unwrap_or(calplan_calico::Release::DEFAULT);
        (status::rows(&Peerings::compute(resources, release)), "the current state".to_string())
    } else if let Some(checked) = &checked {
        let analysis = checked.valid().expect("checked");
        (status::rows(&analysis.peerings), format!("`{}`", args.intent.as_ref().expect("intent").display()))
    } else {
        return Err(CliError::Message("give an INTENT, `--current SOURCE`, or both".into()));
    };
    if let Some(node) = &args.node {
        if !tables.contains_key(node) {
            return Err(CliError::Message(format!("no node named `{node}` in {described}")));
        }
        tables.retain(|name, _| name == node);
    }
    super::print_stdout(&render(&tables, args.format))?;
    Ok(ExitCode::SUCCESS)
}

fn render(tables: &BTreeMap<String, Vec<StatusRow>>, format: Format) -> String {
    match format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&json!({ "nodes": tables })).expect("status serializes");
            text.push('\n');
            text
        }
        Format::Human => {
            let mut out = String::new();
            for (index, (node, rows)) in tables.iter().enumerate() {
                if index > 0 {
                    out.push('\n');
                }
                out.push_str(&format!("Node {node}\n\n"));
                out.push_str(&status::render_node(rows));
            }
            out
        }
    }
}
