//! A YAML document as a tree with a span on every node, built from granit-parser's events.
//!
//! The tree keeps what serde would throw away and calplan needs for diagnostics: where each key
//! and value sits, how a scalar was written (plain or quoted), and any tag. Anchors are resolved
//! here, so an alias is a copy of its anchored node carrying the alias's span.
//!
//! What a document may cost is bounded ([`LIMITS`], `docs/limits.md`): how deep it nests, and
//! how much its aliases expand, counting the copies an alias brings in at the depth it brings
//! them. Without the bounds a few kilobytes of aliases that refer to aliases ("billion laughs")
//! expand to gigabytes, and aliases nested in anchors build trees deep enough to overflow the
//! stack of every pass that walks them.

use calplan_diagnostics::{FileId, Span};
use granit_parser::{ErrorKind, Event, Parser, ScalarStyle};
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
    /// Whether the text is well-formed YAML that exceeds one of the [`Limits`].
    pub limit: bool,
}

/// What one file's YAML may cost once its aliases are expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Nesting of sequences and mappings, an alias's copy counted at the depth it lands.
    pub max_depth: usize,
    /// Aliases (`*name`) in the file.
    pub max_aliases: usize,
    /// Nodes (scalars, sequences, mappings) the aliases copy in, all aliases together.
    pub max_alias_nodes: usize,
    /// Bytes of scalar text the aliases copy in, all aliases together.
    pub max_alias_bytes: usize,
}

/// The limits every YAML input is read with; `docs/limits.md` says why these values.
pub const LIMITS: Limits = Limits { max_depth: 64, max_aliases: 10_000, max_alias_nodes: 250_000, max_alias_bytes: 16 << 20 };

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

/// Parses every document in `text` within [`LIMITS`]. An empty stream gives no documents.
pub fn parse(file: FileId, text: &str) -> Result<Vec<Node>, SyntaxError> {
    parse_with(file, text, 0, LIMITS)
}

/// Parses `text` that sits at byte `base` of file `file` (a value inside a larger listing), so
/// every span points into that file.
pub fn parse_at(file: FileId, text: &str, base: usize) -> Result<Vec<Node>, SyntaxError> {
    parse_with(file, text, base, LIMITS)
}

pub fn parse_with(file: FileId, text: &str, base: usize, limits: Limits) -> Result<Vec<Node>, SyntaxError> {
    let mut builder = Builder {
        file,
        text,
        base,
        limits,
        stack: Vec::new(),
        anchors: HashMap::new(),
        documents: Vec::new(),
        aliases: 0,
        alias_nodes: 0,
        alias_bytes: 0,
    };
    // The scanner counts flow and block nesting apart and stops each at its own limit; the
    // builder counts them together, aliases included.
    let mut options = granit_parser::Options::default();
    options.flow_nesting_limit = limits.max_depth;
    options.block_nesting_limit = limits.max_depth;
    for event in Parser::new_from_str_with_options(text, options) {
        let (event, span) = event.map_err(|error| {
            let offset = base + byte_offset(text, error.marker().byte_offset(), error.marker().index());
            let span = Span::new(file, offset, offset);
            match error.kind() {
                ErrorKind::RecursionLimitExceeded => {
                    limit_error(span, format!("the YAML nests deeper than {} levels here", limits.max_depth))
                }
                _ => SyntaxError { span, message: error.info().to_string(), limit: false },
            }
        })?;
        builder.event(event, span)?;
    }
    Ok(builder.documents)
}

fn byte_offset(text: &str, byte: Option<usize>, chars: usize) -> usize {
    byte.unwrap_or_else(|| text.char_indices().nth(chars).map_or(text.len(), |(index, _)| index))
}

/// What a finished node costs: how many nodes it holds (itself included), the bytes of its
/// scalars, and how many levels of collections it is (0 for a scalar).
#[derive(Clone, Copy, Debug, Default)]
struct Size {
    nodes: usize,
    bytes: usize,
    height: usize,
}

impl Size {
    fn add(&mut self, child: Size) {
        self.nodes = self.nodes.saturating_add(child.nodes);
        self.bytes = self.bytes.saturating_add(child.bytes);
        self.height = self.height.max(child.height + 1);
    }
}

enum Open {
    Sequence { start: usize, tag: Option<Tag>, anchor: usize, items: Vec<Node>, size: Size },
    Mapping { start: usize, tag: Option<Tag>, anchor: usize, entries: Vec<Entry>, key: Option<Node>, size: Size },
}

impl Open {
    fn size_mut(&mut self) -> &mut Size {
        match self {
            Open::Sequence { size, .. } | Open::Mapping { size, .. } => size,
        }
    }
}

struct Builder<'a> {
    file: FileId,
    text: &'a str,
    /// Where `text` starts in the file its spans point into.
    base: usize,
    limits: Limits,
    stack: Vec<Open>,
    anchors: HashMap<usize, (Node, Size)>,
    documents: Vec<Node>,
    aliases: usize,
    alias_nodes: usize,
    alias_bytes: usize,
}

fn limit_error(span: Span, message: String) -> SyntaxError {
    SyntaxError { span, message, limit: true }
}

impl Builder<'_> {
    fn span(&self, span: &granit_parser::Span) -> Span {
        let start = byte_offset(self.text, span.start.byte_offset(), span.start.index());
        let end = byte_offset(self.text, span.end.byte_offset(), span.end.index());
        Span::new(self.file, self.base + start, self.base + end)
    }

    /// A collection opening at `span` would nest one level below the open ones.
    fn check_depth(&self, span: Span) -> Result<(), SyntaxError> {
        if self.stack.len() < self.limits.max_depth {
            return Ok(());
        }
        Err(limit_error(span, format!("the YAML nests deeper than {} levels here", self.limits.max_depth)))
    }

    /// Accounts for an alias copying in `size`, at the current depth.
    fn charge_alias(&mut self, span: Span, size: Size) -> Result<(), SyntaxError> {
        self.aliases += 1;
        self.alias_nodes = self.alias_nodes.saturating_add(size.nodes);
        self.alias_bytes = self.alias_bytes.saturating_add(size.bytes);
        let limits = self.limits;
        if self.aliases > limits.max_aliases {
            return Err(limit_error(span, format!("the YAML has more than {} aliases", limits.max_aliases)));
        }
        if self.alias_nodes > limits.max_alias_nodes || self.alias_bytes > limits.max_alias_bytes {
            return Err(limit_error(
                span,
                format!(
                    "the YAML's aliases expand to more than {} nodes or {} MiB of text",
                    limits.max_alias_nodes,
                    limits.max_alias_bytes >> 20
                ),
            ));
        }
        // A collection copied in nests as deep below the alias as it did below its anchor.
        if self.stack.len() + size.height > limits.max_depth {
            return Err(limit_error(span, format!("the YAML nests deeper than {} levels once this alias is expanded", limits.max_depth)));
        }
        Ok(())
    }

    fn tag(&self, tag: Option<&granit_parser::Tag>, span: &granit_parser::Span) -> Option<Tag> {
        let tag = tag?;
        let text = format!("{}{}", tag.original_handle(), tag.suffix());
        let tag_span = span.tag_span().map_or_else(|| self.span(span), |tag_span| self.span(&tag_span));
        Some(Tag { text, span: tag_span, core: tag.core_suffix().map(str::to_string) })
    }

    fn event(&mut self, event: Event<'_>, span: granit_parser::Span) -> Result<(), SyntaxError> {
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                let node_span = self.span(&span);
                let tag = self.tag(tag.as_deref(), &span);
                let quoted = !matches!(style, ScalarStyle::Plain);
                let size = Size { nodes: 1, bytes: value.len(), height: 0 };
                let node = Node { span: node_span, tag, kind: NodeKind::Scalar { value: value.into_owned(), quoted } };
                self.finish(node, size, anchor);
            }
            Event::SequenceStart(_, anchor, tag) => {
                self.check_depth(self.span(&span))?;
                let tag = self.tag(tag.as_deref(), &span);
                let start = self.span(&span).start as usize;
                let size = Size { nodes: 1, bytes: 0, height: 1 };
                self.stack.push(Open::Sequence { start, tag, anchor, items: Vec::new(), size });
            }
            Event::MappingStart(_, anchor, tag) => {
                self.check_depth(self.span(&span))?;
                let tag = self.tag(tag.as_deref(), &span);
                let start = self.span(&span).start as usize;
                let size = Size { nodes: 1, bytes: 0, height: 1 };
                self.stack.push(Open::Mapping { start, tag, anchor, entries: Vec::new(), key: None, size });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let end = self.span(&span).end as usize;
                let (node, size, anchor) = match self.stack.pop() {
                    Some(Open::Sequence { start, tag, anchor, items, size }) => {
                        let end = items.last().map_or(end, |item| item.span.end as usize).max(start);
                        (Node { span: Span::new(self.file, start, end), tag, kind: NodeKind::Sequence(items) }, size, anchor)
                    }
                    Some(Open::Mapping { start, tag, anchor, entries, size, .. }) => {
                        let end = entries.last().map_or(end, |entry| entry.value.span.end as usize).max(start);
                        (Node { span: Span::new(self.file, start, end), tag, kind: NodeKind::Mapping(entries) }, size, anchor)
                    }
                    None => return Ok(()),
                };
                self.finish(node, size, anchor);
            }
            Event::Alias(anchor) => {
                let alias_span = self.span(&span);
                let size = self.anchors.get(&anchor).map_or(Size { nodes: 1, ..Size::default() }, |(_, size)| *size);
                // Charged before anything is copied.
                self.charge_alias(alias_span, size)?;
                let node = match self.anchors.get(&anchor) {
                    Some((target, _)) => Node { span: alias_span, ..target.clone() },
                    None => Node { span: alias_span, tag: None, kind: NodeKind::Scalar { value: String::new(), quoted: false } },
                };
                self.finish(node, size, 0);
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, node: Node, size: Size, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        if let Some(open) = self.stack.last_mut() {
            open.size_mut().add(size);
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

    fn nested(depth: usize) -> String {
        format!("{}x{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn nesting_is_bounded_in_flow_and_block_style_alike() {
        assert!(parse(FileId(0), &nested(LIMITS.max_depth)).is_ok());
        let error = parse(FileId(0), &nested(LIMITS.max_depth + 1)).unwrap_err();
        assert!(error.limit && error.message.contains("deeper than 64"), "{error:?}");
        assert_eq!(error.span.start as usize, LIMITS.max_depth, "at the bracket that goes too deep");
        let error = parse(FileId(0), &nested(100_000)).unwrap_err();
        assert!(error.limit, "{error:?}");
        let block: String = (0..LIMITS.max_depth + 1).map(|level| format!("{}k{level}:\n", "  ".repeat(level))).collect();
        assert!(parse(FileId(0), &format!("{block}{}x\n", "  ".repeat(LIMITS.max_depth + 1))).unwrap_err().limit);
        let mixed = format!("a:\n  b:\n    c: {}\n", nested(LIMITS.max_depth - 2));
        assert!(parse(FileId(0), &mixed).unwrap_err().limit, "block and flow levels count together");
    }

    /// Each line holds ten aliases of the line before: 10^n copies from a few hundred bytes.
    #[test]
    fn aliases_of_aliases_stop_at_the_expansion_limit() {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..10 {
            let aliases = vec![format!("*a{}", level - 1); 10].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{aliases}]\n"));
        }
        let error = parse(FileId(0), &text).unwrap_err();
        assert!(error.limit && error.message.contains("aliases expand"), "{error:?}");
        assert_eq!(&text[error.span.start as usize..error.span.end as usize], "*a4", "{error:?}");
    }

    #[test]
    fn aliases_count_the_depth_they_bring_in() {
        let mut text = format!("x0: &x0 {}\n", nested(40));
        text.push_str(&format!("x1: {}*x0{}\n", "[".repeat(30), "]".repeat(30)));
        let error = parse(FileId(0), &text).unwrap_err();
        assert!(error.limit && error.message.contains("once this alias is expanded"), "{error:?}");
        let many: String =
            std::iter::once("a: &a x\n".to_string()).chain((0..=LIMITS.max_aliases).map(|n| format!("b{n}: *a\n"))).collect();
        let Err(error) = parse(FileId(0), &many) else { panic!("too many aliases") };
        assert!(error.message.contains("more than 10000 aliases"), "{error:?}");
    }

    #[test]
    fn spans_are_shifted_into_the_enclosing_file() {
        let root = parse_at(FileId(2), "{\"a\": \"b\"}", 100).unwrap().remove(0);
        assert_eq!(root.get("a").unwrap().span, Span::new(FileId(2), 106, 109));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let error = parse(FileId(0), "a: [1, 2\nb: 3\n").unwrap_err();
        assert!(error.span.start > 0, "{error:?}");
    }
}
