//! The spanned tree as a `serde_json::Value`, with an index from JSON pointers back to spans,
//! so that JSON Schema errors land on the operator's line and column.

use crate::yaml::{Node, NodeKind, Scalar};
use calplan_diagnostics::Span;
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// Where the node at a JSON pointer sits: its value, and its key when it is a mapping entry.
#[derive(Clone, Copy, Debug)]
pub struct Place {
    pub key: Option<Span>,
    pub value: Span,
    pub head: Span,
}

#[derive(Debug, Default)]
pub struct PointerIndex {
    places: HashMap<String, Place>,
}

impl PointerIndex {
    pub fn get(&self, pointer: &str) -> Option<Place> {
        self.places.get(pointer).copied()
    }

    /// The place of `pointer`, or of its nearest ancestor that is indexed.
    pub fn nearest(&self, pointer: &str) -> Option<Place> {
        let mut pointer = pointer;
        loop {
            if let Some(place) = self.places.get(pointer) {
                return Some(*place);
            }
            pointer = &pointer[..pointer.rfind('/')?];
        }
    }
}

/// Converts a tree to JSON, indexing every node's span by its JSON pointer.
pub fn to_json(root: &Node) -> (Value, PointerIndex) {
    let mut index = PointerIndex::default();
    let mut pointer = String::new();
    let value = convert(root, None, &mut pointer, &mut index);
    (value, index)
}

fn convert(node: &Node, key: Option<Span>, pointer: &mut String, index: &mut PointerIndex) -> Value {
    index.places.insert(pointer.clone(), Place { key, value: node.span, head: node.head_span() });
    match &node.kind {
        NodeKind::Scalar { .. } => match node.scalar().expect("scalar") {
            Scalar::Null => Value::Null,
            Scalar::Bool(value) => Value::Bool(value),
            Scalar::Int(value) => i64::try_from(value)
                .map(Number::from)
                .or_else(|_| u64::try_from(value).map(Number::from))
                .map_or_else(|_| Value::String(value.to_string()), Value::Number),
            Scalar::Float(value) => Number::from_f64(value).map_or(Value::Null, Value::Number),
            Scalar::String(value) => Value::String(value.to_string()),
        },
        NodeKind::Sequence(items) => {
            let mut values = Vec::with_capacity(items.len());
            for (position, item) in items.iter().enumerate() {
                let length = pointer.len();
                pointer.push('/');
                pointer.push_str(&position.to_string());
                values.push(convert(item, None, pointer, index));
                pointer.truncate(length);
            }
            Value::Array(values)
        }
        NodeKind::Mapping(entries) => {
            let mut object = Map::with_capacity(entries.len());
            for entry in entries {
                let name = key_text(&entry.key);
                let length = pointer.len();
                pointer.push('/');
                pointer.push_str(&escape(&name));
                let value = convert(&entry.value, Some(entry.key.span), pointer, index);
                pointer.truncate(length);
                object.entry(name).or_insert(value);
            }
            Value::Object(object)
        }
    }
}

/// A mapping key as JSON sees it: scalars by their text, anything else by a placeholder.
pub fn key_text(key: &Node) -> String {
    match &key.kind {
        NodeKind::Scalar { value, .. } => value.clone(),
        NodeKind::Sequence(_) => "[list]".to_string(),
        NodeKind::Mapping(_) => "{mapping}".to_string(),
    }
}

/// JSON pointer escaping (RFC 6901).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

pub fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// `/spec/pools/0/cidr` as the operator reads it: `spec.pools[0].cidr`.
pub fn display_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(segment);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&unescape(segment));
        }
    }
    if out.is_empty() { "the document".to_string() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calplan_diagnostics::FileId;

    #[test]
    fn pointers_find_spans() {
        let text = "spec:\n  labels: {kubernetes.io/os: linux}\n  n: [1, '2']\n";
        let root = crate::yaml::parse(FileId(0), text).unwrap().remove(0);
        let (value, index) = to_json(&root);
        assert_eq!(value["spec"]["n"], serde_json::json!([1, "2"]));
        let place = index.get("/spec/labels/kubernetes.io~1os").unwrap();
        assert_eq!(&text[place.value.start as usize..place.value.end as usize], "linux");
        assert_eq!(display_path("/spec/labels/kubernetes.io~1os"), "spec.labels.kubernetes.io/os");
        assert_eq!(display_path("/spec/pools/0/cidr"), "spec.pools[0].cidr");
    }
}
