//! One rule per file, named for the problem it finds.
//!
//! The helpers below are wording shared by several rules: counts, lists of names, and what to
//! say about a selector that matches nothing.

use calplan_calico::Selector;
use calplan_diagnostics::{Diagnostics, Rule};
use calplan_model::{Analysis, Model};
use std::collections::{BTreeMap, BTreeSet};

mod advertised_range_missing;
pub(crate) mod allow_without_reason;
mod autodetection_mismatch;
mod autodetection_not_simulated;
mod block_size_out_of_range;
mod cidr_not_strictly_masked;
mod duplicate_address;
mod duplicate_name;
mod full_mesh_too_large;
mod ipip_and_vxlan;
mod ipip_on_ipv6;
mod link_local_overlap;
mod load_balancer_pool_conflict;
mod network_or_broadcast_address;
mod next_hop_not_on_link;
mod no_bgp_peering;
mod node_rule_conflict;
mod node_rule_selects_no_node;
mod node_without_address;
mod overlapping_prefixes;
mod peer_configures_no_session;
mod peer_field_conflict;
mod pool_capacity;
mod pool_fewer_blocks_than_nodes;
mod pool_in_reserved_range;
mod pool_selects_no_node;
mod pool_smaller_than_block;
mod route_destination_empty;
mod route_of_other_family;
mod route_reflector_without_address;
mod router_id_missing;
mod router_peering_target_missing;
mod routes_not_propagated;
pub(crate) mod rule_not_allowable;
mod selector_matches_nothing;
mod session_not_established;
mod too_few_reflectors;
mod unencapsulated_across_subnets;
pub(crate) mod unknown_rule;
pub(crate) mod unused_allow;

pub type Check = fn(&Analysis, &mut Diagnostics);

/// The checks, in the order they run (their diagnostics are sorted by position afterwards).
pub static CHECKS: &[Check] = &[
    cidr_not_strictly_masked::check,
    block_size_out_of_range::check,
    pool_smaller_than_block::check,
    ipip_and_vxlan::check,
    ipip_on_ipv6::check,
    link_local_overlap::check,
    pool_in_reserved_range::check,
    load_balancer_pool_conflict::check,
    pool_capacity::check,
    pool_fewer_blocks_than_nodes::check,
    pool_selects_no_node::check,
    overlapping_prefixes::check,
    duplicate_name::check,
    duplicate_address::check,
    network_or_broadcast_address::check,
    peer_field_conflict::check,
    peer_configures_no_session::check,
    no_bgp_peering::check,
    session_not_established::check,
    routes_not_propagated::check,
    unencapsulated_across_subnets::check,
    full_mesh_too_large::check,
    route_reflector_without_address::check,
    selector_matches_nothing::check,
    too_few_reflectors::check,
    autodetection_mismatch::check,
    autodetection_not_simulated::check,
    node_without_address::check,
    node_rule_conflict::check,
    node_rule_selects_no_node::check,
    next_hop_not_on_link::check,
    route_destination_empty::check,
    route_of_other_family::check,
    router_peering_target_missing::check,
    router_id_missing::check,
    advertised_range_missing::check,
];

pub static ALL: &[&Rule] = &[
    &cidr_not_strictly_masked::RULE,
    &block_size_out_of_range::RULE,
    &pool_smaller_than_block::RULE,
    &ipip_and_vxlan::RULE,
    &ipip_on_ipv6::RULE,
    &link_local_overlap::RULE,
    &pool_in_reserved_range::RULE,
    &load_balancer_pool_conflict::RULE,
    &pool_capacity::RULE,
    &pool_fewer_blocks_than_nodes::RULE,
    &pool_selects_no_node::RULE,
    &overlapping_prefixes::RULE,
    &duplicate_name::RULE,
    &duplicate_address::RULE,
    &network_or_broadcast_address::RULE,
    &peer_field_conflict::RULE,
    &peer_configures_no_session::RULE,
    &no_bgp_peering::RULE,
    &session_not_established::RULE,
    &routes_not_propagated::RULE,
    &unencapsulated_across_subnets::RULE,
    &full_mesh_too_large::RULE,
    &route_reflector_without_address::RULE,
    &selector_matches_nothing::RULE,
    &too_few_reflectors::RULE,
    &autodetection_mismatch::RULE,
    &autodetection_not_simulated::RULE,
    &node_without_address::RULE,
    &node_rule_conflict::RULE,
    &node_rule_selects_no_node::RULE,
    &next_hop_not_on_link::RULE,
    &route_destination_empty::RULE,
    &route_of_other_family::RULE,
    &router_peering_target_missing::RULE,
    &router_id_missing::RULE,
    &advertised_range_missing::RULE,
    // Reported while applying severity overrides (`crate::levels`), not by a check.
    &unknown_rule::RULE,
    &rule_not_allowable::RULE,
    &unused_allow::RULE,
    &allow_without_reason::RULE,
];

/// How many diagnostics a rule gives one per item before it gathers the rest into one.
const ITEMIZE_UP_TO: usize = 5;

/// How many places a gathered diagnostic marks with secondary labels.
const SHOW_AT_MOST: usize = 3;

/// `1 node`, `3 nodes`, `5,000 nodes`.
fn count(number: usize, noun: &str) -> String {
    if number == 1 { format!("1 {noun}") } else { format!("{} {noun}s", thousands(number)) }
}

/// `31125` as `31,125`.
fn thousands(number: impl ToString) -> String {
    let digits = number.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `` `a` ``, `` `a` and `b` ``, `` `a`, `b` and 3 more ``.
fn name_list<S: AsRef<str>>(names: &[S], show: usize) -> String {
    let quoted: Vec<String> = names.iter().take(show).map(|name| format!("`{}`", name.as_ref())).collect();
    let rest = names.len().saturating_sub(show);
    match (quoted.split_last(), rest) {
        (None, _) => String::new(),
        (Some((last, [])), 0) => last.clone(),
        (Some((last, init)), 0) => format!("{} and {last}", init.join(", ")),
        (Some(_), rest) => format!("{} and {} more", quoted.join(", "), thousands(rest)),
    }
}

/// For each node, whether lowering reported an address of its that does not parse
/// (`invalid-address`): such a node has an address, only not a readable one, and rules about
/// missing addresses would pile follow-on errors onto that one. A node's entry is taken to run
/// from its name to the next name of a node, router, pool or peer.
fn nodes_with_unreadable_address(model: &Model, diagnostics: &Diagnostics) -> Vec<bool> {
    let mut errors: Vec<u32> = diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.rule == &calplan_model::rules::INVALID_ADDRESS)
        .map(|diagnostic| diagnostic.span().start)
        .collect();
    errors.sort_unstable();
    // Where each declaration starts that could follow a node's entry.
    let mut starts: Vec<u32> = model
        .nodes
        .iter()
        .map(|node| node.name.span.start)
        .chain(model.routers.iter().map(|router| router.name.span.start))
        .chain(model.pools.iter().map(|pool| pool.name.span.start))
        .chain(model.peers.iter().map(|peer| peer.name.span.start))
        .collect();
    starts.sort_unstable();
    model
        .nodes
        .iter()
        .map(|node| {
            let start = node.name.span.start;
            let end = starts.get(starts.partition_point(|next| *next <= start)).copied().unwrap_or(u32::MAX);
            let first = errors.partition_point(|error| *error < start);
            errors.get(first).is_some_and(|error| *error < end)
        })
        .collect()
}

/// The nodes' labels, for asking of a selector whether it matches none of them, and why.
struct NodeLabels<'a> {
    values: Vec<BTreeMap<String, String>>,
    keys: BTreeSet<&'a str>,
}

impl<'a> NodeLabels<'a> {
    fn of(model: &'a Model) -> Self {
        NodeLabels {
            values: model.nodes.iter().map(|node| node.label_values()).collect(),
            keys: model.nodes.iter().flat_map(|node| node.labels.keys().map(String::as_str)).collect(),
        }
    }

    /// `None` when some node matches `selector`; else why none does, as precisely as can be
    /// said: a label key no node has (with the closest key some node does have), else that no
    /// node's labels satisfy it.
    fn unmatched(&self, selector: &Selector) -> Option<String> {
        if self.values.iter().any(|labels| selector.matches(labels)) {
            return None;
        }
        let missing: Vec<&str> = selector.label_keys().into_iter().filter(|key| !self.keys.contains(key)).collect();
        let Some(first) = missing.first() else {
            return Some("no node's labels satisfy it".to_string());
        };
        Some(match calplan_syntax::schema::did_you_mean(first, self.keys.iter().copied()) {
            Some(suggestion) => format!("no node has the label `{first}`; did you mean `{suggestion}`?"),
            None if missing.len() == 1 => format!("no node has the label `{first}`"),
            None => format!("no node has the labels {}", name_list(&missing, SHOW_AT_MOST)),
        })
    }
}

/// Runs the whole check on an intent's text, for the rules' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use calplan_diagnostics::{Diagnostic, Diagnostics, SourceMap};

    /// Every diagnostic for `text`, sorted, as `CODE message | help`.
    pub fn check(text: &str) -> Vec<String> {
        diagnostics(text).iter().map(|d| format!("{} {} | {}", d.rule.code, d.message, d.help.clone().unwrap_or_default())).collect()
    }

    pub fn diagnostics(text: &str) -> Vec<Diagnostic> {
        let mut sources = SourceMap::new();
        let file = sources.add("intent.yaml", text);
        let mut diagnostics = Diagnostics::new();
        let intent = calplan_syntax::parse_intent(file, text, &mut diagnostics).intent.expect("the test intent parses");
        let model = calplan_model::lower(file, text, &intent, &mut diagnostics);
        let analysis = calplan_model::Analysis::new(model, None);
        crate::validate(&analysis, &mut diagnostics);
        diagnostics.into_sorted()
    }

    /// Only the diagnostics of one rule.
    pub fn check_rule(text: &str, code: &str) -> Vec<String> {
        check(text).into_iter().filter(|line| line.starts_with(code)).collect()
    }

    /// An intent with the given `spec` body (indented by two spaces).
    pub fn intent(spec: &str) -> String {
        format!("apiVersion: calplan/v1\nkind: ClusterIntent\nmetadata: {{name: test}}\nspec:\n{spec}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_names_read_as_english() {
        assert_eq!(name_list(&["a"], 3), "`a`");
        assert_eq!(name_list(&["a", "b"], 3), "`a` and `b`");
        assert_eq!(name_list(&["a", "b", "c"], 3), "`a`, `b` and `c`");
        assert_eq!(name_list(&["a", "b", "c", "d", "e"], 3), "`a`, `b`, `c` and 2 more");
        assert_eq!(count(1, "node"), "1 node");
        assert_eq!(count(2, "node"), "2 nodes");
        assert_eq!(count(5000, "node"), "5,000 nodes");
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(7140), "7,140");
        assert_eq!(thousands(12_497_500), "12,497,500");
    }

    #[test]
    fn an_unmatched_selector_names_the_missing_label() {
        let labels = BTreeMap::from([("rack".to_string(), "a".to_string()), ("kubernetes.io/os".to_string(), "linux".to_string())]);
        let nodes = NodeLabels { keys: labels.keys().map(String::as_str).collect(), values: vec![labels.clone()] };
        let reason = |text: &str| nodes.unmatched(&Selector::parse(text).unwrap()).unwrap();
        assert_eq!(reason("rak == 'a'"), "no node has the label `rak`; did you mean `rack`?");
        assert_eq!(reason("rack == 'c'"), "no node's labels satisfy it");
        assert_eq!(reason("has(zone)"), "no node has the label `zone`");
    }
}
