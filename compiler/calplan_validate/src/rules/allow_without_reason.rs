use calplan_diagnostics::declare_rule;

declare_rule! {
    /// ## What it does
    /// Reports an entry of `spec.allow` whose `reason` is blank. The entry allows nothing
    /// until it says why.
    ///
    /// ## Why is this bad?
    /// An allowance is a decision a reviewer signs off on; without its reason nobody can tell
    /// later whether it still holds.
    ///
    /// ## Example
    /// ```yaml
    /// allow:
    ///   - {rule: routes-not-propagated, reason: ""}
    /// ```
    pub static RULE = ("E0804", "allow-without-reason", Error, "an `allow` entry without a reason");
}
