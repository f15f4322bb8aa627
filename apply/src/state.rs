//! The state directory: what was applied, after every stage, so that an interrupted apply can
//! be run again and converge, and the next plan can compare against what nodes run.
//!
//! ```text
//! STATE/lock           the apply lock
//! STATE/state.json     the plan being applied and each stage's outcome, with hashes
//! STATE/applied/       the files on every node and router, laid out as `compile -o` lays
//!                      them out (with manifest.json), so `--current STATE/applied` plans
//!                      against them
//! ```
//!
//! Files are written to a temporary name and renamed, so a crash never leaves half a record.
//! Files that hold secrets are never copied here.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateRecord {
    /// sha256 of the plan file being applied.
    pub plan: String,
    pub stages: Vec<StageRecord>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageRecord {
    pub number: usize,
    pub title: String,
    pub outcome: Outcome,
    /// Every change taken, with the sha256 of what was written.
    pub applied: Vec<AppliedChange>,
    /// Changes left for a later apply (`--only`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Complete,
    /// Done except what `--only` left out.
    Partial,
    /// A step or barrier failed and the stage's changes were rolled back.
    RolledBack,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedChange {
    pub action: String,
    pub kind: String,
    pub name: String,
    pub target: String,
    pub sha256: String,
}

pub struct StateDir {
    pub root: PathBuf,
}

impl StateDir {
    pub fn new(root: &Path) -> StateDir {
        StateDir { root: root.to_path_buf() }
    }

    pub fn read(&self) -> Result<StateRecord, String> {
        let path = self.root.join("state.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|error| format!("`{}` is not a calplan state record: {error}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(StateRecord::default()),
            Err(error) => Err(format!("cannot read `{}`: {error}", path.display())),
        }
    }

    pub fn write(&self, record: &StateRecord) -> Result<(), String> {
        let mut text = serde_json::to_string_pretty(record).expect("state serializes");
        text.push('\n');
        write_atomically(&self.root.join("state.json"), text.as_bytes(), 0o644)
    }

    /// The files on nodes and routers as the last apply left them.
    pub fn applied_files(&self) -> BTreeMap<String, String> {
        let manifest = self.root.join("applied/manifest.json");
        let Ok(text) = std::fs::read_to_string(manifest) else { return BTreeMap::new() };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else { return BTreeMap::new() };
        value["artifacts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry["path"].as_str())
            .filter_map(|path| Some((path.to_string(), std::fs::read_to_string(self.root.join("applied").join(path)).ok()?)))
            .collect()
    }

    /// Records one file as applied (or removed, with `None`), and rewrites the manifest.
    pub fn record_file(&self, path: &str, contents: Option<&str>) -> Result<(), String> {
        let applied = self.root.join("applied");
        let mut files = self.applied_files();
        match contents {
            Some(text) => {
                files.insert(path.to_string(), text.to_string());
                write_atomically(&applied.join(path), text.as_bytes(), 0o644)?;
            }
            None => {
                files.remove(path);
                let _ = std::fs::remove_file(applied.join(path));
            }
        }
        self.write_manifest(&files)
    }

    /// Starts the record of node and router files over from `baseline`: the files the plan's
    /// applied-directory source held, which are what the hosts ran when the plan was made.
    /// The plan carries only the files it changes, so without this the directory would hold
    /// those alone, and a plan against it would take every other file for missing. Recorded
    /// node and router files the baseline lacks are dropped; other entries are kept.
    pub fn reset_applied(&self, baseline: &BTreeMap<String, String>) -> Result<(), String> {
        let applied = self.root.join("applied");
        let is_host_file = |path: &str| path.starts_with("nodes/") || path.starts_with("routers/");
        let mut files = self.applied_files();
        for path in files.keys().filter(|path| is_host_file(path) && !baseline.contains_key(*path)) {
            let _ = std::fs::remove_file(applied.join(path));
        }
        files.retain(|path, _| !is_host_file(path));
        for (path, text) in baseline.iter().filter(|(path, _)| is_host_file(path)) {
            if !calplan_plan::current::applied::is_plain_relative_path(path) {
                return Err(format!("refusing to record `{path}`: not a plain relative path"));
            }
            write_atomically(&applied.join(path), text.as_bytes(), 0o644)?;
            files.insert(path.clone(), text.clone());
        }
        self.write_manifest(&files)
    }

    fn write_manifest(&self, files: &BTreeMap<String, String>) -> Result<(), String> {
        let applied = self.root.join("applied");
        let artifacts: Vec<serde_json::Value> = files
            .iter()
            .map(|(path, text)| {
                serde_json::json!({
                    "path": path,
                    "sha256": calplan_plan::current::text_digest(text),
                    "target": "applied",
                    "source": "calplan apply",
                })
            })
            .collect();
        let mut manifest =
            serde_json::to_string_pretty(&serde_json::json!({"generator": "calplan", "artifacts": artifacts})).expect("manifest");
        manifest.push('\n');
        write_atomically(&applied.join("manifest.json"), manifest.as_bytes(), 0o644)
    }
}

/// Writes a file through a temporary sibling and a rename.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), String> {
    let io = |error: std::io::Error| format!("cannot write `{}`: {error}", path.display());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let temporary = path.with_extension(format!("calplan-tmp-{}", std::process::id()));
    // Created with its final mode (less the umask), so a secret is never readable by others
    // on the way; a leftover from a crash is replaced, not reused with its old mode.
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&temporary).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}
