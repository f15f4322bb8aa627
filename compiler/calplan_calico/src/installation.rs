//! The Tigera operator's `Installation` (`operator.tigera.io/v1`, always named `default`), as
//! far as IP pools go: the operator owns the pools `spec.calicoNetwork.ipPools` lists and
//! reverts edits made to them elsewhere (tigera/docs#2680, calico#9426), so such pools are
//! changed there. An empty list opts the cluster out of the operator's pool management.
//!
//! An entry's fields are the operator's (`api/v1/installation_types.go`): `name`, `cidr`,
//! `blockSize`, `encapsulation` (IPIP, IPIPCrossSubnet, VXLAN, VXLANCrossSubnet, None),
//! `natOutgoing` (Enabled, Disabled), `nodeSelector`, `disableBGPExport`,
//! `disableNewAllocations`, `allowedUses`, `assignmentMode`. Their defaults differ from the
//! IPPool's (encapsulation IPIP, NAT Enabled), so calplan always writes both explicitly.
//! Everything else in the object is someone else's and passes through untouched.

use crate::resources::{EncapsulationMode, IpPool, IpPoolSpec};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

pub const API_VERSION: &str = "operator.tigera.io/v1";
pub const KIND: &str = "Installation";
pub const NAME: &str = "default";

/// Whether a YAML or JSON object is the operator's Installation.
pub fn is_installation(value: &Value) -> bool {
    value["kind"] == KIND && value["apiVersion"] == API_VERSION
}

/// The pool entries, in order.
pub fn pool_entries(installation: &Value) -> Vec<&Value> {
    installation["spec"]["calicoNetwork"]["ipPools"].as_array().map(|entries| entries.iter().collect()).unwrap_or_default()
}

/// The name the operator gives the IPPool of an entry: its `name`, else the default pool's
/// name for its family.
pub fn entry_pool_name(entry: &Value) -> String {
    match entry["name"].as_str().filter(|name| !name.is_empty()) {
        Some(name) => name.to_string(),
        None if entry["cidr"].as_str().is_some_and(|cidr| cidr.contains(':')) => "default-ipv6-ippool".into(),
        None => "default-ipv4-ippool".into(),
    }
}

/// The pools the Installation owns, by IPPool name.
pub fn owned_pools(installation: &Value) -> BTreeSet<String> {
    pool_entries(installation).into_iter().map(entry_pool_name).collect()
}

/// The operator's `encapsulation` for an IPPool's modes.
pub fn encapsulation(spec: &IpPoolSpec) -> &'static str {
    match (spec.ipip_mode.unwrap_or_default(), spec.vxlan_mode.unwrap_or_default()) {
        (EncapsulationMode::Always, _) => "IPIP",
        (EncapsulationMode::CrossSubnet, _) => "IPIPCrossSubnet",
        (_, EncapsulationMode::Always) => "VXLAN",
        (_, EncapsulationMode::CrossSubnet) => "VXLANCrossSubnet",
        _ => "None",
    }
}

/// An entry for `pool`, starting from the entry the Installation has for it (its other
/// fields kept).
pub fn entry(pool: &IpPool, existing: Option<&Value>) -> Value {
    let mut entry = existing.and_then(Value::as_object).cloned().unwrap_or_else(Map::new);
    let spec = &pool.spec;
    // An entry without a name names the default pool of its family; it stays without one.
    if existing.is_none_or(|existing| existing.get("name").is_some()) {
        entry.insert("name".into(), Value::from(pool.metadata.name.clone()));
    }
    entry.insert("cidr".into(), Value::from(spec.cidr.clone()));
    if let Some(size) = spec.block_size {
        entry.insert("blockSize".into(), Value::from(size));
    }
    entry.insert("encapsulation".into(), Value::from(encapsulation(spec)));
    entry.insert("natOutgoing".into(), Value::from(if spec.nat_outgoing.unwrap_or(false) { "Enabled" } else { "Disabled" }));
    entry.insert("nodeSelector".into(), Value::from(spec.effective_node_selector()));
    let mut optional = |field: &str, value: Option<Value>| match value {
        Some(value) => {
            entry.insert(field.into(), value);
        }
        None => {
            entry.remove(field);
        }
    };
    optional("disableBGPExport", spec.disable_bgp_export.map(Value::from));
    optional("disableNewAllocations", spec.disabled.filter(|disabled| *disabled).map(Value::from));
    optional("allowedUses", spec.allowed_uses.clone().map(Value::from));
    optional("assignmentMode", spec.assignment_mode.clone().map(Value::from));
    Value::Object(entry)
}

/// The Installation with its pool list replaced: `pools` are the owned pools as they should
/// be, in the Installation's order, new ones last.
pub fn with_pools(installation: &Value, pools: &[&IpPool]) -> Value {
    let existing = pool_entries(installation);
    let mut entries: Vec<Value> = Vec::new();
    for old in &existing {
        if let Some(pool) = pools.iter().find(|pool| pool.metadata.name == entry_pool_name(old)) {
            entries.push(entry(pool, Some(old)));
        }
    }
    for pool in pools {
        if !existing.iter().any(|old| entry_pool_name(old) == pool.metadata.name) {
            entries.push(entry(pool, None));
        }
    }
    let mut next = installation.clone();
    if !next["spec"].is_object() {
        next["spec"] = json!({});
    }
    if !next["spec"]["calicoNetwork"].is_object() {
        next["spec"]["calicoNetwork"] = json!({});
    }
    next["spec"]["calicoNetwork"]["ipPools"] = Value::Array(entries);
    next
}

/// The part of an Installation calplan manages, for comparisons and the stale-plan check.
pub fn managed_part(installation: &Value) -> Value {
    installation["spec"]["calicoNetwork"]["ipPools"].clone()
}

/// An Installation holding only the pools, as `compile` writes it (`calico/installation.yaml`).
pub fn skeleton(pools: &[&IpPool]) -> Value {
    let base = json!({ "apiVersion": API_VERSION, "kind": KIND, "metadata": { "name": NAME }, "spec": { "calicoNetwork": {} } });
    with_pools(&base, pools)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::ObjectMeta;

    fn pool(name: &str, cidr: &str, ipip: EncapsulationMode, nat: bool) -> IpPool {
        IpPool {
            api_version: crate::resources::API_VERSION.into(),
            kind: "IPPool".into(),
            metadata: ObjectMeta::named(name),
            spec: IpPoolSpec { cidr: cidr.into(), ipip_mode: Some(ipip), nat_outgoing: Some(nat), ..IpPoolSpec::default() },
        }
    }

    #[test]
    fn pools_map_to_the_operators_fields_and_keep_what_calplan_does_not_manage() {
        let installation = json!({
            "apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": "default"},
            "spec": {"registry": "quay.io/", "calicoNetwork": {"mtu": 1440, "ipPools": [
                {"cidr": "192.168.0.0/16", "encapsulation": "VXLAN", "natOutgoing": "Enabled", "blockSize": 26, "futureField": 1}
            ]}}
        });
        assert!(is_installation(&installation));
        assert_eq!(owned_pools(&installation), BTreeSet::from(["default-ipv4-ippool".to_string()]));
        let old = pool("default-ipv4-ippool", "192.168.0.0/16", EncapsulationMode::CrossSubnet, false);
        let new = pool("extra", "10.10.0.0/16", EncapsulationMode::Never, true);
        let next = with_pools(&installation, &[&old, &new]);
        let entries = pool_entries(&next);
        assert_eq!(entries[0]["encapsulation"], "IPIPCrossSubnet");
        assert_eq!(entries[0]["natOutgoing"], "Disabled");
        assert_eq!(entries[0]["futureField"], 1, "fields calplan does not know pass through");
        assert_eq!(entries[1]["name"], "extra");
        assert_eq!(entries[1]["encapsulation"], "None");
        assert_eq!(next["spec"]["registry"], "quay.io/");
        assert_eq!(next["spec"]["calicoNetwork"]["mtu"], 1440);
        let gone = with_pools(&installation, &[&new]);
        assert_eq!(pool_entries(&gone).len(), 1, "a pool that leaves is no longer listed");
    }
}
