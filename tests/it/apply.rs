//! `apply` against the real programs: a real etcd on loopback, the lock, stale plans, faults
//! injected after every step, and the calicoctl/kubectl command lines (through stand-ins, as
//! neither program can be installed here — the tests say so in their names).

use crate::cli::{calplan_with as run, text};
use crate::current::Etcd;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Plans the seed intent against `etcd` and saves the plan.
fn plan_seed(etcd: &Etcd, plan: &Path) -> Output {
    let plan = plan.to_str().unwrap();
    run(&["plan", "testdata/seed-rr/intent.yaml", "--current", &etcd.source(), "-o", plan], &[])
}

fn apply(etcd: &Etcd, plan: &Path, state: &Path, environment: &[(&str, &str)]) -> Output {
    run(
        &[
            "apply",
            plan.to_str().unwrap(),
            "--calico",
            &etcd.source(),
            "--only",
            "calico",
            "--state",
            state.to_str().unwrap(),
            "--auto-approve",
        ],
        environment,
    )
}

/// Every Calico resource key and its stored JSON, without server-set fields.
fn resources(etcd: &Etcd) -> Vec<(String, Value)> {
    let range = etcd.client().range_prefix("/calico/resources/", None).unwrap();
    range
        .pairs
        .into_iter()
        .map(|pair| {
            let mut value: Value = serde_json::from_slice(&pair.value).unwrap();
            let metadata = value["metadata"].as_object_mut().unwrap();
            metadata.remove("uid");
            metadata.remove("creationTimestamp");
            (pair.key, value)
        })
        .collect()
}

#[test]
fn apply_the_seed_to_an_empty_etcd_then_the_plan_is_empty_real_etcd() {
    let etcd = Etcd::start();
    let directory = tempfile::tempdir().unwrap();
    let plan = directory.path().join("seed.plan");
    let output = plan_seed(&etcd, &plan);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let output = apply(&etcd, &plan, &directory.path().join("state"), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let keys: Vec<String> = resources(&etcd).into_iter().map(|(key, _)| key).collect();
    for expected in [
        "/calico/resources/v3/projectcalico.org/bgpconfigurations/default",
        "/calico/resources/v3/projectcalico.org/bgppeers/peer-with-route-reflectors",
        "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool",
        "/calico/resources/v3/projectcalico.org/nodes/cs1-k8s-n1.zpepc.com.cn",
    ] {
        assert!(keys.iter().any(|key| key == expected), "{expected} missing from {keys:?}");
    }
    let (_, pool) = resources(&etcd).into_iter().find(|(key, _)| key.ends_with("/ippools/default-ipv4-ippool")).unwrap();
    assert_eq!(pool["spec"]["cidr"], "192.168.0.0/16");
    assert!(pool["metadata"].get("resourceVersion").is_none(), "calicoctl never stores resourceVersion");
    let stored = etcd.client().get("/calico/resources/v3/projectcalico.org/nodes/cs1-k8s-n1.zpepc.com.cn").unwrap().unwrap();
    let node: Value = serde_json::from_slice(&stored.value).unwrap();
    assert_eq!(node["spec"]["bgp"]["routeReflectorClusterID"], "1.0.0.1");
    assert!(node["metadata"]["uid"].as_str().is_some_and(|uid| uid.len() == 36), "a new resource gets a uid: {node}");
    // Idempotence: planned again against the same datastore, nothing is left to do.
    let output = run(&["plan", "testdata/seed-rr/intent.yaml", "--current", &etcd.source(), "--detailed-exitcode"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}{}", text(&output.stdout), text(&output.stderr));
    assert!(text(&output.stdout).contains("No changes."));
    // And the state record says what was applied, stage by stage, with hashes.
    let record: Value = serde_json::from_str(&std::fs::read_to_string(directory.path().join("state/state.json")).unwrap()).unwrap();
    let stages = record["stages"].as_array().unwrap();
    assert!(!stages.is_empty());
    assert!(stages.iter().all(|stage| stage["outcome"] == "complete"), "{record}");
    assert!(stages[0]["applied"][0]["sha256"].as_str().unwrap().len() == 64);
}

#[test]
fn a_stale_plan_is_refused_and_the_edit_survives_real_etcd() {
    let etcd = Etcd::start();
    crate::current::create_resources(&etcd.client(), "testdata/mesh-to-rr/current");
    let directory = tempfile::tempdir().unwrap();
    let plan = directory.path().join("seed.plan");
    assert_eq!(plan_seed(&etcd, &plan).status.code(), Some(0));
    // Someone changes the pool behind calplan's back.
    let key = "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool";
    let current = etcd.client().get(key).unwrap().unwrap();
    let mut pool: Value = serde_json::from_slice(&current.value).unwrap();
    pool["spec"]["natOutgoing"] = Value::Bool(false);
    let edited = pool.to_string();
    etcd.client().update(key, edited.as_bytes(), current.mod_revision).unwrap();
    let output = apply(&etcd, &plan, &directory.path().join("state"), &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("stale plan") && stderr.contains("IPPool/default-ipv4-ippool changed"), "{stderr}");
    assert_eq!(etcd.client().get(key).unwrap().unwrap().value, edited.as_bytes(), "the edit survives");
}

/// A plan made against an earlier output directory goes stale when a file in it is edited,
/// not only when its manifest is: by hand (the file no longer matches its digest, which
/// `plan` itself reports as E0701), or consistently (file and manifest both rewritten).
#[test]
fn a_plan_goes_stale_when_a_file_of_its_applied_directory_is_edited() {
    let directory = tempfile::tempdir().unwrap();
    let out = directory.path().join("out");
    let compiled = run(&["compile", "testdata/mesh-to-rr/mesh.yaml", "-o", out.to_str().unwrap()], &[]);
    assert_eq!(compiled.status.code(), Some(0), "{}", text(&compiled.stderr));
    let plan = directory.path().join("rr.plan");
    let planned = run(&["plan", "testdata/mesh-to-rr/intent.yaml", "--current", out.to_str().unwrap(), "-o", plan.to_str().unwrap()], &[]);
    assert_eq!(planned.status.code(), Some(0), "{}", text(&planned.stderr));
    let apply = |plan: &Path| {
        let state = directory.path().join("state");
        run(
            &[
                "apply",
                plan.to_str().unwrap(),
                "--only",
                "calico",
                "--calico",
                "etcd://127.0.0.1:9",
                "--state",
                state.to_str().unwrap(),
                "--auto-approve",
            ],
            &[],
        )
    };

    // By hand: `calico/bgpconfigurations.yaml` no longer matches its manifest entry.
    let configuration = out.join("calico/bgpconfigurations.yaml");
    let original = std::fs::read_to_string(&configuration).unwrap();
    std::fs::write(&configuration, original.replace("nodeToNodeMeshEnabled: true", "nodeToNodeMeshEnabled: false")).unwrap();
    assert_ne!(std::fs::read_to_string(&configuration).unwrap(), original, "the edit took");
    let output = apply(&plan);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("stale plan"), "{stderr}");
    assert!(stderr.contains("`calico/bgpconfigurations.yaml` was edited by hand"), "{stderr}");
    std::fs::write(&configuration, &original).unwrap();

    // Consistently: a node's file and its manifest entry rewritten together.
    let bird = "nodes/cs1-k8s-m1.zpepc.com.cn/bird.cfg";
    let text_before = std::fs::read_to_string(out.join(bird)).unwrap();
    let text_after = format!("{text_before}# edited on the node\n");
    std::fs::write(out.join(bird), &text_after).unwrap();
    let manifest = out.join("manifest.json");
    let rewritten = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace(&calplan_plan::current::text_digest(&text_before), &calplan_plan::current::text_digest(&text_after));
    std::fs::write(&manifest, rewritten).unwrap();
    let output = apply(&plan);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("stale plan") && stderr.contains(&format!("`{bird}` changed in")), "{stderr}");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert!(saved["current"][0]["files"][bird].is_string(), "each file's digest is recorded: {}", saved["current"][0]);
}

/// Abort the apply after each step in turn (a crash, by the test-only hook), run it again
/// without the hook: it converges to the same datastore, with nothing lost or doubled.
#[test]
fn an_apply_interrupted_after_any_step_converges_when_run_again_real_etcd() {
    let reference = {
        let etcd = Etcd::start();
        crate::current::create_resources(&etcd.client(), "testdata/mesh-to-rr/current");
        let directory = tempfile::tempdir().unwrap();
        let plan = directory.path().join("seed.plan");
        assert_eq!(plan_seed(&etcd, &plan).status.code(), Some(0));
        let output = apply(&etcd, &plan, &directory.path().join("state"), &[]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        resources(&etcd)
    };
    let mut step = 1;
    loop {
        let etcd = Etcd::start();
        crate::current::create_resources(&etcd.client(), "testdata/mesh-to-rr/current");
        let directory = tempfile::tempdir().unwrap();
        let plan = directory.path().join("seed.plan");
        assert_eq!(plan_seed(&etcd, &plan).status.code(), Some(0));
        let state = directory.path().join("state");
        let output = apply(&etcd, &plan, &state, &[("CALPLAN_TEST_ABORT_AFTER_STEP", &step.to_string())]);
        let aborted = output.status.code() == Some(99);
        if aborted {
            let output = apply(&etcd, &plan, &state, &[]);
            assert_eq!(output.status.code(), Some(0), "after an abort at step {step}: {}", text(&output.stderr));
        } else {
            assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        }
        assert_eq!(resources(&etcd), reference, "after an abort at step {step}");
        if !aborted {
            assert!(step > 3, "the plan has more than three steps");
            break;
        }
        step += 1;
    }
}

#[test]
fn a_second_apply_refuses_naming_the_holder() {
    let directory = tempfile::tempdir().unwrap();
    let state = directory.path().join("state");
    let plan = directory.path().join("plan.json");
    let output =
        run(&["plan", "testdata/seed-rr/intent.yaml", "--current", "testdata/mesh-to-rr/current", "-o", plan.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    // The first apply waits on a barrier no BIRD will ever meet, holding the lock: its nodes
    // are all this machine, by the inventory's word, so the barrier reads a socket here.
    let inventory = this_machine_inventory(directory.path());
    let mut first = Command::new(env!("CARGO_BIN_EXE_calplan"))
        .args([
            "apply",
            plan.to_str().unwrap(),
            "--calico",
            "calicoctl",
            "--state",
            state.to_str().unwrap(),
            "--inventory",
            inventory.to_str().unwrap(),
            "--auto-approve",
            "--barrier-timeout",
            "60",
        ])
        .env("CALPLAN_CALICOCTL", stand_in(directory.path(), "calicoctl", "testdata/mesh-to-rr/current/cluster.yaml").to_str().unwrap())
        .current_dir(crate::golden::root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(state.join("lock")).is_ok_and(|text| text.contains("pid")) {
        assert!(Instant::now() < deadline, "the first apply never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second =
        run(&["apply", plan.to_str().unwrap(), "--calico", "calicoctl", "--state", state.to_str().unwrap(), "--auto-approve"], &[]);
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(second.status.code(), Some(1));
    let stderr = text(&second.stderr);
    assert!(stderr.contains("another apply holds the lock") && stderr.contains(&format!("pid {}", first.id())), "{stderr}");
}

/// An inventory that says every node of the seed is this machine, with a BIRD socket nothing
/// listens on.
fn this_machine_inventory(directory: &Path) -> std::path::PathBuf {
    let checked = calplan::pipeline::check(
        "intent.yaml",
        std::fs::read_to_string(crate::golden::root().join("testdata/seed-rr/intent.yaml")).unwrap(),
        None,
    );
    let socket = directory.join("no-bird.ctl");
    let hosts: serde_json::Map<String, Value> = checked
        .valid()
        .unwrap()
        .model
        .nodes
        .iter()
        .map(|node| (node.name.value.clone(), serde_json::json!({ "thisMachine": true, "birdSocket": socket.to_str().unwrap() })))
        .collect();
    let file = directory.join("inventory.yaml");
    std::fs::write(&file, serde_json::json!({ "hosts": hosts }).to_string()).unwrap();
    file
}

/// `--transport local` (the default) acts only on hosts the inventory says are this machine:
/// without an inventory, or with one naming only some nodes so, apply refuses before it
/// changes anything — the datastore included — and says how to name a transport.
#[test]
fn local_apply_refuses_nodes_not_named_as_this_machine() {
    let directory = tempfile::tempdir().unwrap();
    let program = stand_in(directory.path(), "calicoctl", "testdata/mesh-to-rr/current/cluster.yaml");
    let plan = directory.path().join("plan.json");
    let output =
        run(&["plan", "testdata/seed-rr/intent.yaml", "--current", "testdata/mesh-to-rr/current", "-o", plan.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let state = directory.path().join("state");
    let all_this_machine = this_machine_inventory(directory.path());
    let mut inventory: Value = serde_json::from_str(&std::fs::read_to_string(&all_this_machine).unwrap()).unwrap();
    inventory["hosts"].as_object_mut().unwrap().retain(|name, _| name == "cs1-k8s-m1.zpepc.com.cn");
    let one = directory.path().join("one.yaml");
    std::fs::write(&one, inventory.to_string()).unwrap();
    for extra in [vec![], vec!["--inventory", one.to_str().unwrap()]] {
        let mut args = vec!["apply", plan.to_str().unwrap(), "--calico", "calicoctl", "--state", state.to_str().unwrap(), "--auto-approve"];
        args.extend(extra.iter().copied());
        let output = run(&args, &[("CALPLAN_CALICOCTL", program.to_str().unwrap())]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("nothing was changed") && stderr.contains("`--transport local` would run the commands of"), "{stderr}");
        assert!(stderr.contains("`cs1-k8s-n3.zpepc.com.cn`") && stderr.contains("--transport ssh"), "{stderr}");
        assert_eq!(extra.is_empty(), stderr.contains("`cs1-k8s-m1.zpepc.com.cn`"), "only the unnamed nodes are listed: {stderr}");
        assert!(!directory.path().join("calicoctl.log").exists(), "the datastore was written");
        assert!(!state.join("state.json").exists());
    }
}

/// A stand-in for `calicoctl` or `kubectl` (neither can be installed here): records each
/// call and the file it was given, and answers `get` with a fixed export.
fn stand_in(directory: &Path, name: &str, export: &str) -> std::path::PathBuf {
    let path = directory.join(name);
    let log = directory.join(format!("{name}.log"));
    let export = crate::golden::root().join(export);
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> '{log}'\nfor last; do :; done\nif [ \"$1\" = get ]; then cat '{export}'; exit 0; fi\nif [ -f \"$last\" ]; then cat \"$last\" >> '{log}'; echo '---' >> '{log}'; fi\n",
        log = log.display(),
        export = export.display()
    );
    std::fs::write(&path, script).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(&mut std::fs::metadata(&path).unwrap().permissions(), 0o755);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

#[test]
fn calicoctl_command_lines_stand_in_programs() {
    let tool = "calicoctl";
    let directory = tempfile::tempdir().unwrap();
    let program = stand_in(directory.path(), tool, "testdata/mesh-to-rr/current/cluster.yaml");
    let plan = directory.path().join("plan.json");
    let output =
        run(&["plan", "testdata/seed-rr/intent.yaml", "--current", "testdata/mesh-to-rr/current", "-o", plan.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0));
    let variable = if tool == "calicoctl" { "CALPLAN_CALICOCTL" } else { "CALPLAN_KUBECTL" };
    let output = run(
        &[
            "apply",
            plan.to_str().unwrap(),
            "--calico",
            tool,
            "--only",
            "calico",
            "--state",
            directory.path().join("state").to_str().unwrap(),
            "--auto-approve",
        ],
        &[(variable, program.to_str().unwrap())],
    );
    assert_eq!(output.status.code(), Some(0), "{tool}: {}", text(&output.stderr));
    let log = std::fs::read_to_string(directory.path().join(format!("{tool}.log"))).unwrap();
    assert!(
        log.lines().any(|line| line.starts_with("apply -f ") && line.ends_with("bgppeers-peer-with-route-reflectors.yaml")),
        "{tool}: {log}"
    );
    assert!(log.contains("peerSelector: route-reflector == 'true'"), "{tool}: the resource file was passed: {log}");
    assert!(log.contains("kind: BGPConfiguration") && log.contains("nodeToNodeMeshEnabled: false"), "{tool}: {log}");
}

/// The kubectl stand-in (`tests/stand-ins/kubectl`): `get`, server-side `apply` and `delete`
/// answered from a real etcd in Calico's layout, every command line recorded.
pub(crate) struct KubectlStandIn {
    pub(crate) program: std::path::PathBuf,
    pub(crate) log: std::path::PathBuf,
    pub(crate) etcd_url: String,
}

impl KubectlStandIn {
    pub(crate) fn new(directory: &Path, etcd: &Etcd) -> KubectlStandIn {
        KubectlStandIn {
            program: crate::golden::root().join("tests/stand-ins/kubectl"),
            log: directory.join("kubectl.log"),
            etcd_url: format!("http://127.0.0.1:{}", etcd.port()),
        }
    }

    pub(crate) fn environment(&self) -> Vec<(&str, &str)> {
        vec![
            ("CALPLAN_KUBECTL", self.program.to_str().unwrap()),
            ("STAND_IN_ETCD", self.etcd_url.as_str()),
            ("STAND_IN_LOG", self.log.to_str().unwrap()),
        ]
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_string).collect()
    }
}

fn apply_with_kubectl(plan: &Path, state: &Path, environment: &[(&str, &str)]) -> Output {
    run(
        &["apply", plan.to_str().unwrap(), "--calico", "kubectl", "--only", "calico", "--state", state.to_str().unwrap(), "--auto-approve"],
        environment,
    )
}

#[test]
fn kubectl_applies_server_side_as_calplan_after_a_dry_run_of_each_stage_stand_in_real_etcd() {
    let etcd = Etcd::start();
    crate::current::create_resources(&etcd.client(), "testdata/mesh-to-rr/current");
    let directory = tempfile::tempdir().unwrap();
    let plan = directory.path().join("seed.plan");
    assert_eq!(plan_seed(&etcd, &plan).status.code(), Some(0));
    let kubectl = KubectlStandIn::new(directory.path(), &etcd);
    let output = apply_with_kubectl(&plan, &directory.path().join("state"), &kubectl.environment());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let lines = kubectl.lines();
    assert!(lines.iter().all(|line| !line.contains("crd.projectcalico.org")), "never the CRD group: {lines:#?}");
    let writes: Vec<&String> = lines.iter().filter(|line| line.starts_with("apply") || line.starts_with("delete")).collect();
    assert!(writes.iter().filter(|line| line.starts_with("apply")).all(|line| line.contains("--server-side --field-manager=calplan")));
    // Each write was checked in a dry run before it: the object's file name appears in a dry
    // run line earlier than its real write, and no real write precedes the stage's dry run.
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let calico_stages = saved["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|stage| stage["changes"].as_array().unwrap().iter().any(|c| c["target"]["type"] == "calico"))
        .count();
    let dry_runs = writes.iter().filter(|line| line.contains("--dry-run=server")).count();
    assert_eq!(dry_runs, calico_stages, "one dry run per stage that writes Calico resources: {writes:#?}");
    assert!(writes.first().is_some_and(|line| line.contains("--dry-run=server")), "{writes:#?}");
    for (index, line) in writes.iter().enumerate().filter(|(_, line)| !line.contains("--dry-run")) {
        // `…/000-node-cs1-k8s-n1.zpepc.com.cn.json`: the kind and name after the sequence number.
        let object = &line.rsplit('/').next().unwrap()[4..];
        assert!(
            writes[..index].iter().any(|earlier| earlier.contains("--dry-run=server") && earlier.contains(object)),
            "{line} without a dry run first"
        );
    }
    assert!(lines.iter().filter(|line| line.starts_with("get")).all(|line| line.contains(".v3.projectcalico.org")), "{lines:#?}");
    // What kubectl wrote is the datastore the plan wanted: planned again, nothing is left.
    let output = run(&["plan", "testdata/seed-rr/intent.yaml", "--current", &etcd.source(), "--detailed-exitcode"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}{}", text(&output.stdout), text(&output.stderr));
}

#[test]
fn a_stage_the_api_server_refuses_in_its_dry_run_writes_nothing_stand_in_real_etcd() {
    let etcd = Etcd::start();
    crate::current::create_resources(&etcd.client(), "testdata/mesh-to-rr/current");
    let directory = tempfile::tempdir().unwrap();
    let plan = directory.path().join("seed.plan");
    assert_eq!(plan_seed(&etcd, &plan).status.code(), Some(0));
    let kubectl = KubectlStandIn::new(directory.path(), &etcd);
    let mut environment = kubectl.environment();
    environment.push(("STAND_IN_REFUSE", "bgppeers/peer-with-route-reflectors"));
    let before = resources(&etcd);
    let output = apply_with_kubectl(&plan, &directory.path().join("state"), &environment);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("refused before anything was written") && stderr.contains("peer-with-route-reflectors"), "{stderr}");
    // The stage with the refused peer wrote nothing: not the peer, nor anything beside it.
    let stored = etcd.client().get("/calico/resources/v3/projectcalico.org/bgppeers/peer-with-route-reflectors").unwrap();
    assert!(stored.is_none());
    let real_writes: Vec<String> = kubectl
        .lines()
        .into_iter()
        .filter(|line| (line.starts_with("apply") || line.starts_with("delete")) && !line.contains("--dry-run"))
        .collect();
    assert!(real_writes.iter().all(|line| !line.contains("peer-with-route-reflectors")), "{real_writes:#?}");
    let after = resources(&etcd);
    let changed: Vec<&String> = after.iter().filter(|pair| !before.contains(pair)).map(|(key, _)| key).collect();
    assert!(changed.iter().all(|key| !key.contains("/bgppeers/")), "{changed:?}");
}
