//! An intent named as current state (`calplan plan head.yaml --current base.yaml`): the cluster
//! as if that intent had been compiled and applied, so CI can show what a pull request changes
//! against its base branch before anyone reaches a cluster.
//!
//! The CLI checks and compiles the intent; this reads the artifacts back as an earlier
//! compile's directory is read (the Calico resources from `calico/*.yaml`, the files by path),
//! so `--current base.yaml` and `--current out/` (after `compile base.yaml -o out/`) plan alike.
//! Pure: artifacts in, the applied state out.

use crate::current::applied::Applied;
use crate::current::{Read, SourceKind, calico_yaml, sniff};
use crate::file_text::FileText;
use calplan_diagnostics::{Diagnostics, FileId};
use std::collections::BTreeMap;

/// Whether the CLI registers an artifact's text as a source: the Calico resources, read back
/// with located diagnostics.
pub fn holds_resources(path: &str) -> bool {
    path.starts_with("calico/") && path.ends_with(".yaml")
}

/// The applied state of compiled artifacts (by path); `resource_files` are those for which
/// [`holds_resources`] holds, registered as sources.
pub fn read(resource_files: &[(FileId, &str)], artifacts: BTreeMap<String, FileText>) -> Read<Applied> {
    let mut diagnostics = Diagnostics::new();
    let mut applied = Applied { artifacts, ..Applied::default() };
    for (file, text) in resource_files {
        if sniff(text) != Some(SourceKind::CalicoResources) {
            continue;
        }
        let read = calico_yaml::read(*file, text);
        diagnostics.extend(read.diagnostics);
        for resource in read.value.into_iter().flat_map(|resources| resources.resources.into_values()).map(std::sync::Arc::unwrap_or_clone)
        {
            applied.resources.insert(resource);
        }
    }
    let value = (!diagnostics.has_errors()).then_some(applied);
    Read { value, diagnostics }
}
