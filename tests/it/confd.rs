//! Calico's own confd test suite, kept as calplan's: `testdata/confd/<release>/<fixture>/` holds
//! the intent `calplan import` writes for each fixture's datastore and, under `expected/`, the
//! render `bench/confd-fidelity.py` verified equal to Calico's expected one (blank lines
//! aside); `testdata/confd/ipam.yaml` the block affinities the suite stores for every fixture.
//! `bench/confd-fidelity.py --export` writes them; this module replays them without Calico.
//!
//! Each case goes the way the fixture went: the intent's Calico resources, the affinities and
//! calico-node's `ClusterInformation` into a real etcd on loopback in Calico's layout, then
//! `calplan import` and `calplan compile --current etcd://… --target bird-calico --node NODE`
//! of what it imported (with the case's `kubernetes.yaml`, the Secrets and Services the
//! fixture's render depends on, and its `endpoint-status/`, Felix's files, as more
//! `--current`), whose two files must equal the golden ones and parse under BIRD 1.6's
//! `bird -p` and `bird6 -p`.

use crate::bird::{bird16, bird16_v6, parses, without_krt_tunnel};
use crate::cli::{calplan, text};
use crate::current::Etcd;
use crate::golden;
use calplan_plan::current::etcd_layout;
use std::path::{Path, PathBuf};

/// The cases: every directory under `testdata/confd/` holding an `intent.yaml`.
fn cases() -> Vec<PathBuf> {
    let mut cases = Vec::new();
    for release in std::fs::read_dir(golden::root().join("testdata/confd")).unwrap().flatten() {
        for case in std::fs::read_dir(release.path()).into_iter().flatten().flatten() {
            if case.path().join("intent.yaml").is_file() {
                cases.push(case.path());
            }
        }
    }
    cases.sort();
    cases
}

/// Stores the case's Calico resources, the suite's affinities and the release calico-node
/// reports, replacing whatever the previous case left.
fn load(etcd: &Etcd, intent: &str) {
    let client = etcd.client();
    client.delete_prefix("/calico/").unwrap();
    // Without the cluster's IPAM, placement is simulated and the findings may differ from the
    // ones the case's `allow` list names; the resources are the same either way.
    let checked = calplan::pipeline::check("intent.yaml", intent.to_string(), None);
    let analysis = checked.analysis.as_ref().unwrap_or_else(|| panic!("the case reads as an intent:\n{:?}", checked.diagnostics));
    for resource in analysis.resources.iter() {
        let mut value: serde_json::Value = serde_json::from_slice(&etcd_layout::stored_value(resource)).unwrap();
        value["metadata"]["uid"] = "7c1d2e3f-0000-4000-8000-000000000000".into();
        value["metadata"]["creationTimestamp"] = "2025-01-01T00:00:00Z".into();
        client.put(&etcd_layout::resource_key(resource.kind(), resource.name()), value.to_string().as_bytes()).unwrap();
    }
    let ipam: Vec<serde_json::Value> =
        serde_saphyr::from_str(&std::fs::read_to_string(golden::root().join("testdata/confd/ipam.yaml")).unwrap()).unwrap();
    for affinity in &ipam {
        let cidr = affinity["cidr"].as_str().unwrap();
        let family = if cidr.contains(':') { "ipv6" } else { "ipv4" };
        let key = format!("/calico/ipam/v2/host/{}/{family}/block/{}", affinity["node"].as_str().unwrap(), cidr.replace('/', "-"));
        let state = affinity["state"].as_str().unwrap();
        let value = if state.is_empty() { "{}".to_string() } else { format!(r#"{{"state":"{state}"}}"#) };
        client.put(&key, value.as_bytes()).unwrap();
    }
    let release = analysis.model.calico_version.value;
    let information = serde_json::json!({
        "kind": "ClusterInformation",
        "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": "default"},
        "spec": {"calicoVersion": format!("v{release}.0"), "clusterType": "k8s,bgp", "datastoreReady": true},
    });
    client.put("/calico/resources/v3/projectcalico.org/clusterinformations/default", information.to_string().as_bytes()).unwrap();
}

/// The node the case renders for: the one directory under `expected/nodes/`.
fn node_of(case: &Path) -> String {
    let nodes: Vec<String> = std::fs::read_dir(case.join("expected/nodes"))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(nodes.len(), 1, "{}: one node under expected/nodes", case.display());
    nodes[0].clone()
}

#[test]
fn calicos_confd_fixtures_render_as_calico_renders_them_real_etcd() {
    let cases = cases();
    assert!(cases.len() >= 60, "only {} confd cases under testdata/confd", cases.len());
    let etcd = Etcd::start();
    let (bird, bird6) = (bird16(), bird16_v6());
    let scratch = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.strip_prefix(golden::root().join("testdata/confd")).unwrap().display().to_string();
        let intent = std::fs::read_to_string(case.join("intent.yaml")).unwrap();
        load(&etcd, &intent);
        let work = scratch.path().join(name.replace('/', "_"));
        std::fs::create_dir_all(&work).unwrap();
        let imported = work.join("intent.yaml");
        // The Secrets and Services, and Felix's endpoint status files, the fixture's render
        // depends on, when it has any.
        let sources: Vec<String> = ["kubernetes.yaml", "endpoint-status"]
            .into_iter()
            .map(|name| case.join(name))
            .filter(|path| path.exists())
            .map(|path| path.to_str().unwrap().to_string())
            .collect();
        let extra: Vec<&str> = sources.iter().flat_map(|path| ["--current", path.as_str()]).collect();
        let source = etcd.source();
        let mut import = vec!["import", "--current", &source, "--name", "fixture", "-o", imported.to_str().unwrap()];
        import.extend(&extra);
        let output = calplan(&import);
        assert!(output.status.success(), "{name}: import failed:\n{}", text(&output.stderr));
        // calico-node's environment, which the datastore does not hold, as the case declares it.
        if let Some(router_id) = intent.lines().find(|line| line.trim_start().starts_with("routerID:")) {
            let imported_text = std::fs::read_to_string(&imported).unwrap();
            std::fs::write(&imported, imported_text.replacen("\n  bgp:\n", &format!("\n  bgp:\n{router_id}\n"), 1)).unwrap();
        }
        let node = node_of(case);
        let out = work.join("out");
        let output = calplan(
            &[
                "compile",
                imported.to_str().unwrap(),
                "--current",
                &source,
                "--target",
                "bird-calico",
                "--node",
                &node,
                "-o",
                out.to_str().unwrap(),
            ]
            .into_iter()
            .chain(extra.iter().copied())
            .collect::<Vec<_>>(),
        );
        if !output.status.success() {
            failures.push(format!("{name}: compile failed:\n{}", text(&output.stderr)));
            continue;
        }
        for (file, daemon) in [("bird-calico.cfg", &bird), ("bird6-calico.cfg", &bird6)] {
            let rendered = std::fs::read_to_string(out.join("nodes").join(&node).join(file)).unwrap();
            if let Err(failure) = golden::check(&case.join("expected/nodes").join(&node).join(file), &rendered) {
                failures.push(failure);
            }
            let parsed = work.join(format!("parsed-{file}"));
            std::fs::write(&parsed, without_krt_tunnel(&rendered)).unwrap();
            if let Err(message) = parses(daemon, &parsed) {
                failures.push(format!("{name}/{file}: BIRD 1.6 rejects it: {message}"));
            }
        }
    }
    golden::assert_all(failures);
}
