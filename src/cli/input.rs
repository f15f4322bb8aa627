//! Reading the intent: a path or `-` for standard input, and the check that gates every
//! command that needs a valid intent.

use super::CliError;
use crate::pipeline::{self, Checked};
use calplan_diagnostics::Level;
use calplan_diagnostics::render;
use calplan_model::ipam::ObservedIpam;
use calplan_model::node_rules::ClusterNodes;
use calplan_validate::levels::CommandLine;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
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

/// The largest intent or current-state file calplan reads (`docs/limits.md`): well above what a
/// 5,000-node cluster's intent or exports hold, and below what would take gigabytes of memory
/// once parsed (a YAML file takes about 25 times its size).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// The largest saved plan calplan reads: plans carry every file they change, before and after.
pub const MAX_PLAN_BYTES: u64 = 1 << 30;

/// Which kinds of file a read accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKinds {
    /// A file named on the command line: a regular file, or a pipe or device the operator chose
    /// (`--current <(kubectl get …)`), read until it ends.
    Named,
    /// Only a regular file, opened without waiting: files found in a directory, and sources a
    /// saved plan names, which nobody is there to feed. A FIFO is refused at once rather than
    /// waited on.
    Regular,
}

/// Reads an intent or current-state file named on the command line (or standard input for
/// `-`) as UTF-8 text, naming the file in any error.
pub fn read_text(path: &Path) -> Result<(String, String), CliError> {
    read_file(path, FileKinds::Named, MAX_FILE_BYTES)
}

/// Reads an intent or current-state file of the kinds given.
pub fn read_file_as(path: &Path, kinds: FileKinds) -> Result<(String, String), CliError> {
    read_file(path, kinds, MAX_FILE_BYTES)
}

/// Reads a saved plan.
pub fn read_plan_text(path: &Path) -> Result<(String, String), CliError> {
    read_file(path, FileKinds::Named, MAX_PLAN_BYTES)
}

/// What a file that is not a regular file is, for messages.
pub fn describe_type(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

fn read_file(path: &Path, kinds: FileKinds, limit: u64) -> Result<(String, String), CliError> {
    if path == Path::new("-") {
        let bytes = read_bounded(std::io::stdin().lock(), limit, "<stdin>")?;
        return decode(bytes, "<stdin>").map(|text| ("<stdin>".to_string(), text));
    }
    let name = path.display().to_string();
    if path.is_dir() {
        return Err(CliError::Message(format!("cannot read `{name}`: it is a directory, not a file")));
    }
    let cannot = |error: std::io::Error| CliError::Message(format!("cannot read `{name}`: {error}"));
    // O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer; the
    // type is then checked on the open file, so nothing can be swapped in between.
    let flags = if kinds == FileKinds::Regular { libc::O_NONBLOCK } else { 0 };
    let file = std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path).map_err(cannot)?;
    let metadata = file.metadata().map_err(cannot)?;
    if kinds == FileKinds::Regular && !metadata.is_file() {
        return Err(CliError::Message(format!("cannot read `{name}`: it is {}, not a regular file", describe_type(metadata.file_type()))));
    }
    if metadata.is_file() && metadata.len() > limit {
        return Err(too_large(&name, metadata.len(), limit));
    }
    let bytes = read_bounded(file, limit, &name)?;
    decode(bytes, &name).map(|text| (name, text))
}

/// Reads at most `limit` bytes; more is an error, not a truncation.
fn read_bounded(reader: impl Read, limit: u64, name: &str) -> Result<Vec<u8>, CliError> {
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes).map_err(|error| CliError::Message(format!("cannot read `{name}`: {error}")))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(name, bytes.len() as u64, limit));
    }
    Ok(bytes)
}

fn too_large(name: &str, size: u64, limit: u64) -> CliError {
    // A stream is read only one byte past the limit, so its size is not known.
    let size = if size > limit + 1 { format!("{size} bytes, ") } else { String::new() };
    CliError::Message(format!("`{name}` is too large to read: {size}more than the {} MiB calplan reads (docs/limits.md)", limit >> 20))
}

fn decode(bytes: Vec<u8>, name: &str) -> Result<String, CliError> {
    String::from_utf8(bytes).map_err(|error| {
        CliError::Message(format!("`{name}` is not UTF-8 text (invalid byte at offset {})", error.utf8_error().valid_up_to()))
    })
}

/// Reads and checks an intent, printing its diagnostics to standard error in human form.
/// Fails when the intent has errors, so callers only ever see a valid analysis.
pub fn checked_intent(path: &Path) -> Result<Checked, CliError> {
    checked_intent_with(path, &ClusterNodes::default())
}

/// As [`checked_intent`], with the nodes read from the cluster (`--nodes`).
pub fn checked_intent_with(path: &Path, cluster: &ClusterNodes) -> Result<Checked, CliError> {
    let (name, text) = read_text(path)?;
    let checked = pipeline::check_with_cluster(&name, text, None, &CommandLine::default(), cluster);
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

/// Reads an intent and checks it with the command line's severity overrides and the nodes
/// read from the cluster, which its `nodeRules` apply to.
pub fn read_and_check_with(
    path: &Path,
    levels: &Levels,
    observed: Option<&ObservedIpam>,
    cluster: &ClusterNodes,
) -> Result<(String, Checked), CliError> {
    let levels = levels.resolve()?;
    let (name, text) = read_text(path)?;
    Ok((name.clone(), pipeline::check_with_cluster(&name, text, observed, &levels, cluster)))
}

/// `--nodes FILE`: the cluster's nodes, from `kubectl get nodes -o yaml` or a plain list.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct Nodes {
    /// The cluster's nodes, for an intent that takes its nodes from the cluster: `kubectl get
    /// nodes -o yaml`, or a list of `{name, ipv4Address, ipv6Address, labels}`
    #[arg(long = "nodes", id = "nodes", value_name = "FILE")]
    pub path: Option<PathBuf>,
}

impl Nodes {
    /// The nodes the intent's rules apply to: the Calico `Node`s of the current state, and
    /// those of `--nodes`. Problems in the inventory are printed; errors stop the command.
    pub fn read(&self, current: Option<&calplan_plan::current::CurrentState>) -> Result<ClusterNodes, CliError> {
        Ok(self.read_fingerprinted(current)?.0)
    }

    /// As [`Nodes::read`], with the inventory's fingerprint (for a plan, so that `apply` can
    /// tell when it changed).
    pub fn read_fingerprinted(
        &self,
        current: Option<&calplan_plan::current::CurrentState>,
    ) -> Result<(ClusterNodes, Option<calplan_plan::plan::Fingerprint>), CliError> {
        let mut fingerprint = None;
        let inventory = match &self.path {
            None => Vec::new(),
            Some(path) => {
                let (name, text) = read_text(path)?;
                fingerprint =
                    Some(calplan_plan::plan::Fingerprint { name: name.clone(), sha256: calplan_plan::current::text_digest(&text) });
                let mut sources = calplan_diagnostics::SourceMap::new();
                let file = sources.add(&name, text);
                let read = calplan_plan::current::node_inventory::read(file, sources.file(file).text());
                if !read.diagnostics.is_empty() {
                    let diagnostics = read.diagnostics.clone().into_sorted();
                    anstream::eprint!("{}", render::human(&diagnostics, &sources, super::stderr_color()));
                }
                match read.value {
                    Some(nodes) => nodes,
                    None => {
                        anstream::eprintln!("error: cannot read the nodes of `{name}`: {}", read.diagnostics.summary());
                        return Err(CliError::Reported);
                    }
                }
            }
        };
        let nodes = match current {
            Some(state) => pipeline::cluster_nodes(state, inventory),
            None => ClusterNodes { current: Vec::new(), inventory },
        };
        Ok((nodes, fingerprint))
    }
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
