//! The intent's JSON Schema, generated from the serde types, and structural validation against
//! it with every error mapped back to the operator's line and column.

use crate::intent::IntentFile;
use crate::json::{PointerIndex, display_path, unescape};
use crate::rules::{SCHEMA_VIOLATION, UNKNOWN_FIELD};
use crate::yaml::{Node, NodeKind};
use calplan_diagnostics::{Diagnostic, Diagnostics};
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;
use std::sync::OnceLock;

/// The intent's schema (draft 2020-12), as `calplan schema` prints it.
pub fn intent_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schema = serde_json::to_value(schemars::schema_for!(IntentFile)).expect("schema serializes");
        schema["$id"] = Value::from("https://calplan.dev/schemas/intent.schema.json");
        schema
    })
}

/// The schema as the text of `schemas/intent.schema.json`.
pub fn intent_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(intent_schema()).expect("schema serializes");
    text.push('\n');
    text
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| jsonschema::draft202012::new(intent_schema()).expect("the generated schema compiles"))
}

/// A JSON pointer whose node should be dropped before deserializing, so that one bad value
/// does not hide the problems elsewhere in the file.
pub type Prune = String;

/// Validates the document against the schema, reporting every structural error, and returns
/// the pointers of the nodes to drop before the typed pass.
pub fn validate(value: &Value, index: &PointerIndex, root: &Node, diagnostics: &mut Diagnostics) -> Vec<Prune> {
    let schema = intent_schema();
    let mut prunes = Vec::new();
    for error in validator().iter_errors(value) {
        let pointer = error.instance_path().as_str().to_string();
        let Some(place) = index.nearest(&pointer) else { continue };
        let node = find(root, &pointer);
        let path = display_path(&pointer);
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let known = property_names(schema, &pointer);
                for name in unexpected {
                    let child = format!("{pointer}/{}", crate::json::escape(name));
                    let span = index.get(&child).and_then(|place| place.key).unwrap_or(place.head);
                    let mut diagnostic =
                        Diagnostic::new(&UNKNOWN_FIELD, span, format!("unknown field `{name}` in `{path}`")).label("not a field here");
                    diagnostic = match did_you_mean(name, known.iter().map(String::as_str)) {
                        Some(suggestion) => diagnostic.help(format!("did you mean `{suggestion}`?")),
                        None => diagnostic.help(format!("expected one of {}", list(&known))),
                    };
                    diagnostics.push(diagnostic);
                    prunes.push(child);
                }
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                diagnostics.push(
                    Diagnostic::new(&SCHEMA_VIOLATION, place.head, format!("missing field `{name}` in `{path}`"))
                        .label(format!("`{name}` is required here"))
                        .help(required_help(schema, &pointer, name)),
                );
            }
            ValidationErrorKind::Enum { options } => {
                let written = node.and_then(Node::as_str).unwrap_or_default();
                let options: Vec<String> = options.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
                let help = match did_you_mean(written, options.iter().map(String::as_str)) {
                    Some(suggestion) => format!("did you mean `{suggestion}`? expected one of {}", list(&options)),
                    None => format!("expected one of {}", list(&options)),
                };
                diagnostics.push(
                    Diagnostic::new(&SCHEMA_VIOLATION, place.value, format!("`{written}` is not a valid `{}`", leaf(&path)))
                        .label("not one of the allowed values")
                        .help(help),
                );
                prunes.push(pointer);
            }
            ValidationErrorKind::Type { .. } | ValidationErrorKind::AnyOf { .. } | ValidationErrorKind::OneOfNotValid { .. } => {
                let expected = describe_schema(schema, &pointer);
                let found = node.map_or("a value", Node::describe);
                let message = format!("`{path}` must be {expected}, found {found}");
                diagnostics.push(
                    Diagnostic::new(&SCHEMA_VIOLATION, place.value, message)
                        .label(format!("expected {expected}"))
                        .help(type_help(node, &expected, &path)),
                );
                prunes.push(pointer);
            }
            _ => {
                let written = node.and_then(Node::as_str).unwrap_or_default();
                let message = format!("invalid `{path}`: {}", error.masked());
                diagnostics.push(
                    Diagnostic::new(&SCHEMA_VIOLATION, place.value, message)
                        .label(if written.is_empty() { "here".to_string() } else { format!("`{written}`") })
                        .help("see `calplan schema` for the allowed values"),
                );
                prunes.push(pointer);
            }
        }
    }
    prunes
}

/// Finds the node at a JSON pointer.
pub fn find<'a>(root: &'a Node, pointer: &str) -> Option<&'a Node> {
    let mut node = root;
    for segment in pointer.split('/').skip(1) {
        let segment = unescape(segment);
        node = match &node.kind {
            NodeKind::Mapping(entries) => &entries.iter().find(|entry| crate::json::key_text(&entry.key) == segment)?.value,
            NodeKind::Sequence(items) => items.get(segment.parse::<usize>().ok()?)?,
            NodeKind::Scalar { .. } => return None,
        };
    }
    Some(node)
}

fn leaf(path: &str) -> &str {
    path.rsplit(['.', ']']).find(|part| !part.is_empty() && !part.starts_with('[')).unwrap_or(path)
}

fn type_help(node: Option<&Node>, expected: &str, path: &str) -> String {
    let text = node.and_then(Node::as_str).unwrap_or_default();
    let plain = matches!(node.map(|node| &node.kind), Some(NodeKind::Scalar { quoted: false, .. }));
    if expected.contains("boolean") && matches!(text, "yes" | "no" | "on" | "off" | "y" | "n" | "Yes" | "No" | "On" | "Off") {
        return format!("YAML 1.2 booleans are `true` and `false`; `{text}` is a string");
    }
    if expected.contains("AS number") && plain && text.contains('.') {
        return format!("unquoted, YAML reads `{text}` as a decimal number; quote a dotted AS number: \"{text}\"");
    }
    if expected.contains("string") && plain && !text.is_empty() {
        return format!("unquoted, YAML reads `{text}` as {}; quote it: \"{text}\"", node.map_or("a value", Node::describe));
    }
    format!("see `calplan schema` for the shape of `{}`", leaf(path))
}

fn required_help(schema: &Value, pointer: &str, name: &str) -> String {
    let description = subschema(schema, pointer)
        .and_then(|parent| resolve(schema, parent).get("properties"))
        .and_then(|properties| properties.get(name))
        .map(|property| resolve(schema, property))
        .and_then(|property| property.get("description"))
        .and_then(Value::as_str);
    match description {
        Some(description) => format!("add `{name}`: {}", first_sentence(description)),
        None => format!("add `{name}`"),
    }
}

fn first_sentence(text: &str) -> String {
    let sentence = text.split("\n\n").next().unwrap_or(text).replace('\n', " ");
    let sentence = sentence.trim_end_matches('.');
    let mut chars = sentence.chars();
    chars.next().map_or_else(String::new, |first| first.to_lowercase().chain(chars).collect())
}

/// Follows `$ref`s (local only) to the schema they name.
fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match schema.get("$ref").and_then(Value::as_str).and_then(|reference| reference.strip_prefix('#')) {
            Some(pointer) => match root.pointer(pointer) {
                Some(target) => schema = target,
                None => break,
            },
            None => break,
        }
    }
    schema
}

/// The schema that applies to the instance at `pointer`.
fn subschema<'a>(root: &'a Value, pointer: &str) -> Option<&'a Value> {
    let mut schema = root;
    for segment in pointer.split('/').skip(1) {
        let segment = unescape(segment);
        schema = step(root, schema, &segment)?;
    }
    Some(schema)
}

fn step<'a>(root: &'a Value, schema: &'a Value, segment: &str) -> Option<&'a Value> {
    let schema = resolve(root, schema);
    if let Some(child) = schema.get("properties").and_then(|properties| properties.get(segment)) {
        return Some(child);
    }
    if let Some(items) = schema.get("items")
        && segment.parse::<usize>().is_ok()
    {
        return Some(items);
    }
    if let Some(additional) = schema.get("additionalProperties").filter(|value| value.is_object()) {
        return Some(additional);
    }
    for keyword in ["anyOf", "oneOf", "allOf"] {
        for alternative in schema.get(keyword).and_then(Value::as_array).into_iter().flatten() {
            if let Some(child) = step(root, alternative, segment) {
                return Some(child);
            }
        }
    }
    None
}

fn property_names(root: &Value, pointer: &str) -> Vec<String> {
    let Some(schema) = subschema(root, pointer) else { return Vec::new() };
    let mut names = Vec::new();
    collect_properties(root, schema, &mut names);
    names
}

fn collect_properties(root: &Value, schema: &Value, names: &mut Vec<String>) {
    let schema = resolve(root, schema);
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        names.extend(properties.keys().cloned());
    }
    for keyword in ["anyOf", "oneOf", "allOf"] {
        for alternative in schema.get(keyword).and_then(Value::as_array).into_iter().flatten() {
            collect_properties(root, alternative, names);
        }
    }
}

/// What the schema at `pointer` expects, in words: `a boolean`, `a list`, `an AS number`.
fn describe_schema(root: &Value, pointer: &str) -> String {
    let Some(schema) = subschema(root, pointer) else { return "a different value".to_string() };
    let schema = resolve(root, schema);
    if schema.get("anyOf").is_some() && schema.to_string().contains("AS number") {
        return "an AS number".to_string();
    }
    let mut kinds = Vec::new();
    collect_types(root, schema, &mut kinds);
    kinds.retain(|kind| kind != "null");
    kinds.dedup();
    let words: Vec<&str> = kinds
        .iter()
        .map(|kind| match kind.as_str() {
            "string" => "a string",
            "boolean" => "a boolean",
            "integer" => "an integer",
            "number" => "a number",
            "array" => "a list",
            "object" => "a mapping",
            _ => "a value",
        })
        .collect();
    if words.is_empty() { "a different value".to_string() } else { words.join(" or ") }
}

fn collect_types(root: &Value, schema: &Value, kinds: &mut Vec<String>) {
    let schema = resolve(root, schema);
    match schema.get("type") {
        Some(Value::String(kind)) => kinds.push(kind.clone()),
        Some(Value::Array(list)) => kinds.extend(list.iter().filter_map(Value::as_str).map(str::to_string)),
        _ => {}
    }
    if schema.get("enum").is_some() && schema.get("type").is_none() {
        kinds.push("string".to_string());
    }
    for keyword in ["anyOf", "oneOf"] {
        for alternative in schema.get(keyword).and_then(Value::as_array).into_iter().flatten() {
            collect_types(root, alternative, kinds);
        }
    }
}

fn list(names: &[String]) -> String {
    names.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
}

/// The known name closest to `written`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(written: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lowered = written.to_lowercase();
    known
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(&lowered, &candidate.to_lowercase()), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_names_only() {
        assert_eq!(did_you_mean("bolockSize", ["blockSize", "cidr", "name"]), Some("blockSize"));
        assert_eq!(did_you_mean("zzz", ["blockSize", "cidr"]), None);
        assert_eq!(did_you_mean("crosssubnet", ["Never", "Always", "CrossSubnet"]), Some("CrossSubnet"));
    }
}
