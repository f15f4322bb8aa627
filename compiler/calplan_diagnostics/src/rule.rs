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
    /// Whether `--allow`, `--warn` and the intent's `allow:` list may allow the rule's findings
    /// or lower them to warnings (`--deny` may always raise them). See [`overridable_by_group`].
    pub overridable: bool,
}

/// Whether a rule of this code may be overridden, by its group: never the rules that mean an
/// input could not be read as what it claims to be — `E00xx` YAML and schema, `E01xx` values
/// that do not resolve, `E07xx` current state — nor the severity overrides' own (`E08xx`),
/// because what follows from such an input is a guess. Rules of the other groups may, unless
/// declared `fixed` (their finding means Calico or a checker would refuse an artifact).
pub const fn overridable_by_group(code: &str) -> bool {
    let bytes = code.as_bytes();
    if bytes.len() < 3 || bytes[1] != b'0' {
        return true;
    }
    !matches!(bytes[2], b'0' | b'1' | b'7' | b'8')
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.code == other.code
    }
}

impl Eq for Rule {}

/// Declares a `pub static` [`Rule`] whose `docs` come from the doc comment above it, so the
/// rule reference can be generated from the code. A trailing `fixed` makes the rule one whose
/// findings cannot be allowed or lowered to warnings (see [`overridable_by_group`] for the
/// groups that are fixed anyway).
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
            overridable: $crate::overridable_by_group($code),
        };
    };
    (
        $(#[doc = $doc:literal])*
        $vis:vis static $ident:ident = ($code:literal, $name:literal, $severity:ident, $summary:literal, fixed);
    ) => {
        $(#[doc = $doc])*
        $vis static $ident: $crate::Rule = $crate::Rule {
            code: $code,
            name: $name,
            severity: $crate::Severity::$severity,
            summary: $summary,
            docs: concat!($($doc, "\n"),*),
            overridable: false,
        };
    };
}
