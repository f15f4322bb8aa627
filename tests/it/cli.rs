//! The command line as operators and CI use it: exit codes, streams, formats.

use crate::golden;
use std::process::{Command, Output, Stdio};

/// `calplan ARGS` from the repository root, without colour.
pub fn calplan(args: &[&str]) -> Output {
    calplan_with(args, &[])
}

const CALICOCTL_VARIABLES: [&str; 8] = [
    "DATASTORE_TYPE",
    "ETCD_ENDPOINTS",
    "ETCD_DISCOVERY_SRV",
    "ETCD_CA_CERT_FILE",
    "ETCD_CERT_FILE",
    "ETCD_KEY_FILE",
    "ETCD_USERNAME",
    "ETCD_PASSWORD",
];

/// `calplan ARGS` with `environment` added; the test-only hooks are cleared unless given.
pub fn calplan_with(args: &[&str], environment: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_calplan"));
    command
        .args(args)
        .current_dir(golden::root())
        .env("NO_COLOR", "1")
        .env_remove("CALPLAN_TEST_ABORT_AFTER_STEP")
        .env_remove("CALPLAN_TEST_LAB_CRASH");
    // calicoctl's configuration comes only from what the test gives.
    for variable in CALICOCTL_VARIABLES {
        command.env_remove(variable).env_remove(format!("CALICO_{variable}"));
    }
    for (key, value) in environment {
        command.env(key, value);
    }
    command.output().expect("calplan runs")
}

/// `calplan ARGS`, killed and failed if it has not finished within `limit`: for inputs that
/// used to make calplan wait for ever. Its output is read as it comes, so a long report never
/// blocks it.
pub fn calplan_within(args: &[&str], limit: std::time::Duration) -> Output {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_calplan"))
        .args(args)
        .current_dir(golden::root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("calplan runs");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = text(&stderr.join().unwrap());
            panic!("`calplan {}` still ran after {limit:?}:\n{}", args.join(" "), &stderr[..stderr.len().min(4000)]);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

pub fn calplan_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_calplan"))
        .args(args)
        .current_dir(golden::root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("calplan runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Standard output and standard error together, for messages.
pub fn both(output: &Output) -> String {
    format!("{}{}", text(&output.stdout), text(&output.stderr))
}

#[test]
fn check_passes_the_seed_intent() {
    let output = calplan(&["check", "testdata/seed-rr/intent.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("is a valid intent (6 nodes, 1 pool"));
    assert!(output.stdout.is_empty());
}

#[test]
fn check_reports_every_problem_and_exits_one() {
    let output = calplan(&["check", "testdata/invalid/unknown-field/intent.yaml", "--format", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let first = &report["diagnostics"][0];
    for key in ["code", "name", "severity", "message", "file", "line", "column", "help"] {
        assert!(first.get(key).is_some(), "missing `{key}` in {first}");
    }
    assert_eq!(first.as_object().unwrap().len(), 8, "exactly SPEC §2's keys: {first}");
}

#[test]
fn check_reads_standard_input() {
    let intent = std::fs::read(golden::root().join("testdata/seed-rr/intent.yaml")).unwrap();
    let output = calplan_stdin(&["check", "-"], &intent);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
}

#[test]
fn unreadable_inputs_are_clear_errors_not_panics() {
    for (args, fragment) in
        [(vec!["check", "no/such/file.yaml"], "cannot read `no/such/file.yaml`"), (vec!["check", "testdata"], "is a directory")]
    {
        let output = calplan(&args);
        assert_eq!(output.status.code(), Some(1));
        let stderr = text(&output.stderr);
        assert!(stderr.contains(fragment), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let output = calplan_stdin(&["check", "-"], b"\xff\xfe\x00binary");
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("not UTF-8"));
    let output = calplan_stdin(&["check", "-"], b"");
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("the intent is empty"));
}

#[test]
fn deny_warnings_fails_on_warnings() {
    let path = "testdata/invalid/full-mesh-too-large/intent.yaml";
    assert_eq!(calplan(&["check", path]).status.code(), Some(0));
    assert_eq!(calplan(&["check", path, "--deny-warnings"]).status.code(), Some(1));
}

#[test]
fn sarif_and_github_formats() {
    let path = "testdata/invalid/unknown-field/intent.yaml";
    let output = calplan(&["check", path, "--format", "sarif"]);
    let log: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    let result = &log["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "E0003");
    assert!(result["locations"][0]["physicalLocation"]["region"]["startLine"].as_u64().unwrap() > 0);
    let output = calplan(&["check", path, "--format", "github"]);
    let line = text(&output.stdout);
    assert!(line.starts_with("::error file=testdata/invalid/unknown-field/intent.yaml,line="), "{line}");
}

#[test]
fn schema_prints_the_published_file() {
    let output = calplan(&["schema"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout), std::fs::read_to_string(golden::root().join("schemas/intent.schema.json")).unwrap());
}

#[test]
fn status_json_has_the_documented_shape() {
    let output = calplan(&["status", "testdata/seed-rr/intent.yaml", "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = status["nodes"]["cs1-k8s-m1.zpepc.com.cn"].as_array().unwrap();
    assert_eq!(rows[0], serde_json::json!({"peerAddress": "21.49.22.7", "peerType": "node specific"}));
    assert_eq!(status["nodes"]["cs1-k8s-n1.zpepc.com.cn"].as_array().unwrap().len(), 5);
}

#[test]
fn graph_formats() {
    for (format, marker) in [("dot", "graph \"cs1\""), ("mermaid", "flowchart LR"), ("json", "\"vertices\"")] {
        let output = calplan(&["graph", "testdata/seed-rr/intent.yaml", "--format", format]);
        assert_eq!(output.status.code(), Some(0));
        assert!(text(&output.stdout).contains(marker), "{format}");
    }
}

/// The seed's own resources, read as Calico read them, give the tables in the seed's notes:
/// the non-reflectors see 21.49.22.7 and .8 as `global` (the tag made `node-peer-to-rr`
/// global); each reflector sees the other as `global` and the four others as `node specific`.
#[test]
fn status_current_reproduces_the_seed_tables() {
    let output = calplan(&["status", "--current", "testdata/seed-rr/current", "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("warning[E0002]"), "the tag is warned about");
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = |node: &str| -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> = status["nodes"][node]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| (row["peerAddress"].as_str().unwrap().to_string(), row["peerType"].as_str().unwrap().to_string()))
            .collect();
        rows.sort();
        rows
    };
    let row = |address: &str, kind: &str| (address.to_string(), kind.to_string());
    for node in ["cs1-k8s-m1", "cs1-k8s-m2", "cs1-k8s-m3", "cs1-k8s-n3"] {
        assert_eq!(rows(&format!("{node}.zpepc.com.cn")), [row("21.49.22.7", "global"), row("21.49.22.8", "global")], "{node}");
    }
    assert_eq!(
        rows("cs1-k8s-n1.zpepc.com.cn"),
        [
            row("21.49.22.4", "node specific"),
            row("21.49.22.5", "node specific"),
            row("21.49.22.6", "node specific"),
            row("21.49.22.8", "global"),
            row("21.49.22.9", "node specific"),
        ]
    );
    assert_eq!(
        rows("cs1-k8s-n2.zpepc.com.cn"),
        [
            row("21.49.22.4", "node specific"),
            row("21.49.22.5", "node specific"),
            row("21.49.22.6", "node specific"),
            row("21.49.22.7", "global"),
            row("21.49.22.9", "node specific"),
        ]
    );
}
