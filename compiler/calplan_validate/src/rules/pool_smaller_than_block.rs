use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;

declare_rule! {
    /// ## What it does
    /// Checks that an enabled pool holds at least one block: its prefix length is at most its
    /// block size.
    ///
    /// ## Why is this bad?
    /// Calico refuses it: `IP pool size is too small for use with Calico IPAM. It must be equal
    /// to or greater than the block size.` A disabled pool is exempt, as in Calico.
    ///
    /// ## Example
    /// ```yaml
    /// - {name: p, cidr: 10.0.0.0/28, blockSize: 26}
    /// ```
    pub static RULE = ("E0203", "pool-smaller-than-block", Error, "an enabled pool smaller than one block", fixed);
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    for pool in &analysis.model.pools {
        let in_range = if pool.is_ipv4() { (20..=32).contains(&*pool.block_size) } else { (116..=128).contains(&*pool.block_size) };
        if *pool.disabled || !in_range || pool.cidr.prefix_len() <= *pool.block_size {
            continue;
        }
        diagnostics.push(
            Diagnostic::new(
                &RULE,
                pool.cidr.span,
                "IP pool size is too small for use with Calico IPAM. It must be equal to or greater than the block size.",
            )
            .label(format!("a /{} pool", pool.cidr.prefix_len()))
            .secondary(pool.block_size.span, format!("holds no /{} block", pool.block_size.value))
            .help(format!(
                "widen the pool to /{} or more, or use blocks of /{} or smaller",
                pool.block_size.value,
                pool.cidr.prefix_len()
            )),
        );
    }
}
