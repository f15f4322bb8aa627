//! `calplan show PLANFILE [--format human|json]`

use super::{CliError, CliResult};
use calplan_plan::plan::{FORMAT_VERSION, Plan};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A plan saved with `calplan plan -o`
    plan: PathBuf,
    #[arg(long, value_enum, default_value_t = super::plan::Format::Human)]
    format: super::plan::Format,
}

pub fn run(args: Args) -> CliResult {
    let plan = read_plan(&args.plan)?;
    super::plan::print(&plan, args.format)?;
    Ok(ExitCode::SUCCESS)
}

/// Reads a saved plan, naming the file in any error.
pub fn read_plan(path: &Path) -> Result<Plan, CliError> {
    let (name, text) = super::input::read_plan_text(path)?;
    let version = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|value| value.get("formatVersion").and_then(serde_json::Value::as_u64));
    match version {
        None => return Err(CliError::Message(format!("`{name}` is not a calplan plan (save one with `calplan plan -o FILE`)"))),
        Some(version) if version != u64::from(FORMAT_VERSION) => {
            return Err(CliError::Message(format!(
                "`{name}` is a plan of format {version}; this calplan reads format {FORMAT_VERSION}: plan again"
            )));
        }
        Some(_) => {}
    }
    Plan::from_json(&text).map_err(|error| CliError::Message(format!("`{name}` is not a valid plan: {error}")))
}
