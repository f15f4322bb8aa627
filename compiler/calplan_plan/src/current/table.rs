//! Text tables as calicoctl prints them, cut into located cells.
//!
//! Two layouts exist in the wild, and both are read:
//! - bordered: `+---+` borders and `| a | b |` rows, from `olekukonko/tablewriter` (calicoctl
//!   v3.32 and older: `ipam show`, `node status`) and from `go-pretty` (newer calicoctl, whose
//!   default style draws the same ASCII borders). Long cells are wrapped onto continuation
//!   lines whose first cell is empty; those are joined back, word by word, with a space.
//!   A border inside the body also ends a row (go-pretty's `SeparateRows`).
//! - aligned: `text/tabwriter` output (`calicoctl get … -o wide`), columns padded with spaces
//!   and starting at the offsets of the header's names. Header names are separated by two or
//!   more spaces, so a name may hold single spaces (`IPS IN USE`).
//!
//! Blank lines and `#` comment lines are skipped. Cells keep their spans so a reader can
//! point at the one it could not read. Pure: text in, cells and diagnostics out.

use crate::current::calico_yaml::UNREADABLE_STATE;
use calplan_diagnostics::{Diagnostic, Diagnostics, FileId, Span};

/// One cell: its text (continuation lines joined) and where its first line sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub span: Span,
}

/// One row: its cells, in header order, and the span of its first line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub cells: Vec<Cell>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub columns: Vec<Cell>,
    pub rows: Vec<Row>,
    /// The header line, for diagnostics about a missing column.
    pub header_span: Span,
}

impl Table {
    /// The index of the column named `name` (case-insensitive, spaces as printed).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|column| column.text.eq_ignore_ascii_case(name))
    }

    /// The names of the columns, for messages.
    pub fn column_names(&self) -> String {
        self.columns.iter().map(|column| format!("`{}`", column.text)).collect::<Vec<_>>().join(", ")
    }
}

/// A line of the input with its byte offset, without its line break.
struct Line<'a> {
    text: &'a str,
    start: usize,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut start = 0;
    let mut lines = Vec::new();
    for raw in text.split_inclusive('\n') {
        let content = raw.trim_end_matches(['\n', '\r']);
        lines.push(Line { text: content, start });
        start += raw.len();
    }
    lines
}

fn is_significant(line: &str) -> bool {
    let trimmed = line.trim();
    !trimmed.is_empty() && !trimmed.starts_with('#')
}

fn is_border(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.starts_with('+') && trimmed.chars().all(|c| matches!(c, '+' | '-' | '='))
}

/// Reads a table; `what` names the command whose output is expected, for messages.
pub fn read(file: FileId, text: &str, what: &str, diagnostics: &mut Diagnostics) -> Option<Table> {
    let all = lines(text);
    let significant: Vec<&Line> = all.iter().filter(|line| is_significant(line.text)).collect();
    let Some(first) = significant.first() else {
        diagnostics.push(
            Diagnostic::new(&UNREADABLE_STATE, Span::new(file, 0, 0), format!("the file holds no table; expected {what}"))
                .label("empty")
                .help(format!("save the output of {what} into this file")),
        );
        return None;
    };
    let trimmed = first.text.trim_start();
    if trimmed.starts_with('+') || trimmed.starts_with('|') {
        read_bordered(file, &significant, what, diagnostics)
    } else {
        read_aligned(file, &significant, what, diagnostics)
    }
}

fn line_span(file: FileId, line: &Line) -> Span {
    Span::new(file, line.start, line.start + line.text.len())
}

/// The cells of a `| a | b |` line, or `None` when the line is not one.
fn bordered_cells(file: FileId, line: &Line) -> Option<Vec<Cell>> {
    let content = line.text.trim_end();
    let leading = content.len() - content.trim_start().len();
    let inner = content.trim_start().strip_prefix('|')?.strip_suffix('|')?;
    let mut cells = Vec::new();
    let mut offset = line.start + leading + 1;
    for piece in inner.split('|') {
        let text = piece.trim();
        let start = offset + (piece.len() - piece.trim_start().len());
        cells.push(Cell { text: text.to_string(), span: Span::new(file, start, start + text.len()) });
        offset += piece.len() + 1;
    }
    Some(cells)
}

fn read_bordered(file: FileId, lines: &[&Line], what: &str, diagnostics: &mut Diagnostics) -> Option<Table> {
    let mut header: Option<(Vec<Cell>, Span)> = None;
    let mut header_done = false;
    let mut rows: Vec<Row> = Vec::new();
    // Whether the next `|` line starts a row even if its first cell is empty.
    let mut row_open = false;
    let mut failed = false;
    for line in lines {
        if is_border(line.text) {
            if header.is_some() {
                header_done = true;
            }
            row_open = false;
            continue;
        }
        let Some(cells) = bordered_cells(file, line) else {
            diagnostics.push(
                Diagnostic::new(&UNREADABLE_STATE, line_span(file, line), format!("expected a row of {what}"))
                    .label("expected `| … |` or a `+---+` border")
                    .help("pass the table exactly as calicoctl printed it"),
            );
            failed = true;
            continue;
        };
        if !header_done {
            match &mut header {
                None => header = Some((cells, line_span(file, line))),
                Some((columns, _)) => join_cells(columns, cells),
            }
            continue;
        }
        let columns = header.as_ref().map_or(0, |(columns, _)| columns.len());
        if cells.len() != columns {
            diagnostics.push(
                Diagnostic::new(
                    &UNREADABLE_STATE,
                    line_span(file, line),
                    format!("this row has {} cells but the header has {columns}", cells.len()),
                )
                .label(format!("expected {columns} cells"))
                .help(format!("pass {what} unedited")),
            );
            failed = true;
            continue;
        }
        let continues = row_open && cells[0].text.is_empty() && !rows.is_empty();
        if continues {
            let last = rows.last_mut().expect("a row to continue");
            join_cells(&mut last.cells, cells);
        } else if cells.iter().any(|cell| !cell.text.is_empty()) {
            rows.push(Row { cells, span: line_span(file, line) });
            row_open = true;
        }
    }
    let Some((columns, header_span)) = header else {
        let span = lines.first().map_or(Span::new(file, 0, 0), |line| line_span(file, line));
        diagnostics.push(
            Diagnostic::new(&UNREADABLE_STATE, span, format!("no header row; expected {what}"))
                .label("expected a `| NAME | … |` header between borders"),
        );
        return None;
    };
    (!failed).then_some(Table { columns, rows, header_span })
}

/// Appends each non-empty cell of a continuation line to the cell above it.
fn join_cells(into: &mut [Cell], from: Vec<Cell>) {
    for (cell, more) in into.iter_mut().zip(from) {
        if more.text.is_empty() {
            continue;
        }
        if cell.text.is_empty() {
            *cell = more;
        } else {
            cell.text.push(' ');
            cell.text.push_str(&more.text);
        }
    }
}

/// Column starts (in characters) of an aligned header: where a name begins after the start of
/// the line or after two or more spaces.
fn aligned_columns(file: FileId, line: &Line) -> Vec<(usize, Cell)> {
    let chars: Vec<(usize, char)> = line.text.char_indices().collect();
    let mut columns = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        if chars[index].1.is_whitespace() {
            index += 1;
            continue;
        }
        let start = index;
        let mut end = index;
        // A name runs on through single spaces.
        while end < chars.len() {
            if chars[end].1.is_whitespace() {
                let next = chars.get(end + 1).map(|(_, c)| *c);
                if next.is_none_or(char::is_whitespace) {
                    break;
                }
            }
            end += 1;
        }
        let byte_start = chars[start].0;
        let byte_end = chars.get(end).map_or(line.text.len(), |(offset, _)| *offset);
        let text = line.text[byte_start..byte_end].to_string();
        columns.push((start, Cell { text, span: Span::new(file, line.start + byte_start, line.start + byte_end) }));
        index = end;
    }
    columns
}

fn read_aligned(file: FileId, lines: &[&Line], what: &str, diagnostics: &mut Diagnostics) -> Option<Table> {
    let header_line = lines[0];
    let columns = aligned_columns(file, header_line);
    let starts: Vec<usize> = columns.iter().map(|(start, _)| *start).collect();
    let mut rows = Vec::new();
    let mut failed = false;
    for line in &lines[1..] {
        match aligned_cells(file, line, &starts) {
            Some(cells) => rows.push(Row { cells, span: line_span(file, line) }),
            None => {
                diagnostics.push(
                    Diagnostic::new(
                        &UNREADABLE_STATE,
                        line_span(file, line),
                        format!("this row does not line up with the header's {} columns", starts.len()),
                    )
                    .label("expected one value under each column name")
                    .help(format!("pass {what} unedited, with the spaces calicoctl aligned it with")),
                );
                failed = true;
            }
        }
    }
    let header_span = line_span(file, header_line);
    (!failed).then(|| Table { columns: columns.into_iter().map(|(_, cell)| cell).collect(), rows, header_span })
}

/// Cuts a row at the header's column starts. Every start must fall at the beginning of a value
/// or on padding, and no value may hold a space (none does in calicoctl's `get` tables);
/// otherwise each whitespace-separated value goes to the nearest column start.
fn aligned_cells(file: FileId, line: &Line, starts: &[usize]) -> Option<Vec<Cell>> {
    let chars: Vec<(usize, char)> = line.text.char_indices().collect();
    let byte_at = |index: usize| chars.get(index).map_or(line.text.len(), |(offset, _)| *offset);
    let aligned = starts.iter().skip(1).all(|&start| start >= chars.len() || chars[start - 1].1.is_whitespace());
    if aligned {
        let cells: Vec<Cell> = starts
            .iter()
            .enumerate()
            .map(|(index, &start)| {
                let end = starts.get(index + 1).copied().unwrap_or(chars.len()).min(chars.len());
                let (from, to) = (byte_at(start.min(chars.len())), byte_at(end));
                let piece = &line.text[from..to.max(from)];
                let text = piece.trim();
                let offset = from + (piece.len() - piece.trim_start().len());
                Cell { text: text.to_string(), span: Span::new(file, line.start + offset, line.start + offset + text.len()) }
            })
            .collect();
        if cells.iter().all(|cell| !cell.text.contains(char::is_whitespace)) {
            return Some(cells);
        }
    }
    // Hand-edited or re-indented tables drift by a space or two: give each value the column
    // whose start is nearest, in order, leaving the columns no value reached empty.
    let mut cells: Vec<Cell> =
        (0..starts.len()).map(|_| Cell { text: String::new(), span: Span::new(file, line.start, line.start) }).collect();
    let mut next_column = 0;
    let mut offset = 0;
    for word in line.text.split_whitespace() {
        let position = offset + line.text[offset..].find(word).unwrap_or(0);
        offset = position + word.len();
        let char_position = line.text[..position].chars().count();
        let column = (next_column..starts.len()).min_by_key(|&column| starts[column].abs_diff(char_position))?;
        cells[column] = Cell { text: word.to_string(), span: Span::new(file, line.start + position, line.start + offset) };
        next_column = column + 1;
    }
    Some(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        let mut diagnostics = Diagnostics::new();
        let table = read(FileId(0), text, "a table", &mut diagnostics);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        table.expect("a table")
    }

    fn texts(row: &Row) -> Vec<&str> {
        row.cells.iter().map(|cell| cell.text.as_str()).collect()
    }

    #[test]
    fn wrapped_cells_are_joined() {
        // calicoctl issue 1883: tablewriter wraps a long INFO cell onto a continuation line.
        let text = "\
+----------------+-------------------+-------+----------+--------------------------------+
|  PEER ADDRESS  |     PEER TYPE     | STATE |  SINCE   |              INFO              |
+----------------+-------------------+-------+----------+--------------------------------+
| 192.168.63.204 | node-to-node mesh | start | 17:19:38 | Active Socket: Connection      |
|                |                   |       |          | refused                        |
+----------------+-------------------+-------+----------+--------------------------------+
";
        let table = table(text);
        assert_eq!(table.column("peer address"), Some(0));
        assert_eq!(table.rows.len(), 1);
        assert_eq!(
            texts(&table.rows[0]),
            ["192.168.63.204", "node-to-node mesh", "start", "17:19:38", "Active Socket: Connection refused"]
        );
        let span = table.rows[0].cells[0].span;
        assert_eq!(&text[span.start as usize..span.end as usize], "192.168.63.204");
    }

    #[test]
    fn aligned_columns_keep_empty_cells() {
        let text = "NAME   CIDR          NAT     SELECTOR   \nпул    10.0.1.0/24           all()      \n";
        let table = table(text);
        assert_eq!(texts(&table.rows[0]), ["пул", "10.0.1.0/24", "", "all()"]);
    }

    #[test]
    fn a_misaligned_row_is_located() {
        let mut diagnostics = Diagnostics::new();
        let text = "NAME   CIDR\nx y z\n";
        // Three values, two columns: the third has no column left.
        assert!(read(FileId(0), text, "a table", &mut diagnostics).is_none());
        let diagnostic = diagnostics.iter().next().unwrap();
        assert_eq!(diagnostic.span().start, 12);
    }
}
