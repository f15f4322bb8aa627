//! `calplan import`: the intent that reproduces a current state, so an existing cluster can
//! adopt calplan. Compiling the intent and planning it against the same state gives an empty
//! plan (a property the tests check). The findings the cluster has (a peering configured at
//! one end only, say) are the cluster's truth, not the import's mistakes: [`allow_section`]
//! lists their rules under `spec.allow`, each with a comment naming them, so the intent
//! compiles as the cluster runs until someone fixes them.
//!
//! Everything is written in its literal form: route reflectors by their nodes'
//! `routeReflectorClusterID`, every BGPPeer as it is, including what Calico made of a YAML tag.
//! Nodes are the exception: where their AS numbers and cluster IDs follow their labels,
//! [`propose_node_rules`] writes `nodeRules` instead, and the nodes the rules describe are not
//! listed (`plan` takes them from the cluster).

use calplan_calico::Release;
use calplan_calico::resources::*;
use calplan_model::Datastore;
use serde_json::{Map, Value, json};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// The intent text, and notes on what the intent cannot express. `reported` is the version
/// the cluster reports (`ClusterInformation`'s `calicoVersion`, such as `v3.30.7`), if any;
/// `datastore` is where the resources were read from, when a datastore was read.
pub fn intent_yaml(resources: &ResourceSet, cluster: &str, reported: Option<&str>, datastore: Option<Datastore>) -> (String, Vec<String>) {
    let mut notes = Vec::new();
    let mut spec = Map::new();
    let release = match reported {
        Some(version) => Release::parse(version).unwrap_or_else(|| {
            notes.push(format!(
                "the cluster reports Calico `{version}`, which calplan does not render for ({}); `calicoVersion` is {}",
                Release::supported_list(),
                Release::DEFAULT
            ));
            Release::DEFAULT
        }),
        None => {
            notes.push(format!(
                "the current state does not say which Calico release runs (no `ClusterInformation`); `calicoVersion` is {}: correct it if the cluster runs another",
                Release::DEFAULT
            ));
            Release::DEFAULT
        }
    };
    spec.insert("calicoVersion".into(), json!(release.as_str()));
    if let Some(datastore) = datastore {
        spec.insert(
            "datastore".into(),
            json!(match datastore {
                Datastore::Etcdv3 => "etcdv3",
                Datastore::Kubernetes => "kubernetes",
            }),
        );
    }
    let configuration = resources.bgp_configuration().map(|c| c.spec.clone()).unwrap_or_default();
    // Entries without a CIDR are skipped, as confd skips them.
    let cidrs = |entries: &Option<Vec<CidrEntry>>| -> Vec<Value> {
        entries.iter().flatten().filter(|entry| !entry.cidr.is_empty()).map(|entry| json!(entry.cidr)).collect()
    };
    let cluster_ips = cidrs(&configuration.service_cluster_ips);
    if !cluster_ips.is_empty() {
        spec.insert("serviceClusterIPs".into(), Value::Array(cluster_ips.clone()));
    }
    let mut bgp = Map::new();
    if let Some(number) = configuration.as_number {
        bgp.insert("asNumber".into(), json!(number.0));
    }
    bgp.insert("nodeToNodeMesh".into(), json!(configuration.effective_mesh()));
    if let Some(severity) = &configuration.log_severity_screen {
        bgp.insert("logSeverity".into(), json!(severity));
    }
    if !cluster_ips.is_empty() {
        bgp.insert("advertiseServiceClusterIPs".into(), json!(true));
    }
    for (field, entries) in
        [("serviceExternalIPs", &configuration.service_external_ips), ("serviceLoadBalancerIPs", &configuration.service_load_balancer_ips)]
    {
        let list = cidrs(entries);
        if !list.is_empty() {
            bgp.insert(field.into(), Value::Array(list));
        }
    }
    if let Some(port) = configuration.listen_port {
        bgp.insert("listenPort".into(), json!(port));
    }
    if let Some(mode) = &configuration.bind_mode {
        bgp.insert("bindMode".into(), json!(mode));
    }
    if let Some(interfaces) = &configuration.ignored_interfaces {
        bgp.insert("ignoredInterfaces".into(), json!(interfaces));
    }
    if let Some(password) = &configuration.node_mesh_password {
        bgp.insert("nodeMeshPassword".into(), secret(password));
    }
    if let Some(time) = &configuration.node_mesh_max_restart_time {
        bgp.insert("nodeMeshMaxRestartTime".into(), json!(time));
    }
    insert_communities(&mut bgp, &configuration);
    if let Some(address) = non_empty(&configuration.local_workload_peering_ipv4) {
        bgp.insert("localWorkloadPeeringIPV4".into(), json!(address));
    }
    if let Some(address) = non_empty(&configuration.local_workload_peering_ipv6) {
        bgp.insert("localWorkloadPeeringIPV6".into(), json!(address));
    }
    if let Some(aggregation) = non_empty(&configuration.service_load_balancer_aggregation) {
        bgp.insert("serviceLoadBalancerAggregation".into(), json!(aggregation));
    }
    // Fields Calico does not know were warned about when read, and Calico ignored them.
    for field in configuration.extra.keys().filter(|field| calplan_calico::fields::BGP_CONFIGURATION_SPEC.contains(&field.as_str())) {
        notes.push(format!("BGPConfiguration `default`: `{field}` has no place in the intent and is not imported"));
    }
    let filters: Vec<Value> = resources.filters().map(|filter| filter_value(filter, &mut notes)).collect();
    if !filters.is_empty() {
        bgp.insert("filters".into(), Value::Array(filters));
    }
    let peers: Vec<Value> = resources.peers().map(|peer| peer_value(peer, &mut notes)).collect();
    if !peers.is_empty() {
        bgp.insert("peers".into(), Value::Array(peers));
    }
    spec.insert("bgp".into(), Value::Object(bgp));
    let pools: Vec<Value> = resources.pools().map(|pool| pool_value(pool, &mut notes)).collect();
    spec.insert("pools".into(), Value::Array(pools));
    let proposal = propose_node_rules(resources);
    let nodes: Vec<Value> = resources
        .nodes()
        .filter(|node| !proposal.explained.contains(node.metadata.name.as_str()))
        .map(|node| {
            let value = node_value(node, resources, &mut notes);
            if proposal.kept.contains(&node.metadata.name) { only_what_rules_cannot_say(value) } else { value }
        })
        .collect();
    if !proposal.rules.is_empty() {
        notes.push(format!(
            "{} of {} nodes follow their labels and are described by `nodeRules`; they are not listed, their facts come from the cluster (`--current` or `--nodes`) when planning",
            proposal.explained.len(),
            resources.nodes().count()
        ));
        if !proposal.unfit.is_empty() {
            notes.push(format!(
                "{} node{} fit no rule and {} listed in `nodes`: {}",
                proposal.unfit.len(),
                plural(proposal.unfit.len()),
                if proposal.unfit.len() == 1 { "is" } else { "are" },
                name_list(&proposal.unfit)
            ));
        }
        if !proposal.kept.is_empty() {
            notes.push(format!(
                "{} node{} the rules describe {} listed with only what a node's entry says (a reflector's marker labels, its own BGPConfiguration): {}",
                proposal.kept.len(),
                plural(proposal.kept.len()),
                if proposal.kept.len() == 1 { "is" } else { "are" },
                name_list(&proposal.kept)
            ));
        }
        spec.insert("nodeRules".into(), Value::Array(proposal.rules.iter().map(ProposedRule::value).collect()));
    }
    for configuration in resources.iter().filter_map(|resource| match resource {
        Resource::BgpConfiguration(configuration) if configuration.metadata.name != "default" => Some(configuration),
        _ => None,
    }) {
        let name = &configuration.metadata.name;
        let known = name.strip_prefix(NODE_CONFIGURATION_PREFIX).is_some_and(|node| resources.get(ResourceKind::Node, node).is_some());
        if !known {
            notes.push(format!(
                "BGPConfiguration `{name}` names no node of the cluster (confd reads `default` and `node.<node>`) and is not imported"
            ));
        }
    }
    if proposal.rules.is_empty() || !nodes.is_empty() {
        spec.insert("nodes".into(), Value::Array(nodes));
    }
    let intent = json!({
        "apiVersion": "calplan/v1",
        "kind": "ClusterIntent",
        "metadata": {"name": cluster},
        "spec": Value::Object(spec),
    });
    let body = serde_saphyr::to_string(&intent).expect("intents serialize");
    let mut text = String::from("# Imported by `calplan import` from the cluster as it stands.\n");
    for note in &notes {
        text.push_str(&format!("# note: {note}\n"));
    }
    text.push_str(&body);
    (text, notes)
}

/// The findings of one rule in the cluster as imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub code: &'static str,
    pub name: &'static str,
    /// Each finding's message, in the order reported.
    pub messages: Vec<String>,
}

/// How many of a rule's findings the comment above its `allow` entry lists.
const LIST_AT_MOST: usize = 5;

/// The `allow:` list that lets an imported intent compile although the cluster has these
/// findings: appended to [`intent_yaml`]'s text (whose `spec` ends it), one entry per rule,
/// each under a comment that says what the cluster has and that it should be fixed.
pub fn allow_section(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return String::new();
    }
    let mut text = String::from("  allow:\n");
    for finding in findings {
        let count = finding.messages.len();
        let (these, them) = if count == 1 { ("this finding", "it") } else { ("these findings", "them") };
        text.push_str(&format!("  # The cluster had {these} when it was imported: allowed so that the intent compiles as the\n"));
        text.push_str(&format!("  # cluster runs. Fix {them}, then remove this entry.\n"));
        for message in finding.messages.iter().take(LIST_AT_MOST) {
            let line: String = message.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            text.push_str(&format!("  #   {} {line}\n", finding.code));
        }
        if count > LIST_AT_MOST {
            text.push_str(&format!("  #   ... and {} more\n", count - LIST_AT_MOST));
        }
        let reason = format!(
            "present in the cluster when it was imported ({count} finding{}); fix, then remove this entry",
            if count == 1 { "" } else { "s" }
        );
        text.push_str(&format!("  - rule: {}\n    reason: {}\n", finding.name, serde_json::to_string(&reason).expect("strings serialize")));
    }
    text
}

fn secret(holder: &SecretKeyRefHolder) -> Value {
    json!({"secretKeyRef": {"name": holder.secret_key_ref.name, "key": holder.secret_key_ref.key}})
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|text| !text.is_empty())
}

fn peer_value(peer: &BgpPeer, notes: &mut Vec<String>) -> Value {
    let spec = &peer.spec;
    let mut value = Map::new();
    value.insert("name".into(), json!(peer.metadata.name));
    let mut text_field = |field: &str, text: &Option<String>| {
        if let Some(text) = non_empty(text) {
            value.insert(field.into(), json!(text));
        }
    };
    text_field("peerIP", &spec.peer_ip);
    text_field("peerSelector", &spec.peer_selector);
    text_field("node", &spec.node);
    text_field("nodeSelector", &spec.node_selector);
    text_field("nextHopMode", &spec.next_hop_mode);
    text_field("maxRestartTime", &spec.max_restart_time);
    text_field("keepaliveTime", &spec.keepalive_time);
    text_field("sourceAddress", &spec.source_address);
    text_field("reversePeering", &spec.reverse_peering);
    text_field("reachableBy", &spec.reachable_by);
    if let Some(number) = spec.as_number {
        value.insert("asNumber".into(), json!(number.0));
    }
    if let Some(number) = spec.local_as_number {
        value.insert("localASNumber".into(), json!(number.0));
    }
    if let Some(keep) = spec.keep_original_next_hop {
        value.insert("keepOriginalNextHop".into(), json!(keep));
    }
    if let Some(password) = &spec.password {
        value.insert("password".into(), secret(password));
    }
    if let Some(ttl) = spec.ttl_security {
        value.insert("ttlSecurity".into(), json!(ttl));
    }
    if let Some(count) = spec.num_allowed_local_as_numbers {
        value.insert("numAllowedLocalASNumbers".into(), json!(count));
    }
    if let Some(filters) = &spec.filters {
        value.insert("filters".into(), json!(filters));
    }
    text_field_value(&mut value, "localWorkloadSelector", &spec.local_workload_selector);
    // Fields Calico does not know were warned about when read, and Calico ignored them.
    for field in spec.extra.keys().filter(|field| calplan_calico::fields::BGP_PEER_SPEC.contains(&field.as_str())) {
        notes.push(format!("BGPPeer `{}`: `{field}` has no place in the intent and is not imported", peer.metadata.name));
    }
    Value::Object(value)
}

fn pool_value(pool: &IpPool, notes: &mut Vec<String>) -> Value {
    let spec = &pool.spec;
    let mut value = Map::new();
    value.insert("name".into(), json!(pool.metadata.name));
    value.insert("cidr".into(), json!(spec.cidr));
    value.insert("blockSize".into(), json!(spec.effective_block_size()));
    value.insert("ipipMode".into(), json!(spec.ipip_mode.unwrap_or_default().as_str()));
    value.insert("vxlanMode".into(), json!(spec.vxlan_mode.unwrap_or_default().as_str()));
    value.insert("natOutgoing".into(), json!(spec.nat_outgoing.unwrap_or(false)));
    if spec.disabled == Some(true) {
        value.insert("disabled".into(), json!(true));
    }
    if spec.disable_bgp_export == Some(true) {
        value.insert("disableBGPExport".into(), json!(true));
    }
    value.insert("nodeSelector".into(), json!(spec.effective_node_selector()));
    if let Some(uses) = &spec.allowed_uses {
        value.insert("allowedUses".into(), json!(uses));
    }
    if let Some(mode) = &spec.assignment_mode {
        value.insert("assignmentMode".into(), json!(mode));
    }
    text_field_value(&mut value, "namespaceSelector", &spec.namespace_selector);
    // Fields Calico does not know were warned about when read, and Calico ignored them.
    for field in spec.extra.keys().filter(|field| calplan_calico::fields::IP_POOL_SPEC.contains(&field.as_str())) {
        notes.push(format!("IPPool `{}`: `{field}` has no place in the intent and is not imported", pool.metadata.name));
    }
    Value::Object(value)
}

fn text_field_value(value: &mut Map<String, Value>, field: &str, text: &Option<String>) {
    if let Some(text) = non_empty(text) {
        value.insert(field.into(), json!(text));
    }
}

/// `communities` and `prefixAdvertisements` of a BGPConfiguration, as written.
fn insert_communities(into: &mut Map<String, Value>, configuration: &BgpConfigurationSpec) {
    if let Some(communities) = configuration.communities.as_ref().filter(|list| !list.is_empty()) {
        into.insert("communities".into(), json!(communities));
    }
    if let Some(advertisements) = &configuration.prefix_advertisements {
        into.insert("prefixAdvertisements".into(), json!(advertisements));
    }
}

fn filter_value(filter: &BgpFilter, notes: &mut Vec<String>) -> Value {
    let mut value = Map::new();
    value.insert("name".into(), json!(filter.metadata.name));
    let spec = &filter.spec;
    for (field, rules) in
        [("exportV4", &spec.export_v4), ("importV4", &spec.import_v4), ("exportV6", &spec.export_v6), ("importV6", &spec.import_v6)]
    {
        if let Some(rules) = rules {
            let rules: Vec<Value> = rules
                .iter()
                .map(|rule| {
                    for extra in rule.extra.keys() {
                        notes.push(format!(
                            "BGPFilter `{}`: `{field}[].{extra}` has no place in the intent and is not imported",
                            filter.metadata.name
                        ));
                    }
                    let mut rule_value = serde_json::to_value(rule).expect("rules serialize");
                    if let Some(object) = rule_value.as_object_mut() {
                        object.retain(|key, value| !(value.as_str() == Some("") || rule.extra.contains_key(key)));
                    }
                    rule_value
                })
                .collect();
            value.insert(field.into(), Value::Array(rules));
        }
    }
    for field in spec.extra.keys() {
        notes.push(format!("BGPFilter `{}`: `{field}` has no place in the intent and is not imported", filter.metadata.name));
    }
    Value::Object(value)
}

fn node_value(node: &CalicoNode, resources: &ResourceSet, notes: &mut Vec<String>) -> Value {
    let mut value = Map::new();
    value.insert("name".into(), json!(node.metadata.name));
    let bgp = node.spec.bgp.clone().unwrap_or_default();
    if let Some(address) = &bgp.ipv4_address {
        value.insert("ipv4Address".into(), json!(address));
    }
    if let Some(address) = &bgp.ipv6_address {
        value.insert("ipv6Address".into(), json!(address));
    }
    if let Some(number) = bgp.as_number {
        value.insert("asNumber".into(), json!(number.0));
    }
    if let Some(id) = non_empty(&bgp.route_reflector_cluster_id) {
        value.insert("routeReflectorClusterID".into(), json!(id));
    }
    if !node.metadata.labels.is_empty() {
        value.insert("labels".into(), json!(node.metadata.labels));
    }
    if let Some(configuration) = resources.node_bgp_configuration(&node.metadata.name) {
        let spec = &configuration.spec;
        let mut own = Map::new();
        if let Some(port) = spec.listen_port {
            own.insert("listenPort".into(), json!(port));
        }
        if let Some(severity) = non_empty(&spec.log_severity_screen) {
            own.insert("logSeverity".into(), json!(severity));
        }
        insert_communities(&mut own, spec);
        let taken = ["listenPort", "logSeverityScreen", "communities", "prefixAdvertisements"];
        let written = serde_json::to_value(spec).expect("configurations serialize");
        for field in written.as_object().into_iter().flat_map(|object| object.keys()).filter(|field| !taken.contains(&field.as_str())) {
            notes.push(format!(
                "BGPConfiguration `{}`: `{field}` is not read from a node's own configuration by confd and is not imported",
                configuration.metadata.name
            ));
        }
        value.insert("bgpConfiguration".into(), Value::Object(own));
    }
    Value::Object(value)
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// How many node names a note lists before it says how many more there are.
const NAMES_AT_MOST: usize = 20;

fn name_list(names: &[String]) -> String {
    let mut text = names.iter().take(NAMES_AT_MOST).map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ");
    if names.len() > NAMES_AT_MOST {
        text.push_str(&format!(" and {} more", names.len() - NAMES_AT_MOST));
    }
    text
}

/// The fewest nodes a proposed rule covers: a rule for one node says no more than the node.
const NODES_PER_RULE_AT_LEAST: usize = 2;

/// A node rule `import` proposes: the nodes whose label `key` has one of `values` all have
/// `value` in `field`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposedRule {
    /// `asNumber` or `routeReflectorClusterID`.
    pub field: &'static str,
    pub value: String,
    /// A label value every node of the rule carries besides (`node-role`, `infra`).
    pub filter: Option<(String, String)>,
    pub key: String,
    pub values: Vec<String>,
    pub nodes: usize,
}

impl ProposedRule {
    fn name(&self) -> String {
        match self.field {
            "asNumber" => format!("as-{}", self.value),
            _ => format!("reflector-cluster-{}", self.value),
        }
    }

    fn selector(&self) -> String {
        let by_key = match self.values.as_slice() {
            [value] => format!("{} == '{value}'", self.key),
            values => format!("{} in {{{}}}", self.key, values.iter().map(|value| format!("'{value}'")).collect::<Vec<_>>().join(", ")),
        };
        match &self.filter {
            Some((key, value)) => format!("{key} == '{value}' && {by_key}"),
            None => by_key,
        }
    }

    /// Whether the rule's selector matches the node's labels.
    fn selects(&self, node: &CalicoNode) -> bool {
        let labels = &node.metadata.labels;
        self.filter.as_ref().is_none_or(|(key, value)| labels.get(key) == Some(value))
            && labels.get(&self.key).is_some_and(|label| self.values.contains(label))
    }

    fn value(&self) -> Value {
        let mut rule = Map::new();
        rule.insert("name".into(), json!(self.name()));
        rule.insert("nodeSelector".into(), json!(self.selector()));
        match self.field {
            "asNumber" => rule.insert("asNumber".into(), json!(self.value.parse::<u64>().unwrap_or_default())),
            field => rule.insert(field.into(), json!(self.value)),
        };
        Value::Object(rule)
    }
}

/// How well a key explains a setting: nodes covered, rules (fewer is better), whether it
/// needs no filter, label values in the selectors (fewer is better).
type Score = (usize, Reverse<usize>, bool, Reverse<usize>);

/// The rules by which `key` (among the nodes `filter` selects) explains `field`: every value of
/// `key` whose nodes have a setting, most of them (at least two) the same one, gives them that
/// setting; values with one setting share a rule. The others of those nodes have another
/// setting (listed, their own pinned): a node without the setting could not keep it unset
/// under a rule.
fn rules_for(nodes: &[&CalicoNode], values: &[Setting], field: &'static str, filter: Option<(&str, &str)>, key: &str) -> Vec<ProposedRule> {
    let mut groups: BTreeMap<&str, BTreeMap<&Setting, usize>> = BTreeMap::new();
    for (node, value) in nodes.iter().zip(values) {
        if filter.is_some_and(|(filter, wanted)| node.metadata.labels.get(filter).is_none_or(|label| label != wanted)) {
            continue;
        }
        let Some(label) = node.metadata.labels.get(key) else { continue };
        *groups.entry(label.as_str()).or_default().entry(value).or_default() += 1;
    }
    let mut by_setting: BTreeMap<&str, (Vec<String>, usize)> = BTreeMap::new();
    for (label, counts) in &groups {
        let total: usize = counts.values().sum();
        let Some((Ok(Some(setting)), count)) = counts.iter().max_by_key(|(setting, count)| (**count, Reverse(**setting))) else {
            continue;
        };
        if *count < NODES_PER_RULE_AT_LEAST
            || 2 * count <= total
            || counts.keys().any(|setting| !matches!(setting, Ok(Some(_))))
            || !calplan_model::lower::is_label_name(label)
        {
            continue;
        }
        let entry = by_setting.entry(setting.as_str()).or_default();
        entry.0.push(label.to_string());
        entry.1 += count;
    }
    by_setting
        .into_iter()
        .map(|(value, (labels, count))| ProposedRule {
            field,
            value: value.to_string(),
            filter: filter.map(|(key, label)| (key.to_string(), label.to_string())),
            key: key.to_string(),
            values: labels,
            nodes: count,
        })
        .collect()
}

/// What [`propose_node_rules`] found.
#[derive(Debug, Default)]
pub struct Proposal {
    pub rules: Vec<ProposedRule>,
    /// The nodes the rules describe entirely, left out of `spec.nodes`.
    pub explained: BTreeSet<String>,
    /// The nodes with a setting no rule gives (or that the cluster cannot give as they are),
    /// listed in full in `spec.nodes` (sorted).
    pub unfit: Vec<String>,
    /// The nodes the rules describe that are listed all the same, with only what their own
    /// entry can say (a reflector's marker labels, a BGPConfiguration of their own).
    pub kept: Vec<String>,
}

/// A node's setting of one field as the lowering would read it from the cluster: `None` when
/// unset, `Err` when it is set in a form only the node's own entry can carry.
type Setting = Result<Option<String>, ()>;

/// Node rules for the settings (`asNumber`, `routeReflectorClusterID`) the nodes' labels
/// explain. For each field, the label key that explains it best ([`rules_for`]), possibly
/// among the nodes of a label value only nodes with the setting carry (reflectors'
/// `node-role=infra`): it covers the most nodes, then needs the fewest rules, then no filter,
/// then the fewest label values, then sorts first. A node is left out of `spec.nodes` when the
/// rules give it every setting it has and nothing else of it needs the intent (its addresses,
/// labels and name read back from the cluster as they are; no marker labels of a reflector, no
/// node BGPConfiguration). A rule covers at least two nodes and fewer rules than nodes: without
/// one, the import lists every node as before.
pub fn propose_node_rules(resources: &ResourceSet) -> Proposal {
    let nodes: Vec<&CalicoNode> = resources.nodes().collect();
    let settings = |field: &str, node: &CalicoNode| -> Setting {
        let bgp = node.spec.bgp.clone().unwrap_or_default();
        match field {
            "asNumber" => Ok(bgp.as_number.filter(|number| number.0 != 0).map(|number| number.0.to_string())),
            _ => match non_empty(&bgp.route_reflector_cluster_id) {
                None => Ok(None),
                Some(id) => id.parse::<Ipv4Addr>().map(|id| Some(id.to_string())).map_err(|_| ()),
            },
        }
    };
    let mut proposal = Proposal::default();
    // Per node, per field: whether a rule gives it the setting.
    let mut covered: BTreeMap<&str, BTreeSet<&'static str>> = BTreeMap::new();
    for field in ["asNumber", "routeReflectorClusterID"] {
        let values: Vec<Setting> = nodes.iter().map(|node| settings(field, node)).collect();
        if !values.iter().any(|value| matches!(value, Ok(Some(_)))) {
            continue;
        }
        let keys: BTreeSet<&str> = nodes
            .iter()
            .flat_map(|node| node.metadata.labels.keys())
            .map(String::as_str)
            .filter(|key| *key != "route-reflector" && *key != "route-reflector-cluster")
            .filter(|key| calplan_model::lower::label_key_problem(key).is_none())
            .collect();
        // Filters: a label value that only nodes with the setting carry (`node-role=infra` for
        // reflectors, say), so that a key whose values also hold nodes without it can still
        // explain it among the filtered nodes (`node-role == 'infra' && rack == 'r1'`).
        let mut pairs: BTreeMap<(&str, &str), (usize, bool)> = BTreeMap::new();
        for (node, value) in nodes.iter().zip(&values) {
            for (key, label) in &node.metadata.labels {
                let pair = pairs.entry((key.as_str(), label.as_str())).or_insert((0, true));
                pair.0 += 1;
                pair.1 &= matches!(value, Ok(Some(_)));
            }
        }
        // Only a setting some nodes lack needs one.
        let some_unset = values.iter().any(|value| !matches!(value, Ok(Some(_))));
        let filters: Vec<Option<(&str, &str)>> = std::iter::once(None)
            .chain(
                pairs
                    .into_iter()
                    .filter(|((key, label), (count, all_set))| {
                        some_unset
                            && *all_set
                            && *count >= NODES_PER_RULE_AT_LEAST
                            && keys.contains(key)
                            && calplan_model::lower::is_label_name(label)
                    })
                    .map(|(pair, _)| Some(pair)),
            )
            .collect();
        let mut best: Option<(Score, Vec<ProposedRule>)> = None;
        for filter in filters {
            for key in keys.iter().copied().filter(|key| filter.is_none_or(|(filter, _)| filter != *key)) {
                let rules = rules_for(&nodes, &values, field, filter, key);
                let count: usize = rules.iter().map(|rule| rule.nodes).sum();
                if rules.is_empty() || rules.len() >= count {
                    continue;
                }
                let labels: usize = rules.iter().map(|rule| rule.values.len()).sum();
                // The most nodes, then the fewest rules, then no filter, then the fewest label
                // values; the first filter and key.
                let score = (count, Reverse(rules.len()), filter.is_none(), Reverse(labels));
                if best.as_ref().is_none_or(|(best, _)| score > *best) {
                    best = Some((score, rules));
                }
            }
        }
        let Some((_, rules)) = best else { continue };
        for (node, value) in nodes.iter().zip(&values) {
            if rules.iter().any(|rule| rule.selects(node) && Ok(Some(rule.value.clone())) == *value) {
                covered.entry(node.metadata.name.as_str()).or_default().insert(field);
            }
        }
        proposal.rules.extend(rules);
    }
    if proposal.rules.is_empty() {
        return proposal;
    }
    for node in &nodes {
        let name = node.metadata.name.as_str();
        let given = covered.get(name);
        let fits = ["asNumber", "routeReflectorClusterID"].into_iter().all(|field| match settings(field, node) {
            Ok(None) => true,
            Ok(Some(_)) => given.is_some_and(|fields| fields.contains(field)),
            Err(()) => false,
        });
        if !fits || !reads_back(node) {
            proposal.unfit.push(name.to_string());
        } else if needs_entry(node, resources) {
            proposal.kept.push(name.to_string());
        } else {
            proposal.explained.insert(name.to_string());
        }
    }
    proposal
}

/// The entry of a node the rules describe that is listed for what only its entry says: its
/// name, a reflector's marker labels and its own BGPConfiguration. The rest (addresses, other
/// labels) comes from the cluster, and the rules give its AS number and cluster ID.
fn only_what_rules_cannot_say(value: Value) -> Value {
    let Value::Object(mut entry) = value else { return value };
    entry.retain(|field, _| ["name", "labels", "bgpConfiguration"].contains(&field.as_str()));
    if let Some(Value::Object(labels)) = entry.get_mut("labels") {
        labels.retain(|key, _| MARKERS.contains(&key.as_str()));
        if labels.is_empty() {
            entry.remove("labels");
        }
    }
    Value::Object(entry)
}

/// The labels calplan sets on reflectors, which the lowering does not take from the cluster.
const MARKERS: [&str; 2] = ["route-reflector", "route-reflector-cluster"];

/// Whether the lowering, taking this node from the cluster, gets it as it is: its name,
/// addresses and labels as Kubernetes would accept them.
fn reads_back(node: &CalicoNode) -> bool {
    let bgp = node.spec.bgp.clone().unwrap_or_default();
    calplan_model::lower::is_dns_subdomain(&node.metadata.name)
        && bgp.ipv4_address.as_deref().is_none_or(|address| address.parse::<ipnet::Ipv4Net>().is_ok())
        && bgp.ipv6_address.as_deref().is_none_or(|address| address.parse::<ipnet::Ipv6Net>().is_ok())
        && node.metadata.labels.iter().all(|(key, value)| {
            calplan_model::lower::label_key_problem(key).is_none() && (value.is_empty() || calplan_model::lower::is_label_name(value))
        })
}

/// Whether a node needs its own entry although the rules describe it: a reflector's marker
/// labels or a BGPConfiguration of its own.
fn needs_entry(node: &CalicoNode, resources: &ResourceSet) -> bool {
    node.metadata.labels.keys().any(|key| MARKERS.contains(&key.as_str()))
        || resources.node_bgp_configuration(&node.metadata.name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use calplan_calico::AsNumber;

    /// A node: name, labels, AS number, cluster ID.
    type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<u32>, Option<&'a str>);

    fn cluster(nodes: &[Row]) -> ResourceSet {
        let mut set = ResourceSet::default();
        for (index, (name, labels, as_number, cluster_id)) in nodes.iter().enumerate() {
            let mut metadata = ObjectMeta::named(*name);
            metadata.labels = labels.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
            let bgp = NodeBgpSpec {
                ipv4_address: Some(format!("10.0.0.{}/24", index + 1)),
                as_number: as_number.map(AsNumber),
                route_reflector_cluster_id: cluster_id.map(str::to_string),
                ..NodeBgpSpec::default()
            };
            set.insert(Resource::Node(CalicoNode {
                api_version: API_VERSION.into(),
                kind: "Node".into(),
                metadata,
                spec: NodeSpec { bgp: Some(bgp), extra: Default::default() },
            }));
        }
        set
    }

    fn selectors(proposal: &Proposal) -> Vec<String> {
        proposal.rules.iter().map(|rule| format!("{} {}: {}", rule.name(), rule.selector(), rule.value)).collect()
    }

    #[test]
    fn racks_sharing_a_setting_share_a_rule_and_an_exception_is_listed() {
        let set = cluster(&[
            ("a1", &[("rack", "a"), ("host", "a1")], Some(65001), None),
            ("a2", &[("rack", "a"), ("host", "a2")], Some(65001), None),
            ("a3", &[("rack", "a"), ("host", "a3")], Some(65009), None),
            ("b1", &[("rack", "b"), ("host", "b1")], Some(65001), None),
            ("b2", &[("rack", "b"), ("host", "b2")], Some(65001), None),
            ("c1", &[("rack", "c"), ("host", "c1")], Some(65003), None),
            ("c2", &[("rack", "c"), ("host", "c2")], Some(65003), None),
        ]);
        let proposal = propose_node_rules(&set);
        assert_eq!(selectors(&proposal), ["as-65001 rack in {'a', 'b'}: 65001", "as-65003 rack == 'c': 65003"]);
        assert_eq!(proposal.unfit, ["a3"]);
        assert_eq!(proposal.explained.len(), 6);
    }

    #[test]
    fn a_node_without_the_setting_keeps_its_group_from_a_rule() {
        // Rack b has a node in the cluster's AS: a rule for rack b would move it.
        let set = cluster(&[
            ("a1", &[("rack", "a")], Some(65001), None),
            ("a2", &[("rack", "a")], Some(65001), None),
            ("b1", &[("rack", "b")], Some(65002), None),
            ("b2", &[("rack", "b")], Some(65002), None),
            ("b3", &[("rack", "b")], None, None),
        ]);
        let proposal = propose_node_rules(&set);
        assert_eq!(selectors(&proposal), ["as-65001 rack == 'a': 65001"]);
        assert_eq!(proposal.unfit, ["b1", "b2"]);
        assert!(proposal.explained.contains("b3"), "b3 is not listed: no rule selects it, and it has no AS of its own");
    }

    #[test]
    fn reflectors_are_picked_out_by_a_label_only_they_carry() {
        let set = cluster(&[
            ("a1", &[("rack", "a"), ("role", "infra")], None, Some("244.0.0.1")),
            ("a2", &[("rack", "a"), ("role", "infra")], None, Some("244.0.0.1")),
            ("a3", &[("rack", "a")], None, None),
            ("b1", &[("rack", "b"), ("role", "infra")], None, Some("244.0.0.2")),
            ("b2", &[("rack", "b"), ("role", "infra")], None, Some("244.0.0.2")),
            ("b3", &[("rack", "b")], None, None),
        ]);
        let proposal = propose_node_rules(&set);
        assert_eq!(
            selectors(&proposal),
            [
                "reflector-cluster-244.0.0.1 role == 'infra' && rack == 'a': 244.0.0.1",
                "reflector-cluster-244.0.0.2 role == 'infra' && rack == 'b': 244.0.0.2"
            ]
        );
        assert_eq!(proposal.explained.len(), 6);
    }

    #[test]
    fn one_node_per_value_explains_nothing() {
        let set = cluster(&[("a1", &[("host", "a1")], Some(65001), None), ("b1", &[("host", "b1")], Some(65002), None)]);
        assert!(propose_node_rules(&set).rules.is_empty());
    }
}
