use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;

declare_rule! {
    /// ## What it does
    /// Checks that a pool does not enable both IPIP and VXLAN.
    ///
    /// ## Why is this bad?
    /// Calico refuses it: `Cannot enable both VXLAN and IPIP on the same IPPool`.
    ///
    /// ## Example
    /// ```yaml
    /// - {name: p, cidr: 10.0.0.0/16, ipipMode: Always, vxlanMode: CrossSubnet}
    /// ```
    pub static RULE = ("E0204", "ipip-and-vxlan", Error, "a pool with both IPIP and VXLAN enabled", fixed);
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    for pool in &analysis.model.pools {
        if pool.ipip_mode.is_enabled() && pool.vxlan_mode.is_enabled() {
            diagnostics.push(
                Diagnostic::new(&RULE, pool.vxlan_mode.span, "Cannot enable both VXLAN and IPIP on the same IPPool")
                    .label(format!("vxlanMode {}", pool.vxlan_mode.as_str()))
                    .secondary(pool.ipip_mode.span, format!("ipipMode {}", pool.ipip_mode.as_str()))
                    .help("choose one encapsulation; set the other to `Never`"),
            );
        }
    }
}
