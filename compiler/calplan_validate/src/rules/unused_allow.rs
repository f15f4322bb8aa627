use calplan_diagnostics::declare_rule;

declare_rule! {
    /// ## What it does
    /// Reports an entry of `spec.allow` that allowed no finding: its rule reports nothing for
    /// this intent (any more).
    ///
    /// ## Why is this bad?
    /// An allowance outliving its finding would hide the next one of that rule without anyone
    /// reviewing it. Remove the entry once the finding is fixed.
    ///
    /// ## Example
    /// ```yaml
    /// allow:
    ///   - {rule: session-not-established, reason: "peer fixed in CHG-1234"}   # nothing to allow
    /// ```
    pub static RULE = ("W0803", "unused-allow", Warning, "an `allow` entry that allows nothing");
}
