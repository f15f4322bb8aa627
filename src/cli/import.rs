//! `calplan import --current SOURCE... [-o INTENT]`

use super::{CliError, CliResult};
use crate::current;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The cluster as it stands: Calico exports, an earlier output directory, or etcd://HOST:PORT
    #[arg(long, required = true)]
    current: Vec<String>,
    /// Write the intent here instead of standard output
    #[arg(short = 'o', long = "out")]
    out: Option<PathBuf>,
    /// The cluster's name in the intent
    #[arg(long, default_value = "imported")]
    name: String,
}

pub fn run(args: Args) -> CliResult {
    let loaded = current::load(&args.current)?;
    current::report(&loaded)?;
    let Some(resources) = &loaded.state.resources else {
        return Err(CliError::Message("the current state holds no Calico resources to import".into()));
    };
    let (text, notes) = calplan_plan::import::intent_yaml(resources, &args.name);
    for note in &notes {
        super::info(&format!("note: {note}"));
    }
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text).map_err(|error| CliError::Message(format!("cannot write `{}`: {error}", path.display())))?
        }
        None => super::print_stdout(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}
