//! Rule descriptors: the stable code, name and documentation behind every diagnostic.

use crate::Severity;

/// A kind of problem calplan reports, with a stable code (`E0104`) and kebab-case name
/// (`pool-smaller-than-block`).
///
/// Codes never change meaning once released; a retired rule keeps its code reserved.
/// `docs` is the rule's documentation in Markdown (what it does, why it matters, an example),
/// taken from the doc comment on its declaration.
#[derive(Debug)]
pub struct Rule {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
    pub docs: &'static str,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.code == other.code
    }
}

impl Eq for Rule {}

/// Declares a `pub static` [`Rule`] whose `docs` come from the doc comment above it, so the
/// rule reference can be generated from the code.
///
/// ```ignore
/// declare_rule! {
///     /// ## What it does
///     /// Checks that ...
///     pub static POOL_SMALLER_THAN_BLOCK = ("E0104", "pool-smaller-than-block", Error,
///         "the pool is smaller than one of its blocks");
/// }
/// ```
#[macro_export]
macro_rules! declare_rule {
    (
        $(#[doc = $doc:literal])*
        $vis:vis static $ident:ident = ($code:literal, $name:literal, $severity:ident, $summary:literal);
    ) => {
        $(#[doc = $doc])*
        $vis static $ident: $crate::Rule = $crate::Rule {
            code: $code,
            name: $name,
            severity: $crate::Severity::$severity,
            summary: $summary,
            docs: concat!($($doc, "\n"),*),
        };
    };
}
