//! `calplan status [INTENT] [--current SOURCE]... [--node NAME] [--format human|json]`

use super::{CliError, CliResult, input};
use calplan_calico::status::{self, StatusRow};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The intent file; `-` reads standard input
    intent: Option<PathBuf>,
    /// Only this node
    #[arg(long)]
    node: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    Human,
    Json,
}

pub fn run(args: Args) -> CliResult {
    let Some(intent) = &args.intent else {
        return Err(CliError::Message("give an INTENT, or `--current SOURCE` to predict from the cluster as it stands".into()));
    };
    let checked = input::checked_intent(intent)?;
    let analysis = checked.valid().expect("checked");
    let mut tables = status::rows(&analysis.peerings);
    if let Some(node) = &args.node {
        if !tables.contains_key(node) {
            return Err(CliError::Message(format!("no node named `{node}` in `{}`", intent.display())));
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
