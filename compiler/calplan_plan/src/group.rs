//! Grouping a stage's changes for people: the same change on a thousand nodes is read once,
//! with the list of where it applies.
//!
//! Two file changes are the same change when their diffs are equal once each host's own
//! values are set aside: its name, addresses (also as BIRD writes them in protocol names,
//! `Node_10_0_0_1`) and the line numbers of hunk headers. Those values become placeholders
//! (`<node>`, `<address>`, `<line>`); a value every member shares stays as it is. Substituting
//! a member's own values into a group's diff gives exactly that member's diff, so a group
//! never hides a difference: it only names it once. Changes of different shapes are separate
//! groups, the largest first; Calico resources stay one change each.
//!
//! Host lists are compressed by their numbering: `n00000…n00999` for one run, brace ranges
//! (`r{000..019}-n{00..49}.example`) where names carry several numbers.
//!
//! Pure, and computed from the changes alone, every time a plan is shown.

use crate::plan::{Action, Change, Target};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Changes of one shape in one stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Group {
    pub action: Action,
    /// The resource kind or artifact file, as the changes have it.
    pub kind: String,
    /// `calico`, `node` or `router`.
    pub target: String,
    /// Indexes (0-based) into the stage's `changes`, in order.
    pub changes: Vec<usize>,
    /// Where the changes apply, compressed for reading: `n00000…n00999`, or the resource's name.
    pub members: String,
    /// The diff every member's change has once each placeholder takes that member's value.
    pub diff: String,
    /// The values that differ from member to member.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placeholders: Vec<Placeholder>,
    /// The changes are information, not actions: what calico-node makes of the plan (its
    /// render and routes), which apply records but never writes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub informational: bool,
}

/// A value that differs between the members of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Placeholder {
    /// As it stands in the group's diff: `<node>`, `<router>`, `<address>`, `<address 2>`, `<line>`.
    pub name: String,
    /// Its value on the group's first member.
    pub example: String,
    /// Each value with the members that have it, when no more than a few values are shared by
    /// several members; empty when every member has its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<PlaceholderValue>,
    /// How many different values it takes.
    pub distinct: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlaceholderValue {
    pub value: String,
    /// The members having it, compressed.
    pub members: String,
    pub count: usize,
}

impl Group {
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// `node`/`nodes`, `router`/`routers`, for counts.
    pub fn noun(&self) -> &'static str {
        noun(&self.target, self.len())
    }
}

/// `1 node`, `1,000 nodes`.
pub fn noun(target: &str, count: usize) -> &'static str {
    match (target, count) {
        ("node", 1) => "node",
        ("node", _) => "nodes",
        ("router", 1) => "router",
        ("router", _) => "routers",
        (_, 1) => "resource",
        _ => "resources",
    }
}

/// `1,000`.
pub fn thousands(count: usize) -> String {
    let digits = count.to_string();
    let mut out = String::new();
    for (position, digit) in digits.chars().enumerate() {
        if position > 0 && (digits.len() - position).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// What kind of value a slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Slot {
    Name,
    Address,
    Line,
}

const MARK_START: char = '\u{1}';
const MARK_END: char = '\u{2}';

/// A diff with the member's own values taken out: the skeleton (each value replaced by a
/// mark of its kind) and the values, in order.
fn skeleton(diff: &str, member: &str) -> Option<(String, Vec<(Slot, String)>)> {
    if diff.contains(MARK_START) || diff.contains(MARK_END) {
        return None;
    }
    let mut slots: Vec<(usize, usize, Slot)> = Vec::new();
    if !member.is_empty() {
        let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        for (start, _) in diff.match_indices(member) {
            let end = start + member.len();
            let before_ok = diff[..start].chars().next_back().is_none_or(|c| !name_char(c));
            let after_ok = diff[end..].chars().next().is_none_or(|c| !name_char(c));
            if before_ok && after_ok {
                slots.push((start, end, Slot::Name));
            }
        }
    }
    let mut offset = 0;
    for line in diff.split_inclusive('\n') {
        if line.starts_with("@@") {
            for (start, end) in digit_runs(line) {
                slots.push((offset + start, offset + end, Slot::Line));
            }
        } else {
            for (start, end) in addresses(line) {
                slots.push((offset + start, offset + end, Slot::Address));
            }
        }
        offset += line.len();
    }
    slots.sort();
    let mut text = String::with_capacity(diff.len());
    let mut values = Vec::with_capacity(slots.len());
    let mut at = 0;
    for (start, end, slot) in slots {
        if start < at {
            continue; // overlaps a name found first
        }
        text.push_str(&diff[at..start]);
        text.push(MARK_START);
        text.push(match slot {
            Slot::Name => 'n',
            Slot::Address => 'a',
            Slot::Line => 'l',
        });
        text.push(MARK_END);
        values.push((slot, diff[start..end].to_string()));
        at = end;
    }
    text.push_str(&diff[at..]);
    Some((text, values))
}

fn digit_runs(line: &str) -> Vec<(usize, usize)> {
    let bytes = line.as_bytes();
    let mut runs = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index].is_ascii_digit() {
            let start = index;
            while index < bytes.len() && bytes[index].is_ascii_digit() {
                index += 1;
            }
            runs.push((start, index));
        } else {
            index += 1;
        }
    }
    runs
}

/// The addresses in a line: IPv4 and IPv6, with an optional prefix length, and IPv4
/// addresses as BIRD protocol names spell them (`10_0_0_1`).
fn addresses(line: &str) -> Vec<(usize, usize)> {
    let bytes = line.as_bytes();
    let in_address = |b: u8| b.is_ascii_hexdigit() || matches!(b, b':' | b'.' | b'_' | b'/');
    let mut found = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        let starts = (bytes[index].is_ascii_hexdigit() || bytes[index] == b':')
            && (index == 0 || !(bytes[index - 1].is_ascii_alphanumeric() || matches!(bytes[index - 1], b'.' | b':')));
        if !starts {
            index += 1;
            continue;
        }
        let mut end = index;
        while end < bytes.len() && in_address(bytes[end]) {
            end += 1;
        }
        let candidate = line[index..end].trim_end_matches(['.', ':', '_', '/']);
        let after = bytes.get(index + candidate.len()).copied();
        if is_address(candidate) && !after.is_some_and(|b| b.is_ascii_alphanumeric()) {
            found.push((index, index + candidate.len()));
        }
        index = end.max(index + 1);
    }
    found
}

fn is_address(text: &str) -> bool {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    if prefix.is_some_and(|prefix| prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if address.contains(':') {
        return address.matches(':').count() >= 2 && address.parse::<std::net::Ipv6Addr>().is_ok();
    }
    let dotted = if address.contains('_') && !address.contains('.') { address.replace('_', ".") } else { address.to_string() };
    dotted.split('.').count() == 4 && dotted.parse::<std::net::Ipv4Addr>().is_ok()
}

fn target_type(target: &Target) -> &'static str {
    match target {
        Target::Calico => "calico",
        Target::Node { .. } => "node",
        Target::Router { .. } => "router",
    }
}

fn member_name(change: &Change) -> &str {
    match &change.target {
        Target::Calico => &change.name,
        Target::Node { node } => node,
        Target::Router { router } => router,
    }
}

/// A stage's changes in groups, their diffs computed from their content.
pub fn of_stage(stage: &crate::plan::Stage) -> Vec<Group> {
    let diffs: Vec<String> = stage.changes.iter().map(Change::diff).collect();
    group(&stage.changes, &diffs)
}

/// The stage's changes in groups: Calico resources one by one in the stage's order, then the
/// groups of node and router changes, largest first (ties in the order of their first change),
/// and after them the informational groups, ordered alike: what calplan does is read first,
/// what calico-node does in consequence after it.
/// `diffs` are the changes' diffs ([`Change::diff`]), index for index.
pub fn group(changes: &[Change], diffs: &[String]) -> Vec<Group> {
    let mut calico = Vec::new();
    let mut files = Vec::new();
    type Key<'a> = (bool, &'static str, Action, &'a str, String);
    type Members = Vec<(usize, Vec<(Slot, String)>)>;
    let mut buckets: HashMap<Key, Members> = HashMap::new();
    let mut order: Vec<Key> = Vec::new();
    for (index, (change, diff)) in changes.iter().zip(diffs).enumerate() {
        if change.target == Target::Calico {
            calico.push(single(index, change, diff));
            continue;
        }
        let Some((text, values)) = skeleton(diff, member_name(change)) else {
            files.push(single(index, change, diff));
            continue;
        };
        let key = (change.informational, target_type(&change.target), change.action, change.kind.as_str(), text);
        let bucket = buckets.entry(key.clone()).or_default();
        if bucket.is_empty() {
            order.push(key);
        }
        bucket.push((index, values));
    }
    for key in order {
        let members = buckets.remove(&key).expect("every key has a bucket");
        files.push(match members.len() {
            1 => single(members[0].0, &changes[members[0].0], &diffs[members[0].0]),
            _ => merged(&key.4, key.1, &members, changes),
        });
    }
    files.sort_by(|a, b| a.informational.cmp(&b.informational).then(b.len().cmp(&a.len())).then(a.changes[0].cmp(&b.changes[0])));
    calico.extend(files);
    calico
}

fn single(index: usize, change: &Change, diff: &str) -> Group {
    Group {
        action: change.action,
        kind: change.kind.clone(),
        target: target_type(&change.target).to_string(),
        changes: vec![index],
        members: member_name(change).to_string(),
        diff: diff.to_string(),
        placeholders: Vec::new(),
        informational: change.informational,
    }
}

fn merged(skeleton: &str, target: &str, members: &[(usize, Vec<(Slot, String)>)], changes: &[Change]) -> Group {
    let names: Vec<&str> = members.iter().map(|(index, _)| member_name(&changes[*index])).collect();
    let columns = members[0].1.len();
    // Columns whose values vary share a placeholder when they vary alike.
    let mut placeholders: Vec<(Vec<&str>, String)> = Vec::new();
    let mut counts: BTreeMap<Slot, usize> = BTreeMap::new();
    let mut replacement: Vec<String> = Vec::with_capacity(columns);
    for column in 0..columns {
        let slot = members[0].1[column].0;
        let values: Vec<&str> = members.iter().map(|(_, values)| values[column].1.as_str()).collect();
        if values.iter().all(|value| *value == values[0]) {
            replacement.push(values[0].to_string());
            continue;
        }
        if let Some((_, name)) = placeholders.iter().find(|(known, _)| *known == values) {
            replacement.push(name.clone());
            continue;
        }
        let name = match slot {
            Slot::Name => format!("<{target}>"),
            Slot::Address | Slot::Line => {
                let count = counts.entry(slot).or_insert(0);
                *count += 1;
                let word = if slot == Slot::Address { "address" } else { "line" };
                if *count == 1 { format!("<{word}>") } else { format!("<{word} {count}>") }
            }
        };
        placeholders.push((values, name.clone()));
        replacement.push(name);
    }
    let mut diff = String::with_capacity(skeleton.len());
    let mut column = 0;
    let mut rest = skeleton;
    while let Some(start) = rest.find(MARK_START) {
        diff.push_str(&rest[..start]);
        let end = rest[start..].find(MARK_END).map_or(rest.len(), |offset| start + offset + MARK_END.len_utf8());
        diff.push_str(&replacement[column]);
        column += 1;
        rest = &rest[end..];
    }
    diff.push_str(rest);
    let first = &changes[members[0].0];
    Group {
        action: first.action,
        kind: first.kind.clone(),
        target: target.to_string(),
        changes: members.iter().map(|(index, _)| *index).collect(),
        members: compress(&names),
        diff,
        placeholders: placeholders
            .into_iter()
            .filter(|(_, name)| name != &format!("<{target}>"))
            .map(|(values, name)| placeholder(name, &values, &names))
            .collect(),
        informational: first.informational,
    }
}

/// How many different values a placeholder may take before its values are no longer listed.
const LISTED_VALUES: usize = 3;

fn placeholder(name: String, values: &[&str], members: &[&str]) -> Placeholder {
    let mut by_value: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (value, member) in values.iter().zip(members) {
        by_value.entry(value).or_default().push(member);
    }
    let distinct = by_value.len();
    let listed = if distinct <= LISTED_VALUES && distinct < values.len() {
        let mut listed: Vec<PlaceholderValue> = by_value
            .into_iter()
            .map(|(value, members)| PlaceholderValue { value: value.to_string(), members: compress(&members), count: members.len() })
            .collect();
        listed.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
        listed
    } else {
        Vec::new()
    };
    Placeholder { name, example: values[0].to_string(), values: listed, distinct }
}

/// Hosts whose lines read the same, each text once with the hosts it is for, largest first
/// (ties by first host): the expected status or a barrier's sessions of a thousand clients of
/// one reflector pair is one line.
pub fn by_text<'a>(items: impl IntoIterator<Item = (&'a str, String)>) -> Vec<(String, usize, String)> {
    let mut texts: Vec<(String, Vec<&'a str>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (host, text) in items {
        match index.get(&text) {
            Some(position) => texts[*position].1.push(host),
            None => {
                index.insert(text.clone(), texts.len());
                texts.push((text, vec![host]));
            }
        }
    }
    texts.sort_by_key(|text| std::cmp::Reverse(text.1.len()));
    texts.into_iter().map(|(text, hosts)| (compress(&hosts), hosts.len(), text)).collect()
}

/// How many terms a compressed list shows before it says how many more there are.
const LISTED_TERMS: usize = 6;

/// A list of names, compressed by their numbering: `n00000…n00999` for one run of one number,
/// brace ranges (`r{000..019}-n{00..49}.example`, `{1..9..2}` for a step) where names carry
/// several, other names as they are. Long lists end with how many more there are.
pub fn compress(names: &[&str]) -> String {
    let mut families: BTreeMap<Vec<Part>, BTreeSet<Vec<u64>>> = BTreeMap::new();
    let mut first: BTreeMap<Vec<Part>, &str> = BTreeMap::new();
    for name in names {
        let (pattern, numbers) = split(name);
        let entry = first.entry(pattern.clone()).or_insert(name);
        if natural_key(name) < natural_key(entry) {
            *entry = name;
        }
        families.entry(pattern).or_default().insert(numbers);
    }
    let mut families: Vec<(Vec<Part>, BTreeSet<Vec<u64>>)> = families.into_iter().collect();
    families.sort_by(|a, b| natural_key(first[&a.0]).cmp(&natural_key(first[&b.0])));
    let mut terms: Vec<(String, usize)> = Vec::new();
    for (pattern, tuples) in families {
        let fields = pattern.iter().filter(|part| matches!(part, Part::Digits(_))).count();
        let tuples: Vec<Vec<u64>> = tuples.into_iter().collect();
        for term in product_terms(&tuples, 0, fields) {
            let size = term.iter().map(BTreeSet::len).product();
            terms.push((render_term(&pattern, &term), size));
        }
    }
    let total = terms.len();
    if total > LISTED_TERMS {
        let shown: Vec<String> = terms.iter().take(LISTED_TERMS - 1).map(|(text, _)| text.clone()).collect();
        let more: usize = terms.iter().skip(LISTED_TERMS - 1).map(|(_, size)| size).sum();
        return format!("{}, and {} more", shown.join(", "), thousands(more));
    }
    terms.into_iter().map(|(text, _)| text).collect::<Vec<_>>().join(", ")
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Text(String),
    /// A number written with this many digits.
    Digits(usize),
}

/// A name as text and numbers: `r001-n07` is `r`, 3 digits, `-n`, 2 digits; and [1, 7].
fn split(name: &str) -> (Vec<Part>, Vec<u64>) {
    let mut parts = Vec::new();
    let mut numbers = Vec::new();
    let mut rest = name;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits > 0 && digits <= 18 {
            parts.push(Part::Digits(digits));
            numbers.push(rest[..digits].parse().expect("digits"));
            rest = &rest[digits..];
            continue;
        }
        let text = rest[digits..].find(|c: char| c.is_ascii_digit()).map_or(rest.len(), |offset| digits + offset);
        match parts.last_mut() {
            Some(Part::Text(previous)) => previous.push_str(&rest[..text]),
            _ => parts.push(Part::Text(rest[..text].to_string())),
        }
        rest = &rest[text..];
    }
    (parts, numbers)
}

/// Sorts names as people count: `n2` before `n10`.
fn natural_key(name: &str) -> Vec<(String, u64)> {
    let (parts, numbers) = split(name);
    let mut numbers = numbers.into_iter();
    parts
        .into_iter()
        .map(|part| match part {
            Part::Text(text) => (text, 0),
            Part::Digits(_) => (String::new(), numbers.next().unwrap_or(0)),
        })
        .collect()
}

/// The tuples as a union of products of per-field value sets, fewest terms first found by
/// factoring field by field: the values of a field whose remaining tuples are alike share a
/// term.
/// A product: one set of values per number of a name.
type Term = Vec<BTreeSet<u64>>;

fn product_terms(tuples: &[Vec<u64>], field: usize, fields: usize) -> Vec<Term> {
    if field == fields {
        return vec![Vec::new()];
    }
    let mut by_value: BTreeMap<u64, Vec<Vec<u64>>> = BTreeMap::new();
    for tuple in tuples {
        by_value.entry(tuple[field]).or_default().push(tuple.clone());
    }
    let mut by_rest: Vec<(Vec<Term>, BTreeSet<u64>)> = Vec::new();
    for (value, rest) in by_value {
        let terms = product_terms(&rest, field + 1, fields);
        match by_rest.iter_mut().find(|(known, _)| *known == terms) {
            Some((_, values)) => {
                values.insert(value);
            }
            None => by_rest.push((terms, BTreeSet::from([value]))),
        }
    }
    let mut result = Vec::new();
    for (terms, values) in by_rest {
        for term in terms {
            let mut full = vec![values.clone()];
            full.extend(term);
            result.push(full);
        }
    }
    result
}

fn render_term(pattern: &[Part], term: &[BTreeSet<u64>]) -> String {
    let varying: Vec<usize> = term.iter().enumerate().filter(|(_, values)| values.len() > 1).map(|(index, _)| index).collect();
    // One number ending the name, running without a gap: `n00000…n00999`, as people write a
    // range of hosts.
    let ends_with_number = matches!(pattern.last(), Some(Part::Digits(_)));
    if let [field] = varying[..]
        && ends_with_number
        && field + 1 == term.len()
    {
        let values = &term[field];
        let (low, high) = (*values.first().expect("values"), *values.last().expect("values"));
        if values.len() >= 3 && high - low + 1 == values.len() as u64 {
            let at = |value: u64| {
                let mut fixed: Vec<BTreeSet<u64>> = term.to_vec();
                fixed[field] = BTreeSet::from([value]);
                render_term(pattern, &fixed)
            };
            return format!("{}…{}", at(low), at(high));
        }
    }
    let mut text = String::new();
    let mut fields = term.iter();
    for part in pattern {
        match part {
            Part::Text(literal) => text.push_str(literal),
            Part::Digits(width) => {
                let values = fields.next().expect("a value set per number");
                if values.len() == 1 {
                    text.push_str(&format!("{:0width$}", values.first().expect("a value"), width = *width));
                } else {
                    text.push('{');
                    text.push_str(&ranges(values, *width));
                    text.push('}');
                }
            }
        }
    }
    text
}

/// `00..49`, `001..019..2`, `1..4,6,9..12`.
fn ranges(values: &BTreeSet<u64>, width: usize) -> String {
    let list: Vec<u64> = values.iter().copied().collect();
    let padded = |value: u64| format!("{value:0width$}");
    if list.len() >= 3 {
        let step = list[1] - list[0];
        if step > 1 && list.windows(2).all(|pair| pair[1] - pair[0] == step) {
            return format!("{}..{}..{step}", padded(list[0]), padded(*list.last().expect("values")));
        }
    }
    let mut runs: Vec<String> = Vec::new();
    let mut start = 0;
    while start < list.len() {
        let mut end = start;
        while end + 1 < list.len() && list[end + 1] == list[end] + 1 {
            end += 1;
        }
        runs.push(match end - start {
            0 => padded(list[start]),
            1 => format!("{},{}", padded(list[start]), padded(list[end])),
            _ => format!("{}..{}", padded(list[start]), padded(list[end])),
        });
        start = end + 1;
    }
    runs.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Content;

    fn file_change(node: &str, before: &str, after: &str) -> Change {
        Change {
            action: Action::Update,
            kind: "bird.cfg".into(),
            name: node.into(),
            target: Target::Node { node: node.into() },
            before: Some(Content::File { text: before.into() }),
            after: Some(Content::File { text: after.into() }),
            reason: None,
            informational: false,
        }
    }

    #[test]
    fn names_compress_by_their_numbering() {
        let hosts: Vec<String> = (0..1000).map(|n| format!("n{n:05}")).collect();
        let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
        assert_eq!(compress(&names), "n00000…n00999");
        let racks: Vec<String> = (0..20).flat_map(|r| (0..50).map(move |n| format!("r{r:03}-n{n:02}.bench.example"))).collect();
        let names: Vec<&str> = racks.iter().map(String::as_str).collect();
        assert_eq!(compress(&names), "r{000..019}-n{00..49}.bench.example");
        let odd: Vec<&str> = names.iter().copied().filter(|name| name[1..4].parse::<u32>().unwrap() % 2 == 1).collect();
        assert_eq!(compress(&odd), "r{001..019..2}-n{00..49}.bench.example");
        let gap: Vec<&str> = names.iter().copied().filter(|name| *name != "r005-n07.bench.example").collect();
        assert_eq!(compress(&gap), "r{000..004,006..019}-n{00..49}.bench.example, r005-n{00..06,08..49}.bench.example");
        assert_eq!(compress(&["cs1-k8s-n1.zpepc.com.cn", "cs1-k8s-n2.zpepc.com.cn"]), "cs1-k8s-n{1,2}.zpepc.com.cn");
        assert_eq!(compress(&["m1.example", "m2.example", "m3.example"]), "m{1..3}.example");
        assert_eq!(compress(&["alpha", "beta"]), "alpha, beta");
        let many: Vec<String> = (0..10).map(|n| format!("host-{}", ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"][n])).collect();
        let names: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(compress(&names), "host-a, host-b, host-c, host-d, host-e, and 5 more");
    }

    #[test]
    fn the_same_change_on_many_nodes_is_one_group_with_placeholders() {
        let changes: Vec<Change> = (0..100)
            .map(|n| {
                let name = format!("n{n:03}");
                let before = format!("router id 10.0.0.{n};\n# {name}\nprotocol bgp Node_10_0_1_1 {{}}\n");
                let after = format!("router id 10.0.0.{n};\n# {name}\nprotocol bgp Node_10_0_1_1 {{ passive; }}\n");
                file_change(&name, &before, &after)
            })
            .collect();
        let diffs: Vec<String> = changes.iter().map(Change::diff).collect();
        let groups = group(&changes, &diffs);
        assert_eq!(groups.len(), 1, "{groups:#?}");
        let group = &groups[0];
        assert_eq!(group.members, "n000…n099");
        assert!(group.diff.contains("--- a/nodes/<node>/bird.cfg"), "{}", group.diff);
        assert!(group.diff.contains(" router id <address>;"), "{}", group.diff);
        // A value every member shares stays as it is.
        assert!(group.diff.contains("+protocol bgp Node_10_0_1_1 { passive; }"), "{}", group.diff);
        assert_eq!(
            group.placeholders,
            vec![Placeholder { name: "<address>".into(), example: "10.0.0.0".into(), values: vec![], distinct: 100 }]
        );
        // Substituting a member's values gives back exactly its diff.
        for (index, diff) in diffs.iter().enumerate() {
            let name = format!("n{index:03}");
            let own = group.diff.replace("<node>", &name).replace("<address>", &format!("10.0.0.{index}"));
            assert_eq!(&own, diff);
        }
    }

    #[test]
    fn different_shapes_are_separate_groups_largest_first_and_odd_values_are_listed() {
        let mut changes: Vec<Change> = (0..5).map(|n| file_change(&format!("n{n}"), "a\nvia 10.0.0.1\n", "b\nvia 10.0.0.1\n")).collect();
        changes.push(file_change("n5", "a\nvia 6.6.6.6\n", "b\nvia 6.6.6.6\n"));
        changes.extend((6..9).map(|n| file_change(&format!("n{n}"), "x\n", "y\n")));
        let diffs: Vec<String> = changes.iter().map(Change::diff).collect();
        let groups = group(&changes, &diffs);
        assert_eq!(groups.iter().map(|group| group.len()).collect::<Vec<_>>(), vec![6, 3]);
        let odd = &groups[0].placeholders[0];
        assert_eq!(odd.distinct, 2);
        assert_eq!(odd.values[0], PlaceholderValue { value: "10.0.0.1".into(), members: "n0…n4".into(), count: 5 });
        assert_eq!(odd.values[1], PlaceholderValue { value: "6.6.6.6".into(), members: "n5".into(), count: 1 });
    }

    #[test]
    fn addresses_are_found_and_words_are_not() {
        let found = |line: &str| addresses(line).into_iter().map(|(s, e)| line[s..e].to_string()).collect::<Vec<_>>();
        assert_eq!(found("-A X -s 172.16.0.0/12 -j Y"), ["172.16.0.0/12"]);
        assert_eq!(found("protocol bgp Node_10_0_0_1 from x"), ["10_0_0_1"]);
        assert_eq!(found("neighbor fd00::1 remote-as 64512;"), ["fd00::1"]);
        assert_eq!(found(":CALPLAN-NAT-OUTGOING - [0:0] deadbeef 1.2.3"), Vec::<String>::new());
        assert_eq!(found("router id 10.0.0.1;"), ["10.0.0.1"]);
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(5), "5");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
