use crate::{Diagnostic, Severity, SourceFile, SourceMap, Span};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};
use std::fmt::{self, Write};

/// A source line longer than this many bytes is shown as a window around the offending value.
const MAX_LINE_BYTES: usize = 240;
/// A span over more lines than this is shown by its first line only.
const MAX_SPAN_LINES: usize = 12;
/// Characters shown before and after the start of the offending value in a window.
const WINDOW_BEFORE: usize = 40;
const WINDOW_AFTER: usize = 80;

/// rustc-style text through miette: the message, the source line with the offending value
/// underlined, secondary labels, and the help line. `color` selects ANSI styling; snapshots
/// and pipes use plain text. Where the lines to show are very long or many (a value of
/// megabytes on one line), the snippet is a window of the primary line around the value, and
/// secondary labels are named in the help text instead.
pub fn human(diagnostics: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100).with_links(false);
    let mut out = String::new();
    for diagnostic in diagnostics {
        let file = sources.file(diagnostic.span().file);
        let window = needs_window(diagnostic, file).then(|| Window::around(file, diagnostic.span()));
        let report = Report { diagnostic, file, sources, window };
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
    /// The snippet when the file's own lines are too long to show.
    window: Option<Window>,
}

/// Whether showing the lines a diagnostic's labels (and their context lines) cover would repeat
/// too much of the input.
fn needs_window(diagnostic: &Diagnostic, file: &SourceFile) -> bool {
    let spans = std::iter::once(diagnostic.span())
        .chain(diagnostic.secondary.iter().map(|label| label.span))
        .filter(|span| span.file == diagnostic.span().file);
    spans.into_iter().any(|span| {
        let first = file.line_col(span.start as usize).line;
        let last = file.line_col(span.end as usize).line;
        last - first > MAX_SPAN_LINES || (first.saturating_sub(1).max(1)..=last + 1).any(|line| file.line_text(line).len() > MAX_LINE_BYTES)
    })
}

/// A piece of one source line around a span, with `…` where it was cut, and where it sits in
/// the file.
struct Window {
    text: String,
    /// The span in the window's own offsets.
    span: SourceSpan,
    /// The file's byte offset of the window's first character after any leading `…`.
    start: usize,
    /// The length of the leading `…`, if any.
    prefix: usize,
    /// The 0-based line the window is from.
    line: usize,
}

impl Window {
    fn around(file: &SourceFile, span: Span) -> Window {
        let text = file.text();
        // A reader that located its finding in bytes another decoding counted (a JSON parser's
        // column over a value with invalid UTF-8, say) may point inside a character: the
        // window starts at that character.
        let at = char_boundary_at_or_before(text, span.start as usize);
        let line_start = text[..at].rfind('\n').map_or(0, |index| index + 1);
        let line_end = text[at..].find('\n').map_or(text.len(), |index| at + index);
        let start = text[line_start..at].char_indices().rev().nth(WINDOW_BEFORE - 1).map_or(line_start, |(index, _)| line_start + index);
        let end = text[at..line_end].char_indices().nth(WINDOW_AFTER).map_or(line_end, |(index, _)| at + index);
        let prefix = if start > line_start { "…" } else { "" };
        let suffix = if end < line_end { "…" } else { "" };
        let window_text = format!("{prefix}{}{suffix}", &text[start..end]);
        let span_end = char_boundary_at_or_before(text, span.end as usize).clamp(at, end);
        Window {
            text: window_text,
            span: SourceSpan::from((prefix.len() + at - start, span_end - at)),
            start,
            prefix: prefix.len(),
            line: file.line_col(at).line - 1,
        }
    }
}

/// The last character boundary of `text` at or before `offset` (`str::floor_char_boundary`,
/// which needs a newer Rust than the project's minimum).
fn char_boundary_at_or_before(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
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
        // Labels in other files cannot be drawn in this snippet, nor any but the primary one in
        // a window; name them in the help text.
        let elsewhere: Vec<String> = self
            .diagnostic
            .secondary
            .iter()
            .filter(|label| self.window.is_some() || label.span.file != self.diagnostic.span().file)
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
        if let Some(window) = &self.window {
            let primary = LabeledSpan::new_primary_with_span(self.diagnostic.primary.message.clone(), window.span);
            return Some(Box::new(std::iter::once(primary)));
        }
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
        if let Some(window) = &self.window {
            // The whole window, one line; its column is the file's, for the header.
            let offset = span.offset().saturating_sub(window.prefix).min(window.text.len() - window.prefix);
            let column = self.file.line_col(window.start + offset).column - 1;
            return Ok(Box::new(MietteSpanContents::new_named(
                self.file.name().to_string(),
                window.text.as_bytes(),
                SourceSpan::from((0, window.text.len())),
                window.line,
                column,
                1,
            )));
        }
        // miette finds lines by scanning from the start of the text it is given: given only
        // the lines around the span (a line more each side than it shows), a report costs the
        // size of its snippet, not of the file, however many reports a file has.
        let text = self.file.text();
        let start = span.offset().min(text.len());
        let end = (span.offset() + span.len()).min(text.len());
        let first_line = self.file.line_col(start).line.saturating_sub(context_lines_before + 1).max(1);
        let last_line = self.file.line_col(end).line + context_lines_after + 1;
        let (from, to) = (self.file.line_start(first_line), self.file.line_start(last_line + 1));
        let lines_before = first_line - 1;
        let shifted = SourceSpan::from((start - from, end - start));
        let contents = text[from..to].read_span(&shifted, context_lines_before, context_lines_after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.file.name().to_string(),
            contents.data(),
            SourceSpan::from((contents.span().offset() + from, contents.span().len())),
            contents.line() + lines_before,
            contents.column(),
            contents.line_count() + lines_before,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SourceMap, declare_rule};

    declare_rule! {
        /// A rule for the tests.
        pub static TEST_RULE = ("E9999", "test-rule", Error, "a rule for the tests");
    }

    /// A finding located in another decoding's bytes may start or end inside a character
    /// (here, inside `行`): it is drawn from that character, never a panic.
    #[test]
    fn a_span_inside_a_character_is_drawn_from_that_character() {
        let mut sources = SourceMap::new();
        let text = "{\"name\": \"也行\nx\"}";
        let file = sources.add("value.json", text);
        let inside = text.find('行').unwrap() + 1;
        for (start, end) in [(inside, inside), (inside, inside + 1), (0, inside)] {
            let diagnostic = Diagnostic::new(&TEST_RULE, crate::Span::new(file, start, end), "a control character");
            let rendered = human(&[diagnostic], &sources, false);
            assert!(rendered.contains("value.json:1:"), "{rendered}");
            assert!(rendered.contains("a control character"), "{rendered}");
        }
    }
}
