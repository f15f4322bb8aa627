//! Reading `--current SOURCE`s (the I/O edge of planning): files, directories of them, an
//! earlier compile or apply directory, or `etcd://HOST:PORT`. The readers that make sense of
//! what is read are pure and live in `calplan_plan::current`; this module only finds, reads
//! and registers the text, then combines what the readers return.
//!
//! How a source is told apart:
//! - `etcd://HOST:PORT`, `etcds://HOST:PORT[,HOST:PORT…]` or `etcd` (the etcd calicoctl's
//!   configuration names): Calico's etcdv3 datastore, read only, every key at one revision;
//!   certificates and credentials come from calicoctl's configuration.
//! - a directory holding `manifest.json`: the artifacts of an earlier `compile -o` or `apply`,
//!   only the files its manifest lists (their paths validated before any is opened).
//! - any other directory: walked, every file read by itself; hidden files are skipped.
//! - a file: its kind is told from its content (`current::sniff`); Kubernetes exports
//!   (`kubectl get … -o yaml` of Calico's custom resources or of Nodes) are Calico's
//!   Kubernetes datastore; Secrets, Services and their endpoints in such an export are what
//!   confd reads from Kubernetes itself, and the Secrets' values are masked in the registered
//!   text before anything reads it for a diagnostic. Felix's endpoint status files name their
//!   node by their path, `endpoint-status/<node>/<file>`. A route dump names its
//!   node by its file name: `<node>.routes`, `<node>.json`, or a file named exactly as the
//!   node directly inside a `routes/` directory. An intent named on its own is checked and
//!   compiled, and stands for the cluster as if it had been applied (`--current base.yaml`).
//!
//! Inside a directory only regular files are read, opened without waiting (a FIFO would block
//! the read, and an apply holding its lock, for ever), and a symbolic link is followed only to
//! a file inside the directory named on the command line: never out of it (a link to `/` once
//! made calplan walk the whole file system), never to a directory (no loops). What is passed
//! over is said in a note. Every file is read up to `input::MAX_FILE_BYTES`.

use crate::apply::calicoctl_config::{self, CONFIGURED_ETCD};
use crate::cli::{CliError, FileKinds};
use crate::etcd;
use calplan_diagnostics::{Diagnostics, SourceMap};
use calplan_plan::current::{self, CurrentState, SourceKind, applied, etcd_layout, ip_routes, ipam_blocks, workloads};
use calplan_plan::plan::SourceFingerprint;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every source read, combined, with the diagnostics raised while reading.
pub struct Loaded {
    pub state: CurrentState,
    pub sources: SourceMap,
    pub diagnostics: Diagnostics,
    /// What was passed over in directories, and why, for [`report`] to print.
    pub notes: Vec<String>,
    /// Which files named on the command line may be read.
    named: FileKinds,
}

/// Reads the sources named on the command line, with calicoctl's default configuration for
/// any etcd among them; a file named there may be a pipe.
pub fn load(sources: &[String]) -> Result<Loaded, CliError> {
    load_with(sources, None)
}

/// Reads the sources; `calico_config` is `--calico-config`, read only if an etcd source needs it.
pub fn load_with(sources: &[String], calico_config: Option<&Path>) -> Result<Loaded, CliError> {
    load_as(sources, calico_config, FileKinds::Named)
}

/// Reads again the sources a saved plan names, when nobody is there to feed a pipe: only
/// regular files, so a source that became a FIFO is refused rather than waited on.
pub fn load_again(sources: &[String], calico_config: Option<&Path>) -> Result<Loaded, CliError> {
    load_as(sources, calico_config, FileKinds::Regular)
}

fn load_as(sources: &[String], calico_config: Option<&Path>, named: FileKinds) -> Result<Loaded, CliError> {
    let mut loaded =
        Loaded { state: CurrentState::default(), sources: SourceMap::new(), diagnostics: Diagnostics::new(), notes: Vec::new(), named };
    for source in sources {
        if is_etcd(source)? {
            load_etcd(source, calico_config, &mut loaded)?;
            continue;
        }
        let path = PathBuf::from(source);
        if path.is_dir() {
            let root = std::fs::canonicalize(&path).map_err(|error| CliError::Message(format!("cannot read `{source}`: {error}")))?;
            load_directory(&root, &path, &mut loaded)?;
        } else {
            load_file(&path, &mut loaded, false)?;
        }
    }
    Ok(loaded)
}

fn message(error: impl ToString) -> CliError {
    CliError::Message(error.to_string())
}

fn fingerprint(name: &str, kind: SourceKind, sha256: String) -> SourceFingerprint {
    SourceFingerprint {
        name: name.to_string(),
        kind: kind.as_str().to_string(),
        sha256,
        resources: Default::default(),
        files: Default::default(),
    }
}

/// Whether a source names etcd: an address, or the word for the etcd calicoctl's
/// configuration names (refused when a file of that name is here too).
pub fn is_etcd(source: &str) -> Result<bool, CliError> {
    if source == CONFIGURED_ETCD {
        if Path::new(source).exists() {
            return Err(CliError::Message(format!(
                "`{source}` is both a path here and the word for the etcd calicoctl's configuration names: write `./{source}` for the path"
            )));
        }
        return Ok(true);
    }
    Ok(source.contains("://"))
}

/// A client for an etcd source, with calicoctl's configuration (`--calico-config`, its default
/// file, or the environment) supplying certificates and credentials.
pub fn etcd_client(source: &str, calico_config: Option<&Path>) -> Result<etcd::Client, CliError> {
    let config = calicoctl_config::load(calico_config).map_err(CliError::Message)?;
    config.client(source, etcd::DEFAULT_TIMEOUT).map_err(CliError::Message)
}

/// Reads Calico's keys from etcd. The listing of what was read is registered as the source's
/// text, so diagnostics point at the offending key and value. The source is named by its
/// canonical address (no credentials), which `apply` reads again to tell a stale plan.
fn load_etcd(source: &str, calico_config: Option<&Path>, loaded: &mut Loaded) -> Result<(), CliError> {
    let client = etcd_client(source, calico_config)?;
    let name = client.address().to_string();
    let snapshot = client.calico_snapshot().map_err(message)?;
    let file = loaded.sources.add(name.clone(), snapshot.listing());
    let read = etcd_layout::read(file, &snapshot);
    loaded.diagnostics.extend(read.diagnostics);
    let mut fingerprint = fingerprint(&name, SourceKind::Etcd, snapshot.fingerprint());
    if let Some(state) = read.value {
        fingerprint.resources = current::resource_digests(&state.resources);
        loaded.state.add_etcd(state);
    }
    loaded.state.sources.push(fingerprint);
    Ok(())
}

/// The entries of a directory, sorted, hidden ones left out.
fn entries(directory: &Path) -> Result<Vec<PathBuf>, CliError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(directory)
        .map_err(|error| CliError::Message(format!("cannot read `{}`: {error}", directory.display())))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| !path.file_name().is_some_and(|name| name.to_string_lossy().starts_with('.')))
        .collect();
    entries.sort();
    Ok(entries)
}

/// Walks a directory under `root` (the directory named on the command line, canonical).
fn load_directory(root: &Path, directory: &Path, loaded: &mut Loaded) -> Result<(), CliError> {
    let entries = entries(directory)?;
    let names: Vec<String> = entries.iter().filter_map(|path| path.file_name().map(|name| name.to_string_lossy().into_owned())).collect();
    if current::sniff_directory(names.iter().map(String::as_str)) == Some(SourceKind::AppliedState) {
        return load_applied(directory, loaded);
    }
    for path in entries {
        let pass_over = |loaded: &mut Loaded, why: String| loaded.notes.push(format!("`{}` {why}; passed over", path.display()));
        let metadata =
            std::fs::symlink_metadata(&path).map_err(|error| CliError::Message(format!("cannot read `{}`: {error}", path.display())))?;
        if metadata.is_dir() {
            load_directory(root, &path, loaded)?;
        } else if metadata.is_file() {
            load_file(&path, loaded, true)?;
        } else if metadata.is_symlink() {
            match std::fs::canonicalize(&path) {
                Err(_) => pass_over(loaded, "is a link to nothing".into()),
                Ok(target) if !target.starts_with(root) => pass_over(loaded, format!("is a link leading out of `{}`", root.display())),
                Ok(target) if target.is_dir() => pass_over(loaded, "is a link to a directory".into()),
                Ok(_) => load_file(&path, loaded, true)?,
            }
        } else {
            pass_over(loaded, format!("is {}, not a regular file", crate::cli::describe_type(metadata.file_type())));
        }
    }
    Ok(())
}

/// Reads one file. Inside a directory a file that is no current-state source (a README, the
/// calico-node patch compile writes) is passed over with a note; named on its own, it is an
/// error.
fn load_file(path: &Path, loaded: &mut Loaded, in_directory: bool) -> Result<(), CliError> {
    // `--current out/manifest.json` means the directory it describes.
    if path.file_name().is_some_and(|name| name == applied::MANIFEST) {
        let directory = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
        return load_applied(directory, loaded);
    }
    let kinds = if in_directory { FileKinds::Regular } else { loaded.named };
    let (name, text) = crate::cli::read_file_as(path, kinds)?;
    let kind = current::sniff(&text);
    if kind == Some(SourceKind::Intent) {
        if in_directory {
            loaded.notes.push(format!("`{name}` is an intent; name it on its own (`--current {name}`) to plan against it"));
            return Ok(());
        }
        return load_intent(name, text, loaded);
    }
    let Some(kind) = kind else {
        if in_directory {
            loaded.notes.push(format!("`{name}` is not a current-state source; passed over"));
            return Ok(());
        }
        return Err(CliError::Message(format!(
            "cannot tell what `{name}` holds: expected Calico resources (`calicoctl get … -o yaml`), \
             Calico's Kubernetes datastore (`kubectl get ippools.crd.projectcalico.org,bgppeers.crd.projectcalico.org,nodes,… -o yaml`), \
             Secrets and Services (`kubectl get secrets,services,endpoints,endpointslices -A -o yaml`), \
             Felix's endpoint status files (`endpoint-status/<node>/…`), \
             `calicoctl ipam show --show-blocks`, `calicoctl get workloadendpoints -A -o wide`, or `ip route` / `ip -j route` output"
        )));
    };
    let mut fingerprint = fingerprint(&name, kind, current::text_digest(&text));
    // Route dumps and endpoint status files are named for their node; find it before reading
    // anything.
    let node = if kind == SourceKind::EndpointStatus {
        let directory = path.parent().and_then(Path::file_name).map(|name| name.to_string_lossy().into_owned());
        let above = path.parent().and_then(Path::parent).and_then(Path::file_name).map(|name| name.to_string_lossy().into_owned());
        let Some(node) = current::endpoint_status::node_of(directory.as_deref(), above.as_deref()) else {
            return Err(CliError::Message(format!(
                "`{name}` is an endpoint status file but its path does not say which node's: keep each node's files in \
                 `endpoint-status/<node>/`"
            )));
        };
        Some(node)
    } else if kind == SourceKind::NodeRoutes {
        let file_name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let directory = path.parent().and_then(Path::file_name).map(|name| name.to_string_lossy().into_owned());
        let Some(node) = ip_routes::node_of(&file_name, directory.as_deref()) else {
            return Err(CliError::Message(format!(
                "`{name}` holds routes but its name does not say which node's: name it `<node>.routes` or `<node>.json`, \
                 or put it in a `routes/` directory under the node's name"
            )));
        };
        Some(node)
    } else {
        None
    };
    let file = loaded.sources.add(name.clone(), text);
    let text = loaded.sources.file(file).text();
    match kind {
        SourceKind::CalicoResources => {
            let read = current::calico_yaml::read(file, text);
            loaded.diagnostics.extend(read.diagnostics);
            let installation = current::calico_yaml::installation(file, text);
            // A file holding only the Installation says nothing about Calico's resources.
            if let Some(resources) = read.value.filter(|resources| !(resources.resources.is_empty() && installation.is_some())) {
                fingerprint.resources = current::resource_digests(&resources);
                loaded.state.add_resources(resources);
            }
            if let Some(installation) = installation {
                fingerprint.resources.insert(current::INSTALLATION_KEY.into(), current::installation_digest(&installation));
                loaded.state.installation = Some(installation);
            }
        }
        SourceKind::Kubernetes => {
            let (read, secret_values) = current::kubernetes::read_with_secrets(file, text);
            // `kubectl get …,installation -o yaml` may hold the operator's Installation too.
            let installation = current::calico_yaml::installation(file, text);
            // Secrets' values are masked before anything can show them, and the source is
            // fingerprinted without them: no plan holds anything computed from a value.
            if !secret_values.is_empty() {
                loaded.sources.redact(&secret_values);
                fingerprint.sha256 = current::text_digest(loaded.sources.file(file).text());
            }
            loaded.diagnostics.extend(read.diagnostics);
            if let Some(export) = read.value {
                fingerprint.resources = current::resource_digests(&export.state.resources);
                loaded.state.add_kubernetes(export);
            }
            if let Some(installation) = installation {
                fingerprint.resources.insert(current::INSTALLATION_KEY.into(), current::installation_digest(&installation));
                loaded.state.installation = Some(installation);
            }
        }
        SourceKind::IpamBlocks => {
            let read = ipam_blocks::read(file, text);
            loaded.diagnostics.extend(read.diagnostics);
            if let Some(usage) = read.value {
                loaded.state.add_ipam_usage(usage);
            }
        }
        SourceKind::Workloads => {
            let read = workloads::read(file, text);
            loaded.diagnostics.extend(read.diagnostics);
            if let Some(workloads) = read.value {
                loaded.state.add_workloads(workloads);
            }
        }
        SourceKind::NodeRoutes => {
            let read = ip_routes::read(file, text);
            loaded.diagnostics.extend(read.diagnostics);
            if let (Some(routes), Some(node)) = (read.value, node) {
                loaded.state.add_node_routes(node, routes).map_err(|node| {
                    CliError::Message(format!("`{name}` gives the routes of `{node}`, which another source already gave"))
                })?;
            }
        }
        SourceKind::EndpointStatus => {
            let file_name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
            let read = current::endpoint_status::read(file, text, node.as_deref().unwrap_or_default(), &file_name);
            loaded.diagnostics.extend(read.diagnostics);
            if let Some(workload) = read.value {
                let workloads = loaded.state.local_workloads.get_or_insert_with(Vec::new);
                workloads.extend(workload);
                workloads.sort();
            }
        }
        SourceKind::AppliedState | SourceKind::Etcd | SourceKind::Intent => {
            unreachable!("not told from a file's content, or read before")
        }
    }
    loaded.state.sources.push(fingerprint);
    Ok(())
}

/// An intent as current state: checked (its diagnostics printed; errors stop the plan), then
/// compiled with the built-in templates and read back as an earlier compile's directory would
/// be.
fn load_intent(name: String, text: String, loaded: &mut Loaded) -> Result<(), CliError> {
    let digest = current::text_digest(&text);
    let checked = crate::pipeline::check(&name, text.clone(), None);
    crate::cli::report_intent(&checked);
    let Some(analysis) = checked.valid() else {
        return Err(CliError::Message(format!("`{name}`, given as current state, is not a valid intent")));
    };
    // What a plan compares: every target apply loads or records. `bird-calico` (confd's render)
    // is recorded where calico-node runs the nodes, and only a prediction on BIRD 2 hosts.
    let renders = analysis.model.node_agent == calplan_model::NodeAgent::CalicoNode;
    let targets: std::collections::BTreeSet<String> =
        calplan_targets::target_names().into_iter().filter(|target| renders || *target != "bird-calico").map(String::from).collect();
    // Only the Calico resources are kept as text: the node files of a large cluster are
    // gigabytes (each node's routes list every block), and a plan needs the text of only those
    // that change, which the intent renders again (checked anew: its analysis is not kept).
    let (digests, mut kept) = compile_intent(analysis, &targets, &|path| current::compiled::holds_resources(path))
        .map_err(|error| CliError::Message(format!("cannot compile `{name}`: {error}")))?;
    drop(checked);
    let render_name = name.clone();
    let origin = calplan_plan::file_text::Origin::new(Box::new(move |wanted| {
        let checked = crate::pipeline::check(&render_name, text.clone(), None);
        let analysis = checked.valid().ok_or_else(|| format!("`{render_name}` no longer checks"))?;
        compile_intent(analysis, &targets, wanted).map(|(_, kept)| kept)
    }));
    let mut artifacts = std::collections::BTreeMap::new();
    let mut resource_files = Vec::new();
    for (path, digest) in digests {
        let text = kept.remove(&path);
        if let Some(text) = &text {
            resource_files.push(loaded.sources.add(format!("{name} (compiled {path})"), text.clone()));
        }
        let file = calplan_plan::file_text::FileText::rendered(digest, text, &origin, &path);
        artifacts.insert(path, file);
    }
    let resource_texts: Vec<(calplan_diagnostics::FileId, &str)> =
        resource_files.iter().map(|file| (*file, loaded.sources.file(*file).text())).collect();
    let read = current::compiled::read(&resource_texts, artifacts);
    loaded.diagnostics.extend(read.diagnostics);
    let mut fingerprint = fingerprint(&name, SourceKind::Intent, digest);
    if let Some(applied) = read.value {
        fingerprint.resources = current::resource_digests(&applied.resources);
        loaded.state.add_applied(applied);
    }
    loaded.state.sources.push(fingerprint);
    Ok(())
}

/// Text (a digest or a file's contents) by artifact path.
type ByPath = std::collections::BTreeMap<String, String>;

/// Compiles an intent given as current state with the built-in templates: every artifact's
/// digest by path, and the texts of those `wanted` accepts.
fn compile_intent(
    analysis: &calplan_model::Analysis,
    targets: &std::collections::BTreeSet<String>,
    wanted: &(dyn Fn(&str) -> bool + Sync),
) -> Result<(ByPath, ByPath), String> {
    let templates = calplan_targets::Templates::builtin();
    let kept = calplan_plan::file_text::Kept::default();
    let sink = |artifact: &calplan_targets::Artifact| {
        if wanted(&artifact.path) {
            kept.keep(&artifact.path, &artifact.contents);
        }
        Ok(())
    };
    let context = calplan_targets::Context { analysis, templates: &templates, node: None, sink: Some(&sink) };
    let output = calplan_targets::compile(&context, Some(targets)).map_err(|error| error.to_string())?;
    let digests =
        output.artifacts.into_iter().map(|(_, artifact)| (artifact.sha256(), artifact.path)).map(|(digest, path)| (path, digest)).collect();
    Ok((digests, kept.into_inner()))
}

/// Reads an earlier compile's or apply's directory: the manifest, then exactly the files it
/// lists, each checked to lie inside the directory.
fn load_applied(directory: &Path, loaded: &mut Loaded) -> Result<(), CliError> {
    let name = directory.display().to_string();
    let (manifest_name, manifest_text) = crate::cli::read_file_as(&directory.join(applied::MANIFEST), FileKinds::Regular)?;
    let manifest_file = loaded.sources.add(manifest_name, manifest_text);
    let read = applied::read_manifest(manifest_file, loaded.sources.file(manifest_file).text());
    loaded.diagnostics.extend(read.diagnostics);
    let Some(manifest) = read.value else {
        return Ok(());
    };
    let root = std::fs::canonicalize(directory).map_err(|error| CliError::Message(format!("cannot read `{name}`: {error}")))?;
    let mut listed = Vec::new();
    for entry in &manifest.artifacts {
        let path = directory.join(&entry.path);
        if !path.exists() {
            listed.push((entry.path.as_str(), None));
            continue;
        }
        // A listed path must not lead out of the directory through a symbolic link.
        let resolved =
            std::fs::canonicalize(&path).map_err(|error| CliError::Message(format!("cannot read `{}`: {error}", path.display())))?;
        if !resolved.starts_with(&root) {
            return Err(CliError::Message(format!("`{}` leads outside `{name}`; calplan writes no links", path.display())));
        }
        let (file_name, text) = crate::cli::read_file_as(&path, FileKinds::Regular)?;
        listed.push((entry.path.as_str(), Some(loaded.sources.add(file_name, text))));
    }
    let listed_paths: BTreeSet<&str> = manifest.artifacts.iter().map(|entry| entry.path.as_str()).collect();
    let mut unlisted = Vec::new();
    collect_unlisted(directory, "", &listed_paths, &mut unlisted)?;
    let files: Vec<applied::ArtifactFile> = listed
        .iter()
        .map(|(path, file)| applied::ArtifactFile {
            path,
            file: file.unwrap_or(manifest_file),
            text: file.map(|file| loaded.sources.file(file).text()),
        })
        .collect();
    let manifest_text = loaded.sources.file(manifest_file).text();
    let read = applied::read(manifest_file, manifest_text, &files, &unlisted);
    let (digest, file_digests) = applied::fingerprint(manifest_text, &files);
    let mut fingerprint = fingerprint(&name, SourceKind::AppliedState, digest);
    fingerprint.files = file_digests;
    loaded.diagnostics.extend(read.diagnostics);
    if let Some(applied) = read.value {
        fingerprint.resources = current::resource_digests(&applied.resources);
        if let Some(installation) = &applied.installation {
            fingerprint.resources.insert(current::INSTALLATION_KEY.into(), current::installation_digest(installation));
        }
        loaded.state.add_applied(applied);
    }
    loaded.state.sources.push(fingerprint);
    Ok(())
}

/// The directory's files the manifest does not list, relative and `/`-separated. Links are
/// entries like any other, never followed: a link to `/` is one unlisted entry, not a walk of
/// the file system.
fn collect_unlisted(directory: &Path, prefix: &str, listed: &BTreeSet<&str>, unlisted: &mut Vec<String>) -> Result<(), CliError> {
    for path in entries(directory)? {
        let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let is_directory = std::fs::symlink_metadata(&path).is_ok_and(|metadata| metadata.is_dir());
        if is_directory {
            collect_unlisted(&path, &relative, listed, unlisted)?;
        } else if !listed.contains(relative.as_str()) {
            unlisted.push(relative);
        }
    }
    Ok(())
}

/// Prints what was passed over and the diagnostics from reading current state; fails on
/// errors.
pub fn report(loaded: &Loaded) -> Result<(), CliError> {
    for note in &loaded.notes {
        anstream::eprintln!("note: {note}");
    }
    if loaded.diagnostics.is_empty() {
        return Ok(());
    }
    let diagnostics = loaded.diagnostics.clone().into_sorted();
    anstream::eprint!("{}", calplan_diagnostics::render::human(&diagnostics, &loaded.sources, crate::cli::stderr_color()));
    if loaded.diagnostics.has_errors() {
        anstream::eprintln!("error: cannot read the current state: {}", loaded.diagnostics.summary());
        return Err(CliError::Reported);
    }
    Ok(())
}
