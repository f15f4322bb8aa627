//! The pipeline from an intent's text to its analysis: parse, lower, analyse, validate.
//!
//! Pure apart from reading the input, which happens at the CLI edge before this runs.

use calplan_diagnostics::{Allowed, Diagnostics, FileId, SourceMap};
use calplan_model::Analysis;
use calplan_model::ipam::ObservedIpam;
use calplan_model::node_rules::ClusterNodes;
use calplan_validate::levels::CommandLine;

/// An intent, read and checked.
pub struct Checked {
    pub sources: SourceMap,
    pub file: FileId,
    /// `None` when the intent could not be read as an intent at all.
    pub analysis: Option<Analysis>,
    pub diagnostics: Diagnostics,
    /// Findings the intent's `allow` list or `--allow` took out of `diagnostics`.
    pub allowed: Vec<Allowed>,
}

impl Checked {
    /// The analysis, only if the intent has no errors.
    pub fn valid(&self) -> Option<&Analysis> {
        if self.diagnostics.has_errors() { None } else { self.analysis.as_ref() }
    }
}

/// Runs every check on an intent's text, with the intent's own `allow` list.
pub fn check(name: &str, text: String, observed: Option<&ObservedIpam>) -> Checked {
    check_with_levels(name, text, observed, &CommandLine::default())
}

/// Runs every check on an intent's text, then applies the intent's `allow` list and the
/// command line's `--allow`, `--warn` and `--deny`.
pub fn check_with_levels(name: &str, text: String, observed: Option<&ObservedIpam>, levels: &CommandLine) -> Checked {
    check_with_cluster(name, text, observed, levels, &ClusterNodes::default())
}

/// The nodes of the cluster as the current state has them (its Calico `Node`s), with those of
/// an inventory (`--nodes`), for [`check_with_cluster`].
pub fn cluster_nodes(state: &calplan_plan::current::CurrentState, inventory: Vec<calplan_calico::resources::CalicoNode>) -> ClusterNodes {
    let current = state.resources.as_ref().map(shared_nodes).unwrap_or_default();
    ClusterNodes { current, inventory }
}

/// The Nodes of a resource set, shared with it.
fn shared_nodes(resources: &calplan_calico::resources::ResourceSet) -> Vec<std::sync::Arc<calplan_calico::resources::Resource>> {
    resources
        .resources
        .iter()
        .filter(|((kind, _), _)| *kind == calplan_calico::resources::ResourceKind::Node)
        .map(|(_, node)| node.clone())
        .collect()
}

/// Runs every check on an intent's text with the nodes read from the cluster (which join the
/// intent's and which its `nodeRules` apply to), then applies the severity overrides.
pub fn check_with_cluster(
    name: &str,
    text: String,
    observed: Option<&ObservedIpam>,
    levels: &CommandLine,
    cluster: &ClusterNodes,
) -> Checked {
    let mut sources = SourceMap::new();
    let file = sources.add(name, text);
    let mut diagnostics = Diagnostics::new();
    let text = sources.file(file).text();
    let parsed = calplan_syntax::parse_intent(file, text, &mut diagnostics);
    let analysis = parsed.intent.map(|intent| {
        let model = calplan_model::lower_with_cluster(file, text, &intent, cluster, &mut diagnostics);
        // The intent's syntax tree has served: its memory goes before the analysis takes its own.
        drop(intent);
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
    let allow = analysis.as_ref().map_or(&[][..], |analysis| &analysis.model.allow[..]);
    let allowed = calplan_validate::levels::apply(allow, levels, &mut diagnostics);
    Checked { sources, file, analysis, diagnostics, allowed }
}

/// Checks an intent with the current state's IPAM and nodes, then plans it against that state
/// (`calplan plan`): [`check_with_cluster`] then [`plan`], except that the analysis' session
/// graph, which only the rules read, is freed before planning. The returned analysis has no
/// graph: it is for the diagnostics, not for compiling.
pub fn check_and_plan(
    name: &str,
    text: String,
    levels: &CommandLine,
    cluster: &ClusterNodes,
    intent: calplan_plan::plan::Fingerprint,
    loaded: &crate::current::Loaded,
) -> (Checked, Result<Option<calplan_plan::plan::Plan>, calplan_plan::planner::PlanError>) {
    let mut checked = check_with_cluster(name, text, loaded.state.observed_ipam().as_ref(), levels, cluster);
    if let Some(analysis) = checked.analysis.as_mut() {
        // The planner reads the model and the resources, never the graph: at 20,000 nodes
        // and 800,000 sessions it is the largest part of the analysis.
        analysis.graph.graph.clear();
        analysis.graph.graph.shrink_to_fit();
        analysis.graph.node_vertices = Vec::new();
    }
    let plan = plan(&checked, intent, loaded);
    (checked, plan)
}

/// An imported intent, checked.
pub struct Imported {
    pub text: String,
    /// What the intent cannot express.
    pub notes: Vec<String>,
    /// The rules whose findings the cluster has, allowed in the intent.
    pub allowed: Vec<calplan_plan::import::Finding>,
    /// The intent checked with its `allow` list: errors left are ones no allowance can take.
    pub checked: Checked,
}

/// The intent that reproduces a cluster (`calplan import`): written, checked against the same
/// IPAM, and given an `allow` list for the findings the cluster has, so that it compiles as
/// the cluster runs. Findings that cannot be allowed stay errors in `checked`.
pub fn import(
    resources: &calplan_calico::resources::ResourceSet,
    cluster: &str,
    reported_version: Option<&str>,
    datastore: Option<calplan_model::Datastore>,
    observed: Option<&ObservedIpam>,
) -> Imported {
    let (mut text, notes) = calplan_plan::import::intent_yaml(resources, cluster, reported_version, datastore);
    // The nodes the intent's rules describe are not listed: the check takes them from the
    // cluster, as `plan --current` does. (An intent without rules lists every node.)
    let cluster = if text.contains("\n  nodeRules:\n") {
        ClusterNodes { current: shared_nodes(resources), inventory: Vec::new() }
    } else {
        ClusterNodes::default()
    };
    let levels = CommandLine::default();
    let first = check_with_cluster("imported intent", text.clone(), observed, &levels, &cluster);
    let mut by_rule: std::collections::BTreeMap<&'static str, calplan_plan::import::Finding> = std::collections::BTreeMap::new();
    for diagnostic in first.diagnostics.clone().into_sorted() {
        if !diagnostic.is_error() || !diagnostic.overridable {
            continue;
        }
        by_rule
            .entry(diagnostic.rule.code)
            .or_insert_with(|| calplan_plan::import::Finding {
                code: diagnostic.rule.code,
                name: diagnostic.rule.name,
                messages: Vec::new(),
            })
            .messages
            .push(diagnostic.message);
    }
    let allowed: Vec<calplan_plan::import::Finding> = by_rule.into_values().collect();
    if allowed.is_empty() {
        return Imported { text, notes, allowed, checked: first };
    }
    text.push_str(&calplan_plan::import::allow_section(&allowed));
    let checked = check_with_cluster("imported intent", text.clone(), observed, &levels, &cluster);
    Imported { text, notes, allowed, checked }
}

/// Plans an intent (already checked with the current IPAM affinities) against the current
/// state: `None` when the intent has errors (they are reported with the check), an error when
/// a state on the way does not compile. Findings the check allowed are listed in the plan's notes, with who allowed them
/// and why, so that a reviewer of the plan sees them too.
pub fn plan(
    checked: &Checked,
    intent: calplan_plan::plan::Fingerprint,
    loaded: &crate::current::Loaded,
) -> Result<Option<calplan_plan::plan::Plan>, calplan_plan::planner::PlanError> {
    let Some(desired) = checked.valid() else { return Ok(None) };
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
    let mut plan = calplan_plan::planner::plan(&calplan_plan::planner::Input {
        intent,
        desired,
        current: &loaded.state,
        sources: loaded.state.sources.clone(),
        templates: &templates,
        observations,
    })?;
    plan.notes.extend(allowed_notes(checked));
    Ok(Some(plan))
}

/// One note per allowed finding: `allowed E0404 session-not-established (intent: REASON):
/// MESSAGE at FILE:LINE:COLUMN`.
fn allowed_notes(checked: &Checked) -> Vec<String> {
    checked
        .allowed
        .iter()
        .map(|finding| {
            let diagnostic = &finding.diagnostic;
            let by = match &finding.origin {
                calplan_diagnostics::Origin::CommandLine => "by `--allow`".to_string(),
                calplan_diagnostics::Origin::Intent { reason, .. } => format!("by `spec.allow`: {reason}"),
            };
            let position = checked.sources.line_col(diagnostic.span());
            let file = checked.sources.file(diagnostic.span().file).name();
            format!("allowed {} {} ({by}): {} at {file}:{position}", diagnostic.rule.code, diagnostic.rule.name, diagnostic.message)
        })
        .collect()
}
