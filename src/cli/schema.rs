//! `calplan schema`: the intent's JSON Schema, the same text as `schemas/intent.schema.json`.

use super::CliResult;
use std::process::ExitCode;

pub fn run() -> CliResult {
    super::print_stdout(&calplan_syntax::schema::intent_schema_text())?;
    Ok(ExitCode::SUCCESS)
}
