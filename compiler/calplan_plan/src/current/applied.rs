//! A directory written by `calplan compile -o` (and, once it exists, by `apply`): the last
//! state calplan wrote, read back as current state.
//!
//! `manifest.json` lists every artifact with its sha256. Each listed file is read and checked
//! against its digest: a mismatch, or a missing file, means the directory was edited by hand
//! and no longer records what calplan wrote, which is an error, since a plan from it would
//! undo or repeat someone's change blindly. `calico/*.yaml` files holding Calico resources
//! are read as Calico resources (`calico-node-env.yaml`, a DaemonSet patch, is not one).
//!
//! Reading takes two steps because the CLI must not open a path it has not validated:
//! [`read_manifest`] checks that every listed path is a plain relative path inside the
//! directory, then the CLI reads those files and [`read`] checks them. Files the manifest
//! does not list are warned about and ignored, except the names [`RESERVED`] keeps for
//! apply's own records (its state record and lock), and hidden files. The manifest may carry
//! fields this reader does not know (apply will add some): they are ignored. Pure: texts in,
//! artifacts, resources and diagnostics out.

use crate::current::calico_yaml::{self, UNREADABLE_STATE};
use crate::current::{Read, SourceKind, sniff, text_digest};
use calplan_calico::resources::ResourceSet;
use calplan_diagnostics::{Diagnostic, Diagnostics, FileId, Severity, Span};
use serde::Deserialize;
use std::collections::BTreeMap;

pub const MANIFEST: &str = "manifest.json";

/// Names beside the artifacts that are not artifacts: the manifest, and apply's state record
/// and lock.
pub const RESERVED: &[&str] = &[MANIFEST, "state.json", "apply.lock"];

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Manifest {
    pub generator: String,
    pub artifacts: Vec<ManifestEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    pub sha256: String,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub secret: bool,
}

/// One listed artifact as the CLI found it: `None` when the file is missing.
pub struct ArtifactFile<'a> {
    pub path: &'a str,
    pub file: FileId,
    pub text: Option<&'a str>,
}

/// What the directory holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    /// Every listed artifact, by path.
    pub artifacts: BTreeMap<String, crate::file_text::FileText>,
    /// The Calico resources among them.
    pub resources: ResourceSet,
    /// The operator's Installation among them (`calico/installation.yaml`), if any.
    pub installation: Option<serde_json::Value>,
}

/// A path that stays inside the directory: relative, `/`-separated, no `.` or `..`
/// components, nothing a shell or a file system would read otherwise.
pub fn is_plain_relative_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|part| !part.is_empty() && part != "." && part != ".." && part.chars().all(|c| !c.is_control() && c != '\\'))
}

/// Where an entry's field sits in the manifest's text: serde_json keeps no positions, so the
/// entry is found by its path, quoted as JSON quotes it.
fn entry_span(file: FileId, text: &str, path: &str, field: &str) -> Span {
    let quoted = serde_json::to_string(path).unwrap_or_default();
    let Some(at) = text.find(&format!("\"path\": {quoted}")).or_else(|| text.find(&quoted)) else {
        return Span::new(file, 0, 0);
    };
    if field == "path" {
        let start = text[at..].find(&quoted).map_or(at, |offset| at + offset);
        return Span::new(file, start, start + quoted.len());
    }
    // The field's value within the same object.
    let object_end = text[at..].find('}').map_or(text.len(), |offset| at + offset);
    let key = format!("\"{field}\"");
    match text[at..object_end].find(&key) {
        Some(offset) => {
            let value_start = text[at + offset + key.len()..object_end].find('"').map_or(at + offset, |o| at + offset + key.len() + o);
            let value_end = text[value_start + 1..object_end].find('"').map_or(value_start, |o| value_start + 1 + o + 1);
            Span::new(file, value_start, value_end)
        }
        None => Span::new(file, at, at),
    }
}

/// Reads `manifest.json` and checks every listed path before the CLI opens any.
pub fn read_manifest(file: FileId, text: &str) -> Read<Manifest> {
    let mut diagnostics = Diagnostics::new();
    let manifest: Manifest = match serde_json::from_str(text) {
        Ok(manifest) => manifest,
        Err(error) => {
            let start: usize = text.split_inclusive('\n').take(error.line().saturating_sub(1)).map(str::len).sum();
            let offset = (start + error.column().saturating_sub(1)).min(text.len());
            diagnostics.push(
                Diagnostic::new(&UNREADABLE_STATE, Span::new(file, offset, offset), format!("cannot read the manifest: {error}"))
                    .label("here")
                    .help("pass a directory written by `calplan compile -o DIR` or `calplan apply`"),
            );
            return Read { value: None, diagnostics };
        }
    };
    if manifest.generator != "calplan" {
        diagnostics.push(
            Diagnostic::new(
                &UNREADABLE_STATE,
                Span::new(file, 0, 0),
                format!("the manifest was written by `{}`, not calplan", manifest.generator),
            )
            .label("expected `\"generator\": \"calplan\"`")
            .help("pass a directory written by `calplan compile -o DIR` or `calplan apply`"),
        );
    }
    for entry in &manifest.artifacts {
        if !is_plain_relative_path(&entry.path) || RESERVED.contains(&entry.path.as_str()) {
            diagnostics.push(
                Diagnostic::new(
                    &UNREADABLE_STATE,
                    entry_span(file, text, &entry.path, "path"),
                    format!("`{}` is not a path inside the directory", entry.path),
                )
                .label("expected a relative path such as `nodes/<node>/routes`")
                .help("the manifest was edited by hand; compile again"),
            );
        }
    }
    let value = (!diagnostics.has_errors()).then_some(manifest);
    Read { value, diagnostics }
}

/// Checks every listed artifact against its digest and reads the Calico resources among them.
/// `unlisted` are the directory's other files, relative and `/`-separated.
pub fn read(manifest_file: FileId, manifest_text: &str, files: &[ArtifactFile], unlisted: &[String]) -> Read<Applied> {
    let mut diagnostics = Diagnostics::new();
    let Some(manifest) = serde_json::from_str::<Manifest>(manifest_text).ok() else {
        return read_manifest(manifest_file, manifest_text).map_value(|_| Applied::default());
    };
    let mut applied = Applied::default();
    for entry in &manifest.artifacts {
        let Some(found) = files.iter().find(|file| file.path == entry.path) else {
            continue;
        };
        let Some(text) = found.text else {
            diagnostics.push(
                Diagnostic::new(
                    &UNREADABLE_STATE,
                    entry_span(manifest_file, manifest_text, &entry.path, "path"),
                    format!("`{}` is missing", entry.path),
                )
                .label("listed here")
                .help("the directory was edited by hand: compile again, or restore the file"),
            );
            continue;
        };
        let digest = text_digest(text);
        if !digest.eq_ignore_ascii_case(&entry.sha256) {
            diagnostics.push(
                Diagnostic::new(
                    &UNREADABLE_STATE,
                    entry_span(manifest_file, manifest_text, &entry.path, "sha256"),
                    format!("`{}` was edited by hand: its sha256 is {digest}, not the manifest's", entry.path),
                )
                .label("the digest calplan wrote")
                .help("the directory no longer records what calplan wrote: compile again, or restore the file"),
            );
            continue;
        }
        if entry.path.starts_with("calico/") && entry.path.ends_with(".yaml") && sniff(text) == Some(SourceKind::CalicoResources) {
            let read = calico_yaml::read(found.file, text);
            diagnostics.extend(read.diagnostics);
            if let Some(resources) = read.value {
                for resource in resources.resources.into_values().map(std::sync::Arc::unwrap_or_clone) {
                    applied.resources.insert(resource);
                }
            }
            if let Some(installation) = calico_yaml::installation(found.file, text) {
                applied.installation = Some(installation);
            }
        }
        applied.artifacts.insert(entry.path.clone(), crate::file_text::FileText::held_with_digest(text, digest));
    }
    for path in unlisted {
        let name = path.rsplit('/').next().unwrap_or(path);
        if RESERVED.contains(&path.as_str()) || name.starts_with('.') {
            continue;
        }
        diagnostics.push(
            Diagnostic::new(
                &UNREADABLE_STATE,
                Span::new(manifest_file, 0, 0),
                format!("`{path}` is not listed in the manifest and is ignored"),
            )
            .severity(Severity::Warning)
            .label("the manifest")
            .help("calplan writes every artifact it makes into the manifest; move other files elsewhere"),
        );
    }
    let value = (!diagnostics.has_errors()).then_some(applied);
    Read { value, diagnostics }
}

/// The fingerprint of the directory as read: a digest over the manifest and every listed
/// file's path and content (a missing file counted as such), and each present file's own
/// digest by path. A plan must go stale when anything it was computed from changes, and a file
/// edited in place changes its content, not the manifest.
pub fn fingerprint(manifest_text: &str, files: &[ArtifactFile]) -> (String, BTreeMap<String, String>) {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    field(manifest_text.as_bytes());
    let mut sorted: Vec<&ArtifactFile> = files.iter().collect();
    sorted.sort_by_key(|file| file.path);
    let mut digests = BTreeMap::new();
    for file in sorted {
        field(file.path.as_bytes());
        match file.text {
            Some(text) => {
                field(b"present");
                field(text.as_bytes());
                digests.insert(file.path.to_string(), text_digest(text));
            }
            None => field(b"missing"),
        }
    }
    (calplan_targets::Artifact::hex_digest(&hasher.finalize()), digests)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: default-ipv4-ippool\nspec:\n  cidr: 192.168.0.0/16\n  blockSize: 26\n";
    const ENV: &str = "spec:\n  template:\n    spec:\n      containers:\n      - name: calico-node\n";
    const ROUTES: &str = "blackhole 192.168.0.0/26 proto bird\n";

    fn manifest(entries: &[(&str, &str)]) -> String {
        let artifacts: Vec<serde_json::Value> = entries
            .iter()
            .map(|(path, text)| serde_json::json!({"path": path, "sha256": text_digest(text), "target": "calico", "source": "spec"}))
            .collect();
        serde_json::to_string_pretty(&serde_json::json!({"generator": "calplan", "artifacts": artifacts})).unwrap()
    }

    fn files<'a>(entries: &'a [(&'a str, Option<&'a str>)]) -> Vec<ArtifactFile<'a>> {
        entries.iter().enumerate().map(|(index, (path, text))| ArtifactFile { path, file: FileId(index as u32 + 1), text: *text }).collect()
    }

    #[test]
    fn reads_artifacts_and_the_resources_among_them() {
        let manifest_text = manifest(&[("calico/calico-node-env.yaml", ENV), ("calico/ippools.yaml", POOL), ("nodes/n1/routes", ROUTES)]);
        assert!(read_manifest(FileId(0), &manifest_text).diagnostics.is_empty());
        let listed = [("calico/calico-node-env.yaml", Some(ENV)), ("calico/ippools.yaml", Some(POOL)), ("nodes/n1/routes", Some(ROUTES))];
        let read = read(FileId(0), &manifest_text, &files(&listed), &["state.json".into(), ".calplan-lock".into()]);
        assert!(read.diagnostics.is_empty(), "{:?}", read.diagnostics);
        let applied = read.value.unwrap();
        assert_eq!(applied.artifacts.len(), 3);
        assert_eq!(&*applied.artifacts["nodes/n1/routes"], ROUTES);
        assert_eq!(applied.resources.pools().next().unwrap().metadata.name, "default-ipv4-ippool");
    }

    #[test]
    fn an_edited_or_missing_file_is_an_error_at_its_manifest_entry() {
        let manifest_text = manifest(&[("calico/ippools.yaml", POOL), ("nodes/n1/routes", ROUTES)]);
        let edited = POOL.replace("26", "24");
        let listed = [("calico/ippools.yaml", Some(edited.as_str())), ("nodes/n1/routes", None)];
        let read = read(FileId(0), &manifest_text, &files(&listed), &["notes.txt".into()]);
        assert!(read.value.is_none());
        let found: Vec<(&str, &str, Severity)> = read
            .diagnostics
            .iter()
            .map(|d| (&manifest_text[d.span().start as usize..d.span().end as usize], d.message.as_str(), d.severity))
            .collect();
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0].0, format!("\"{}\"", text_digest(POOL)));
        assert!(found[0].1.starts_with("`calico/ippools.yaml` was edited by hand"));
        assert_eq!(found[1], ("\"nodes/n1/routes\"", "`nodes/n1/routes` is missing", Severity::Error));
        assert_eq!(found[2].2, Severity::Warning);
    }

    #[test]
    fn the_fingerprint_follows_every_files_content() {
        let manifest_text = manifest(&[("calico/ippools.yaml", POOL), ("nodes/n1/routes", ROUTES)]);
        let listed = [("calico/ippools.yaml", Some(POOL)), ("nodes/n1/routes", Some(ROUTES))];
        let (digest, files_digests) = fingerprint(&manifest_text, &files(&listed));
        assert_eq!(files_digests["nodes/n1/routes"], text_digest(ROUTES));
        let edited = POOL.replace("26", "24");
        let changed = [("calico/ippools.yaml", Some(edited.as_str())), ("nodes/n1/routes", Some(ROUTES))];
        let (edited_digest, edited_files) = fingerprint(&manifest_text, &files(&changed));
        assert_ne!(digest, edited_digest, "the manifest is the same, the content is not");
        assert_ne!(edited_files["calico/ippools.yaml"], files_digests["calico/ippools.yaml"]);
        assert_eq!(edited_files["nodes/n1/routes"], files_digests["nodes/n1/routes"]);
        let missing = [("calico/ippools.yaml", Some(POOL)), ("nodes/n1/routes", None)];
        assert_ne!(fingerprint(&manifest_text, &files(&missing)).0, digest);
        let reordered = [("nodes/n1/routes", Some(ROUTES)), ("calico/ippools.yaml", Some(POOL))];
        assert_eq!(fingerprint(&manifest_text, &files(&reordered)).0, digest, "listing order does not matter");
    }

    #[test]
    fn paths_that_leave_the_directory_are_refused() {
        for path in ["../etc/passwd", "/etc/passwd", "nodes//routes", "nodes/./routes", "manifest.json", "a\\b"] {
            let text = manifest(&[(path, "")]);
            let read = read_manifest(FileId(0), &text);
            assert!(read.value.is_none(), "{path}");
        }
        assert!(read_manifest(FileId(0), "{\"generator\": \"calplan\"").value.is_none());
    }
}
