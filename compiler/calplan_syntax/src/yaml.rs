//! A YAML document as a tree with a span on every node, built from granit-parser's events.
//!
//! The tree keeps what serde would throw away and calplan needs for diagnostics: where each key
//! and value sits, how a scalar was written (plain or quoted), and any tag. Anchors are resolved
//! here, so an alias is a copy of its anchored node carrying the alias's span.

use calplan_diagnostics::{FileId, Span};
use granit_parser::{Event, Parser, ScalarStyle};
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub span: Span,
    pub tag: Option<Tag>,
    pub kind: NodeKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    Scalar { value: String, quoted: bool },
    Sequence(Vec<Node>),
    Mapping(Vec<Entry>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: Node,
    pub value: Node,
}

/// A tag as written in the source (`!has(route-reflector)`, `!!str`), with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Tag {
    pub text: String,
    pub span: Span,
    /// The YAML core-schema type the tag names (`str`, `int`, ...), if it names one.
    pub core: Option<String>,
}

/// A scalar resolved under YAML 1.2's core schema.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    String(&'a str),
}

#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
}

impl Node {
    pub fn as_mapping(&self) -> Option<&[Entry]> {
        match &self.kind {
            NodeKind::Mapping(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_sequence(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Sequence(items) => Some(items),
            _ => None,
        }
    }

    /// The scalar's text, whatever it resolves to.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|entry| &entry.value)
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_mapping()?.iter().find(|entry| entry.key.as_str() == Some(key))
    }

    /// Where a diagnostic about this node as a whole should point: a collection's first key or
    /// item rather than its whole extent, which for block collections runs over many lines.
    pub fn head_span(&self) -> Span {
        match &self.kind {
            NodeKind::Mapping(entries) => entries.first().map_or(self.span, |entry| entry.key.span),
            NodeKind::Sequence(items) => items.first().map_or(self.span, Node::head_span),
            NodeKind::Scalar { .. } => self.span,
        }
    }

    /// The scalar resolved under YAML 1.2's core schema: a quoted scalar is always a string;
    /// a plain one may be null, a boolean or a number. Tags other than core-schema ones are
    /// ignored here (callers report them).
    pub fn scalar(&self) -> Option<Scalar<'_>> {
        let NodeKind::Scalar { value, quoted } = &self.kind else { return None };
        let core = self.tag.as_ref().and_then(|tag| tag.core.as_deref());
        if *quoted || core == Some("str") {
            return Some(Scalar::String(value));
        }
        Some(resolve_plain(value))
    }

    /// A short description of what kind of node this is, for messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Mapping(_) => "a mapping",
            NodeKind::Sequence(_) => "a list",
            NodeKind::Scalar { .. } => match self.scalar() {
                Some(Scalar::Null) => "an empty value",
                Some(Scalar::Bool(_)) => "a boolean",
                Some(Scalar::Int(_)) => "an integer",
                Some(Scalar::Float(_)) => "a number",
                _ => "a string",
            },
        }
    }
}

fn resolve_plain(text: &str) -> Scalar<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Scalar::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty()
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && let Ok(int) = text.parse::<i128>()
    {
        return Scalar::Int(int);
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(int) = i128::from_str_radix(hex, 16)
    {
        return Scalar::Int(int);
    }
    if let Some(octal) = text.strip_prefix("0o")
        && let Ok(int) = i128::from_str_radix(octal, 8)
    {
        return Scalar::Int(int);
    }
    if looks_like_float(text)
        && let Ok(float) = text.parse::<f64>()
    {
        return Scalar::Float(float);
    }
    Scalar::String(text)
}

/// YAML 1.2 core schema floats: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn looks_like_float(text: &str) -> bool {
    let text = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(index) => (&text[..index], Some(&text[index + 1..])),
        None => (text, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            (!whole.is_empty() || !fraction.is_empty())
                && whole.bytes().all(|b| b.is_ascii_digit())
                && fraction.bytes().all(|b| b.is_ascii_digit())
                && !(whole.is_empty() && fraction.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|exponent| {
        let digits = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok && (mantissa.contains('.') || exponent.is_some())
}

/// Parses every document in `text`. An empty stream gives no documents.
pub fn parse(file: FileId, text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut builder = Builder { file, text, stack: Vec::new(), anchors: HashMap::new(), documents: Vec::new() };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|error| {
            let offset = byte_offset(text, error.marker().byte_offset(), error.marker().index());
            SyntaxError { span: Span::new(file, offset, offset), message: error.info().to_string() }
        })?;
        builder.event(event, span);
    }
    Ok(builder.documents)
}

fn byte_offset(text: &str, byte: Option<usize>, chars: usize) -> usize {
    byte.unwrap_or_else(|| text.char_indices().nth(chars).map_or(text.len(), |(index, _)| index))
}

enum Open {
    Sequence { start: usize, tag: Option<Tag>, anchor: usize, items: Vec<Node> },
    Mapping { start: usize, tag: Option<Tag>, anchor: usize, entries: Vec<Entry>, key: Option<Node> },
}

struct Builder<'a> {
    file: FileId,
    text: &'a str,
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    documents: Vec<Node>,
}

impl Builder<'_> {
    fn span(&self, span: &granit_parser::Span) -> Span {
        let start = byte_offset(self.text, span.start.byte_offset(), span.start.index());
        let end = byte_offset(self.text, span.end.byte_offset(), span.end.index());
        Span::new(self.file, start, end)
    }

    fn tag(&self, tag: Option<&granit_parser::Tag>, span: &granit_parser::Span) -> Option<Tag> {
        let tag = tag?;
        let text = format!("{}{}", tag.original_handle(), tag.suffix());
        let tag_span = span.tag_span().map_or_else(|| self.span(span), |tag_span| self.span(&tag_span));
        Some(Tag { text, span: tag_span, core: tag.core_suffix().map(str::to_string) })
    }

    fn event(&mut self, event: Event<'_>, span: granit_parser::Span) {
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                let node_span = self.span(&span);
                let tag = self.tag(tag.as_deref(), &span);
                let quoted = !matches!(style, ScalarStyle::Plain);
                let node = Node { span: node_span, tag, kind: NodeKind::Scalar { value: value.into_owned(), quoted } };
                self.finish(node, anchor);
            }
            Event::SequenceStart(_, anchor, tag) => {
                let tag = self.tag(tag.as_deref(), &span);
                let start = self.span(&span).start as usize;
                self.stack.push(Open::Sequence { start, tag, anchor, items: Vec::new() });
            }
            Event::MappingStart(_, anchor, tag) => {
                let tag = self.tag(tag.as_deref(), &span);
                let start = self.span(&span).start as usize;
                self.stack.push(Open::Mapping { start, tag, anchor, entries: Vec::new(), key: None });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let end = self.span(&span).end as usize;
                let node = match self.stack.pop() {
                    Some(Open::Sequence { start, tag, anchor, items }) => {
                        let end = items.last().map_or(end, |item| item.span.end as usize).max(start);
                        (Node { span: Span::new(self.file, start, end), tag, kind: NodeKind::Sequence(items) }, anchor)
                    }
                    Some(Open::Mapping { start, tag, anchor, entries, .. }) => {
                        let end = entries.last().map_or(end, |entry| entry.value.span.end as usize).max(start);
                        (Node { span: Span::new(self.file, start, end), tag, kind: NodeKind::Mapping(entries) }, anchor)
                    }
                    None => return,
                };
                self.finish(node.0, node.1);
            }
            Event::Alias(anchor) => {
                let alias_span = self.span(&span);
                let node = match self.anchors.get(&anchor) {
                    Some(target) => Node { span: alias_span, ..target.clone() },
                    None => Node { span: alias_span, tag: None, kind: NodeKind::Scalar { value: String::new(), quoted: false } },
                };
                self.finish(node, 0);
            }
            _ => {}
        }
    }

    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            Some(Open::Sequence { items, .. }) => items.push(node),
            Some(Open::Mapping { entries, key, .. }) => match key.take() {
                Some(key) => entries.push(Entry { key, value: node }),
                None => *key = Some(node),
            },
            None => {
                self.documents.push(node);
                self.anchors.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(text: &str) -> Node {
        parse(FileId(0), text).unwrap().remove(0)
    }

    #[test]
    fn spans_point_at_values() {
        let text = "spec:\n  pools:\n    - cidr: 10.0.0.0/16\n";
        let root = parse_one(text);
        let cidr = &root.get("spec").unwrap().get("pools").unwrap().as_sequence().unwrap()[0].get("cidr").unwrap();
        assert_eq!(&text[cidr.span.start as usize..cidr.span.end as usize], "10.0.0.0/16");
    }

    #[test]
    fn tags_are_kept_with_their_text() {
        let root = parse_one("nodeSelector: !has(route-reflector)\n");
        let value = root.get("nodeSelector").unwrap();
        assert_eq!(value.tag.as_ref().unwrap().text, "!has(route-reflector)");
        assert_eq!(value.as_str(), Some(""));
    }

    #[test]
    fn core_schema_resolution() {
        let root = parse_one("a: 1\nb: '1'\nc: true\nd: yes\ne: 1.5\nf:\ng: 3.30\nh: 1.0.0.1\n");
        assert_eq!(root.get("a").unwrap().scalar(), Some(Scalar::Int(1)));
        assert_eq!(root.get("b").unwrap().scalar(), Some(Scalar::String("1")));
        assert_eq!(root.get("c").unwrap().scalar(), Some(Scalar::Bool(true)));
        assert_eq!(root.get("d").unwrap().scalar(), Some(Scalar::String("yes")));
        assert_eq!(root.get("e").unwrap().scalar(), Some(Scalar::Float(1.5)));
        assert_eq!(root.get("f").unwrap().scalar(), Some(Scalar::Null));
        assert_eq!(root.get("g").unwrap().scalar(), Some(Scalar::Float(3.3)));
        assert_eq!(root.get("h").unwrap().scalar(), Some(Scalar::String("1.0.0.1")));
    }

    #[test]
    fn aliases_copy_their_anchor() {
        let root = parse_one("a: &x {k: v}\nb: *x\n");
        assert_eq!(root.get("b").unwrap().get("k").unwrap().as_str(), Some("v"));
    }

    #[test]
    fn several_documents() {
        assert_eq!(parse(FileId(0), "a: 1\n---\nb: 2\n").unwrap().len(), 2);
        assert!(parse(FileId(0), "").unwrap().is_empty());
    }

    #[test]
    fn syntax_errors_have_positions() {
        let error = parse(FileId(0), "a: [1, 2\nb: 3\n").unwrap_err();
        assert!(error.span.start > 0, "{error:?}");
    }
}
