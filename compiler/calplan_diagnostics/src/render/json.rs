use crate::{Allowed, Diagnostic, Origin, SourceMap};
use serde::Serialize;

#[derive(Serialize)]
struct Report<'a> {
    diagnostics: Vec<Entry<'a>>,
    /// Findings an `allow` took out of the report; absent when none was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed: Vec<AllowedEntry<'a>>,
}

/// An allowed finding: the same keys, and who allowed it and why.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AllowedEntry<'a> {
    #[serde(flatten)]
    entry: Entry<'a>,
    /// `intent` (its `allow:` list) or `command line` (`--allow`).
    allowed_by: &'static str,
    /// The intent entry's reason; `null` for `--allow`.
    reason: Option<&'a str>,
}

/// One diagnostic as `check --format json` prints it (SPEC §2): exactly these keys.
#[derive(Serialize)]
struct Entry<'a> {
    code: &'static str,
    name: &'static str,
    severity: crate::Severity,
    message: &'a str,
    file: &'a str,
    line: usize,
    column: usize,
    help: Option<&'a str>,
}

/// `{"diagnostics": [{"code", "name", "severity", "message", "file", "line", "column", "help"}]}`
/// with the 1-based line and column of each offending value, and, when findings were allowed,
/// `"allowed"`: the same keys for each, plus `allowedBy` and `reason`.
pub fn json(diagnostics: &[Diagnostic], allowed: &[Allowed], sources: &SourceMap) -> String {
    fn entry<'a>(diagnostic: &'a Diagnostic, sources: &'a SourceMap) -> Entry<'a> {
        let span = diagnostic.span();
        let position = sources.line_col(span);
        Entry {
            code: diagnostic.rule.code,
            name: diagnostic.rule.name,
            severity: diagnostic.severity,
            message: &diagnostic.message,
            file: sources.file(span.file).name(),
            line: position.line,
            column: position.column,
            help: diagnostic.help.as_deref(),
        }
    }
    let report = Report {
        diagnostics: diagnostics.iter().map(|diagnostic| entry(diagnostic, sources)).collect(),
        allowed: allowed
            .iter()
            .map(|finding| {
                let (allowed_by, reason) = match &finding.origin {
                    Origin::CommandLine => ("command line", None),
                    Origin::Intent { reason, .. } => ("intent", Some(reason.as_str())),
                };
                AllowedEntry { entry: entry(&finding.diagnostic, sources), allowed_by, reason }
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&report).expect("diagnostics serialize");
    text.push('\n');
    text
}
