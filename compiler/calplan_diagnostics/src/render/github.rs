use crate::{Allowed, Diagnostic, SourceMap};
use std::fmt::Write;

/// GitHub Actions workflow commands, one per diagnostic:
/// `::error file=intent.yaml,line=3,col=9,endLine=3,endColumn=20,title=E0102 …::message`.
/// GitHub shows them as annotations on the offending line of the pull request. Allowed findings
/// are counted in one `::notice::`, so that nothing is hidden without a trace.
pub fn github(diagnostics: &[Diagnostic], allowed: &[Allowed], sources: &SourceMap) -> String {
    let mut out = String::new();
    if let Some(summary) = crate::allowed_summary(allowed) {
        let _ = writeln!(out, "::notice title=calplan::{}", escape_data(&summary));
    }
    for diagnostic in diagnostics {
        let span = diagnostic.span();
        let start = sources.line_col(span);
        let end = sources.file(span.file).line_col(span.end as usize);
        let mut message = diagnostic.message.clone();
        if let Some(help) = &diagnostic.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        let title = format!("{} {}", diagnostic.rule.code, diagnostic.rule.name);
        let _ = writeln!(
            out,
            "::{} file={},line={},col={},endLine={},endColumn={},title={}::{}",
            diagnostic.severity,
            escape_property(sources.file(span.file).name()),
            start.line,
            start.column,
            end.line,
            end.column,
            escape_property(&title),
            escape_data(&message),
        );
    }
    out
}

/// Escaping for a command's message, as the Actions toolkit does it.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escaping for a command's properties, which additionally reserve `:` and `,`.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_escape_separators() {
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
        assert_eq!(escape_data("one\ntwo: x"), "one%0Atwo: x");
    }
}
