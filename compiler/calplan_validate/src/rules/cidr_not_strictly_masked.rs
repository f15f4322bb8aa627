use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;

declare_rule! {
    /// ## What it does
    /// Checks that every pool, service range and route destination is strictly masked: no bits
    /// set after the prefix length.
    ///
    /// ## Why is this bad?
    /// Calico refuses such a pool (`IPPool CIDR is not strictly masked`); a border router would
    /// read the route as the masked network, which may not be what was meant.
    ///
    /// ## Example
    /// ```yaml
    /// cidr: 192.168.1.0/16    # means 192.168.0.0/16
    /// ```
    pub static RULE = ("E0201", "cidr-not-strictly-masked", Error, "a CIDR with bits set after its prefix length", fixed);
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    let pools = model.pools.iter().map(|pool| (&pool.cidr, "IPPool CIDR is not strictly masked".to_string()));
    let services = model
        .service_cluster_ips
        .iter()
        .chain(&model.bgp.service_external_ips)
        .chain(&model.bgp.service_load_balancer_ips)
        .map(|cidr| (cidr, format!("service range `{}` is not strictly masked", cidr.value)));
    for (cidr, message) in pools.chain(services) {
        if cidr.trunc() != cidr.value {
            diagnostics.push(
                Diagnostic::new(&RULE, cidr.span, message)
                    .label(format!("host bits set after /{}", cidr.prefix_len()))
                    .help(format!("did you mean `{}`?", cidr.trunc())),
            );
        }
    }
    for router in &model.routers {
        for route in &router.static_routes {
            if let calplan_model::Destination::Cidr(cidr) = &route.destination.value
                && cidr.trunc() != *cidr
            {
                diagnostics.push(
                    Diagnostic::new(&RULE, route.destination.span, format!("route destination `{cidr}` is not strictly masked"))
                        .label(format!("host bits set after /{}", cidr.prefix_len()))
                        .help(format!("did you mean `{}`?", cidr.trunc())),
                );
            }
        }
    }
}
