//! The rule as it was before it searched equivalence classes of nodes: every origin's route
//! followed node by node. Kept, unchanged, as the oracle the class-based search is tested
//! against (`the_class_search_answers_as_the_node_search`).

use super::RULE;
use calplan_calico::peering::Peerings;
use calplan_diagnostics::{Diagnostic, Diagnostics};
use calplan_model::{Analysis, NodeId};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;

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
    to: usize,
    external: bool,
    /// This node treats `to` as its route-reflector client.
    to_is_client: bool,
    /// `to` treats this node as its route-reflector client.
    from_is_client: bool,
}

/// The IPv4 sessions that would come up, per topology node, mesh kept implicit.
struct Sessions {
    links: Vec<Vec<Link>>,
    in_mesh: Vec<bool>,
    cluster_ids: Vec<Option<u32>>,
    as_numbers: Vec<u32>,
}

fn sessions(peerings: &Peerings) -> Sessions {
    let topology = &peerings.topology;
    let count = topology.nodes.len();
    // For each node, the peer addresses it configures, with its view of each session.
    let configured: Vec<HashMap<usize, (bool, bool, u32)>> = (0..count)
        .map(|index| {
            peerings
                .explicit_for_node(index)
                .into_iter()
                .filter(|peering| matches!(peering.data.ip, IpAddr::V4(_)))
                .filter_map(|peering| Some((peering.remote_node?, (peering.rr_client, peering.passive, peering.data.as_number.0))))
                .collect()
        })
        .collect();
    let as_numbers: Vec<u32> = topology.nodes.iter().map(|node| topology.node_as(node).0).collect();
    let links = (0..count)
        .map(|here| {
            let mut links: Vec<Link> = configured[here]
                .iter()
                .filter_map(|(&there, &(to_is_client, passive, expected_as))| {
                    let &(from_is_client, their_passive, their_expected_as) = configured[there].get(&here)?;
                    let up = expected_as == as_numbers[there] && their_expected_as == as_numbers[here] && !(passive && their_passive);
                    up.then_some(Link { to: there, external: as_numbers[here] != as_numbers[there], to_is_client, from_is_client })
                })
                .collect();
            links.sort_by_key(|link| link.to);
            links
        })
        .collect();
    Sessions {
        links,
        in_mesh: (0..count).map(|index| peerings.in_mesh(index) && topology.nodes[index].ipv4.is_some()).collect(),
        cluster_ids: topology.nodes.iter().map(|node| node.rr_cluster_id.parse::<std::net::Ipv4Addr>().ok().map(u32::from)).collect(),
        as_numbers,
    }
}

/// What makes two nodes interchangeable for propagation: mesh membership, AS, cluster ID and
/// their sessions.
type Signature = (bool, u32, Option<u32>, Vec<Link>);

/// What a search from one origin found.
struct Reach {
    reached: Vec<bool>,
    /// Reflectors that dropped the route because it already carried their cluster ID.
    loop_drops: HashSet<usize>,
}

fn propagate(sessions: &Sessions, origin: usize) -> Reach {
    let count = sessions.links.len();
    let mut reached = vec![false; count];
    let mut loop_drops = HashSet::new();
    // Per node and way of learning, the cluster lists seen so far. A route whose cluster list
    // holds another's can reach no more than that one (only a reflector whose ID is in the
    // list drops it), so it need not be followed: without this the search would try every
    // order of passing a route between meshed reflectors, exponential in their number.
    let mut seen: HashMap<(usize, Via), Vec<Vec<u32>>> = HashMap::new();
    let mut queue: VecDeque<(usize, Via, Vec<u32>)> = VecDeque::new();
    let mut mesh_broadcasts: HashMap<Vec<u32>, Vec<usize>> = HashMap::new();
    reached[origin] = true;
    queue.push_back((origin, Via::Originated, Vec::new()));
    seen.insert((origin, Via::Originated), vec![Vec::new()]);
    let mut deliver = |node: usize, via: Via, list: Vec<u32>, queue: &mut VecDeque<_>, reached: &mut Vec<bool>| {
        if node == origin {
            return;
        }
        let lists = seen.entry((node, via)).or_default();
        if lists.iter().any(|known| is_subset(known, &list)) {
            return;
        }
        lists.retain(|known| !is_subset(&list, known));
        lists.push(list.clone());
        reached[node] = true;
        queue.push_back((node, via, list));
    };
    while let Some((node, via, list)) = queue.pop_front() {
        let reflecting = matches!(via, Via::FromClient | Via::FromNonClient);
        for link in &sessions.links[node] {
            let allowed = link.external || !reflecting || via == Via::FromClient || link.to_is_client;
            if !allowed {
                continue;
            }
            let (next_via, next_list) = if link.external {
                (Via::External, Vec::new())
            } else {
                let mut next_list = list.clone();
                if reflecting && let Some(id) = sessions.cluster_ids[node] {
                    next_list.push(id);
                    next_list.sort_unstable();
                    next_list.dedup();
                }
                if let Some(id) = sessions.cluster_ids[link.to]
                    && next_list.contains(&id)
                {
                    loop_drops.insert(link.to);
                    continue;
                }
                (if link.from_is_client { Via::FromClient } else { Via::FromNonClient }, next_list)
            };
            deliver(link.to, next_via, next_list, &mut queue, &mut reached);
        }
        // Mesh members pass only their own and eBGP-learned routes over the mesh.
        if sessions.in_mesh[node] && !reflecting {
            let broadcasters = mesh_broadcasts.entry(list.clone()).or_default();
            if broadcasters.len() >= 2 || broadcasters.contains(&node) {
                continue;
            }
            broadcasters.push(node);
            let first = broadcasters.len() == 1;
            let previous = broadcasters.first().copied();
            for other in 0..count {
                if other == node || !sessions.in_mesh[other] || (!first && Some(other) != previous) {
                    continue;
                }
                let external = sessions.as_numbers[other] != sessions.as_numbers[node];
                let next = if external { (Via::External, Vec::new()) } else { (Via::FromNonClient, list.clone()) };
                deliver(other, next.0, next.1, &mut queue, &mut reached);
            }
        }
    }
    Reach { reached, loop_drops }
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
    // Nodes with the same sessions behave the same: search once per class.
    let mut classes: HashMap<Signature, Vec<usize>> = HashMap::new();
    for index in (0..count).filter(|&index| advertises[index] && (!sessions.links[index].is_empty() || sessions.in_mesh[index])) {
        let key = (sessions.in_mesh[index], sessions.as_numbers[index], sessions.cluster_ids[index], sessions.links[index].clone());
        classes.entry(key).or_default().push(index);
    }
    let mut classes: Vec<Vec<usize>> = classes.into_values().collect();
    classes.sort();
    let by_topology: HashMap<usize, NodeId> =
        model.nodes.iter().filter_map(|node| Some((analysis.topology_index(node.id)?, node.id))).collect();
    for class in classes {
        let origin = class[0];
        let reach = propagate(&sessions, origin);
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
        let mut droppers: Vec<usize> = reach.loop_drops.iter().copied().collect();
        droppers.sort_unstable();
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
