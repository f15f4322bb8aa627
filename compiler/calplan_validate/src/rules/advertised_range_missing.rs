use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;

declare_rule! {
    /// ## What it does
    /// Warns when `bgp.advertiseServiceClusterIPs` is true but the intent gives no
    /// `serviceClusterIPs` to advertise.
    ///
    /// ## Why is this bad?
    /// Nothing is advertised: routers that expect to reach services through the cluster's BGP
    /// get no route, and the setting reads as if they would.
    ///
    /// ## Example
    /// ```yaml
    /// bgp:
    ///   advertiseServiceClusterIPs: true    # but no serviceClusterIPs
    /// ```
    pub static RULE = ("W0604", "advertised-range-missing", Warning, "service cluster IPs to advertise, but none given");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    if !model.bgp.advertise_service_cluster_ips || !model.service_cluster_ips.is_empty() {
        return;
    }
    let span = model.bgp.advertise_service_cluster_ips_span.unwrap_or(model.bgp.span);
    diagnostics.push(
        Diagnostic::new(&RULE, span, "`advertiseServiceClusterIPs` is on, but the intent has no `serviceClusterIPs`")
            .label("nothing to advertise")
            .help("add `serviceClusterIPs` (the kube-apiserver's `--service-cluster-ip-range`, such as `[10.96.0.0/12]`), or remove `advertiseServiceClusterIPs`"),
    );
}
