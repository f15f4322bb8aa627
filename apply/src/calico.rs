//! Writing Calico resources: to etcd directly, in Calico's etcdv3 layout with calicoctl's
//! compare-and-swap semantics, by running `calicoctl` or `kubectl`, or (for the lab, which
//! has no datastore) into files in a state directory.
//!
//! Every write is idempotent against the plan: a resource already as the plan wants it is left
//! alone; one as the plan found it is changed; one that is neither was changed by someone else,
//! and the apply stops rather than overwrite it.

use crate::etcd::{Client, EtcdError};
use crate::kubectl;
use calplan_calico::resources::{Resource, ResourceKind, ResourceSet};
use calplan_plan::diff;
use calplan_plan::plan::{Action, Change, Content};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Calico resources are written.
pub enum Backend {
    Etcd(Client),
    /// `calicoctl apply/delete -f`; the program's path.
    Calicoctl(String),
    /// `kubectl apply --server-side --field-manager=calplan` of `projectcalico.org/v3`, after a
    /// server-side dry run of the stage (`crate::kubectl`); the program's path.
    Kubectl(String),
    /// Files in a state directory: `STATE/applied/calico/*.yaml`, laid out as `compile -o`
    /// writes them and listed in the manifest, so `--current STATE/applied` plans against
    /// them. The lab's datastore; the same compare-and-swap rules as etcd, without a server.
    Record(PathBuf),
}

pub fn key(kind: ResourceKind, name: &str) -> String {
    format!("/calico/resources/v3/projectcalico.org/{}/{name}", kind.plural())
}

fn resource(content: &Option<Content>, kind: ResourceKind) -> Result<Option<Resource>, String> {
    match content {
        Some(Content::Resource { value }) => Resource::from_json(kind, value.clone())
            .map(Some)
            .map_err(|error| format!("the plan holds a {} calplan cannot read: {error}", kind.as_str())),
        Some(Content::File { .. }) => Err("the plan holds a file where a resource belongs".into()),
        None => Ok(None),
    }
}

/// A v4 UUID from the kernel's random source, as calicoctl gives new resources.
fn new_uid() -> String {
    let mut bytes = [0u8; 16];
    if let Ok(mut random) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut random, &mut bytes);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// RFC 3339 UTC, as Kubernetes writes `creationTimestamp`.
fn now_rfc3339() -> String {
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = seconds / 86_400;
    let (hour, minute, second) = (seconds % 86_400 / 3600, seconds % 3600 / 60, seconds % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// What an attempt found.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Written,
    AlreadyDone,
}

impl Backend {
    pub fn describe(&self) -> String {
        match self {
            Backend::Etcd(client) => format!("etcd at {}", client.endpoint()),
            Backend::Calicoctl(program) => format!("`{program}`"),
            Backend::Kubectl(program) => format!("`{program}`"),
            Backend::Record(root) => format!("the record in `{}`", root.display()),
        }
    }

    /// Carries out one change of the plan (forwards) or undoes it (`reverse`).
    pub fn apply(&self, change: &Change, reverse: bool) -> Result<Applied, String> {
        if let Backend::Kubectl(program) = self {
            return match kubectl_prepare(program, change, reverse)? {
                kubectl::Prepared::Done => Ok(Applied::AlreadyDone),
                kubectl::Prepared::Apply(object) => kubectl::send(program, &[object], &[], false).map(|()| Applied::Written),
                kubectl::Prepared::Delete(object) => kubectl::send(program, &[], &[object], false).map(|()| Applied::Written),
            };
        }
        if change.kind == "Installation" {
            return Err(format!(
                "the Tigera operator's Installation is a Kubernetes object, which {} cannot write: apply this plan with `--calico kubectl`",
                self.describe()
            ));
        }
        let kind = ResourceKind::from_kind(&change.kind).ok_or_else(|| format!("`{}` is not a Calico resource kind", change.kind))?;
        let before = resource(&change.before, kind)?;
        let after = resource(&change.after, kind)?;
        let (from, to) = if reverse { (after, before) } else { (before, after) };
        match self {
            Backend::Etcd(client) => etcd_apply(client, kind, &change.name, from.as_ref(), to.as_ref(), change.action),
            Backend::Calicoctl(program) => tool_apply(program, to.as_ref(), from.as_ref()),
            Backend::Kubectl(_) => unreachable!("handled above"),
            Backend::Record(root) => record_apply(root, kind, &change.name, from.as_ref(), to.as_ref()),
        }
    }

    /// Before a stage writes anything: with kubectl, the API server checks the whole stage in a
    /// server-side dry run (and every object is compared with the plan), so that one refusal
    /// leaves the stage unwritten. The other backends have no dry run; their writes are
    /// compare-and-swap one by one.
    pub fn preflight(&self, changes: &[&Change]) -> Result<usize, String> {
        let Backend::Kubectl(program) = self else { return Ok(0) };
        let (mut applies, mut deletes) = (Vec::new(), Vec::new());
        for change in changes {
            match kubectl_prepare(program, change, false)? {
                kubectl::Prepared::Done => {}
                kubectl::Prepared::Apply(object) => applies.push(object),
                kubectl::Prepared::Delete(object) => deletes.push(object),
            }
        }
        kubectl::send(program, &applies, &deletes, true)?;
        Ok(applies.len() + deletes.len())
    }

    /// Digests of the live resources, by `Kind/name`, for the stale-plan check.
    pub fn live_digests(&self) -> Result<BTreeMap<String, String>, String> {
        let resources = self.live_resources()?;
        Ok(calplan_plan::current::resource_digests(&resources))
    }

    pub fn live_resources(&self) -> Result<ResourceSet, String> {
        match self {
            Backend::Record(root) => record_resources(root),
            Backend::Etcd(client) => {
                let mut set = ResourceSet::default();
                for kind in ResourceKind::ALL {
                    let prefix = format!("/calico/resources/v3/projectcalico.org/{}/", kind.plural());
                    let range = client.range_prefix(&prefix, None).map_err(|error| error.to_string())?;
                    for pair in range.pairs {
                        let mut value: serde_json::Value = serde_json::from_slice(&pair.value)
                            .map_err(|error| format!("`{}` on {} is not JSON: {error}", pair.key, self.describe()))?;
                        value["metadata"]["resourceVersion"] = serde_json::Value::from(pair.mod_revision.to_string());
                        let resource = Resource::from_json(kind, value)
                            .map_err(|error| format!("`{}` on {} is not a Calico {}: {error}", pair.key, self.describe(), kind.as_str()))?;
                        set.insert(resource);
                    }
                }
                Ok(set)
            }
            Backend::Kubectl(program) => kubectl::live_resources(program),
            Backend::Calicoctl(program) => {
                let output = Command::new(program)
                    .args(["get", "ippools,bgppeers,bgpconfigurations,bgpfilters,nodes", "-o", "yaml"])
                    .output()
                    .map_err(|error| format!("cannot run `{program}`: {error}"))?;
                if !output.status.success() {
                    return Err(format!("`{program} get` failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
                }
                let text = String::from_utf8_lossy(&output.stdout).into_owned();
                let read = calplan_plan::current::calico_yaml::read(calplan_diagnostics::FileId(0), &text);
                read.value.ok_or_else(|| format!("`{program} get` printed resources calplan cannot read"))
            }
        }
    }

    /// Addresses in use in blocks inside these CIDRs, for the pool-empty barrier.
    pub fn addresses_in_use(&self, cidrs: &[ipnet::IpNet]) -> Result<u64, String> {
        match self {
            Backend::Etcd(client) => {
                let range = client.range_prefix("/calico/ipam/v2/assignment/", None).map_err(|error| error.to_string())?;
                let mut used = 0;
                for pair in range.pairs {
                    let Ok(block) = serde_json::from_slice::<serde_json::Value>(&pair.value) else { continue };
                    let Some(cidr) = block["cidr"].as_str().and_then(|text| text.parse::<ipnet::IpNet>().ok()) else { continue };
                    if cidrs.iter().any(|pool| pool.contains(&cidr)) {
                        used += block["allocations"].as_array().map_or(0, |allocations| allocations.iter().filter(|a| !a.is_null()).count())
                            as u64;
                    }
                }
                Ok(used)
            }
            Backend::Calicoctl(program) => {
                let output = Command::new(program)
                    .args(["ipam", "show", "--show-blocks"])
                    .output()
                    .map_err(|error| format!("cannot run `{program}`: {error}"))?;
                let text = String::from_utf8_lossy(&output.stdout);
                let mut used = 0;
                for line in text.lines().filter(|line| line.contains("| Block")) {
                    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                    let (Some(cidr), Some(in_use)) = (cells.get(2), cells.get(4)) else { continue };
                    let Ok(cidr) = cidr.parse::<ipnet::IpNet>() else { continue };
                    if cidrs.iter().any(|pool| pool.contains(&cidr)) {
                        used += in_use.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
                    }
                }
                Ok(used)
            }
            Backend::Kubectl(program) => Err(format!(
                "`{program}` cannot tell how many addresses a pool holds; wait on this barrier with `--calico etcd://…` or calicoctl"
            )),
            Backend::Record(root) => {
                // The record's IPAM: one workload address per line in `STATE/workloads`.
                let path = root.join(RECORD_WORKLOADS);
                let text = match std::fs::read_to_string(&path) {
                    Ok(text) => text,
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
                    Err(error) => return Err(format!("cannot read `{}`: {error}", path.display())),
                };
                let addresses = text.lines().filter_map(|line| line.split_whitespace().next()?.parse::<std::net::IpAddr>().ok());
                Ok(addresses.filter(|address| cidrs.iter().any(|pool| pool.contains(address))).count() as u64)
            }
        }
    }
}

/// The record backend's IPAM, beside `applied/`: a workload address per line, then words
/// that say whose it is.
pub const RECORD_WORKLOADS: &str = "workloads";

/// The file `compile -o` keeps each kind in.
fn record_file(kind: ResourceKind) -> String {
    format!("calico/{}.yaml", kind.plural())
}

const RECORD_KINDS: [ResourceKind; 5] = ResourceKind::ALL;

/// The resources recorded in `root/applied/calico/`.
fn record_resources(root: &Path) -> Result<ResourceSet, String> {
    let mut set = ResourceSet::default();
    for kind in RECORD_KINDS {
        let path = root.join("applied").join(record_file(kind));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(format!("cannot read `{}`: {error}", path.display())),
        };
        let read = calplan_plan::current::calico_yaml::read(calplan_diagnostics::FileId(0), &text);
        let resources = read.value.ok_or_else(|| format!("`{}` holds resources calplan cannot read", path.display()))?;
        for resource in resources.resources.into_values() {
            set.insert(std::sync::Arc::unwrap_or_clone(resource));
        }
    }
    Ok(set)
}

/// One change to the record, compared as etcd compares: already as wanted, or as the plan
/// found it, or someone else's change that is left alone.
fn record_apply(root: &Path, kind: ResourceKind, name: &str, from: Option<&Resource>, to: Option<&Resource>) -> Result<Applied, String> {
    let mut set = record_resources(root)?;
    let digest = |resource: Option<&Resource>| resource.map(diff::digest);
    let live = set.get(kind, name).cloned();
    if digest(live.as_ref()) == digest(to) {
        return Ok(Applied::AlreadyDone);
    }
    if digest(live.as_ref()) != digest(from) {
        let what = if live.is_none() { "was deleted" } else { "was changed by someone else" };
        return Err(format!("{} `{name}` {what} since the plan was made; calplan leaves it as it is: plan again", kind.as_str()));
    }
    match to {
        Some(wanted) => {
            set.insert(diff::merged(live.as_ref(), wanted));
        }
        None => {
            set.resources.remove(&(kind, name.to_string()));
        }
    }
    let documents: Vec<String> = set.iter().filter(|resource| resource.kind() == kind).map(Resource::to_yaml).collect();
    let state = crate::state::StateDir::new(root);
    let text = documents.join("---\n");
    state.record_file(&record_file(kind), (!documents.is_empty()).then_some(text.as_str()))?;
    Ok(Applied::Written)
}

fn etcd_apply(
    client: &Client,
    kind: ResourceKind,
    name: &str,
    from: Option<&Resource>,
    to: Option<&Resource>,
    action: Action,
) -> Result<Applied, String> {
    let key = key(kind, name);
    let live = client.get(&key).map_err(|error| error.to_string())?;
    let live_resource = match &live {
        Some(pair) => {
            let mut value: serde_json::Value =
                serde_json::from_slice(&pair.value).map_err(|error| format!("`{key}` is not JSON: {error}"))?;
            value["metadata"]["resourceVersion"] = serde_json::Value::from(pair.mod_revision.to_string());
            Some(Resource::from_json(kind, value).map_err(|error| format!("`{key}` is not a Calico {}: {error}", kind.as_str()))?)
        }
        None => None,
    };
    let digest = |resource: Option<&Resource>| resource.map(diff::digest);
    let (live_digest, from_digest, to_digest) = (digest(live_resource.as_ref()), digest(from), digest(to));
    if live_digest == to_digest {
        return Ok(Applied::AlreadyDone);
    }
    if live_digest != from_digest {
        let what = match (&live_resource, action) {
            (None, _) => "was deleted".to_string(),
            (Some(_), Action::Create | Action::Replace) if from.is_none() => "was created by someone else".to_string(),
            (Some(_), _) => "was changed by someone else".to_string(),
        };
        return Err(format!("{} `{name}` {what} since the plan was made; calplan leaves it as it is: plan again", kind.as_str()));
    }
    let result = match (to, &live) {
        (Some(wanted), live_pair) => {
            let merged = diff::merged(live_resource.as_ref(), wanted);
            let mut value = merged.to_json();
            let metadata = value["metadata"].as_object_mut().expect("metadata");
            // calicoctl never stores resourceVersion; it gives new resources a uid and a time.
            metadata.remove("resourceVersion");
            metadata.entry("uid").or_insert_with(|| serde_json::Value::from(new_uid()));
            metadata.entry("creationTimestamp").or_insert_with(|| serde_json::Value::from(now_rfc3339()));
            let body = serde_json::to_vec(&value).expect("resources serialize");
            match live_pair {
                None => client.create(&key, &body),
                Some(pair) => client.update(&key, &body, pair.mod_revision),
            }
        }
        (None, Some(pair)) => client.delete(&key, pair.mod_revision),
        (None, None) => return Ok(Applied::AlreadyDone),
    };
    match result {
        Ok(_) if kind == ResourceKind::IpPool && to.is_none() => {
            // Calico's client deletes a pool's block affinities with it: so does calplan.
            let cidr = live_resource.as_ref().and_then(|resource| match resource {
                Resource::IpPool(pool) => pool.spec.cidr.parse::<ipnet::IpNet>().ok(),
                _ => None,
            });
            if let Some(cidr) = cidr {
                release_pool_affinities(client, &cidr)?;
            }
            Ok(Applied::Written)
        }
        Ok(_) => Ok(Applied::Written),
        Err(EtcdError::Conflict { .. }) => {
            Err(format!("{} `{name}` changed on etcd while calplan was writing it; nothing was overwritten: plan again", kind.as_str()))
        }
        Err(error) => Err(error.to_string()),
    }
}

/// What Calico's client does when it deletes an IP pool (libcalico-go's `ReleasePoolAffinities`,
/// called by `ipPools.Delete`): every block affinity inside the pool's CIDR goes — an empty
/// block with it, a block still holding addresses kept without its affinity — so that confd
/// stops rendering the pool's blocks. Each block is changed with a compare on its revision.
fn release_pool_affinities(client: &Client, cidr: &ipnet::IpNet) -> Result<(), String> {
    use calplan_plan::current::etcd_layout::{self, BlockValue};
    let text = |error: EtcdError| error.to_string();
    let hosts = client.range_prefix(&format!("{}host/", etcd_layout::IPAM_PREFIX), None).map_err(text)?;
    for pair in hosts.pairs {
        let Some(block) = pair
            .key
            .rsplit('/')
            .next()
            .and_then(|name| name.rsplit_once('-'))
            .and_then(|(address, length)| format!("{address}/{length}").parse::<ipnet::IpNet>().ok())
        else {
            continue;
        };
        if !cidr.contains(&block) {
            continue;
        }
        let block_key = etcd_layout::block_key(&block);
        if let Some(stored) = client.get(&block_key).map_err(text)? {
            let mut value: BlockValue =
                serde_json::from_slice(&stored.value).map_err(|error| format!("`{block_key}` is not an allocation block: {error}"))?;
            let outcome = if value.in_use() == 0 {
                client.delete(&block_key, stored.mod_revision)
            } else {
                value.affinity = None;
                client.update(&block_key, &serde_json::to_vec(&value).expect("blocks serialize"), stored.mod_revision)
            };
            match outcome {
                Ok(_) => {}
                Err(EtcdError::Conflict { .. }) => {
                    return Err(format!("`{block_key}` changed while calplan released the pool's affinities: run the apply again"));
                }
                Err(error) => return Err(error.to_string()),
            }
        }
        match client.delete(&pair.key, pair.mod_revision) {
            Ok(_) | Err(EtcdError::Conflict { current: None, .. }) => {}
            Err(error) => return Err(error.to_string()),
        }
    }
    Ok(())
}

/// kubectl: the change compared with the live object, and what to send.
fn kubectl_prepare(program: &str, change: &Change, reverse: bool) -> Result<kubectl::Prepared, String> {
    let kind = kubectl::KubeKind::from_kind(&change.kind).ok_or_else(|| format!("`{}` is not a kind calplan writes", change.kind))?;
    let value = |content: &Option<Content>| -> Result<Option<serde_json::Value>, String> {
        match content {
            Some(Content::Resource { value }) => Ok(Some(value.clone())),
            Some(Content::File { .. }) => Err("the plan holds a file where a resource belongs".into()),
            None => Ok(None),
        }
    };
    let (before, after) = (value(&change.before)?, value(&change.after)?);
    let (from, to) = if reverse { (after, before) } else { (before, after) };
    kubectl::prepare(program, kind, &change.name, from.as_ref(), to.as_ref())
}

/// `calicoctl`: `apply -f` the resource, or `delete -f` what it replaces.
fn tool_apply(program: &str, to: Option<&Resource>, from: Option<&Resource>) -> Result<Applied, String> {
    let (verb, resource) = match (to, from) {
        (Some(resource), _) => ("apply", resource),
        (None, Some(resource)) => ("delete", resource),
        (None, None) => return Ok(Applied::AlreadyDone),
    };
    let directory = tempfile::tempdir().map_err(|error| format!("cannot make a temporary directory: {error}"))?;
    let path = directory.path().join(format!("{}-{}.yaml", resource.kind().plural(), resource.name()));
    std::fs::write(&path, resource.to_yaml()).map_err(|error| format!("cannot write `{}`: {error}", path.display()))?;
    let output =
        Command::new(program).args([verb, "-f"]).arg(&path).output().map_err(|error| format!("cannot run `{program}`: {error}"))?;
    if !output.status.success() {
        return Err(format!("`{program} {verb} -f {}` failed: {}", path.display(), String::from_utf8_lossy(&output.stderr).trim()));
    }
    Ok(Applied::Written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_uids_have_kubernetes_shapes() {
        let stamp = now_rfc3339();
        assert_eq!(stamp.len(), 20, "{stamp}");
        assert!(stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T');
        let uid = new_uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(&uid[14..15], "4");
    }
}
