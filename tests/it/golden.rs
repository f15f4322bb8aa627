//! Golden files: compare, or rewrite them with `UPDATE_GOLDEN=1`.

use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|value| value == "1")
}

/// Compares `actual` with the file at `path`, or writes it when updating. Returns a
/// description of the mismatch instead of panicking, so a harness can report every file.
pub fn check(path: &Path, actual: &str) -> Result<(), String> {
    if updating() {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| error.to_string())?;
        }
        std::fs::write(path, actual).map_err(|error| format!("{}: {error}", path.display()))?;
        return Ok(());
    }
    let expected = std::fs::read_to_string(path)
        .map_err(|_| format!("{}: missing golden file; run `UPDATE_GOLDEN=1 cargo test` and review the result", path.display()))?;
    if expected == actual {
        return Ok(());
    }
    let diff = similar::TextDiff::from_lines(&expected, actual).unified_diff().context_radius(3).header("expected", "actual").to_string();
    Err(format!("{} differs from the golden file:\n{diff}", path.display()))
}

/// Panics with every mismatch at once.
pub fn assert_all(failures: Vec<String>) {
    assert!(failures.is_empty(), "{} golden mismatches:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// Compares every artifact of a compile with `expected/<path>`, and reports golden files under
/// `expected/<group>/*/` named in `files` that no artifact produced any more (stale); with
/// `UPDATE_GOLDEN=1` writes the artifacts and removes the stale files.
pub fn check_artifacts(expected: &Path, output: &calplan_targets::Output, group: &str, files: &[&str]) -> Vec<String> {
    let mut failures = Vec::new();
    let mut produced = std::collections::BTreeSet::new();
    for (_, artifact) in &output.artifacts {
        let path = expected.join(&artifact.path);
        if let Err(failure) = check(&path, &artifact.contents) {
            failures.push(failure);
        }
        produced.insert(path);
    }
    for owner in std::fs::read_dir(expected.join(group)).into_iter().flatten().flatten() {
        for file in files {
            let path = owner.path().join(file);
            if !path.is_file() || produced.contains(&path) {
                continue;
            }
            if updating() {
                std::fs::remove_file(&path).unwrap();
            } else {
                failures.push(format!("{}: stale golden file, no artifact matches it", path.display()));
            }
        }
    }
    failures
}
