//! Reading an intent: YAML → spanned tree → repairs → schema check → typed values.
//!
//! Every step reports what it finds and repairs what it can (a tag becomes the text the
//! operator meant, an unknown field is dropped), so the later steps still run and one pass
//! reports every problem in the file.

use crate::intent::{API_VERSION, IntentFile, KIND};
use crate::rules::{
    DUPLICATE_KEY, EMPTY_OR_MULTIPLE_DOCUMENTS, INLINE_PASSWORD, SCHEMA_VIOLATION, WRONG_DOCUMENT_TYPE, YAML_LIMIT, YAML_SYNTAX, YAML_TAG,
};
use crate::yaml::{self, Node, NodeKind, Scalar};
use crate::{de, json, schema};
use calplan_diagnostics::{Diagnostic, Diagnostics, FileId, Severity, Span};
use std::collections::HashMap;

/// An intent as parsed, and the parts of its text no output may show.
#[derive(Debug)]
pub struct ParsedIntent {
    /// `None` when the file cannot be read as an intent at all; the reasons are in the
    /// diagnostics.
    pub intent: Option<IntentFile>,
    /// Values that may be secrets (a password written inline): whoever prints the source masks
    /// them ([`calplan_diagnostics::SourceMap::redact`]).
    pub secrets: Vec<Span>,
    /// List items (a pool, a peer, a route) from which the schema pass cut a value it reported:
    /// what later rules find missing there is a consequence of that error, not news.
    pub damaged: Vec<Span>,
}

/// Parses and checks the structure of an intent.
pub fn parse_intent(file: FileId, text: &str, diagnostics: &mut Diagnostics) -> ParsedIntent {
    let mut secrets = Vec::new();
    let mut damaged = Vec::new();
    let intent = parse_documents(file, text, &mut secrets, &mut damaged, diagnostics);
    ParsedIntent { intent, secrets, damaged }
}

fn parse_documents(
    file: FileId,
    text: &str,
    secrets: &mut Vec<Span>,
    damaged: &mut Vec<Span>,
    diagnostics: &mut Diagnostics,
) -> Option<IntentFile> {
    let Some(mut documents) = read_yaml(file, text, diagnostics) else {
        // Without a tree, mask the rest of every line that gives a password a value.
        secrets.extend(password_lines(file, text));
        return None;
    };
    for document in &mut documents {
        mask_passwords(document, secrets, diagnostics);
    }
    if documents.is_empty() {
        diagnostics.push(
            Diagnostic::new(&EMPTY_OR_MULTIPLE_DOCUMENTS, Span::new(file, 0, 0), "the intent is empty")
                .help("an intent is one YAML document with `apiVersion: calplan/v1` and `kind: ClusterIntent`"),
        );
        return None;
    }
    if let Some(second) = documents.get(1) {
        diagnostics.push(
            Diagnostic::new(&EMPTY_OR_MULTIPLE_DOCUMENTS, second.head_span(), "the intent has more than one document")
                .label("a second document starts here")
                .help("put the whole cluster in one document; remove the `---` and what follows"),
        );
    }
    let mut root = documents.swap_remove(0);
    repair_tags(&mut root, text, TagPolicy::Repair, diagnostics);
    remove_duplicate_keys(&mut root, diagnostics);
    let (value, index) = json::to_json(&root);
    check_document_type(&value, &index, diagnostics);
    let prunes = schema::validate(&value, &index, &root, diagnostics);
    damaged.extend(prunes.iter().filter_map(|pointer| enclosing_item(pointer)).filter_map(|item| index.get(item)).map(|place| place.value));
    prune(&mut root, prunes);
    match de::from_node::<IntentFile>(&root) {
        Ok(intent) => Some(intent),
        Err(error) => {
            // The schema pass has normally explained this already; if not, say it here rather
            // than fail silently.
            if !diagnostics.has_errors() {
                let span = error.span.unwrap_or(root.head_span());
                diagnostics
                    .push(Diagnostic::new(&SCHEMA_VIOLATION, span, error.message).help("see `calplan schema` for the intent's shape"));
            }
            None
        }
    }
}

/// Keys that may appear inside a password by reference; every other key or value there may be
/// the secret itself.
const REFERENCE_KEYS: &[&str] = &["secretKeyRef", "name", "key"];

/// Where a node sits inside a password.
#[derive(Clone, Copy, PartialEq, Eq)]
enum InPassword {
    /// The value of `password` itself.
    Value,
    /// The value of `secretKeyRef`.
    Reference,
    /// The Secret's `name` or `key`: names, not secrets.
    Name,
    /// Anywhere else: may be the secret.
    Other,
}

/// Finds every password in the tree: one written inline is reported (without its value) and
/// removed; every value in a password that is not a Secret's name or key is recorded as a
/// secret, and any tag there dropped, so that no message or snippet repeats it.
fn mask_passwords(node: &mut Node, secrets: &mut Vec<Span>, diagnostics: &mut Diagnostics) {
    match &mut node.kind {
        NodeKind::Scalar { .. } => {}
        NodeKind::Sequence(items) => items.iter_mut().for_each(|item| mask_passwords(item, secrets, diagnostics)),
        NodeKind::Mapping(entries) => {
            let mut inline = Vec::new();
            for (position, entry) in entries.iter_mut().enumerate() {
                let key = json::key_text(&entry.key);
                if !crate::schema::is_secret_key(&key) {
                    mask_passwords(&mut entry.value, secrets, diagnostics);
                    continue;
                }
                mask_secret_values(&mut entry.value, InPassword::Value, secrets, diagnostics);
                // A misspelt key is reported as an unknown field; its value is masked all the same.
                if !crate::schema::SECRET_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                let written_inline = match &entry.value.kind {
                    NodeKind::Scalar { .. } => !matches!(entry.value.scalar(), Some(Scalar::Null)),
                    NodeKind::Sequence(_) => true,
                    NodeKind::Mapping(_) => false,
                };
                if written_inline {
                    diagnostics.push(
                        Diagnostic::new(&INLINE_PASSWORD, entry.value.span, format!("`{key}` holds a password inline; its value is not shown"))
                            .label("written inline")
                            .help("keep the password in a Kubernetes Secret and write `{secretKeyRef: {name: SECRET, key: KEY}}`; a secret committed to an intent should be rotated"),
                    );
                    inline.push(position);
                }
            }
            for position in inline.into_iter().rev() {
                entries.remove(position);
            }
        }
    }
}

fn mask_secret_values(node: &mut Node, place: InPassword, secrets: &mut Vec<Span>, diagnostics: &mut Diagnostics) {
    if let Some(tag) = node.tag.take() {
        secrets.push(tag.span);
        // A password written inline is reported as that, tag and all.
        let empty = matches!(node.scalar(), Some(Scalar::Null));
        let inline = place == InPassword::Value && !matches!(node.kind, NodeKind::Mapping(_)) && !empty;
        if !inline {
            diagnostics.push(
                Diagnostic::new(&YAML_TAG, tag.span, "YAML tag in a password")
                    .label("a tag")
                    .help("remove the tag; a password is `{secretKeyRef: {name: SECRET, key: KEY}}`"),
            );
        }
    }
    match &mut node.kind {
        NodeKind::Scalar { .. } => {
            if place != InPassword::Name && !node.span.is_empty() {
                secrets.push(node.span);
            }
        }
        NodeKind::Sequence(items) => {
            for item in items {
                mask_secret_values(item, InPassword::Other, secrets, diagnostics);
            }
        }
        NodeKind::Mapping(entries) => {
            for entry in entries {
                let key = json::key_text(&entry.key);
                let known = REFERENCE_KEYS.contains(&key.as_str());
                if !known {
                    mask_secret_values(&mut entry.key, InPassword::Other, secrets, diagnostics);
                }
                let inner = match (place, key.as_str()) {
                    (InPassword::Value, "secretKeyRef") => InPassword::Reference,
                    (InPassword::Reference, "name" | "key") => InPassword::Name,
                    _ => InPassword::Other,
                };
                mask_secret_values(&mut entry.value, inner, secrets, diagnostics);
            }
        }
    }
}

/// For a file that is not YAML: the rest of each line after a `password:` or
/// `nodeMeshPassword:` key.
fn password_lines(file: FileId, text: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        for field in crate::schema::SECRET_FIELDS {
            let key = format!("{field}:");
            let mut from = 0;
            while let Some(found) = line[from..].find(&key) {
                let start = from + found + key.len();
                let end = line.trim_end_matches(['\n', '\r']).len();
                if start < end {
                    spans.push(Span::new(file, offset + start, offset + end));
                }
                from = start;
            }
        }
        offset += line.len();
    }
    spans
}

/// Parses every YAML document in a file, reporting a syntax error, or YAML past
/// [`yaml::LIMITS`], as a diagnostic.
pub fn read_yaml(file: FileId, text: &str, diagnostics: &mut Diagnostics) -> Option<Vec<Node>> {
    yaml_diagnostic(yaml::parse(file, text), diagnostics)
}

/// The documents, or the diagnostic for why there are none.
pub fn yaml_diagnostic(parsed: Result<Vec<Node>, yaml::SyntaxError>, diagnostics: &mut Diagnostics) -> Option<Vec<Node>> {
    match parsed {
        Ok(documents) => Some(documents),
        Err(error) if error.limit => {
            diagnostics.push(
                Diagnostic::new(&YAML_LIMIT, error.span, error.message)
                    .label("here")
                    .help("calplan reads YAML up to 64 levels deep, with at most 10,000 aliases expanding to 250,000 nodes and 16 MiB of text (docs/limits.md)"),
            );
            None
        }
        Err(error) => {
            diagnostics.push(
                Diagnostic::new(&YAML_SYNTAX, error.span, format!("invalid YAML: {}", error.message))
                    .label("here")
                    .help("check indentation and that brackets and quotes are closed"),
            );
            None
        }
    }
}

fn check_document_type(value: &serde_json::Value, index: &json::PointerIndex, diagnostics: &mut Diagnostics) {
    for (field, expected) in [("apiVersion", API_VERSION), ("kind", KIND)] {
        let Some(written) = value.get(field).and_then(serde_json::Value::as_str) else { continue };
        if written == expected {
            continue;
        }
        let span = index.get(&format!("/{field}")).map_or(Span::default(), |place| place.value);
        let help = if written.starts_with("projectcalico.org") || field == "kind" && is_calico_kind(written) {
            "this is a Calico resource; `calplan import --current FILE` writes the intent that reproduces it".to_string()
        } else {
            format!("an intent starts with `apiVersion: {API_VERSION}` and `kind: {KIND}`")
        };
        diagnostics.push(
            Diagnostic::new(&WRONG_DOCUMENT_TYPE, span, format!("`{field}` must be `{expected}`, found `{written}`"))
                .label(format!("expected `{expected}`"))
                .help(help),
        );
    }
}

fn is_calico_kind(kind: &str) -> bool {
    matches!(kind.trim_end_matches("List"), "IPPool" | "BGPPeer" | "BGPConfiguration" | "Node" | "")
}

/// What to do with a tag once it is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagPolicy {
    /// In the intent: an error, and the value becomes the text the operator most likely meant
    /// (the source from the tag to the end of the value, as if it had been quoted), so that the
    /// rest of the checks still run.
    Repair,
    /// In current state: a warning, and the value stays what Calico read (the tag dropped,
    /// often leaving an empty value), because that is what the cluster is running.
    KeepCalicosReading,
}

/// Reports every tag, and repairs or keeps the tagged value as `policy` says.
pub fn repair_tags(node: &mut Node, text: &str, policy: TagPolicy, diagnostics: &mut Diagnostics) {
    let severity = match policy {
        TagPolicy::Repair => Severity::Error,
        TagPolicy::KeepCalicosReading => Severity::Warning,
    };
    if let Some(tag) = node.tag.take() {
        let start = tag.span.start as usize;
        let end = (node.span.end as usize).max(tag.span.end as usize);
        let meant = text.get(start..end).unwrap_or(&tag.text).trim().to_string();
        let is_scalar = matches!(node.kind, NodeKind::Scalar { .. });
        let (message, label, help) = if is_scalar && !tag.text.starts_with("!!") && policy == TagPolicy::KeepCalicosReading {
            (
                match node.as_str() {
                    Some("") | None => format!("`{}` is a YAML tag, not text: Calico read an empty value here", tag.text),
                    Some(value) => format!("`{}` is a YAML tag, not text: Calico read the value as `{value}`", tag.text),
                },
                "read as a tag".to_string(),
                format!(
                    "the cluster runs with the value Calico read; the intent should say '{meant}' in quotes, and the plan rewrites this resource"
                ),
            )
        } else if is_scalar && !tag.text.starts_with("!!") {
            (
                format!("`{}` is a YAML tag, not text", tag.text),
                if node.as_str() == Some("") {
                    "read as a tag on an empty value".to_string()
                } else {
                    "read as a tag, not as part of the value".to_string()
                },
                format!(
                    "quote it: '{meant}'. Unquoted, Calico reads a tag and an empty value: the seed cluster's \
                     selector became empty, and its node-specific peering a global one"
                ),
            )
        } else {
            (
                format!("YAML tag `{}` is not allowed here", tag.text),
                "a tag".to_string(),
                "remove the tag; write strings in quotes instead of tagging them".to_string(),
            )
        };
        diagnostics.push(Diagnostic::new(&YAML_TAG, tag.span, message).label(label).help(help).severity(severity));
        if is_scalar && !tag.text.starts_with("!!") && policy == TagPolicy::Repair {
            node.kind = NodeKind::Scalar { value: meant, quoted: true };
            node.span = Span { start: tag.span.start, ..node.span };
        }
    }
    match &mut node.kind {
        NodeKind::Scalar { .. } => {}
        NodeKind::Sequence(items) => {
            for item in items {
                repair_tags(item, text, policy, diagnostics);
            }
        }
        NodeKind::Mapping(entries) => {
            for entry in entries {
                repair_tags(&mut entry.key, text, policy, diagnostics);
                repair_tags(&mut entry.value, text, policy, diagnostics);
            }
        }
    }
}

fn remove_duplicate_keys(node: &mut Node, diagnostics: &mut Diagnostics) {
    match &mut node.kind {
        NodeKind::Scalar { .. } => {}
        NodeKind::Sequence(items) => items.iter_mut().for_each(|item| remove_duplicate_keys(item, diagnostics)),
        NodeKind::Mapping(entries) => {
            let mut first: HashMap<String, Span> = HashMap::new();
            entries.retain(|entry| {
                let name = json::key_text(&entry.key);
                match first.get(&name) {
                    Some(earlier) => {
                        diagnostics.push(
                            Diagnostic::new(&DUPLICATE_KEY, entry.key.span, format!("`{name}` is given twice"))
                                .label("given again here")
                                .secondary(*earlier, "first given here")
                                .help("keep one of them; calplan reads the first"),
                        );
                        false
                    }
                    None => {
                        first.insert(name, entry.key.span);
                        true
                    }
                }
            });
            for entry in entries {
                remove_duplicate_keys(&mut entry.value, diagnostics);
            }
        }
    }
}

/// The innermost list item strictly enclosing `pointer`: `/spec/bgp/peers/0` for
/// `/spec/bgp/peers/0/asNumber`.
fn enclosing_item(pointer: &str) -> Option<&str> {
    let mut end = pointer.rfind('/')?;
    loop {
        let parent = &pointer[..end];
        let last = &parent[parent.rfind('/')? + 1..];
        if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
            return Some(parent);
        }
        end = parent.rfind('/')?;
    }
}

/// Drops the nodes at the given pointers, deepest and last first so that list positions of
/// the others stay valid.
fn prune(root: &mut Node, mut pointers: Vec<String>) {
    pointers.sort_by_key(|pointer| std::cmp::Reverse(pointer_key(pointer)));
    pointers.dedup();
    for pointer in pointers {
        let Some((parent, last)) = pointer.rsplit_once('/') else { continue };
        let last = json::unescape(last);
        let Some(parent) = find_mut(root, parent) else { continue };
        match &mut parent.kind {
            NodeKind::Mapping(entries) => entries.retain(|entry| json::key_text(&entry.key) != last),
            NodeKind::Sequence(items) => {
                if let Ok(position) = last.parse::<usize>()
                    && position < items.len()
                {
                    items.remove(position);
                }
            }
            NodeKind::Scalar { .. } => {}
        }
    }
}

/// Orders pointers so that list positions compare as numbers.
fn pointer_key(pointer: &str) -> Vec<(u64, String)> {
    pointer.split('/').map(|segment| (segment.parse::<u64>().unwrap_or(u64::MAX), segment.to_string())).collect()
}

fn find_mut<'a>(root: &'a mut Node, pointer: &str) -> Option<&'a mut Node> {
    let mut node = root;
    for segment in pointer.split('/').skip(1) {
        let segment = json::unescape(segment);
        node = match &mut node.kind {
            NodeKind::Mapping(entries) => &mut entries.iter_mut().find(|entry| json::key_text(&entry.key) == segment)?.value,
            NodeKind::Sequence(items) => items.get_mut(segment.parse::<usize>().ok()?)?,
            NodeKind::Scalar { .. } => return None,
        };
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use calplan_diagnostics::SourceMap;

    fn check(text: &str) -> (Option<IntentFile>, Vec<String>) {
        let mut sources = SourceMap::new();
        let file = sources.add("intent.yaml", text);
        let mut diagnostics = Diagnostics::new();
        let intent = parse_intent(file, text, &mut diagnostics).intent;
        let rendered = diagnostics
            .into_sorted()
            .iter()
            .map(|d| format!("{} {} {} | {}", d.rule.code, sources.line_col(d.span()), d.message, d.help.clone().unwrap_or_default()))
            .collect();
        (intent, rendered)
    }

    #[test]
    fn the_seed_intent_parses_cleanly() {
        let (intent, diagnostics) = check(include_str!("../../../testdata/seed-rr/intent.yaml"));
        assert_eq!(diagnostics, Vec::<String>::new());
        let intent = intent.unwrap();
        assert_eq!(intent.spec.nodes.len(), 6);
        assert_eq!(intent.spec.bgp.unwrap().route_reflectors[0].cluster_id.value, "1.0.0.1");
    }

    #[test]
    fn every_structural_problem_is_reported_and_the_rest_still_parses() {
        let text = "apiVersion: calplan/v1\nkind: ClusterIntent\nmetadata: {name: x}\nspec:\n  calicoVersion: 3.30\n  pools:\n    - {name: p, cidr: 10.0.0.0/16, bolockSize: 24, ipipMode: Sometimes, natOutgoing: yes}\n  bgp:\n    peers:\n      - name: rr\n        nodeSelector: !has(route-reflector)\n        peerSelector: has(route-reflector)\n";
        let (intent, diagnostics) = check(text);
        let codes: Vec<&str> = diagnostics.iter().map(|d| &d[..5]).collect();
        assert_eq!(codes, ["E0004", "E0003", "E0004", "E0004", "E0002"], "{diagnostics:#?}");
        assert!(diagnostics[1].contains("did you mean `blockSize`?"), "{diagnostics:#?}");
        assert!(diagnostics[0].contains("quote it"), "{diagnostics:#?}");
        // `calicoVersion` is optional, so dropping the bad value leaves a readable intent
        // whose selector was repaired to the text the operator meant.
        let intent = intent.expect("repaired intent");
        let peer = &intent.spec.bgp.unwrap().peers[0];
        assert_eq!(peer.node_selector.as_ref().unwrap().value, "!has(route-reflector)");
    }

    #[test]
    fn enclosing_items_are_list_items() {
        assert_eq!(enclosing_item("/spec/bgp/peers/0/asNumber"), Some("/spec/bgp/peers/0"));
        assert_eq!(enclosing_item("/spec/routers/1/staticRoutes/0/via/2"), Some("/spec/routers/1/staticRoutes/0"));
        assert_eq!(enclosing_item("/spec/bgp/listenPort"), None);
        assert_eq!(enclosing_item("/spec/pools/0"), None);
    }

    #[test]
    fn empty_and_non_yaml_input_are_diagnostics() {
        assert_eq!(check("").1.len(), 1);
        assert_eq!(check("# only a comment\n").1.len(), 1);
        assert!(check("a: [1\n").1[0].starts_with("E0001"));
        assert!(check("\u{0}\u{1}").0.is_none());
    }
}
