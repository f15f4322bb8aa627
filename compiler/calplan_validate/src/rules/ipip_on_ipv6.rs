use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;

declare_rule! {
    /// ## What it does
    /// Checks that IPv6 pools do not enable IPIP.
    ///
    /// ## Why is this bad?
    /// IPIP carries IPv4 only; Calico refuses it: `IPIP is not supported on an IPv6 IP pool`.
    ///
    /// ## Example
    /// ```yaml
    /// - {name: v6, cidr: fd00:10::/48, ipipMode: Always}   # use vxlanMode instead
    /// ```
    pub static RULE = ("E0205", "ipip-on-ipv6", Error, "IPIP enabled on an IPv6 pool", fixed);
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    for pool in &analysis.model.pools {
        if !pool.is_ipv4() && pool.ipip_mode.is_enabled() {
            diagnostics.push(
                Diagnostic::new(&RULE, pool.ipip_mode.span, "IPIP is not supported on an IPv6 IP pool")
                    .label(format!("ipipMode {} on {}", pool.ipip_mode.as_str(), pool.cidr.value))
                    .help("set `ipipMode: Never`; for encapsulated IPv6 use `vxlanMode`"),
            );
        }
    }
}
