//! Severity overrides: `--allow`, `--warn` and `--deny` on check, compile and plan, the
//! intent's `spec.allow`, and `import` of a cluster that runs with findings.

use crate::cli::{calplan, text};
use crate::current::{Etcd, create_resources};
use serde_json::Value;
use std::path::Path;

/// A cluster running as many do: the mesh off and a node-specific peering configured at one
/// end only (`reversePeering: Manual`), so `b` refuses `a`'s connection (E0404) and `b` has
/// no session at all (E0403).
const ONE_SIDED: &str = "\
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {nodeToNodeMeshEnabled: false, asNumber: 64512}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: a, labels: {kubernetes.io/os: linux}}
spec: {bgp: {ipv4Address: 10.0.0.1/24}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: b, labels: {kubernetes.io/os: linux}}
spec: {bgp: {ipv4Address: 10.0.0.2/24}}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: default-ipv4-ippool}
spec: {cidr: 10.244.0.0/16, blockSize: 26, natOutgoing: true, nodeSelector: all()}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: a-to-b}
spec: {node: a, peerIP: 10.0.0.2, asNumber: 64512, reversePeering: Manual}
";

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap();
}

/// `import` from a live etcd whose cluster has findings writes an intent that compiles and
/// plans to nothing, each finding's rule listed under `allow` with a comment saying what the
/// cluster has and that it should be fixed. (Before, `compile` of the imported intent failed
/// with E0403 and E0404.)
#[test]
fn an_imported_cluster_with_findings_compiles_real_etcd() {
    let etcd = Etcd::start();
    let directory = tempfile::tempdir().unwrap();
    let export = directory.path().join("export");
    std::fs::create_dir(&export).unwrap();
    write(&export.join("cluster.yaml"), ONE_SIDED);
    create_resources(&etcd.client(), export.to_str().unwrap());

    let intent = directory.path().join("imported.yaml");
    let output = calplan(&["import", "--current", &etcd.source(), "-o", intent.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("the cluster has 1 E0404 `session-not-established` finding: allowed in the intent's `allow` list"), "{stderr}");
    let imported = std::fs::read_to_string(&intent).unwrap();
    assert!(imported.contains("datastore: etcdv3"), "{imported}");
    assert!(imported.contains("  - rule: session-not-established\n    reason: \"present in the cluster when it was imported (1 finding); fix, then remove this entry\"\n"), "{imported}");
    assert!(imported.contains("  - rule: no-bgp-peering\n"), "{imported}");
    assert!(
        imported.contains("  #   E0404 BGP peer `a-to-b` gives node `a` a session with node `b`, which does not configure it\n"),
        "{imported}"
    );
    assert!(imported.contains("Fix it, then remove this entry."), "{imported}");

    let out = directory.path().join("out");
    let output = calplan(&["compile", intent.to_str().unwrap(), "--current", &etcd.source(), "-o", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "the imported intent compiles:\n{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("note: 2 findings allowed (1 × E0403 no-bgp-peering, 1 × E0404 session-not-established)"));
    let bird = std::fs::read_to_string(out.join("nodes/a/bird-calico.cfg")).unwrap();
    assert!(
        bird.contains("protocol bgp Node_10_0_0_2 from bgp_template"),
        "the one-sided session is rendered as the cluster runs it:\n{bird}"
    );

    let output = calplan(&["plan", intent.to_str().unwrap(), "--current", &etcd.source(), "--detailed-exitcode", "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "an empty plan:\n{}{}", text(&output.stdout), text(&output.stderr));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    let notes = plan["notes"].to_string();
    assert!(
        notes.contains("allowed E0404 session-not-established (by `spec.allow`: present in the cluster"),
        "the plan says what it allowed: {notes}"
    );

    // Once the cluster is fixed, the allowances are reported as unused.
    let fixed = imported.replace("      reversePeering: Manual\n", "");
    write(&intent, &fixed);
    let output = calplan(&["check", intent.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("warning[W0803]: E0404 `session-not-established` reports nothing to allow"), "{stderr}");
}

#[test]
fn severity_overrides_on_the_command_line() {
    let directory = tempfile::tempdir().unwrap();
    let intent = directory.path().join("intent.yaml");
    write(
        &intent,
        "apiVersion: calplan/v1\nkind: ClusterIntent\nmetadata: {name: t}\nspec:\n  bgp:\n    nodeToNodeMesh: false\n    peers:\n      \
         - {name: a-to-b, node: a, peerIP: 10.0.0.2, asNumber: 64512, reversePeering: Manual}\n  pools:\n    \
         - {name: p, cidr: 10.244.0.0/16}\n  nodes:\n    - {name: a, ipv4Address: 10.0.0.1/24}\n    - {name: b, ipv4Address: 10.0.0.2/24}\n",
    );
    let path = intent.to_str().unwrap();
    let check = |extra: &[&str]| calplan(&[&["check", path], extra].concat());

    let output = check(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("error: 2 errors, 0 warnings"));

    // Allowed by code and by name: valid, and the count says what was allowed.
    let output = check(&["--allow", "E0404", "--allow", "no-bgp-peering"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("is a valid intent (2 nodes, 1 pool, 0 route-reflector clusters, 0 routers); 2 findings allowed (1 × E0403 no-bgp-peering, 1 × E0404 session-not-established)"), "{stderr}");
    let json: Value = serde_json::from_slice(&check(&["--allow", "E0404", "--allow", "E0403", "--format", "json"]).stdout).unwrap();
    assert_eq!(json["diagnostics"], Value::Array(Vec::new()));
    assert_eq!(json["allowed"].as_array().unwrap().len(), 2);
    assert_eq!(json["allowed"][1]["code"], "E0404");
    assert_eq!(json["allowed"][1]["allowedBy"], "command line");
    let sarif: Value = serde_json::from_slice(&check(&["--allow", "E0404", "--allow", "E0403", "--format", "sarif"]).stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(results.iter().all(|result| result["suppressions"][0]["kind"] == "external"), "{results:?}");
    let github = text(&check(&["--allow", "E0404", "--warn", "E0403", "--format", "github"]).stdout);
    assert!(github.starts_with("::notice title=calplan::1 finding allowed (1 × E0404 session-not-established)\n::warning "), "{github}");

    // Warned: not an error, still shown; denied: an error again, whatever the order.
    let output = check(&["--warn", "session-not-established", "--warn", "E0403"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stderr).contains("warning[E0404]"));
    let output = check(&["--allow", "E0404", "--deny", "E0404", "--allow", "E0403"]);
    assert_eq!(output.status.code(), Some(1), "the strictest level wins");

    // Unknown rules get a suggestion; rules that mean an invalid artifact cannot be allowed.
    let output = check(&["--allow", "session-not-establised"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains(
        "`--allow session-not-establised`: no rule is called `session-not-establised`; did you mean `session-not-established` (E0404)?"
    ));
    let output = check(&["--warn", "duplicate-address"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("the findings of E0303 `duplicate-address` cannot be lowered to warnings"));

    // compile and plan take the same flags.
    let out = directory.path().join("out");
    let output = calplan(&["compile", path, "-o", out.to_str().unwrap(), "--allow", "E0404", "--allow", "E0403"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let output = calplan(&["plan", path, "--allow", "E0404", "--allow", "E0403"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("note: allowed E0403 no-bgp-peering (by `--allow`)"));

    // The command line wins over the intent: a CI job's `--deny` undoes an intent's allowance.
    let allowed = std::fs::read_to_string(&intent).unwrap()
        + "  allow:\n    - {rule: E0404, reason: \"a-to-b is configured by hand on b\"}\n    - {rule: E0403, reason: \"same\"}\n";
    write(&intent, &allowed);
    assert_eq!(check(&[]).status.code(), Some(0));
    let output = check(&["--deny", "session-not-established"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("error[E0404]"));
    let json: Value = serde_json::from_slice(&check(&["--format", "json"]).stdout).unwrap();
    assert_eq!(json["allowed"][1]["reason"], "a-to-b is configured by hand on b");
}
