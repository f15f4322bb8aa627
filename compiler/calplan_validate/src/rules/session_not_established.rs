use super::{SHOW_AT_MOST, count, thousands};
use calplan_calico::AsNumber;
use calplan_calico::peering::PeeringOrigin;
use calplan_diagnostics::{Diagnostic, Diagnostics, Span, declare_rule};
use calplan_model::graph::{SessionProblem, Vertex};
use calplan_model::{Analysis, Model, Node, Peer, ReversePeering};
use petgraph::graph::NodeIndex;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

declare_rule! {
    /// ## What it does
    /// Walks every BGP session in the topology and reports those that would not come up:
    /// configured at one end only, an end expecting another AS than the other speaks, or both
    /// ends waiting passively. It points at the BGP peer responsible (or the declaration that
    /// generates it), with one diagnostic per peer and problem however many sessions it breaks.
    /// Sessions with peers outside the intent are not checked (their side is not described),
    /// nor those of nodes sharing a name or an address with another, which `duplicate-name`
    /// and `duplicate-address` report.
    ///
    /// ## Why is this bad?
    /// The session stays in `Active` or `Idle`: the other end logs `Unexpected connect from
    /// unknown address` and refuses, or closes with `Bad peer AS`. Routes it was meant to carry
    /// are never learnt.
    ///
    /// ## Example
    /// ```yaml
    /// peers:
    ///   - name: m1-to-n3
    ///     node: cs1-k8s-m1.zpepc.com.cn
    ///     peerIP: 21.49.22.9        # cs1-k8s-n3, which speaks the cluster's AS 63400
    ///     asNumber: 64999           # not n3's AS, so Calico adds no reverse session
    /// ```
    pub static RULE = ("E0404", "session-not-established", Error, "a BGP session that would not come up");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    OneSided,
    AsMismatch,
    BothPassive,
}

/// One session that would not come up, seen from the end that configures it.
struct Broken {
    local: NodeIndex,
    remote: NodeIndex,
    /// The AS `local` expects and the AS `remote` speaks, for a mismatch.
    expected: Option<AsNumber>,
    actual: Option<AsNumber>,
}

/// The BGP peer behind a session.
enum Cause<'a> {
    Declared { peer: &'a Peer, reverse: bool },
    Generated { name: &'a str, span: Span },
    Unknown,
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    let graph = &analysis.graph;
    let as_of = |vertex: NodeIndex| match &graph.graph[vertex] {
        Vertex::Node(id) => Some(model.node_as_number(model.node(*id))),
        Vertex::Router(id) => model.router(*id).bgp.as_ref().map(|bgp| bgp.as_number.value),
        _ => None,
    };
    let ambiguous = ambiguous_nodes(model);
    let mut origins = Origins::default();
    let mut groups: BTreeMap<(Kind, Option<PeeringOrigin>), Vec<Broken>> = BTreeMap::new();
    for edge in graph.graph.edge_indices() {
        let Some(problem) = graph.session_problem(edge, as_of) else {
            continue;
        };
        let Some((a, b)) = graph.graph.edge_endpoints(edge) else {
            continue;
        };
        let is_ambiguous = |vertex: NodeIndex| matches!(graph.graph[vertex], Vertex::Node(id) if ambiguous[id.0 as usize]);
        if is_ambiguous(a) || is_ambiguous(b) {
            continue;
        }
        let (kind, broken) = match problem {
            SessionProblem::OneSided => {
                let (local, remote) = if graph.end_of(edge, a).is_some() { (a, b) } else { (b, a) };
                (Kind::OneSided, Broken { local, remote, expected: None, actual: None })
            }
            SessionProblem::AsMismatch { .. } => {
                let wrong = [(a, b), (b, a)].into_iter().find_map(|(local, remote)| {
                    let expected = graph.end_of(edge, local)?.expected_as;
                    let actual = as_of(remote)?;
                    (expected != actual).then_some(Broken { local, remote, expected: Some(expected), actual: Some(actual) })
                });
                let Some(broken) = wrong else { continue };
                (Kind::AsMismatch, broken)
            }
            SessionProblem::BothPassive => (Kind::BothPassive, Broken { local: a, remote: b, expected: None, actual: None }),
        };
        groups.entry((kind, origins.of(analysis, broken.local, broken.remote))).or_default().push(broken);
    }
    let generated = calplan_model::calico::generated_peer_names(model);
    for ((kind, origin), broken) in groups {
        let cause = match &origin {
            Some(PeeringOrigin::Peer(name) | PeeringOrigin::Reverse(name)) => {
                let reverse = matches!(origin, Some(PeeringOrigin::Reverse(_)));
                // A generated BGPPeer replaces a declared one of the same name (`duplicate-name`).
                match generated.iter().find(|(generated, _)| generated == name) {
                    Some((name, span)) => Cause::Generated { name, span: *span },
                    None => model
                        .peers
                        .iter()
                        .find(|peer| peer.name.value == *name)
                        .map_or(Cause::Unknown, |peer| Cause::Declared { peer, reverse }),
                }
            }
            _ => Cause::Unknown,
        };
        diagnostics.push(match kind {
            Kind::OneSided => one_sided(analysis, &cause, &broken),
            Kind::AsMismatch => as_mismatch(analysis, &cause, &broken),
            Kind::BothPassive => both_passive(analysis, &cause, &broken),
        });
    }
}

/// Nodes that share a name or an address with another: Calico keeps one `Node` per name and
/// BGP tells peers apart by address, so their sessions cannot be told apart either.
/// `duplicate-name` and `duplicate-address` report them.
fn ambiguous_nodes(model: &Model) -> Vec<bool> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut addresses: HashMap<IpAddr, usize> = HashMap::new();
    for node in &model.nodes {
        *names.entry(node.name.value.as_str()).or_default() += 1;
        for address in node_addresses(node) {
            *addresses.entry(address).or_default() += 1;
        }
    }
    model
        .nodes
        .iter()
        .map(|node| names[node.name.value.as_str()] > 1 || node_addresses(node).any(|address| addresses[&address] > 1))
        .collect()
}

fn node_addresses(node: &Node) -> impl Iterator<Item = IpAddr> + '_ {
    node.ipv4().map(IpAddr::V4).into_iter().chain(node.ipv6_address.as_ref().map(|address| IpAddr::V6(address.addr())))
}

/// The BGP peer that gives `local` its session with `remote`.
/// The BGP peers behind each node's sessions, by remote address, read once per node: a
/// reflector holds a session per client, and asking again for each broken one would be
/// quadratic.
#[derive(Default)]
struct Origins {
    by_node: HashMap<NodeIndex, HashMap<IpAddr, PeeringOrigin>>,
}

impl Origins {
    /// The BGP peer that gives `local` its session with `remote`.
    fn of(&mut self, analysis: &Analysis, local: NodeIndex, remote: NodeIndex) -> Option<PeeringOrigin> {
        let model = &analysis.model;
        let Vertex::Node(id) = analysis.graph.graph[local] else {
            return None;
        };
        let addresses: Vec<IpAddr> = match &analysis.graph.graph[remote] {
            Vertex::Node(remote) => node_addresses(model.node(*remote)).collect(),
            Vertex::Router(router) => vec![model.router(*router).address.addr()],
            Vertex::ExternalPeer { address, .. } => vec![*address],
            _ => Vec::new(),
        };
        let origins = self.by_node.entry(local).or_insert_with(|| {
            let mut origins = HashMap::new();
            if let Some(index) = analysis.topology_index(id) {
                for session in analysis.peerings.explicit_sessions(index) {
                    origins.entry(session.data.ip).or_insert_with(|| session.data.origin.clone());
                }
            }
            origins
        });
        addresses.iter().find_map(|address| origins.get(address).cloned())
    }
}

/// `node `a``, `router `r``, or the address of a peer outside the intent.
fn describe(model: &Model, vertex: &Vertex) -> String {
    match vertex {
        Vertex::Node(id) => format!("node `{}`", model.node(*id).name.value),
        Vertex::Router(id) => format!("router `{}`", model.router(*id).name.value),
        Vertex::ExternalPeer { address, .. } => format!("peer {address}"),
        Vertex::Mesh => "the node-to-node mesh".to_string(),
        Vertex::RouteReflectorCluster(id) => format!("route-reflector cluster {id}"),
    }
}

fn short_name(model: &Model, vertex: &Vertex) -> String {
    match vertex {
        Vertex::Node(id) => format!("`{}`", model.node(*id).name.value),
        Vertex::Router(id) => format!("`{}`", model.router(*id).name.value),
        other => describe(model, other),
    }
}

/// `` `a` → `b`, `c` → `d` and 3 more ``.
fn session_list(analysis: &Analysis, broken: &[Broken]) -> String {
    let graph = &analysis.graph.graph;
    let shown: Vec<String> = broken
        .iter()
        .take(SHOW_AT_MOST)
        .map(|session| {
            format!("{} → {}", short_name(&analysis.model, &graph[session.local]), short_name(&analysis.model, &graph[session.remote]))
        })
        .collect();
    match broken.len().saturating_sub(SHOW_AT_MOST) {
        0 => shown.join(", "),
        more => format!("{} and {} more", shown.join(", "), thousands(more)),
    }
}

fn cause_phrase(cause: &Cause) -> String {
    match cause {
        Cause::Declared { peer, reverse: false } => format!("BGP peer `{}`", peer.name.value),
        Cause::Declared { peer, reverse: true } => format!("the automatic reverse of BGP peer `{}`", peer.name.value),
        Cause::Generated { name, .. } => format!("generated BGPPeer `{name}`"),
        Cause::Unknown => "the BGP configuration".to_string(),
    }
}

/// Where to point: the peer (or its `asNumber`), the declaration that generates it, or the
/// node whose session it is.
fn cause_span(analysis: &Analysis, cause: &Cause, broken: &[Broken], at_as_number: bool) -> Span {
    match cause {
        Cause::Declared { peer, .. } => match (&peer.as_number, at_as_number) {
            (Some(as_number), true) => as_number.span,
            _ => peer.name.span,
        },
        Cause::Generated { span, .. } => *span,
        Cause::Unknown => vertex_span(analysis, &analysis.graph.graph[broken[0].local]),
    }
}

fn vertex_span(analysis: &Analysis, vertex: &Vertex) -> Span {
    match vertex {
        Vertex::Node(id) => analysis.model.node(*id).name.span,
        Vertex::Router(id) => analysis.model.router(*id).name.span,
        _ => analysis.model.bgp.span,
    }
}

fn one_sided(analysis: &Analysis, cause: &Cause, broken: &[Broken]) -> Diagnostic {
    let model = &analysis.model;
    let graph = &analysis.graph.graph;
    let first = &broken[0];
    let (local, remote) = (&graph[first.local], &graph[first.remote]);
    // A peer whose `asNumber` is not the Calico node's AS gets no automatic reverse session.
    let wrong_as = match (cause, remote) {
        (Cause::Declared { peer, reverse: false }, Vertex::Node(id)) => {
            let remote_as = model.node_as_number(model.node(*id));
            peer.as_number.as_ref().filter(|number| number.value != remote_as).map(|_| remote_as)
        }
        _ => None,
    };
    let message = if broken.len() == 1 {
        format!(
            "{} gives {} a session with {}, which does not configure it",
            cause_phrase(cause),
            describe(model, local),
            describe(model, remote)
        )
    } else {
        format!(
            "{} gives {} that the other end does not configure: {}",
            cause_phrase(cause),
            count(broken.len(), "session"),
            session_list(analysis, broken)
        )
    };
    let fix = match (cause, remote) {
        (_, Vertex::Router(id)) if model.router(*id).bgp.is_none() => {
            format!("give router `{}` a `bgp` section, or remove the peering", model.router(*id).name.value)
        }
        (Cause::Declared { peer, .. }, _) if peer.reverse_peering == Some(ReversePeering::Manual) => {
            "add the BGP peer for the reverse direction, or remove `reversePeering: Manual`".to_string()
        }
        _ => match (wrong_as, remote) {
            (Some(remote_as), Vertex::Node(id)) => format!(
                "set `asNumber: {remote_as}`, the AS of `{}`: Calico then configures the reverse session itself",
                model.node(*id).name.value
            ),
            _ => "add a BGP peer that configures the reverse direction".to_string(),
        },
    };
    Diagnostic::new(&RULE, cause_span(analysis, cause, broken, wrong_as.is_some()), message)
        .label("configured at one end only")
        .help(format!("the other end logs `Unexpected connect from unknown address` and refuses the connection; {fix}"))
}

fn as_mismatch(analysis: &Analysis, cause: &Cause, broken: &[Broken]) -> Diagnostic {
    let model = &analysis.model;
    let graph = &analysis.graph.graph;
    let first = &broken[0];
    let (expected, actual) = (first.expected.unwrap_or(AsNumber(0)), first.actual.unwrap_or(AsNumber(0)));
    let message = if broken.len() == 1 {
        format!(
            "{} expects AS {expected} from {}, which speaks AS {actual} ({})",
            describe(model, &graph[first.local]),
            describe(model, &graph[first.remote]),
            cause_phrase(cause)
        )
    } else {
        format!(
            "{} expects another AS than the peer speaks on {}: {}",
            cause_phrase(cause),
            count(broken.len(), "session"),
            session_list(analysis, broken)
        )
    };
    let mut diagnostic = Diagnostic::new(&RULE, cause_span(analysis, cause, broken, true), message).label(format!("expects AS {expected}"));
    if let Vertex::Node(id) = &graph[first.remote] {
        let node = model.node(*id);
        let declared = node.as_number.as_ref().map(|number| number.span).or(model.bgp.as_number_set.then_some(model.bgp.as_number.span));
        if let Some(span) = declared {
            diagnostic = diagnostic.secondary(span, format!("`{}` speaks AS {actual}", node.name.value));
        }
    }
    diagnostic.help(format!("BIRD closes the session with `Bad peer AS`; set `asNumber: {actual}`, or leave it out and use `peerSelector`, which takes each node's own AS"))
}

fn both_passive(analysis: &Analysis, cause: &Cause, broken: &[Broken]) -> Diagnostic {
    let model = &analysis.model;
    let graph = &analysis.graph.graph;
    let first = &broken[0];
    Diagnostic::new(
        &RULE,
        cause_span(analysis, cause, broken, false),
        format!(
            "{} and {} both wait for the other to connect ({})",
            describe(model, &graph[first.local]),
            describe(model, &graph[first.remote]),
            cause_phrase(cause)
        ),
    )
    .label("passive at both ends")
    .help("one end must connect: BIRD's `passive on` at both ends leaves the session idle")
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, intent};

    const NODES: &str = "  nodes:\n    - {name: m1, ipv4Address: 21.0.0.4/24}\n    - {name: n3, ipv4Address: 21.0.0.9/24}\n";

    #[test]
    fn a_peer_with_the_wrong_as_gets_no_reverse_session() {
        let text = intent(&format!(
            "  bgp:\n    asNumber: 63400\n    peers:\n      - {{name: m1-to-n3, node: m1, peerIP: 21.0.0.9, asNumber: 64999}}\n{NODES}"
        ));
        let found = check_rule(&text, "E0404");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("E0404 BGP peer `m1-to-n3` gives node `m1` a session with node `n3`, which does not configure it"),
            "{found:#?}"
        );
        assert!(found[0].contains("set `asNumber: 63400`, the AS of `n3`"), "{found:#?}");
    }

    #[test]
    fn an_end_expecting_another_as_is_a_mismatch() {
        let text = intent(&format!(
            "  bgp:\n    asNumber: 63400\n    peers:\n      - {{name: a-m1-to-n3, node: m1, peerIP: 21.0.0.9, asNumber: 64999}}\n      - {{name: b-n3-to-m1, node: n3, peerIP: 21.0.0.4, asNumber: 63400}}\n{NODES}"
        ));
        let found = check_rule(&text, "E0404");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("E0404 node `m1` expects AS 64999 from node `n3`, which speaks AS 63400 (BGP peer `a-m1-to-n3`)"),
            "{found:#?}"
        );
    }

    #[test]
    fn manual_reverse_peering_is_one_diagnostic_for_all_its_sessions() {
        let text = intent(
            "  bgp:\n    peers:\n      - {name: to-n3, nodeSelector: all(), peerSelector: has(rr), reversePeering: Manual}\n  nodes:\n    - {name: a, ipv4Address: 21.0.0.1/24}\n    - {name: b, ipv4Address: 21.0.0.2/24}\n    - {name: c, ipv4Address: 21.0.0.3/24}\n    - {name: d, ipv4Address: 21.0.0.5/24}\n    - {name: rr, ipv4Address: 21.0.0.9/24, labels: {rr: 'true'}}\n",
        );
        let found = check_rule(&text, "E0404");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].starts_with("E0404 BGP peer `to-n3` gives 4 sessions that the other end does not configure: `a` → `rr`, `b` → `rr`, `c` → `rr` and 1 more"), "{found:#?}");
        assert!(found[0].contains("remove `reversePeering: Manual`"), "{found:#?}");
    }
}
