//! The datastore of a calico-node lab: an etcd of the lab's own on loopback, holding what a
//! real cluster's etcd holds — the Calico resources (written by apply's etcd backend, as
//! `lab up` and `lab apply` run it) and the IPAM Calico's CNI plugin and calico-node write,
//! in Calico's layout (`calplan_plan::current::etcd_layout`): a confirmed affinity and an
//! allocation block per block a node holds, an allocation and a handle per pod and per VXLAN
//! tunnel address.
//!
//! The lab also does here what `kubectl delete pod` sets in motion: a pod's address is
//! released and the pod's replacement gets one as Calico's IPAM hands it out — from a block
//! affine to the node in an enabled pool that selects it, claiming the pool's first free block
//! when the node has none with room.
//!
//! etcd runs in this machine's network namespace, on loopback ports picked free, so that
//! `calplan plan --current etcd://127.0.0.1:PORT` reaches it; its data lives in the lab's
//! directory, and `down` ends it by its pid file once its command line shows it is the lab's.

use crate::topology::{LabEtcd, Layout, Pod};
use crate::{daemons, parallel};
use calplan_apply::etcd::{Client, Endpoint, EtcdError};
use calplan_calico::Selector;
use calplan_calico::resources::ResourceSet;
use calplan_model::Analysis;
use calplan_model::ipam::AffinityState;
use calplan_plan::current::etcd_layout::{self, BlockValue};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::{IpAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

/// The namespace the lab's pods are in, as Kubernetes would name it.
pub const POD_NAMESPACE: &str = "lab";

/// How long one request to the lab's etcd may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The etcd data directory, log and pid file, in the lab's directory.
pub fn etcd_dir(layout: &Layout) -> PathBuf {
    layout.dir.join("etcd")
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|error| format!("cannot find a free loopback port: {error}"))?;
    listener.local_addr().map(|address| address.port()).map_err(|error| format!("cannot find a free loopback port: {error}"))
}

/// A client of the lab's etcd.
pub fn client(layout: &Layout) -> Result<Client, String> {
    let etcd = layout.etcd.as_ref().ok_or("the lab has no etcd (it was not brought up in calico-node mode)")?;
    Ok(Client::new(Endpoint { host: "127.0.0.1".into(), port: etcd.client_port }, TIMEOUT))
}

/// Starts the lab's etcd and waits until it answers. A port taken between the check and
/// etcd's bind makes etcd exit: then it tries again with other ports.
pub fn start(layout: &mut Layout) -> Result<(), String> {
    let dir = etcd_dir(layout);
    std::fs::create_dir_all(&dir).map_err(|error| format!("cannot create `{}`: {error}", dir.display()))?;
    let mut last = String::new();
    for _ in 0..3 {
        let etcd = LabEtcd { client_port: free_port()?, peer_port: free_port()? };
        let client_url = format!("http://127.0.0.1:{}", etcd.client_port);
        let peer_url = format!("http://127.0.0.1:{}", etcd.peer_port);
        let data = dir.join("data");
        let _ = std::fs::remove_dir_all(&data);
        let data_text = data.display().to_string();
        let cluster = format!("lab={peer_url}");
        let args = [
            "--name",
            "lab",
            "--data-dir",
            &data_text,
            "--listen-client-urls",
            &client_url,
            "--advertise-client-urls",
            &client_url,
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
            "--initial-cluster",
            &cluster,
            "--logger",
            "zap",
            "--log-level",
            "warn",
        ];
        let log = dir.join("etcd.log");
        let pid = daemons::spawn_detached_here(std::path::Path::new("etcd"), &args, &log, &dir.join("etcd.pid"))?;
        layout.etcd = Some(etcd);
        let client = client(layout)?;
        let ready =
            daemons::wait_until(Duration::from_secs(30), "etcd is not healthy", || !daemons::is_running(pid) || client.health().is_ok());
        if ready.is_ok() && daemons::is_running(pid) {
            return Ok(());
        }
        if daemons::is_running(pid) {
            let _ = crate::run("kill", &["-KILL", &pid.to_string()], None);
        }
        last = std::fs::read_to_string(&log).unwrap_or_default();
    }
    layout.etcd = None;
    Err(format!("the lab's etcd did not start on loopback:\n{}", last.lines().rev().take(5).collect::<Vec<_>>().join("\n")))
}

fn secondary(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect()
}

/// The handle Calico's CNI plugin gives a pod's addresses (`k8s-pod-network.<container>`).
fn pod_handle(pod: &Pod) -> String {
    format!("k8s-pod-network.{}", pod.namespace)
}

fn pod_attributes(pod: &Pod) -> BTreeMap<String, String> {
    secondary(&[("namespace", POD_NAMESPACE), ("node", &pod.node), ("pod", &pod.name)])
}

/// Writes the IPAM of a fresh lab: every block the intent places (affinity and block), the
/// pods' addresses and the VXLAN tunnel addresses, with their handles. Unconditional writes,
/// in parallel: nothing else writes IPAM before the lab is up.
pub fn seed_ipam(layout: &Layout, analysis: &Analysis, client: &Client) -> Result<(), String> {
    let model = &analysis.model;
    let mut blocks: BTreeMap<IpNet, (String, BlockValue)> = BTreeMap::new();
    for block in analysis.placement.blocks.iter().filter(|block| block.pool.is_some()) {
        let node = model.node(block.node).name.value.clone();
        blocks.insert(block.cidr, (node.clone(), BlockValue::claimed(&block.cidr, &node)));
    }
    let mut handles: Vec<(String, String)> = Vec::new();
    let mut assign = |address: IpAddr, handle: String, attributes: BTreeMap<String, String>| {
        let Some((cidr, (_, value))) = blocks.iter_mut().find(|(cidr, _)| cidr.contains(&address)) else { return };
        if let Some(ordinal) = BlockValue::ordinal_of(cidr, address)
            && value.assign(ordinal, &handle, attributes)
        {
            handles.push((handle, address.to_string()));
        }
    };
    for node in &layout.nodes {
        for vtep in &node.vteps {
            let (handle, kind) = if vtep.address.is_ipv4() {
                (format!("vxlan-tunnel-addr-{}", node.name), "vxlanTunnelAddress")
            } else {
                (format!("vxlan-v6-tunnel-addr-{}", node.name), "vxlanV6TunnelAddress")
            };
            assign(vtep.address, handle, secondary(&[("node", &node.name), ("type", kind)]));
        }
    }
    for pod in &layout.pods {
        assign(pod.address, pod_handle(pod), pod_attributes(pod));
    }
    let mut writes: Vec<(String, Vec<u8>)> = Vec::new();
    let state = |cidr: &IpNet| {
        analysis.placement.blocks.iter().find(|block| block.cidr == *cidr).map_or(AffinityState::Confirmed, |block| block.state)
    };
    for (cidr, (node, value)) in &blocks {
        writes.push((etcd_layout::affinity_key(node, cidr), etcd_layout::affinity_value(state(cidr))));
        writes.push((etcd_layout::block_key(cidr), serde_json::to_vec(value).expect("blocks serialize")));
    }
    for (handle, _) in &handles {
        writes.push((etcd_layout::handle_key(handle), handle_value(handle, 1)));
    }
    for result in parallel(&writes, |(key, value)| client.put(key, value).map_err(|error| error.to_string())) {
        result?;
    }
    Ok(())
}

/// An IPAM handle's value: its id and how many addresses each block holds for it.
fn handle_value(handle: &str, count: usize) -> Vec<u8> {
    serde_json::json!({ "handleID": handle, "block": {}, "deleted": false, "count": count }).to_string().into_bytes()
}

/// The live IPAM of a calico-node lab (its affinities, and the pools they are the whole truth
/// for); `None` for a BIRD 2 lab, which has no datastore.
pub fn observed_ipam(layout: &Layout) -> Result<Option<calplan_model::ipam::ObservedIpam>, String> {
    if layout.etcd.is_none() {
        return Ok(None);
    }
    let snapshot = client(layout)?.calico_snapshot().map_err(|error| error.to_string())?;
    let read = etcd_layout::read(calplan_diagnostics::FileId(0), &snapshot);
    let state = read.value.ok_or("the lab's etcd holds what calplan cannot read")?;
    let pools = state.resources.pools().filter_map(|pool| pool.spec.cidr.parse().ok()).collect();
    Ok(Some(calplan_model::ipam::ObservedIpam { affinities: state.affinities, pools }))
}

/// The Calico resources the lab's etcd holds.
pub fn resources(client: &Client) -> Result<ResourceSet, String> {
    let snapshot = client.calico_snapshot().map_err(|error| error.to_string())?;
    let read = etcd_layout::read(calplan_diagnostics::FileId(0), &snapshot);
    read.value.map(|state| state.resources).ok_or_else(|| "the lab's etcd holds what calplan cannot read".to_string())
}

/// Reads, changes and writes a block back with a compare on its revision, as Calico's IPAM
/// does; `change` says whether it changed anything. Retries when another writer got there first.
fn update_block(client: &Client, cidr: &IpNet, mut change: impl FnMut(&mut BlockValue) -> bool) -> Result<bool, String> {
    let key = etcd_layout::block_key(cidr);
    for _ in 0..5 {
        let Some(pair) = client.get(&key).map_err(|error| error.to_string())? else { return Ok(false) };
        let mut value: BlockValue = serde_json::from_slice(&pair.value).map_err(|error| format!("`{key}` is not a block: {error}"))?;
        if !change(&mut value) {
            return Ok(false);
        }
        match client.update(&key, &serde_json::to_vec(&value).expect("blocks serialize"), pair.mod_revision) {
            Ok(_) => return Ok(true),
            Err(EtcdError::Conflict { .. }) => continue,
            Err(error) => return Err(error.to_string()),
        }
    }
    Err(format!("`{key}` kept changing while the lab wrote it"))
}

/// Releases a pod's address (Calico's CNI plugin on `DEL`): its allocation and its handle.
/// The block stays affine to the node, empty, as Calico leaves it.
pub fn release(client: &Client, pod: &Pod) -> Result<(), String> {
    let ordinal = BlockValue::ordinal_of(&pod.block, pod.address).ok_or("the pod's address is not in its block")?;
    update_block(client, &pod.block, |value| value.release(ordinal).is_some())?;
    client.delete_prefix(&etcd_layout::handle_key(&pod_handle(pod))).map_err(|error| error.to_string())?;
    Ok(())
}

/// Where a new address came from.
pub struct Allocation {
    pub address: IpAddr,
    pub block: IpNet,
    pub pool: String,
}

/// An address for `pod` (already renamed for its replacement) on its node, as Calico's IPAM
/// hands one out: the pools that may serve it are the enabled ones of its family whose node
/// selector matches the node's labels and that allow workloads; first a free address in a
/// block affine to the node, else the first free block of the first such pool (by name),
/// claimed for the node. `ipv4` is the family.
/// A pool's blocks in the order a node looks for a free one, as Calico's IPAM does: from a
/// starting block its host name decides, on through the pool and round to its start. Calico
/// seeds Go's random generator with the FNV-1 hash of the host name and draws the start from
/// it; the lab starts at that hash modulo the number of blocks. Not Calico's start, but the
/// same property: a node's first block in a new pool is not where a forecast in node order
/// puts it, so plans are proved without knowing where Calico places blocks.
fn blocks_from_host_start(pool: &IpNet, block_size: u8, host: &str) -> impl Iterator<Item = IpNet> {
    let hash = host.bytes().fold(0x811c_9dc5_u32, |hash, byte| hash.wrapping_mul(0x0100_0193) ^ u32::from(byte));
    let pool = pool.trunc();
    let bits = u32::from(block_size.saturating_sub(pool.prefix_len())).min(127);
    let count: u128 = 1 << bits;
    let (base, step, family_bits): (u128, u32, u8) = match pool {
        IpNet::V4(net) => (u128::from(u32::from(net.network())), 32 - u32::from(block_size.min(32)), 32),
        IpNet::V6(net) => (u128::from(net.network()), 128 - u32::from(block_size.min(128)), 128),
    };
    let start = u128::from(hash) % count;
    (0..count).map(move |offset| {
        let index = (start + offset) % count;
        let address = base + (index << step);
        let address: std::net::IpAddr =
            if family_bits == 32 { std::net::Ipv4Addr::from(address as u32).into() } else { std::net::Ipv6Addr::from(address).into() };
        IpNet::new(address, block_size).expect("a block size within the family")
    })
}

pub fn allocate(client: &Client, pod: &Pod, ipv4: bool) -> Result<Allocation, String> {
    let resources = resources(client)?;
    let labels: BTreeMap<String, String> = resources
        .nodes()
        .find(|node| node.metadata.name == pod.node)
        .map(|node| node.metadata.labels.clone().into_iter().collect())
        .unwrap_or_default();
    let mut pools: Vec<(String, IpNet, u8)> = Vec::new();
    for pool in resources.pools() {
        let Ok(cidr) = pool.spec.cidr.parse::<IpNet>() else { continue };
        let selected = Selector::parse(pool.spec.effective_node_selector()).is_ok_and(|selector| selector.matches(&labels));
        let workloads = pool.spec.effective_allowed_uses().iter().any(|used| used == "Workload");
        let automatic = pool.spec.assignment_mode.as_deref().is_none_or(|mode| mode == "Automatic");
        if cidr.addr().is_ipv4() == ipv4 && !pool.spec.disabled.unwrap_or(false) && selected && workloads && automatic {
            pools.push((pool.metadata.name.clone(), cidr.trunc(), pool.spec.effective_block_size()));
        }
    }
    pools.sort();
    if pools.is_empty() {
        return Err(format!("no enabled pool may give `{}` on `{}` an address", pod.name, pod.node));
    }
    let snapshot = client.calico_snapshot().map_err(|error| error.to_string())?;
    let state = etcd_layout::read(calplan_diagnostics::FileId(0), &snapshot).value.ok_or("the lab's IPAM is unreadable")?;
    let pool_of = |block: &IpNet| pools.iter().find(|(_, cidr, _)| cidr.contains(block));
    // A block of the node's with room.
    for affinity in state.affinities.iter().filter(|affinity| affinity.node == pod.node && affinity.state == AffinityState::Confirmed) {
        let Some((pool, _, _)) = pool_of(&affinity.block) else { continue };
        let mut address = None;
        update_block(client, &affinity.block, |value| {
            let Some(ordinal) = value.unallocated.first().copied() else { return false };
            address = BlockValue::address(&affinity.block, ordinal);
            value.assign(ordinal, &pod_handle(pod), pod_attributes(pod))
        })?;
        if let Some(address) = address {
            client
                .put(&etcd_layout::handle_key(&pod_handle(pod)), &handle_value(&pod_handle(pod), 1))
                .map_err(|error| error.to_string())?;
            return Ok(Allocation { address, block: affinity.block, pool: pool.clone() });
        }
    }
    // A new block: in the first pool that has one free, the first free one from where the
    // node's host name points.
    let taken: Vec<IpNet> = state.affinities.iter().map(|affinity| affinity.block).chain(state.block_usage.keys().copied()).collect();
    for (pool, cidr, block_size) in &pools {
        for block in blocks_from_host_start(cidr, *block_size, &pod.node)
            .filter(|block| !taken.iter().any(|used| used.contains(block) || block.contains(used)))
        {
            let mut value = BlockValue::claimed(&block, &pod.node);
            let ordinal = 0;
            value.assign(ordinal, &pod_handle(pod), pod_attributes(pod));
            // Claimed as Calico claims: the affinity first (pending), then the block, then
            // the affinity confirmed.
            let affinity = etcd_layout::affinity_key(&pod.node, &block);
            match client.create(&affinity, &etcd_layout::affinity_value(AffinityState::Pending)) {
                Ok(_) => {}
                Err(EtcdError::Conflict { .. }) => continue,
                Err(error) => return Err(error.to_string()),
            }
            match client.create(&etcd_layout::block_key(&block), &serde_json::to_vec(&value).expect("blocks serialize")) {
                Ok(_) => {}
                Err(EtcdError::Conflict { .. }) => continue,
                Err(error) => return Err(error.to_string()),
            }
            client.put(&affinity, &etcd_layout::affinity_value(AffinityState::Confirmed)).map_err(|error| error.to_string())?;
            client
                .put(&etcd_layout::handle_key(&pod_handle(pod)), &handle_value(&pod_handle(pod), 1))
                .map_err(|error| error.to_string())?;
            let address = BlockValue::address(&block, ordinal).expect("a block has a first address");
            return Ok(Allocation { address, block, pool: pool.clone() });
        }
    }
    Err(format!("the pools that may serve `{}` on `{}` have no free block", pod.name, pod.node))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block once, from a start the host name decides (so two hosts start apart).
    #[test]
    fn a_host_walks_every_block_from_its_own_start() {
        let pool: IpNet = "10.244.0.0/16".parse().unwrap();
        let walk: Vec<IpNet> = blocks_from_host_start(&pool, 24, "cs1-k8s-m1.zpepc.com.cn").collect();
        assert_eq!(walk.len(), 256);
        assert_eq!(walk.iter().collect::<std::collections::BTreeSet<_>>().len(), 256);
        assert!(walk.iter().all(|block| pool.contains(block) && block.prefix_len() == 24));
        let other = blocks_from_host_start(&pool, 24, "cs1-k8s-m2.zpepc.com.cn").next().unwrap();
        assert_ne!(walk[0], other);
        let v6: IpNet = "fd00:10:244::/64".parse().unwrap();
        let first = blocks_from_host_start(&v6, 122, "node-a").next().unwrap();
        assert!(v6.contains(&first) && first.prefix_len() == 122);
    }
}
