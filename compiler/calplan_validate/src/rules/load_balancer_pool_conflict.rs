use calplan_calico::resources::EncapsulationMode;
use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::{AllowedUse, Analysis};

declare_rule! {
    /// ## What it does
    /// Checks pools whose `allowedUses` include `LoadBalancer` against Calico's rules for them,
    /// quoting Calico 3.30's messages: no other use beside it, neither IPIP nor VXLAN, BGP
    /// export left on, and `nodeSelector: all()`.
    ///
    /// ## Why is this bad?
    /// Calico refuses the IPPool: LoadBalancer addresses are advertised from every node and
    /// never encapsulated, so a pool for them cannot also hold pods or be hidden from BGP.
    ///
    /// ## Example
    /// ```yaml
    /// - {name: lb, cidr: 172.20.0.0/24, allowedUses: [LoadBalancer, Workload]}
    /// ```
    pub static RULE = ("E0211", "load-balancer-pool-conflict", Error, "a LoadBalancer pool with settings Calico refuses for one", fixed);
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    for pool in &analysis.model.pools {
        if !pool.allowed_uses.contains(&AllowedUse::LoadBalancer) {
            continue;
        }
        let name = &pool.name.value;
        for other in pool.allowed_uses.iter().filter(|used| **used != AllowedUse::LoadBalancer) {
            diagnostics.push(
                Diagnostic::new(
                    &RULE,
                    pool.allowed_uses.span,
                    format!("LoadBalancer cannot be used at the same time as: {}", other.as_str()),
                )
                .label(format!("pool `{name}` is for LoadBalancer and {} addresses", other.as_str()))
                .help("give LoadBalancer addresses a pool of their own: `allowedUses: [LoadBalancer]`"),
            );
        }
        let encapsulated = [&pool.ipip_mode, &pool.vxlan_mode].into_iter().find(|mode| mode.value != EncapsulationMode::Never);
        if let Some(mode) = encapsulated {
            diagnostics.push(
                Diagnostic::new(&RULE, mode.span, "Neither IPIPMode nor VXLANMode can be enabled on AllowedUses LoadBalancer IP pool")
                    .label(format!("pool `{name}` is for LoadBalancer addresses"))
                    .help("set `ipipMode: Never` and `vxlanMode: Never`: LoadBalancer addresses are advertised, not tunnelled"),
            );
        }
        if pool.disable_bgp_export.value {
            diagnostics.push(
                Diagnostic::new(&RULE, pool.disable_bgp_export.span, "IP Pool with AllowedUse LoadBalancer must have DisableBGPExport set to true")
                    .label(format!("pool `{name}` is for LoadBalancer addresses"))
                    .help("Calico's message says the opposite of its check: remove `disableBGPExport: true`, since LoadBalancer addresses reach clients only by being advertised"),
            );
        }
        if pool.node_selector.text != "all()" {
            diagnostics.push(
                Diagnostic::new(
                    &RULE,
                    pool.node_selector.span,
                    "IP Pool with AllowedUse LoadBalancer must have node selector set to all()",
                )
                .label(format!("pool `{name}` is for LoadBalancer addresses"))
                .help("remove `nodeSelector` (or write `all()`): every node advertises LoadBalancer addresses"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn calicos_load_balancer_rules() {
        let text = intent(
            "  pools:\n    - {name: a, cidr: 10.0.0.0/16}\n    - {name: lb, cidr: 172.20.0.0/24, allowedUses: [LoadBalancer, Workload], vxlanMode: Always, disableBGPExport: true, nodeSelector: has(x)}\n    - {name: ok, cidr: 172.21.0.0/24, allowedUses: [LoadBalancer]}\n  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24, labels: {x: y}}\n",
        );
        let found: Vec<String> = check_rule(&text, "E0211").iter().map(|line| line.split(" | ").next().unwrap().to_string()).collect();
        assert_eq!(
            found,
            [
                "E0211 LoadBalancer cannot be used at the same time as: Workload",
                "E0211 Neither IPIPMode nor VXLANMode can be enabled on AllowedUses LoadBalancer IP pool",
                "E0211 IP Pool with AllowedUse LoadBalancer must have DisableBGPExport set to true",
                "E0211 IP Pool with AllowedUse LoadBalancer must have node selector set to all()",
            ]
        );
    }
}
