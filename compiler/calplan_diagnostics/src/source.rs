//! Source files and byte spans.

use std::fmt;

/// Identifies one file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u32);

/// A byte range `start..end` inside one source file.
///
/// Spans are cheap to copy and carry no text; resolve them through the [`SourceMap`] that
/// owns the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        let clamp = |offset: usize| u32::try_from(offset).unwrap_or(u32::MAX);
        Span { file, start: clamp(start), end: clamp(end.max(start)) }
    }

    /// A span that covers both `self` and `other` (which must be in the same file).
    pub fn to(self, other: Span) -> Span {
        Span { file: self.file, start: self.start.min(other.start), end: self.end.max(other.end) }
    }

    /// A sub-range of this span, given as byte offsets relative to its start.
    pub fn sub(self, start: usize, end: usize) -> Span {
        let base = self.start as usize;
        Span::new(self.file, base + start, (base + end).min(self.end as usize).max(base + start))
    }

    /// Whether `other` lies within this span (same file).
    pub fn contains(self, other: Span) -> bool {
        self.file == other.file && self.start <= other.start && other.end <= self.end
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

/// A 1-based line and column; the column counts characters, not bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for LineCol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One file's name and text, with its line starts indexed for position lookups.
#[derive(Debug)]
pub struct SourceFile {
    name: String,
    text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    fn new(name: String, text: String) -> SourceFile {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(index, _)| index + 1)).collect();
        SourceFile { name, text, line_starts }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The 1-based line and character column of a byte offset.
    pub fn line_col(&self, offset: usize) -> LineCol {
        let offset = offset.min(self.text.len());
        let line_index = match self.line_starts.binary_search(&offset) {
            Ok(index) => index,
            Err(index) => index - 1,
        };
        let line_start = self.line_starts[line_index];
        let mut boundary = offset;
        while !self.text.is_char_boundary(boundary) {
            boundary -= 1;
        }
        let column = self.text[line_start..boundary].chars().count() + 1;
        LineCol { line: line_index + 1, column }
    }

    /// Masks `start..end` so that no snippet shows it. Every character becomes one of the same
    /// UTF-8 length, so byte spans, lines and columns stay where they were.
    fn redact(&mut self, start: usize, end: usize) {
        let end = end.min(self.text.len());
        if start >= end || !self.text.is_char_boundary(start) || !self.text.is_char_boundary(end) {
            return;
        }
        let masked: String = self.text[start..end]
            .chars()
            .map(|c| match c {
                '\n' | '\r' => c,
                _ => match c.len_utf8() {
                    1 => '*',
                    2 => '\u{00b7}',
                    3 => '\u{2022}',
                    _ => '\u{1f512}',
                },
            })
            .collect();
        self.text.replace_range(start..end, &masked);
    }

    /// The byte offset where the 1-based line starts (the end of the text past the last line).
    pub fn line_start(&self, line: usize) -> usize {
        self.line_starts.get(line.saturating_sub(1)).copied().unwrap_or(self.text.len())
    }

    /// The text of the 1-based line, without its line break.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts.get(line - 1).copied().unwrap_or(self.text.len());
        let end = self.line_starts.get(line).map_or(self.text.len(), |next| next - 1);
        self.text[start..end.max(start)].trim_end_matches('\r')
    }
}

/// Every file a run has read: the intent and any current-state sources.
#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).expect("fewer than 2^32 source files"));
        self.files.push(SourceFile::new(name.into(), text.into()));
        id
    }

    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate().map(|(index, file)| (FileId(index as u32), file))
    }

    /// Masks the text under each span (a secret written where it does not belong), for every
    /// renderer that shows source lines. Positions are unchanged.
    pub fn redact(&mut self, spans: &[Span]) {
        for span in spans {
            if let Some(file) = self.files.get_mut(span.file.0 as usize) {
                file.redact(span.start as usize, span.end as usize);
            }
        }
    }

    /// The text a span covers.
    pub fn slice(&self, span: Span) -> &str {
        let text = self.file(span.file).text();
        text.get(span.start as usize..span.end as usize).unwrap_or("")
    }

    pub fn line_col(&self, span: Span) -> LineCol {
        self.file(span.file).line_col(span.start as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_from_one() {
        let mut map = SourceMap::new();
        let id = map.add("a.yaml", "a: 1\nbé: x\n");
        let file = map.file(id);
        assert_eq!(file.line_col(0), LineCol { line: 1, column: 1 });
        assert_eq!(file.line_col(5), LineCol { line: 2, column: 1 });
        // `x` sits after the two-byte `é`: byte 10, character column 5.
        assert_eq!(file.line_col(10), LineCol { line: 2, column: 5 });
        assert_eq!(file.line_text(2), "bé: x");
        assert_eq!(file.line_col(100), LineCol { line: 3, column: 1 });
    }

    #[test]
    fn redaction_keeps_positions() {
        let mut map = SourceMap::new();
        let text = "password: hé€😀x\nnext: 1\n";
        let id = map.add("a.yaml", text);
        let value = text.find('h').unwrap();
        map.redact(&[Span::new(id, value, text.find('\n').unwrap())]);
        let file = map.file(id);
        assert_eq!(file.text().len(), text.len());
        assert!(!file.text().contains("hé"), "{}", file.text());
        assert_eq!(file.line_text(2), "next: 1");
        assert_eq!(file.line_col(text.find("next").unwrap()), LineCol { line: 2, column: 1 });
        assert_eq!(file.line_text(1).chars().count(), "password: hé€😀x".chars().count());
    }
}
