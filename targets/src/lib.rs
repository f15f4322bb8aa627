//! The back ends: every artifact calplan compiles from an analysed intent.
//!
//! Each target is one module with one `Target` implementation and one line in [`REGISTRY`];
//! it reads the [`Analysis`] and returns artifacts (path, contents, the intent element they
//! came from). Targets never read files, never depend on each other and never on the parser:
//! the CLI writes what they return. Templated text lives in `targets/templates/` (minijinja),
//! which `--templates DIR` can override file by file.

mod artifact;
pub mod bird;
pub mod bird_calico;
pub mod calico;
pub mod iptables;
pub mod nft;
pub mod routers;
pub mod routes;
mod node_view;
mod templates;

pub use artifact::{Artifact, Manifest, Output};
pub use node_view::NodeView;
pub use templates::{TemplateError, Templates};

use calplan_model::Analysis;
use rayon::prelude::*;
use std::collections::BTreeSet;

/// What a target needs besides the analysis.
pub struct Context<'a> {
    pub analysis: &'a Analysis,
    pub templates: &'a Templates,
    /// Only this node's artifacts (`--node`).
    pub node: Option<&'a str>,
}

impl Context<'_> {
    /// The nodes to render, in name order, filtered by `--node`.
    pub fn nodes(&self) -> Vec<&calplan_model::Node> {
        let mut nodes: Vec<&calplan_model::Node> = self
            .analysis
            .model
            .nodes
            .iter()
            .filter(|node| self.node.is_none_or(|only| node.name.value == only))
            .collect();
        nodes.sort_by(|a, b| a.name.value.cmp(&b.name.value));
        nodes
    }
}

/// A back end.
pub trait Target: Sync {
    /// The name `--target` selects it by.
    fn name(&self) -> &'static str;
    fn render(&self, context: &Context) -> Result<Vec<Artifact>, TemplateError>;
}

/// Every target, in the order their artifacts are listed.
pub static REGISTRY: &[&dyn Target] = &[
    &calico::Calico,
    &bird::Bird,
    &bird_calico::BirdCalico,
    &routes::Routes,
    &nft::Nft,
    &iptables::Iptables,
    &routers::Routers,
];

/// The names `--target` accepts.
pub fn target_names() -> Vec<&'static str> {
    REGISTRY.iter().map(|target| target.name()).collect()
}

/// Renders the selected targets (all when `selected` is `None`), in parallel.
pub fn compile(context: &Context, selected: Option<&BTreeSet<String>>) -> Result<Output, TemplateError> {
    let targets: Vec<&dyn Target> =
        REGISTRY.iter().copied().filter(|target| selected.is_none_or(|names| names.contains(target.name()))).collect();
    let rendered: Result<Vec<(&'static str, Vec<Artifact>)>, TemplateError> =
        targets.par_iter().map(|target| Ok((target.name(), target.render(context)?))).collect();
    Ok(Output::new(rendered?))
}

/// Renders a per-node artifact for every selected node, in parallel.
pub fn per_node<F>(context: &Context, render: F) -> Result<Vec<Artifact>, TemplateError>
where
    F: Fn(&NodeView) -> Result<Vec<Artifact>, TemplateError> + Sync,
{
    let nodes = context.nodes();
    let rendered: Result<Vec<Vec<Artifact>>, TemplateError> = nodes
        .par_iter()
        .map(|node| render(&NodeView::new(context.analysis, node)))
        .collect();
    Ok(rendered?.into_iter().flatten().collect())
}
