use crate::{Diagnostic, Severity, SourceFile, SourceMap};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};
use std::fmt::{self, Write};

/// rustc-style text through miette: the message, the source line with the offending value
/// underlined, secondary labels, and the help line. `color` selects ANSI styling; snapshots
/// and pipes use plain text.
pub fn human(diagnostics: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100).with_links(false);
    let mut out = String::new();
    for diagnostic in diagnostics {
        let report = Report { diagnostic, file: sources.file(diagnostic.span().file), sources };
        if handler.render_report(&mut out, &report).is_err() {
            // miette only fails on a span outside the file; fall back to a plain line.
            let position = sources.line_col(diagnostic.span());
            let _ = writeln!(out, "{}: {} at {}", diagnostic.severity, diagnostic.message, position);
        }
        out.push('\n');
    }
    out
}

/// Text as one line: a value quoted in a message may hold a line break or a terminal escape,
/// which would forge output lines (or colours); such characters are shown escaped, as `\n`.
fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    let control = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !text.chars().any(control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(text.chars().map(|c| if control(c) { c.escape_default().to_string() } else { c.to_string() }).collect())
}

/// Adapts one [`Diagnostic`] to miette's trait.
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    file: &'a SourceFile,
    sources: &'a SourceMap,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diagnostic, f)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = self.diagnostic.rule;
        write!(f, "{}[{}]: {}", self.diagnostic.severity, rule.code, one_line(&self.diagnostic.message))
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        // Labels in other files cannot be drawn in this snippet; name them in the help text.
        let elsewhere: Vec<String> = self
            .diagnostic
            .secondary
            .iter()
            .filter(|label| label.span.file != self.diagnostic.span().file)
            .map(|label| {
                let file = self.sources.file(label.span.file);
                let position = file.line_col(label.span.start as usize);
                let message = label.message.as_deref().unwrap_or("related");
                format!("{message} ({}:{position})", file.name())
            })
            .collect();
        let mut text = one_line(self.diagnostic.help.as_deref().unwrap_or_default()).into_owned();
        for line in elsewhere {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str("see: ");
            text.push_str(&line);
        }
        (!text.is_empty()).then(|| Box::new(text) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let file = self.diagnostic.span().file;
        let to_source_span = |span: crate::Span| SourceSpan::from((span.start as usize, span.len()));
        let label = |message: &Option<String>| message.as_deref().map(|message| one_line(message).into_owned());
        let primary =
            LabeledSpan::new_primary_with_span(label(&self.diagnostic.primary.message), to_source_span(self.diagnostic.primary.span));
        let secondary = self
            .diagnostic
            .secondary
            .iter()
            .filter(move |label| label.span.file == file)
            .map(move |secondary| LabeledSpan::new_with_span(label(&secondary.message), to_source_span(secondary.span)));
        Some(Box::new(std::iter::once(primary).chain(secondary)))
    }
}

impl SourceCode for Report<'_> {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let contents = self.file.text().read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.file.name().to_string(),
            contents.data(),
            *contents.span(),
            contents.line(),
            contents.column(),
            contents.line_count(),
        )))
    }
}
