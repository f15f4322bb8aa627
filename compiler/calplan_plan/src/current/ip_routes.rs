//! One node's kernel routes, from `ip route` text or `ip -j route` JSON, normalised to the
//! line format of calplan's `nodes/<node>/routes` artifact so the two compare line by line.
//!
//! Every route is kept (choosing the cluster's is the planner's business), each as one line:
//!
//! ```text
//! [TYPE ]DESTINATION[ table TABLE][ via GATEWAY][ dev DEVICE][ proto PROTOCOL][ onlink]
//!     [ nexthop via GATEWAY[ dev DEVICE][ weight W][ onlink]]...
//! ```
//!
//! - `TYPE` is printed unless it is `unicast` (`blackhole`, `unreachable`, `local`, …).
//! - `DESTINATION` is a CIDR (`192.168.0.5` becomes `192.168.0.5/32`) or `default`.
//! - `table` only when not `main`.
//! - `dev` only where it carries meaning: on routes without a gateway, and on `onlink` ones
//!   (`dev tunl0`, `dev vxlan.calico`); never on blackholes (IPv6 prints them `dev lo`). A plain gateway's device is whatever the kernel
//!   resolved it to, and calplan's artifact, which cannot know interface names, leaves it out.
//! - `proto` by name for iproute2's built-in numbers (`12` is `bird`), Felix's `80` as a
//!   number; `boot`, the default, is left out as `ip route` itself does.
//! - Dropped as noise: `metric`, `src`, `scope`, `pref`, `expires`, `nhid`, route metrics
//!   (`mtu`, `advmss`, …), state flags (`linkdown`, `offload`, …), a nexthop's `weight 1`.
//!
//! Lines are sorted by destination (as the artifact is) and duplicates dropped.
//!
//! Which node a dump belongs to comes from its file name, see [`node_of`]. Pure: text in,
//! lines and diagnostics out.

use crate::current::Read;
use crate::current::calico_yaml::UNREADABLE_STATE;
use calplan_diagnostics::{Diagnostic, Diagnostics, FileId, Span};
use ipnet::IpNet;
use std::net::IpAddr;

/// The node a route dump is for, from its file name and the name of the directory holding it:
/// `<node>.routes`, `<node>.json`, or a file named exactly as the node directly inside a
/// directory named `routes`. Node names are DNS subdomains (`cs1-k8s-m1.zpepc.com.cn`), which
/// is why no other extension is stripped. `None` when the name says no node.
pub fn node_of(file_name: &str, directory: Option<&str>) -> Option<String> {
    let stripped = file_name.strip_suffix(".routes").or_else(|| file_name.strip_suffix(".json"));
    let name = match stripped {
        Some(name) => name,
        None if directory == Some("routes") => file_name,
        None => return None,
    };
    is_node_name(name).then(|| name.to_string())
}

/// A Kubernetes node name: a DNS-1123 subdomain.
fn is_node_name(name: &str) -> bool {
    let label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label)
}

/// One route, with only what the normal form keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Route {
    kind: Option<String>,
    /// `None` for `default`.
    destination: Option<IpNet>,
    table: Option<String>,
    hop: Hop,
    protocol: Option<String>,
    nexthops: Vec<Hop>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Hop {
    gateway: Option<String>,
    device: Option<String>,
    weight: Option<u32>,
    onlink: bool,
}

impl Hop {
    fn write(&self, out: &mut String) {
        if let Some(gateway) = &self.gateway {
            out.push_str(" via ");
            out.push_str(gateway);
        }
        if let Some(device) = self.device.as_ref().filter(|_| self.gateway.is_none() || self.onlink) {
            out.push_str(" dev ");
            out.push_str(device);
        }
        if let Some(weight) = self.weight.filter(|weight| *weight != 1) {
            out.push_str(&format!(" weight {weight}"));
        }
    }
}

impl Route {
    fn line(&self) -> String {
        let mut out = String::new();
        if let Some(kind) = self.kind.as_deref().filter(|kind| *kind != "unicast") {
            out.push_str(kind);
            out.push(' ');
        }
        match self.destination {
            Some(destination) => out.push_str(&destination.to_string()),
            None => out.push_str("default"),
        }
        if let Some(table) = self.table.as_deref().filter(|table| *table != "main" && *table != "254") {
            out.push_str(" table ");
            out.push_str(table);
        }
        // A route that forwards nowhere has no device to speak of: IPv6 shows its blackholes
        // on `lo`, IPv4 on none.
        if matches!(self.kind.as_deref(), Some("blackhole" | "unreachable" | "prohibit" | "throw")) {
            Hop { device: None, ..self.hop.clone() }.write(&mut out);
        } else {
            self.hop.write(&mut out);
        }
        if let Some(protocol) = self.protocol.as_deref().map(protocol_name).filter(|protocol| *protocol != "boot") {
            out.push_str(" proto ");
            out.push_str(protocol);
        }
        if self.hop.onlink {
            out.push_str(" onlink");
        }
        for hop in &self.nexthops {
            out.push_str(" nexthop");
            hop.write(&mut out);
            if hop.onlink {
                out.push_str(" onlink");
            }
        }
        out
    }
}

/// iproute2's built-in protocol names (`rtnl_rtprot_tab`); others stay numbers.
fn protocol_name(protocol: &str) -> &str {
    match protocol {
        "1" => "redirect",
        "2" => "kernel",
        "3" => "boot",
        "4" => "static",
        "12" => "bird",
        "16" => "dhcp",
        "186" => "bgp",
        "188" => "ospf",
        other => other,
    }
}

const ROUTE_TYPES: &[&str] =
    &["unicast", "local", "broadcast", "multicast", "throw", "unreachable", "prohibit", "blackhole", "nat", "anycast"];

/// Keywords `ip route` prints that take one argument and are dropped.
const DROPPED_WITH_ARGUMENT: &[&str] = &[
    "metric",
    "src",
    "scope",
    "pref",
    "expires",
    "nhid",
    "mtu",
    "advmss",
    "rtt",
    "rttvar",
    "reordering",
    "window",
    "cwnd",
    "initcwnd",
    "initrwnd",
    "ssthresh",
    "realms",
    "realm",
    "rto_min",
    "hoplimit",
    "features",
    "quickack",
    "congctl",
    "fastopen_no_cookie",
    "tos",
    "dsfield",
    "error",
    "users",
    "age",
    "ipid",
    "from",
    "uid",
    "ttl-propagate",
    "cache",
];

/// Flags `ip route` prints that are dropped.
const DROPPED_FLAGS: &[&str] =
    &["linkdown", "dead", "pervasive", "offload", "trap", "notify", "rt_offload", "rt_trap", "rt_offload_failed", "lock", "used"];

/// Reads a dump, text or JSON (told apart by a leading `[`).
pub fn read(file: FileId, text: &str) -> Read<Vec<String>> {
    if text.trim_start().starts_with('[') { read_json(file, text) } else { read_text(file, text) }
}

fn finish(routes: Vec<Route>, diagnostics: Diagnostics) -> Read<Vec<String>> {
    if diagnostics.has_errors() {
        return Read { value: None, diagnostics };
    }
    let mut keyed: Vec<(Option<IpNet>, String)> = routes.iter().map(|route| (route.destination, route.line())).collect();
    keyed.sort();
    keyed.dedup();
    Read { value: Some(keyed.into_iter().map(|(_, line)| line).collect()), diagnostics }
}

fn parse_destination(text: &str) -> Option<Option<IpNet>> {
    if text == "default" {
        return Some(None);
    }
    let net = text.parse::<IpNet>().ok().or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))?;
    // `0.0.0.0/0` and `::/0` are `default` by another name.
    Some((net.prefix_len() != 0).then(|| net.trunc()))
}

/// A word of a text line and where it sits.
struct Word<'a> {
    text: &'a str,
    span: Span,
}

fn words(file: FileId, line: &str, start: usize) -> Vec<Word<'_>> {
    let mut words = Vec::new();
    let mut offset = 0;
    for text in line.split_whitespace() {
        let position = offset + line[offset..].find(text).unwrap_or(0);
        offset = position + text.len();
        words.push(Word { text, span: Span::new(file, start + position, start + offset) });
    }
    words
}

fn read_text(file: FileId, text: &str) -> Read<Vec<String>> {
    let mut diagnostics = Diagnostics::new();
    let mut routes: Vec<Route> = Vec::new();
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let words = words(file, line, start);
        // `ip route` prints each ECMP nexthop on a continuation line of its own.
        if line.starts_with(char::is_whitespace) && words[0].text == "nexthop" {
            let Some(route) = routes.last_mut() else {
                diagnostics.push(
                    Diagnostic::new(&UNREADABLE_STATE, words[0].span, "a `nexthop` line before any route")
                        .label("expected a route line first"),
                );
                continue;
            };
            let mut hop = Hop::default();
            if parse_pairs(&words[1..], route, Some(&mut hop), &mut diagnostics) {
                route.nexthops.push(hop);
            }
            continue;
        }
        let mut index = 0;
        let mut route = Route::default();
        if ROUTE_TYPES.contains(&words[0].text) {
            route.kind = Some(words[0].text.to_string());
            index = 1;
        }
        let Some(destination_word) = words.get(index) else {
            diagnostics.push(
                Diagnostic::new(&UNREADABLE_STATE, words[0].span, "a route type without a destination")
                    .label("expected a destination such as `192.168.0.0/26` after it"),
            );
            continue;
        };
        let Some(destination) = parse_destination(destination_word.text) else {
            diagnostics.push(
                Diagnostic::new(
                    &UNREADABLE_STATE,
                    destination_word.span,
                    format!("`{}` is not a route destination", destination_word.text),
                )
                .label("expected `default`, an address or a CIDR")
                .help("pass the output of `ip route` (or `ip -j route`) on the node, unedited"),
            );
            continue;
        };
        route.destination = destination;
        if parse_pairs(&words[index + 1..], &mut route, None, &mut diagnostics) {
            routes.push(route);
        }
    }
    finish(routes, diagnostics)
}

/// Reads `keyword value` pairs and flags into a route, or into one of its nexthops.
fn parse_pairs(words: &[Word], route: &mut Route, mut nexthop: Option<&mut Hop>, diagnostics: &mut Diagnostics) -> bool {
    let mut index = 0;
    let mut ok = true;
    while index < words.len() {
        let keyword = words[index].text;
        let hop: &mut Hop = match nexthop.as_deref_mut() {
            Some(hop) => hop,
            None => &mut route.hop,
        };
        if DROPPED_FLAGS.contains(&keyword) {
            index += 1;
            continue;
        }
        if keyword == "onlink" {
            hop.onlink = true;
            index += 1;
            continue;
        }
        if keyword == "nexthop" {
            // `ip route` on one line (as `ip route save | …` or a hand-joined copy gives it).
            let mut next = Hop::default();
            let end = words[index + 1..].iter().position(|word| word.text == "nexthop").map_or(words.len(), |p| index + 1 + p);
            ok &= parse_pairs(&words[index + 1..end], route, Some(&mut next), diagnostics);
            route.nexthops.push(next);
            index = end;
            continue;
        }
        let Some(value) = words.get(index + 1) else {
            diagnostics.push(
                Diagnostic::new(&UNREADABLE_STATE, words[index].span, format!("`{keyword}` without a value"))
                    .label("expected a value after it"),
            );
            return false;
        };
        match keyword {
            "via" => {
                // `via inet6 fe80::1`: a gateway of the other family.
                let (family, address) =
                    if matches!(value.text, "inet" | "inet6") { (Some(value.text), words.get(index + 2)) } else { (None, Some(value)) };
                let Some(address) = address.filter(|word| word.text.parse::<IpAddr>().is_ok()) else {
                    diagnostics.push(
                        Diagnostic::new(&UNREADABLE_STATE, value.span, format!("`{}` is not a gateway address", value.text))
                            .label("expected an address after `via`"),
                    );
                    ok = false;
                    index += 2;
                    continue;
                };
                hop.gateway = Some(match family {
                    Some(family) => format!("{family} {}", address.text),
                    None => address.text.to_string(),
                });
                index += if family.is_some() { 3 } else { 2 };
                continue;
            }
            "dev" => hop.device = Some(value.text.to_string()),
            "weight" => match value.text.parse() {
                Ok(weight) => hop.weight = Some(weight),
                Err(_) => {
                    diagnostics.push(
                        Diagnostic::new(&UNREADABLE_STATE, value.span, format!("`{}` is not a weight", value.text))
                            .label("expected a number"),
                    );
                    ok = false;
                }
            },
            "proto" | "protocol" => route.protocol = Some(value.text.to_string()),
            "table" => route.table = Some(value.text.to_string()),
            "encap" => {
                diagnostics.push(
                    Diagnostic::new(&UNREADABLE_STATE, words[index].span, "lightweight-tunnel (`encap`) routes are not read")
                        .label("calplan cannot compare this route")
                        .help("remove the line; Calico programs no such route"),
                );
                return false;
            }
            // `mtu lock 1400`: the `lock` modifier stands between a metric and its value.
            _ if DROPPED_WITH_ARGUMENT.contains(&keyword) => {
                if value.text == "lock" {
                    index += 1;
                }
            }
            _ => {
                diagnostics.push(
                    Diagnostic::new(&UNREADABLE_STATE, words[index].span, format!("unknown `ip route` keyword `{keyword}`"))
                        .label("not something `ip route` prints")
                        .help("pass the output of `ip route` (or `ip -j route`) on the node, unedited"),
                );
                return false;
            }
        }
        index += 2;
    }
    ok
}

/// `ip -j route`: an array of objects, one per route. serde_json keeps no positions, so a
/// route's diagnostic points at its `"dst"` key, found by counting (nexthops carry none).
fn read_json(file: FileId, text: &str) -> Read<Vec<String>> {
    let mut diagnostics = Diagnostics::new();
    let values: Vec<serde_json::Value> = match serde_json::from_str(text) {
        Ok(values) => values,
        Err(error) => {
            let offset = offset_of(text, error.line(), error.column());
            diagnostics.push(
                Diagnostic::new(&UNREADABLE_STATE, Span::new(file, offset, offset), format!("not `ip -j route` output: {error}"))
                    .label("expected a JSON array of routes")
                    .help("pass the output of `ip -j route` on the node, unedited"),
            );
            return Read { value: None, diagnostics };
        }
    };
    let mut dst_offsets = text.match_indices("\"dst\"").map(|(offset, _)| offset);
    let mut routes = Vec::new();
    for value in &values {
        let offset = dst_offsets.next().unwrap_or(0);
        let span = Span::new(file, offset, offset + 5);
        let string = |key: &str| value.get(key).and_then(serde_json::Value::as_str).map(str::to_string);
        let Some(destination) = value.get("dst").and_then(serde_json::Value::as_str).and_then(parse_destination) else {
            diagnostics.push(
                Diagnostic::new(&UNREADABLE_STATE, span, "a route without a readable `dst`")
                    .label("expected `\"dst\": \"192.168.0.0/26\"` or `\"default\"`"),
            );
            continue;
        };
        let hop_of = |value: &serde_json::Value| Hop {
            gateway: gateway_of(value),
            device: value.get("dev").and_then(serde_json::Value::as_str).map(str::to_string),
            weight: value.get("weight").and_then(serde_json::Value::as_u64).and_then(|w| u32::try_from(w).ok()),
            onlink: value
                .get("flags")
                .and_then(serde_json::Value::as_array)
                .is_some_and(|flags| flags.iter().any(|flag| flag.as_str() == Some("onlink"))),
        };
        let protocol = value.get("protocol").map(|protocol| match protocol {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        });
        let table = value.get("table").map(|table| match table {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        });
        let mut hop = hop_of(value);
        hop.weight = None;
        routes.push(Route {
            kind: string("type"),
            destination,
            table,
            hop,
            protocol,
            nexthops: value
                .get("nexthops")
                .and_then(serde_json::Value::as_array)
                .map_or_else(Vec::new, |hops| hops.iter().map(hop_of).collect()),
        });
    }
    finish(routes, diagnostics)
}

/// `"gateway": "21.49.22.5"`, or `"via": {"family": "inet6", "host": "fe80::1"}`.
fn gateway_of(value: &serde_json::Value) -> Option<String> {
    if let Some(gateway) = value.get("gateway").and_then(serde_json::Value::as_str) {
        return Some(gateway.to_string());
    }
    let via = value.get("via")?;
    let host = via.get("host").and_then(serde_json::Value::as_str)?;
    Some(match via.get("family").and_then(serde_json::Value::as_str) {
        Some(family) => format!("{family} {host}"),
        None => host.to_string(),
    })
}

/// The byte offset of a 1-based line and column.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    (start + column.saturating_sub(1)).min(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_ok(text: &str) -> Vec<String> {
        let read = read(FileId(0), text);
        assert!(read.diagnostics.is_empty(), "{:?}", read.diagnostics);
        read.value.unwrap()
    }

    /// A seed node as BIRD and the kernel leave it: its own block blackholed, the others'
    /// via their owners, connected and docker routes, a workload's host route.
    const SEED_NODE_TEXT: &str = "\
default via 21.49.22.1 dev eth0 proto static metric 100 
21.49.22.0/24 dev eth0 proto kernel scope link src 21.49.22.4 metric 100 
172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1 linkdown 
blackhole 192.168.36.64/26 proto bird 
192.168.36.85 dev calib2b8b0c572a scope link 
192.168.11.192/26 via 21.49.22.9 dev eth0 proto bird 
192.168.1.128/26 via 21.49.22.7 dev tunl0 proto bird onlink 
10.0.1.0/26 via 10.0.1.0 dev vxlan.calico proto 80 onlink 
";

    #[test]
    fn text_is_normalised_to_the_artifacts_lines() {
        assert_eq!(
            read_ok(SEED_NODE_TEXT),
            [
                "default via 21.49.22.1 proto static",
                "10.0.1.0/26 via 10.0.1.0 dev vxlan.calico proto 80 onlink",
                "21.49.22.0/24 dev eth0 proto kernel",
                "172.17.0.0/16 dev docker0 proto kernel",
                "192.168.1.128/26 via 21.49.22.7 dev tunl0 proto bird onlink",
                "192.168.11.192/26 via 21.49.22.9 proto bird",
                "blackhole 192.168.36.64/26 proto bird",
                "192.168.36.85/32 dev calib2b8b0c572a",
            ]
        );
    }

    /// The same table as `ip -j route` prints it (iproute2 6.x).
    #[test]
    fn json_gives_the_same_lines_as_text() {
        let json = r#"[{"dst":"default","gateway":"21.49.22.1","dev":"eth0","protocol":"static","metric":100,"flags":[]},{"dst":"21.49.22.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"21.49.22.4","metric":100,"flags":[]},{"dst":"172.17.0.0/16","dev":"docker0","protocol":"kernel","scope":"link","prefsrc":"172.17.0.1","flags":["linkdown"]},{"type":"blackhole","dst":"192.168.36.64/26","protocol":"bird","flags":[]},{"dst":"192.168.36.85","dev":"calib2b8b0c572a","scope":"link","flags":[]},{"dst":"192.168.11.192/26","gateway":"21.49.22.9","dev":"eth0","protocol":"bird","flags":[]},{"dst":"192.168.1.128/26","gateway":"21.49.22.7","dev":"tunl0","protocol":"bird","flags":["onlink"]},{"dst":"10.0.1.0/26","gateway":"10.0.1.0","dev":"vxlan.calico","protocol":"80","flags":["onlink"]}]
"#;
        assert_eq!(read_ok(json), read_ok(SEED_NODE_TEXT));
    }

    #[test]
    fn ecmp_nexthops_read_from_text_and_json() {
        let text = "\
192.168.0.0/16 proto bird metric 20 
\tnexthop via 21.49.22.7 dev eth0 weight 1 
\tnexthop via 21.49.22.8 dev eth0 weight 2 
";
        let json = r#"[{"dst":"192.168.0.0/16","protocol":"bird","metric":20,"flags":[],"nexthops":[{"gateway":"21.49.22.7","dev":"eth0","weight":1,"flags":[]},{"gateway":"21.49.22.8","dev":"eth0","weight":2,"flags":[]}]}]"#;
        let expected = ["192.168.0.0/16 proto bird nexthop via 21.49.22.7 nexthop via 21.49.22.8 weight 2"];
        assert_eq!(read_ok(text), expected);
        assert_eq!(read_ok(json), expected);
    }

    #[test]
    fn numeric_protocols_tables_and_ipv6() {
        let text = "\
192.168.1.0/26 via 21.49.22.5 dev eth0 proto 12 
local 21.49.22.4 dev eth0 table local proto kernel scope host src 21.49.22.4 
fd00:10:244:1::/122 via fd00::5 dev eth0 proto bird metric 1024 pref medium
10.0.0.0/8 via inet6 fe80::1 dev eth0 proto static 
unreachable fd00:10:244:2::/122 dev lo proto bird metric 1024 error -113 pref medium
blackhole fd00:10::/122 dev lo proto 80 metric 1024 pref medium
";
        assert_eq!(
            read_ok(text),
            [
                "10.0.0.0/8 via inet6 fe80::1 proto static",
                "local 21.49.22.4/32 table local dev eth0 proto kernel",
                "192.168.1.0/26 via 21.49.22.5 proto bird",
                "blackhole fd00:10::/122 proto 80",
                "fd00:10:244:1::/122 via fd00::5 proto bird",
                "unreachable fd00:10:244:2::/122 proto bird",
            ]
        );
    }

    #[test]
    fn an_unreadable_line_is_located() {
        let text = "blackhole 192.168.36.64/26 proto bird\n192.168.1.0/26 via 21.49.22.5 frobnicate 3\n";
        let read = read(FileId(0), text);
        assert!(read.value.is_none());
        let diagnostic = read.diagnostics.iter().next().unwrap();
        assert_eq!(diagnostic.message, "unknown `ip route` keyword `frobnicate`");
        assert_eq!(&text[diagnostic.span().start as usize..diagnostic.span().end as usize], "frobnicate");
        let read = super::read(FileId(0), "[{\"dst\":\"192.168.0.0/99\"}]");
        assert_eq!(read.diagnostics.iter().next().unwrap().span().start, 2);
        let read = super::read(FileId(0), "[{\"dst\":\n");
        assert!(read.diagnostics.iter().next().unwrap().message.starts_with("not `ip -j route` output"));
    }

    #[test]
    fn the_node_is_named_by_the_file() {
        assert_eq!(node_of("cs1-k8s-m1.zpepc.com.cn.routes", None).as_deref(), Some("cs1-k8s-m1.zpepc.com.cn"));
        assert_eq!(node_of("node-1.json", Some("current")).as_deref(), Some("node-1"));
        assert_eq!(node_of("cs1-k8s-m1.zpepc.com.cn", Some("routes")).as_deref(), Some("cs1-k8s-m1.zpepc.com.cn"));
        assert_eq!(node_of("cs1-k8s-m1.zpepc.com.cn", Some("current")), None, "outside `routes/` the name needs `.routes`");
        assert_eq!(node_of("Node_1.routes", None), None, "not a node name");
        assert_eq!(node_of("..routes", None), None);
    }
}
