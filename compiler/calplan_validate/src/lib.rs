//! Validation: every rule calplan checks an intent against, one rule per file under
//! [`rules`], each with a stable code and its documentation.
//!
//! Rules read the [`Analysis`] (model, Calico resources, peerings, block placement, BGP graph)
//! and push diagnostics; they never stop at the first problem and never change the model.

pub mod levels;
pub mod rules;

use calplan_diagnostics::{Diagnostics, Rule};
use calplan_model::Analysis;

/// Runs every rule.
pub fn validate(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    for check in rules::CHECKS {
        check(analysis, diagnostics);
    }
}

/// Every rule calplan reports, from parsing to the BGP graph, in code order.
pub fn all_rules() -> Vec<&'static Rule> {
    let mut all: Vec<&'static Rule> =
        calplan_syntax::rules::ALL.iter().chain(calplan_model::rules::ALL).chain(rules::ALL).copied().collect();
    all.sort_by_key(|rule| rule.code);
    all
}

/// The rule reference, generated from the rules' own documentation (`docs/rules.md`).
pub fn rules_reference() -> String {
    let mut out = String::from(
        "# calplan rules\n\nGenerated from the rules' doc comments by `cargo test` (`UPDATE_GOLDEN=1` rewrites it).\n\n\
         *Allowable* rules' findings may be allowed (`--allow RULE`, `spec.allow`) or lowered (`--warn RULE`); every rule may be \
         raised (`--deny RULE`). The others mean an input calplan could not read or an artifact Calico would refuse.\n\n\
         | code | name | severity | allowable | summary |\n|---|---|---|---|---|\n",
    );
    for rule in all_rules() {
        let allowable = if rule.overridable { "yes" } else { "no" };
        out.push_str(&format!("| {} | `{}` | {} | {allowable} | {} |\n", rule.code, rule.name, rule.severity, rule.summary));
    }
    for rule in all_rules() {
        out.push_str(&format!("\n## {} `{}`\n\n{}\n", rule.code, rule.name, rule.docs.trim().replace("## ", "### ")));
    }
    out
}
