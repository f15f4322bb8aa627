//! The intent's JSON Schema, generated from the serde types, and structural validation against
//! it with every error mapped back to the operator's line and column.

use crate::intent::IntentFile;
use crate::json::{PointerIndex, display_path, unescape};
use crate::rules::{SCHEMA_VIOLATION, UNKNOWN_FIELD};
use crate::yaml::{Node, NodeKind, Scalar};
use calplan_diagnostics::{Diagnostic, Diagnostics, Span};
use jsonschema::ValidationError;
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
///
/// An optional object is `anyOf: [object, null]` in the schema, so a typo inside one fails the
/// `anyOf` as a whole; the error is taken apart here and the branch that fits the value's kind
/// reports, at the offending key or value. A missing field whose name an unknown field in the
/// same mapping nearly spells is a consequence of that typo and is not reported on its own.
pub fn validate(value: &Value, index: &PointerIndex, root: &Node, diagnostics: &mut Diagnostics) -> Vec<Prune> {
    let schema = intent_schema();
    let mut prunes = Vec::new();
    let errors: Vec<_> = validator().iter_errors(value).collect();
    let mut effective = Vec::new();
    for error in &errors {
        flatten(error, &mut effective, &mut prunes);
    }
    let misspelled = misspelled_fields(schema, &effective);
    for error in effective {
        report(schema, error, index, root, &misspelled, diagnostics, &mut prunes);
    }
    prunes
}

/// The errors that explain a failure: an `anyOf`/`oneOf` whose value fits one alternative's
/// kind only is replaced by that alternative's errors. When those leave the value in place (a
/// missing field), the optional value itself is dropped so the rest of the file still lowers.
fn flatten<'e>(error: &'e ValidationError<'e>, out: &mut Vec<&'e ValidationError<'e>>, prunes: &mut Vec<Prune>) {
    let branches = match error.kind() {
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => Some(context),
        _ => None,
    };
    let pointer = error.instance_path().as_str();
    if let Some(branches) = branches {
        let fitting: Vec<&Vec<ValidationError<'static>>> =
            branches.iter().filter(|errors| !errors.is_empty() && !is_kind_mismatch(errors, pointer)).collect();
        if let [errors] = fitting.as_slice() {
            let before = out.len();
            for inner in errors.iter() {
                flatten(inner, out, prunes);
            }
            if out[before..].iter().any(|inner| matches!(inner.kind(), ValidationErrorKind::Required { .. })) {
                prunes.push(pointer.to_string());
            }
            return;
        }
    }
    out.push(error);
}

/// Whether an alternative failed only because the value is of another kind (a mapping where
/// it takes `null`): that alternative is not what the operator meant.
fn is_kind_mismatch(errors: &[ValidationError<'_>], pointer: &str) -> bool {
    errors.iter().all(|error| {
        error.instance_path().as_str() == pointer
            && matches!(error.kind(), ValidationErrorKind::Type { .. } | ValidationErrorKind::Enum { .. })
    })
}

/// Required fields that an unknown field in the same mapping nearly spells: (mapping pointer,
/// field name). The unknown field's did-you-mean says all there is to say.
fn misspelled_fields(schema: &Value, errors: &[&ValidationError<'_>]) -> Vec<(String, String)> {
    let mut misspelled = Vec::new();
    for error in errors {
        if let ValidationErrorKind::AdditionalProperties { unexpected } = error.kind() {
            let pointer = error.instance_path().as_str();
            let known = property_names(schema, pointer);
            for name in unexpected {
                if let Some(meant) = did_you_mean(name, known.iter().map(String::as_str)) {
                    misspelled.push((pointer.to_string(), meant.to_string()));
                }
            }
        }
    }
    misspelled
}

fn report(
    schema: &Value,
    error: &ValidationError<'_>,
    index: &PointerIndex,
    root: &Node,
    misspelled: &[(String, String)],
    diagnostics: &mut Diagnostics,
    prunes: &mut Vec<Prune>,
) {
    let pointer = error.instance_path().as_str().to_string();
    let Some(place) = index.nearest(&pointer) else { return };
    let node = find(root, &pointer);
    let path = display_path(&pointer);
    let secret = is_secret_path(&pointer);
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let known = property_names(schema, &pointer);
            for name in unexpected {
                let child = format!("{pointer}/{}", crate::json::escape(name));
                let span = index.get(&child).and_then(|place| place.key).unwrap_or(place.head);
                let suggestion = did_you_mean(name, known.iter().map(String::as_str));
                // Inside a password, a stray key may be the secret itself: never repeat it.
                let message = if secret && suggestion.is_none() {
                    format!("unknown field in `{path}`")
                } else {
                    format!("unknown field `{name}` in `{path}`")
                };
                let mut diagnostic = Diagnostic::new(&UNKNOWN_FIELD, span, message).label("not a field here");
                diagnostic = match suggestion {
                    Some(suggestion) => diagnostic.help(format!("did you mean `{suggestion}`?")),
                    None => diagnostic.help(format!("expected one of {}", list(&known))),
                };
                diagnostics.push(diagnostic);
                prunes.push(child);
            }
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            if misspelled.iter().any(|(at, meant)| *at == pointer && meant == name) {
                return;
            }
            diagnostics.push(
                Diagnostic::new(&SCHEMA_VIOLATION, place.head, format!("missing field `{name}` in `{path}`"))
                    .label(format!("`{name}` is required here"))
                    .help(required_help(schema, &pointer, name)),
            );
        }
        ValidationErrorKind::Enum { options } => {
            let written = if secret { "" } else { node.and_then(Node::as_str).unwrap_or_default() };
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
        ValidationErrorKind::Minimum { .. }
        | ValidationErrorKind::Maximum { .. }
        | ValidationErrorKind::ExclusiveMinimum { .. }
        | ValidationErrorKind::ExclusiveMaximum { .. } => {
            out_of_range(schema, &pointer, &path, place.value, node, diagnostics);
            prunes.push(pointer);
        }
        ValidationErrorKind::Type { .. } | ValidationErrorKind::AnyOf { .. } | ValidationErrorKind::OneOfNotValid { .. } => {
            let expected = describe_schema(schema, &pointer);
            // An integer too large for JSON arrives as text: it is out of range, not of the
            // wrong kind.
            if matches!(node.and_then(Node::scalar), Some(Scalar::Int(_))) && range(schema, &pointer).is_some() {
                out_of_range(schema, &pointer, &path, place.value, node, diagnostics);
                prunes.push(pointer);
                return;
            }
            let found = node.map_or("a value", Node::describe);
            let message = format!("`{path}` must be {expected}, found {found}");
            let help = if secret {
                "write `secretKeyRef: {name: SECRET, key: KEY}`: calplan takes passwords by reference only".to_string()
            } else {
                type_help(node, &expected, &path)
            };
            diagnostics.push(Diagnostic::new(&SCHEMA_VIOLATION, place.value, message).label(format!("expected {expected}")).help(help));
            prunes.push(pointer);
        }
        // An AS number written as text is read, and reported in Calico's words, by lowering.
        ValidationErrorKind::Pattern { .. } if describe_schema(schema, &pointer) == "an AS number" => {}
        _ => {
            let written = if secret { "" } else { node.and_then(Node::as_str).unwrap_or_default() };
            let message = if secret { format!("invalid `{path}`") } else { format!("invalid `{path}`: {}", error.masked()) };
            diagnostics.push(
                Diagnostic::new(&SCHEMA_VIOLATION, place.value, message)
                    .label(if written.is_empty() { "here".to_string() } else { format!("`{written}`") })
                    .help("see `calplan schema` for the allowed values"),
            );
            prunes.push(pointer);
        }
    }
}

/// Whether a pointer lies inside a password, where a value may be the secret itself.
pub fn is_secret_path(pointer: &str) -> bool {
    pointer.split('/').any(|segment| is_secret_key(&unescape(segment)))
}

/// Whether a key holds, or was probably meant to hold, a password: one of [`SECRET_FIELDS`],
/// a typo of one (two edits at most: `pasword`, `paswrod`), or anything that says `passw…`.
pub fn is_secret_key(key: &str) -> bool {
    let lowered = key.to_lowercase();
    SECRET_FIELDS.contains(&key)
        || lowered.contains("passw")
        || SECRET_FIELDS.iter().any(|field| strsim::levenshtein(&lowered, &field.to_lowercase()) <= 2)
}

/// The fields that hold a password (by reference, when written correctly).
pub const SECRET_FIELDS: &[&str] = &["password", "nodeMeshPassword"];

/// The bounds the schema puts on the integer at `pointer`, following `anyOf` alternatives.
fn range(root: &Value, pointer: &str) -> Option<(Option<i128>, Option<i128>)> {
    fn find_range(root: &Value, schema: &Value) -> Option<(Option<i128>, Option<i128>)> {
        let schema = resolve(root, schema);
        let bound = |key: &str| schema.get(key).and_then(|value| value.as_i64().map(i128::from).or(value.as_u64().map(i128::from)));
        let is_integer = match schema.get("type") {
            Some(Value::String(kind)) => kind == "integer",
            Some(Value::Array(kinds)) => kinds.iter().any(|kind| kind == "integer"),
            _ => false,
        };
        if is_integer {
            return Some((bound("minimum"), bound("maximum")));
        }
        ["anyOf", "oneOf"]
            .iter()
            .flat_map(|keyword| schema.get(*keyword).and_then(Value::as_array).into_iter().flatten())
            .find_map(|alternative| find_range(root, alternative))
    }
    find_range(root, subschema(root, pointer)?)
}

fn out_of_range(schema: &Value, pointer: &str, path: &str, span: Span, node: Option<&Node>, diagnostics: &mut Diagnostics) {
    let expected = match describe_schema(schema, pointer).as_str() {
        "an AS number" => "an AS number".to_string(),
        _ => "an integer".to_string(),
    };
    let bounds = match range(schema, pointer) {
        Some((Some(min), Some(max))) => format!(" from {min} to {max}"),
        Some((Some(min), None)) => format!(" of at least {min}"),
        Some((None, Some(max))) => format!(" of at most {max}"),
        _ => String::new(),
    };
    let written = node.and_then(Node::as_str).unwrap_or_default();
    diagnostics.push(
        Diagnostic::new(&SCHEMA_VIOLATION, span, format!("`{path}` must be {expected}{bounds}, found {written}"))
            .label("out of range")
            .help(format!("write {expected}{bounds}")),
    );
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
    if is_as_number(root, schema) {
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

/// Whether the schema is (or is an optional) [`crate::intent::AsNumberText`].
fn is_as_number(root: &Value, schema: &Value) -> bool {
    let schema = resolve(root, schema);
    schema.get("description").and_then(Value::as_str).is_some_and(|text| text.starts_with("An AS number"))
        || schema
            .get("anyOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|alternative| alternative.get("$ref").is_some() && is_as_number(root, alternative))
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

    #[test]
    fn secret_keys_and_their_typos_but_no_other_field() {
        for key in ["password", "nodeMeshPassword", "pasword", "Passwort", "nodeMeshPasword", "rootPassword"] {
            assert!(is_secret_key(key), "{key}");
        }
        let schema = intent_schema().to_string();
        for field in ["nodes", "name", "node", "nodeSelector", "peers", "key", "secretKeyRef", "nodeToNodeMesh", "asNumber"] {
            assert!(schema.contains(&format!("\"{field}\"")), "{field} is a field");
            assert!(!is_secret_key(field), "{field}");
        }
    }
}
