use calplan_calico::peering::Peerings;
use calplan_diagnostics::{Diagnostic, Diagnostics, declare_rule};
use calplan_model::{Analysis, NodeId};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

#[cfg(test)]
mod oracle;

declare_rule! {
    /// ## What it does
    /// Follows every node's block routes through the BGP sessions Calico would configure, under
    /// iBGP and route-reflection rules, and reports nodes that would never learn them.
    ///
    /// The rules: a node advertises its own routes and routes learned over eBGP to every peer;
    /// a route reflector passes a route learned from a client to every peer, and one learned
    /// from a non-client to its clients only; other nodes pass on no iBGP-learned route; a
    /// reflector drops a route whose cluster list already holds its own cluster ID (RFC 4456).
    /// Sessions count only when both ends configure them. With `add paths on` (Calico's
    /// template) every usable path is considered, not just the best.
    ///
    /// ## Why is this bad?
    /// Pods on a node whose routes do not reach another node cannot talk to pods there. The
    /// classic case: reflectors that share a cluster ID but serve different clients drop each
    /// other's reflected routes (projectcalico/calico#2735).
    ///
    /// ## Example
    /// ```yaml
    /// nodeToNodeMesh: false
    /// routeReflectors:
    ///   - {clusterID: 1.0.0.1, nodes: [rr-a], clients: "rack == 'a'"}
    ///   - {clusterID: 1.0.0.1, nodes: [rr-b], clients: "rack == 'b'"}   # same ID: rack a and rack b never learn each other
    /// ```
    pub static RULE = ("E0402", "routes-not-propagated", Error, "a node's block routes would not reach every other node");
}

/// How a node learned a route, which decides whom it may pass the route to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Via {
    Originated,
    External,
    FromClient,
    FromNonClient,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Link {
    to: u32,
    external: bool,
    /// This node treats `to` as its route-reflector client.
    to_is_client: bool,
    /// `to` treats this node as its route-reflector client.
    from_is_client: bool,
}

/// The IPv4 sessions that would come up, per topology node, mesh kept implicit.
struct Sessions {
    /// Per node, sorted by the remote node.
    links: Vec<Vec<Link>>,
    in_mesh: Vec<bool>,
    cluster_ids: Vec<Option<u32>>,
    as_numbers: Vec<u32>,
}

/// One end's view of a session: whether it treats the other as its client, whether it waits
/// passively, and the AS it expects.
type View = (bool, bool, u32);

fn sessions(peerings: &Peerings) -> Sessions {
    let topology = &peerings.topology;
    let count = topology.nodes.len();
    // For each node, the nodes it configures an IPv4 session with, with its view of each,
    // sorted by remote node; of two peerings with one node, the later counts.
    let configured: Vec<Vec<(u32, View)>> = (0..count)
        .map(|index| {
            let mut views: Vec<(u32, View)> = peerings
                .explicit_sessions(index)
                .filter(|session| matches!(session.data.ip, IpAddr::V4(_)))
                .filter_map(|session| Some((session.remote_node? as u32, (session.rr_client, session.passive, session.data.as_number.0))))
                .collect();
            views.reverse();
            views.sort_by_key(|(there, _)| *there);
            views.dedup_by_key(|(there, _)| *there);
            views
        })
        .collect();
    let as_numbers: Vec<u32> = topology.nodes.iter().map(|node| topology.node_as(node).0).collect();
    let links = (0..count)
        .map(|here| {
            configured[here]
                .iter()
                .filter_map(|&(there, (to_is_client, passive, expected_as))| {
                    let theirs = &configured[there as usize];
                    let position = theirs.binary_search_by_key(&(here as u32), |(node, _)| *node).ok()?;
                    let (_, (from_is_client, their_passive, their_expected_as)) = theirs[position];
                    let there = there as usize;
                    let up = expected_as == as_numbers[there] && their_expected_as == as_numbers[here] && !(passive && their_passive);
                    up.then_some(Link { to: there as u32, external: as_numbers[here] != as_numbers[there], to_is_client, from_is_client })
                })
                .collect()
        })
        .collect();
    Sessions {
        links,
        in_mesh: (0..count).map(|index| peerings.in_mesh(index) && topology.nodes[index].ipv4.is_some()).collect(),
        cluster_ids: topology.nodes.iter().map(|node| node.rr_cluster_id.parse::<std::net::Ipv4Addr>().ok().map(u32::from)).collect(),
        as_numbers,
    }
}

/// Nodes that are interchangeable for propagation: the same mesh membership, AS and cluster
/// ID, and sessions with the same nodes, seen the same way. Whatever reaches one member of a
/// class reaches every other in the same way, and a node with a session with one member has
/// one with every member (sessions are symmetric), so routes are followed from class to class:
/// a cluster whose nodes all peer with the same reflectors is a handful of classes, however
/// many nodes it has.
struct Classes {
    /// Each node's class. Classes are numbered in the order of their first member.
    of: Vec<u32>,
    /// Each class's members, in index order.
    members: Vec<Vec<u32>>,
    /// Each class's sessions: the classes its members have sessions with, in class order.
    links: Vec<Vec<ClassLink>>,
    in_mesh: Vec<bool>,
    cluster_ids: Vec<Option<u32>>,
    as_numbers: Vec<u32>,
}

/// A session from the members of one class with the members of another.
#[derive(Clone, Copy, Debug)]
struct ClassLink {
    to: u32,
    external: bool,
    to_is_client: bool,
    from_is_client: bool,
}

fn classes(sessions: &Sessions) -> Classes {
    type Signature<'a> = (bool, u32, Option<u32>, &'a [Link]);
    let count = sessions.links.len();
    let mut numbers: HashMap<Signature, u32> = HashMap::new();
    let mut of = Vec::with_capacity(count);
    let mut members: Vec<Vec<u32>> = Vec::new();
    for index in 0..count {
        let signature = (sessions.in_mesh[index], sessions.as_numbers[index], sessions.cluster_ids[index], &sessions.links[index][..]);
        let class = *numbers.entry(signature).or_insert_with(|| {
            members.push(Vec::new());
            (members.len() - 1) as u32
        });
        members[class as usize].push(index as u32);
        of.push(class);
    }
    let links = members
        .iter()
        .map(|members| {
            // Every member links to every member of a class, the same way: one link per class.
            let mut links: Vec<ClassLink> = sessions.links[members[0] as usize]
                .iter()
                .map(|link| ClassLink {
                    to: of[link.to as usize],
                    external: link.external,
                    to_is_client: link.to_is_client,
                    from_is_client: link.from_is_client,
                })
                .collect();
            links.sort_by_key(|link| link.to);
            links.dedup_by_key(|link| link.to);
            links
        })
        .collect();
    let first = |property: &dyn Fn(usize) -> u32| members.iter().map(|members| property(members[0] as usize)).collect::<Vec<u32>>();
    Classes {
        in_mesh: members.iter().map(|members| sessions.in_mesh[members[0] as usize]).collect(),
        cluster_ids: members.iter().map(|members| sessions.cluster_ids[members[0] as usize]).collect(),
        as_numbers: first(&|index| sessions.as_numbers[index]),
        of,
        members,
        links,
    }
}

/// What a search from one origin found.
struct Reach {
    reached: Vec<bool>,
    /// Reflectors that dropped the route because it already carried their cluster ID.
    loop_drops: BTreeSet<usize>,
}

/// Follows the routes of `origin` class by class. The origin is a class of its own during the
/// search (`ORIGIN`), apart from the rest of its class, since it never learns its own routes.
/// The order of the search is the order a node-by-node search would take (sessions and mesh
/// members in index order, a class standing at its first member), so a route list pruned here
/// is one pruned there: the answer, loop drops included, is the node-by-node search's.
fn propagate(classes: &Classes, origin: usize) -> Reach {
    let class_count = classes.members.len();
    let origin_class = classes.of[origin] as usize;
    // The group standing for the origin alone; group `origin_class` stands for the rest of it.
    let origin_group = class_count;
    let rest: Vec<u32> = classes.members[origin_class].iter().copied().filter(|&node| node as usize != origin).collect();
    let class_of_group = |group: usize| if group == origin_group { origin_class } else { group };
    // The node a group stands at in the search's order, and the order key of its members after
    // the first (where a member's broadcast to its own class lands).
    let first_of = |group: usize| -> Option<u32> {
        if group == origin_group {
            Some(origin as u32)
        } else if group == origin_class {
            rest.first().copied()
        } else {
            Some(classes.members[group][0])
        }
    };
    let second_of = |group: usize| -> Option<u32> {
        if group == origin_group {
            None
        } else if group == origin_class {
            rest.get(1).copied()
        } else {
            classes.members[group].get(1).copied()
        }
    };
    // A class's links with the origin's class split in two, in the search's order.
    let links_of = |group: usize| -> Vec<(u32, usize, ClassLink)> {
        let mut links = Vec::new();
        let mut split = false;
        for link in &classes.links[class_of_group(group)] {
            let to = link.to as usize;
            if to == origin_class {
                split = true;
                links.push((origin as u32, origin_group, *link));
                if let Some(first) = rest.first() {
                    links.push((*first, origin_class, *link));
                }
            } else {
                links.push((classes.members[to][0], to, *link));
            }
        }
        if split {
            links.sort_by_key(|(first, _, _)| *first);
        }
        links
    };
    let mut reached = vec![false; class_count + 1];
    let mut dropped = vec![false; class_count + 1];
    // Per group and way of learning, the cluster lists seen so far. A route whose cluster list
    // holds another's can reach no more than that one (only a reflector whose ID is in the
    // list drops it), so it need not be followed: without this the search would try every
    // order of passing a route between meshed reflectors, exponential in their number.
    let mut seen: HashMap<(usize, Via), Vec<Vec<u32>>> = HashMap::new();
    let mut queue: VecDeque<(usize, Via, Vec<u32>)> = VecDeque::new();
    // Only a route a node originated or learned over eBGP goes over the mesh, with an empty
    // cluster list: the first such broadcast reaches every other member, and any later one
    // tells no member anything it has not acted on already.
    let mut broadcast = false;
    reached[origin_group] = true;
    queue.push_back((origin_group, Via::Originated, Vec::new()));
    seen.insert((origin_group, Via::Originated), vec![Vec::new()]);
    let mut deliver = |group: usize, via: Via, list: Vec<u32>, queue: &mut VecDeque<_>, reached: &mut Vec<bool>| {
        if group == origin_group {
            return;
        }
        let lists = seen.entry((group, via)).or_default();
        if lists.iter().any(|known| is_subset(known, &list)) {
            return;
        }
        lists.retain(|known| !is_subset(&list, known));
        lists.push(list.clone());
        reached[group] = true;
        queue.push_back((group, via, list));
    };
    while let Some((group, via, list)) = queue.pop_front() {
        let class = class_of_group(group);
        let reflecting = matches!(via, Via::FromClient | Via::FromNonClient);
        for (_, to, link) in links_of(group) {
            let allowed = link.external || !reflecting || via == Via::FromClient || link.to_is_client;
            if !allowed {
                continue;
            }
            let (next_via, next_list) = if link.external {
                (Via::External, Vec::new())
            } else {
                let mut next_list = list.clone();
                if reflecting && let Some(id) = classes.cluster_ids[class] {
                    next_list.push(id);
                    next_list.sort_unstable();
                    next_list.dedup();
                }
                if let Some(id) = classes.cluster_ids[class_of_group(to)]
                    && next_list.contains(&id)
                {
                    dropped[to] = true;
                    continue;
                }
                (if link.from_is_client { Via::FromClient } else { Via::FromNonClient }, next_list)
            };
            deliver(to, next_via, next_list, &mut queue, &mut reached);
        }
        if classes.in_mesh[class] && !reflecting && !broadcast {
            broadcast = true;
            // Every other mesh member, in index order: the broadcaster's own class-mates stand
            // at its second member.
            let mut targets: Vec<(u32, usize)> = (0..=class_count)
                .filter(|&other| classes.in_mesh[class_of_group(other)])
                .filter_map(|other| Some((if other == group { second_of(other)? } else { first_of(other)? }, other)))
                .collect();
            targets.sort_unstable();
            for (_, other) in targets {
                let external = classes.as_numbers[class_of_group(other)] != classes.as_numbers[class];
                let next = if external { (Via::External, Vec::new()) } else { (Via::FromNonClient, list.clone()) };
                deliver(other, next.0, next.1, &mut queue, &mut reached);
            }
        }
    }
    let nodes_of = |group: usize| -> Vec<u32> {
        if group == origin_group {
            vec![origin as u32]
        } else if group == origin_class {
            rest.clone()
        } else {
            classes.members[group].clone()
        }
    };
    let mut reached_nodes = vec![false; classes.of.len()];
    let mut loop_drops = BTreeSet::new();
    for group in 0..=class_count {
        if reached[group] || dropped[group] {
            for node in nodes_of(group) {
                reached_nodes[node as usize] |= reached[group];
                if dropped[group] {
                    loop_drops.insert(node as usize);
                }
            }
        }
    }
    Reach { reached: reached_nodes, loop_drops }
}

/// Whether sorted `small` is contained in sorted `large`.
fn is_subset(small: &[u32], large: &[u32]) -> bool {
    let mut large = large.iter();
    small.iter().all(|item| large.any(|candidate| candidate == item))
}

pub fn check(analysis: &Analysis, diagnostics: &mut Diagnostics) {
    let model = &analysis.model;
    let peerings = &analysis.peerings;
    let sessions = sessions(peerings);
    let count = sessions.links.len();
    if count < 2 {
        return;
    }
    // Origins: nodes that advertise IPv4 blocks. Receivers: every node with IPv4 and BGP.
    let mut advertises = vec![false; count];
    for block in &analysis.placement.blocks {
        let exported = block.pool.is_none_or(|pool| !*model.pools[pool].disable_bgp_export);
        if block.is_advertised()
            && exported
            && block.cidr.addr().is_ipv4()
            && let Some(index) = analysis.topology_index(block.node)
        {
            advertises[index] = true;
        }
    }
    // A node with no session at all is E0403's to report; here only nodes that do speak BGP.
    let receivers: Vec<usize> = (0..count)
        .filter(|&index| peerings.topology.nodes[index].ipv4.is_some())
        .filter(|&index| !sessions.links[index].is_empty() || sessions.in_mesh[index])
        .collect();
    let classes = classes(&sessions);
    drop(sessions);
    // Nodes of one class behave the same: search once per class, from its first advertiser.
    let mut origins: Vec<Vec<usize>> = vec![Vec::new(); classes.members.len()];
    for index in (0..count).filter(|&index| advertises[index]) {
        let class = classes.of[index] as usize;
        if !classes.links[class].is_empty() || classes.in_mesh[class] {
            origins[class].push(index);
        }
    }
    origins.retain(|class| !class.is_empty());
    origins.sort();
    let by_topology: HashMap<usize, NodeId> =
        model.nodes.iter().filter_map(|node| Some((analysis.topology_index(node.id)?, node.id))).collect();
    for class in origins {
        let origin = class[0];
        let reach = propagate(&classes, origin);
        let missing: Vec<usize> = receivers.iter().copied().filter(|&index| index != origin && !reach.reached[index]).collect();
        if missing.is_empty() {
            continue;
        }
        let Some(origin_node) = by_topology.get(&origin).map(|id| model.node(*id)) else { continue };
        let name = |index: usize| format!("`{}`", peerings.topology.nodes[index].name);
        let shown: Vec<String> = missing.iter().take(3).map(|&index| name(index)).collect();
        let more = if missing.len() > 3 { format!(" and {} more", missing.len() - 3) } else { String::new() };
        let alike = match class.len() {
            1 => String::new(),
            2 => " and the one node peered like it".to_string(),
            count => format!(" and {} nodes peered like it", count - 1),
        };
        let message = format!("routes to the blocks of {}{alike} would not reach {}{more}", name(origin), shown.join(", "));
        let droppers: Vec<usize> = reach.loop_drops.iter().copied().collect();
        let help = if droppers.is_empty() {
            "a reflector passes routes from non-clients only to its clients, and other nodes pass on no iBGP-learned route; \
             give every node a session with a reflector that reflects to it, or keep the node-to-node mesh"
                .to_string()
        } else {
            let names: Vec<String> = droppers.iter().take(3).map(|&index| name(index)).collect();
            format!(
                "{} dropped the route because it already carried {} cluster ID (RFC 4456 loop prevention): reflectors that \
                 share a cluster ID must serve the same clients; give each group of clients its own cluster ID",
                names.join(", "),
                if droppers.len() == 1 { "its own" } else { "their own" }
            )
        };
        let mut diagnostic = Diagnostic::new(&RULE, origin_node.name.span, message).label("its routes stop short").help(help);
        if let Some(first) = missing.first().and_then(|index| by_topology.get(index)) {
            diagnostic = diagnostic.secondary(model.node(*first).name.span, "never learns them");
        }
        diagnostics.push(diagnostic);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::intent;
    use calplan_diagnostics::SourceMap;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    /// A random small cluster: racks of alike nodes (so classes have several members), some
    /// with their own AS or no IPv4 address, the mesh on or off, reflector clusters whose IDs
    /// may be shared and whose clients may be a rack, reflectors declared on nodes directly,
    /// and BGP peers by selector or address, some with the wrong AS, some passive both ways.
    fn cluster() -> impl Strategy<Value = String> {
        let rack = prop_oneof![3 => Just(0usize), 3 => Just(1), 1 => Just(2)];
        let node = (rack, prop::bool::weighted(0.15), prop::bool::weighted(0.08), prop::option::weighted(0.15, 1..4u8));
        let reflector_cluster = (1..3u8, prop::collection::vec(0..12usize, 1..4), prop::option::weighted(0.6, 0..3usize));
        let peer = (0..4u8, 0..4usize, 0..4usize, 0..12usize, prop::bool::weighted(0.3), prop::bool::weighted(0.2));
        (
            prop::collection::vec(node, 2..12),
            prop::bool::weighted(0.3),
            prop::collection::vec(reflector_cluster, 0..4),
            prop::collection::vec(peer, 1..5),
            prop::bool::weighted(0.3),
        )
            .prop_map(|(nodes, mesh, clusters, peers, pool_skips_rack_c)| {
                let racks = ["a", "b", "c"];
                let mut spec = format!("  bgp:\n    asNumber: 64512\n    nodeToNodeMesh: {mesh}\n");
                let count = nodes.len();
                let mut listed = std::collections::HashSet::new();
                let clusters: Vec<String> = clusters
                    .iter()
                    .filter_map(|(id, members, clients)| {
                        let members: Vec<String> = members
                            .iter()
                            .map(|member| member % count)
                            .filter(|member| listed.insert(*member))
                            .map(|m| format!("n{m}"))
                            .collect();
                        if members.is_empty() {
                            return None;
                        }
                        let clients = clients.map(|rack| format!(", clients: \"rack == '{}'\"", racks[rack])).unwrap_or_default();
                        Some(format!("      - {{clusterID: 1.0.0.{id}, nodes: [{}]{clients}}}\n", members.join(", ")))
                    })
                    .collect();
                if !clusters.is_empty() {
                    spec.push_str("    routeReflectors:\n");
                    spec.extend(clusters);
                }
                if !peers.is_empty() {
                    spec.push_str("    peers:\n");
                }
                let selectors = ["all()", "rack == 'a'", "rack == 'b'", "has(route-reflector)"];
                for (index, (kind, from, to, target, wrong_as, manual)) in peers.iter().enumerate() {
                    let reverse = if *manual { ", reversePeering: Manual" } else { "" };
                    spec.push_str(&match kind {
                        0 | 1 => format!(
                            "      - {{name: p{index}, nodeSelector: \"{}\", peerSelector: \"{}\"{reverse}}}\n",
                            selectors[*from], selectors[*to]
                        ),
                        2 => format!(
                            "      - {{name: p{index}, node: n{}, peerIP: 10.0.0.{}, asNumber: {}{reverse}}}\n",
                            from % count,
                            target % count + 1,
                            if *wrong_as { 64999 } else { 64512 }
                        ),
                        _ => format!(
                            "      - {{name: p{index}, nodeSelector: \"{}\", peerIP: 10.0.0.{}, asNumber: {}}}\n",
                            selectors[*from],
                            target % count + 1,
                            if *wrong_as { 64513 } else { 64512 }
                        ),
                    });
                }
                let selector = if pool_skips_rack_c { "rack != 'c'" } else { "all()" };
                spec.push_str(&format!("  pools:\n    - {{name: p, cidr: 192.168.0.0/16, blockSize: 26, nodeSelector: \"{selector}\"}}\n"));
                spec.push_str("  nodes:\n");
                for (index, (rack, own_as, no_ipv4, literal_cluster)) in nodes.iter().enumerate() {
                    let address = if *no_ipv4 {
                        format!("ipv6Address: fd00::{}/64", index + 1)
                    } else {
                        format!("ipv4Address: 10.0.0.{}/24", index + 1)
                    };
                    let own_as = if *own_as { ", asNumber: 64513" } else { "" };
                    let literal = match literal_cluster {
                        Some(id) if !listed.contains(&index) => format!(", routeReflectorClusterID: 1.0.0.{id}"),
                        _ => String::new(),
                    };
                    spec.push_str(&format!("    - {{name: n{index}, {address}{own_as}{literal}, labels: {{rack: {}}}}}\n", racks[*rack]));
                }
                intent(&spec)
            })
    }

    fn analysis(text: &str) -> Analysis {
        let mut sources = SourceMap::new();
        let file = sources.add("intent.yaml", text);
        let mut diagnostics = Diagnostics::new();
        let intent = calplan_syntax::parse_intent(file, text, &mut diagnostics).intent.expect("the generated intent parses");
        let model = calplan_model::lower(file, text, &intent, &mut diagnostics);
        Analysis::new(model, None)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, .. ProptestConfig::default() })]

        /// The search by classes of nodes gives exactly the diagnostics the node-by-node search
        /// gave (kept as `oracle`): the same origins, the same nodes never reached, the same
        /// reflectors dropping routes.
        #[test]
        fn the_class_search_answers_as_the_node_search(text in cluster()) {
            let analysis = analysis(&text);
            let (mut by_class, mut by_node) = (Diagnostics::new(), Diagnostics::new());
            check(&analysis, &mut by_class);
            oracle::check(&analysis, &mut by_node);
            let (by_class, by_node): (Vec<Diagnostic>, Vec<Diagnostic>) = (by_class.into_iter().collect(), by_node.into_iter().collect());
            prop_assert_eq!(by_class, by_node, "{}", text);
        }
    }

    /// The generator makes clusters the rule has something to say about, and classes of more
    /// than one node: otherwise the property above would hold vacuously.
    #[test]
    fn the_generated_clusters_exercise_the_rule() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut findings, mut drops, mut shared_classes) = (0, 0, 0);
        for _ in 0..200 {
            let text = cluster().new_tree(&mut runner).unwrap().current();
            let analysis = analysis(&text);
            let mut diagnostics = Diagnostics::new();
            check(&analysis, &mut diagnostics);
            findings += usize::from(!diagnostics.is_empty());
            drops += diagnostics.iter().filter(|d| d.help.as_deref().is_some_and(|help| help.contains("RFC 4456"))).count().min(1);
            let classes = classes(&sessions(&analysis.peerings));
            shared_classes += usize::from(classes.members.iter().any(|members| members.len() > 1));
        }
        assert!(
            findings > 15 && drops > 5 && shared_classes > 100,
            "{findings} with findings, {drops} with loop drops, {shared_classes} with shared classes"
        );
    }
}
