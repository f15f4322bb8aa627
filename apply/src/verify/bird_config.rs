//! BIRD 1.x configurations (what calico-node's confd renders, and calplan's `bird-calico.cfg`)
//! read into a structure that keeps what BIRD acts on and drops what it does not: comments,
//! blank lines, spacing and the order of top-level items and of a protocol's options. What
//! stays in order is what BIRD evaluates in order: the statements of functions and filters.
//!
//! - `include "FILE";` is followed through the files given (the live render's `bird_aggr.cfg`,
//!   `bird_ipam.cfg`, …), so a render split into files and one with them inline read the same.
//! - Protocols are keyed by name; an unnamed one gets BIRD's own name (`static1`, `kernel1`,
//!   `device1`…). Templates, functions and filters by name; other top-level statements
//!   (`router id`, `listen bgp`, `log`, `debug protocols`…) by their leading words.
//! - A `password` never leaves this module: it is read as "set", so that neither the live
//!   secret nor calplan's placeholder for it is compared or printed.
//!
//! Pure: texts in, structure out; every item keeps the file and line it came from.

use std::collections::BTreeMap;

/// Where an item was read: the file (as named by the caller or by `include`) and its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A normalised statement or body, and where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub text: String,
    pub at: Location,
}

/// A protocol or template: its type, the template it derives from, and its options as a set
/// (normalised statement → where it is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub kind: String,
    pub from: Option<String>,
    pub options: BTreeMap<String, Location>,
    pub at: Location,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BirdConfig {
    /// Top-level statements by their leading words (`router id`, `listen bgp`, `log`, …).
    pub globals: BTreeMap<String, Item>,
    pub functions: BTreeMap<String, Item>,
    pub filters: BTreeMap<String, Item>,
    pub templates: BTreeMap<String, Block>,
    pub protocols: BTreeMap<String, Block>,
    /// What could not be read: an include that is missing, an unbalanced brace.
    pub problems: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Text(String),
    Punct(char),
}

#[derive(Clone, Debug)]
struct Located {
    token: Token,
    at: Location,
}

const PUNCT: &str = "{}();,";
/// Characters that form operators: a run of them is one token, so `a=b` and `a = b` agree.
const OPERATORS: &str = "=~!<>&|+[]";

fn tokenize(file: &str, text: &str) -> Vec<Located> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let (mut index, mut line) = (0, 1);
    let at = |line: usize| Location { file: file.to_string(), line };
    while index < chars.len() {
        let c = chars[index];
        if c == '\n' {
            line += 1;
            index += 1;
        } else if c.is_whitespace() {
            index += 1;
        } else if c == '#' {
            while index < chars.len() && chars[index] != '\n' {
                index += 1;
            }
        } else if c == '/' && chars.get(index + 1) == Some(&'*') {
            index += 2;
            while index < chars.len() && !(chars[index] == '*' && chars.get(index + 1) == Some(&'/')) {
                if chars[index] == '\n' {
                    line += 1;
                }
                index += 1;
            }
            index += 2;
        } else if c == '"' {
            let start_line = line;
            let mut value = String::new();
            index += 1;
            while index < chars.len() && chars[index] != '"' {
                if chars[index] == '\\' && index + 1 < chars.len() {
                    value.push(chars[index]);
                    index += 1;
                }
                if chars[index] == '\n' {
                    line += 1;
                }
                value.push(chars[index]);
                index += 1;
            }
            index += 1;
            tokens.push(Located { token: Token::Text(value), at: at(start_line) });
        } else if PUNCT.contains(c) {
            tokens.push(Located { token: Token::Punct(c), at: at(line) });
            index += 1;
        } else if OPERATORS.contains(c) {
            let start = index;
            while index < chars.len() && OPERATORS.contains(chars[index]) {
                index += 1;
            }
            tokens.push(Located { token: Token::Word(chars[start..index].iter().collect()), at: at(line) });
        } else {
            let start = index;
            while index < chars.len()
                && !chars[index].is_whitespace()
                && !PUNCT.contains(chars[index])
                && !OPERATORS.contains(chars[index])
                && chars[index] != '"'
                && chars[index] != '#'
                && !(chars[index] == '/' && chars.get(index + 1) == Some(&'*'))
            {
                index += 1;
            }
            tokens.push(Located { token: Token::Word(chars[start..index].iter().collect()), at: at(line) });
        }
    }
    tokens
}

/// Tokens as one line of text: words and punctuation separated by single spaces.
fn join(tokens: &[Located]) -> String {
    let mut out = String::new();
    let mut password = false;
    for token in tokens {
        if !out.is_empty() {
            out.push(' ');
        }
        match &token.token {
            Token::Word(word) => {
                password = word == "password";
                out.push_str(word);
            }
            Token::Text(_) if password => {
                password = false;
                out.push_str("\"<set>\"");
            }
            Token::Text(text) => out.push_str(&format!("\"{text}\"")),
            Token::Punct(c) => out.push(*c),
        }
    }
    out
}

fn word(token: Option<&Located>) -> Option<&str> {
    match token.map(|token| &token.token) {
        Some(Token::Word(word)) => Some(word),
        _ => None,
    }
}

/// Reads a configuration: `main` is its file name, `files` every file an `include` may name
/// (by the name the `include` uses).
pub fn read(main: &str, text: &str, files: &BTreeMap<String, String>) -> BirdConfig {
    let mut config = BirdConfig::default();
    let mut tokens = Vec::new();
    expand(main, text, files, &mut tokens, &mut config.problems, 0);
    let mut counters: BTreeMap<String, usize> = BTreeMap::new();
    let mut index = 0;
    while index < tokens.len() {
        let start = index;
        let first = word(tokens.get(index)).unwrap_or("").to_string();
        match first.as_str() {
            "function" | "filter" => {
                let name = word(tokens.get(index + 1)).unwrap_or("").to_string();
                let Some(open) = (index..tokens.len()).find(|i| tokens[*i].token == Token::Punct('{')) else {
                    config.problems.push(Item { text: format!("`{first} {name}` has no body"), at: tokens[start].at.clone() });
                    break;
                };
                let close = matching(&tokens, open);
                if close == tokens.len() {
                    config.problems.push(Item { text: format!("`{first} {name}` is not closed"), at: tokens[start].at.clone() });
                }
                let body = join(&tokens[(index + 2).min(close)..(close + 1).min(tokens.len())]);
                let item = Item { text: body, at: tokens[start].at.clone() };
                if first == "function" {
                    config.functions.insert(name, item);
                } else {
                    config.filters.insert(name, item);
                }
                index = close + 1;
            }
            "protocol" | "template" => {
                let kind = word(tokens.get(index + 1)).unwrap_or("").to_string();
                let Some(open) = (index..tokens.len()).find(|i| tokens[*i].token == Token::Punct('{')) else {
                    config.problems.push(Item { text: format!("`{first} {kind}` has no body"), at: tokens[start].at.clone() });
                    break;
                };
                let header: Vec<&str> = tokens[(index + 2).min(open)..open].iter().filter_map(|token| word(Some(token))).collect();
                let (mut name, mut from) = (None, None);
                let mut words = header.iter();
                while let Some(part) = words.next() {
                    if *part == "from" {
                        from = words.next().map(|word| word.to_string());
                    } else if name.is_none() {
                        name = Some(part.to_string());
                    }
                }
                let name = name.unwrap_or_else(|| {
                    let counter = counters.entry(kind.to_lowercase()).or_insert(0);
                    *counter += 1;
                    format!("{}{counter}", kind.to_lowercase())
                });
                let close = matching(&tokens, open);
                if close == tokens.len() {
                    config.problems.push(Item { text: format!("`{first} {name}` is not closed"), at: tokens[start].at.clone() });
                }
                let options = statements(&tokens[(open + 1).min(close)..close]);
                let block = Block { kind: kind.to_lowercase(), from, options, at: tokens[start].at.clone() };
                if first == "template" {
                    config.templates.insert(name, block);
                } else {
                    config.protocols.insert(name, block);
                }
                index = close + 1;
            }
            _ => {
                let end = (index..tokens.len()).find(|i| tokens[*i].token == Token::Punct(';')).unwrap_or(tokens.len() - 1);
                let statement = &tokens[index..=end];
                let words: Vec<&str> = statement.iter().filter_map(|token| word(Some(token))).collect();
                let key = match words.as_slice() {
                    ["router", "id", ..] | ["listen", "bgp", ..] | ["debug", "protocols", ..] => words[..2].join(" "),
                    [] => join(statement),
                    [first, ..] => first.to_string(),
                };
                config.globals.insert(key, Item { text: join(statement), at: tokens[start].at.clone() });
                index = end + 1;
            }
        }
    }
    config
}

/// Follows `include` statements, depth-limited (BIRD allows 8 levels).
fn expand(file: &str, text: &str, files: &BTreeMap<String, String>, out: &mut Vec<Located>, problems: &mut Vec<Item>, depth: usize) {
    let tokens = tokenize(file, text);
    let mut index = 0;
    while index < tokens.len() {
        if word(tokens.get(index)) == Some("include")
            && let Some(Token::Text(name)) = tokens.get(index + 1).map(|token| &token.token)
        {
            let at = tokens[index].at.clone();
            index += 2;
            if tokens.get(index).is_some_and(|token| token.token == Token::Punct(';')) {
                index += 1;
            }
            match files.get(name.as_str()) {
                Some(included) if depth < 8 => expand(name, included, files, out, problems, depth + 1),
                Some(_) => problems.push(Item { text: format!("includes nest deeper than BIRD allows at `{name}`"), at }),
                None => problems.push(Item { text: format!("includes `{name}`, which could not be read"), at }),
            }
            continue;
        }
        out.push(tokens[index].clone());
        index += 1;
    }
}

/// The index of the `}` closing the `{` at `open`, or the end of the tokens when unbalanced.
fn matching(tokens: &[Located], open: usize) -> usize {
    let mut depth = 0;
    for (index, token) in tokens.iter().enumerate().skip(open) {
        match token.token {
            Token::Punct('{') => depth += 1,
            Token::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    return index;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// A block's statements, split at `;` outside nested braces, as a set.
fn statements(tokens: &[Located]) -> BTreeMap<String, Location> {
    let mut options = BTreeMap::new();
    let (mut start, mut depth) = (0, 0i32);
    for (index, token) in tokens.iter().enumerate() {
        match token.token {
            Token::Punct('{') => depth += 1,
            Token::Punct('}') => depth -= 1,
            Token::Punct(';') if depth == 0 => {
                if index > start {
                    options.insert(join(&tokens[start..index]), tokens[start].at.clone());
                }
                start = index + 1;
            }
            _ => {}
        }
    }
    if start < tokens.len() {
        options.insert(join(&tokens[start..]), tokens[start].at.clone());
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: &str = "# Generated by confd\ninclude \"bird_aggr.cfg\";\n\nrouter id 10.0.0.1;\n\
        protocol kernel {\n  learn;  # a comment\n  scan time 2;\n}\nprotocol bgp Mesh_10_0_0_2 from bgp_template {\n  \
        neighbor 10.0.0.2 as 64512;\n  password \"hunter2\";\n  export filter {\n    calico_export(true);\n    reject;\n  };\n}\n";
    const AGGR: &str = "protocol static {\n   route 10.244.0.0/26 blackhole;\n}\nfunction calico_aggr ()\n{\n  if ( net = 10.244.0.0/26 ) then { accept; }\n}\n";

    #[test]
    fn includes_comments_spacing_and_order_do_not_count() {
        let files = BTreeMap::from([("bird_aggr.cfg".to_string(), AGGR.to_string())]);
        let split = read("bird.cfg", MAIN, &files);
        let inline = MAIN
            .replace("include \"bird_aggr.cfg\";", AGGR)
            .replace("  scan time 2;\n", "")
            .replace("  learn;", "  scan time 2;\n  learn;");
        let inline = read("bird-calico.cfg", &inline.replace("net = 10", "net=10"), &BTreeMap::new());
        assert!(split.problems.is_empty(), "{:?}", split.problems);
        assert_eq!(split.protocols.keys().collect::<Vec<_>>(), ["Mesh_10_0_0_2", "kernel1", "static1"]);
        for (name, block) in &split.protocols {
            let options: Vec<&String> = block.options.keys().collect();
            assert_eq!(options, inline.protocols[name].options.keys().collect::<Vec<_>>(), "{name}");
        }
        assert_eq!(split.functions["calico_aggr"].text, inline.functions["calico_aggr"].text);
        assert_eq!(split.functions["calico_aggr"].at.to_string(), "bird_aggr.cfg:4");
        assert_eq!(split.globals["router id"].text, "router id 10.0.0.1 ;");
        let mesh = &split.protocols["Mesh_10_0_0_2"];
        assert_eq!(mesh.from.as_deref(), Some("bgp_template"));
        assert!(mesh.options.contains_key("password \"<set>\""), "{:?}", mesh.options);
        assert!(!format!("{split:?}").contains("hunter2"), "the password never leaves the parser");
    }

    #[test]
    fn a_missing_include_is_a_problem_at_its_line() {
        let config = read("bird.cfg", MAIN, &BTreeMap::new());
        assert_eq!(config.problems.len(), 1);
        assert_eq!(config.problems[0].at.to_string(), "bird.cfg:2");
    }

    #[test]
    fn unbalanced_or_cut_text_never_panics() {
        let text = format!("{MAIN}{AGGR}");
        for end in (0..=text.len()).filter(|end| text.is_char_boundary(*end)) {
            let _ = read("bird.cfg", &text[..end], &BTreeMap::new());
        }
    }
}
