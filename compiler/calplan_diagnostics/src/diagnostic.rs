//! The one diagnostic type every phase produces.

use crate::{Rule, Span, echo};
use serde::Serialize;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A span with an optional message drawn under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: Option<String>,
}

/// One problem: which rule, where, what, and how to fix it.
///
/// Messages are lowercase with no trailing period and put names in backticks, or quote
/// Calico's own wording where Calico has one. Every text is bounded by [`echo::limit`] as it
/// is set, so no input value is repeated at length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub rule: &'static Rule,
    pub severity: Severity,
    pub message: String,
    pub primary: Label,
    pub secondary: Vec<Label>,
    pub help: Option<String>,
    /// Whether a severity override may allow this finding or lower it: the rule's
    /// [`Rule::overridable`], unless this finding is one the rule cannot let pass.
    pub overridable: bool,
}

impl Diagnostic {
    /// A diagnostic for `rule` at `span`, with the rule's default severity.
    pub fn new(rule: &'static Rule, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            rule,
            severity: rule.severity,
            message: echo::limit(&message.into()),
            primary: Label { span, message: None },
            secondary: Vec::new(),
            help: None,
            overridable: rule.overridable,
        }
    }

    /// Marks this finding as one no override may allow or lower, although its rule's others
    /// may be (two pools overlapping, which Calico refuses, among other overlaps it accepts).
    pub fn not_overridable(mut self) -> Diagnostic {
        self.overridable = false;
        self
    }

    /// The message drawn under the primary span.
    pub fn label(mut self, message: impl Into<String>) -> Diagnostic {
        self.primary.message = Some(echo::limit(&message.into()));
        self
    }

    pub fn secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label { span, message: Some(echo::limit(&message.into())) });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(echo::limit(&help.into()));
        self
    }

    pub fn severity(mut self, severity: Severity) -> Diagnostic {
        self.severity = severity;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub fn span(&self) -> Span {
        self.primary.span
    }

    /// The order diagnostics are reported in: by file and position, then by code.
    fn sort_key(&self) -> (u32, u32, &'static str, &str) {
        (self.primary.span.file.0, self.primary.span.start, self.rule.code, &self.message)
    }
}

/// A run's diagnostics, gathered from every phase rather than stopping at the first.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(other);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    /// Keeps, of the diagnostics pushed since there were `from` of them, only those `keep`
    /// accepts: for dropping the consequences of an error reported earlier.
    pub fn retain_since(&mut self, from: usize, mut keep: impl FnMut(&Diagnostic) -> bool) {
        let mut index = 0;
        self.items.retain(|diagnostic| {
            index += 1;
            index <= from || keep(diagnostic)
        });
    }

    /// Applies severity overrides, rule by rule: `Deny` makes a rule's findings errors, `Warn`
    /// warnings and `Allow` takes them out of the report, returning them (with the setting
    /// that allowed them) so that they can be counted and listed. A finding that is not
    /// overridable is only ever raised.
    pub fn apply_levels(&mut self, settings: &std::collections::BTreeMap<&'static str, crate::Setting>) -> Vec<crate::Allowed> {
        let mut allowed = Vec::new();
        let mut kept = Vec::with_capacity(self.items.len());
        for mut diagnostic in std::mem::take(&mut self.items) {
            match settings.get(diagnostic.rule.code) {
                Some(setting) if setting.level == crate::Level::Deny => diagnostic.severity = Severity::Error,
                Some(setting) if diagnostic.overridable && setting.level == crate::Level::Warn => diagnostic.severity = Severity::Warning,
                Some(setting) if diagnostic.overridable && setting.level == crate::Level::Allow => {
                    allowed.push(crate::Allowed { diagnostic, origin: setting.origin.clone() });
                    continue;
                }
                _ => {}
            }
            kept.push(diagnostic);
        }
        self.items = kept;
        allowed
    }

    /// Turns every warning into an error (`--deny-warnings`).
    pub fn deny_warnings(&mut self) {
        for diagnostic in &mut self.items {
            diagnostic.severity = Severity::Error;
        }
    }

    /// Sorts by position and drops exact duplicates, so output is deterministic whatever order
    /// the rules ran in.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        self.items.dedup();
        self.items
    }

    /// The one-line tally printed after human output: `2 errors, 1 warning`.
    pub fn summary(&self) -> String {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        format!("{}, {}", plural(self.error_count(), "error"), plural(self.warning_count(), "warning"))
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}
