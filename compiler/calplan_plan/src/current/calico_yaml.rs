//! Calico resources as `calicoctl get … -o yaml` prints them: a `List` or `<Kind>List` with
//! `items`, a bare sequence, a single object, or several documents.
//!
//! Server-managed metadata (`resourceVersion`, `uid`, `creationTimestamp`) is kept, because
//! an etcd update needs it, but never compared. Tags are warned about and read the way Calico
//! read them: the seed's `nodeSelector: !has(route-reflector)` is an empty selector here.
//! Everything else is read as Calico reads it too: `spec: null` is the zero value, a field
//! Calico does not know is ignored (with a warning), and a value Calico's validation refuses
//! is an error ([`validate`](crate::current::validate)).

use crate::current::Read;
use crate::current::validate;
use calplan_calico::resources::{Resource, ResourceKind, ResourceSet};
use calplan_diagnostics::{Diagnostic, Diagnostics, FileId, declare_rule};
use calplan_syntax::yaml::{Node, NodeKind, Scalar};
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
        for item in items(document, &mut diagnostics) {
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
    // A document without the kind's name holds no Installation: a 20,000-node export is not
    // parsed a second time to find that out.
    if !text.contains(calplan_calico::installation::KIND) {
        return None;
    }
    let mut ignored = Diagnostics::new();
    let documents = read_yaml(file, text, &mut ignored)?;
    let items: Vec<&Node> = documents.iter().flat_map(|document| items(document, &mut ignored)).collect();
    items.into_iter().find_map(|item| {
        // Only an item of the kind is converted, not every Node of the list.
        if item.get("kind").and_then(Node::as_str) != Some(calplan_calico::installation::KIND) {
            return None;
        }
        let value: serde_json::Value = de::from_node(item).ok()?;
        calplan_calico::installation::is_installation(&value).then_some(value)
    })
}

/// The resources in a document: a list's items, a sequence's elements, or the document.
pub(crate) fn items<'a>(document: &'a Node, diagnostics: &mut Diagnostics) -> Vec<&'a Node> {
    match &document.kind {
        NodeKind::Sequence(items) => items.iter().collect(),
        NodeKind::Mapping(_) if document.get("kind").and_then(Node::as_str).is_some_and(|kind| kind.ends_with("List")) => {
            match document.get("items") {
                Some(items) if items.as_sequence().is_some() => items.as_sequence().unwrap_or_default().iter().collect(),
                Some(items) if items.scalar() != Some(Scalar::Null) => {
                    diagnostics.push(
                        Diagnostic::new(
                            &validate::INVALID_STATE,
                            items.span,
                            format!("`items` must be a list of resources, found {}", items.describe()),
                        )
                        .label("not a list")
                        .help("a `List` holds its resources under `items:`, one `- ` per resource"),
                    );
                    Vec::new()
                }
                _ => Vec::new(),
            }
        }
        NodeKind::Mapping(_) => vec![document],
        NodeKind::Scalar { .. } => {
            if document.scalar() != Some(Scalar::Null) {
                diagnostics.push(
                    Diagnostic::new(
                        &UNREADABLE_STATE,
                        document.span,
                        format!("a document that is {}, not a resource", document.describe()),
                    )
                    .label("here")
                    .help("pass the output of `calicoctl get ippools,bgppeers,bgpconfigurations,nodes -o yaml`"),
                );
            }
            Vec::new()
        }
    }
}

pub(crate) fn read_item(item: &Node, set: &mut ResourceSet, diagnostics: &mut Diagnostics) {
    let Some(kind_text) = item.get("kind").and_then(Node::as_str) else {
        if item.as_mapping().is_some_and(|entries| !entries.is_empty()) {
            diagnostics.push(
                Diagnostic::new(&UNREADABLE_STATE, item.head_span(), "a resource without `kind`")
                    .label("expected `kind: IPPool`, `BGPPeer`, `BGPConfiguration`, `BGPFilter` or `Node`")
                    .help("pass the output of `calicoctl get ippools,bgppeers,bgpconfigurations,bgpfilters,nodes -o yaml`"),
            );
        }
        return;
    };
    // Other API groups (Kubernetes' own objects, Calico's CRDs) are not Calico v3 resources.
    let calico_v3 = item.get("apiVersion").and_then(Node::as_str).is_none_or(|version| version == calplan_calico::resources::API_VERSION);
    let kind_span = item.get("kind").map_or(item.head_span(), |kind| kind.span);
    if calico_v3 && !validate::check_kind(kind_text, kind_span, diagnostics) {
        return;
    }
    let Some(kind) = ResourceKind::from_kind(kind_text) else { return };
    if let Some(resource) = read_resource(kind, item, diagnostics) {
        set.insert(resource);
    }
}

/// Reads one resource of a kind calplan plans, as Calico reads it: checked first
/// ([`validate::check_resource`]), `spec: null` taken as the zero value.
pub fn read_resource(kind: ResourceKind, item: &Node, diagnostics: &mut Diagnostics) -> Option<Resource> {
    let normalized = validate::null_spec_as_empty(item);
    let item = normalized.as_ref().unwrap_or(item);
    validate::check_resource(kind, item, diagnostics);
    let result = match kind {
        ResourceKind::IpPool => de::from_node(item).map(Resource::IpPool),
        ResourceKind::BgpPeer => de::from_node(item).map(Resource::BgpPeer),
        ResourceKind::BgpConfiguration => de::from_node(item).map(Resource::BgpConfiguration),
        ResourceKind::Node => de::from_node(item).map(Resource::Node),
        ResourceKind::BgpFilter => de::from_node(item).map(Resource::BgpFilter),
    };
    match result {
        Ok(resource) => Some(resource),
        Err(error) => {
            let kind_text = kind.as_str();
            diagnostics.push(
                Diagnostic::new(
                    &UNREADABLE_STATE,
                    error.span.unwrap_or(item.head_span()),
                    format!("cannot read this `{kind_text}`: {}", error.message),
                )
                .label("here")
                .help(format!("expected a Calico `{kind_text}` as `calicoctl get -o yaml` prints it")),
            );
            None
        }
    }
}
