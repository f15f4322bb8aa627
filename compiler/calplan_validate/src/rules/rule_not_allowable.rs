use calplan_diagnostics::declare_rule;

declare_rule! {
    /// ## What it does
    /// Reports an entry of `spec.allow` for a rule whose findings cannot be allowed (and
    /// `--allow` or `--warn` of such a rule on the command line): the rules that mean an input
    /// could not be read (YAML and schema `E00xx`, values that do not resolve `E01xx`, current
    /// state `E07xx`), these overrides' own (`E08xx`), and the rules whose finding means an
    /// artifact Calico or its checker refuses: `cidr-not-strictly-masked`,
    /// `block-size-out-of-range`, `pool-smaller-than-block`, `ipip-and-vxlan`, `ipip-on-ipv6`,
    /// `link-local-overlap`, `duplicate-name`, `duplicate-address`, `peer-field-conflict`,
    /// `next-hop-not-on-link`, and two pools overlapping (`overlapping-prefixes`' other
    /// findings may be allowed). `docs/rules.md` says of each rule whether it can be allowed.
    ///
    /// ## Why is this bad?
    /// What calplan would write from such an intent is a guess or something Calico refuses:
    /// allowing the finding would only move the failure to `apply`.
    ///
    /// ## Example
    /// ```yaml
    /// allow:
    ///   - {rule: cidr-not-strictly-masked, reason: "…"}   # fix the CIDR instead
    /// ```
    pub static RULE = ("E0802", "rule-not-allowable", Error, "an `allow` entry for findings that cannot be allowed");
}
