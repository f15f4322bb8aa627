//! `calplan show PLANFILE [--format human|json|markdown]`

use super::{CliError, CliResult};
use calplan_plan::plan::Plan;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A plan saved with `calplan plan -o`
    plan: PathBuf,
    /// `human`, `json` (the plan file, verified) or `markdown` (a pull-request comment)
    #[arg(long, value_enum, default_value_t = super::plan::Format::Human)]
    format: super::plan::Format,
}

pub fn run(args: Args) -> CliResult {
    let plan = read_plan(&args.plan)?;
    super::plan::print(&plan, args.format, Some(&args.plan))?;
    Ok(ExitCode::SUCCESS)
}

/// Reads a saved plan, naming the file, and the line and column where a malformed or edited
/// plan breaks, in any error.
pub fn read_plan(path: &Path) -> Result<Plan, CliError> {
    let (name, text) = super::input::read_plan_text(path)?;
    Plan::from_json(&text).map_err(|error| {
        let place = if error.line == 0 { name.clone() } else { format!("{name}:{}:{}", error.line, error.column) };
        CliError::Message(format!("{place}: {}", error.message))
    })
}
