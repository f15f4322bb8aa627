use super::{ITEMIZE_UP_TO, SHOW_AT_MOST, count, name_list, thousands};
use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::{Analysis, Model, Pool, ipam};
use std::collections::BTreeMap;

declare_rule! {
    /// ## What it does
    /// Checks that every node can get `maxPodsPerNode` pod addresses (default 110, the
    /// kubelet's) from the enabled Workload pools that select it, counting each pool's
    /// addresses as shared evenly among the nodes it selects. IPv4 and IPv6 are counted
    /// separately, and a node with an address of a family that no pool of that family selects
    /// gets none. One diagnostic per pool, whatever the number of nodes it leaves short.
    ///
    /// ## Why is this bad?
    /// Once a node's share is used up, Calico IPAM has no address for the next pod: it stays in
    /// `ContainerCreating` with `failed to allocate for range`, although the scheduler thinks
    /// the node has room.
    ///
    /// ## Example
    /// ```yaml
    /// maxPodsPerNode: 110
    /// pools:
    ///   - {name: default-ipv4-ippool, cidr: 192.168.0.0/24, blockSize: 28}   # 256 addresses for 6 nodes: 42 each
    /// ```
    pub static RULE = ("E0207", "pool-capacity", Error, "nodes with fewer pod addresses than `maxPodsPerNode`");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    let labels: Vec<BTreeMap<String, String>> = model.nodes.iter().map(|node| node.label_values()).collect();
    for ipv4 in [true, false] {
        let pools: Vec<&Pool> = model.pools.iter().filter(|pool| pool.is_ipv4() == ipv4 && ipam::takes_new_blocks(pool)).collect();
        if pools.is_empty() {
            continue;
        }
        let selected: Vec<Vec<usize>> = pools
            .iter()
            .map(|pool| {
                let selector = &pool.node_selector.selector;
                (0..labels.len()).filter(|&node| selector.matches(&labels[node])).collect()
            })
            .collect();
        let capacity = Capacity::compute(&pools, &selected, model.nodes.len());
        let max_pods = u128::from(model.max_pods_per_node.value);
        for (index, pool) in pools.iter().enumerate() {
            let short: Vec<usize> = selected[index].iter().copied().filter(|&node| capacity.available[node] < max_pods).collect();
            if !short.is_empty() {
                diagnostics.push(short_pool(model, pool, &selected[index], &short, &capacity, capacity.share[index]));
            }
        }
        let family_address = |node: &calplan_model::Node| {
            if ipv4 { node.ipv4_address.is_some() } else { node.ipv6_address.is_some() }
        };
        let unserved: Vec<&calplan_model::Node> =
            model.nodes.iter().filter(|node| !capacity.served[node.id.0 as usize] && family_address(node)).collect();
        if !unserved.is_empty() {
            diagnostics.push(unserved_nodes(model, &unserved, ipv4));
        }
    }
}

/// Each node's pod addresses from one address family's pools.
#[derive(Debug)]
struct Capacity {
    /// Per pool: the addresses each selected node gets from it.
    share: Vec<u128>,
    /// Per node: its addresses from every pool together.
    available: Vec<u128>,
    /// Per node: whether any pool selects it.
    served: Vec<bool>,
}

impl Capacity {
    fn compute(pools: &[&Pool], selected: &[Vec<usize>], node_count: usize) -> Capacity {
        let mut available = vec![0u128; node_count];
        let mut served = vec![false; node_count];
        let share: Vec<u128> = pools
            .iter()
            .zip(selected)
            .map(|(pool, nodes)| {
                if nodes.is_empty() {
                    return 0;
                }
                let share = pool_size(pool) / nodes.len() as u128;
                for &node in nodes {
                    available[node] = available[node].saturating_add(share);
                    served[node] = true;
                }
                share
            })
            .collect();
        Capacity { share, available, served }
    }
}

/// Every address in the pool; Calico IPAM hands out all of them, network and broadcast
/// addresses of each block included.
fn pool_size(pool: &Pool) -> u128 {
    let bits = u32::from(pool.cidr.max_prefix_len() - pool.cidr.prefix_len());
    1u128.checked_shl(bits).unwrap_or(u128::MAX)
}

/// The prefix length a pool needs for each of `nodes` nodes to get `per_node` addresses.
fn prefix_for(max_prefix_len: u8, per_node: u128, nodes: usize) -> Option<u8> {
    let needed = per_node.checked_mul(nodes as u128)?;
    let bits = if needed <= 1 { 0 } else { 128 - (needed - 1).leading_zeros() };
    u8::try_from(bits).ok().and_then(|bits| max_prefix_len.checked_sub(bits))
}

fn short_pool(model: &Model, pool: &Pool, selected: &[usize], short: &[usize], capacity: &Capacity, share: u128) -> Diagnostic {
    let max_pods = u128::from(model.max_pods_per_node.value);
    let fewest = short.iter().map(|&node| capacity.available[node]).min().unwrap_or(0);
    let all_equal = short.iter().all(|&node| capacity.available[node] == fewest);
    let quantity = if all_equal {
        format!("{} pod addresses each", thousands(fewest))
    } else {
        format!("as few as {} pod addresses", thousands(fewest))
    };
    let who = if short.len() == 1 {
        format!("node `{}` with {}", model.nodes[short[0]].name.value, quantity.replace(" each", ""))
    } else {
        format!("{} with {quantity}", count(short.len(), "node"))
    };
    let mut diagnostic = Diagnostic::new(
        &RULE,
        pool.cidr.span,
        format!("pool `{}` leaves {who}, fewer than `maxPodsPerNode` ({max_pods})", pool.name.value),
    )
    .label(format!("{} addresses shared by {}: {} each", thousands(pool_size(pool)), count(selected.len(), "node"), thousands(share)));
    if model.max_pods_per_node.span != model.name.span {
        diagnostic = diagnostic.secondary(model.max_pods_per_node.span, format!("{max_pods} pods expected per node"));
    }
    // Widening this pool alone must make up the worst node's shortfall.
    let wider = prefix_for(pool.cidr.max_prefix_len(), share + (max_pods - fewest), selected.len())
        .filter(|prefix| *prefix < pool.cidr.prefix_len())
        .map(|prefix| format!("widen the pool to /{prefix}, "))
        .unwrap_or_default();
    diagnostic.help(format!(
        "{wider}add a pool for these nodes, or lower `maxPodsPerNode`; when a node's share runs out, its next pod cannot get an address"
    ))
}

fn unserved_nodes(model: &Model, unserved: &[&calplan_model::Node], ipv4: bool) -> Diagnostic {
    let family = if ipv4 { "IPv4" } else { "IPv6" };
    let first = unserved[0];
    let names: Vec<&str> = unserved.iter().map(|node| node.name.value.as_str()).collect();
    let who = if unserved.len() <= ITEMIZE_UP_TO {
        format!("{} {}", if unserved.len() == 1 { "node" } else { "nodes" }, name_list(&names, ITEMIZE_UP_TO))
    } else {
        format!("{} ({})", count(unserved.len(), "node"), name_list(&names, SHOW_AT_MOST))
    };
    let mut diagnostic = Diagnostic::new(
        &RULE,
        first.name.span,
        format!(
            "no enabled {family} pool selects {who}: {} no {family} pod address",
            if unserved.len() == 1 { "it gets" } else { "they get" }
        ),
    )
    .label("selected by no pool's `nodeSelector`");
    for node in unserved.iter().skip(1).take(SHOW_AT_MOST - 1) {
        diagnostic = diagnostic.secondary(node.name.span, "nor this node");
    }
    let selectors: Vec<String> = model
        .pools
        .iter()
        .filter(|pool| pool.is_ipv4() == ipv4 && ipam::takes_new_blocks(pool))
        .map(|pool| format!("`{}`", pool.node_selector.text))
        .collect();
    diagnostic.help(format!(
        "widen a pool's `nodeSelector` (now {}) or add a pool for these nodes; pods scheduled there cannot start",
        selectors.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn widening_makes_up_the_shortfall() {
        // 6 nodes need 110 each: 660 addresses, a /22 (1024).
        assert_eq!(prefix_for(32, 110, 6), Some(22));
        // Exactly a power of two needs no more.
        assert_eq!(prefix_for(32, 128, 2), Some(24));
        assert_eq!(prefix_for(32, 1, 1), Some(32));
        assert_eq!(prefix_for(32, u128::MAX, 2), None);
    }

    #[test]
    fn shares_add_up_across_pools_and_are_split_evenly() {
        let text = intent(
            "  pools:\n    - {name: a, cidr: 10.0.0.0/26, blockSize: 28}\n    - {name: b, cidr: 10.1.0.0/26, blockSize: 28, nodeSelector: rack == 'r1'}\n  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24, labels: {rack: r1}}\n    - {name: n2, ipv4Address: 21.0.0.2/24}\n",
        );
        // n1: 32 (half of a) + 64 (all of b) = 96; n2: 32.
        let found = check_rule(&text, "E0207");
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].contains("pool `a` leaves 2 nodes with as few as 32 pod addresses, fewer than `maxPodsPerNode` (110)"),
            "{found:#?}"
        );
        assert!(found[1].contains("pool `b` leaves node `n1` with 96 pod addresses"), "{found:#?}");
    }

    #[test]
    fn enough_addresses_is_quiet_and_families_count_separately() {
        let text = intent(
            "  maxPodsPerNode: 64\n  pools:\n    - {name: a, cidr: 10.0.0.0/24, blockSize: 26}\n    - {name: v6, cidr: 'fd00::/120', blockSize: 122}\n  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24}\n    - {name: n2, ipv4Address: 21.0.0.2/24, ipv6Address: 'fd01::2/64'}\n",
        );
        assert_eq!(check_rule(&text, "E0207"), Vec::<String>::new());
        let text = text.replace("maxPodsPerNode: 64", "maxPodsPerNode: 200");
        let found = check_rule(&text, "E0207");
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found.iter().any(|line| line.contains("pool `v6` leaves 2 nodes with 128 pod addresses each")), "{found:#?}");
    }

    #[test]
    fn a_node_no_pool_selects_is_reported_once() {
        let text = intent(
            "  pools:\n    - {name: a, cidr: 10.0.0.0/16, nodeSelector: has(pods)}\n  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24, labels: {pods: 'yes'}}\n    - {name: n2, ipv4Address: 21.0.0.2/24}\n    - {name: n3, ipv4Address: 21.0.0.3/24}\n",
        );
        let found = check_rule(&text, "E0207");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].contains("no enabled IPv4 pool selects nodes `n2` and `n3`"), "{found:#?}");
    }
}
