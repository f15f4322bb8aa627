//! Intents built to exhaust calplan: each bound of `docs/limits.md` holds through the binary,
//! as a located diagnostic and exit code 1, never an abort or a blow-up. (The current-state
//! readers' bounds are tested in `current.rs`.)

use crate::cli::{calplan, text};
use crate::golden;

/// The seed intent with `from` replaced by `to`, written to a file of its own.
fn seed_with(directory: &tempfile::TempDir, from: &str, to: &str) -> String {
    let intent = std::fs::read_to_string(golden::root().join("testdata/seed-rr/intent.yaml")).unwrap();
    assert!(intent.contains(from), "{from}");
    let path = directory.path().join("intent.yaml");
    std::fs::write(&path, intent.replacen(from, to, 1)).unwrap();
    path.display().to_string()
}

/// A 5 MB node name: every format reports it in a few hundred bytes, naming its ends and its
/// length, where the whole name used to be repeated in the message and the snippet (279 MB
/// of output for a 50 MB name).
#[test]
fn a_huge_value_is_echoed_in_bounded_text_in_every_format() {
    let directory = tempfile::tempdir().unwrap();
    let name = format!("{}-x", "a".repeat(5 << 20));
    let path = seed_with(&directory, "name: cs1-k8s-m2.zpepc.com.cn", &format!("name: {name}"));
    for format in ["human", "json", "sarif", "github"] {
        let output = calplan(&["check", &path, "--format", format]);
        assert_eq!(output.status.code(), Some(1), "{format}");
        let all = output.stdout.len() + output.stderr.len();
        assert!(all < 8 << 10, "{format}: {all} bytes of output");
        let report = format!("{}{}", text(&output.stdout), text(&output.stderr));
        assert!(report.contains("E0107"), "{format}: {report}");
        assert!(report.contains("-x (5242882 bytes)"), "{format}: {report}");
    }
    let output = calplan(&["check", &path]);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("intent.yaml:39:14"), "the position is the file's own: {stderr}");
    assert!(stderr.contains("aaaa…"), "a window of the line: {stderr}");
}

/// Parentheses 10,000 deep and 30,000 `!` aborted the process with a stack overflow.
#[test]
fn a_selector_nested_thousands_deep_is_an_error_not_an_abort() {
    let directory = tempfile::tempdir().unwrap();
    for selector in [format!("{}all(){}", "(".repeat(10_000), ")".repeat(10_000)), format!("{}all()", "!".repeat(30_000))] {
        let path = seed_with(&directory, "nodeSelector: all()", &format!("nodeSelector: '{selector}'"));
        let output = calplan(&["check", &path]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("E0105") && stderr.contains("nests deeper than 64 levels"), "{stderr}");
        assert!(stderr.contains("intent.yaml:31:"), "{stderr}");
    }
}

/// Flow collections nested 100,000 deep, and block mappings 1,000 deep.
#[test]
fn yaml_nested_too_deep_is_an_error_not_an_abort() {
    let directory = tempfile::tempdir().unwrap();
    let block: String = (0..1000).map(|level| format!("{}k{level}:\n", "  ".repeat(level + 1))).collect();
    for (from, to) in [
        ("serviceClusterIPs: [10.96.0.0/12]", format!("serviceClusterIPs: {}{}", "[".repeat(100_000), "]".repeat(100_000))),
        ("  bgp:\n", format!("  bgp:\n{block}")),
    ] {
        let path = seed_with(&directory, from, &to);
        let output = calplan(&["check", &path, "--format", "json"]);
        assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let first = &report["diagnostics"][0];
        assert_eq!(first["code"], "E0008", "{report}");
        assert!(first["message"].as_str().unwrap().contains("deeper than 64 levels"), "{report}");
    }
}
