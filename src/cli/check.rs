//! `calplan check INTENT [--format human|json|sarif|github] [--deny-warnings]`

use super::{CliError, CliResult, input};
use crate::pipeline;
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
    /// Treat warnings as errors
    #[arg(long)]
    deny_warnings: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Human,
    Json,
    Sarif,
    Github,
}

pub fn run(args: Args) -> CliResult {
    let (name, text) = input::read_text(&args.intent)?;
    let mut checked = pipeline::check(&name, text, None);
    if args.deny_warnings {
        checked.diagnostics.deny_warnings();
    }
    let failed = checked.diagnostics.has_errors();
    let diagnostics = checked.diagnostics.clone().into_sorted();
    match args.format {
        Format::Human => {
            input::report(&checked);
            if !failed {
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
                super::info(&format!("ok: `{name}` is a valid intent{summary}{tail}"));
            }
        }
        Format::Json => super::print_stdout(&render::json(&diagnostics, &checked.sources))?,
        Format::Sarif => super::print_stdout(&render::sarif(&diagnostics, &checked.sources, env!("CARGO_PKG_VERSION")))?,
        Format::Github => super::print_stdout(&render::github(&diagnostics, &checked.sources))?,
    }
    if failed { Err(CliError::Reported) } else { Ok(ExitCode::SUCCESS) }
}
