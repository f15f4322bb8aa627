//! Every `testdata/**/intent.yaml` is a scenario; its expected outputs sit beside it.
//!
//! - `check.stderr` and `check.json`: the diagnostics, human (no colour) and JSON;
//! - for valid intents, `status.txt`, `status.json` and `graph.dot`;
//! - with `current/` (exports, tables, dumps) or `before.yaml` (the intent the cluster ran
//!   before, compiled as the applied directory), the plan: `plan.txt` (human), `plan.md`
//!   (Markdown) and `plan.json`.

use crate::golden;
use calplan::pipeline;
use calplan::pipeline::Checked;
use calplan_diagnostics::render;
use calplan_targets::{Context, Output, Templates};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub fn scenario_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    collect(&golden::root().join("testdata"), &mut dirs);
    dirs.sort();
    dirs
}

fn collect(dir: &Path, dirs: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        // Calico's own confd fixtures, replayed through etcd by `confd.rs`.
        if path == golden::root().join("testdata/confd") {
            continue;
        }
        if path.is_dir() {
            if path.join("intent.yaml").is_file() {
                dirs.push(path.clone());
            }
            collect(&path, dirs);
        }
    }
}

/// Every valid scenario, checked.
pub fn valid_scenarios() -> Vec<(PathBuf, Checked)> {
    scenario_dirs()
        .into_iter()
        .filter_map(|dir| {
            let text = std::fs::read_to_string(dir.join("intent.yaml")).ok()?;
            let checked = scenario_check(&dir, text);
            checked.valid().is_some().then_some((dir, checked))
        })
        .collect()
}

/// A scenario's intent checked with the nodes of its `current/` state, which join the
/// intent's when it takes its nodes from the cluster (without the state's IPAM, so that blocks
/// are placed as the intent alone places them).
pub fn scenario_check(dir: &Path, text: String) -> Checked {
    let cluster = if dir.join("current").is_dir() {
        let relative = dir.strip_prefix(golden::root()).unwrap().join("current");
        let loaded = calplan::current::load(&[relative.display().to_string()]).expect("current state loads");
        pipeline::cluster_nodes(&loaded.state, Vec::new())
    } else {
        Default::default()
    };
    pipeline::check_with_cluster("intent.yaml", text, None, &Default::default(), &cluster)
}

/// The scenarios whose artifacts are pinned by golden files: those with an `expected/`
/// folder. (Others, such as the large full-mesh warning case, are still checked by the tools.)
pub fn pinned_scenarios() -> Vec<(PathBuf, Checked)> {
    let scenarios: Vec<(PathBuf, Checked)> = valid_scenarios().into_iter().filter(|(dir, _)| dir.join("expected").is_dir()).collect();
    for required in ["seed-rr", "mesh-ipip", "vxlan-multi-rr"] {
        assert!(
            scenarios.iter().any(|(dir, _)| dir.ends_with(required)),
            "testdata/{required} has no expected/ folder; run `UPDATE_GOLDEN=1 cargo test --test it` after creating it"
        );
    }
    scenarios
}

/// The artifacts of some targets for a valid intent, kept in memory.
pub fn compile(checked: &Checked, targets: &[&str]) -> Output {
    let analysis = checked.valid().expect("a valid intent");
    let templates = Templates::builtin();
    let selected: BTreeSet<String> = targets.iter().map(|target| target.to_string()).collect();
    calplan_targets::compile(&Context { analysis, templates: &templates, node: None, sink: None }, Some(&selected)).expect("renders")
}

/// Every artifact of `output` named `file`, as (path, contents).
pub fn artifacts_named<'a>(output: &'a Output, file: &str) -> Vec<(&'a str, &'a str)> {
    output
        .artifacts
        .iter()
        .map(|(_, artifact)| artifact)
        .filter(|artifact| artifact.path.ends_with(&format!("/{file}")))
        .map(|artifact| (artifact.path.as_str(), artifact.contents.as_str()))
        .collect()
}

/// A scenario's directory relative to the repository, for messages.
pub fn relative(dir: &Path) -> String {
    dir.strip_prefix(golden::root()).unwrap_or(dir).display().to_string()
}

#[test]
fn every_scenario_matches_its_golden_files() {
    let mut failures = Vec::new();
    let dirs = scenario_dirs();
    assert!(dirs.len() > 1, "no scenarios found under testdata/");
    for dir in dirs {
        let text = std::fs::read_to_string(dir.join("intent.yaml")).unwrap();
        let checked = scenario_check(&dir, text);
        let diagnostics = checked.diagnostics.clone().into_sorted();
        let mut outputs = vec![
            ("check.stderr", render::human(&diagnostics, &checked.sources, false)),
            ("check.json", render::json(&diagnostics, &checked.allowed, &checked.sources)),
        ];
        // Invalid scenarios pin diagnostics only; their tables would be noise.
        let invalid = dir.components().any(|part| part.as_os_str() == "invalid");
        if let Some(analysis) = checked.valid().filter(|_| !invalid) {
            let tables = calplan_calico::status::rows(&analysis.peerings);
            let mut status = String::new();
            for (node, rows) in &tables {
                status.push_str(&format!("Node {node}\n\n{}\n", calplan_calico::status::render_node(rows)));
            }
            outputs.push(("status.txt", status));
            outputs.push(("graph.dot", calplan_model::graph_render::dot(&analysis.model, &analysis.graph)));
        }
        // The state to plan against: `current/`, and the compiled `before.yaml` (the intent the
        // cluster ran before: its artifacts are the applied directory, so node and router files
        // are planned too).
        let mut sources = Vec::new();
        if dir.join("current").is_dir() {
            sources.push(dir.strip_prefix(golden::root()).unwrap().join("current").display().to_string());
        }
        let before = tempfile::tempdir().unwrap();
        let compiled = before.path().join("compiled");
        if dir.join("before.yaml").is_file() {
            let intent = dir.join("before.yaml");
            let output = crate::cli::calplan(&["compile", intent.to_str().unwrap(), "-o", compiled.to_str().unwrap()]);
            assert!(output.status.success(), "{}: {}", intent.display(), crate::cli::both(&output));
            sources.push(compiled.display().to_string());
        }
        if !sources.is_empty() {
            let loaded = calplan::current::load(&sources).expect("current state loads");
            let text = std::fs::read_to_string(dir.join("intent.yaml")).unwrap();
            let fingerprint =
                calplan_plan::plan::Fingerprint { name: "intent.yaml".into(), sha256: calplan_plan::current::text_digest(&text) };
            let cluster = pipeline::cluster_nodes(&loaded.state, Vec::new());
            let checked =
                pipeline::check_with_cluster("intent.yaml", text, loaded.state.observed_ipam().as_ref(), &Default::default(), &cluster);
            if let Some(mut plan) = pipeline::plan(&checked, fingerprint, &loaded).expect("every state on the way compiles") {
                // The compiled directory's place differs from run to run; the plan names it
                // as a source (and its digest covers the name).
                let place = compiled.display().to_string();
                for source in &mut plan.current {
                    source.name = source.name.replace(&place, "<compiled before.yaml>");
                }
                for note in &mut plan.notes {
                    *note = note.replace(&place, "<compiled before.yaml>");
                }
                outputs.push(("plan.txt", calplan_plan::render::human(&plan, false)));
                outputs.push(("plan.md", calplan_plan::markdown::markdown(&plan, "`plan.json`")));
                outputs.push(("plan.json", plan.to_json()));
            }
        }
        for (name, actual) in outputs {
            if let Err(failure) = golden::check(&dir.join(name), &actual) {
                failures.push(failure);
            }
        }
    }
    golden::assert_all(failures);
}

/// Every rule has an invalid scenario that triggers it, so each rule's rendering is pinned.
#[test]
fn every_rule_has_an_invalid_scenario() {
    let mut missing = Vec::new();
    let invalid = golden::root().join("testdata/invalid");
    for rule in calplan_validate::all_rules() {
        let expected = invalid.join(rule.name).join("check.json");
        let hit = std::fs::read_to_string(&expected).is_ok_and(|text| text.contains(&format!("\"code\": \"{}\"", rule.code)));
        if !hit {
            missing.push(format!("{} {}", rule.code, rule.name));
        }
    }
    assert!(missing.is_empty(), "rules without a `testdata/invalid/<name>/` scenario that triggers them: {missing:?}");
}
