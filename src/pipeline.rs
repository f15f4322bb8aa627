//! The pipeline from an intent's text to its analysis: parse, lower, analyse, validate.
//!
//! Pure apart from reading the input, which happens at the CLI edge before this runs.

use calplan_diagnostics::{Diagnostics, FileId, SourceMap};
use calplan_model::Analysis;
use calplan_model::ipam::ObservedAffinity;

/// An intent, read and checked.
pub struct Checked {
    pub sources: SourceMap,
    pub file: FileId,
    /// `None` when the intent could not be read as an intent at all.
    pub analysis: Option<Analysis>,
    pub diagnostics: Diagnostics,
}

impl Checked {
    /// The analysis, only if the intent has no errors.
    pub fn valid(&self) -> Option<&Analysis> {
        if self.diagnostics.has_errors() { None } else { self.analysis.as_ref() }
    }
}

/// Runs every check on an intent's text.
pub fn check(name: &str, text: String, observed: Option<&[ObservedAffinity]>) -> Checked {
    let mut sources = SourceMap::new();
    let file = sources.add(name, text);
    let mut diagnostics = Diagnostics::new();
    let text = sources.file(file).text();
    let parsed = calplan_syntax::parse_intent(file, text, &mut diagnostics);
    let analysis = parsed.intent.map(|intent| {
        let model = calplan_model::lower(file, text, &intent, &mut diagnostics);
        let analysis = Analysis::new(model, observed);
        let before = diagnostics.len();
        calplan_validate::validate(&analysis, &mut diagnostics);
        // A list item the schema pass had to cut a value from is judged again once it is
        // whole: what the rules find missing in it now is that value.
        diagnostics.retain_since(before, |diagnostic| !parsed.damaged.iter().any(|item| item.contains(diagnostic.span())));
        analysis
    });
    // A password written inline is never shown, not even in the snippet of its own error.
    sources.redact(&parsed.secrets);
    Checked { sources, file, analysis, diagnostics }
}

/// Plans an intent (already checked with the current IPAM affinities) against the current
/// state.
pub fn plan(
    checked: &Checked,
    intent: calplan_plan::plan::Fingerprint,
    loaded: &crate::current::Loaded,
) -> Option<calplan_plan::plan::Plan> {
    let desired = checked.valid()?;
    let templates = calplan_targets::Templates::builtin();
    let observations = loaded
        .diagnostics
        .iter()
        .map(|diagnostic| {
            let position = loaded.sources.line_col(diagnostic.span());
            let file = loaded.sources.file(diagnostic.span().file).name();
            format!("{file}:{position}: {}", diagnostic.message)
        })
        .collect();
    Some(calplan_plan::planner::plan(&calplan_plan::planner::Input {
        intent,
        desired,
        current: &loaded.state,
        sources: loaded.state.sources.clone(),
        templates: &templates,
        observations,
    }))
}
