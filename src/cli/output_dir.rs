//! Writing `compile -o DIR`: a directory calplan owns, replaced only when calplan wrote it.
//!
//! `DIR` may be new, empty, or an earlier output of calplan: its `manifest.json` says
//! `"generator": "calplan"` and every file in it is one the manifest lists. Anything else —
//! a web project's `manifest.json`, a `.git`, an intent beside its outputs, a link — would be
//! deleted by the replacement, so calplan refuses and names what would be lost.
//!
//! The new output is rendered into a staging directory inside `DIR` (`.calplan-new-PID`, on
//! the same file system, so every move is a rename), each artifact written as it is rendered.
//! Only when all of it is written are the old entries moved aside (`.calplan-old-PID`), the new
//! ones moved in, and the new manifest renamed over the old one, last; then the old entries
//! are removed. `DIR` itself is never renamed, so `-o .`, a mount point or a link to a
//! directory work, and a failed render leaves the old output as it was.

use super::CliError;
use calplan_plan::current::applied::{MANIFEST, Manifest, is_plain_relative_path};
use calplan_targets::Output;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Names of calplan's own staging directories inside an output directory.
const STAGING: &str = ".calplan-new-";
const RETIRED: &str = ".calplan-old-";

/// How many of the files that would be lost a refusal names.
const NAMED: usize = 10;

fn io(what: &str, path: &Path, error: std::io::Error) -> CliError {
    CliError::Message(format!("cannot {what} `{}`: {error}", path.display()))
}

/// What `-o DIR` points at.
enum Existing {
    Missing,
    /// A directory holding nothing but calplan's own staging leftovers, or an earlier output.
    Replaceable,
}

/// Renders into a staging directory inside `target`, then swaps the result in (see the module
/// documentation). Returns how many files were written.
pub fn write_output<F>(target: &Path, render: F) -> Result<usize, CliError>
where
    F: FnOnce(calplan_targets::Sink) -> Result<Output, String>,
{
    let existing = inspect(target)?;
    if matches!(existing, Existing::Missing) {
        std::fs::create_dir_all(target).map_err(|error| io("create", target, error))?;
    }
    remove_leftovers(target);
    let staging = target.join(format!("{STAGING}{}", std::process::id()));
    let retired = target.join(format!("{RETIRED}{}", std::process::id()));
    std::fs::create_dir(&staging).map_err(|error| io("create", &staging, error))?;
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
        let manifest = staging.join(MANIFEST);
        std::fs::write(&manifest, output.manifest_json()).map_err(|error| format!("cannot write `{}`: {error}", manifest.display()))?;
        Ok(output.artifacts.len() + 1)
    });
    let count = match result {
        Ok(count) => count,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            if matches!(existing, Existing::Missing) {
                let _ = std::fs::remove_dir(target);
            }
            return Err(CliError::Message(error));
        }
    };
    swap(target, &staging, &retired)?;
    Ok(count)
}

/// Moves the old output aside and the new one in, the manifest last, then removes the old.
fn swap(target: &Path, staging: &Path, retired: &Path) -> Result<(), CliError> {
    let own = |name: &OsString| {
        let name = name.to_string_lossy();
        name.starts_with(STAGING) || name.starts_with(RETIRED)
    };
    std::fs::create_dir(retired).map_err(|error| io("create", retired, error))?;
    for name in names(target)?.into_iter().filter(|name| !own(name) && name != MANIFEST) {
        std::fs::rename(target.join(&name), retired.join(&name)).map_err(|error| io("replace", &target.join(&name), error))?;
    }
    for name in names(staging)?.into_iter().filter(|name| name != MANIFEST) {
        std::fs::rename(staging.join(&name), target.join(&name)).map_err(|error| io("write", &target.join(&name), error))?;
    }
    std::fs::rename(staging.join(MANIFEST), target.join(MANIFEST)).map_err(|error| io("write", &target.join(MANIFEST), error))?;
    let _ = std::fs::remove_dir(staging);
    let _ = std::fs::remove_dir_all(retired);
    Ok(())
}

/// The names in a directory, sorted.
fn names(directory: &Path) -> Result<Vec<OsString>, CliError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(directory).map_err(|error| io("read", directory, error))? {
        names.push(entry.map_err(|error| io("read", directory, error))?.file_name());
    }
    names.sort();
    Ok(names)
}

/// Removes staging directories an interrupted compile left, those whose process is gone.
fn remove_leftovers(target: &Path) {
    let Ok(names) = names(target) else { return };
    for name in names {
        let text = name.to_string_lossy();
        let Some(pid) = text.strip_prefix(STAGING).or_else(|| text.strip_prefix(RETIRED)) else { continue };
        if pid.parse::<u32>().is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_dir_all(target.join(&name));
        }
    }
}

/// Whether `target` may be written, and if not, an error naming what replacing it would lose.
fn inspect(target: &Path) -> Result<Existing, CliError> {
    let shown = target.display();
    match std::fs::symlink_metadata(target) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Missing),
        Err(error) => return Err(io("read", target, error)),
        Ok(_) => {}
    }
    // A link to a directory is written through; the directory itself must qualify.
    let metadata = std::fs::metadata(target).map_err(|error| io("read", target, error))?;
    if !metadata.is_dir() {
        let what = if metadata.is_file() { "a file" } else { super::describe_type(metadata.file_type()) };
        return Err(CliError::Message(format!("`{shown}` is {what}, not a directory; choose a new or empty directory for the output")));
    }
    let entries: Vec<OsString> = names(target)?
        .into_iter()
        .filter(|name| {
            let name = name.to_string_lossy();
            !name.starts_with(STAGING) && !name.starts_with(RETIRED)
        })
        .collect();
    if entries.is_empty() {
        return Ok(Existing::Replaceable);
    }
    let listed = match calplan_manifest(target) {
        Ok(listed) => listed,
        Err(why) => {
            let lost: Vec<String> = entries.iter().map(|name| top_level(target, name)).collect();
            return Err(refusal(target, &why, &lost, lost.len()));
        }
    };
    let mut lost = Vec::new();
    let mut count = 0;
    unlisted(target, "", &listed, &mut lost, &mut count)?;
    if count > 0 {
        return Err(refusal(target, "it holds files its manifest does not list", &lost, count));
    }
    Ok(Existing::Replaceable)
}

/// A top-level entry as a refusal names it: directories with a trailing `/`.
fn top_level(target: &Path, name: &OsString) -> String {
    let is_directory = std::fs::symlink_metadata(target.join(name)).is_ok_and(|metadata| metadata.is_dir());
    format!("{}{}", name.to_string_lossy(), if is_directory { "/" } else { "" })
}

fn refusal(target: &Path, why: &str, lost: &[String], count: usize) -> CliError {
    let mut named: Vec<String> = lost.iter().take(NAMED).map(|path| format!("`{}`", calplan_diagnostics::echo::shorten(path))).collect();
    if count > named.len() {
        named.push(format!("and {} more", count - named.len()));
    }
    CliError::Message(format!(
        "will not replace `{}`: {why}, and replacing it would delete {}; choose a new or empty directory, or move them away",
        target.display(),
        named.join(", ")
    ))
}

/// The paths the directory's manifest lists, if calplan wrote it.
fn calplan_manifest(target: &Path) -> Result<BTreeSet<String>, String> {
    let path = target.join(MANIFEST);
    match std::fs::symlink_metadata(&path) {
        Ok(metadata) if metadata.is_file() => {}
        Ok(_) => return Err(format!("its `{MANIFEST}` is not a file calplan wrote")),
        Err(_) => return Err(format!("it has no `{MANIFEST}`, so calplan did not write it")),
    }
    let (_, text) = super::read_file_as(&path, super::FileKinds::Regular).map_err(|error| error.to_string())?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|_| format!("its `{MANIFEST}` is not one calplan wrote"))?;
    if manifest.generator != "calplan" || !manifest.artifacts.iter().all(|entry| is_plain_relative_path(&entry.path)) {
        return Err(format!("its `{MANIFEST}` is not one calplan wrote"));
    }
    Ok(manifest.artifacts.into_iter().map(|entry| entry.path).collect())
}

/// Collects what under `directory` the manifest does not list: files, links (never followed)
/// and anything else, stopping the names at [`NAMED`] but counting all. Directories are
/// walked only along listed paths, so an unlisted directory is one entry.
fn unlisted(directory: &Path, prefix: &str, listed: &BTreeSet<String>, lost: &mut Vec<String>, count: &mut usize) -> Result<(), CliError> {
    for name in names(directory)? {
        let text = name.to_string_lossy();
        if prefix.is_empty() && (text == MANIFEST || text.starts_with(STAGING) || text.starts_with(RETIRED)) {
            continue;
        }
        let relative = if prefix.is_empty() { text.into_owned() } else { format!("{prefix}/{text}") };
        let path: PathBuf = directory.join(&name);
        let metadata = std::fs::symlink_metadata(&path).map_err(|error| io("read", &path, error))?;
        let within = format!("{relative}/");
        if metadata.is_dir() && listed.iter().any(|listed| listed.starts_with(&within)) {
            unlisted(&path, &relative, listed, lost, count)?;
        } else if !(metadata.is_file() && listed.contains(&relative)) {
            *count += 1;
            if lost.len() < NAMED {
                lost.push(if metadata.is_dir() { within } else { relative });
            }
        }
    }
    Ok(())
}
