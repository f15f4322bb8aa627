use crate::{Allowed, Diagnostic, Origin, Rule, Severity, SourceMap};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A SARIF 2.1.0 log with one run, for code-scanning dashboards.
///
/// Only the rules that produced a result are listed, in code order, so the output is stable.
/// Allowed findings are results with a suppression (`inSource` for the intent's `allow` list,
/// with its reason as the justification; `external` for `--allow`), which code-scanning tools
/// show as dismissed rather than not at all.
pub fn sarif(diagnostics: &[Diagnostic], allowed: &[Allowed], sources: &SourceMap, tool_version: &str) -> String {
    let rules: BTreeMap<&str, &Rule> = diagnostics
        .iter()
        .chain(allowed.iter().map(|finding| &finding.diagnostic))
        .map(|diagnostic| (diagnostic.rule.code, diagnostic.rule))
        .collect();
    let rule_index: BTreeMap<&str, usize> = rules.keys().enumerate().map(|(index, code)| (*code, index)).collect();
    let region = |span: crate::Span| {
        let file = sources.file(span.file);
        let start = file.line_col(span.start as usize);
        let end = file.line_col(span.end as usize);
        json!({
            "startLine": start.line,
            "startColumn": start.column,
            "endLine": end.line,
            "endColumn": end.column,
        })
    };
    let location = |span: crate::Span, message: Option<&str>| {
        let mut location = json!({
            "physicalLocation": {
                "artifactLocation": { "uri": sources.file(span.file).name() },
                "region": region(span),
            }
        });
        if let Some(message) = message {
            location["message"] = json!({ "text": message });
        }
        location
    };
    let suppressions = |origin: Option<&Origin>| match origin {
        None => None,
        Some(Origin::CommandLine) => Some(json!([{ "kind": "external", "justification": "--allow on the command line" }])),
        Some(Origin::Intent { reason, .. }) => Some(json!([{ "kind": "inSource", "justification": reason }])),
    };
    let results: Vec<Value> = diagnostics
        .iter()
        .map(|diagnostic| (diagnostic, None))
        .chain(allowed.iter().map(|finding| (&finding.diagnostic, Some(&finding.origin))))
        .map(|(diagnostic, origin)| {
            let mut text = diagnostic.message.clone();
            if let Some(help) = &diagnostic.help {
                text.push_str("\nhelp: ");
                text.push_str(help);
            }
            let mut result = json!({
                "ruleId": diagnostic.rule.code,
                "ruleIndex": rule_index[diagnostic.rule.code],
                "level": level(diagnostic.severity),
                "message": { "text": text },
                "locations": [location(diagnostic.primary.span, diagnostic.primary.message.as_deref())],
            });
            if !diagnostic.secondary.is_empty() {
                result["relatedLocations"] = diagnostic
                    .secondary
                    .iter()
                    .enumerate()
                    .map(|(id, label)| {
                        let mut related = location(label.span, label.message.as_deref());
                        related["id"] = json!(id);
                        related
                    })
                    .collect();
            }
            if let Some(suppressions) = suppressions(origin) {
                result["suppressions"] = suppressions;
            }
            result
        })
        .collect();
    let rules: Vec<Value> = rules
        .values()
        .map(|rule| {
            json!({
                "id": rule.code,
                "name": rule.name,
                "shortDescription": { "text": rule.summary },
                "fullDescription": { "text": rule.docs.trim() },
                "defaultConfiguration": { "level": level(rule.severity) },
            })
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "calplan",
                    "version": tool_version,
                    "rules": rules,
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    });
    let mut text = serde_json::to_string_pretty(&log).expect("sarif serializes");
    text.push('\n');
    text
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}
