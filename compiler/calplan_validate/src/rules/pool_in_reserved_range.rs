use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::Analysis;
use ipnet::IpNet;

declare_rule! {
    /// ## What it does
    /// Reports a pool that overlaps addresses no pod can use: the unspecified ("this
    /// network", 0.0.0.0/8 and ::/128), loopback (127.0.0.0/8, ::1/128), multicast
    /// (224.0.0.0/4, ff00::/8) and reserved (240.0.0.0/4, with the broadcast address) ranges,
    /// and IPv4-mapped IPv6 (::ffff:0:0/96). Link-local ranges are `link-local-overlap`'s.
    ///
    /// ## Why is this bad?
    /// Calico 3.30 accepts such a pool (it refuses link-local ones only), but the kernel does
    /// not route these addresses between hosts: a pod given one is unreachable, and its
    /// traffic is dropped as martian.
    ///
    /// ## Example
    /// ```yaml
    /// - {name: p, cidr: 127.16.0.0/16}     # meant 172.16.0.0/16
    /// ```
    pub static RULE = ("E0212", "pool-in-reserved-range", Error, "a pool that overlaps addresses no pod can use");
}

/// The ranges no pod can use, with what they are.
const RESERVED: &[(&str, &str)] = &[
    ("0.0.0.0/8", "the unspecified (\"this network\") range"),
    ("127.0.0.0/8", "the loopback range"),
    ("224.0.0.0/4", "the multicast range"),
    ("240.0.0.0/4", "the reserved range (with the broadcast address)"),
    ("::/128", "the unspecified address"),
    ("::1/128", "the loopback address"),
    ("::ffff:0:0/96", "the IPv4-mapped range"),
    ("ff00::/8", "the multicast range"),
];

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    for pool in &analysis.model.pools {
        let cidr = pool.cidr.trunc();
        let overlapped: Vec<String> = RESERVED
            .iter()
            .map(|(range, what)| (range.parse::<IpNet>().expect("valid range"), what))
            .filter(|(range, _)| range.addr().is_ipv4() == cidr.addr().is_ipv4() && (range.contains(&cidr) || cidr.contains(range)))
            .map(|(range, what)| format!("{what} {range}"))
            .collect();
        let Some((last, init)) = overlapped.split_last() else { continue };
        let list = if init.is_empty() { last.clone() } else { format!("{} and {last}", init.join(", ")) };
        diagnostics.push(
            Diagnostic::new(&RULE, pool.cidr.span, format!("pool `{}` overlaps {list}", pool.name.value))
                .label("addresses no pod can use")
                .help("Calico accepts it, but the kernel does not route these addresses between hosts, so pods there are unreachable; pick a private range such as 10.244.0.0/16 or fd00::/48"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    #[test]
    fn reserved_ranges_of_both_families() {
        let text = intent(
            "  pools:\n    - {name: lo, cidr: 127.16.0.0/16}\n    - {name: mc, cidr: 239.0.0.0/16}\n    - {name: all, cidr: 0.0.0.0/0, disabled: true}\n    - {name: v6, cidr: 'ff02::/120'}\n    - {name: ok, cidr: 10.0.0.0/16}\n    - {name: ok6, cidr: 'fd00::/120'}\n  nodes:\n    - {name: n1, ipv4Address: 21.0.0.1/24}\n",
        );
        let found: Vec<String> = check_rule(&text, "E0212").iter().map(|line| line.split(" | ").next().unwrap().to_string()).collect();
        assert_eq!(
            found,
            [
                "E0212 pool `lo` overlaps the loopback range 127.0.0.0/8",
                "E0212 pool `mc` overlaps the multicast range 224.0.0.0/4",
                "E0212 pool `all` overlaps the unspecified (\"this network\") range 0.0.0.0/8, the loopback range 127.0.0.0/8, the multicast range 224.0.0.0/4 and the reserved range (with the broadcast address) 240.0.0.0/4",
                "E0212 pool `v6` overlaps the multicast range ff00::/8",
            ]
        );
    }
}
