//! `calplan import --current SOURCE... [-o INTENT]`

use super::{CliError, CliResult};
use crate::current;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The cluster as it stands: Calico exports, an earlier output directory, or etcd
    /// (`etcd`, `etcd://HOST:PORT`, `etcds://HOST:PORT[,HOST:PORT…]`)
    #[arg(long, required = true)]
    current: Vec<String>,
    #[command(flatten)]
    calico_config: super::input::CalicoConfig,
    /// Write the intent here instead of standard output
    #[arg(short = 'o', long = "out")]
    out: Option<PathBuf>,
    /// The cluster's name in the intent
    #[arg(long, default_value = "imported")]
    name: String,
}

pub fn run(args: Args) -> CliResult {
    let loaded = current::load_with(&args.current, args.calico_config.path.as_deref())?;
    current::report(&loaded)?;
    let Some(resources) = &loaded.state.resources else {
        return Err(CliError::Message("the current state holds no Calico resources to import".into()));
    };
    let imported = crate::pipeline::import(
        resources,
        &args.name,
        loaded.state.calico_version.as_deref(),
        loaded.state.datastore,
        loaded.state.observed_ipam().as_ref(),
    );
    for note in &imported.notes {
        super::info(&format!("note: {note}"));
    }
    for finding in &imported.allowed {
        let count = finding.messages.len();
        anstream::eprintln!(
            "note: the cluster has {count} {} `{}` finding{}: allowed in the intent's `allow` list, with a comment; fix {}",
            finding.code,
            finding.name,
            if count == 1 { "" } else { "s" },
            if count == 1 { "it" } else { "them" }
        );
    }
    let errors = imported.checked.diagnostics.error_count();
    if errors > 0 {
        anstream::eprintln!(
            "warning: the imported intent has {errors} error{} no allowance can take; `calplan check` on it shows {}",
            if errors == 1 { "" } else { "s" },
            if errors == 1 { "it" } else { "them" }
        );
    }
    let text = imported.text;
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text).map_err(|error| CliError::Message(format!("cannot write `{}`: {error}", path.display())))?
        }
        None => super::print_stdout(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}
