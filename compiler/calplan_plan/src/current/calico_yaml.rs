//! Calico resources as `calicoctl get … -o yaml` prints them: a `List` or `<Kind>List` with
//! `items`, a bare sequence, a single object, or several documents.
//!
//! Server-managed metadata (`resourceVersion`, `uid`, `creationTimestamp`) is kept, because
//! an etcd update needs it, but never compared. Tags are warned about and read the way Calico
//! read them: the seed's `nodeSelector: !has(route-reflector)` is an empty selector here.

use crate::current::Read;
use calplan_calico::resources::{Resource, ResourceKind, ResourceSet};
use calplan_diagnostics::{Diagnostic, Diagnostics, FileId, declare_rule};
use calplan_syntax::yaml::{Node, NodeKind};
use calplan_syntax::{TagPolicy, de, read_yaml, repair_tags};

declare_rule! {
    /// ## What it does
    /// Reports a current-state file calplan cannot read as Calico resources: not YAML, an
    /// object without `kind`, a field of the wrong type.
    ///
    /// ## Why is this bad?
    /// A plan computed from a state it misread would change the wrong things.
    ///
    /// ## Example
    /// A `calicoctl get ippools -o yaml` export cut off in the middle.
    pub static UNREADABLE_STATE = ("E0701", "unreadable-current-state", Error, "a current-state source that cannot be read");
}

/// Reads every Calico resource in a YAML export. Kinds calplan does not plan (such as
/// `WorkloadEndpoint`) are skipped; a resource it cannot read is an error naming its line.
pub fn read(file: FileId, text: &str) -> Read<ResourceSet> {
    let mut diagnostics = Diagnostics::new();
    let Some(mut documents) = read_yaml(file, text, &mut diagnostics) else {
        return Read { value: None, diagnostics };
    };
    let mut set = ResourceSet::default();
    for document in &mut documents {
        repair_tags(document, text, TagPolicy::KeepCalicosReading, &mut diagnostics);
        for item in items(document) {
            read_item(item, &mut set, &mut diagnostics);
        }
    }
    let failed = diagnostics.has_errors();
    Read { value: (!failed).then_some(set), diagnostics }
}

/// The Tigera operator's `Installation` among the documents (`kubectl get installation default
/// -o yaml`, an `InstallationList`, or beside Calico's resources), if any. What cannot be read
/// as YAML is reported by [`read`]; here it is no Installation.
pub fn installation(file: FileId, text: &str) -> Option<serde_json::Value> {
    let mut ignored = Diagnostics::new();
    let documents = read_yaml(file, text, &mut ignored)?;
    documents.iter().flat_map(items).find_map(|item| {
        let value: serde_json::Value = de::from_node(item).ok()?;
        calplan_calico::installation::is_installation(&value).then_some(value)
    })
}

/// The resources in a document: a list's items, a sequence's elements, or the document.
pub(crate) fn items(document: &Node) -> Vec<&Node> {
    match &document.kind {
        NodeKind::Sequence(items) => items.iter().collect(),
        NodeKind::Mapping(_) => match document.get("items").and_then(Node::as_sequence) {
            Some(items) if document.get("kind").and_then(Node::as_str).is_some_and(|kind| kind.ends_with("List")) => items.iter().collect(),
            _ => vec![document],
        },
        NodeKind::Scalar { .. } => Vec::new(),
    }
}

pub(crate) fn read_item(item: &Node, set: &mut ResourceSet, diagnostics: &mut Diagnostics) {
    let Some(kind_text) = item.get("kind").and_then(Node::as_str) else {
        if item.as_mapping().is_some_and(|entries| !entries.is_empty()) {
            diagnostics.push(
                Diagnostic::new(&UNREADABLE_STATE, item.head_span(), "a resource without `kind`")
                    .label("expected `kind: IPPool`, `BGPPeer`, `BGPConfiguration` or `Node`")
                    .help("pass the output of `calicoctl get ippools,bgppeers,bgpconfigurations,nodes -o yaml`"),
            );
        }
        return;
    };
    let Some(kind) = ResourceKind::from_kind(kind_text) else { return };
    let result = match kind {
        ResourceKind::IpPool => de::from_node(item).map(Resource::IpPool),
        ResourceKind::BgpPeer => de::from_node(item).map(Resource::BgpPeer),
        ResourceKind::BgpConfiguration => de::from_node(item).map(Resource::BgpConfiguration),
        ResourceKind::Node => de::from_node(item).map(Resource::Node),
    };
    match result {
        Ok(resource) => {
            set.insert(resource);
        }
        Err(error) => diagnostics.push(
            Diagnostic::new(
                &UNREADABLE_STATE,
                error.span.unwrap_or(item.head_span()),
                format!("cannot read this {kind_text}: {}", error.message),
            )
            .label("here")
            .help(format!("expected a Calico `{kind_text}` as `calicoctl get -o yaml` prints it")),
        ),
    }
}
