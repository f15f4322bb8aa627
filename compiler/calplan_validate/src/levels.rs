//! Severity overrides, as linters have them: `--allow`, `--warn` and `--deny` on the command
//! line and the intent's `spec.allow` list, resolved against the rule registry and applied to
//! a run's diagnostics.
//!
//! - A rule is named by its code (`E0402`, any case) or its name (`routes-not-propagated`).
//! - The command line wins over the intent, so a CI job's `--deny` cannot be undone by an
//!   intent a pull request edits. On the command line the strictest level named for a rule
//!   wins (`--deny` over `--warn` over `--allow`), whatever the order of the flags.
//! - Findings that are not overridable (see [`Rule::overridable`] and
//!   [`calplan_diagnostics::Diagnostic::not_overridable`]) are only ever raised: allowing or
//!   warning such a rule is refused, on the command line as an error, in the intent as
//!   `rule-not-allowable`.
//! - An intent entry that allows nothing is `unused-allow`; a command-line `--allow` that
//!   allows nothing is not reported (a CI job may allow a rule for every intent it checks).
//! - `check --deny-warnings` applies after all of these.

use crate::rules::{allow_without_reason, rule_not_allowable, unknown_rule, unused_allow};
use calplan_diagnostics::{Allowed, Diagnostic, Diagnostics, Level, Origin, Rule, Setting};
use calplan_model::AllowEntry;
use std::collections::BTreeMap;

/// The levels the command line sets, by rule code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandLine {
    levels: BTreeMap<&'static str, Level>,
}

impl CommandLine {
    /// Resolves `--allow`, `--warn` and `--deny` flags; `Err` names the first flag that names no
    /// rule (with the closest rule) or allows what cannot be allowed.
    pub fn new<'a>(flags: impl IntoIterator<Item = (Level, &'a str)>) -> Result<CommandLine, String> {
        let mut levels: BTreeMap<&'static str, Level> = BTreeMap::new();
        for (level, text) in flags {
            let rule = rule_named(text).map_err(|suggestion| format!("`--{} {text}`: {suggestion}", level.as_str()))?;
            if level != Level::Deny && !rule.overridable {
                return Err(format!(
                    "`--{} {text}`: the findings of {} `{}` cannot be {}: {}",
                    level.as_str(),
                    rule.code,
                    rule.name,
                    if level == Level::Allow { "allowed" } else { "lowered to warnings" },
                    why_fixed(rule)
                ));
            }
            let entry = levels.entry(rule.code).or_insert(level);
            *entry = (*entry).max(level);
        }
        Ok(CommandLine { levels })
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }
}

/// The rule a code or name stands for; `Err` says it is none, with the closest one.
pub fn rule_named(text: &str) -> Result<&'static Rule, String> {
    let rules = crate::all_rules();
    if let Some(rule) = rules.iter().find(|rule| rule.code.eq_ignore_ascii_case(text) || rule.name == text) {
        return Ok(rule);
    }
    let known = rules.iter().flat_map(|rule| [rule.code, rule.name]);
    Err(match calplan_syntax::schema::did_you_mean(text, known) {
        Some(close) => {
            let rule = rules.iter().find(|rule| rule.code == close || rule.name == close).expect("a known rule");
            format!("no rule is called `{text}`; did you mean `{}` ({})?", rule.name, rule.code)
        }
        None => format!("no rule is called `{text}`; `docs/rules.md` lists every code and name"),
    })
}

/// Why a rule's findings cannot be allowed, in words.
pub fn why_fixed(rule: &Rule) -> &'static str {
    match rule.code.get(1..3) {
        Some("00") => "they mean the file could not be read as an intent",
        Some("01") => "they mean a value could not be read, so anything written from it would be a guess",
        Some("07") => "they mean a current-state source could not be read",
        Some("08") => "they are about the overrides themselves",
        _ => "Calico or the artifact's own checker would refuse what calplan writes from it",
    }
}

/// Applies the intent's `allow` list and the command line's levels to `diagnostics`, reporting
/// the entries that name no rule, that cannot allow, or that allowed nothing. Returns the
/// findings taken out of the report.
pub fn apply(allow: &[AllowEntry], command_line: &CommandLine, diagnostics: &mut Diagnostics) -> Vec<Allowed> {
    let mut settings: BTreeMap<&'static str, Setting> = BTreeMap::new();
    let mut in_force: Vec<(usize, &'static Rule)> = Vec::new();
    for (index, entry) in allow.iter().enumerate() {
        let rule = match rule_named(&entry.rule.value) {
            Ok(rule) => rule,
            Err(message) => {
                diagnostics.push(
                    Diagnostic::new(&unknown_rule::RULE, entry.rule.span, message)
                        .label("no such rule")
                        .help("name a rule by its code (`E0402`) or its name (`routes-not-propagated`), as diagnostics print them"),
                );
                continue;
            }
        };
        if entry.reason.value.trim().is_empty() {
            diagnostics.push(
                Diagnostic::new(
                    &allow_without_reason::RULE,
                    entry.reason.span,
                    format!("the allowance of {} `{}` gives no reason", rule.code, rule.name),
                )
                .label("blank")
                .help("say why the findings are accepted and until when, for whoever reviews the intent"),
            );
            continue;
        }
        if !rule.overridable {
            diagnostics.push(
                Diagnostic::new(
                    &rule_not_allowable::RULE,
                    entry.rule.span,
                    format!("the findings of {} `{}` cannot be allowed: {}", rule.code, rule.name, why_fixed(rule)),
                )
                .label("cannot be allowed")
                .help("fix the finding instead, and remove this entry"),
            );
            continue;
        }
        settings.entry(rule.code).or_insert_with(|| Setting {
            level: Level::Allow,
            origin: Origin::Intent { index, reason: entry.reason.value.trim().to_string() },
        });
        in_force.push((index, rule));
    }
    for (code, level) in &command_line.levels {
        settings.insert(code, Setting { level: *level, origin: Origin::CommandLine });
    }
    let allowed = diagnostics.apply_levels(&settings);
    let mut unused = Diagnostics::new();
    for (index, rule) in in_force {
        let overridden = !matches!(&settings[rule.code].origin, Origin::Intent { .. });
        if overridden || allowed.iter().any(|finding| finding.diagnostic.rule.code == rule.code) {
            continue;
        }
        unused.push(
            Diagnostic::new(&unused_allow::RULE, allow[index].rule.span, format!("{} `{}` reports nothing to allow", rule.code, rule.name))
                .label("allows nothing")
                .help("remove the entry: left in place it would hide the rule's next finding without review"),
        );
    }
    // The overrides' own findings can be raised like any other (`--deny unused-allow`).
    unused.apply_levels(&settings);
    diagnostics.extend(unused);
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_named_by_code_or_name_with_suggestions() {
        assert_eq!(rule_named("E0402").unwrap().name, "routes-not-propagated");
        assert_eq!(rule_named("e0402").unwrap().name, "routes-not-propagated");
        assert_eq!(rule_named("session-not-established").unwrap().code, "E0404");
        let error = rule_named("routes-not-propagating").unwrap_err();
        assert_eq!(error, "no rule is called `routes-not-propagating`; did you mean `routes-not-propagated` (E0402)?");
        assert!(rule_named("zzz").unwrap_err().contains("docs/rules.md"));
    }

    #[test]
    fn the_command_line_takes_the_strictest_level_and_refuses_fixed_rules() {
        let levels = CommandLine::new([(Level::Deny, "E0404"), (Level::Allow, "session-not-established")]).unwrap();
        assert_eq!(levels.levels["E0404"], Level::Deny);
        let error = CommandLine::new([(Level::Allow, "cidr-not-strictly-masked")]).unwrap_err();
        assert!(
            error.starts_with("`--allow cidr-not-strictly-masked`: the findings of E0201 `cidr-not-strictly-masked` cannot be allowed"),
            "{error}"
        );
        let error = CommandLine::new([(Level::Warn, "E0001")]).unwrap_err();
        assert!(error.contains("cannot be lowered to warnings: they mean the file could not be read as an intent"), "{error}");
        assert!(CommandLine::new([(Level::Deny, "E0001")]).is_ok(), "raising is always allowed");
        assert!(CommandLine::new([(Level::Allow, "E9999")]).unwrap_err().starts_with("`--allow E9999`: no rule is called `E9999`"));
    }
}
