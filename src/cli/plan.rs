//! `calplan plan INTENT [--current SOURCE]... [-o PLANFILE] [--format human|json|markdown] [--detailed-exitcode] [--allow|--warn|--deny RULE]...`

use super::{CliError, CliResult, input};
use crate::current;
use crate::pipeline;
use calplan_plan::plan::{Fingerprint, Plan};
use calplan_plan::render;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The intent file; `-` reads standard input
    intent: PathBuf,
    /// The cluster as it stands: Calico exports, IPAM and workload tables, route dumps, the
    /// directory of an earlier compile or apply, etcd (`etcd`, `etcd://HOST:PORT`,
    /// `etcds://HOST:PORT[,HOST:PORT…]`), or an intent (the base branch's: the plan is then
    /// what this intent changes); repeatable
    #[arg(long)]
    current: Vec<String>,
    #[command(flatten)]
    calico_config: input::CalicoConfig,
    /// Save the plan for `calplan apply`
    #[arg(short = 'o', long = "out")]
    out: Option<PathBuf>,
    /// `human` for a terminal, `json` (the plan file itself) for tools, `markdown` for a
    /// pull-request comment (under 60,000 characters)
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Exit 2 when the plan has changes, 0 when it has none (Terraform's convention)
    #[arg(long)]
    detailed_exitcode: bool,
    #[command(flatten)]
    nodes: input::Nodes,
    #[command(flatten)]
    levels: input::Levels,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    Human,
    Json,
    Markdown,
}

pub fn run(args: Args) -> CliResult {
    let loaded = current::load_with(&args.current, args.calico_config.path.as_deref())?;
    current::report(&loaded)?;
    let levels = args.levels.resolve()?;
    let (name, text) = input::read_text(&args.intent)?;
    let fingerprint = Fingerprint { name: name.clone(), sha256: calplan_plan::current::text_digest(&text) };
    let (cluster, nodes) = args.nodes.read_fingerprinted(Some(&loaded.state))?;
    let progress = super::Progress::new();
    progress.status("planning");
    let (checked, plan) = pipeline::check_and_plan(&name, text, &levels, &cluster, fingerprint, &loaded);
    progress.finish();
    input::report(&checked);
    input::report_allowed(&checked);
    let plan = plan.map_err(|error| CliError::Message(error.to_string()))?;
    let Some(mut plan) = plan else { return Err(CliError::Reported) };
    plan.nodes = nodes;
    if let Some(path) = &args.out {
        std::fs::write(path, plan.to_json())
            .map_err(|error| CliError::Message(format!("cannot write the plan to `{}`: {error}", path.display())))?;
    }
    print(&plan, args.format, args.out.as_deref())?;
    if let Some(path) = &args.out {
        super::info(&format!("saved the plan to `{}`; `calplan apply {}` carries out exactly this plan", path.display(), path.display()));
    }
    let code = if args.detailed_exitcode && !plan.is_empty() { ExitCode::from(2) } else { ExitCode::SUCCESS };
    // The process ends here: freeing a 20,000-node cluster's maps one by one only costs time.
    std::mem::forget((loaded, checked, plan));
    Ok(code)
}

/// Prints the plan; `saved` is the plan file, which the Markdown form points to for what it
/// has to leave out.
pub fn print(plan: &Plan, format: Format, saved: Option<&Path>) -> Result<(), CliError> {
    let text = match format {
        Format::Json => plan.to_json(),
        Format::Human => render::human(plan, super::stdout_color()),
        Format::Markdown => {
            let full_plan = match saved {
                Some(path) => format!("`{}`; `calplan show --format json {}` prints it", path.display(), path.display()),
                None => "`calplan plan --format json`".to_string(),
            };
            calplan_plan::markdown::markdown(plan, &full_plan)
        }
    };
    super::print_stdout(&text)
}
