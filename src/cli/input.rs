//! Reading the intent: a path or `-` for standard input, and the check that gates every
//! command that needs a valid intent.

use super::CliError;
use crate::pipeline::{self, Checked};
use calplan_diagnostics::Level;
use calplan_diagnostics::render;
use calplan_model::ipam::ObservedIpam;
use calplan_validate::levels::CommandLine;
use std::io::Read;
use std::path::{Path, PathBuf};

/// `--calico-config FILE`: calicoctl's own configuration, for the etcd behind `etcd`,
/// `etcd://…` and `etcds://…` (endpoints, certificates, credentials).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct CalicoConfig {
    /// calicoctl's configuration (a `CalicoAPIConfig`) for etcd's endpoints, certificates and credentials;
    /// without it, calicoctl's own: /etc/calico/calicoctl.cfg if it exists, else the ETCD_* variables
    #[arg(long = "calico-config", value_name = "FILE")]
    pub path: Option<PathBuf>,
}

/// Reads a file (or standard input for `-`) as UTF-8 text, naming the file in any error.
pub fn read_text(path: &Path) -> Result<(String, String), CliError> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map_err(|error| CliError::Message(format!("cannot read standard input: {error}")))?;
        return decode(bytes, "<stdin>").map(|text| ("<stdin>".to_string(), text));
    }
    let name = path.display().to_string();
    if path.is_dir() {
        return Err(CliError::Message(format!("cannot read `{name}`: it is a directory, not an intent file")));
    }
    let bytes = std::fs::read(path).map_err(|error| CliError::Message(format!("cannot read `{name}`: {error}")))?;
    decode(bytes, &name).map(|text| (name, text))
}

fn decode(bytes: Vec<u8>, name: &str) -> Result<String, CliError> {
    String::from_utf8(bytes).map_err(|error| {
        CliError::Message(format!("`{name}` is not UTF-8 text (invalid byte at offset {})", error.utf8_error().valid_up_to()))
    })
}

/// Reads and checks an intent, printing its diagnostics to standard error in human form.
/// Fails when the intent has errors, so callers only ever see a valid analysis.
pub fn checked_intent(path: &Path) -> Result<Checked, CliError> {
    let (name, text) = read_text(path)?;
    let checked = pipeline::check(&name, text, None);
    report(&checked);
    if checked.valid().is_none() {
        return Err(CliError::Reported);
    }
    Ok(checked)
}

/// `--allow RULE`, `--warn RULE` and `--deny RULE`, as linters have them.
#[derive(clap::Args, Debug, Default)]
pub struct Levels {
    /// Allow a rule's findings: not reported (counted) and not an error. RULE is a code
    /// (`E0402`) or a name (`routes-not-propagated`); repeatable
    #[arg(long = "allow", value_name = "RULE")]
    allow: Vec<String>,
    /// Report a rule's findings as warnings; repeatable
    #[arg(long = "warn", value_name = "RULE")]
    warn: Vec<String>,
    /// Report a rule's findings as errors (also over the intent's `allow` list); repeatable.
    /// Where flags name one rule twice, the strictest wins
    #[arg(long = "deny", value_name = "RULE")]
    deny: Vec<String>,
}

impl Levels {
    /// The flags, resolved against the rules; an unknown rule or one that cannot be allowed
    /// is an error naming the flag.
    pub fn resolve(&self) -> Result<CommandLine, CliError> {
        let flags = [(Level::Allow, &self.allow), (Level::Warn, &self.warn), (Level::Deny, &self.deny)];
        CommandLine::new(flags.iter().flat_map(|(level, rules)| rules.iter().map(|rule| (*level, rule.as_str()))))
            .map_err(CliError::Message)
    }
}

/// Reads an intent and checks it with the command line's severity overrides.
pub fn read_and_check(path: &Path, levels: &Levels, observed: Option<&ObservedIpam>) -> Result<(String, Checked), CliError> {
    let levels = levels.resolve()?;
    let (name, text) = read_text(path)?;
    Ok((name.clone(), pipeline::check_with_levels(&name, text, observed, &levels)))
}

/// `note: 3 findings allowed (…)`, so that allowed findings are never hidden without a trace.
pub fn report_allowed(checked: &Checked) {
    if let Some(summary) = calplan_diagnostics::allowed_summary(&checked.allowed) {
        anstream::eprintln!("note: {summary}; `calplan check --format json` lists them");
    }
}

/// Prints diagnostics (warnings and errors) to standard error.
pub fn report(checked: &Checked) {
    if checked.diagnostics.is_empty() {
        return;
    }
    let diagnostics = checked.diagnostics.clone().into_sorted();
    anstream::eprint!("{}", render::human(&diagnostics, &checked.sources, super::stderr_color()));
    if checked.diagnostics.has_errors() {
        anstream::eprintln!("{} {}", super::error_prefix(), checked.diagnostics.summary());
    }
}
