//! What Calico's own validation refuses in a current-state resource, and the fields Calico
//! does not know, each located at the offending key or value of the file it was read from.
//!
//! A value Calico refuses (a Node's `ipv4Address: 999.1.1.1/24`, a selector that does not
//! parse, a pool's `blockSize: 8`) cannot have come from calicoctl or Calico's API server: the
//! export was edited or damaged, or someone wrote the datastore by hand. Either way calplan
//! cannot say what the cluster runs, and a plan or an imported intent made from it would be
//! wrong, so it is an error. Checks follow libcalico-go's `validator/v3` and
//! `clientv3/ippool.go`, and quote their wording where they have one.
//!
//! A field Calico does not know (`bolockSize: 24`) was ignored by Calico, whose decoder skips
//! unknown fields: the cluster runs as if it were not there. That is a warning saying so, with
//! the known field it was probably meant to be. Fields of Calico releases or features calplan
//! does not model are known to Calico, so they are not reported here (`import` notes them).
//!
//! Pure: a spanned YAML tree in, diagnostics out. The tree may come from a YAML export or from
//! an etcd value (JSON, read as YAML for its positions).

use calplan_calico::fields;
use calplan_calico::resources::ResourceKind;
use calplan_calico::{Selector, duration_seconds};
use calplan_diagnostics::{Diagnostic, Diagnostics, Span, declare_rule};
use calplan_model::grammar;
use calplan_syntax::schema::did_you_mean;
use calplan_syntax::yaml::{Node, NodeKind, Scalar};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

declare_rule! {
    /// ## What it does
    /// Reports a value in current state that Calico's own validation refuses: an address or
    /// CIDR that does not parse, a selector that does not parse, a block size out of range, an
    /// unknown kind, a list that is not a list.
    ///
    /// ## Why is this bad?
    /// calicoctl and Calico's API server refuse such a value, so it cannot be what the cluster
    /// runs as written: the export was edited or damaged, or the datastore written by hand. A
    /// plan or an imported intent made from it would be wrong.
    ///
    /// ## Example
    /// ```yaml
    /// kind: Node
    /// spec:
    ///   bgp:
    ///     ipv4Address: 999.1.1.1/24
    /// ```
    pub static INVALID_STATE = ("E0702", "invalid-current-state", Error, "a current-state value Calico's validation refuses");
}

declare_rule! {
    /// ## What it does
    /// Reports a field in a current-state resource that Calico does not know.
    ///
    /// ## Why is this bad?
    /// Calico ignores fields it does not know, so the cluster runs as if the field were not
    /// there: the seed's `bolockSize: 24` left the pool at the default block size, `/26`.
    ///
    /// ## Example
    /// ```yaml
    /// kind: IPPool
    /// spec:
    ///   cidr: 192.168.0.0/16
    ///   bolockSize: 24      # did you mean `blockSize`?
    /// ```
    pub static IGNORED_FIELD = ("W0703", "ignored-current-state-field", Warning, "a current-state field Calico does not know, and ignored");
}

const HELP_INVALID: &str = "calicoctl and Calico's API server refuse this value, so the cluster cannot be running it as written: export the resource again, or correct it where it is stored";

fn invalid(span: Span, message: impl Into<String>, label: &str) -> Diagnostic {
    Diagnostic::new(&INVALID_STATE, span, message).label(label.to_string()).help(HELP_INVALID)
}

/// Reports a `kind` that `projectcalico.org/v3` does not have (with the closest one).
pub fn check_kind(kind: &str, at: Span, diagnostics: &mut Diagnostics) -> bool {
    let known =
        fields::KINDS.contains(&kind) || kind == "List" || kind.strip_suffix("List").is_some_and(|kind| fields::KINDS.contains(&kind));
    if !known {
        let mut diagnostic = invalid(at, format!("`{kind}` is not a kind of `projectcalico.org/v3`"), "unknown kind");
        if let Some(suggestion) = did_you_mean(kind, fields::KINDS.iter().copied()) {
            diagnostic = diagnostic.help(format!("did you mean `{suggestion}`? Calico refuses a kind it does not know"));
        }
        diagnostics.push(diagnostic);
    }
    known
}

/// Checks one resource of a kind calplan reads.
pub fn check_resource(kind: ResourceKind, item: &Node, diagnostics: &mut Diagnostics) {
    let what = kind.as_str();
    unknown_fields(item, fields::OBJECT, &format!("a {what}"), diagnostics);
    match item.get("metadata") {
        Some(metadata) if metadata.as_mapping().is_some() => {
            unknown_fields(metadata, fields::OBJECT_META, "`metadata`", diagnostics);
            match text(metadata, "name") {
                None | Some(("", _)) => {
                    diagnostics.push(invalid(metadata.head_span(), format!("a {what} without `metadata.name`"), "no name"))
                }
                // Calico's validator (`validateObjectMeta`) takes the same names as Kubernetes.
                Some((name, span)) if !calplan_model::lower::is_dns_subdomain(name) => diagnostics.push(invalid(
                    span,
                    format!("`metadata.name` is not a DNS-1123 subdomain: {}", quoted(name)),
                    "not a resource name",
                )),
                Some(_) => {}
            }
        }
        _ => diagnostics.push(invalid(item.head_span(), format!("a {what} without `metadata.name`"), "no name")),
    }
    let spec = item.get("spec").filter(|spec| spec.as_mapping().is_some());
    match kind {
        ResourceKind::IpPool => ip_pool(item, spec, diagnostics),
        ResourceKind::BgpPeer => {
            if let Some(spec) = spec {
                bgp_peer(spec, diagnostics);
            }
        }
        ResourceKind::BgpConfiguration => {
            if let Some(spec) = spec {
                bgp_configuration(spec, diagnostics);
            }
        }
        ResourceKind::Node => {
            if let Some(spec) = spec {
                node(spec, diagnostics);
            }
        }
        ResourceKind::BgpFilter => {
            if let Some(spec) = spec {
                bgp_filter(spec, diagnostics);
            }
        }
    }
}

/// Reports every key of `node` (a mapping) that `known` does not have.
fn unknown_fields(node: &Node, known: &[&str], of: &str, diagnostics: &mut Diagnostics) {
    let Some(entries) = node.as_mapping() else { return };
    for entry in entries {
        let Some(key) = entry.key.as_str() else { continue };
        if known.contains(&key) {
            continue;
        }
        let help = match did_you_mean(key, known.iter().copied()) {
            Some(meant) if node.get(meant).is_none() => {
                format!("did you mean `{meant}`? Calico ignored `{key}`, so `{meant}` has its default in the cluster")
            }
            Some(meant) => format!("did you mean `{meant}`? Calico ignored `{key}`"),
            None => format!("Calico ignored `{key}`; remove it"),
        };
        diagnostics.push(
            Diagnostic::new(&IGNORED_FIELD, entry.key.span, format!("`{key}` is not a field of {of}: Calico ignores it"))
                .label("unknown to Calico")
                .help(help),
        );
    }
}

/// A string scalar under `key`, with the span of its value.
fn text<'a>(node: &'a Node, key: &str) -> Option<(&'a str, Span)> {
    let value = node.get(key)?;
    match value.scalar()? {
        Scalar::String(text) => Some((text, value.span)),
        _ => None,
    }
}

fn integer(node: &Node, key: &str) -> Option<(i128, Span)> {
    let value = node.get(key)?;
    match value.scalar()? {
        Scalar::Int(number) => Some((number, value.span)),
        _ => None,
    }
}

/// Calico's `cnet.ParseCIDROrIP`: a CIDR, or an address standing for its host route.
fn cidr_or_ip(text: &str) -> Option<(IpAddr, IpNet)> {
    if let Ok(network) = text.parse::<IpNet>() {
        return Some((network.addr(), network));
    }
    text.parse::<IpAddr>().ok().map(|address| (address, IpNet::from(address)))
}

fn selector(node: &Node, key: &str, diagnostics: &mut Diagnostics) {
    let Some((text, span)) = text(node, key) else { return };
    if let Err(error) = Selector::parse(text) {
        diagnostics.push(invalid(span, format!("`{key}` does not parse as a selector: {error}"), "not a selector"));
    }
}

fn one_of(node: &Node, key: &str, allowed: &[&str], diagnostics: &mut Diagnostics) {
    let Some((text, span)) = text(node, key) else { return };
    if !allowed.contains(&text) {
        let list = allowed.iter().map(|value| format!("`{value}`")).collect::<Vec<_>>().join(", ");
        diagnostics.push(invalid(span, format!("`{key}` must be one of {list}, not `{text}`"), "not a value Calico accepts"));
    }
}

fn duration(node: &Node, key: &str, diagnostics: &mut Diagnostics) {
    let Some((text, span)) = text(node, key) else { return };
    if !text.is_empty() && duration_seconds(text).is_none() {
        diagnostics.push(invalid(span, format!("`{key}` is not a Go duration such as `120s`: `{text}`"), "not a duration"));
    }
}

fn address<T: std::str::FromStr>(node: &Node, key: &str, what: &str, diagnostics: &mut Diagnostics) {
    let Some((text, span)) = text(node, key) else { return };
    if !text.is_empty() && text.parse::<T>().is_err() {
        diagnostics.push(invalid(span, format!("`{key}` is not {what}: `{text}`"), "not an address"));
    }
}

fn password(node: &Node, key: &str, diagnostics: &mut Diagnostics) {
    let Some(password) = node.get(key) else { return };
    unknown_fields(password, fields::PASSWORD, &format!("`{key}`"), diagnostics);
    if let Some(reference) = password.get("secretKeyRef") {
        unknown_fields(reference, fields::SECRET_KEY_REF, "`secretKeyRef`", diagnostics);
        // The reference is written into the artifacts (a comment naming the Secret): it must
        // be what Kubernetes accepts, which also keeps it on one line.
        type Problem = fn(&str) -> Option<String>;
        let checks: [(&str, Problem); 2] = [("name", grammar::secret_name_problem), ("key", grammar::secret_key_problem)];
        for (field, problem) in checks {
            if let Some((value, span)) = text(reference, field)
                && let Some(problem) = problem(value)
            {
                diagnostics.push(invalid(
                    span,
                    format!("`secretKeyRef.{field}` {problem}: {}", quoted(value)),
                    "not what Kubernetes accepts",
                ));
            }
        }
    }
}

/// A value as a message shows it: quoted and escaped, so that a line break or control
/// character is visible rather than acted on.
fn quoted(value: &str) -> String {
    let shown: String = value.chars().take(80).collect();
    let more = if shown.len() < value.len() { "…" } else { "" };
    format!("{shown:?}{more}")
}

fn ip_pool(item: &Node, spec: Option<&Node>, diagnostics: &mut Diagnostics) {
    let Some(spec) = spec.filter(|spec| spec.get("cidr").is_some()) else {
        let at = item.get("spec").map_or(item.head_span(), Node::head_span);
        diagnostics.push(invalid(at, "IPPool CIDR must be specified", "no `cidr`"));
        return;
    };
    unknown_fields(spec, fields::IP_POOL_SPEC, "an IPPool's `spec`", diagnostics);
    selector(spec, "nodeSelector", diagnostics);
    selector(spec, "namespaceSelector", diagnostics);
    one_of(spec, "assignmentMode", &["Automatic", "Manual"], diagnostics);
    if let Some(uses) = spec.get("allowedUses").and_then(Node::as_sequence) {
        for used in uses {
            if let Some(Scalar::String(text)) = used.scalar()
                && !["Workload", "Tunnel", "LoadBalancer"].contains(&text)
            {
                diagnostics.push(invalid(used.span, format!("unknown use: {text}"), "expected `Workload`, `Tunnel` or `LoadBalancer`"));
            }
        }
    }
    let Some((cidr_text, cidr_span)) = text(spec, "cidr") else { return };
    let Some((address, cidr)) = cidr_or_ip(cidr_text) else {
        let message = if cidr_text.is_empty() { "IPPool CIDR must be specified" } else { "IPPool CIDR must be a valid subnet" };
        diagnostics.push(invalid(cidr_span, message, "not a CIDR"));
        return;
    };
    if cidr.network() != address {
        diagnostics.push(invalid(cidr_span, format!("IPPool CIDR must be strictly masked: `{}`", cidr.trunc()), "host bits set"));
    }
    let Some((block_size, block_span)) = integer(spec, "blockSize") else { return };
    let (low, high, family) = if cidr.addr().is_ipv4() { (20, 32, "IPv4") } else { (116, 128, "IPv6") };
    if block_size != 0 && !(low..=high).contains(&block_size) {
        diagnostics.push(invalid(block_span, format!("{family} block size must be between {low} and {high}"), "out of range"));
        return;
    }
    let disabled = matches!(spec.get("disabled").and_then(Node::scalar), Some(Scalar::Bool(true)));
    if block_size != 0 && !disabled && i128::from(cidr.prefix_len()) > block_size {
        diagnostics.push(invalid(
            cidr_span,
            "IP pool size is too small for use with Calico IPAM. It must be equal to or greater than the block size.",
            "smaller than one block",
        ));
    }
}

fn bgp_peer(spec: &Node, diagnostics: &mut Diagnostics) {
    unknown_fields(spec, fields::BGP_PEER_SPEC, "a BGPPeer's `spec`", diagnostics);
    for key in ["nodeSelector", "peerSelector", "localWorkloadSelector"] {
        selector(spec, key, diagnostics);
    }
    if let Some((peer, span)) = text(spec, "peerIP")
        && !peer.is_empty()
        && calplan_model::lower::parse_peer_address(peer).is_none()
    {
        diagnostics.push(invalid(
            span,
            format!("`peerIP` is not `<IP>`, `<IPv4>:<port>` or `[<IPv6>]:<port>`: `{peer}`"),
            "not a peer address",
        ));
    }
    if let Some((node, span)) = text(spec, "node")
        && !node.is_empty()
        && !calplan_model::lower::is_dns_subdomain(node)
    {
        diagnostics.push(invalid(span, format!("`node` is not a node name: `{node}`"), "not a DNS-1123 subdomain"));
    }
    let set = |key: &str| text(spec, key).is_some_and(|(text, _)| !text.is_empty());
    for (one, other) in [("node", "nodeSelector"), ("peerIP", "peerSelector")] {
        if set(one) && set(other) {
            let span = spec.get(one).map_or(spec.head_span(), |value| value.span);
            diagnostics.push(invalid(span, format!("`{one}` must be empty when `{other}` is specified"), "both given"));
        }
    }
    one_of(spec, "sourceAddress", &["UseNodeIP", "None"], diagnostics);
    one_of(spec, "nextHopMode", &["Auto", "Self", "Keep"], diagnostics);
    one_of(spec, "reversePeering", &["Auto", "Manual"], diagnostics);
    duration(spec, "maxRestartTime", diagnostics);
    duration(spec, "keepaliveTime", diagnostics);
    address::<IpAddr>(spec, "reachableBy", "an IP address", diagnostics);
    password(spec, "password", diagnostics);
}

fn bgp_filter(spec: &Node, diagnostics: &mut Diagnostics) {
    unknown_fields(spec, fields::BGP_FILTER_SPEC, "a BGPFilter's `spec`", diagnostics);
    for (key, v6) in [("exportV4", false), ("importV4", false), ("exportV6", true), ("importV6", true)] {
        let Some(rules) = spec.get(key).and_then(Node::as_sequence) else { continue };
        for rule in rules {
            unknown_fields(rule, fields::BGP_FILTER_RULE, &format!("a rule of `{key}`"), diagnostics);
            let (family, most) = if v6 { ("IPv6", 128) } else { ("IPv4", 32) };
            if let Some(lengths) = rule.get("prefixLength") {
                unknown_fields(lengths, fields::BGP_FILTER_PREFIX_LENGTH, "`prefixLength`", diagnostics);
                for bound in ["min", "max"] {
                    if let Some((length, span)) = integer(lengths, bound)
                        && !(0..=most).contains(&length)
                    {
                        diagnostics.push(invalid(
                            span,
                            format!("`prefixLength.{bound}` in `{key}` is {length}; {family} prefix lengths are 0 to {most}"),
                            "not a prefix length",
                        ));
                    }
                }
            }
            one_of(rule, "action", &["Accept", "Reject"], diagnostics);
            one_of(rule, "matchOperator", &["Equal", "NotEqual", "In", "NotIn"], diagnostics);
            one_of(rule, "source", &["RemotePeers"], diagnostics);
            // Calico's `netv4` and `netv6`: an address or a CIDR of the list's family, masked.
            if let Some((cidr, span)) = text(rule, "cidr").filter(|(cidr, _)| !cidr.is_empty())
                && !cidr_or_ip(cidr).is_some_and(|(address, network)| address.is_ipv6() == v6 && network.network() == address)
            {
                diagnostics.push(invalid(
                    span,
                    format!("`cidr` in `{key}` is not an {family} network: {}", quoted(cidr)),
                    "not a masked network of the list's family",
                ));
            }
            if let Some((interface, span)) = text(rule, "interface").filter(|(interface, _)| !interface.is_empty())
                && let Some(problem) = grammar::filter_interface_problem(interface)
            {
                diagnostics.push(invalid(
                    span,
                    format!("`interface` in `{key}` {problem}: {}", quoted(interface)),
                    "not an interface pattern",
                ));
            }
        }
    }
}

fn bgp_configuration(spec: &Node, diagnostics: &mut Diagnostics) {
    unknown_fields(spec, fields::BGP_CONFIGURATION_SPEC, "a BGPConfiguration's `spec`", diagnostics);
    one_of(spec, "logSeverityScreen", &["Trace", "Debug", "Info", "Warning", "Error", "Fatal"], diagnostics);
    one_of(spec, "bindMode", &["None", "NodeIP"], diagnostics);
    duration(spec, "nodeMeshMaxRestartTime", diagnostics);
    password(spec, "nodeMeshPassword", diagnostics);
    // Calico's `Community`: a resource name, and a value its CRD's pattern and validator take.
    for community in spec.get("communities").and_then(Node::as_sequence).into_iter().flatten() {
        if let Some((name, span)) = text(community, "name")
            && !calplan_model::lower::is_dns_subdomain(name)
        {
            diagnostics.push(invalid(span, format!("a community's `name` is not a DNS-1123 subdomain: {}", quoted(name)), "not a name"));
        }
        if let Some((value, span)) = text(community, "value")
            && let Err(problem) = calplan_calico::Community::parse(value)
        {
            diagnostics.push(invalid(span, format!("a community's `value` is not a BGP community: {}", quoted(value)), &problem));
        }
    }
    if let Some(patterns) = spec.get("ignoredInterfaces").and_then(Node::as_sequence) {
        for pattern in patterns {
            if let Some(Scalar::String(value)) = pattern.scalar()
                && let Some(problem) = grammar::ignored_interface_problem(value)
            {
                diagnostics.push(invalid(
                    pattern.span,
                    format!("an entry of `ignoredInterfaces` {problem}: {}", quoted(value)),
                    "not an interface pattern",
                ));
            }
        }
    }
    for key in ["serviceClusterIPs", "serviceExternalIPs", "serviceLoadBalancerIPs"] {
        let Some(list) = spec.get(key) else { continue };
        let Some(entries) = list.as_sequence() else {
            if !matches!(list.scalar(), Some(Scalar::Null)) {
                diagnostics.push(invalid(list.span, format!("`{key}` must be a list of `{{cidr: …}}`"), "not a list"));
            }
            continue;
        };
        for entry in entries {
            unknown_fields(entry, fields::SERVICE_IP_BLOCK, &format!("an entry of `{key}`"), diagnostics);
            // An entry without a CIDR is skipped, as confd skips it.
            let Some((cidr, span)) = text(entry, "cidr").filter(|(cidr, _)| !cidr.is_empty()) else { continue };
            if cidr_or_ip(cidr).is_none_or(|(address, network)| network.network() != address) {
                diagnostics.push(invalid(span, format!("`{cidr}` in `{key}` is not a strictly masked CIDR"), "not a network"));
            }
        }
    }
}

fn node(spec: &Node, diagnostics: &mut Diagnostics) {
    unknown_fields(spec, fields::NODE_SPEC, "a Node's `spec`", diagnostics);
    let Some(bgp) = spec.get("bgp").filter(|bgp| bgp.as_mapping().is_some()) else { return };
    unknown_fields(bgp, fields::NODE_BGP_SPEC, "a Node's `spec.bgp`", diagnostics);
    for (key, v4) in [("ipv4Address", true), ("ipv6Address", false)] {
        let Some((text, span)) = text(bgp, key) else { continue };
        let family_matches = cidr_or_ip(text).is_some_and(|(address, _)| address.is_ipv4() == v4);
        if !text.is_empty() && !family_matches {
            let what = if v4 { "an IPv4 address or CIDR" } else { "an IPv6 address or CIDR" };
            diagnostics.push(invalid(span, format!("`{key}` is not {what}: `{text}`"), "not an address"));
        }
    }
    address::<Ipv4Addr>(bgp, "ipv4IPIPTunnelAddr", "an IPv4 address", diagnostics);
    address::<Ipv4Addr>(bgp, "routeReflectorClusterID", "in IPv4 form", diagnostics);
    address::<Ipv4Addr>(spec, "ipv4VXLANTunnelAddr", "an IPv4 address", diagnostics);
    address::<Ipv6Addr>(spec, "ipv6VXLANTunnelAddr", "an IPv6 address", diagnostics);
}

/// The resource with `spec: null` read as an empty `spec`, as Go reads it (the zero value).
pub fn null_spec_as_empty(item: &Node) -> Option<Node> {
    let spec = item.get("spec")?;
    if !matches!(spec.kind, NodeKind::Scalar { .. }) || spec.scalar() != Some(Scalar::Null) {
        return None;
    }
    let mut item = item.clone();
    if let NodeKind::Mapping(entries) = &mut item.kind
        && let Some(entry) = entries.iter_mut().find(|entry| entry.key.as_str() == Some("spec"))
    {
        entry.value.kind = NodeKind::Mapping(Vec::new());
        entry.value.tag = None;
    }
    Some(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use calplan_diagnostics::SourceMap;

    fn check(kind: ResourceKind, text: &str) -> Vec<String> {
        let mut sources = SourceMap::new();
        let file = sources.add("current.yaml", text);
        let item = calplan_syntax::yaml::parse(file, text).unwrap().remove(0);
        let mut diagnostics = Diagnostics::new();
        check_resource(kind, &item, &mut diagnostics);
        diagnostics
            .into_sorted()
            .iter()
            .map(|d| format!("{} {} {} | {}", d.rule.code, sources.line_col(d.span()), d.message, d.help.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn values_calico_refuses_are_errors_at_the_value() {
        let found = check(
            ResourceKind::Node,
            "kind: Node\nmetadata: {name: n1}\nspec:\n  bgp:\n    ipv4Address: 999.1.1.1/24\n    routeReflectorClusterID: 1.0.0\n",
        );
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].starts_with("E0702 5:18 `ipv4Address` is not an IPv4 address or CIDR: `999.1.1.1/24`"), "{found:#?}");
        assert!(found[1].starts_with("E0702 6:30 `routeReflectorClusterID` is not in IPv4 form"), "{found:#?}");
        let found = check(
            ResourceKind::IpPool,
            "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, blockSize: 8, nodeSelector: 'has(a) &&&'}\n",
        );
        assert!(found.iter().any(|d| d.starts_with("E0702 3:55 `nodeSelector` does not parse as a selector")), "{found:#?}");
        assert!(found.iter().any(|d| d.starts_with("E0702 3:38 IPv4 block size must be between 20 and 32")), "{found:#?}");
        let found = check(ResourceKind::IpPool, "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, blockSize: 24}\n");
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn bgp_filters_are_read_as_calico_validates_them() {
        let found = check(
            ResourceKind::BgpFilter,
            "kind: BGPFilter\nmetadata: {name: f}\nspec:\n  exportV4:\n    - {action: Allow, cidr: 'fd00::/64', matchOperator: Within}\n    - {action: Accept, cidr: 10.0.0.1/8, interface: 'eth0\"', prefixLength: {min: 33}, sourc: RemotePeers}\n  importV6:\n    - {action: Reject, cidr: '10.0.0.0/8', prefixLength: {max: 128}}\n",
        );
        let codes: Vec<&str> = found.iter().map(|d| &d[..d.find(" |").unwrap()]).collect();
        assert_eq!(
            codes,
            [
                "E0702 5:16 `action` must be one of `Accept`, `Reject`, not `Allow`",
                "E0702 5:29 `cidr` in `exportV4` is not an IPv4 network: \"fd00::/64\"",
                "E0702 5:57 `matchOperator` must be one of `Equal`, `NotEqual`, `In`, `NotIn`, not `Within`",
                "E0702 6:30 `cidr` in `exportV4` is not an IPv4 network: \"10.0.0.1/8\"",
                "E0702 6:53 `interface` in `exportV4` holds `\"`; an interface pattern is letters, digits, `_`, `.`, `-` and `*`: \"eth0\\\"\"",
                "E0702 6:82 `prefixLength.min` in `exportV4` is 33; IPv4 prefix lengths are 0 to 32",
                "W0703 6:87 `sourc` is not a field of a rule of `exportV4`: Calico ignores it",
                "E0702 8:30 `cidr` in `importV6` is not an IPv6 network: \"10.0.0.0/8\"",
            ],
            "{found:#?}"
        );
        let found = check(
            ResourceKind::BgpFilter,
            "kind: BGPFilter\nmetadata: {name: f}\nspec:\n  exportV4: [{action: Accept, cidr: 10.0.0.0/8, matchOperator: In, interface: '*.calico', source: RemotePeers, prefixLength: {min: 8, max: 32}}]\n",
        );
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn strings_that_reach_artifacts_are_checked_against_their_grammar() {
        let found = check(
            ResourceKind::BgpPeer,
            "kind: BGPPeer\nmetadata: {name: Peer_1}\nspec:\n  peerIP: 10.0.0.1\n  asNumber: 65001\n  password:\n    secretKeyRef: {name: \"bgp\\nprotocol static x {}\", key: 'a b'}\n",
        );
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].starts_with("E0702 2:18 `metadata.name` is not a DNS-1123 subdomain: \"Peer_1\""), "{found:#?}");
        assert!(found[1].starts_with("E0702 7:26 `secretKeyRef.name` is not a DNS-1123 subdomain"), "{found:#?}");
        assert!(found[1].contains(r#""bgp\nprotocol static x {}""#), "the line break is shown escaped: {found:#?}");
        assert!(found[2].starts_with("E0702 7:60 `secretKeyRef.key` holds ` `"), "{found:#?}");
        let found = check(
            ResourceKind::BgpConfiguration,
            "kind: BGPConfiguration\nmetadata: {name: default}\nspec: {ignoredInterfaces: [eth*, \"x\\\"\"]}\n",
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].starts_with("E0702 3:34 an entry of `ignoredInterfaces` holds `\"`"), "{found:#?}");
        let found = check(
            ResourceKind::BgpConfiguration,
            "kind: BGPConfiguration\nmetadata: {name: default}\nspec: {communities: [{name: \"a\\nb\", value: '65536:1'}, {name: ok, value: '1:2:3'}]}\n",
        );
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].starts_with("E0702 3:29 a community's `name` is not a DNS-1123 subdomain: \"a\\nb\""), "{found:#?}");
        assert!(found[1].starts_with("E0702 3:44 a community's `value` is not a BGP community: \"65536:1\""), "{found:#?}");
    }

    #[test]
    fn fields_calico_ignores_are_warnings_with_the_field_meant() {
        let found = check(ResourceKind::IpPool, "kind: IPPool\nmetadata: {name: p}\nspec:\n  cidr: 10.0.0.0/16\n  bolockSize: 24\n");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].starts_with("W0703 5:3 `bolockSize` is not a field of an IPPool's `spec`: Calico ignores it"), "{found:#?}");
        assert!(found[0].contains("did you mean `blockSize`? Calico ignored `bolockSize`, so `blockSize` has its default"), "{found:#?}");
        // Fields of Calico releases calplan does not model are Calico's own: not reported.
        let found = check(
            ResourceKind::BgpConfiguration,
            "kind: BGPConfiguration\nmetadata: {name: default}\nspec: {communities: [], programClusterRoutes: Enabled}\n",
        );
        assert!(found.is_empty(), "{found:#?}");
    }
}
