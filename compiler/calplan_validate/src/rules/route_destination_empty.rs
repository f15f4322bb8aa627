use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::{Analysis, Destination};

declare_rule! {
    /// ## What it does
    /// Reports a router's static route to `services` when the intent has no
    /// `serviceClusterIPs`, or to `pools` when no pool is enabled.
    ///
    /// ## Why is this bad?
    /// The route stands for no range at all: the router is left without the route the
    /// operator asked for, and nothing else says so.
    ///
    /// ## Example
    /// ```yaml
    /// routers:
    ///   - name: cs1-harbor-1
    ///     staticRoutes:
    ///       - {destination: services, via: [cs1-k8s-n2.zpepc.com.cn]}   # but no serviceClusterIPs
    /// ```
    pub static RULE = ("E0602", "route-destination-empty", Error, "a static route to `services` or `pools` that stands for nothing");
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    let any_pool = !model.pools.is_empty();
    let any_enabled_pool = model.pools.iter().any(|pool| !*pool.disabled);
    for router in &model.routers {
        for route in &router.static_routes {
            let (message, label, help) = match route.destination.value {
                Destination::Services if model.service_cluster_ips.is_empty() => (
                    format!("router `{}` routes `services`, but the intent has no `serviceClusterIPs`", router.name.value),
                    "no service range to route",
                    "add `serviceClusterIPs` (the kube-apiserver's `--service-cluster-ip-range`), or write the destination as a CIDR"
                        .to_string(),
                ),
                Destination::Pools if !any_enabled_pool => (
                    format!(
                        "router `{}` routes `pools`, but {}",
                        router.name.value,
                        if any_pool { "every pool is disabled" } else { "the intent has no pool" }
                    ),
                    "no pool to route",
                    if any_pool {
                        "enable a pool, or remove the route: disabled pools hand out no new addresses".to_string()
                    } else {
                        "declare the cluster's pools under `pools`, or write the destination as a CIDR".to_string()
                    },
                ),
                _ => continue,
            };
            diagnostics.push(Diagnostic::new(&RULE, route.destination.span, message).label(label).help(help));
        }
    }
}
