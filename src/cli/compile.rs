//! `calplan compile INTENT -o DIR [--current SOURCE]... [--target NAME,...] [--node NAME] [--templates DIR] [--allow|--warn|--deny RULE]...`

use super::{CliError, CliResult, input};
use calplan_targets::{Context, Output, Templates};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The intent file; `-` reads standard input
    intent: PathBuf,
    /// The output directory (replaced as a whole when it holds an earlier compile)
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// Live IPAM data (etcd://HOST:PORT, an earlier output directory, ...) to place blocks
    /// where the cluster really has them; repeatable
    #[arg(long)]
    current: Vec<String>,
    #[command(flatten)]
    calico_config: super::input::CalicoConfig,
    /// Only these targets: calico, bird, bird-calico, routes, nft, iptables, routers
    #[arg(long, value_delimiter = ',')]
    target: Vec<String>,
    /// Only this node's artifacts
    #[arg(long)]
    node: Option<String>,
    /// A directory of templates overriding the built-in ones by file name
    #[arg(long)]
    templates: Option<PathBuf>,
    #[command(flatten)]
    levels: input::Levels,
}

pub fn run(args: Args) -> CliResult {
    let known = calplan_targets::target_names();
    for name in &args.target {
        if !known.contains(&name.as_str()) {
            return Err(CliError::Message(format!(
                "unknown target `{name}`; the targets are {}",
                known.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let templates = load_templates(args.templates.as_deref())?;
    let loaded = crate::current::load_with(&args.current, args.calico_config.path.as_deref())?;
    crate::current::report(&loaded)?;
    let (_, checked) = input::read_and_check(&args.intent, &args.levels, loaded.state.observed_ipam().as_ref())?;
    input::report(&checked);
    input::report_allowed(&checked);
    let Some(analysis) = checked.valid() else { return Err(CliError::Reported) };
    if let Some(node) = args.node.as_ref().filter(|node| analysis.model.node_by_name(node).is_none()) {
        return Err(CliError::Message(format!("no node named `{node}` in `{}`", args.intent.display())));
    }
    let selected: Option<BTreeSet<String>> = (!args.target.is_empty()).then(|| args.target.iter().cloned().collect());
    let count = write_output(&args.output, |sink| {
        let context = Context { analysis, templates: &templates, node: args.node.as_deref(), sink: Some(sink) };
        calplan_targets::compile(&context, selected.as_ref()).map_err(|error| format!("cannot render: {error}"))
    })?;
    anstream::eprintln!("wrote {count} artifacts to `{}`", args.output.display());
    Ok(ExitCode::SUCCESS)
}

fn load_templates(directory: Option<&Path>) -> Result<Templates, CliError> {
    let mut overrides = BTreeMap::new();
    if let Some(directory) = directory {
        let entries = std::fs::read_dir(directory)
            .map_err(|error| CliError::Message(format!("cannot read templates `{}`: {error}", directory.display())))?;
        for entry in entries {
            let entry = entry.map_err(|error| CliError::Message(format!("cannot read templates `{}`: {error}", directory.display())))?;
            if !entry.path().is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(entry.path())
                .map_err(|error| CliError::Message(format!("cannot read template `{}`: {error}", entry.path().display())))?;
            overrides.insert(name, text);
        }
    }
    Templates::new(overrides).map_err(|error| CliError::Message(format!("templates: {error}")))
}

/// Renders into a fresh directory beside `target`, each artifact written as soon as it is
/// rendered, then swaps it in, so a failed compile never leaves a half-written tree where a
/// complete one was. Returns how many files were written.
pub fn write_output<F>(target: &Path, render: F) -> Result<usize, CliError>
where
    F: FnOnce(calplan_targets::Sink) -> Result<Output, String>,
{
    let io = |what: &str, path: &Path, error: std::io::Error| CliError::Message(format!("cannot {what} `{}`: {error}", path.display()));
    if target.exists() {
        let is_empty = target.read_dir().map_err(|error| io("read", target, error))?.next().is_none();
        if !target.is_dir() || (!is_empty && !target.join("manifest.json").is_file()) {
            return Err(CliError::Message(format!(
                "`{}` exists and is not a calplan output directory (it has no manifest.json); choose a new or empty directory",
                target.display()
            )));
        }
    }
    let parent = target.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|error| io("create", parent, error))?;
    let base = target.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let staging = parent.join(format!(".{base}.calplan-new-{}", std::process::id()));
    let retired = parent.join(format!(".{base}.calplan-old-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|error| io("create", &staging, error))?;
    let sink = |artifact: &calplan_targets::Artifact| -> Result<(), String> {
        let path = staging.join(&artifact.path);
        if let Some(directory) = path.parent() {
            std::fs::create_dir_all(directory).map_err(|error| format!("cannot create `{}`: {error}", directory.display()))?;
        }
        let mode = if artifact.secret { 0o600 } else { 0o644 };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&path)
            .map_err(|error| format!("cannot write `{}`: {error}", path.display()))?;
        std::io::Write::write_all(&mut file, artifact.contents.as_bytes())
            .map_err(|error| format!("cannot write `{}`: {error}", path.display()))
    };
    let result = render(&sink).and_then(|output| {
        let manifest = staging.join("manifest.json");
        std::fs::write(&manifest, output.manifest_json()).map_err(|error| format!("cannot write `{}`: {error}", manifest.display()))?;
        Ok(output.artifacts.len() + 1)
    });
    let count = match result {
        Ok(count) => count,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(CliError::Message(error));
        }
    };
    if target.exists() {
        std::fs::rename(target, &retired).map_err(|error| io("replace", target, error))?;
    }
    std::fs::rename(&staging, target).map_err(|error| io("create", target, error))?;
    let _ = std::fs::remove_dir_all(&retired);
    Ok(count)
}
