//! Rules reported while resolving values: a value that does not mean anything.

use calplan_diagnostics::declare_rule;

declare_rule! {
    /// ## What it does
    /// Reports a CIDR that does not parse: a pool, service range or interface address.
    ///
    /// ## Why is this bad?
    /// Calico refuses it (`IPPool CIDR must be a valid subnet`), after the change has started.
    ///
    /// ## Example
    /// ```yaml
    /// cidr: 192.168.0.0/33
    /// ```
    pub static INVALID_CIDR = ("E0101", "invalid-cidr", Error, "a CIDR that does not parse");
}

declare_rule! {
    /// ## What it does
    /// Reports a node or router address that is not an address with a prefix length, or an
    /// address (peer, next hop) that does not parse.
    ///
    /// ## Why is this bad?
    /// The prefix length tells calplan which nodes share a subnet, which decides CrossSubnet
    /// encapsulation, next hops and autodetection.
    ///
    /// ## Example
    /// ```yaml
    /// ipv4Address: 21.49.22.4     # write 21.49.22.4/24
    /// ```
    pub static INVALID_ADDRESS = ("E0102", "invalid-address", Error, "an address that does not parse");
}

declare_rule! {
    /// ## What it does
    /// Checks AS numbers: a plain `uint32`, or dotted `a.b` with both halves below 65536.
    ///
    /// ## Why is this bad?
    /// Calico rejects the resource with `invalid AS Number format`.
    ///
    /// ## Example
    /// ```yaml
    /// asNumber: "1.70000"
    /// ```
    pub static INVALID_AS_NUMBER = ("E0103", "invalid-as-number", Error, "an AS number Calico cannot read");
}

declare_rule! {
    /// ## What it does
    /// Checks that route-reflector cluster IDs are in IPv4 form.
    ///
    /// ## Why is this bad?
    /// BIRD's `rr cluster id` takes a 32-bit ID written as an IPv4 address; Calico validates
    /// `routeReflectorClusterID` as one.
    ///
    /// ## Example
    /// ```yaml
    /// clusterID: rr-1          # write an unused address such as 244.0.0.1
    /// ```
    pub static INVALID_CLUSTER_ID = ("E0104", "invalid-cluster-id", Error, "a route-reflector cluster ID not in IPv4 form");
}

declare_rule! {
    /// ## What it does
    /// Parses every selector with Calico's selector grammar and points at the offending part.
    ///
    /// ## Why is this bad?
    /// Calico rejects a selector it cannot parse; one it parses differently from what was meant
    /// selects the wrong nodes.
    ///
    /// ## Example
    /// ```yaml
    /// nodeSelector: rack = 'r1'          # `==`, not `=`
    /// ```
    pub static INVALID_SELECTOR = ("E0105", "invalid-selector", Error, "a selector Calico cannot parse");
}

declare_rule! {
    /// ## What it does
    /// Reports a reference to a node the intent does not declare: in a route-reflector cluster,
    /// a peer's `node`, or a router's `via`.
    ///
    /// ## Why is this bad?
    /// The reflector, peering or route would silently not exist.
    ///
    /// ## Example
    /// ```yaml
    /// routeReflectors:
    ///   - {clusterID: 1.0.0.1, nodes: [cs1-k8s-n7]}   # no such node
    /// ```
    pub static UNKNOWN_NODE = ("E0106", "unknown-node", Error, "a reference to a node that does not exist");
}

declare_rule! {
    /// ## What it does
    /// Checks names: nodes, pools and peers are Kubernetes resource names (DNS-1123
    /// subdomains); routers become file names and must follow the same rule.
    ///
    /// ## Why is this bad?
    /// The API server refuses other names, and names reach file paths and shell commands.
    ///
    /// ## Example
    /// ```yaml
    /// name: Pool_A
    /// ```
    pub static INVALID_NAME = ("E0107", "invalid-name", Error, "a name Kubernetes would refuse");
}

declare_rule! {
    /// ## What it does
    /// Checks label keys and values against Kubernetes' syntax.
    ///
    /// ## Why is this bad?
    /// The API server refuses the node's labels, and selectors on them never match.
    ///
    /// ## Example
    /// ```yaml
    /// labels: {"rack id": r1}
    /// ```
    pub static INVALID_LABEL = ("E0108", "invalid-label", Error, "a label key or value Kubernetes would refuse");
}

declare_rule! {
    /// ## What it does
    /// Checks durations such as `maxRestartTime`: Go's syntax (`120s`, `2m`, `1m30s`).
    ///
    /// ## Why is this bad?
    /// Calico parses them with Go's `time.ParseDuration` and refuses anything else.
    ///
    /// ## Example
    /// ```yaml
    /// maxRestartTime: 120        # write 120s
    /// ```
    pub static INVALID_DURATION = ("E0109", "invalid-duration", Error, "a duration Calico cannot read");
}

declare_rule! {
    /// ## What it does
    /// Parses `nodeAddressAutodetection` with calico-node's method syntax and regexes.
    ///
    /// ## Why is this bad?
    /// calico-node exits with `Invalid IP autodetection method` and the node never joins.
    ///
    /// ## Example
    /// ```yaml
    /// ipv4: can-reach:21.49.22.1     # `=`, not `:`
    /// ```
    pub static INVALID_AUTODETECTION_METHOD = ("E0110", "invalid-autodetection-method", Error, "an autodetection method calico-node rejects");
}

declare_rule! {
    /// ## What it does
    /// Checks `calicoVersion` names a Calico release calplan renders for: 3.28, 3.29, 3.30 or
    /// 3.31 (a patch release such as `3.30.7` is read as its minor release).
    ///
    /// ## Why is this bad?
    /// `bird-calico.cfg` follows the release's confd templates and peering code, and the
    /// fields the intent may use are the release's; an unknown release would be rendered as
    /// some other release without saying so.
    ///
    /// ## Example
    /// ```yaml
    /// calicoVersion: "2.6"
    /// ```
    pub static UNSUPPORTED_CALICO_VERSION = ("E0111", "unsupported-calico-version", Error, "a Calico release calplan does not render for");
}

declare_rule! {
    /// ## What it does
    /// Reports a node listed as a reflector twice, in one route-reflector cluster or two.
    ///
    /// ## Why is this bad?
    /// A node has one `routeReflectorClusterID`; listed in two clusters, which one it reflects
    /// for would depend on the order of the list.
    ///
    /// ## Example
    /// ```yaml
    /// routeReflectors:
    ///   - {clusterID: 1.0.0.1, nodes: [n1, n2]}
    ///   - {clusterID: 1.0.0.2, nodes: [n2, n3]}   # n2 twice
    /// ```
    pub static REFLECTOR_LISTED_TWICE = ("E0112", "reflector-listed-twice", Error, "a node listed as a route reflector more than once");
}

declare_rule! {
    /// ## What it does
    /// Checks interface names and patterns: `bgp.ignoredInterfaces` as Calico validates them
    /// (letters, digits, `_`, `.`, `-` and `*`, at most 15 characters, not `*` alone), and the
    /// names of a node's `interfaces` as the kernel allows them (1–15 bytes, no `/`, `:` or white
    /// space, not `.` or `..`).
    ///
    /// ## Why is this bad?
    /// Calico refuses the BGPConfiguration; and an ignored interface is written into BIRD's
    /// `interface -"…"` clause, where a quote or a line break would end the string and turn the
    /// rest into configuration.
    ///
    /// ## Example
    /// ```yaml
    /// ignoredInterfaces: ["docker0, eth*"]     # one pattern per entry: [docker0, "eth*"]
    /// ```
    pub static INVALID_INTERFACE = ("E0113", "invalid-interface", Error, "an interface name or pattern Calico or the kernel refuses");
}

declare_rule! {
    /// ## What it does
    /// Checks a password's `secretKeyRef`: `name` is a Kubernetes object name (a DNS-1123
    /// subdomain) and `key` a Secret data key (letters, digits, `-`, `_` and `.`, at most 253,
    /// not `.` or `..`).
    ///
    /// ## Why is this bad?
    /// Kubernetes cannot hold such a Secret, so the session never gets its password; and the
    /// reference is written into comments and file names of `bird.cfg`, `frr.conf`, `ios.cfg`
    /// and `junos.set`, where a line break or a path would become configuration.
    ///
    /// ## Example
    /// ```yaml
    /// password: {secretKeyRef: {name: ../../etc, key: passwd}}
    /// ```
    pub static INVALID_SECRET_REFERENCE = ("E0114", "invalid-secret-reference", Error, "a Secret name or key Kubernetes would refuse");
}

declare_rule! {
    /// ## What it does
    /// Checks BGP communities: a value is `aa:nn` (two 16-bit numbers) or `aa:nn:mm` (three
    /// 32-bit numbers, a large community); each community of a `prefixAdvertisements` entry
    /// is such a value or the name of one in `communities`; named communities are used.
    ///
    /// ## Why is this bad?
    /// Calico refuses the BGPConfiguration (`invalid community value or format used`,
    /// `community used is invalid or not defined`); the values become BIRD's
    /// `bgp_community.add((aa, nn))`, which takes numbers only.
    ///
    /// ## Example
    /// ```yaml
    /// communities: [{name: backup, value: "65536:1"}]     # 65536 is not 16-bit
    /// prefixAdvertisements:
    ///   - {cidr: 192.168.0.0/16, communities: [bakup]}   # not defined
    /// ```
    pub static INVALID_COMMUNITY = ("E0120", "invalid-community", Error, "a BGP community Calico would refuse");
}

declare_rule! {
    /// ## What it does
    /// Checks BGPFilter rules as Calico validates them: `cidr` and `matchOperator` together,
    /// `prefixLength` only with a `cidr` and within its family's lengths, a `cidr` of the
    /// family of its list (`exportV4` / `importV4` hold IPv4), an `interface` of letters,
    /// digits, `_`, `.`, `-` and `*`, at most 15 characters.
    ///
    /// ## Why is this bad?
    /// Calico refuses the BGPFilter; the values land in BIRD's filter functions (`ifname ~
    /// "..."`, `net ~ [ ... ]`), where anything else would change or break the configuration.
    ///
    /// ## Example
    /// ```yaml
    /// exportV4:
    ///   - {action: Accept, cidr: 77.0.0.0/16}   # no matchOperator
    /// ```
    pub static INVALID_BGP_FILTER = ("E0121", "invalid-bgp-filter", Error, "a BGPFilter rule Calico would refuse");
}

declare_rule! {
    /// ## What it does
    /// Reports a field the intent's `calicoVersion` does not have, naming the release that
    /// introduced it (`localASNumber` and `serviceLoadBalancerAggregation` in 3.31,
    /// `localWorkloadSelector`, `nextHopMode`, `reversePeering` and `assignmentMode` in 3.30,
    /// a BGPFilter's `prefixLength` in 3.29, `keepaliveTime` in 3.32).
    ///
    /// ## Why is this bad?
    /// The cluster's Calico would refuse the resource, or store a field it then ignores: the
    /// intent would promise behaviour the release does not have.
    ///
    /// ## Example
    /// ```yaml
    /// calicoVersion: "3.30"
    /// ...
    ///     localASNumber: 65001       # a Calico 3.31 field
    /// ```
    pub static FIELD_NOT_IN_RELEASE = ("E0122", "field-not-in-release", Error, "a field the intent's Calico release does not have");
}

declare_rule! {
    /// ## What it does
    /// Reports a peer's `filters` entry that names no BGPFilter of `bgp.filters`.
    ///
    /// ## Why is this bad?
    /// Calico accepts the BGPPeer and confd silently leaves the filter out: the peer gets
    /// every route the filter was meant to stop.
    ///
    /// ## Example
    /// ```yaml
    /// filters: [{name: export-only-pods, ...}]
    /// peers:
    ///   - {name: tor, peerIP: 10.0.0.1, asNumber: 65001, filters: [export-only-pod]}
    /// ```
    pub static UNKNOWN_BGP_FILTER = ("W0123", "unknown-bgp-filter", Warning, "a peer naming a BGPFilter that does not exist");
}

pub static ALL: &[&calplan_diagnostics::Rule] = &[
    &INVALID_CIDR,
    &INVALID_ADDRESS,
    &INVALID_AS_NUMBER,
    &INVALID_CLUSTER_ID,
    &INVALID_SELECTOR,
    &UNKNOWN_NODE,
    &INVALID_NAME,
    &INVALID_LABEL,
    &INVALID_DURATION,
    &INVALID_AUTODETECTION_METHOD,
    &UNSUPPORTED_CALICO_VERSION,
    &REFLECTOR_LISTED_TWICE,
    &INVALID_INTERFACE,
    &INVALID_SECRET_REFERENCE,
    &INVALID_COMMUNITY,
    &INVALID_BGP_FILTER,
    &FIELD_NOT_IN_RELEASE,
    &UNKNOWN_BGP_FILTER,
];
