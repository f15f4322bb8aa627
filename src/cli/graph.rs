//! `calplan graph INTENT [--format dot|mermaid|json]`

use super::{CliResult, input};
use calplan_model::graph_render;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The intent file; `-` reads standard input
    intent: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Dot)]
    format: Format,
    #[command(flatten)]
    nodes: input::Nodes,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    Dot,
    Mermaid,
    Json,
}

pub fn run(args: Args) -> CliResult {
    let checked = input::checked_intent_with(&args.intent, &args.nodes.read(None)?)?;
    let analysis = checked.valid().expect("checked");
    let text = match args.format {
        Format::Dot => graph_render::dot(&analysis.model, &analysis.graph),
        Format::Mermaid => graph_render::mermaid(&analysis.model, &analysis.graph),
        Format::Json => graph_render::json(&analysis.model, &analysis.graph),
    };
    super::print_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
