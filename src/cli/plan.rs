//! `calplan plan INTENT [--current SOURCE]... [-o PLANFILE] [--format human|json] [--detailed-exitcode] [--allow|--warn|--deny RULE]...`

use super::{CliError, CliResult, input};
use crate::current;
use crate::pipeline;
use calplan_plan::plan::{Fingerprint, Plan};
use calplan_plan::render;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The intent file; `-` reads standard input
    intent: PathBuf,
    /// The cluster as it stands: Calico exports, IPAM and workload tables, route dumps, the
    /// directory of an earlier compile or apply, or etcd (`etcd`, `etcd://HOST:PORT`,
    /// `etcds://HOST:PORT[,HOST:PORT…]`); repeatable
    #[arg(long)]
    current: Vec<String>,
    #[command(flatten)]
    calico_config: input::CalicoConfig,
    /// Save the plan for `calplan apply`
    #[arg(short = 'o', long = "out")]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Exit 2 when the plan has changes, 0 when it has none (Terraform's convention)
    #[arg(long)]
    detailed_exitcode: bool,
    #[command(flatten)]
    levels: input::Levels,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    Human,
    Json,
}

pub fn run(args: Args) -> CliResult {
    let loaded = current::load_with(&args.current, args.calico_config.path.as_deref())?;
    current::report(&loaded)?;
    let levels = args.levels.resolve()?;
    let (name, text) = input::read_text(&args.intent)?;
    let fingerprint = Fingerprint { name: name.clone(), sha256: calplan_plan::current::text_digest(&text) };
    let checked = pipeline::check_with_levels(&name, text, loaded.state.observed_ipam().as_ref(), &levels);
    input::report(&checked);
    input::report_allowed(&checked);
    let Some(plan) = pipeline::plan(&checked, fingerprint, &loaded) else { return Err(CliError::Reported) };
    if let Some(path) = &args.out {
        std::fs::write(path, plan.to_json())
            .map_err(|error| CliError::Message(format!("cannot write the plan to `{}`: {error}", path.display())))?;
    }
    print(&plan, args.format)?;
    if let Some(path) = &args.out {
        anstream::eprintln!("saved the plan to `{}`; `calplan apply {}` carries out exactly this plan", path.display(), path.display());
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

pub fn print(plan: &Plan, format: Format) -> Result<(), CliError> {
    let text = match format {
        Format::Json => plan.to_json(),
        Format::Human => {
            let color = std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
            render::human(plan, color)
        }
    };
    super::print_stdout(&text)
}
