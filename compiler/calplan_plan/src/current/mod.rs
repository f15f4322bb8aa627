//! The cluster as it stands, combined from every `--current` source.
//!
//! One reader per source kind, each pure (text or key-value pairs in, a [`Read`] out, its
//! diagnostics located in that source): Calico YAML exports, `ipam show` tables, workload
//! endpoint tables, `ip route` dumps, an earlier compile or apply directory, Calico's etcdv3
//! layout, and Calico's Kubernetes datastore as `kubectl get -o yaml` exports it. The CLI reads files and etcd, tells each file's kind with [`sniff`], and
//! combines what the readers return into one [`CurrentState`].

pub mod applied;
pub mod calico_yaml;
pub mod compiled;
pub mod endpoint_status;
pub mod etcd_layout;
pub mod ip_routes;
pub mod ipam_blocks;
pub mod kubernetes;
pub mod node_inventory;
mod table;
pub mod validate;
pub mod workloads;

use calplan_calico::resources::ResourceSet;
use calplan_diagnostics::Diagnostics;
use calplan_model::ipam::{ObservedAffinity, ObservedIpam};
use std::collections::BTreeMap;

/// A workload (pod endpoint) and the addresses it holds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Workload {
    pub namespace: Option<String>,
    pub name: String,
    pub node: String,
    pub networks: Vec<ipnet::IpNet>,
}

/// Addresses gathered per workload, keyed by namespace, pod name and node, from sources that
/// may name one workload more than once.
type Holders = BTreeMap<(Option<String>, String, String), Vec<ipnet::IpNet>>;

/// One [`Workload`] per holder, its addresses sorted and without repeats.
fn workloads_of(holders: Holders) -> Vec<Workload> {
    holders
        .into_iter()
        .map(|((namespace, name, node), mut networks)| {
            networks.sort();
            networks.dedup();
            Workload { namespace, name, node, networks }
        })
        .collect()
}

/// What kind of source a file or address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SourceKind {
    CalicoResources,
    IpamBlocks,
    Workloads,
    NodeRoutes,
    AppliedState,
    Etcd,
    Kubernetes,
    /// Felix's endpoint status files of a node.
    EndpointStatus,
    /// An intent, as if it had been applied (`--current base.yaml`).
    Intent,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::CalicoResources => "Calico resources",
            SourceKind::IpamBlocks => "IPAM blocks",
            SourceKind::Workloads => "workload endpoints",
            SourceKind::NodeRoutes => "node routes",
            SourceKind::AppliedState => "applied state",
            SourceKind::Etcd => "etcd datastore",
            SourceKind::Kubernetes => "Kubernetes datastore",
            SourceKind::EndpointStatus => "endpoint status",
            SourceKind::Intent => "intent",
        }
    }
}

/// The combined current state. Each part is `None` when no source provided it, so the plan can
/// say "unknown" rather than assume empty.
#[derive(Clone, Debug, Default)]
pub struct CurrentState {
    pub resources: Option<ResourceSet>,
    pub affinities: Option<Vec<ObservedAffinity>>,
    /// Addresses in use per block, from `ipam show --show-blocks` or etcd.
    pub block_usage: Option<BTreeMap<ipnet::IpNet, u64>>,
    /// Each pool's totals as `ipam show` printed them (with or without `--show-blocks`).
    pub pool_usage: Option<BTreeMap<ipnet::IpNet, ipam_blocks::Usage>>,
    pub workloads: Option<Vec<Workload>>,
    /// Route lines per node, normalised like `nodes/<node>/routes`.
    pub node_routes: BTreeMap<String, Vec<String>>,
    /// Artifacts of an earlier compile or apply, by path.
    pub applied: Option<BTreeMap<String, crate::file_text::FileText>>,
    /// The Calico version the cluster reports (`ClusterInformation` `default`,
    /// `spec.calicoVersion`, which calico-node writes), such as `v3.30.7`.
    pub calico_version: Option<String>,
    /// The Tigera operator's `Installation`, from `kubectl get installation default -o yaml`
    /// or an earlier compile or apply; a later source replaces an earlier one.
    pub installation: Option<serde_json::Value>,
    pub sources: Vec<crate::plan::SourceFingerprint>,
    /// Which datastore the state was read from, when a datastore was read.
    pub datastore: Option<calplan_model::Datastore>,
    /// Secrets (names and keys only) and Services with their endpoints, which confd reads
    /// from Kubernetes besides the datastore.
    pub kubernetes: calplan_model::kubernetes::ObservedKubernetes,
    /// The workloads the nodes' endpoint status files select for local BGP peering; `None`
    /// when no such file was read.
    pub local_workloads: Option<Vec<calplan_calico::peering::LocalWorkload>>,
}

impl CurrentState {
    /// Gives an analysis what calico-node's confd learns outside Calico's datastore, as far as
    /// this state has it (wherever `bird-calico.cfg` predicts confd's render: `compile`,
    /// `verify`, each stage of `plan`): which Secrets exist, Services and their endpoints, and
    /// the local workloads of the nodes' endpoint status files, which join the peerings.
    pub fn add_outside_datastore(&self, analysis: &mut calplan_model::Analysis) {
        analysis.kubernetes = self.kubernetes.clone();
        if let Some(workloads) = self.local_workloads.as_deref() {
            analysis.peerings = calplan_calico::peering::Peerings::compute_with_local_workloads(
                &analysis.resources,
                analysis.model.calico_version.value,
                workloads,
            );
        }
    }

    /// Adds Calico resources; later sources replace resources of the same kind and name.
    pub fn add_resources(&mut self, resources: ResourceSet) {
        let combined = self.resources.get_or_insert_with(ResourceSet::default);
        combined.resources.extend(resources.resources);
    }

    /// The live IPAM, when a source gave the cluster's affinities (etcd, Kubernetes'
    /// `BlockAffinity` objects): those affinities, and the pools they are the whole truth for.
    pub fn observed_ipam(&self) -> Option<ObservedIpam> {
        let affinities = self.affinities.clone()?;
        let pools = self.resources.iter().flat_map(ResourceSet::pools).filter_map(|pool| pool.spec.cidr.parse().ok()).collect();
        Some(ObservedIpam { affinities, pools })
    }

    pub fn add_affinities(&mut self, affinities: Vec<ObservedAffinity>) {
        let combined = self.affinities.get_or_insert_with(Vec::new);
        combined.extend(affinities);
        combined.sort();
        combined.dedup_by(|a, b| a.block == b.block);
    }

    /// Adds block usage; a later source's count for a block replaces an earlier one's.
    pub fn add_block_usage(&mut self, usage: BTreeMap<ipnet::IpNet, u64>) {
        self.block_usage.get_or_insert_with(BTreeMap::new).extend(usage);
    }

    /// Adds what `ipam show` said: pool totals always, block usage when the table has it.
    pub fn add_ipam_usage(&mut self, usage: ipam_blocks::IpamUsage) {
        if let Some(blocks) = usage.block_usage() {
            self.add_block_usage(blocks);
        }
        self.pool_usage.get_or_insert_with(BTreeMap::new).extend(usage.pools);
    }

    /// Adds a node's routes; `Err` with the node's name when a source already gave them.
    pub fn add_node_routes(&mut self, node: String, routes: Vec<String>) -> Result<(), String> {
        if self.node_routes.contains_key(&node) {
            return Err(node);
        }
        self.node_routes.insert(node, routes);
        Ok(())
    }

    /// Adds an earlier compile's or apply's artifacts and the Calico resources among them.
    pub fn add_applied(&mut self, applied: applied::Applied) {
        self.add_resources(applied.resources);
        if let Some(installation) = applied.installation {
            self.installation = Some(installation);
        }
        self.applied.get_or_insert_with(BTreeMap::new).extend(applied.artifacts);
    }

    /// The Calico release the cluster reports, if calplan renders for it.
    pub fn release(&self) -> Option<calplan_calico::Release> {
        self.calico_version.as_deref().and_then(calplan_calico::Release::parse)
    }

    /// Adds everything read from an etcd datastore.
    pub fn add_etcd(&mut self, state: etcd_layout::EtcdState) {
        self.datastore = Some(calplan_model::Datastore::Etcdv3);
        // An empty datastore still says something: no affinities, no blocks, no workloads.
        self.add_datastore(state, true);
    }

    /// Adds a Kubernetes datastore export; its IPAM counts only when it holds IPAM objects.
    pub fn add_kubernetes(&mut self, export: kubernetes::KubernetesState) {
        self.kubernetes.extend(export.kubernetes);
        // Secrets and Services alone say nothing of where Calico keeps its state.
        if export.state == etcd_layout::EtcdState::default() && !export.has_ipam {
            return;
        }
        self.datastore = Some(calplan_model::Datastore::Kubernetes);
        self.add_datastore(export.state, export.has_ipam);
    }

    fn add_datastore(&mut self, state: etcd_layout::EtcdState, ipam_known: bool) {
        self.add_resources(state.resources);
        if state.calico_version.is_some() {
            self.calico_version = state.calico_version;
        }
        if ipam_known {
            self.affinities.get_or_insert_with(Vec::new);
            self.add_affinities(state.affinities);
            self.add_block_usage(state.block_usage);
        }
        if ipam_known || !state.workloads.is_empty() {
            self.add_workloads(state.workloads);
        }
    }

    pub fn add_workloads(&mut self, workloads: Vec<Workload>) {
        let combined = self.workloads.get_or_insert_with(Vec::new);
        combined.extend(workloads);
        combined.sort();
        combined.dedup();
    }
}

/// What reading one source produced: the diagnostics go with the file they came from.
pub struct Read<T> {
    pub value: Option<T>,
    pub diagnostics: Diagnostics,
}

impl<T> Read<T> {
    /// The same diagnostics, with the value, if any, mapped.
    pub fn map_value<U>(self, map: impl FnOnce(T) -> U) -> Read<U> {
        Read { value: self.value.map(map), diagnostics: self.diagnostics }
    }
}

/// Digests of what calplan compares of each resource, keyed `Kind/name`, so that a stale
/// plan can say which resource changed.
pub fn resource_digests(resources: &ResourceSet) -> BTreeMap<String, String> {
    resources.iter().map(|resource| (format!("{}/{}", resource.kind().as_str(), resource.name()), crate::diff::digest(resource))).collect()
}

/// The digest of what calplan manages of an Installation (its pool list), keyed as resources
/// are, for the stale-plan check.
pub const INSTALLATION_KEY: &str = "Installation/default";

pub fn installation_digest(installation: &serde_json::Value) -> String {
    text_digest(&calplan_calico::installation::managed_part(installation).to_string())
}

/// The sha256 of a text, in hex.
pub fn text_digest(text: &str) -> String {
    use sha2::Digest;
    calplan_targets::Artifact::hex_digest(&sha2::Sha256::digest(text.as_bytes()))
}

/// Tells what a current-state directory is from the names in it: one holding
/// `manifest.json` was written by `compile -o` or `apply`. Other directories are walked.
pub fn sniff_directory<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<SourceKind> {
    names.into_iter().any(|name| name == applied::MANIFEST).then_some(SourceKind::AppliedState)
}

/// Tells what a current-state file holds from its content.
pub fn sniff(text: &str) -> Option<SourceKind> {
    let trimmed = text.trim_start();
    let head: String = text.lines().filter(|line| !line.trim_start().starts_with('#')).take(12).collect::<Vec<_>>().join("\n");
    if head.contains("calplan/v1") && head.contains("ClusterIntent") {
        return Some(SourceKind::Intent);
    }
    if endpoint_status::sniff(text) {
        return Some(SourceKind::EndpointStatus);
    }
    // Before v3 resources: an export may hold both, and this reader takes both.
    if kubernetes::sniff(text) {
        return Some(SourceKind::Kubernetes);
    }
    if text.contains("projectcalico.org/v3") || text.contains(calplan_calico::installation::API_VERSION) {
        return Some(SourceKind::CalicoResources);
    }
    if head.contains("GROUPING") && head.contains("CIDR") {
        return Some(SourceKind::IpamBlocks);
    }
    if head.contains("WORKLOAD") && head.contains("NETWORKS") {
        return Some(SourceKind::Workloads);
    }
    if trimmed.starts_with('[') && (text.contains("\"dst\"") || trimmed.trim_end() == "[]") {
        return Some(SourceKind::NodeRoutes);
    }
    // Route types `ip route` prints first, and the continuation lines of an ECMP route.
    const ROUTE_WORDS: &[&str] = &[
        "default",
        "blackhole",
        "unreachable",
        "prohibit",
        "local",
        "broadcast",
        "throw",
        "unicast",
        "multicast",
        "anycast",
        "nat",
        "nexthop",
    ];
    let route_like = |line: &str| {
        let first = line.split_whitespace().next().unwrap_or("");
        ROUTE_WORDS.contains(&first) || first.parse::<ipnet::IpNet>().is_ok() || first.parse::<std::net::IpAddr>().is_ok()
    };
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')).collect();
    if !lines.is_empty() && lines.iter().all(|line| route_like(line)) {
        return Some(SourceKind::NodeRoutes);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use calplan_diagnostics::FileId;

    const IPAM: &str = include_str!("../../../../testdata/pool-migration/current/ipam-blocks.txt");
    const WORKLOADS: &str = include_str!("../../../../testdata/pool-migration/current/workloads.txt");
    const ROUTES: &str = "default via 21.49.22.1 dev eth0 proto static metric 100\nblackhole 192.168.36.64/26 proto bird\n\
                          192.168.0.0/16 proto bird\n\tnexthop via 21.49.22.7 dev eth0 weight 1\n\tnexthop via 21.49.22.8 dev eth0 weight 1\n";
    const KUBERNETES: &str = include_str!("../../../../testdata/seed-kdd/current/calico.yaml");
    const ROUTES_JSON: &str = r#"[{"type":"blackhole","dst":"192.168.1.128/26","protocol":"bird","flags":[]}]"#;

    #[test]
    fn sniff_tells_every_text_format() {
        assert_eq!(sniff(IPAM), Some(SourceKind::IpamBlocks));
        assert_eq!(sniff(WORKLOADS), Some(SourceKind::Workloads));
        assert_eq!(sniff(ROUTES), Some(SourceKind::NodeRoutes));
        assert_eq!(sniff(ROUTES_JSON), Some(SourceKind::NodeRoutes));
        assert_eq!(sniff(KUBERNETES), Some(SourceKind::Kubernetes));
        assert_eq!(sniff("{\"generator\": \"calplan\"}"), None);
        assert_eq!(sniff("apiVersion: calplan/v1\nkind: ClusterIntent\nmetadata: {name: x}\n"), Some(SourceKind::Intent));
        assert_eq!(sniff_directory(["calico", "manifest.json", "nodes"]), Some(SourceKind::AppliedState));
        assert_eq!(sniff_directory(["ippools.yaml"]), None);
    }

    /// No input makes a reader panic: every prefix of every fixture (a file cut off anywhere)
    /// reads to a value or to diagnostics.
    #[test]
    fn truncated_inputs_never_panic() {
        let manifest = r#"{"generator": "calplan", "artifacts": [{"path": "nodes/n1/routes", "sha256": "00"}]}"#;
        let kubernetes = &KUBERNETES[..KUBERNETES.find("- apiVersion: crd.projectcalico.org/v1\n  kind: BGPFilter").unwrap()];
        for text in [IPAM, WORKLOADS, ROUTES, ROUTES_JSON, kubernetes, manifest] {
            for end in (0..=text.len()).filter(|end| text.is_char_boundary(*end)) {
                let prefix = &text[..end];
                let _ = ipam_blocks::read(FileId(0), prefix);
                let _ = workloads::read(FileId(0), prefix);
                let _ = ip_routes::read(FileId(0), prefix);
                let _ = kubernetes::read(FileId(0), prefix);
                let _ = applied::read_manifest(FileId(0), prefix);
                let file = applied::ArtifactFile { path: "nodes/n1/routes", file: FileId(1), text: Some(prefix) };
                let _ = applied::read(FileId(0), manifest, &[file], &[]);
                let pair = etcd_layout::KeyValue {
                    key: "/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-30".into(),
                    value: prefix.as_bytes().to_vec(),
                    create_revision: 1,
                    mod_revision: 1,
                };
                let _ = etcd_layout::read(FileId(0), &etcd_layout::Snapshot::new(1, vec![pair]));
            }
        }
    }
}
