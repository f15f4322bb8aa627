//! How much of an input a diagnostic repeats.
//!
//! Messages quote values in backticks (`` `name` ``); an input can hold a value of megabytes,
//! and repeating it in a message, a label and a help line, once per rule that trips on it,
//! turns a 50 MB name into hundreds of megabytes of output. Every text a [`Diagnostic`] carries
//! goes through [`limit`] when it is made, so every renderer (human, JSON, SARIF, GitHub)
//! prints the same bounded text; the human renderer also shows only a window of a long source
//! line. `docs/limits.md` gives the figures and why.
//!
//! [`Diagnostic`]: crate::Diagnostic

/// A value quoted in backticks longer than this many characters is shortened.
pub const MAX_QUOTED_CHARS: usize = 64;

/// A message, label or help text longer than this many characters is cut.
pub const MAX_TEXT_CHARS: usize = 1024;

/// Characters kept from the start and from the end of a shortened quoted value.
const QUOTED_HEAD: usize = 40;
const QUOTED_TAIL: usize = 16;

/// `text` with every backtick-quoted value longer than [`MAX_QUOTED_CHARS`] shortened to its
/// first and last characters around `…` (saying how long it was), and the whole cut at
/// [`MAX_TEXT_CHARS`]. Text within the limits is returned unchanged.
pub fn limit(text: &str) -> String {
    let quoted = shorten_quoted(text);
    cut(&quoted, MAX_TEXT_CHARS)
}

fn shorten_quoted(text: &str) -> String {
    if text.len() <= MAX_QUOTED_CHARS {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len().min(4 * MAX_TEXT_CHARS));
    let mut rest = text;
    while let Some(open) = rest.find('`') {
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('`') else {
            // An unmatched backtick: the remainder is not a quoted value, only too long.
            rest = after;
            break;
        };
        out.push_str(&shorten(&after[..close]));
        out.push('`');
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// A value of more than [`MAX_QUOTED_CHARS`] characters as its head, `…`, its tail and its
/// length; shorter values unchanged.
pub fn shorten(value: &str) -> String {
    let count = value.chars().count();
    if count <= MAX_QUOTED_CHARS {
        return value.to_string();
    }
    let head: String = value.chars().take(QUOTED_HEAD).collect();
    let tail: String = value.chars().skip(count - QUOTED_TAIL).collect();
    format!("{head}…{tail} ({} bytes)", value.len())
}

/// `text` cut to `max` characters, saying how much was left out.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => format!("{}… ({} more bytes)", &text[..end], text.len() - end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_are_unchanged() {
        let text = "`cs1-k8s-m1.zpepc.com.cn` is not a DNS-1123 subdomain";
        assert_eq!(limit(text), text);
        assert_eq!(limit("a ` lone backtick"), "a ` lone backtick");
    }

    #[test]
    fn long_quoted_values_keep_their_ends_and_say_their_length() {
        let name = format!("{}-X", "a".repeat(5 << 20));
        let message = limit(&format!("`{name}` is not a DNS-1123 subdomain; `{name}` again"));
        assert!(message.len() < 300, "{message}");
        assert!(message.starts_with(&format!("`{}…{}-X (5242882 bytes)` is not", "a".repeat(40), "a".repeat(14))), "{message}");
        assert!(message.ends_with(" bytes)` again"), "{message}");
    }

    #[test]
    fn long_unquoted_text_is_cut_on_a_character_boundary() {
        let text = "é".repeat(5000);
        let limited = limit(&text);
        assert_eq!(limited.chars().filter(|c| *c == 'é').count(), MAX_TEXT_CHARS);
        assert!(limited.ends_with(&format!("… ({} more bytes)", (5000 - MAX_TEXT_CHARS) * 2)), "{limited}");
        let unmatched = format!("`{}", "x".repeat(5000));
        assert!(limit(&unmatched).len() < 1100);
    }
}
