//! The command line: argument parsing, reading inputs, writing outputs, exit codes.
//!
//! Each subcommand has its own file. Errors that are not diagnostics (an unreadable file, a
//! bad flag) become a [`CliError`] with the file or host named, printed as `error: ...`.

mod apply;
mod check;
mod compile;
mod completions;
mod graph;
mod import;
mod input;
mod lab;
mod output_dir;
mod plan;
mod progress;
mod routes;
mod schema;
mod show;
mod status;
mod verify;

use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

pub use progress::Progress;

#[derive(Parser, Debug)]
#[command(
    name = "calplan",
    version,
    about = "Declarative config compiler and dry-run planner for Calico-networked Kubernetes clusters",
    long_about = None,
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// When to colour output: `auto` colours a terminal unless NO_COLOR is set
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    color: ColorWhen,
    /// Print only what was asked for, warnings and errors: no progress, notes or confirmations
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and validate an intent, reporting every problem with its line and column
    Check(check::Args),
    /// Check an intent and write every artifact: Calico resources, BIRD configs, routes, rulesets, router configs
    Compile(compile::Args),
    /// Show what would change on the live cluster, in safe stages
    Plan(plan::Args),
    /// Carry out a saved plan, stage by stage, with a lock, a state record and rollback
    Apply(apply::Args),
    /// Print a saved plan
    Show(show::Args),
    /// Write the intent that reproduces a cluster as it stands
    Import(import::Args),
    /// Print, per node, the table `calicoctl node status` is expected to show
    Status(status::Args),
    /// Compare the live cluster with the intent: each node's confd render, BGP sessions and kernel routes
    Verify(verify::Args),
    /// Print what one external router needs, ready to paste: `ip route` commands or its configuration
    Routes(routes::Args),
    /// Draw the BGP topology: nodes, route reflectors, peers and routers
    Graph(graph::Args),
    /// Build the intent's cluster in network namespaces, verify it, and prove plans hitless
    Lab(lab::Args),
    /// Print the intent's JSON Schema
    Schema,
    /// Print a shell completion script: `calplan completions bash > /etc/bash_completion.d/calplan`
    Completions(completions::Args),
}

/// The command line as clap sees it, for completions and manual pages.
pub fn command() -> clap::Command {
    Cli::command()
}

static QUIET: AtomicBool = AtomicBool::new(false);

/// Whether `-q` asked for nothing but the requested output, warnings and errors.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// An informational line on standard error (a note, a confirmation), left out under `-q`.
pub fn info(line: &str) {
    if !quiet() {
        anstream::eprintln!("{line}");
    }
}

/// A failure that is not about the intent's content: the message names the file or host.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Message(String),
    /// Diagnostics were already printed; exit 1 without another message.
    #[error("")]
    Reported,
}

pub type CliResult = Result<ExitCode, CliError>;

/// Runs calplan with these arguments and returns its exit code (SPEC §2: 0 success, 1 any
/// error, 2 only from `plan --detailed-exitcode` when changes are pending).
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS };
        }
    };
    QUIET.store(cli.quiet, Ordering::Relaxed);
    match cli.color {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    }
    .write_global();
    let result = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Compile(args) => compile::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Show(args) => show::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Import(args) => import::run(args),
        Command::Status(args) => status::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Routes(args) => routes::run(args),
        Command::Graph(args) => graph::run(args),
        Command::Lab(args) => lab::run(args),
        Command::Schema => schema::run(),
        Command::Completions(args) => completions::run(args),
    };
    match result {
        Ok(code) => code,
        Err(CliError::Reported) => ExitCode::from(1),
        Err(CliError::Message(message)) => {
            anstream::eprintln!("{} {message}", error_prefix());
            ExitCode::from(1)
        }
    }
}

pub use input::{FileKinds, describe_type, read_file_as, read_text, report as report_intent};

/// Whether to colour output written to standard error: `--color`, else a terminal without
/// NO_COLOR (anstream's reading of NO_COLOR, CLICOLOR and CLICOLOR_FORCE).
pub fn stderr_color() -> bool {
    anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never
}

/// Whether to colour output written to standard output, by the same rules.
pub fn stdout_color() -> bool {
    anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
}

fn error_prefix() -> String {
    use owo_colors::OwoColorize;
    if stderr_color() { "error:".red().bold().to_string() } else { "error:".to_string() }
}

/// Writes the requested output to standard output, reporting a closed pipe as an error.
/// The argument parser for an engine's named choices (the engines name them; only the CLI
/// knows clap).
pub(crate) fn named<T: calplan_apply::Named + std::fmt::Debug + Send + Sync>() -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(T::names())
        .map(|name: String| T::from_name(&name).expect("clap passes only the names it was given"))
}

pub(crate) fn print_stdout(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|error| CliError::Message(format!("cannot write to standard output: {error}")))
}
