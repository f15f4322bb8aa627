//! Calico's label selector language: `all()`, `has(k)`, `k == 'v'`, `k != 'v'`, `k in {...}`,
//! `k not in {...}`, `contains`, `starts with`, `ends with`, `!`, `&&`, `||` and parentheses.
//!
//! Errors carry byte offsets into the selector text so that diagnostics can point inside it.
//!
//! `&&` and `||` hold their operands in a list, as Calico's parser does, so a long chain is one
//! level deep; what nests (parentheses and `!`) is bounded by [`MAX_DEPTH`], because every pass
//! over a selector (parsing, matching, printing, dropping it) recurses once per level.

use std::collections::BTreeMap;
use std::fmt;

/// How deeply parentheses and `!` may nest. Calico's own selectors nest two or three levels;
/// `docs/limits.md` says why this bound.
pub const MAX_DEPTH: usize = 64;

/// A parsed selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    All,
    Global,
    Has(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Contains(String, String),
    StartsWith(String, String),
    EndsWith(String, String),
    Not(Box<Selector>),
    /// Two or more operands, all of which must match.
    And(Vec<Selector>),
    /// Two or more operands, one of which must match.
    Or(Vec<Selector>),
}

/// A selector that does not parse, with the byte range of the offending part of the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorError {
    pub start: usize,
    pub end: usize,
    pub message: String,
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Selector {
    /// Parses a selector. An empty (or all-blank) selector is `all()`, as in Calico.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let tokens = tokenize(text)?;
        if tokens.len() == 1 {
            return Ok(Selector::All);
        }
        let mut parser = Parser { tokens, position: 0, text, depth: 0 };
        let selector = parser.expression()?;
        let token = parser.peek();
        if token.kind != Kind::End {
            return Err(parser.error_at(&token, format!("unexpected {}", token.kind.describe())));
        }
        Ok(selector)
    }

    /// Whether a set of labels matches.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Selector::All | Selector::Global => true,
            Selector::Has(key) => labels.contains_key(key),
            Selector::Equals(key, value) => labels.get(key) == Some(value),
            Selector::NotEquals(key, value) => labels.get(key) != Some(value),
            Selector::In(key, values) => labels.get(key).is_some_and(|label| values.contains(label)),
            Selector::NotIn(key, values) => labels.get(key).is_none_or(|label| !values.contains(label)),
            Selector::Contains(key, part) => labels.get(key).is_some_and(|label| label.contains(part.as_str())),
            Selector::StartsWith(key, part) => labels.get(key).is_some_and(|label| label.starts_with(part.as_str())),
            Selector::EndsWith(key, part) => labels.get(key).is_some_and(|label| label.ends_with(part.as_str())),
            Selector::Not(inner) => !inner.matches(labels),
            Selector::And(operands) => operands.iter().all(|operand| operand.matches(labels)),
            Selector::Or(operands) => operands.iter().any(|operand| operand.matches(labels)),
        }
    }

    /// Every label key the selector mentions.
    pub fn label_keys(&self) -> Vec<&str> {
        let mut keys = Vec::new();
        self.collect_keys(&mut keys);
        keys
    }

    fn collect_keys<'a>(&'a self, keys: &mut Vec<&'a str>) {
        match self {
            Selector::All | Selector::Global => {}
            Selector::Has(key)
            | Selector::Equals(key, _)
            | Selector::NotEquals(key, _)
            | Selector::In(key, _)
            | Selector::NotIn(key, _)
            | Selector::Contains(key, _)
            | Selector::StartsWith(key, _)
            | Selector::EndsWith(key, _) => keys.push(key),
            Selector::Not(inner) => inner.collect_keys(keys),
            Selector::And(operands) | Selector::Or(operands) => operands.iter().for_each(|operand| operand.collect_keys(keys)),
        }
    }
}

/// The canonical text, as Calico prints a parsed selector (double-quoted strings, each `&&` or
/// `||` chain in one pair of parentheses).
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |values: &[String]| values.iter().map(|value| format!("\"{value}\"")).collect::<Vec<_>>().join(", ");
        let chain = |f: &mut fmt::Formatter<'_>, operands: &[Selector], operator: &str| {
            f.write_str("(")?;
            for (index, operand) in operands.iter().enumerate() {
                if index > 0 {
                    f.write_str(operator)?;
                }
                write!(f, "{operand}")?;
            }
            f.write_str(")")
        };
        match self {
            Selector::All => f.write_str("all()"),
            Selector::Global => f.write_str("global()"),
            Selector::Has(key) => write!(f, "has({key})"),
            Selector::Equals(key, value) => write!(f, "{key} == \"{value}\""),
            Selector::NotEquals(key, value) => write!(f, "{key} != \"{value}\""),
            Selector::In(key, values) => write!(f, "{key} in {{{}}}", set(values)),
            Selector::NotIn(key, values) => write!(f, "{key} not in {{{}}}", set(values)),
            Selector::Contains(key, value) => write!(f, "{key} contains \"{value}\""),
            Selector::StartsWith(key, value) => write!(f, "{key} starts with \"{value}\""),
            Selector::EndsWith(key, value) => write!(f, "{key} ends with \"{value}\""),
            Selector::Not(inner) => write!(f, "!{inner}"),
            Selector::And(operands) => chain(f, operands, " && "),
            Selector::Or(operands) => chain(f, operands, " || "),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Label(String),
    Text(String),
    All,
    Global,
    Has(String),
    LeftParen,
    RightParen,
    LeftBrace,
    RightBrace,
    Comma,
    Equals,
    NotEquals,
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    Not,
    And,
    Or,
    End,
}

impl Kind {
    fn describe(&self) -> String {
        match self {
            Kind::Label(label) => format!("label `{label}`"),
            Kind::Text(text) => format!("string '{text}'"),
            Kind::All => "`all()`".into(),
            Kind::Global => "`global()`".into(),
            Kind::Has(key) => format!("`has({key})`"),
            Kind::LeftParen => "`(`".into(),
            Kind::RightParen => "`)`".into(),
            Kind::LeftBrace => "`{`".into(),
            Kind::RightBrace => "`}`".into(),
            Kind::Comma => "`,`".into(),
            Kind::Equals => "`==`".into(),
            Kind::NotEquals => "`!=`".into(),
            Kind::In => "`in`".into(),
            Kind::NotIn => "`not in`".into(),
            Kind::Contains => "`contains`".into(),
            Kind::StartsWith => "`starts with`".into(),
            Kind::EndsWith => "`ends with`".into(),
            Kind::Not => "`!`".into(),
            Kind::And => "`&&`".into(),
            Kind::Or => "`||`".into(),
            Kind::End => "end of selector".into(),
        }
    }
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

fn is_label_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'/' | b'-')
}

fn tokenize(text: &str) -> Result<Vec<Token>, SelectorError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut position = 0;
    let skip_blank = |mut at: usize| {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        at
    };
    let label_end = |mut at: usize| {
        while at < bytes.len() && is_label_byte(bytes[at]) {
            at += 1;
        }
        at
    };
    // Whether `word` starts at `at` as a whole word (not the prefix of a label).
    let word_at =
        |at: usize, word: &str| text[at..].starts_with(word) && bytes.get(at + word.len()).is_none_or(|&next| !is_label_byte(next));
    loop {
        position = skip_blank(position);
        let start = position;
        let Some(&byte) = bytes.get(position) else { break };
        let (kind, end) = match byte {
            b'(' => (Kind::LeftParen, position + 1),
            b')' => (Kind::RightParen, position + 1),
            b'{' => (Kind::LeftBrace, position + 1),
            b'}' => (Kind::RightBrace, position + 1),
            b',' => (Kind::Comma, position + 1),
            b'=' if bytes.get(position + 1) == Some(&b'=') => (Kind::Equals, position + 2),
            b'!' if bytes.get(position + 1) == Some(&b'=') => (Kind::NotEquals, position + 2),
            b'!' => (Kind::Not, position + 1),
            b'&' if bytes.get(position + 1) == Some(&b'&') => (Kind::And, position + 2),
            b'|' if bytes.get(position + 1) == Some(&b'|') => (Kind::Or, position + 2),
            b'\'' | b'"' => {
                let close = text[position + 1..].find(byte as char).ok_or_else(|| SelectorError {
                    start,
                    end: text.len(),
                    message: format!("unterminated string: no closing {}", byte as char),
                })?;
                let end = position + 1 + close;
                (Kind::Text(text[position + 1..end].to_string()), end + 1)
            }
            _ if word_at(position, "all") && text[skip_blank(position + 3)..].starts_with('(') => {
                let open = skip_blank(position + 3);
                let close = skip_blank(open + 1);
                if bytes.get(close) != Some(&b')') {
                    return Err(SelectorError {
                        start,
                        end: close.min(text.len()),
                        message: "`all` takes no argument: write `all()`".into(),
                    });
                }
                (Kind::All, close + 1)
            }
            _ if word_at(position, "global") && text[skip_blank(position + 6)..].starts_with('(') => {
                let open = skip_blank(position + 6);
                let close = skip_blank(open + 1);
                if bytes.get(close) != Some(&b')') {
                    return Err(SelectorError {
                        start,
                        end: close.min(text.len()),
                        message: "`global` takes no argument: write `global()`".into(),
                    });
                }
                (Kind::Global, close + 1)
            }
            _ if word_at(position, "has") && text[skip_blank(position + 3)..].starts_with('(') => {
                let key_start = skip_blank(skip_blank(position + 3) + 1);
                let key_end = label_end(key_start);
                let close = skip_blank(key_end);
                if key_end == key_start {
                    return Err(SelectorError {
                        start,
                        end: key_start.max(start + 4).min(text.len()),
                        message: "`has()` needs a label key: `has(key)`".into(),
                    });
                }
                if bytes.get(close) != Some(&b')') {
                    return Err(SelectorError {
                        start,
                        end: close.min(text.len()),
                        message: "`has(` is not closed: expected `)` after the label key".into(),
                    });
                }
                (Kind::Has(text[key_start..key_end].to_string()), close + 1)
            }
            _ if word_at(position, "not") && word_at(skip_blank(position + 3), "in") => (Kind::NotIn, skip_blank(position + 3) + 2),
            _ if word_at(position, "in") => (Kind::In, position + 2),
            _ if word_at(position, "contains") => (Kind::Contains, position + 8),
            _ if word_at(position, "starts") && word_at(skip_blank(position + 6), "with") => {
                (Kind::StartsWith, skip_blank(position + 6) + 4)
            }
            _ if word_at(position, "ends") && word_at(skip_blank(position + 4), "with") => (Kind::EndsWith, skip_blank(position + 4) + 4),
            _ if is_label_byte(byte) => {
                let end = label_end(position);
                (Kind::Label(text[position..end].to_string()), end)
            }
            _ => {
                let character = text[position..].chars().next().unwrap_or(' ');
                let end = position + character.len_utf8();
                let message = match byte {
                    b'=' => "expected `==`, found a single `=`".to_string(),
                    b'&' => "expected `&&`, found a single `&`".to_string(),
                    b'|' => "expected `||`, found a single `|`".to_string(),
                    _ => format!("unexpected character `{character}`"),
                };
                return Err(SelectorError { start, end, message });
            }
        };
        tokens.push(Token { kind, start, end });
        position = end;
    }
    tokens.push(Token { kind: Kind::End, start: text.len(), end: text.len() });
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    position: usize,
    text: &'a str,
    /// Parentheses and `!` open around the current token.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Token {
        self.tokens[self.position].clone()
    }

    fn next(&mut self) -> Token {
        let token = self.peek();
        if token.kind != Kind::End {
            self.position += 1;
        }
        token
    }

    fn error_at(&self, token: &Token, message: String) -> SelectorError {
        let (start, end) = if token.kind == Kind::End {
            let end = self.text.trim_end().len();
            (end.saturating_sub(1), end)
        } else {
            (token.start, token.end)
        };
        SelectorError { start, end, message }
    }

    fn expression(&mut self) -> Result<Selector, SelectorError> {
        let mut operands = vec![self.conjunction()?];
        while self.peek().kind == Kind::Or {
            self.next();
            operands.push(self.conjunction()?);
        }
        Ok(if operands.len() == 1 { operands.remove(0) } else { Selector::Or(operands) })
    }

    fn conjunction(&mut self) -> Result<Selector, SelectorError> {
        let mut operands = vec![self.unary()?];
        while self.peek().kind == Kind::And {
            self.next();
            operands.push(self.unary()?);
        }
        Ok(if operands.len() == 1 { operands.remove(0) } else { Selector::And(operands) })
    }

    /// Enters one more level of `!` or parentheses at `token`, or says it is one too many.
    fn deeper(&mut self, token: &Token) -> Result<(), SelectorError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_at(token, format!("the selector nests deeper than {MAX_DEPTH} levels of `!` and parentheses here")));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Selector, SelectorError> {
        if self.peek().kind == Kind::Not {
            let not = self.next();
            self.deeper(&not)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Selector::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Selector, SelectorError> {
        let token = self.next();
        match &token.kind {
            Kind::All => Ok(Selector::All),
            Kind::Global => Ok(Selector::Global),
            Kind::Has(key) => Ok(Selector::Has(key.clone())),
            Kind::LeftParen => {
                self.deeper(&token)?;
                let inner = self.expression()?;
                self.depth -= 1;
                let close = self.next();
                if close.kind != Kind::RightParen {
                    return Err(self.error_at(&close, format!("expected `)`, found {}", close.kind.describe())));
                }
                Ok(inner)
            }
            Kind::Label(key) => self.comparison(key.clone(), &token),
            other => Err(self.error_at(&token, format!("expected a label, `has(...)`, `all()`, `!` or `(`, found {}", other.describe()))),
        }
    }

    fn comparison(&mut self, key: String, key_token: &Token) -> Result<Selector, SelectorError> {
        let operator = self.next();
        match operator.kind {
            Kind::Equals => Ok(Selector::Equals(key, self.text_literal()?)),
            Kind::NotEquals => Ok(Selector::NotEquals(key, self.text_literal()?)),
            Kind::Contains => Ok(Selector::Contains(key, self.text_literal()?)),
            Kind::StartsWith => Ok(Selector::StartsWith(key, self.text_literal()?)),
            Kind::EndsWith => Ok(Selector::EndsWith(key, self.text_literal()?)),
            Kind::In => Ok(Selector::In(key, self.set()?)),
            Kind::NotIn => Ok(Selector::NotIn(key, self.set()?)),
            _ => {
                let mut error =
                    self.error_at(&operator, format!("expected an operator after label `{key}`, found {}", operator.kind.describe()));
                if operator.kind == Kind::End {
                    error.start = key_token.start;
                    error.end = key_token.end;
                    error.message = format!("label `{key}` needs an operator: `has({key})`, `{key} == 'value'`, ...");
                }
                Err(error)
            }
        }
    }

    fn text_literal(&mut self) -> Result<String, SelectorError> {
        let token = self.next();
        match &token.kind {
            Kind::Text(text) => Ok(text.clone()),
            Kind::Label(label) => Err(self.error_at(&token, format!("expected a quoted string, found label `{label}`: write '{label}'"))),
            other => Err(self.error_at(&token, format!("expected a quoted string, found {}", other.describe()))),
        }
    }

    fn set(&mut self) -> Result<Vec<String>, SelectorError> {
        let open = self.next();
        if open.kind != Kind::LeftBrace {
            return Err(self.error_at(&open, format!("expected `{{` to start a set, found {}", open.kind.describe())));
        }
        let mut values = Vec::new();
        if self.peek().kind == Kind::RightBrace {
            self.next();
            return Ok(values);
        }
        loop {
            values.push(self.text_literal()?);
            let separator = self.next();
            match &separator.kind {
                Kind::Comma => continue,
                Kind::RightBrace => return Ok(values),
                other => return Err(self.error_at(&separator, format!("expected `,` or `}}` in a set, found {}", other.describe()))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn grammar_and_matching() {
        let rr = labels(&[("route-reflector", "true"), ("rack", "r1")]);
        let plain = labels(&[("rack", "r2")]);
        let cases: &[(&str, bool, bool)] = &[
            ("all()", true, true),
            ("", true, true),
            ("has(route-reflector)", true, false),
            ("!has(route-reflector)", false, true),
            ("route-reflector == 'true'", true, false),
            ("route-reflector != \"true\"", false, true),
            ("rack in {'r1', 'r3'}", true, false),
            ("rack not in {'r1'}", false, true),
            ("rack starts with 'r' && rack ends with '2'", false, true),
            ("has(route-reflector) || rack contains '2'", true, true),
            ("!(has(route-reflector) && rack == 'r1')", false, true),
            ("all() && !has(x)", true, true),
        ];
        for (text, on_rr, on_plain) in cases {
            let selector = Selector::parse(text).unwrap_or_else(|error| panic!("{text}: {error:?}"));
            assert_eq!(selector.matches(&rr), *on_rr, "{text} on rr");
            assert_eq!(selector.matches(&plain), *on_plain, "{text} on plain");
        }
    }

    #[test]
    fn precedence_binds_and_tighter_than_or() {
        let selector = Selector::parse("has(a) || has(b) && has(c)").unwrap();
        assert_eq!(selector.to_string(), "(has(a) || (has(b) && has(c)))");
    }

    /// A chain of any length is one level, as in Calico; what nests is bounded, and the error
    /// points at the first `(` or `!` too many, however deep the text goes.
    #[test]
    fn nesting_is_bounded_and_chains_are_flat() {
        let chain = vec!["has(a)"; 100_000].join(" && ");
        assert!(Selector::parse(&chain).unwrap().matches(&labels(&[("a", "")])));
        let parenthesized = |depth: usize| format!("{}has(a){}", "(".repeat(depth), ")".repeat(depth));
        assert!(Selector::parse(&parenthesized(MAX_DEPTH)).is_ok());
        for text in [parenthesized(MAX_DEPTH + 1), parenthesized(10_000), format!("{}has(a)", "!".repeat(30_000))] {
            let error = Selector::parse(&text).unwrap_err();
            assert_eq!((error.start, error.end), (MAX_DEPTH, MAX_DEPTH + 1), "{}", error.message);
            assert!(error.message.contains("deeper than 64 levels"), "{}", error.message);
        }
        assert!(Selector::parse(&format!("{}has(a)", "!".repeat(MAX_DEPTH))).is_ok());
    }

    #[test]
    fn errors_point_into_the_text() {
        let cases = [
            ("has(route-reflector", 0, "not closed"),
            ("rack = 'r1'", 5, "single `=`"),
            ("rack == r1", 8, "quoted string"),
            ("rack in {'a' 'b'}", 13, "`,` or `}`"),
            ("has(a) &&", 8, "found end"),
            ("(has(a)", 6, "expected `)`"),
            ("rack", 0, "needs an operator"),
            ("has(a) has(b)", 7, "unexpected"),
            ("name == 'x", 8, "unterminated"),
        ];
        for (text, start, fragment) in cases {
            let error = Selector::parse(text).unwrap_err();
            assert_eq!(error.start, start, "{text}: {error:?}");
            assert!(error.message.contains(fragment), "{text}: {error:?}");
            assert!(error.end <= text.len() && error.start <= error.end, "{text}: {error:?}");
        }
    }
}
