use super::{count, thousands};
use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::{Analysis, ipam};

declare_rule! {
    /// ## What it does
    /// Checks that an enabled pool has at least one block for every node it selects.
    ///
    /// ## Why is this bad?
    /// A node without a block of its own borrows single addresses from other nodes' blocks.
    /// Each borrowed address is advertised as its own `/32` route, next to the block routes,
    /// so every node's and router's table grows with the pods, and the pods' routes follow a
    /// node that does not hold their block.
    ///
    /// ## Example
    /// ```yaml
    /// pools:
    ///   - {name: default-ipv4-ippool, cidr: 192.168.0.0/22, blockSize: 24}   # 4 blocks for 6 nodes
    /// ```
    pub static RULE = ("W0208", "pool-fewer-blocks-than-nodes", Warning, "a pool with fewer blocks than the nodes it selects");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    let labels: Vec<_> = model.nodes.iter().map(|node| node.label_values()).collect();
    for pool in &model.pools {
        if !ipam::takes_new_blocks(pool) {
            continue;
        }
        let selected = labels.iter().filter(|labels| pool.node_selector.selector.matches(labels)).count();
        let blocks = pool.block_count();
        if blocks >= selected as u128 {
            continue;
        }
        let block_size = pool.block_size.value;
        let (span, label) = if pool.block_size_set {
            (pool.block_size.span, format!("{} of /{block_size} in {}", count(blocks as usize, "block"), pool.cidr.trunc()))
        } else {
            (pool.cidr.span, format!("{} of /{block_size} (Calico's default block size)", count(blocks as usize, "block")))
        };
        // The smallest block size that gives every selected node a block.
        let bits = usize::BITS - (selected - 1).leading_zeros();
        let smaller = u8::try_from(bits)
            .ok()
            .map(|bits| pool.cidr.prefix_len() + bits)
            .filter(|size| *size <= pool.cidr.max_prefix_len())
            .map(|size| format!("`blockSize: {size}` ({} blocks) or ", thousands(1u128 << (size - pool.cidr.prefix_len()))))
            .unwrap_or_default();
        let without = selected as u128 - blocks;
        diagnostics.push(
            Diagnostic::new(
                &RULE,
                span,
                format!("pool `{}` has {} for the {} it selects", pool.name.value, count(blocks as usize, "block"), count(selected, "node")),
            )
            .label(label)
            .help(format!(
                "use {smaller}a wider pool; otherwise {} {} no block and {} single addresses from other nodes' blocks, each advertised as a /{} route",
                thousands(without),
                if without == 1 { "node gets" } else { "nodes get" },
                if without == 1 { "borrows" } else { "borrow" },
                pool.cidr.max_prefix_len()
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn suggests_the_block_size_that_fits() {
        let nodes: String = (1..=6).map(|n| format!("    - {{name: n{n}, ipv4Address: 21.0.0.{n}/24}}\n")).collect();
        let text =
            intent(&format!("  maxPodsPerNode: 100\n  pools:\n    - {{name: p, cidr: 10.0.0.0/22, blockSize: 24}}\n  nodes:\n{nodes}"));
        let found = check_rule(&text, "W0208");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].starts_with("W0208 pool `p` has 4 blocks for the 6 nodes it selects"), "{found:#?}");
        assert!(found[0].contains("`blockSize: 25` (8 blocks)"), "{found:#?}");
        assert!(found[0].contains("2 nodes get no block"), "{found:#?}");
    }
}
