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
mod node_view;
pub mod routers;
pub mod routes;
pub mod rules_model;
mod templates;

pub use artifact::{Artifact, Manifest, Output};
pub use node_view::NodeView;
pub use templates::{TemplateError, Templates};

use calplan_model::Analysis;
use rayon::prelude::*;
use std::collections::BTreeSet;

/// Where artifacts go as soon as they are rendered, when the caller writes them out rather
/// than keeping them: a 5,000-node compile writes gigabytes of route tables, which are never
/// all in memory at once this way.
pub type Sink<'a> = &'a (dyn Fn(&Artifact) -> Result<(), String> + Sync);

/// What a target needs besides the analysis.
pub struct Context<'a> {
    pub analysis: &'a Analysis,
    pub templates: &'a Templates,
    /// Only this node's artifacts (`--node`).
    pub node: Option<&'a str>,
    /// When set, each artifact is handed here as it is rendered and kept only as its digest.
    pub sink: Option<Sink<'a>>,
}

impl Context<'_> {
    /// The nodes to render, in name order, filtered by `--node`.
    pub fn nodes(&self) -> Vec<&calplan_model::Node> {
        let mut nodes: Vec<&calplan_model::Node> =
            self.analysis.model.nodes.iter().filter(|node| self.node.is_none_or(|only| node.name.value == only)).collect();
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
pub static REGISTRY: &[&dyn Target] =
    &[&calico::Calico, &bird::Bird, &bird_calico::BirdCalico, &routes::Routes, &nft::Nft, &iptables::Iptables, &routers::Routers];

/// The names `--target` accepts.
pub fn target_names() -> Vec<&'static str> {
    REGISTRY.iter().map(|target| target.name()).collect()
}

/// Renders the selected targets (all when `selected` is `None`), in parallel.
pub fn compile(context: &Context, selected: Option<&BTreeSet<String>>) -> Result<Output, TemplateError> {
    let targets: Vec<&dyn Target> =
        REGISTRY.iter().copied().filter(|target| selected.is_none_or(|names| names.contains(target.name()))).collect();
    let rendered: Result<Vec<(&'static str, Vec<Artifact>)>, TemplateError> = targets
        .par_iter()
        .map(|target| {
            let artifacts = target.render(context)?;
            Ok((target.name(), artifacts.into_iter().map(|artifact| hand_over(context, artifact)).collect::<Result<_, _>>()?))
        })
        .collect();
    Ok(Output::new(rendered?))
}

/// Gives an artifact to the context's sink, if there is one, keeping only its digest.
fn hand_over(context: &Context, artifact: Artifact) -> Result<Artifact, TemplateError> {
    match context.sink {
        Some(sink) if !artifact.is_handed_over() => {
            // The digest first, so that a sink comparing contents by digest reads it.
            let artifact = artifact.with_digest();
            sink(&artifact).map_err(TemplateError)?;
            Ok(artifact.handed_over())
        }
        _ => Ok(artifact),
    }
}

/// Renders a per-node artifact for every selected node, in parallel.
pub fn per_node<F>(context: &Context, render: F) -> Result<Vec<Artifact>, TemplateError>
where
    F: Fn(&NodeView) -> Result<Vec<Artifact>, TemplateError> + Sync,
{
    let nodes = context.nodes();
    let rendered: Result<Vec<Vec<Artifact>>, TemplateError> = nodes
        .par_iter()
        .map(|node| {
            let artifacts = render(&NodeView::new(context.analysis, node))?;
            artifacts.into_iter().map(|artifact| hand_over(context, artifact)).collect()
        })
        .collect();
    Ok(rendered?.into_iter().flatten().collect())
}
