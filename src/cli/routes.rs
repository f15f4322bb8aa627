//! `calplan routes INTENT --router NAME [--platform linux|frr|ios|junos]`: what one router
//! outside the cluster needs, ready to paste — on Linux the `ip route replace` commands, on
//! FRR, IOS and Junos the configuration. The text is the `routers` target's, so it is exactly
//! what `compile` writes and apply loads; this command only chooses and prints it.

use super::{CliError, CliResult, input};
use calplan_model::Platform;
use calplan_targets::Templates;
use calplan_targets::routers;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The intent file; `-` reads standard input
    intent: PathBuf,
    /// The router, by its name in `spec.routers`
    #[arg(long)]
    router: String,
    /// The dialect to print; default: the router's own `platform`
    #[arg(long, value_enum)]
    platform: Option<PlatformArg>,
    #[command(flatten)]
    nodes: input::Nodes,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum PlatformArg {
    Linux,
    Frr,
    Ios,
    Junos,
}

impl From<PlatformArg> for Platform {
    fn from(platform: PlatformArg) -> Platform {
        match platform {
            PlatformArg::Linux => Platform::Linux,
            PlatformArg::Frr => Platform::Frr,
            PlatformArg::Ios => Platform::Ios,
            PlatformArg::Junos => Platform::Junos,
        }
    }
}

pub fn run(args: Args) -> CliResult {
    let checked = input::checked_intent_with(&args.intent, &args.nodes.read(None)?)?;
    let analysis = checked.valid().expect("checked");
    let model = &analysis.model;
    let Some(router) = model.routers.iter().find(|router| router.name.value == args.router) else {
        let mut known: Vec<String> = model.routers.iter().map(|router| format!("`{}`", router.name.value)).collect();
        known.sort();
        let routers =
            if known.is_empty() { "the intent declares no routers".to_string() } else { format!("the routers are {}", known.join(", ")) };
        return Err(CliError::Message(format!("no router named `{}` in `{}`; {routers}", args.router, args.intent.display())));
    };
    let platform = args.platform.map_or(router.platform.value, Platform::from);
    let text = routers::paste_text(&Templates::builtin(), analysis, router, platform)
        .map_err(|error| CliError::Message(format!("cannot render: {error}")))?;
    super::print_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
