use calplan_diagnostics::declare_rule;

declare_rule! {
    /// ## What it does
    /// Reports an entry of `spec.allow` whose `rule` is neither a rule's code (`E0402`) nor
    /// its name (`routes-not-propagated`), with the closest one if there is one. (`--allow`,
    /// `--warn` and `--deny` naming no rule stop the command with the same suggestion.)
    ///
    /// ## Why is this bad?
    /// The entry allows nothing, so the findings it was meant for still stop `compile`, and a
    /// misspelt rule would otherwise go unnoticed.
    ///
    /// ## Example
    /// ```yaml
    /// allow:
    ///   - {rule: routes-not-propagating, reason: "…"}   # routes-not-propagated
    /// ```
    pub static RULE = ("E0801", "unknown-rule", Error, "an `allow` entry naming no rule");
}
