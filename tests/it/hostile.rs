//! Hostile text in every string field of the intent.
//!
//! The fields are the schema's: every property that takes text (strings, enums, AS numbers,
//! label keys and values), found by walking `calplan schema`, so a field added later is tried
//! too (and the test fails until the intent below gives it a value). Each gets every hostile
//! value below — quotes, line breaks, `;`, `{`, `}`, `#`, `!`, backslashes, template syntax,
//! control characters, very long text, and injections aimed at each artifact's grammar — alone,
//! before and after the field's own value, and inside a selector's quoted value. For each,
//! either `check` refuses the intent with an error located at that value, or the intent
//! compiles and every artifact
//!
//! - has exactly the structure it has when the hostile characters are replaced by harmless
//!   ones (`x`): the same BIRD tokens (strings and comments aside, so the set of protocols and
//!   every statement), the same top-level statements of `frr.conf`, `ios.cfg` and `junos.set`,
//!   the same commands and rules in `routes.sh`, `rules.nft`, `rules.iptables` and `routes`, the
//!   same YAML and JSON trees — nothing was added, closed or commented out; and
//! - passes its real checker where its text differs from the harmless one's: `bird -p` (BIRD 2
//!   and 1.6), `vtysh --dryrun`, `nft -c`, `iptables-restore --test`, `sh -n`, and the IOS and
//!   Junos grammars of `routers.rs`.

use crate::bird::{bird2, bird16, bird16_v6, parses, without_krt_tunnel};
use crate::routers::{ios_grammar, junos_grammar};
use crate::rules::{nft, run_with_input};
use calplan::netns::{self, Namespace};
use calplan::pipeline::{self, Checked};
use calplan_diagnostics::{FileId, Span};
use calplan_targets::{Context, Output, Templates};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;

/// An intent that gives every text field of the schema a value and compiles to every kind of
/// artifact: BIRD 2 and Calico's BIRD for three nodes, routes and rulesets, all four router
/// dialects, Calico's resources and calico-node's settings.
const BASE: &str = r#"
apiVersion: calplan/v1
kind: ClusterIntent
metadata:
  name: hostile
spec:
  calicoVersion: "3.31"
  datastore: etcdv3
  nodeAgent: calico-node
  installation: manifest
  allow:
    - {rule: route-of-other-family, reason: the harbor host will get its IPv6 side later}
  nodeAddressAutodetection:
    ipv4: can-reach=21.0.0.1
    ipv6: skip-interface=docker.*
  serviceClusterIPs: [10.96.0.0/12]
  maxPodsPerNode: 110
  bgp:
    asNumber: "64512"
    nodeToNodeMesh: true
    logSeverity: Info
    advertiseServiceClusterIPs: true
    serviceExternalIPs: [172.30.0.0/24]
    serviceLoadBalancerIPs: [172.31.0.0/24]
    listenPort: 179
    bindMode: NodeIP
    ignoredInterfaces: [docker0]
    nodeMeshPassword: {secretKeyRef: {name: mesh-secrets, key: mesh-password}}
    nodeMeshMaxRestartTime: 120s
    serviceLoadBalancerAggregation: Disabled
    localWorkloadPeeringIPV4: 169.254.0.179
    localWorkloadPeeringIPV6: "fe80::179"
    routerID: hash
    communities:
      - {name: pods-primary, value: "64512:100"}
    prefixAdvertisements:
      - {cidr: 10.244.0.0/16, communities: [pods-primary, "65000:7"]}
    filters:
      - name: export-all
        exportV4:
          - {action: Accept, matchOperator: In, cidr: 10.244.0.0/16, prefixLength: {min: 24, max: 26}}
          - {action: Reject, source: RemotePeers, interface: "eth*"}
        importV4:
          - {action: Accept, matchOperator: Equal, cidr: 0.0.0.0/0, source: RemotePeers, interface: eth0}
        exportV6:
          - {action: Accept, matchOperator: NotIn, cidr: "fd00:10::/64", source: RemotePeers, interface: "*.calico"}
        importV6:
          - {action: Reject, matchOperator: In, cidr: "fd00::/8", source: RemotePeers, interface: eth1}
    routeReflectors:
      - {clusterID: 244.0.0.1, nodes: [n1], clients: rack == 'r1', reflectors: {nodeSelector: has(spare-reflector), perLabel: rack, count: 1}}
    peers:
      - name: tor
        peerIP: 21.0.0.254
        asNumber: "65001"
        localASNumber: "64512"
        node: n2
        maxRestartTime: 90s
        password: {secretKeyRef: {name: tor-secrets, key: tor-password}}
        reachableBy: 21.0.0.1
        filters: [export-all]
      - name: rr-clients
        peerSelector: has(rack)
        nodeSelector: rack == 'r1'
        nextHopMode: Self
        sourceAddress: UseNodeIP
        reversePeering: Auto
      - name: bird-in-a-pod
        localWorkloadSelector: app == 'bgp-speaker'
        asNumber: "65100"
        filters: [export-all]
  pools:
    - name: pods
      cidr: 10.244.0.0/16
      ipipMode: CrossSubnet
      vxlanMode: Never
      natOutgoing: true
      nodeSelector: "!has(no-pods)"
      allowedUses: [Workload, Tunnel]
      assignmentMode: Automatic
      namespaceSelector: "has(pods) && tier == 'web'"
  nodeRules:
    - name: rack-r2
      nodeSelector: rack == 'r2'
      asNumber: "64512"
      labels: {zone: z2}
      routeReflectorClusterID: 244.0.0.2
      nodeAddressAutodetection: {ipv4: can-reach=21.0.0.1, ipv6: skip-interface=docker.*}
  nodes:
    - name: n1
      ipv4Address: 21.0.0.11/24
      ipv6Address: fd00::11/64
      asNumber: "64512"
      labels: {rack: r1, zone: z1}
      bgpConfiguration:
        logSeverity: Debug
        communities: [{name: rack-1, value: "64512:1"}]
        prefixAdvertisements: [{cidr: 10.244.0.0/16, communities: [rack-1]}]
      interfaces:
        - {name: eth0, addresses: [21.0.0.11/24, fd00::11/64]}
    - {name: n2, ipv4Address: 21.0.0.12/24, asNumber: "64512", labels: {rack: r1, zone: z1}}
    - {name: n3, ipv4Address: 21.0.0.13/24, asNumber: "64512", routeReflectorClusterID: 244.0.0.2, labels: {rack: r2, zone: z2}}
  routers:
    - name: harbor
      platform: linux
      address: 21.0.0.3/24
      staticRoutes:
        - {destination: pools, via: [n1, 21.0.0.12]}
        - {destination: services, via: [n2]}
        - {destination: 172.30.0.0/24, via: [n1]}
        - {destination: "fd00:10::/64", via: [n1]}
    - name: tor-frr
      platform: frr
      address: 21.0.0.4/24
      bgp: {asNumber: "65010", peerWith: routeReflectors, password: {secretKeyRef: {name: tor-secrets, key: frr-password}}}
    - name: tor-ios
      platform: ios
      address: 21.0.0.5/24
      staticRoutes:
        - {destination: pools, via: [n1]}
    - name: tor-junos
      platform: junos
      address: 21.0.0.6/24
      bgp: {asNumber: "65011", peerWith: allNodes}
"#;

/// Text fields no release calplan renders for has (`field-not-in-release` refuses any value),
/// so BASE cannot give them one; `fields_in_no_release_are_refused_whatever_they_hold` checks
/// that they are refused, at the field, before their text is looked at.
const IN_NO_RELEASE: &[&str] = &["/spec/bgp/peers/*/keepaliveTime"];

/// What an attacker (or a slip) puts in a text field. Every one contains something that means
/// something to at least one artifact's grammar.
const PAYLOADS: &[&str] = &[
    "\"",
    "'",
    "\\",
    "\n",
    "\r",
    "\t",
    " ",
    ";",
    "{",
    "}",
    "#",
    "!",
    "*",
    ",",
    ":",
    "/",
    "../../etc",
    "{{ cluster }}",
    "{% raw %}",
    "$(reboot)",
    "`reboot`",
    "\u{1}",
    "\u{1b}[31m",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "\"; }\nprotocol static evil { ipv4; route 0.0.0.0/0 blackhole; }\n#",
    "\nip route 0.0.0.0/0 blackhole\n!",
    "\nrouter bgp 666\n neighbor 6.6.6.6 remote-as 666",
    "\"\nset protocols bgp group evil type external\n#",
    "\n-A INPUT -j ACCEPT\n#",
    "\n}\ntable ip evil { chain input { type filter hook input priority 0; accept; } }\n#",
    "\nip route add 0.0.0.0/0 via 6.6.6.6\n#",
];

/// Where a piece of text sits in the intent.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    /// The value at this JSON pointer.
    Value(String),
    /// A key of the mapping at this pointer (label names).
    Key { map: String, key: String },
}

impl Place {
    fn describe(&self) -> String {
        match self {
            Place::Value(pointer) => pointer.clone(),
            Place::Key { map, key } => format!("{map} (key `{key}`)"),
        }
    }
}

/// How a payload is put into a field.
#[derive(Clone, Copy, Debug)]
enum Placement {
    Alone,
    After,
    Before,
    /// Inside the first `'…'` of the value, after what is there.
    InQuotes,
}

fn place_text(original: &str, payload: &str, placement: Placement) -> Option<String> {
    Some(match placement {
        Placement::Alone => payload.to_string(),
        Placement::After => format!("{original}{payload}"),
        Placement::Before => format!("{payload}{original}"),
        Placement::InQuotes => {
            let open = original.find('\'')?;
            let close = open + 1 + original[open + 1..].find('\'')?;
            format!("{}{payload}{}", &original[..close], &original[close..])
        }
    })
}

// ---------------------------------------------------------------------------------------
// The schema's text fields

/// Follows local `$ref`s.
fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(pointer) = schema.get("$ref").and_then(Value::as_str).and_then(|reference| reference.strip_prefix('#')) {
        schema = root.pointer(pointer).expect("the schema's references resolve");
    }
    schema
}

fn accepts_text(schema: &Value) -> bool {
    let typed = match schema.get("type") {
        Some(Value::String(kind)) => kind == "string",
        Some(Value::Array(kinds)) => kinds.iter().any(|kind| kind == "string"),
        _ => false,
    };
    typed || schema.get("enum").and_then(Value::as_array).is_some_and(|values| values.iter().any(Value::is_string))
}

/// Every text field as a pattern of JSON pointer segments: `*` for any list item or mapping
/// value, `~key` for the keys of a mapping.
fn text_fields(root: &Value, schema: &Value, path: &str, fields: &mut BTreeSet<String>) {
    let schema = resolve(root, schema);
    if accepts_text(schema) {
        fields.insert(path.to_string());
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            text_fields(root, property, &format!("{path}/{name}"), fields);
        }
    }
    if let Some(items) = schema.get("items") {
        text_fields(root, items, &format!("{path}/*"), fields);
    }
    if let Some(values) = schema.get("additionalProperties").filter(|value| value.is_object()) {
        fields.insert(format!("{path}/~key"));
        text_fields(root, values, &format!("{path}/*"), fields);
    }
    for keyword in ["anyOf", "oneOf", "allOf"] {
        for alternative in schema.get(keyword).and_then(Value::as_array).into_iter().flatten() {
            text_fields(root, alternative, path, fields);
        }
    }
}

/// The places in `value` that a field pattern names.
fn instances(value: &Value, pointer: &str, segments: &[&str], found: &mut Vec<Place>) {
    let Some((first, rest)) = segments.split_first() else {
        found.push(Place::Value(pointer.to_string()));
        return;
    };
    match (*first, value) {
        ("~key", Value::Object(map)) if rest.is_empty() => {
            found.extend(map.keys().map(|key| Place::Key { map: pointer.to_string(), key: key.clone() }));
        }
        ("*", Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                instances(item, &format!("{pointer}/{index}"), rest, found);
            }
        }
        ("*", Value::Object(map)) => {
            for (key, item) in map {
                instances(item, &format!("{pointer}/{}", calplan_syntax::json::escape(key)), rest, found);
            }
        }
        (name, Value::Object(map)) => {
            if let Some(item) = map.get(name) {
                instances(item, &format!("{pointer}/{name}"), rest, found);
            }
        }
        _ => {}
    }
}

fn with_text(base: &Value, place: &Place, text: &str) -> Value {
    let mut value = base.clone();
    match place {
        Place::Value(pointer) => *value.pointer_mut(pointer).expect("place exists") = Value::String(text.to_string()),
        Place::Key { map, key } => {
            let object = value.pointer_mut(map).and_then(Value::as_object_mut).expect("a mapping");
            let renamed: Map<String, Value> =
                std::mem::take(object).into_iter().map(|(name, item)| (if name == *key { text.to_string() } else { name }, item)).collect();
            *object = renamed;
        }
    }
    value
}

fn original_text(base: &Value, place: &Place) -> String {
    match place {
        Place::Value(pointer) => match base.pointer(pointer).expect("place exists") {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        },
        Place::Key { key, .. } => key.clone(),
    }
}

/// The span of a place in an intent's text, found with calplan's own spanned parser; a key's
/// place is found by what it was renamed to, `written`.
fn span_of(text: &str, place: &Place, written: &str) -> Span {
    let root = calplan_syntax::yaml::parse(FileId(0), text).expect("serde-saphyr writes YAML").remove(0);
    let (_, index) = calplan_syntax::json::to_json(&root);
    match place {
        Place::Value(pointer) => index.get(pointer).expect("the place is in the text").value,
        Place::Key { map, .. } => {
            let key = written;
            index
                .get(&format!("{map}/{}", calplan_syntax::json::escape(key)))
                .and_then(|entry| entry.key)
                .unwrap_or_else(|| panic!("the key {key:?} is not in the text:\n{text}"))
        }
    }
}

fn yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).expect("an intent serializes")
}

// ---------------------------------------------------------------------------------------
// Structure

/// BIRD's tokens with comments left out and strings as `""`: a payload that closed a string,
/// ended a comment or added a statement changes them.
fn bird_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' => {
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                }
                tokens.push("\"\"".to_string());
            }
            c if c.is_whitespace() => {}
            c if c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '/') => {
                let mut word = c.to_string();
                while let Some(&next) = chars.peek() {
                    if next.is_alphanumeric() || matches!(next, '_' | '.' | ':' | '/') {
                        word.push(next);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(word);
            }
            other => tokens.push(other.to_string()),
        }
    }
    tokens
}

/// For line-oriented files: each line that is not a comment as its first word, its indent and
/// its number of words, quoted strings (`"…"`, `'…'`) counting as one word. `comment` says
/// which lines are comments.
fn line_shapes(text: &str, comment: fn(&str) -> bool) -> Vec<String> {
    let mut shapes = Vec::new();
    for line in text.split(['\n', '\r']) {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || comment(trimmed) {
            continue;
        }
        let words = quoted_words(trimmed);
        shapes.push(format!("{}{}:{}", &line[..line.len() - trimmed.len()], words.first().cloned().unwrap_or_default(), words.len()));
    }
    shapes
}

/// Words, with a quoted string one word (shell and nftables quoting; an unclosed quote runs
/// to the end).
fn quoted_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '#' && !words.is_empty() {
            break;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c == '"' || c == '\'' {
                word.push(c);
                let mut escaped = false;
                for inner in chars.by_ref() {
                    if escaped {
                        escaped = false;
                        continue;
                    }
                    if inner == '\\' && c == '"' {
                        escaped = true;
                        continue;
                    }
                    if inner == c {
                        break;
                    }
                }
                word.push(c);
            } else {
                word.push(c);
            }
        }
        words.push(word);
    }
    words
}

/// The tree of a YAML or JSON document with every scalar as `_`: added keys, items or
/// documents change it.
fn tree_shape(text: &str) -> String {
    fn shape(node: &calplan_syntax::yaml::Node, out: &mut String) {
        use calplan_syntax::yaml::NodeKind;
        match &node.kind {
            NodeKind::Scalar { .. } => out.push('_'),
            NodeKind::Sequence(items) => {
                out.push('[');
                for item in items {
                    shape(item, out);
                    out.push(',');
                }
                out.push(']');
            }
            NodeKind::Mapping(entries) => {
                out.push('{');
                for entry in entries {
                    out.push_str(&calplan_syntax::json::key_text(&entry.key));
                    out.push(':');
                    shape(&entry.value, out);
                    out.push(',');
                }
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    for document in calplan_syntax::yaml::parse(FileId(0), text).expect("calplan writes well-formed YAML and JSON") {
        shape(&document, &mut out);
        out.push_str("---");
    }
    out
}

/// An artifact's structure, by kind.
fn structure(path: &str, text: &str) -> Vec<String> {
    let file = path.rsplit('/').next().unwrap_or(path);
    match file {
        "bird.cfg" | "bird-calico.cfg" | "bird6-calico.cfg" => bird_tokens(text),
        "frr.conf" | "ios.cfg" => line_shapes(text, |line| line.starts_with('!')),
        "junos.set" | "routes.sh" | "rules.nft" | "rules.iptables" | "routes" => line_shapes(text, |line| line.starts_with('#')),
        _ if file.ends_with(".yaml") || file.ends_with(".json") => vec![tree_shape(text)],
        _ => panic!("no structure for artifact `{path}`: teach this test its grammar"),
    }
}

// ---------------------------------------------------------------------------------------
// Real checkers

struct Checkers {
    scratch: tempfile::TempDir,
    namespace: Namespace,
    bird2: std::path::PathBuf,
    bird16: std::path::PathBuf,
    bird16_v6: std::path::PathBuf,
    counter: std::cell::Cell<u32>,
}

impl Checkers {
    fn new() -> Checkers {
        Checkers {
            scratch: tempfile::tempdir().unwrap(),
            namespace: Namespace::create(netns::unique_prefix("cplh").unwrap()).unwrap(),
            bird2: bird2(),
            bird16: bird16(),
            bird16_v6: bird16_v6(),
            counter: std::cell::Cell::new(0),
        }
    }

    fn file(&self, name: &str, text: &str) -> std::path::PathBuf {
        self.counter.set(self.counter.get() + 1);
        let folder = self.scratch.path().join(self.counter.get().to_string());
        std::fs::create_dir_all(&folder).unwrap();
        let file = folder.join(name);
        std::fs::write(&file, text).unwrap();
        file
    }

    /// Runs the artifact's real checker; `Err` with what it said.
    fn check(&self, checked: &Checked, path: &str, text: &str) -> Result<(), String> {
        let file = path.rsplit('/').next().unwrap_or(path);
        let program = |program: &str, arguments: &[&std::ffi::OsStr]| -> Result<(), String> {
            let output = Command::new(program).args(arguments).output().map_err(|error| format!("{program}: {error}"))?;
            if output.status.success() {
                Ok(())
            } else {
                Err(format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
            }
        };
        match file {
            "bird.cfg" => {
                let config = self.file("bird.cfg", text);
                let node = path.split('/').nth(1).expect("nodes/<node>/bird.cfg");
                std::fs::write(config.with_file_name(calplan_targets::bird::SECRETS_FILE), secrets(checked, node)).unwrap();
                parses(&self.bird2, &config)
            }
            "bird-calico.cfg" => parses(&self.bird16, &self.file("bird-calico.cfg", &without_krt_tunnel(text))),
            "bird6-calico.cfg" => parses(&self.bird16_v6, &self.file("bird6-calico.cfg", &without_krt_tunnel(text))),
            "frr.conf" => program("vtysh", &["--dryrun".as_ref(), "-f".as_ref(), self.file("frr.conf", text).as_os_str()]),
            "routes.sh" => program("sh", &["-n".as_ref(), self.file("routes.sh", text).as_os_str()]),
            "ios.cfg" => ios_grammar(text).map_err(|line| format!("not IOS as calplan writes it: {line}")),
            "junos.set" => junos_grammar(text).map_err(|line| format!("not Junos as calplan writes it: {line}")),
            "rules.nft" => nft(&self.namespace, &["-c", "-f", "-"], text).map(drop),
            "rules.iptables" => run_with_input(&self.namespace, "iptables-restore", &["--test"], text).map(drop),
            // `ip route` lines for a node's kernel: their structure is compared; the YAML and
            // JSON trees are parsed by `structure` already.
            "routes" => Ok(()),
            _ if file.ends_with(".yaml") || file.ends_with(".json") => Ok(()),
            _ => panic!("no checker for artifact `{path}`"),
        }
    }
}

/// A secrets file defining every password a node's sessions name, each with a plain value
/// (whatever the Secret's name and key hold).
fn secrets(checked: &Checked, node: &str) -> String {
    let analysis = checked.valid().expect("a valid intent");
    let index = analysis.peerings.node_index(node).expect("node in topology");
    let passwords = analysis
        .peerings
        .for_node(index)
        .into_iter()
        .filter_map(|peering| peering.data.password.clone())
        .map(|secret| (secret, "test-password".to_string()))
        .collect();
    calplan_targets::bird::secrets_file(&passwords).expect("plain values quote")
}

fn compile_all(checked: &Checked) -> Output {
    let analysis = checked.valid().expect("a valid intent");
    let templates = Templates::builtin();
    calplan_targets::compile(&Context { analysis, templates: &templates, node: None, sink: None }, None).expect("renders")
}

fn artifacts(output: &Output) -> BTreeMap<String, String> {
    output.artifacts.iter().map(|(_, artifact)| (artifact.path.clone(), artifact.contents.clone())).collect()
}

// ---------------------------------------------------------------------------------------
// The test

/// One hostile intent: where the payload went, the hostile value, and the harmless one (the
/// payload's characters as `x`).
struct Case {
    place: Place,
    payload: &'static str,
    placement: Placement,
    hostile: String,
    harmless: String,
}

impl Case {
    fn describe(&self) -> String {
        format!("{} ({:?} {:?})", self.place.describe(), self.placement, self.payload)
    }
}

fn checked(text: &str) -> Checked {
    pipeline::check("intent.yaml", text.to_string(), None)
}

/// What an intent means for BGP and addressing: each node's sessions (with everything BIRD is
/// told about them) and where the blocks go.
/// Two intents that mean the same must compile to artifacts of the same structure.
fn meaning(checked: &Checked) -> String {
    let analysis = checked.valid().expect("a valid intent");
    let sessions: Vec<String> = analysis
        .model
        .nodes
        .iter()
        .map(|node| {
            let index = analysis.peerings.node_index(&node.name.value).expect("node in topology");
            format!("{}: {:?}", node.name.value, analysis.peerings.for_node(index))
        })
        .collect();
    format!("{sessions:?} {:?}", analysis.placement)
}

/// The BGP protocols a BIRD file declares, by name.
fn bgp_protocols(text: &str) -> BTreeSet<String> {
    let tokens = bird_tokens(text);
    tokens.windows(3).filter(|window| window[0] == "protocol" && window[1] == "bgp").map(|window| window[2].clone()).collect()
}

/// Whether an error is about meaning rather than text: the validation rules (E02xx and up)
/// judge the resolved model, never a field's characters, which parsing and lowering (E00xx,
/// E01xx) do at the field itself.
fn about_meaning(code: &str) -> bool {
    code[1..].parse::<u32>().is_ok_and(|number| number >= 200)
}

/// What checking a share of the cases found.
#[derive(Default)]
struct Checks<'a> {
    refused: usize,
    failures: Vec<String>,
    accepted: Vec<(&'a Case, Checked)>,
}

/// Checks every case, on as many threads as the machine has: the refused ones must be refused
/// at the value (or for what the value means), and the accepted ones are returned.
fn check_all<'a>(base: &Value, cases: &'a [Case], failures: &mut Vec<String>) -> (usize, Vec<(&'a Case, Checked)>) {
    let threads = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, 8);
    let chunk = cases.len().div_ceil(threads).max(1);
    let results: Vec<Checks> = std::thread::scope(|scope| {
        let workers: Vec<_> = cases
            .chunks(chunk)
            .map(|chunk| {
                scope.spawn(move || {
                    let mut checks = Checks::default();
                    for case in chunk {
                        let text = yaml(&with_text(base, &case.place, &case.hostile));
                        let hostile = checked(&text);
                        if !hostile.diagnostics.has_errors() {
                            checks.accepted.push((case, hostile));
                            continue;
                        }
                        checks.refused += 1;
                        let target = span_of(&text, &case.place, &case.hostile);
                        let errors: Vec<_> = hostile.diagnostics.iter().filter(|diagnostic| diagnostic.is_error()).collect();
                        let at_value = errors.iter().any(|diagnostic| {
                            overlaps(diagnostic.span(), target) || diagnostic.secondary.iter().any(|label| overlaps(label.span, target))
                        });
                        if !at_value && !errors.iter().all(|diagnostic| about_meaning(diagnostic.rule.code)) {
                            let errors: Vec<String> = errors
                                .iter()
                                .map(|diagnostic| {
                                    format!(
                                        "{} at {}: {}",
                                        diagnostic.rule.code,
                                        hostile.sources.line_col(diagnostic.span()),
                                        diagnostic.message
                                    )
                                })
                                .collect();
                            checks.failures.push(format!(
                                "{}: refused, but no error points at the value ({}): {errors:#?}",
                                case.describe(),
                                hostile.sources.line_col(target)
                            ));
                        }
                    }
                    checks
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().expect("a checking thread")).collect()
    });
    let mut refused = 0;
    let mut accepted = Vec::new();
    for checks in results {
        refused += checks.refused;
        failures.extend(checks.failures);
        accepted.extend(checks.accepted);
    }
    (refused, accepted)
}

#[test]
fn hostile_text_in_every_string_field_injects_nothing_needs_root() {
    let schema = calplan_syntax::schema::intent_schema();
    let mut fields = BTreeSet::new();
    text_fields(schema, schema, "", &mut fields);
    let base = {
        let root = calplan_syntax::yaml::parse(FileId(0), BASE).unwrap().remove(0);
        calplan_syntax::json::to_json(&root).0
    };

    // Every text field of the schema has a value in the intent to attack.
    let mut places = Vec::new();
    let mut uncovered = Vec::new();
    for field in &fields {
        let segments: Vec<&str> = field.split('/').skip(1).collect();
        let before = places.len();
        instances(&base, "", &segments, &mut places);
        if places.len() == before {
            uncovered.push(field.clone());
        }
    }
    uncovered.retain(|field| !IN_NO_RELEASE.contains(&field.as_str()));
    assert!(uncovered.is_empty(), "give these text fields a value in BASE: {uncovered:#?}");
    assert!(places.len() > 60, "only {} places found", places.len());

    // The intent as this test writes it is valid, and the checkers accept what it compiles to.
    let checkers = Checkers::new();
    let base_checked = checked(&yaml(&base));
    assert!(!base_checked.diagnostics.has_errors(), "BASE is invalid: {:#?}", base_checked.diagnostics);
    let base_artifacts = artifacts(&compile_all(&base_checked));
    for (path, text) in &base_artifacts {
        checkers.check(&base_checked, path, text).unwrap_or_else(|error| panic!("BASE: {path}: {error}"));
        structure(path, text);
    }

    let payloads: Vec<&'static str> = PAYLOADS.iter().copied().chain([leak(&"a".repeat(300)), leak(&"{".repeat(5000))]).collect();
    let mut cases = Vec::new();
    for place in &places {
        let original = original_text(&base, place);
        for &payload in &payloads {
            for placement in [Placement::Alone, Placement::After, Placement::Before, Placement::InQuotes] {
                let Some(hostile) = place_text(&original, payload, placement) else { continue };
                let harmless = place_text(&original, &"x".repeat(payload.chars().count()), placement).expect("placed as the payload was");
                cases.push(Case { place: place.clone(), payload, placement, hostile, harmless });
            }
        }
    }

    let mut failures = Vec::new();
    let (refused, accepted) = check_all(&base, &cases, &mut failures);

    // What is accepted compiles to artifacts that pass their checkers, declare the BGP
    // protocols the intent implies, and, when the harmless twin means the same, are shaped as
    // the twin's. Each distinct text is checked once.
    let mut verdicts: HashMap<(String, String), Result<(), String>> = HashMap::new();
    let mut compared = 0;
    for (case, hostile) in &accepted {
        let what = case.describe();
        let hostile_artifacts = artifacts(&compile_all(hostile));
        let analysis = hostile.valid().expect("accepted");
        for (path, text) in &hostile_artifacts {
            // BIRD 2's file has every session; Calico's BIRD 1.6 files one family's each.
            let family = match path.rsplit('/').next() {
                Some("bird.cfg") => Some(None),
                Some("bird-calico.cfg") => Some(Some(false)),
                Some("bird6-calico.cfg") => Some(Some(true)),
                _ => None,
            };
            if let Some(family) = family {
                let node = path.split('/').nth(1).expect("nodes/<node>/…");
                let index = analysis.peerings.node_index(node).expect("node in topology");
                let implied: BTreeSet<String> = analysis
                    .peerings
                    .for_node(index)
                    .iter()
                    .filter(|peering| family.is_none_or(|v6| peering.data.ip.is_ipv6() == v6))
                    .map(|peering| peering.protocol_name())
                    .collect();
                if bgp_protocols(text) != implied {
                    failures
                        .push(format!("{what}: {path} declares BGP protocols {:?}, the intent implies {implied:?}", bgp_protocols(text)));
                }
            }
            if base_artifacts.get(path) == Some(text) {
                continue;
            }
            let verdict = verdicts.entry((path.clone(), text.clone())).or_insert_with(|| checkers.check(hostile, path, text)).clone();
            if let Err(error) = verdict {
                failures.push(format!("{what}: {path} fails its checker: {error}"));
            }
        }
        let twin = checked(&yaml(&with_text(&base, &case.place, &case.harmless)));
        if twin.diagnostics.has_errors() || meaning(&twin) != meaning(hostile) {
            // The payload means something in the field's own grammar (`!` negates a selector,
            // a blank one is `all()`): no twin means the same.
            continue;
        }
        compared += 1;
        let twin_artifacts = artifacts(&compile_all(&twin));
        if hostile_artifacts.keys().ne(twin_artifacts.keys()) {
            failures.push(format!("{what}: compiles to other files than its harmless twin"));
            continue;
        }
        for (path, text) in &hostile_artifacts {
            let twin_text = &twin_artifacts[path];
            if text != twin_text && structure(path, text) != structure(path, twin_text) {
                failures.push(format!("{what}: {path} is shaped differently from its harmless twin's:\n{text}"));
            }
        }
    }

    eprintln!(
        "hostile text: {} fields, {} places, {} intents: {refused} refused, {} accepted and compiled ({compared} compared with their harmless twins, {} distinct artifacts through their checkers)",
        fields.len(),
        places.len(),
        cases.len(),
        accepted.len(),
        verdicts.len()
    );
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n\n"));
    assert!(refused > cases.len() * 9 / 10, "most hostile values should be refused: {refused} of {}", cases.len());
}

fn leak(text: &str) -> &'static str {
    Box::leak(text.to_string().into_boxed_str())
}

fn overlaps(span: Span, target: Span) -> bool {
    span.start < target.end.max(target.start + 1) && target.start < span.end.max(span.start + 1)
}

#[test]
fn structure_sees_an_injected_statement() {
    let plain = "protocol device {\n  scan time 2;\n}\n# Secret x\n";
    let injected = "protocol device {\n  scan time 2;\n}\n# Secret x\nprotocol static evil { ipv4; }\n";
    assert_ne!(structure("nodes/n/bird.cfg", plain), structure("nodes/n/bird.cfg", injected));
    assert_eq!(structure("nodes/n/bird.cfg", plain), structure("nodes/n/bird.cfg", "protocol device {\n  scan time 2;\n}\n# Secret \"}\n"));
    let frr = "hostname r\n! neighbor x password <key `k`>\n";
    assert_ne!(
        structure("routers/r/frr.conf", frr),
        structure("routers/r/frr.conf", "hostname r\n! key `k\nip route 0.0.0.0/0 blackhole`\n")
    );
    assert_ne!(
        structure("routers/r/junos.set", "set a description \"n1\"\n"),
        structure("routers/r/junos.set", "set a description \"n1\" evil\n")
    );
    assert_ne!(structure("calico/x.yaml", "a: b\n"), structure("calico/x.yaml", "a: b\nc: d\n"));
}

/// A password written where a reference belongs — inline, under a misspelt key, as a stray
/// field of the reference, behind a tag, or in a file that is not even YAML — is reported and
/// never printed: not in a message, a label, a help line or a source snippet, in any format.
#[test]
fn an_inline_password_is_never_printed_in_any_format() {
    use calplan_diagnostics::render;
    let secrets = ["hunter2-inline", "s3cret-misspelt", "t0ps3cret-stray", "tagged-s3cret", "listed-s3cret"];
    let intents = [
        format!(
            "apiVersion: calplan/v1\nkind: ClusterIntent\nmetadata: {{name: c}}\nspec:\n  bgp:\n    nodeMeshPassword: {}\n    peers:\n      - {{name: tor, peerIP: 21.0.0.1, asNumber: 65001, password: {{secretKeyRef: {{name: s, key: k, value: {}}}}}}}\n      - {{name: tor2, peerIP: 21.0.0.2, asNumber: 65001, password: !secret {}}}\n      - {{name: tor3, peerIP: 21.0.0.3, asNumber: 65001, password: [{}]}}\n  pools: [{{name: p, cidr: 10.244.0.0/16}}]\n  nodes: [{{name: n1, ipv4Address: 21.0.0.11/24}}]\n  routers:\n    - {{name: r, platform: frr, address: 21.0.0.4/24, bgp: {{asNumber: 65010, peerWith: allNodes, pasword: {}}}}}\n",
            secrets[0], secrets[2], secrets[3], secrets[4], secrets[1]
        ),
        format!("apiVersion: calplan/v1\nspec:\n  bgp: {{nodeMeshPassword: {}\n  pools: [\n", secrets[0]),
    ];
    for text in intents {
        let checked = checked(&text);
        assert!(checked.diagnostics.has_errors());
        let diagnostics = checked.diagnostics.clone().into_sorted();
        let outputs = [
            render::human(&diagnostics, &checked.sources, false),
            render::human(&diagnostics, &checked.sources, true),
            render::json(&diagnostics, &checked.allowed, &checked.sources),
            render::sarif(&diagnostics, &checked.allowed, &checked.sources, "test"),
            render::github(&diagnostics, &checked.allowed, &checked.sources),
        ];
        for output in &outputs {
            for secret in secrets {
                assert!(!output.contains(secret), "`{secret}` printed:\n{output}");
            }
        }
        assert!(outputs[0].to_lowercase().contains("password"), "the diagnostics still say what is wrong:\n{}", outputs[0]);
    }
}

#[test]
fn fields_in_no_release_are_refused_whatever_they_hold() {
    for payload in ["30s", "\"; }\nprotocol static evil { ipv4; route 0.0.0.0/0 blackhole; }\n#"] {
        let text =
            BASE.replace("        maxRestartTime: 90s\n", &format!("        maxRestartTime: 90s\n        keepaliveTime: {payload:?}\n"));
        assert_ne!(text, BASE);
        let refused = checked(&text);
        let target = span_of(&text, &Place::Value("/spec/bgp/peers/0/keepaliveTime".into()), "");
        assert!(
            refused.diagnostics.iter().any(|diagnostic| diagnostic.rule.code == "E0122" && overlaps(diagnostic.span(), target)),
            "keepaliveTime {payload:?} is not refused as a field of no release: {:#?}",
            refused.diagnostics
        );
    }
}
