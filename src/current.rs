//! Reading `--current SOURCE`s (the I/O edge of planning): files, directories of them, an earlier output directory, or
//! `etcd://HOST:PORT`. Each file's kind is told from its content.

use crate::cli::CliError;
use calplan_diagnostics::{Diagnostics, SourceMap};
use calplan_plan::current::{self, CurrentState, SourceKind};
use calplan_plan::plan::SourceFingerprint;
use std::path::{Path, PathBuf};

/// Every source read, combined, with the diagnostics raised while reading.
pub struct Loaded {
    pub state: CurrentState,
    pub sources: SourceMap,
    pub diagnostics: Diagnostics,
}

pub fn load(sources: &[String]) -> Result<Loaded, CliError> {
    let mut loaded = Loaded { state: CurrentState::default(), sources: SourceMap::new(), diagnostics: Diagnostics::new() };
    for source in sources {
        if source.starts_with("etcd://") {
            return Err(CliError::Message(format!("`{source}`: reading etcd is not supported by this build")));
        }
        let path = PathBuf::from(source);
        if path.is_dir() {
            load_directory(&path, &mut loaded)?;
        } else {
            load_file(&path, &mut loaded)?;
        }
    }
    Ok(loaded)
}

fn load_directory(directory: &Path, loaded: &mut Loaded) -> Result<(), CliError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(directory)
        .map_err(|error| CliError::Message(format!("cannot read `{}`: {error}", directory.display())))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| !path.file_name().is_some_and(|name| name.to_string_lossy().starts_with('.')))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            load_directory(&path, loaded)?;
        } else {
            load_file(&path, loaded)?;
        }
    }
    Ok(())
}

fn load_file(path: &Path, loaded: &mut Loaded) -> Result<(), CliError> {
    let (name, text) = crate::cli::read_text(path)?;
    let Some(kind) = current::sniff(&text) else {
        return Err(CliError::Message(format!(
            "cannot tell what `{name}` holds: expected Calico resources (`calicoctl get … -o yaml`), \
             `calicoctl ipam show --show-blocks`, `calicoctl get workloadendpoints -A -o wide`, or `ip route` / `ip -j route` output"
        )));
    };
    let mut fingerprint =
        SourceFingerprint { name: name.clone(), kind: kind.as_str().to_string(), sha256: current::text_digest(&text), resources: Default::default() };
    let file = loaded.sources.add(name.clone(), text);
    let text = loaded.sources.file(file).text();
    match kind {
        SourceKind::CalicoResources => {
            let read = current::calico_yaml::read(file, text);
            loaded.diagnostics.extend(read.diagnostics);
            if let Some(resources) = read.value {
                fingerprint.resources = current::resource_digests(&resources);
                loaded.state.add_resources(resources);
            }
        }
        other => {
            return Err(CliError::Message(format!("`{name}` holds {}, which this build cannot read yet", other.as_str())));
        }
    }
    loaded.state.sources.push(fingerprint);
    Ok(())
}

/// Prints the diagnostics from reading current state; fails on errors.
pub fn report(loaded: &Loaded) -> Result<(), CliError> {
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
