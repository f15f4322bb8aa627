use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;

declare_rule! {
    /// ## What it does
    /// Checks block sizes: 20–32 for IPv4 pools, 116–128 for IPv6 pools.
    ///
    /// ## Why is this bad?
    /// Calico refuses the pool (`IPv4 block size must be between 20 and 32`), and the block size
    /// cannot be changed once the pool exists.
    ///
    /// ## Example
    /// ```yaml
    /// - {name: p, cidr: 10.0.0.0/8, blockSize: 16}
    /// ```
    pub static RULE = ("E0202", "block-size-out-of-range", Error, "a block size Calico does not allow", fixed);
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    for pool in &analysis.model.pools {
        let (family, range) = if pool.is_ipv4() { ("IPv4", 20..=32) } else { ("IPv6", 116..=128) };
        if !range.contains(&pool.block_size.value) {
            diagnostics.push(
                Diagnostic::new(
                    &RULE,
                    pool.block_size.span,
                    format!("{family} block size must be between {} and {}", range.start(), range.end()),
                )
                .label(format!("block size {}", pool.block_size.value))
                .help(format!(
                    "{family} blocks are /{} to /{}; Calico's default is /{}",
                    range.start(),
                    range.end(),
                    if pool.is_ipv4() { 26 } else { 122 }
                )),
            );
        }
    }
}
