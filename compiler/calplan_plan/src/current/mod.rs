//! The cluster as it stands, combined from every `--current` source.

pub mod calico_yaml;

use calplan_calico::resources::ResourceSet;
use calplan_diagnostics::Diagnostics;
use calplan_model::ipam::ObservedAffinity;
use std::collections::BTreeMap;

/// A workload (pod endpoint) and the addresses it holds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Workload {
    pub namespace: Option<String>,
    pub name: String,
    pub node: String,
    pub networks: Vec<ipnet::IpNet>,
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
        }
    }
}

/// The combined current state. Each part is `None` when no source provided it, so the plan can
/// say "unknown" rather than assume empty.
#[derive(Clone, Debug, Default)]
pub struct CurrentState {
    pub resources: Option<ResourceSet>,
    pub affinities: Option<Vec<ObservedAffinity>>,
    /// Addresses in use per block, from `ipam show --show-blocks`.
    pub block_usage: Option<BTreeMap<ipnet::IpNet, u64>>,
    pub workloads: Option<Vec<Workload>>,
    /// Route lines per node, normalised like `nodes/<node>/routes`.
    pub node_routes: BTreeMap<String, Vec<String>>,
    /// Artifacts of an earlier compile or apply, by path.
    pub applied: Option<BTreeMap<String, String>>,
    pub sources: Vec<crate::plan::SourceFingerprint>,
}

impl CurrentState {
    /// Adds Calico resources; later sources replace resources of the same kind and name.
    pub fn add_resources(&mut self, resources: ResourceSet) {
        let combined = self.resources.get_or_insert_with(ResourceSet::default);
        for resource in resources.resources.into_values() {
            combined.insert(resource);
        }
    }

    pub fn add_affinities(&mut self, affinities: Vec<ObservedAffinity>) {
        let combined = self.affinities.get_or_insert_with(Vec::new);
        combined.extend(affinities);
        combined.sort();
        combined.dedup_by(|a, b| a.block == b.block);
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

/// Digests of what calplan compares of each resource, keyed `Kind/name`, so that a stale
/// plan can say which resource changed.
pub fn resource_digests(resources: &ResourceSet) -> BTreeMap<String, String> {
    use sha2::Digest;
    resources
        .iter()
        .map(|resource| {
            let keys = crate::diff::managed_label_keys(None);
            let keys = match resource {
                calplan_calico::resources::Resource::Node(node) => {
                    let mut all = keys;
                    all.extend(node.metadata.labels.keys().cloned());
                    all
                }
                _ => keys,
            };
            let view = crate::diff::view(resource, &keys).to_string();
            let digest = sha2::Sha256::digest(view.as_bytes());
            (format!("{}/{}", resource.kind().as_str(), resource.name()), calplan_targets::Artifact::hex_digest(&digest))
        })
        .collect()
}

/// The sha256 of a text, in hex.
pub fn text_digest(text: &str) -> String {
    use sha2::Digest;
    calplan_targets::Artifact::hex_digest(&sha2::Sha256::digest(text.as_bytes()))
}

/// Tells what a current-state file holds from its content.
pub fn sniff(text: &str) -> Option<SourceKind> {
    let trimmed = text.trim_start();
    let head: String = text.lines().filter(|line| !line.trim_start().starts_with('#')).take(12).collect::<Vec<_>>().join("\n");
    if text.contains("projectcalico.org/v3") {
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
    let route_like = |line: &str| {
        let first = line.split_whitespace().next().unwrap_or("");
        matches!(first, "default" | "blackhole" | "unreachable" | "prohibit" | "local" | "broadcast")
            || first.parse::<ipnet::IpNet>().is_ok()
            || first.parse::<std::net::IpAddr>().is_ok()
    };
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')).collect();
    if !lines.is_empty() && lines.iter().all(|line| route_like(line)) {
        return Some(SourceKind::NodeRoutes);
    }
    None
}
