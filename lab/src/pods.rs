//! The lab's pods: wired as Calico's CNI plugin wires a workload (a namespace behind a
//! `cali…` veth whose node end answers for `169.254.1.1` by proxy ARP, a `/32` route to the
//! pod on the node), and recreated as `kubectl delete pod` makes a Deployment do in the notes'
//! pool migration: the pod goes (its listener, its namespace and veth, its address released
//! in the lab's IPAM), and its replacement comes up on the same node with an address Calico's
//! IPAM hands out now — from an enabled pool, so from the new one once the old is disabled.

use crate::topology::{self, Layout, Pod};
use crate::{daemons, datastore, in_namespace, ip_batch, run};
use std::time::Duration;

/// `ip -batch` lines for the node's end of a pod, and the sysctls it needs.
pub fn host_side(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let cali = &pod.host_interface;
    let mut lines = vec![
        format!("link add name {cali} type veth peer name eth0 netns {}", pod.namespace),
        format!("link set dev {cali} address {} addrgenmode none", topology::CALI_MAC),
        format!("link set dev {cali} up"),
    ];
    let mut sysctls = Vec::new();
    if pod.address.is_ipv4() {
        lines.push(format!("route replace {}/32 dev {cali} scope link", pod.address));
        sysctls.push(format!("net.ipv4.conf.{cali}.proxy_arp=1"));
        sysctls.push(format!("net.ipv4.neigh.{cali}.proxy_delay=0"));
    } else {
        lines.push(format!("address add {}/64 dev {cali} nodad", topology::POD_GATEWAY_V6));
        lines.push(format!("route replace {}/128 dev {cali}", pod.address));
    }
    (lines, sysctls)
}

/// `ip -batch` lines for the pod's own end.
pub fn pod_side(pod: &Pod) -> Vec<String> {
    if pod.address.is_ipv4() {
        vec![
            format!("address add {}/32 dev eth0", pod.address),
            "link set dev eth0 up".to_string(),
            format!("route replace default via {} dev eth0 onlink", topology::POD_GATEWAY_V4),
        ]
    } else {
        vec![
            format!("address add {}/128 dev eth0 nodad", pod.address),
            "link set dev eth0 up".to_string(),
            format!("route replace default via {} dev eth0", topology::POD_GATEWAY_V6),
        ]
    }
}

/// The namespace of a pod's next incarnation: `…-p3` becomes `…-p3r1`, `…-p3r1` `…-p3r2`.
fn next_namespace(namespace: &str) -> String {
    let (stem, generation) = match namespace.rsplit_once('r') {
        Some((stem, number))
            if !number.is_empty()
                && number.bytes().all(|byte| byte.is_ascii_digit())
                && stem.rsplit('-').next().is_some_and(|last| last.starts_with('p')) =>
        {
            (stem.to_string(), number.parse::<u32>().unwrap_or(0))
        }
        _ => (namespace.to_string(), 0),
    };
    format!("{stem}r{}", generation + 1)
}

/// Where a recreated pod went.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recreated {
    pub pod: String,
    pub node: String,
    pub old_address: String,
    pub new_address: String,
    pub new_block: String,
    pub new_pool: String,
}

/// Recreates pod `index` of a calico-node lab on its node: deleted (listener, namespace,
/// address), then made anew with an address from the lab's IPAM. The layout is updated (and
/// saved) with the new pod.
pub fn recreate(layout: &mut Layout, index: usize) -> Result<Recreated, String> {
    let client = datastore::client(layout)?;
    let old = layout.pods[index].clone();
    let node = layout.node(&old.node).ok_or_else(|| format!("pod `{}` is on `{}`, which the lab lacks", old.name, old.node))?.clone();
    // kubectl delete pod: the container stops, the CNI plugin's DEL removes the veth and
    // releases the address.
    let pid_file = layout.dir.join("listeners").join(format!("{}.pid", old.name));
    if let Some(pid) = daemons::read_pid(&pid_file)
        && daemons::is_running(pid)
        && crate::down::namespace_of(pid).as_deref() == Some(old.namespace.as_str())
    {
        let _ = run("kill", &["-KILL", &pid.to_string()], None);
        let _ = daemons::wait_until(Duration::from_secs(5), "the pod's listener is still running", || !daemons::is_running(pid));
    }
    let _ = ip_batch(Some(&node.namespace), &[format!("link delete dev {}", old.host_interface)]);
    run("ip", &["netns", "delete", &old.namespace], None)?;
    datastore::release(&client, &old)?;

    // Its replacement: a new sandbox, an address from IPAM, the same wiring.
    let namespace = next_namespace(&old.namespace);
    let mut pod = Pod { namespace: namespace.clone(), host_interface: topology::cali_name(&namespace), ..old.clone() };
    let allocation = datastore::allocate(&client, &pod, old.address.is_ipv4())?;
    pod.address = allocation.address;
    pod.block = allocation.block;
    pod.pool = allocation.pool.clone();
    layout.pods[index] = pod.clone();
    crate::write_layout(layout)?;
    ip_batch(None, &[format!("netns add {namespace}")])?;
    ip_batch(Some(&namespace), &["link set dev lo up".to_string()])?;
    let (lines, sysctls) = host_side(&pod);
    ip_batch(Some(&node.namespace), &lines)?;
    let mut arguments = vec!["-q", "-w"];
    arguments.extend(sysctls.iter().map(String::as_str));
    in_namespace(&node.namespace, "sysctl", &arguments, None)?;
    ip_batch(Some(&namespace), &pod_side(&pod))?;
    daemons::start_listener(layout, &namespace, &pod.address.to_string(), topology::POD_PORT, &pod.name)?;
    Ok(Recreated {
        pod: pod.name.clone(),
        node: pod.node.clone(),
        old_address: old.address.to_string(),
        new_address: pod.address.to_string(),
        new_block: allocation.block.to_string(),
        new_pool: allocation.pool,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recreated_pod_gets_the_next_namespace() {
        assert_eq!(next_namespace("cpl-cs1-abc123-p3"), "cpl-cs1-abc123-p3r1");
        assert_eq!(next_namespace("cpl-cs1-abc123-p3r1"), "cpl-cs1-abc123-p3r2");
        assert_eq!(next_namespace("cpl-r2-abc123-p10r9"), "cpl-r2-abc123-p10r10");
    }
}
