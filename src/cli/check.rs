//! `calplan check INTENT [--format human|json|sarif|github] [--deny-warnings] [--allow|--warn|--deny RULE]...`

use super::{CliError, CliResult, input};
use calplan_diagnostics::render;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The intent file; `-` reads standard input
    intent: PathBuf,
    /// How to report: rustc-style text, JSON, SARIF 2.1.0, or GitHub workflow annotations
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Treat warnings as errors (after `--allow`, `--warn` and `--deny`)
    #[arg(long)]
    deny_warnings: bool,
    #[command(flatten)]
    nodes: input::Nodes,
    #[command(flatten)]
    levels: input::Levels,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Human,
    Json,
    Sarif,
    Github,
}

pub fn run(args: Args) -> CliResult {
    let cluster = args.nodes.read(None)?;
    let (name, mut checked) = input::read_and_check_with(&args.intent, &args.levels, None, &cluster)?;
    if args.deny_warnings {
        checked.diagnostics.deny_warnings();
    }
    let failed = checked.diagnostics.has_errors();
    let diagnostics = checked.diagnostics.clone().into_sorted();
    match args.format {
        Format::Human => {
            input::report(&checked);
            if failed {
                input::report_allowed(&checked);
            } else {
                let summary = checked.analysis.as_ref().map_or_else(String::new, |analysis| {
                    let model = &analysis.model;
                    let count = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
                    format!(
                        " ({}, {}, {}, {})",
                        count(model.nodes.len(), "node"),
                        count(model.pools.len(), "pool"),
                        count(model.route_reflector_clusters.len(), "route-reflector cluster"),
                        count(model.routers.len(), "router")
                    )
                });
                let warnings = checked.diagnostics.warning_count();
                let tail = if warnings > 0 {
                    format!(" with {}", checked.diagnostics.summary().split(", ").nth(1).unwrap_or(""))
                } else {
                    String::new()
                };
                let allowed =
                    calplan_diagnostics::allowed_summary(&checked.allowed).map_or_else(String::new, |allowed| format!("; {allowed}"));
                super::info(&format!("ok: `{name}` is a valid intent{summary}{tail}{allowed}"));
            }
        }
        Format::Json => super::print_stdout(&render::json(&diagnostics, &checked.allowed, &checked.sources))?,
        Format::Sarif => super::print_stdout(&render::sarif(&diagnostics, &checked.allowed, &checked.sources, env!("CARGO_PKG_VERSION")))?,
        Format::Github => super::print_stdout(&render::github(&diagnostics, &checked.allowed, &checked.sources))?,
    }
    if failed { Err(CliError::Reported) } else { Ok(ExitCode::SUCCESS) }
}
