use crate::{Diagnostic, SourceMap};
use serde::Serialize;

#[derive(Serialize)]
struct Report<'a> {
    diagnostics: Vec<Entry<'a>>,
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
/// with the 1-based line and column of each offending value.
pub fn json(diagnostics: &[Diagnostic], sources: &SourceMap) -> String {
    let report = Report {
        diagnostics: diagnostics
            .iter()
            .map(|diagnostic| {
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
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&report).expect("diagnostics serialize");
    text.push('\n');
    text
}
