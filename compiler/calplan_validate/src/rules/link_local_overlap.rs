use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;
use ipnet::IpNet;

declare_rule! {
    /// ## What it does
    /// Checks that no pool overlaps the link-local ranges 169.254.0.0/16 and fe80::/10.
    ///
    /// ## Why is this bad?
    /// Calico refuses it (`IPPool CIDR overlaps with IPv4 Link Local range 169.254.0.0/16`):
    /// link-local addresses are never routed, so pods there could not be reached.
    ///
    /// ## Example
    /// ```yaml
    /// - {name: p, cidr: 169.254.0.0/20}
    /// ```
    pub static RULE = ("E0206", "link-local-overlap", Error, "a pool that overlaps a link-local range", fixed);
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let v4: IpNet = "169.254.0.0/16".parse().expect("valid");
    let v6: IpNet = "fe80::/10".parse().expect("valid");
    for pool in &analysis.model.pools {
        let (range, family) = if pool.is_ipv4() { (v4, "IPv4") } else { (v6, "IPv6") };
        let cidr = pool.cidr.trunc();
        if range.contains(&cidr) || cidr.contains(&range) {
            diagnostics.push(
                Diagnostic::new(&RULE, pool.cidr.span, format!("IPPool CIDR overlaps with {family} Link Local range {range}"))
                    .label("overlaps link-local addresses")
                    .help("pick a range outside 169.254.0.0/16 and fe80::/10; link-local addresses are not routed"),
            );
        }
    }
}
