//! What confd reads from Kubernetes besides Calico's datastore, given as `--current`: Secrets
//! (names and keys only; their values never reach anything calplan writes or prints) and
//! Services with their endpoints (per-Service routes in `bird-calico.cfg`).

use crate::cli::{calplan, text};

/// A value no output may ever hold, and the forms it is stored in.
const SECRET_VALUE: &str = "Zq9-never-shown-7Hx";

/// Standard base64 with padding, as the API server returns a Secret's data.
fn base64(value: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::new();
    for chunk in value.as_bytes().chunks(3) {
        let bytes = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let bits = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for index in 0..4 {
            encoded.push(if index <= chunk.len() { ALPHABET[(bits >> (18 - 6 * index) & 63) as usize] as char } else { '=' });
        }
    }
    encoded
}

const INTENT: &str = r#"apiVersion: calplan/v1
kind: ClusterIntent
metadata:
  name: secrets
spec:
  calicoVersion: "3.31"
  serviceClusterIPs: [10.96.0.0/16]
  bgp:
    asNumber: 64512
    nodeToNodeMesh: true
    advertiseServiceClusterIPs: true
    nodeMeshPassword: {secretKeyRef: {name: bgp-secrets, key: mesh-password}}
  pools:
    - {name: pods, cidr: 10.244.0.0/16, blockSize: 26}
  nodes:
    - {name: node-a, ipv4Address: 10.0.1.11/24}
    - {name: node-b, ipv4Address: 10.0.1.12/24}
"#;

/// `kubectl get secrets,services,endpointslices -A -o yaml`, as kubectl prints it.
fn export(secret_keys: &[&str]) -> String {
    let data: String = secret_keys.iter().map(|key| format!("      {key}: {}\n", base64(SECRET_VALUE))).collect();
    format!(
        r#"apiVersion: v1
items:
- apiVersion: v1
  data:
{data}  kind: Secret
  metadata:
    creationTimestamp: "2026-01-02T03:04:05Z"
    name: bgp-secrets
    namespace: kube-system
    resourceVersion: "812"
    uid: 5d0c6f1e-8a7b-4c1d-9e2f-0a1b2c3d4e5f
  type: Opaque
- apiVersion: v1
  kind: Service
  metadata:
    name: web
    namespace: shop
    resourceVersion: "900"
  spec:
    clusterIP: 10.96.0.10
    clusterIPs: [10.96.0.10]
    externalTrafficPolicy: Local
    ipFamilies: [IPv4]
    type: LoadBalancer
  status:
    loadBalancer: {{}}
- addressType: IPv4
  apiVersion: discovery.k8s.io/v1
  endpoints:
  - addresses: [10.244.0.5]
    conditions: {{ready: true}}
    nodeName: node-a
  kind: EndpointSlice
  metadata:
    labels:
      kubernetes.io/service-name: web
    name: web-x7k2p
    namespace: shop
kind: List
metadata:
  resourceVersion: ""
"#
    )
}

/// Every file under a directory, as text.
fn all_text(directory: &std::path::Path) -> String {
    let mut collected = String::new();
    for entry in std::fs::read_dir(directory).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collected.push_str(&all_text(&path));
        } else {
            collected.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    collected
}

fn assert_no_value(what: &str, haystack: &str) {
    for form in [SECRET_VALUE.to_string(), base64(SECRET_VALUE)] {
        assert!(!haystack.contains(&form), "{what} holds a Secret's value (`{form}`):\n{haystack}");
    }
}

fn compile(work: &std::path::Path, name: &str, current: &[&str]) -> (std::process::Output, std::path::PathBuf) {
    let out = work.join(name);
    let intent = work.join("intent.yaml");
    let mut args = vec!["compile", intent.to_str().unwrap(), "--target", "bird-calico", "-o", out.to_str().unwrap()];
    for source in current {
        args.extend(["--current", source]);
    }
    (calplan(&args), out)
}

#[test]
fn a_secrets_value_never_reaches_any_output_plan_or_state() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("intent.yaml"), INTENT).unwrap();
    let export_path = work.path().join("kubernetes.yaml");
    std::fs::write(&export_path, export(&["mesh-password", "other"])).unwrap();
    let source = export_path.to_str().unwrap();

    let (output, out) = compile(work.path(), "out", &[source]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let render = std::fs::read_to_string(out.join("nodes/node-a/bird-calico.cfg")).unwrap();
    assert!(render.contains("password \"<Secret bgp-secrets key mesh-password>\";"), "{render}");
    assert_no_value("compile's output", &(text(&output.stdout) + &text(&output.stderr) + &all_text(&out)));

    let plan = work.path().join("plan.json");
    let output = calplan(&["plan", work.path().join("intent.yaml").to_str().unwrap(), "--current", source, "-o", plan.to_str().unwrap()]);
    assert!(output.status.code().is_some_and(|code| code <= 2), "{}", text(&output.stderr));
    assert_no_value("plan's output", &(text(&output.stdout) + &text(&output.stderr) + &std::fs::read_to_string(&plan).unwrap()));
    let output = calplan(&["show", plan.to_str().unwrap()]);
    assert_no_value("show", &(text(&output.stdout) + &text(&output.stderr)));

    let imported = work.path().join("imported.yaml");
    let output = calplan(&["import", "--current", out.to_str().unwrap(), "--current", source, "-o", imported.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_no_value("import", &(text(&output.stdout) + &text(&output.stderr) + &std::fs::read_to_string(&imported).unwrap()));
}

/// A Secret calplan cannot read is an error where it is, and the error shows no value: not the
/// one beside it, nor one that is not valid base64, nor one under a key Kubernetes refuses.
#[test]
fn an_unreadable_secret_is_reported_where_it_is_without_its_values() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("intent.yaml"), INTENT).unwrap();
    let export_path = work.path().join("kubernetes.yaml");
    let bad = export(&["mesh-password"]).replace(
        "  kind: Secret\n  metadata:\n    creationTimestamp",
        &format!("      bad key: {SECRET_VALUE}\n      also: !binary {SECRET_VALUE}\n  kind: Secret\n  metadata:\n    creationTimestamp"),
    );
    std::fs::write(&export_path, bad.replace("name: bgp-secrets", "name: BGP_Secrets")).unwrap();
    let (output, _) = compile(work.path(), "out", &[export_path.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("the Secret key `bad key` holds"), "{stderr}");
    assert!(stderr.contains("the Secret name `BGP_Secrets` is not a DNS-1123 subdomain"), "{stderr}");
    assert!(stderr.contains("kubernetes.yaml:"), "located: {stderr}");
    assert_no_value("the diagnostics", &stderr);

    // Text that is not even YAML: where the values are cannot be told, and none is shown.
    for broken in [
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\ndata:\n  k: {}\n   bad: [\n", base64(SECRET_VALUE)),
        format!("{{\n\"apiVersion\": \"v1\",\n\"kind\": \"Secret\", \"data\": {{\"k\": \"{}\"", base64(SECRET_VALUE)),
    ] {
        std::fs::write(&export_path, broken).unwrap();
        let (output, _) = compile(work.path(), "out", &[export_path.to_str().unwrap()]);
        assert!(!output.status.success());
        assert!(text(&output.stderr).contains("kubernetes.yaml"), "{}", text(&output.stderr));
        assert_no_value("the diagnostics of unreadable YAML", &text(&output.stderr));
    }
}

/// confd renders a password only when calico-node's namespace has the Secret with the key;
/// without the cluster's Secrets, calplan keeps the reference (their existence is unknown).
#[test]
fn a_password_renders_only_when_its_secret_has_the_key() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("intent.yaml"), INTENT).unwrap();
    let render = |name: &str, current: &[&str]| {
        let (output, out) = compile(work.path(), name, current);
        assert!(output.status.success(), "{}", text(&output.stderr));
        std::fs::read_to_string(out.join("nodes/node-a/bird-calico.cfg")).unwrap()
    };
    let line = "password \"<Secret bgp-secrets key mesh-password>\";";
    assert!(render("unknown", &[]).contains(line));
    let without_key = work.path().join("without-key.yaml");
    std::fs::write(&without_key, export(&["other"])).unwrap();
    assert!(!render("without-key", &[without_key.to_str().unwrap()]).contains("password"));
    let other_namespace = work.path().join("other-namespace.yaml");
    std::fs::write(&other_namespace, export(&["mesh-password"]).replace("namespace: kube-system", "namespace: calico-system")).unwrap();
    assert!(!render("other-namespace", &[other_namespace.to_str().unwrap()]).contains("password"));
    let empty = work.path().join("empty.yaml");
    std::fs::write(&empty, export(&["mesh-password"]).replace(&base64(SECRET_VALUE), "\"\"")).unwrap();
    assert!(!render("empty", &[empty.to_str().unwrap()]).contains("password"), "an empty value is no password");
}

/// A Service with `externalTrafficPolicy: Local` is advertised from the nodes where it has an
/// endpoint, as a `/32` beside the service range.
#[test]
fn a_local_service_is_routed_from_the_node_of_its_endpoint() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("intent.yaml"), INTENT).unwrap();
    let export_path = work.path().join("kubernetes.yaml");
    std::fs::write(&export_path, export(&["mesh-password"])).unwrap();
    let (output, out) = compile(work.path(), "out", &[export_path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let node_a = std::fs::read_to_string(out.join("nodes/node-a/bird-calico.cfg")).unwrap();
    let node_b = std::fs::read_to_string(out.join("nodes/node-b/bird-calico.cfg")).unwrap();
    assert!(
        node_a.contains("route 10.96.0.10/32 blackhole;") && node_a.contains("if ( net ~ 10.96.0.10/32 ) then { accept; }"),
        "{node_a}"
    );
    assert!(node_b.contains("route 10.96.0.0/16 blackhole;") && !node_b.contains("10.96.0.10/32"), "{node_b}");
    let (output, out) = compile(work.path(), "without", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(!std::fs::read_to_string(out.join("nodes/node-a/bird-calico.cfg")).unwrap().contains("10.96.0.10/32"));
}

/// Felix's endpoint status files name their node by where they were collected; one anywhere
/// else is refused rather than given to some node.
#[test]
fn an_endpoint_status_file_must_say_its_node() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("intent.yaml"), INTENT).unwrap();
    let status = r#"{"ifaceName":"cali1","ipv4Nets":["192.168.0.10/32"],"bgpPeerName":"workloads"}"#;
    let loose = work.path().join("pod1");
    std::fs::write(&loose, status).unwrap();
    let (output, _) = compile(work.path(), "loose", &[loose.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("keep each node's files in `endpoint-status/<node>/`"), "{}", text(&output.stderr));
    let collected = work.path().join("endpoint-status/node-a");
    std::fs::create_dir_all(&collected).unwrap();
    std::fs::write(collected.join("pod1"), status).unwrap();
    let (output, _) = compile(work.path(), "collected", &[work.path().join("endpoint-status").to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
}

/// `plan` predicts confd's render with what confd learns outside the datastore too: planned
/// against a directory compiled without the cluster's Services, the Local Service's route on
/// the node of its endpoint is the change calico-node makes.
#[test]
fn a_plan_predicts_the_render_with_the_clusters_services() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("intent.yaml"), INTENT).unwrap();
    let export_path = work.path().join("kubernetes.yaml");
    std::fs::write(&export_path, export(&["mesh-password"])).unwrap();
    let (output, without) = compile(work.path(), "without", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let intent = work.path().join("intent.yaml");
    let output = calplan(&[
        "plan",
        intent.to_str().unwrap(),
        "--current",
        without.to_str().unwrap(),
        "--current",
        export_path.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let render_of = |node: &str| -> Option<String> {
        plan["stages"]
            .as_array()?
            .iter()
            .flat_map(|stage| stage["changes"].as_array().into_iter().flatten())
            .filter(|change| change["kind"] == "bird-calico.cfg" && change["name"] == node)
            .filter_map(|change| change["after"]["text"].as_str().map(str::to_string))
            .next_back()
    };
    let node_a = render_of("node-a").unwrap_or_else(|| panic!("node-a's render does not change: {plan:#}"));
    assert!(node_a.contains("route 10.96.0.10/32 blackhole;"), "{node_a}");
    assert!(render_of("node-b").is_none_or(|text| !text.contains("10.96.0.10/32")), "{plan:#}");
}
