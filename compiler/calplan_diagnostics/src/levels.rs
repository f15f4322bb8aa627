//! Severity overrides, as linters have them: a rule's findings allowed (taken out of the report
//! and counted), made warnings, or made errors, from the command line (`--allow`, `--warn`,
//! `--deny`) or from the intent's `allow:` list. Resolving rule names is the caller's (the
//! rule registry is in `calplan_validate`); this module only carries the decisions.

use crate::Diagnostic;

/// What to do with a rule's findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Not reported; counted, and listed where a reviewer looks.
    Allow,
    Warn,
    Deny,
}

impl Level {
    /// The flag that sets it: `allow`, `warn`, `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Allow => "allow",
            Level::Warn => "warn",
            Level::Deny => "deny",
        }
    }
}

/// Where a level was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `--allow`, `--warn` or `--deny`.
    CommandLine,
    /// The intent's `allow:` entry of this index, with its reason.
    Intent { index: usize, reason: String },
}

/// A rule's level and where it was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub level: Level,
    pub origin: Origin,
}

/// A finding taken out of the report, with the setting that allowed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowed {
    pub diagnostic: Diagnostic,
    pub origin: Origin,
}

/// `3 findings allowed (2 × E0402 routes-not-propagated, 1 × W0407 selector-matches-nothing)`,
/// or `None` when none was.
pub fn allowed_summary(allowed: &[Allowed]) -> Option<String> {
    if allowed.is_empty() {
        return None;
    }
    let mut counts: std::collections::BTreeMap<(&str, &str), usize> = std::collections::BTreeMap::new();
    for finding in allowed {
        *counts.entry((finding.diagnostic.rule.code, finding.diagnostic.rule.name)).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|((code, name), count)| format!("{count} × {code} {name}")).collect();
    let plural = if allowed.len() == 1 { "finding" } else { "findings" };
    Some(format!("{} {plural} allowed ({})", allowed.len(), parts.join(", ")))
}
