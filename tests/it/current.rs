//! Current state from every source SPEC §5 names: a real etcd with Calico's layout, the text
//! tables calicoctl prints, route dumps, and the directory an earlier compile wrote.
//!
//! Tests named `…_real_etcd` start `etcd` (Debian's `etcd-server`, `/usr/bin/etcd`) on
//! loopback ports of their own, with a data directory of their own, and stop it when done.

use crate::cli::calplan;
use crate::cli::text;
use crate::golden;
use calplan::etcd::{Client, EtcdError};
use calplan_plan::current::etcd_layout;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port: bound, read and released. Another process may take it before etcd
/// does; `Etcd::start` then tries again with new ports.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An etcd server of the test's own; killed and its data removed when dropped.
pub(crate) struct Etcd {
    child: Child,
    port: u16,
    tls: Option<crate::etcd_tls::Pki>,
    _data: tempfile::TempDir,
}

impl Etcd {
    pub(crate) fn start() -> Etcd {
        Etcd::start_with(None, &[])
    }

    /// With `tls`, etcd serves TLS only and asks every client for a certificate its CA signed
    /// (`--client-cert-auth`), as Calico's etcd clusters run; `extra` goes on etcd's command line.
    pub(crate) fn start_with(tls: Option<crate::etcd_tls::Pki>, extra: &[&str]) -> Etcd {
        let mut last_log = String::new();
        let scheme = if tls.is_some() { "https" } else { "http" };
        for _ in 0..3 {
            let data = tempfile::tempdir().unwrap();
            let (port, peer_port) = (free_port(), free_port());
            let client_url = format!("{scheme}://127.0.0.1:{port}");
            let peer_url = format!("http://127.0.0.1:{peer_port}");
            let log_path = data.path().join("etcd.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let mut command = Command::new("etcd");
            command
                .args(["--name", "calplan-test", "--data-dir"])
                .arg(data.path().join("data"))
                .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &format!("calplan-test={peer_url}"), "--logger", "zap", "--log-level", "warn"])
                .args(extra);
            if let Some(pki) = &tls {
                command
                    .arg("--cert-file")
                    .arg(pki.path("server.pem"))
                    .arg("--key-file")
                    .arg(pki.path("server.key"))
                    .arg("--trusted-ca-file")
                    .arg(pki.path("ca.pem"))
                    .arg("--client-cert-auth");
            }
            let child = command
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("`etcd` runs (Debian's etcd-server package)");
            let mut etcd = Etcd { child, port, tls: tls.clone(), _data: data };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if etcd.child.try_wait().unwrap().is_some() {
                    break;
                }
                if etcd.client().health().is_ok() {
                    return etcd;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
        }
        panic!("etcd did not become healthy on loopback:\n{last_log}");
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn source(&self) -> String {
        let scheme = if self.tls.is_some() { "etcds" } else { "etcd" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// A client with the CA, and the client certificate when etcd wants one.
    pub(crate) fn client(&self) -> Client {
        let address = calplan::etcd::Address::parse(&self.source()).unwrap();
        let security = self.tls.as_ref().map(crate::etcd_tls::Pki::client_security).unwrap_or_default();
        Client::connect(address, &security, Duration::from_secs(5)).unwrap()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stores resources as calicoctl `create` does: no `resourceVersion` in the value (etcd's
/// mod_revision is the version), a `uid` and `creationTimestamp`, a create-if-absent write.
pub(crate) fn create_resources(client: &Client, path: &str) {
    let mut paths: Vec<_> = std::fs::read_dir(golden::root().join(path)).unwrap().map(|entry| entry.unwrap().path()).collect();
    paths.sort();
    for (index, path) in paths.iter().filter(|path| path.extension().is_some_and(|ext| ext == "yaml")).enumerate() {
        let text = std::fs::read_to_string(path).unwrap();
        let read = calplan_plan::current::calico_yaml::read(calplan_diagnostics::FileId(0), &text);
        for resource in read.value.expect("the export reads").iter() {
            let mut value: Value = serde_json::from_slice(&etcd_layout::stored_value(resource)).unwrap();
            let metadata = value["metadata"].as_object_mut().unwrap();
            metadata.entry("uid").or_insert_with(|| Value::from(format!("2d3408b1-c17c-11e8-851d-5254{index:08x}")));
            metadata.entry("creationTimestamp").or_insert_with(|| Value::from("2019-06-20T12:11:48Z"));
            client.create(&etcd_layout::resource_key(resource.kind(), resource.name()), value.to_string().as_bytes()).unwrap();
        }
    }
}

/// The pods of `testdata/pool-migration`, as calico-node's IPAM records them: a confirmed
/// affinity and a block per node, each address's attributes naming its pod.
const PODS: &[(&str, &str, &str, &str, usize)] = &[
    ("cs1-k8s-m1.zpepc.com.cn", "192.168.36.64-26", "cattle-system", "cattle-cluster-agent-6c858f878b-xx5fl", 21),
    ("cs1-k8s-m2.zpepc.com.cn", "192.168.52.128-26", "kube-system", "coredns-6f4fd4bdf-8q7zp", 2),
    ("cs1-k8s-m3.zpepc.com.cn", "192.168.218.0-26", "kube-system", "coredns-6f4fd4bdf-tk2mz", 2),
    ("cs1-k8s-n1.zpepc.com.cn", "192.168.1.128-26", "default", "nginx-5c7588df-4g2b9", 33),
    ("cs1-k8s-n2.zpepc.com.cn", "192.168.157.64-26", "default", "nginx-5c7588df-dj66l", 3),
    ("cs1-k8s-n3.zpepc.com.cn", "192.168.11.192-26", "yxwyy", "eunomia-cas-67fc99f4cb-f77st", 44),
];

fn create_ipam(client: &Client) {
    for (node, block, namespace, pod, ordinal) in PODS {
        client.create(&format!("/calico/ipam/v2/host/{node}/ipv4/block/{block}"), br#"{"state":"confirmed","deleted":false}"#).unwrap();
        let mut allocations = vec![Value::Null; 64];
        allocations[*ordinal] = Value::from(0);
        let unallocated: Vec<usize> = (0..64).filter(|index| index != ordinal).collect();
        let value = json!({
            "cidr": block.replace('-', "/"),
            "affinity": format!("host:{node}"),
            "allocations": allocations,
            "unallocated": unallocated,
            "attributes": [{
                "handle_id": format!("k8s-pod-network.{pod}"),
                "secondary": {"namespace": namespace, "node": node, "pod": pod, "timestamp": "2019-12-29 08:59:33.1 +0000 UTC"},
            }],
            "sequenceNumber": 3,
            "sequenceNumberForAllocation": {ordinal.to_string(): 2},
            "deleted": false,
        });
        client.create(&format!("/calico/ipam/v2/assignment/ipv4/block/{block}"), value.to_string().as_bytes()).unwrap();
    }
    client.create("/calico/ipam/v2/config", br#"{"strict_affinity":false,"auto_allocate_blocks":true}"#).unwrap();
}

/// `status --format json` as (node → sorted (address, type)) rows.
fn status_rows(stdout: &[u8], node: &str) -> Vec<(String, String)> {
    let status: Value = serde_json::from_slice(stdout).unwrap();
    let mut rows: Vec<(String, String)> = status["nodes"][node]
        .as_array()
        .unwrap_or_else(|| panic!("no rows for {node}: {status}"))
        .iter()
        .map(|row| (row["peerAddress"].as_str().unwrap().to_string(), row["peerType"].as_str().unwrap().to_string()))
        .collect();
    rows.sort();
    rows
}

fn row(address: &str, kind: &str) -> (String, String) {
    (address.to_string(), kind.to_string())
}

/// The seed's resources, stored in etcd as calicoctl stored them, give the seed's tables: the
/// tag made `node-peer-to-rr` global, so the non-reflectors see both reflectors as `global`.
#[test]
fn status_reads_the_seed_from_real_etcd() {
    let etcd = Etcd::start();
    create_resources(&etcd.client(), "testdata/seed-rr/current");
    let output = calplan(&["status", "--current", &etcd.source(), "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    for node in ["cs1-k8s-m1", "cs1-k8s-m3", "cs1-k8s-n3"] {
        assert_eq!(
            status_rows(&output.stdout, &format!("{node}.zpepc.com.cn")),
            [row("21.49.22.7", "global"), row("21.49.22.8", "global")]
        );
    }
    assert_eq!(
        status_rows(&output.stdout, "cs1-k8s-n1.zpepc.com.cn"),
        [
            row("21.49.22.4", "node specific"),
            row("21.49.22.5", "node specific"),
            row("21.49.22.6", "node specific"),
            row("21.49.22.8", "global"),
            row("21.49.22.9", "node specific"),
        ]
    );
}

/// A plan from etcd fingerprints the datastore, and each Calico change carries the resource
/// as read, `resourceVersion` being the key's mod_revision, for apply's compare-and-swap.
#[test]
fn plan_against_real_etcd_carries_revisions() {
    let etcd = Etcd::start();
    let client = etcd.client();
    create_resources(&client, "testdata/seed-rr/current");
    let output = calplan(&["plan", "testdata/seed-rr/intent.yaml", "--current", &etcd.source(), "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    let source = &plan["current"][0];
    assert_eq!(source["name"], etcd.source().as_str());
    assert_eq!(source["kind"], "etcd datastore");
    assert_eq!(source["sha256"].as_str().unwrap().len(), 64);
    assert!(source["resources"]["IPPool/default-ipv4-ippool"].is_string(), "{source}");
    let updates: Vec<&Value> = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|stage| stage["changes"].as_array().unwrap())
        .filter(|change| change["target"]["type"] == "calico" && change["before"].is_object())
        .collect();
    assert!(!updates.is_empty(), "the seed's peerings need changes: {plan}");
    for change in updates {
        let before = &change["before"]["value"];
        let kind = calplan_calico::resources::ResourceKind::from_kind(change["kind"].as_str().unwrap()).unwrap();
        let key = etcd_layout::resource_key(kind, change["name"].as_str().unwrap());
        let stored = client.get(&key).unwrap().unwrap();
        assert_eq!(before["metadata"]["resourceVersion"], stored.mod_revision.to_string().as_str(), "{key}");
    }
}

/// Calico's migration planned from etcd alone: the pods holding old addresses come from the
/// blocks' attributes, by name, and the old pool must be empty before it goes.
#[test]
fn pool_migration_from_real_etcd_names_the_pods() {
    let etcd = Etcd::start();
    let client = etcd.client();
    create_resources(&client, "testdata/pool-migration/current");
    create_ipam(&client);
    let output = calplan(&["plan", "testdata/pool-migration/intent.yaml", "--current", &etcd.source(), "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    let drain =
        plan["stages"].as_array().unwrap().iter().find(|stage| stage["barrier"]["type"] == "poolEmpty").expect("a pool-empty barrier");
    let manual = drain["manual"].to_string();
    for (node, _, namespace, pod, _) in PODS {
        assert!(manual.contains(&format!("`{namespace}/{pod}` on `{node}`")), "{pod} missing from {manual}");
    }
    assert!(manual.contains("holds 192.168.36.85"), "{manual}");
}

/// With the cluster's IPAM read from etcd, its affinities are the whole truth for the pools
/// it has, as confd renders exactly the affinities that exist: a node without a block in the
/// live pool gets none (no blackhole, nothing exported, no route to it elsewhere). A pool only
/// the intent has is the one place blocks are still simulated.
#[test]
fn live_ipam_is_authoritative_for_the_clusters_pools_real_etcd() {
    let etcd = Etcd::start();
    let client = etcd.client();
    create_resources(&client, "testdata/seed-rr/current");
    let m1 = "cs1-k8s-m1.zpepc.com.cn";
    client.create(&format!("/calico/ipam/v2/host/{m1}/ipv4/block/192.168.36.64-26"), br#"{"state":"confirmed","deleted":false}"#).unwrap();
    let intent = std::fs::read_to_string(golden::root().join("testdata/seed-rr/intent.yaml"))
        .unwrap()
        .replace("  nodes:\n", "    - {name: new-pool, cidr: 10.10.0.0/16, blockSize: 26}\n  nodes:\n");
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("intent.yaml");
    write(&path, &intent);
    let out = directory.path().join("out");
    let output = calplan(&[
        "compile",
        path.to_str().unwrap(),
        "--current",
        &etcd.source(),
        "--target",
        "bird,bird-calico,routes",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let file = |node: &str, name: &str| std::fs::read_to_string(out.join(format!("nodes/{node}.zpepc.com.cn/{name}"))).unwrap();

    let calico = file("cs1-k8s-m1", "bird-calico.cfg");
    assert!(calico.contains("route 192.168.36.64/26 blackhole;"), "{calico}");
    assert!(calico.contains("# Block 192.168.36.64/26 is confirmed"), "{calico}");
    for node in ["cs1-k8s-m2", "cs1-k8s-n3"] {
        let calico = file(node, "bird-calico.cfg");
        let bird = file(node, "bird.cfg");
        let routes = file(node, "routes");
        for text in [&calico, &bird, &routes] {
            assert!(
                !text.contains("192.168.0.0/26") && !text.contains("192.168.0.64/26"),
                "`{node}` has no block of the live pool:\n{text}"
            );
        }
        assert!(!calico.contains("# Block 192.168."), "{calico}");
        assert!(routes.contains("192.168.36.64/26 via 21.49.22.4 proto bird"), "m1's real block is routed to:\n{routes}");
        // The pool the cluster does not have yet is forecast: one block per node.
        assert!(calico.contains("# Block 10.10."), "the new pool's simulated block:\n{calico}");
    }
}

/// Calico's Kubernetes datastore means what its etcd layout means: the seed cluster exported
/// with kubectl (`testdata/seed-kdd/current`: custom resources, Nodes with Calico's
/// annotations, `BlockAffinity` and `IPAMBlock` objects) reads as the same cluster stored in a
/// real etcd by calicoctl and calico-node (`testdata/seed-rr/current` and the same IPAM).
#[test]
fn a_kubernetes_export_reads_as_the_same_cluster_in_etcd_real_etcd() {
    let etcd = Etcd::start();
    let client = etcd.client();
    create_resources(&client, "testdata/seed-rr/current");
    create_ipam(&client);
    // The export also holds a BGPFilter, which the seed's etcd dump predates.
    let filter = json!({
        "kind": "BGPFilter", "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": "no-default-route", "uid": "2c9a7d10-6b3e-4f2a-8c1d-93e5b7a0f412", "creationTimestamp": "2024-03-02T10:00:00Z"},
        "spec": {"importV4": [{"action": "Reject", "cidr": "0.0.0.0/0", "matchOperator": "Equal"}]},
    });
    client.create("/calico/resources/v3/projectcalico.org/bgpfilters/no-default-route", filter.to_string().as_bytes()).unwrap();
    let kdd = "testdata/seed-kdd/current".to_string();
    let from_etcd = calplan::current::load(&[etcd.source()]).unwrap();
    let from_kdd = calplan::current::load(std::slice::from_ref(&kdd)).unwrap();
    assert!(from_kdd.diagnostics.is_empty(), "{:?}", from_kdd.diagnostics);
    assert!(from_kdd.state.sources.iter().all(|source| source.kind == "Kubernetes datastore"), "{:?}", from_kdd.state.sources);
    assert_eq!(from_kdd.state.datastore, Some(calplan_model::Datastore::Kubernetes));

    // Pools, peers and the BGP configuration compare equal; nodes by their BGP part and the
    // label their selectors use (the exports' other labels differ).
    let (etcd_resources, kdd_resources) = (from_etcd.state.resources.unwrap(), from_kdd.state.resources.unwrap());
    let digests = |resources: &calplan_calico::resources::ResourceSet| {
        let mut digests = calplan_plan::current::resource_digests(resources);
        digests.retain(|key, _| !key.starts_with("Node/") && !key.starts_with("BGPFilter/"));
        digests
    };
    assert_eq!(digests(&kdd_resources), digests(&etcd_resources));
    // The export also holds a BGPFilter, which the etcd cluster has not: read as a v3 resource.
    let filter = kdd_resources.filters().next().expect("the export's BGPFilter");
    assert_eq!((filter.metadata.name.as_str(), filter.api_version.as_str()), ("no-default-route", "projectcalico.org/v3"));
    assert_eq!(kdd_resources.nodes().count(), 6);
    for node in etcd_resources.nodes() {
        let Some(calplan_calico::resources::Resource::Node(read)) =
            kdd_resources.get(calplan_calico::resources::ResourceKind::Node, &node.metadata.name)
        else {
            panic!("{} missing from the Kubernetes export", node.metadata.name)
        };
        assert_eq!(read.spec.bgp, node.spec.bgp, "{}", node.metadata.name);
        assert_eq!(read.metadata.labels.get("route-reflector"), node.metadata.labels.get("route-reflector"), "{}", node.metadata.name);
    }
    let peer = kdd_resources.peers().find(|peer| peer.metadata.name == "rr-to-rr-peer").unwrap();
    assert_eq!(peer.metadata.labels.get("purpose").map(String::as_str), Some("reflector-mesh"), "v3 labels from the metadata annotation");
    assert_eq!(peer.metadata.labels.get("team").map(String::as_str), Some("network"));
    assert!(!peer.metadata.annotations.contains_key("projectcalico.org/metadata"));

    // IPAM: the same affinities (the deleted and the virtual one skipped), usage and pods.
    assert_eq!(from_kdd.state.affinities, from_etcd.state.affinities);
    assert_eq!(from_kdd.state.block_usage, from_etcd.state.block_usage);
    assert_eq!(from_kdd.state.workloads, from_etcd.state.workloads);

    // And so the same tables and the same node files.
    let status = |source: &str| calplan(&["status", "--current", source, "--format", "json"]);
    let (etcd_status, kdd_status) = (status(&etcd.source()), status(&kdd));
    assert_eq!(kdd_status.status.code(), Some(0), "{}", text(&kdd_status.stderr));
    assert_eq!(text(&kdd_status.stdout), text(&etcd_status.stdout));
    let directory = tempfile::tempdir().unwrap();
    let compile = |source: &str, out: &str| {
        let out = directory.path().join(out);
        let output = calplan(&[
            "compile",
            "testdata/seed-rr/intent.yaml",
            "--current",
            source,
            "--target",
            "bird,bird-calico,routes",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
        (out, manifest)
    };
    let (etcd_out, etcd_manifest) = compile(&etcd.source(), "etcd");
    let (kdd_out, kdd_manifest) = compile(&kdd, "kdd");
    assert_eq!(kdd_manifest, etcd_manifest, "every node file byte for byte");
    let m1 = "nodes/cs1-k8s-m1.zpepc.com.cn/bird-calico.cfg";
    assert_eq!(std::fs::read_to_string(kdd_out.join(m1)).unwrap(), std::fs::read_to_string(etcd_out.join(m1)).unwrap());
    assert!(std::fs::read_to_string(kdd_out.join(m1)).unwrap().contains("route 192.168.36.64/26 blackhole;"));
}

/// `import` of a Kubernetes export writes an intent (`datastore: kubernetes`) that compiles,
/// and planning it against the same export changes nothing.
#[test]
fn importing_a_kubernetes_export_then_planning_it_changes_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let intent = directory.path().join("imported.yaml");
    let output = calplan(&["import", "--current", "testdata/seed-kdd/current", "-o", intent.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let imported = std::fs::read_to_string(&intent).unwrap();
    assert!(imported.contains("datastore: kubernetes"), "{imported}");
    assert!(imported.contains("routeReflectorClusterID: \"1.0.0.1\""), "{imported}");
    let output = calplan(&["plan", intent.to_str().unwrap(), "--current", "testdata/seed-kdd/current", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "an empty plan:\n{}{}", text(&output.stdout), text(&output.stderr));
}

#[test]
fn compare_and_swap_transactions_real_etcd() {
    let etcd = Etcd::start();
    let client = etcd.client();
    let key = "/calico/resources/v3/projectcalico.org/ippools/pool-a";
    let created = client.create(key, b"{\"v\":1}").unwrap();
    let stored = client.get(key).unwrap().unwrap();
    assert_eq!((stored.mod_revision, stored.create_revision), (created, created));

    // A second create finds the key and reports what is there.
    match client.create(key, b"{\"v\":2}") {
        Err(EtcdError::Conflict { key: conflicted, current: Some(current), endpoint }) => {
            assert_eq!(conflicted, key);
            assert_eq!(current.value, b"{\"v\":1}");
            assert_eq!(current.mod_revision, created);
            assert_eq!(endpoint, format!("127.0.0.1:{}", etcd.port));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }

    // An update at the revision read succeeds; one at a stale revision changes nothing.
    let updated = client.update(key, b"{\"v\":3}", created).unwrap();
    assert!(updated > created);
    let error = client.update(key, b"{\"v\":4}", created).unwrap_err();
    match &error {
        EtcdError::Conflict { current: Some(current), .. } => assert_eq!(current.mod_revision, updated),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(error.to_string().contains(&format!("now at mod_revision {updated}")), "{error}");
    assert_eq!(client.get(key).unwrap().unwrap().value, b"{\"v\":3}", "a stale update leaves the key unchanged");

    // Deletes compare the same way; a key gone is a conflict without a current value.
    assert!(matches!(client.delete(key, created), Err(EtcdError::Conflict { current: Some(_), .. })));
    client.delete(key, updated).unwrap();
    assert_eq!(client.get(key).unwrap(), None);
    assert!(matches!(client.update(key, b"{}", updated), Err(EtcdError::Conflict { current: None, .. })));

    // Ranges page through large prefixes and read every page at one revision.
    for index in 0..1205 {
        client.put(&format!("/calico/ipam/v2/handle/k8s-pod-network.{index:05}"), b"{}").unwrap();
    }
    let range = client.range_prefix("/calico/ipam/v2/handle/", None).unwrap();
    assert_eq!(range.pairs.len(), 1205);
    assert!(range.pairs.windows(2).all(|pair| pair[0].key < pair[1].key));
    assert_eq!(client.delete_prefix("/calico/ipam/v2/handle/").unwrap(), 1205);
}

/// The fingerprint moves when a key calplan read moves, and not when etcd's revision does
/// for a key it did not read (Felix writes its status every few seconds).
#[test]
fn the_fingerprint_follows_calicos_keys_real_etcd() {
    let etcd = Etcd::start();
    let client = etcd.client();
    create_resources(&client, "testdata/pool-migration/current");
    let fingerprint = || {
        let loaded = calplan::current::load(&[etcd.source()]).unwrap();
        assert!(loaded.diagnostics.is_empty());
        loaded.state.sources[0].clone()
    };
    let first = fingerprint();
    client.put("/calico/felix/v2/no-region/host/cs1-k8s-m1.zpepc.com.cn/status", br#"{"time":"now"}"#).unwrap();
    assert_eq!(fingerprint(), first);
    let key = "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool";
    let pool = client.get(key).unwrap().unwrap();
    let mut value: Value = serde_json::from_slice(&pool.value).unwrap();
    value["spec"]["natOutgoing"] = Value::from(false);
    client.update(key, value.to_string().as_bytes(), pool.mod_revision).unwrap();
    let changed = fingerprint();
    assert_ne!(changed.sha256, first.sha256);
    assert_ne!(changed.resources["IPPool/default-ipv4-ippool"], first.resources["IPPool/default-ipv4-ippool"]);
    assert_eq!(changed.resources["BGPPeer/peer-with-route-reflectors"], first.resources["BGPPeer/peer-with-route-reflectors"]);
}

#[test]
fn a_bad_value_in_etcd_is_located_real_etcd() {
    let etcd = Etcd::start();
    etcd.client()
        .create("/calico/resources/v3/projectcalico.org/ippools/broken", br#"{"metadata":{"name":"broken"},"spec":{"blockSize":"big"}}"#)
        .unwrap();
    let output = calplan(&["status", "--current", &etcd.source()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("E0701"), "{stderr}");
    assert!(stderr.contains(&format!("{}:3:", etcd.source())), "the value's line in the listing: {stderr}");
    assert!(stderr.contains("cannot read this `IPPool`"), "{stderr}");
}

#[test]
fn etcd_addresses_and_unreachable_servers_are_named() {
    // A port nothing listens on: bound, then released.
    let port = free_port();
    let output = calplan(&["status", "--current", &format!("etcd://127.0.0.1:{port}")]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains(&format!("cannot reach etcd at 127.0.0.1:{port}")), "{stderr}");
    for (source, fragment) in [
        ("etcd://127.0.0.1", "the port is missing"),
        ("etcd://admin:hunter2@127.0.0.1:2379", "credentials"),
        ("https://127.0.0.1:2379", "expected `etcd://HOST:PORT`"),
    ] {
        let output = calplan(&["status", "--current", source]);
        assert_eq!(output.status.code(), Some(1), "{source}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(fragment), "{source}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

/// The scenario's text exports: the plan names every pod of the old pool in the manual step,
/// waits for the pool to be empty, and only then deletes it.
#[test]
fn pool_migration_from_text_tables_names_the_pods() {
    let output =
        calplan(&["plan", "testdata/pool-migration/intent.yaml", "--current", "testdata/pool-migration/current", "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    let stages = plan["stages"].as_array().unwrap();
    let position = |predicate: &dyn Fn(&Value) -> bool| stages.iter().position(predicate).unwrap();
    let changes_pool = |stage: &Value, action: &str, name: &str| {
        stage["changes"].as_array().unwrap().iter().any(|change| change["action"] == action && change["name"] == name)
    };
    let create = position(&|stage| changes_pool(stage, "create", "ipv4-ippool"));
    let drain = position(&|stage| stage["barrier"]["type"] == "poolEmpty");
    let delete = position(&|stage| changes_pool(stage, "delete", "default-ipv4-ippool"));
    assert!(create < drain && drain < delete, "new pool, drain, delete: {create} {drain} {delete}");
    assert_eq!(stages[drain]["barrier"]["cidr"], "192.168.0.0/16");
    let manual: Vec<&str> = stages[drain]["manual"].as_array().unwrap().iter().map(|step| step.as_str().unwrap()).collect();
    assert_eq!(manual.len(), 7, "{manual:?}");
    assert!(manual.contains(&"recreate pod `yxwyy/eunomia-web-7d9b6c5f4-2xq8r` on `cs1-k8s-n3.zpepc.com.cn` (holds 192.168.11.237): kubectl delete pod -n yxwyy eunomia-web-7d9b6c5f4-2xq8r"), "{manual:?}");
}

fn write(path: &Path, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

#[test]
fn unreadable_tables_point_at_the_line() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ipam.txt");
    write(
        &path,
        "+----------+---------------+-----------+------------+----------+\n\
         | GROUPING | CIDR          | IPS TOTAL | IPS IN USE | IPS FREE |\n\
         +----------+---------------+-----------+------------+----------+\n\
         | Block    | 10.65.79.0/99 |        64 | 5 (8%)     | 59 (92%) |\n",
    );
    let output = calplan(&["status", "--current", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("E0701"), "{stderr}");
    assert!(stderr.contains("ipam.txt:4:14"), "{stderr}");
    assert!(stderr.contains("`10.65.79.0/99` is not a CIDR"), "{stderr}");
}

#[test]
fn route_dumps_are_named_for_their_node() {
    let directory = tempfile::tempdir().unwrap();
    write(
        &directory.path().join("routes/cs1-k8s-m1.zpepc.com.cn"),
        "blackhole 192.168.36.64/26 proto bird\n192.168.1.128/26 via 21.49.22.7 dev eth0 proto bird\n",
    );
    write(
        &directory.path().join("cs1-k8s-n1.zpepc.com.cn.json"),
        r#"[{"type":"blackhole","dst":"192.168.1.128/26","protocol":"bird","flags":[]},{"dst":"192.168.36.64/26","gateway":"21.49.22.4","dev":"eth0","protocol":"bird","flags":[]}]"#,
    );
    let loaded = calplan::current::load(&[directory.path().display().to_string()]).unwrap();
    assert!(loaded.diagnostics.is_empty());
    assert_eq!(
        loaded.state.node_routes["cs1-k8s-m1.zpepc.com.cn"],
        ["192.168.1.128/26 via 21.49.22.7 proto bird", "blackhole 192.168.36.64/26 proto bird"]
    );
    assert_eq!(
        loaded.state.node_routes["cs1-k8s-n1.zpepc.com.cn"],
        ["blackhole 192.168.1.128/26 proto bird", "192.168.36.64/26 via 21.49.22.4 proto bird"]
    );
    assert_eq!(loaded.state.sources.iter().filter(|source| source.kind == "node routes").count(), 2);

    write(&directory.path().join("dump.txt"), "blackhole 192.168.36.64/26 proto bird\n");
    let error = calplan::current::load(&[directory.path().join("dump.txt").display().to_string()]).err().unwrap();
    assert!(error.to_string().contains("does not say which node's"), "{error}");
}

/// SPEC §9's law: what compile wrote, read back as current state, plans to nothing; a file
/// edited afterwards is caught by its digest.
#[test]
fn a_compiled_directory_reads_back_as_current_state() {
    let directory = tempfile::tempdir().unwrap();
    let out = directory.path().join("out");
    let output = calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let loaded = calplan::current::load(&[out.display().to_string()]).unwrap();
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let applied = loaded.state.applied.as_ref().unwrap();
    assert!(applied.contains_key("nodes/cs1-k8s-n1.zpepc.com.cn/bird.cfg"));
    assert_eq!(loaded.state.resources.as_ref().unwrap().pools().count(), 1);
    assert_eq!(loaded.state.sources[0].kind, "applied state");
    let by_manifest = calplan::current::load(&[out.join("manifest.json").display().to_string()]).unwrap();
    assert_eq!(by_manifest.state.applied.as_ref(), Some(applied), "the manifest stands for its directory");

    let output = calplan(&["plan", "testdata/seed-rr/intent.yaml", "--current", out.to_str().unwrap(), "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "an empty plan:\n{}{}", text(&output.stdout), text(&output.stderr));

    let routes = out.join("nodes/cs1-k8s-m1.zpepc.com.cn/routes");
    let edited = std::fs::read_to_string(&routes).unwrap() + "10.0.0.0/8 via 21.49.22.1\n";
    std::fs::write(&routes, edited).unwrap();
    let output = calplan(&["plan", "testdata/seed-rr/intent.yaml", "--current", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("`nodes/cs1-k8s-m1.zpepc.com.cn/routes` was edited by hand"), "{stderr}");
    assert!(stderr.contains("manifest.json:"), "located in the manifest: {stderr}");
}

/// Calico's documented block-size change on the same CIDR: through a temporary pool, and the
/// pool of the same name comes back as a replacement (delete, then create), never as an
/// update, which Calico refuses ("IPPool BlockSize cannot be modified").
#[test]
fn a_block_size_change_in_place_replaces_the_pool() {
    let directory = tempfile::tempdir().unwrap();
    let intent = std::fs::read_to_string(golden::root().join("testdata/pool-migration/intent.yaml"))
        .unwrap()
        .replace("name: ipv4-ippool", "name: default-ipv4-ippool")
        .replace("cidr: 10.244.0.0/16", "cidr: 192.168.0.0/16");
    let path = directory.path().join("intent.yaml");
    write(&path, &intent);
    let output = calplan(&["plan", path.to_str().unwrap(), "--current", "testdata/pool-migration/current", "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    let pool_changes: Vec<(String, String)> = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|stage| stage["changes"].as_array().unwrap())
        .filter(|change| change["kind"] == "IPPool")
        .map(|change| (change["action"].as_str().unwrap().to_string(), change["name"].as_str().unwrap().to_string()))
        .collect();
    let pool = |action: &str, name: &str| (action.to_string(), name.to_string());
    assert_eq!(
        pool_changes,
        [
            pool("create", "default-ipv4-ippool-temporary"),
            pool("update", "default-ipv4-ippool"),
            pool("replace", "default-ipv4-ippool"),
            pool("update", "default-ipv4-ippool-temporary"),
            pool("delete", "default-ipv4-ippool-temporary"),
        ]
    );
    assert_eq!(plan["summary"]["replace"], 1);
}

fn mkfifo(path: &Path) {
    let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0, "mkfifo {}", path.display());
}

const POOL: &str =
    "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: default-ipv4-ippool\nspec:\n  cidr: 192.168.0.0/16\n";

/// A FIFO in a `--current` directory used to block the read for ever; links out of the
/// directory were followed (a link to `/` walked the whole file system). Both are passed over,
/// and said so; a link to a file inside the directory is read.
#[test]
fn a_directory_is_read_without_fifos_or_links_out_of_it() {
    let directory = tempfile::tempdir().unwrap();
    let current = directory.path().join("current");
    write(&current.join("ippools.yaml"), POOL);
    mkfifo(&current.join("bgppeers.yaml"));
    std::os::unix::fs::symlink("/", current.join("root")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", current.join("hostname.yaml")).unwrap();
    std::os::unix::fs::symlink(&current, current.join("loop")).unwrap();
    std::os::unix::fs::symlink("ippools.yaml", current.join("pools-again.yaml")).unwrap();
    std::os::unix::fs::symlink("nothing-here", current.join("dangling.yaml")).unwrap();
    let output = crate::cli::calplan_within(&["import", "--current", current.to_str().unwrap()], Duration::from_secs(20));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(text(&output.stdout).contains("cidr: 192.168.0.0/16"), "{}", text(&output.stdout));
    for (name, why) in [
        ("bgppeers.yaml", "is a FIFO, not a regular file; passed over"),
        ("root", "is a link leading out of"),
        ("hostname.yaml", "is a link leading out of"),
        ("loop", "is a link to a directory; passed over"),
        ("dangling.yaml", "is a link to nothing; passed over"),
    ] {
        assert!(stderr.contains(&format!("note: `{}` {why}", current.join(name).display())), "{name}: {stderr}");
    }
    assert!(!stderr.contains("pools-again.yaml"), "a link inside the directory is read: {stderr}");
}

/// An earlier output directory: an unlisted link to `/` is one unlisted entry, not a walk of
/// the file system, and a listed artifact that became a FIFO is an error, not a wait.
#[test]
fn an_output_directory_is_read_without_following_unlisted_links_or_waiting_on_fifos() {
    let directory = tempfile::tempdir().unwrap();
    let out = directory.path().join("out");
    let output = calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    std::os::unix::fs::symlink("/", out.join("nodes/escape")).unwrap();
    let output = crate::cli::calplan_within(&["status", "--current", out.to_str().unwrap()], Duration::from_secs(20));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("`nodes/escape` is not listed in the manifest and is ignored"), "{stderr}");

    let routes = out.join("nodes/cs1-k8s-m1.zpepc.com.cn/routes");
    std::fs::remove_file(&routes).unwrap();
    mkfifo(&routes);
    let output = crate::cli::calplan_within(&["status", "--current", out.to_str().unwrap()], Duration::from_secs(20));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("routes`: it is a FIFO, not a regular file"), "{stderr}");
}

/// A plan's source that became a FIFO: apply's freshness check refuses it at once (it used to
/// wait for a writer, holding the apply lock).
#[test]
fn apply_refuses_a_plan_source_that_became_a_fifo() {
    let directory = tempfile::tempdir().unwrap();
    let source = directory.path().join("ippools.yaml");
    write(&source, POOL);
    let plan = directory.path().join("plan.json");
    let output = calplan(&["plan", "testdata/seed-rr/intent.yaml", "--current", source.to_str().unwrap(), "-o", plan.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    std::fs::remove_file(&source).unwrap();
    mkfifo(&source);
    let state = directory.path().join("state");
    let args = ["apply", plan.to_str().unwrap(), "--state", state.to_str().unwrap(), "--only", "nodes", "--auto-approve"];
    let output = crate::cli::calplan_within(&args, Duration::from_secs(20));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stale plan: cannot read") && stderr.contains("it is a FIFO, not a regular file"), "{stderr}");
}

/// Files past the size calplan reads are refused before they are read.
#[test]
fn a_current_state_file_too_large_to_read_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("huge.yaml");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(65 << 20).unwrap();
    for args in [vec!["status", "--current", path.to_str().unwrap()], vec!["check", path.to_str().unwrap()]] {
        let output = crate::cli::calplan_within(&args, Duration::from_secs(20));
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("is too large to read: 68157440 bytes, more than the 64 MiB calplan reads"), "{stderr}");
    }
}

/// Current state that Calico itself would refuse used to be dropped without a word, and
/// `import` then wrote an intent that failed `check`. Each value is an error at its own line
/// and column, and nothing is imported.
#[test]
fn current_state_calico_would_refuse_is_located_and_not_imported() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("exports.yaml");
    write(
        &path,
        "apiVersion: projectcalico.org/v3\n\
         kind: Node\n\
         metadata: {name: n1}\n\
         spec:\n  bgp: {ipv4Address: 999.1.1.1/24}\n\
         ---\n\
         apiVersion: projectcalico.org/v3\n\
         kind: BGPPeer\n\
         metadata: {name: p1}\n\
         spec: {peerSelector: has(a) &&&, asNumber: 64512}\n\
         ---\n\
         apiVersion: projectcalico.org/v3\n\
         kind: IPPol\n\
         metadata: {name: pool}\n\
         ---\n\
         apiVersion: projectcalico.org/v3\n\
         kind: NodeList\n\
         items: 5\n\
         ---\n\
         apiVersion: projectcalico.org/v3\n\
         kind: IPPool\n\
         metadata: {name: pool}\n\
         spec: {cidr: 10.0.0.0/16, blockSize: 8}\n",
    );
    let output = calplan(&["import", "--current", path.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty(), "no intent is written");
    for (at, message) in [
        ("exports.yaml:5:22", "`ipv4Address` is not an IPv4 address or CIDR: `999.1.1.1/24`"),
        ("exports.yaml:10:22", "`peerSelector` does not parse as a selector"),
        ("exports.yaml:13:7", "`IPPol` is not a kind of `projectcalico.org/v3`"),
        ("exports.yaml:18:8", "`items` must be a list of resources, found an integer"),
        ("exports.yaml:23:38", "IPv4 block size must be between 20 and 32"),
    ] {
        assert!(stderr.contains(message), "{message}: {stderr}");
        assert!(stderr.contains(at), "{at} ({message}): {stderr}");
    }
    assert!(stderr.contains("did you mean `IPPool`?"), "{stderr}");
    assert_eq!(stderr.matches("error[E0702]").count(), 5, "{stderr}");
}

/// What Calico reads without complaint reads here too: `spec: null` is the zero value, and an
/// empty entry `{}` among the service ranges is skipped as confd skips it (Calico's own confd
/// fixture `mesh/static-routes` has them). A misspelt field, which Calico ignored, is a warning
/// at the field with the field it was meant to be, and the imported intent keeps Calico's
/// default, as the cluster does.
#[test]
fn current_state_is_read_as_calico_reads_it() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("exports.yaml");
    write(
        &path,
        "kind: BGPConfiguration\n\
         apiVersion: projectcalico.org/v3\n\
         metadata: {name: default}\n\
         spec:\n  serviceClusterIPs:\n  - cidr: 10.101.0.0/16\n  - {}\n  serviceLoadBalancerIPs:\n  - cidr: 80.15.0.0/24\n  - {}\n\
         ---\n\
         kind: Node\n\
         apiVersion: projectcalico.org/v3\n\
         metadata: {name: kube-master}\n\
         spec: null\n\
         ---\n\
         kind: IPPool\n\
         apiVersion: projectcalico.org/v3\n\
         metadata: {name: default-ipv4-ippool}\n\
         spec:\n  cidr: 192.168.0.0/16\n  bolockSize: 24\n",
    );
    let output = calplan(&["import", "--current", path.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("warning[W0703]: `bolockSize` is not a field of an IPPool's `spec`: Calico ignores it"), "{stderr}");
    assert!(stderr.contains("exports.yaml:22:3"), "{stderr}");
    assert!(stderr.contains("did you mean `blockSize`? Calico ignored `bolockSize`, so `blockSize` has its default"), "{stderr}");
    assert!(!stderr.contains("no place in the intent"), "a field Calico ignored is not an import note: {stderr}");
    let intent = text(&output.stdout);
    assert!(intent.contains("blockSize: 26"), "the block size the cluster has: {intent}");
    assert!(intent.contains("- 10.101.0.0/16\n") && intent.contains("- 80.15.0.0/24\n"), "{intent}");
    assert!(intent.contains("name: kube-master"), "{intent}");
    let imported = directory.path().join("imported.yaml");
    write(&imported, &intent);
    let output = calplan(&["check", imported.to_str().unwrap(), "--format", "json"]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let errors: Vec<&Value> = report["diagnostics"].as_array().unwrap().iter().filter(|d| d["severity"] == "error").collect();
    assert!(
        errors.iter().all(|d| d["code"] != "E0101" && d["code"] != "E0004" && d["code"] != "E0003"),
        "the ranges and fields read back: {report}"
    );
}

/// Through `--current`, the inputs that aborted or exhausted calplan through the intent: a
/// BGPPeer's selector nested 30,000 deep, aliases of aliases, YAML and JSON nested 100,000 deep.
#[test]
fn hostile_current_state_files_are_errors_not_aborts() {
    let directory = tempfile::tempdir().unwrap();
    let peer = directory.path().join("peer.yaml");
    write(
        &peer,
        &format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: p}}\nspec: {{peerSelector: '{}all()', asNumber: 64512}}\n",
            "!".repeat(30_000)
        ),
    );
    let mut laughs = String::from(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for level in 1..9 {
        laughs.push_str(&format!("  a{level}: &a{level} [{}]\n", vec![format!("*a{}", level - 1); 10].join(", ")));
    }
    let aliases = directory.path().join("aliases.yaml");
    write(&aliases, &laughs);
    let nested = directory.path().join("nested.yaml");
    write(
        &nested,
        &format!(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: n}}\nspec: {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    );
    let routes = directory.path().join("n1.json");
    write(&routes, &format!("[{{\"dst\": {}1{}}}]", "[".repeat(100_000), "]".repeat(100_000)));
    for (path, expected) in [
        (&peer, "the selector nests deeper than 64"),
        (&aliases, "error[E0008]: the YAML's aliases expand to more than"),
        (&nested, "error[E0008]: the YAML nests deeper than 64 levels"),
        (&routes, "recursion limit exceeded"),
    ] {
        let output = crate::cli::calplan_within(&["status", "--current", path.to_str().unwrap()], Duration::from_secs(30));
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{}: {stderr}", path.display());
        assert!(stderr.contains(expected), "{}: {stderr}", path.display());
        assert!(stderr.len() < 16 << 10, "{}: {} bytes of errors", path.display(), stderr.len());
    }
}

/// etcd values are read as the exports are: `"spec": null` is the zero value, a field Calico
/// does not know is a warning at its place in the listing, and a value Calico refuses is an
/// error there; JSON nested past serde_json's limit is an error, not an abort.
#[test]
fn etcd_values_are_read_as_calico_reads_them_real_etcd() {
    let etcd = Etcd::start();
    let client = etcd.client();
    let resource = |plural: &str, name: &str, value: &str| {
        client.create(&format!("/calico/resources/v3/projectcalico.org/{plural}/{name}"), value.as_bytes()).unwrap();
    };
    resource("nodes", "n1", r#"{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":"n1"},"spec":null}"#);
    resource(
        "ippools",
        "p1",
        r#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"p1"},"spec":{"cidr":"10.0.0.0/16","bolockSize":24}}"#,
    );
    let output = calplan(&["import", "--current", &etcd.source()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("warning[W0703]: `bolockSize` is not a field of an IPPool's `spec`"), "{stderr}");
    assert!(stderr.contains(&format!("{}:3:108", etcd.source())), "at the field in the listing: {stderr}");
    assert!(text(&output.stdout).contains("name: n1"), "{}", text(&output.stdout));

    resource(
        "bgppeers",
        "rr",
        r#"{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{"name":"rr"},"spec":{"peerSelector":"has(a) &&&"}}"#,
    );
    resource("bgppeers", "deep", &format!(r#"{{"metadata":{{"name":"deep"}},"spec":{}1{}}}"#, "[".repeat(100_000), "]".repeat(100_000)));
    let output = crate::cli::calplan_within(&["status", "--current", &etcd.source()], Duration::from_secs(30));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error[E0702]: `peerSelector` does not parse as a selector"), "{stderr}");
    assert!(stderr.contains("recursion limit exceeded"), "{stderr}");
    assert!(stderr.len() < 16 << 10, "{} bytes of errors", stderr.len());
}

/// An HTTP server on loopback that answers every request with one fixed response, counting
/// the requests: the endpoint that is not etcd, which the etcd client must refuse.
struct NotEtcd {
    port: u16,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NotEtcd {
    fn answering(response: String) -> NotEtcd {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (counted, stopped) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let _ = reader.into_inner().write_all(response.as_bytes());
            }
        });
        NotEtcd { port, requests, stop, thread: Some(thread) }
    }

    fn source(&self) -> String {
        format!("etcd://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for NotEtcd {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn http(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
        body.len()
    )
}

/// An endpoint that answers `{}` is not etcd, and used to read as an empty datastore, so the
/// plan recreated everything: without etcd's response header the answer is refused. A
/// redirect is refused, not followed; and a body is never repeated in the error.
#[test]
fn an_endpoint_that_is_not_etcd_is_refused() {
    let empty = NotEtcd::answering(http("200 OK", "", "{}"));
    let output = calplan(&["plan", "testdata/seed-rr/intent.yaml", "--current", &empty.source()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no etcd response header") && stderr.contains("will not read it as an empty datastore"), "{stderr}");
    assert!(output.stdout.is_empty(), "no plan: {}", text(&output.stdout));

    // Even to a server that answers as etcd would, a redirect is not followed.
    let elsewhere =
        NotEtcd::answering(http("200 OK", "", r#"{"header":{"cluster_id":"1","member_id":"2","revision":"9","raft_term":"2"}}"#));
    let location = format!("location: http://127.0.0.1:{}/v3/kv/range\r\n", elsewhere.port);
    let redirecting = NotEtcd::answering(http("307 Temporary Redirect", &location, ""));
    let output = calplan(&["status", "--current", &redirecting.source()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("HTTP 307, a redirect: calplan does not follow redirects"), "{stderr}");
    assert_eq!(elsewhere.requests(), 0, "the redirect was followed");
    assert_eq!(redirecting.requests(), 1);

    let page = format!("<html><title>sign in</title>{}</html>", "token=hunter2 ".repeat(1000));
    let portal = NotEtcd::answering(http("200 OK", "", &page));
    let output = calplan(&["status", "--current", &portal.source()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("that are not JSON: not etcd's JSON gateway"), "{stderr}");
    assert!(!stderr.contains("hunter2") && !stderr.contains("<html>"), "the body is not repeated: {stderr}");

    let refusing = NotEtcd::answering(http("500 Internal Server Error", "", &format!(r#"{{"message":"\u001b[2J{}"}}"#, "x".repeat(5000))));
    let output = calplan(&["status", "--current", &refusing.source()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("HTTP 500") && !stderr.contains('\u{1b}') && stderr.len() < 1000, "{stderr}");
}

/// A file with thousands of problems reports each in time proportional to its snippet: the
/// human renderer used to scan the file from its start for every report, so 10,000 reports on
/// a 60 KB file took a minute.
#[test]
fn thousands_of_problems_in_one_file_are_reported_in_linear_time() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("workloads.txt");
    let mut table = String::from("NAMESPACE   NAME   WORKLOAD   NODE   NETWORKS   INTERFACE   PROFILES   NATS\n");
    for row in 0..20_000 {
        table.push_str(&format!("default   w{row}   pod-{row}   n1   10.0.{row}.300/32   cali0   kns.default\n"));
    }
    write(&path, &table);
    let started = Instant::now();
    let output = crate::cli::calplan_within(&["status", "--current", path.to_str().unwrap()], Duration::from_secs(120));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{}", &stderr[..stderr.len().min(2000)]);
    assert_eq!(stderr.matches("error[E0701]").count(), 20_000, "{}", &stderr[..stderr.len().min(2000)]);
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
}

/// A string in the current state that would escape its place in an artifact (a Secret name
/// holding a line break and BIRD statements) is refused where it stands, as Calico's API server
/// refuses it; and were such a state planned anyway, the planner refuses the plan rather than
/// guessing the files of the stage it cannot compile (it once planned them all deleted).
#[test]
fn hostile_current_state_strings_are_refused_not_planned() {
    let directory = tempfile::tempdir().unwrap();
    let applied = directory.path().join("applied");
    let intent = "testdata/mesh-to-rr/intent.yaml";
    let output = calplan(&["compile", intent, "-o", applied.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let live = directory.path().join("live.yaml");
    let cluster = std::fs::read_to_string(golden::root().join("testdata/mesh-to-rr/current/cluster.yaml")).unwrap();
    let hostile = "bgp\\nprotocol static evil { route 0.0.0.0/0 blackhole; }";
    write(
        &live,
        &format!(
            "{cluster}---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: legacy}}\n\
             spec:\n  peerIP: 21.49.22.3\n  asNumber: 65001\n  password:\n    secretKeyRef: {{name: \"{hostile}\", key: pw}}\n"
        ),
    );
    let output = calplan(&["plan", intent, "--current", live.to_str().unwrap(), "--current", applied.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty(), "no plan is printed: {}", text(&output.stdout));
    assert!(stderr.contains("error[E0702]: `secretKeyRef.name` is not a DNS-1123 subdomain"), "{stderr}");
    assert!(stderr.contains("live.yaml:"), "{stderr}");

    // The planner's own guard, below the reader's: the hostile value put into a state the
    // reader accepted, and planned.
    write(
        &live,
        &format!(
            "{cluster}---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: legacy}}\n\
         spec:\n  peerIP: 21.49.22.3\n  asNumber: 65001\n  password:\n    secretKeyRef: {{name: bgp, key: pw}}\n"
        ),
    );
    let mut loaded = calplan::current::load(&[live.display().to_string(), applied.display().to_string()]).unwrap();
    let resources = loaded.state.resources.as_mut().expect("the export reads");
    let Some(calplan_calico::resources::Resource::BgpPeer(mut peer)) =
        resources.get(calplan_calico::resources::ResourceKind::BgpPeer, "legacy").cloned()
    else {
        panic!("the peer reads")
    };
    peer.spec.password.as_mut().unwrap().secret_key_ref.name = hostile.replace("\\n", "\n");
    resources.insert(calplan_calico::resources::Resource::BgpPeer(peer));
    let text = std::fs::read_to_string(golden::root().join(intent)).unwrap();
    let checked = calplan::pipeline::check("intent.yaml", text, loaded.state.observed_ipam().as_ref());
    let fingerprint = calplan_plan::plan::Fingerprint { name: "intent.yaml".into(), sha256: String::new() };
    let error = calplan::pipeline::plan(&checked, fingerprint, &loaded).expect_err("the stage's files do not compile");
    assert!(error.to_string().contains("refusing to write"), "{error}");
}
