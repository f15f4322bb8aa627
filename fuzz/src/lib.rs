//! Fuzzing calplan's readers: inputs mutated from the repository's own test data, run through
//! `check` and every `--current` reader, watched from outside the process.
//!
//! A panic is not the only failure that matters: a stack overflow aborts the process, a
//! billion-laughs file exhausts memory, a reader that loops never returns. None of these can
//! be caught inside the process that suffers them, so the inputs run in a worker process
//! (`calplan-fuzz work`) that writes each input to a file before running it, under a limit on
//! its address space, while a supervisor (`tests/fuzz.rs`) watches it: a worker that dies by
//! a signal, exits with a panic, or spends too long on one input leaves that input behind, the
//! supervisor keeps it under `target/fuzz-failures/`, and starts a new worker.
//!
//! The inputs are not coverage-guided (that needs libFuzzer's instrumentation, which cargo-fuzz
//! builds with nightly Rust): they are the test data's intents and current-state files,
//! mutated with byte edits, splices, a dictionary of YAML, selector and JSON syntax, and above
//! all with repetitions (`[` ten thousand times, an anchor's aliases ten deep), which is what
//! reaches the limits of `docs/limits.md`. A deterministic generator makes every run
//! reproducible from its seed; `calplan-fuzz one TARGET FILE` runs a kept input again.

use calplan_diagnostics::SourceMap;
use calplan_plan::current::{applied, calico_yaml, etcd_layout, ip_routes, ipam_blocks, kubernetes, workloads};

/// What an input is fed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `calplan check`: parse, lower, validate, render every diagnostic format, and compile
    /// every artifact of a valid intent.
    Check,
    /// Every `--current` reader (Calico exports, kubectl exports of the Kubernetes datastore,
    /// tables, route dumps, manifests), as text and as etcd values, and what `status` and
    /// `import` make of the resources read.
    Current,
}

impl Target {
    pub const ALL: [Target; 2] = [Target::Check, Target::Current];

    pub fn name(self) -> &'static str {
        match self {
            Target::Check => "check",
            Target::Current => "current",
        }
    }

    pub fn parse(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|target| target.name() == name)
    }
}

/// Runs one input. Whatever the input, this must return: a panic, an abort or a hang is the
/// failure the supervisor looks for.
pub fn run(target: Target, input: &[u8]) {
    let text = String::from_utf8_lossy(input).into_owned();
    match target {
        Target::Check => check(text),
        Target::Current => current(&text),
    }
}

fn check(text: String) {
    let checked = calplan::pipeline::check("intent.yaml", text, None);
    let diagnostics: Vec<_> = checked.diagnostics.clone().into_sorted().into_iter().take(RENDERED).collect();
    let rendered = calplan_diagnostics::render::human(&diagnostics, &checked.sources, false);
    assert_bounded(&rendered, &diagnostics);
    let _ = calplan_diagnostics::render::json(&diagnostics, &checked.allowed, &checked.sources);
    let _ = calplan_diagnostics::render::sarif(&diagnostics, &checked.allowed, &checked.sources, "fuzz");
    let _ = calplan_diagnostics::render::github(&diagnostics, &checked.allowed, &checked.sources);
    if let Some(analysis) = checked.valid() {
        let templates = calplan_targets::Templates::builtin();
        let context = calplan_targets::Context { analysis, templates: &templates, node: None, sink: None };
        let _ = calplan_targets::compile(&context, None);
    }
}

fn current(text: &str) {
    let mut sources = SourceMap::new();
    let file = sources.add("current", text);
    let _ = calplan_plan::current::sniff(text);
    let read = calico_yaml::read(file, text);
    render(&sources, &read.diagnostics);
    if let Some(resources) = read.value {
        let _ = calplan_calico::status::rows(&calplan_calico::peering::Peerings::compute(&resources, calplan_calico::Release::DEFAULT));
        let (intent, _) = calplan_plan::import::intent_yaml(&resources, "fuzz", None, None);
        let _ = calplan::pipeline::check("imported.yaml", intent, None);
    }
    render(&sources, &kubernetes::read(file, text).diagnostics);
    render(&sources, &ipam_blocks::read(file, text).diagnostics);
    render(&sources, &workloads::read(file, text).diagnostics);
    render(&sources, &ip_routes::read(file, text).diagnostics);
    render(&sources, &applied::read_manifest(file, text).diagnostics);
    // The same text as etcd values: a resource, a block affinity, an allocation block and a
    // workload endpoint, read from a snapshot as `--current etcd://…` reads one.
    let value = |key: &str| etcd_layout::KeyValue { key: key.into(), value: text.as_bytes().to_vec(), create_revision: 1, mod_revision: 2 };
    let snapshot = etcd_layout::Snapshot::new(
        3,
        vec![
            value("/calico/resources/v3/projectcalico.org/ippools/p"),
            value("/calico/resources/v3/projectcalico.org/bgppeers/p"),
            value("/calico/resources/v3/projectcalico.org/workloadendpoints/default/w"),
            value("/calico/ipam/v2/host/n1/ipv4/block/10.0.0.0-26"),
            value("/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26"),
        ],
    );
    let mut sources = SourceMap::new();
    let listing = sources.add("etcd://fuzz:2379", snapshot.listing());
    render(&sources, &etcd_layout::read(listing, &snapshot).diagnostics);
}

/// Renders the first reports of a reader: rendering costs the same for every report, and an
/// input with ten thousand bad lines would otherwise spend the run's time drawing them.
fn render(sources: &SourceMap, diagnostics: &calplan_diagnostics::Diagnostics) {
    let diagnostics: Vec<_> = diagnostics.clone().into_sorted().into_iter().take(RENDERED).collect();
    let rendered = calplan_diagnostics::render::human(&diagnostics, sources, false);
    assert_bounded(&rendered, &diagnostics);
}

/// How many reports of one reader are rendered.
const RENDERED: usize = 100;

/// Every report repeats a bounded part of its input (`docs/limits.md`).
fn assert_bounded(rendered: &str, diagnostics: &[calplan_diagnostics::Diagnostic]) {
    let bound: usize = diagnostics.iter().map(|diagnostic| 32 * 1024 + 8 * 1024 * diagnostic.secondary.len()).sum();
    assert!(rendered.len() <= bound, "{} bytes of diagnostics repeat the input at length", rendered.len());
}

/// A small deterministic generator (SplitMix64): the same seed gives the same inputs.
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Random {
        Random(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `bound` (which must not be 0).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Syntax worth inserting: YAML's structure, tags, anchors and aliases, selectors, CIDRs,
/// durations, AS numbers, JSON, and text that has broken readers before.
const DICTIONARY: &[&str] = &[
    "\n",
    "  ",
    "\t",
    ": ",
    "- ",
    "---\n",
    "...\n",
    "[",
    "]",
    "{",
    "}",
    ",",
    "'",
    "\"",
    "#",
    "|\n",
    ">-\n",
    "? ",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "!",
    "!!str ",
    "!!binary ",
    "<<: *a\n",
    "~",
    "null",
    "true",
    "0x",
    "0o7",
    "1e309",
    "-0",
    ".nan",
    "99999999999999999999",
    "4294967296",
    "65535.65535",
    "1.10",
    "all()",
    "has(a)",
    "!has(a)",
    "(",
    ")",
    "&&",
    "||",
    " in {'a', 'b'}",
    "== 'x'",
    "global()",
    "10.0.0.0/8",
    "192.168.0.0/16",
    "999.1.1.1/24",
    "::/0",
    "fe80::/10",
    "10.0.0.1:179",
    "[::1]:179",
    "/33",
    "/-1",
    "120s",
    "1h2m3.5s",
    "-5s",
    "\u{0}",
    "\u{feff}",
    "\u{202e}",
    "é",
    "\r\n",
    "\\u0000",
    "\"spec\":null",
    "{}",
    "[]",
    "items: 5\n",
    "kind: List\nitems:\n",
    "apiVersion: projectcalico.org/v3\n",
    "kind: IPPool\n",
    "kind: BGPPeer\n",
    "kind: Node\n",
    "kind: BGPConfiguration\n",
    "blockSize: 8\n",
    "bolockSize: 24\n",
    "spec: null\n",
    "serviceClusterIPs: [{}]\n",
    "nodeSelector: ",
    "peerSelector: ",
    "peerIP: ",
    "asNumber: ",
    "ipv4Address: ",
    "| Block | ",
    "+-----+\n",
    "nexthop via ",
    "blackhole ",
    "{\"dst\":",
    "\"allocations\":[",
    "\"attributes\":[{\"secondary\":{}}]",
    "\"state\":\"confirmed\"",
];

/// What repetition amplifies: nesting, operators, aliases, long values.
const REPEATED: &[&str] = &["[", "{a: ", "- ", "(", "!", "has(a) && ", "*a, ", "a", "  ", "\n", "[*a, *a, *a, *a, *a]", "é", "\\\\"];

/// The longest input generated; the limits of `docs/limits.md` are reached well below it.
pub const MAX_INPUT: usize = 256 << 10;

/// A new input from `seeds`: one of them, changed by one to four mutations.
pub fn mutate(random: &mut Random, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut input = random.pick(seeds).clone();
    for _ in 0..1 + random.below(4) {
        mutate_once(random, seeds, &mut input);
    }
    input.truncate(MAX_INPUT);
    input
}

fn mutate_once(random: &mut Random, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    let at = |random: &mut Random, input: &Vec<u8>| random.below(input.len() + 1);
    match random.below(9) {
        // Flip a bit.
        0 if !input.is_empty() => {
            let index = random.below(input.len());
            input[index] ^= 1 << random.below(8);
        }
        // Insert a dictionary word.
        1 | 2 => {
            let position = at(random, input);
            let word = random.pick(DICTIONARY).as_bytes();
            input.splice(position..position, word.iter().copied());
        }
        // Delete a range.
        3 if !input.is_empty() => {
            let start = random.below(input.len());
            let end = (start + 1 + random.below(64)).min(input.len());
            input.drain(start..end);
        }
        // Copy a range elsewhere.
        4 if !input.is_empty() => {
            let start = random.below(input.len());
            let end = (start + 1 + random.below(256)).min(input.len());
            let piece = input[start..end].to_vec();
            let position = at(random, input);
            input.splice(position..position, piece);
        }
        // Repeat something many times: nesting, chains, aliases, long values.
        5 | 6 => {
            // Past every limit of `docs/limits.md` (64 levels, 10,000 aliases) without much more.
            let count = [10, 70, 300, 3_000, 12_000][random.below(5)];
            let word = if random.below(2) == 0 || input.is_empty() {
                random.pick(REPEATED).as_bytes().to_vec()
            } else {
                let start = random.below(input.len());
                input[start..(start + 1 + random.below(8)).min(input.len())].to_vec()
            };
            let position = at(random, input);
            let repeated: Vec<u8> = word.iter().copied().cycle().take((word.len() * count).min(MAX_INPUT)).collect();
            input.splice(position..position, repeated);
        }
        // Aliases of aliases, each level ten copies of the last.
        7 => {
            let levels = 2 + random.below(10);
            let mut bomb = String::from("\nx0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
            for level in 1..levels {
                bomb.push_str(&format!("x{level}: &x{level} [{}]\n", vec![format!("*x{}", level - 1); 10].join(", ")));
            }
            let position = at(random, input);
            input.splice(position..position, bomb.into_bytes());
        }
        // Splice with another seed.
        _ => {
            let other = random.pick(seeds);
            let head = at(random, input);
            let tail = random.below(other.len() + 1);
            input.truncate(head);
            input.extend_from_slice(&other[tail..]);
        }
    }
}

/// The seed files of a target, under the repository root: the test data's intents, or its
/// current-state files and the fuzzer's own JSON seeds (etcd values, `ip -j route`).
pub fn seed_files(root: &std::path::Path, target: Target) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    collect(&root.join("testdata"), &mut files);
    let mut seeds: Vec<std::path::PathBuf> = match target {
        Target::Check => files.into_iter().filter(|path| path.file_name().is_some_and(|name| name == "intent.yaml")).collect(),
        Target::Current => {
            let mut current: Vec<_> =
                files.into_iter().filter(|path| path.components().any(|part| part.as_os_str() == "current")).collect();
            collect(&root.join("fuzz/seeds"), &mut current);
            current
        }
    };
    seeds.sort();
    seeds
}

fn collect(directory: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(directory) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.is_file() {
            files.push(path);
        }
    }
}

/// Keeps a worker process's address space under `bytes`, so an input that would exhaust memory
/// fails an allocation (and aborts, which the supervisor sees) instead of the machine.
pub fn limit_memory(bytes: u64) -> std::io::Result<()> {
    let limit = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic_and_bounded() {
        let seeds = vec![b"apiVersion: calplan/v1\n".to_vec(), b"[]".to_vec()];
        let (mut first, mut second) = (Random::new(7), Random::new(7));
        for _ in 0..200 {
            let input = mutate(&mut first, &seeds);
            assert_eq!(input, mutate(&mut second, &seeds));
            assert!(input.len() <= MAX_INPUT);
        }
    }
}
