//! The grammars of the intent's free-text values, as the programs that read them accept them.
//!
//! Every string of the intent that reaches an artifact is checked against one of these before
//! anything is rendered: Kubernetes names for Secrets and their keys, interface names and
//! patterns as the kernel and Calico take them, and one line of printable text wherever text
//! reaches a comment or a line-oriented configuration. `docs/intent-grammar.md` states them for
//! operators; each returns what is wrong, in words, or `None`.

/// The most bytes of a Kubernetes name (DNS-1123 subdomain) or Secret data key.
pub const MAX_NAME_LENGTH: usize = 253;

/// The most bytes of a Linux interface name (`IFNAMSIZ` less the terminating NUL).
pub const MAX_INTERFACE_NAME_LENGTH: usize = 15;

/// The first character that cannot be written on one line of a configuration file: a C0 or C1
/// control character (newline, carriage return, tab, escape ...), DEL, or a Unicode line or
/// paragraph separator.
pub fn first_control_character(text: &str) -> Option<char> {
    text.chars().find(|&c| is_control_character(c))
}

/// Whether a character cannot stand on one line of a configuration file (see
/// [`first_control_character`]).
pub fn is_control_character(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `U+000A` for a newline, as messages name characters that do not print.
pub fn describe_character(c: char) -> String {
    match c {
        '\n' => "a line break".to_string(),
        '\r' => "a carriage return".to_string(),
        '\t' => "a tab".to_string(),
        _ if is_control_character(c) => format!("the control character U+{:04X}", c as u32),
        _ => format!("`{c}`"),
    }
}

/// A Secret's name: a DNS-1123 subdomain, as for every Kubernetes object.
pub fn secret_name_problem(name: &str) -> Option<String> {
    if crate::lower::is_dns_subdomain(name) {
        return None;
    }
    Some(if name.len() > MAX_NAME_LENGTH {
        format!("is {} bytes long; a Secret's name has at most {MAX_NAME_LENGTH}", name.len())
    } else {
        "is not a DNS-1123 subdomain (lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit)".to_string()
    })
}

/// A key of a Secret's data (Kubernetes' `IsConfigMapKey`): letters, digits, `-`, `_` and `.`,
/// at most 253 bytes, and neither `.` nor `..`.
pub fn secret_key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("is empty".to_string());
    }
    if key.len() > MAX_NAME_LENGTH {
        return Some(format!("is {} bytes long; a Secret's key has at most {MAX_NAME_LENGTH}", key.len()));
    }
    if key == "." || key == ".." {
        return Some(format!("may not be `{key}`"));
    }
    key.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .map(|c| format!("holds {}; a key is letters, digits, `-`, `_` and `.`", describe_character(c)))
}

/// An entry of `bgp.ignoredInterfaces`, as Calico validates it (`ignoredInterface` in
/// libcalico-go: `^[a-zA-Z0-9_.*-]{1,15}$`, and not `*` alone): an interface name, or a BIRD
/// pattern of one with `*` wildcards.
pub fn ignored_interface_problem(pattern: &str) -> Option<String> {
    if pattern == "*" {
        return Some("is `*`, which would ignore every interface".to_string());
    }
    interface_pattern_problem(pattern)
}

/// The `interface` of a BGPFilter rule, as Calico validates it (`bgpFilterInterface` in
/// libcalico-go: `*`, or `^[a-zA-Z0-9_.*-]{1,15}$`): an interface name, or a pattern with `*`
/// wildcards, which confd writes into BIRD's `ifname ~ "…"`.
pub fn filter_interface_problem(pattern: &str) -> Option<String> {
    interface_pattern_problem(pattern)
}

/// 1–15 of letters, digits, `_`, `.`, `-` and `*`: nothing that ends or bends a BIRD string.
fn interface_pattern_problem(pattern: &str) -> Option<String> {
    if pattern.is_empty() {
        return Some("is empty".to_string());
    }
    if let Some(c) = pattern.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '*' | '-'))) {
        return Some(format!("holds {}; an interface pattern is letters, digits, `_`, `.`, `-` and `*`", describe_character(c)));
    }
    (pattern.len() > MAX_INTERFACE_NAME_LENGTH)
        .then(|| format!("is {} characters long; interface names have at most {MAX_INTERFACE_NAME_LENGTH}", pattern.len()))
}

/// An interface name as the kernel accepts it (`dev_valid_name`): 1–15 bytes, not `.` or
/// `..`, no `/`, `:` or white space; and printable.
pub fn interface_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".to_string());
    }
    if name.len() > MAX_INTERFACE_NAME_LENGTH {
        return Some(format!("is {} bytes long; interface names have at most {MAX_INTERFACE_NAME_LENGTH}", name.len()));
    }
    if name == "." || name == ".." {
        return Some(format!("may not be `{name}`"));
    }
    name.chars()
        .find(|&c| matches!(c, '/' | ':') || c.is_whitespace() || is_control_character(c))
        .map(|c| format!("holds {}, which no interface name can", describe_character(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_and_keys_follow_kubernetes() {
        assert_eq!(secret_name_problem("bgp-secrets"), None);
        assert!(secret_name_problem("../../etc").is_some());
        assert!(secret_name_problem("Secret").is_some());
        assert!(secret_name_problem(&"a".repeat(254)).unwrap().contains("254 bytes"));
        assert_eq!(secret_key_problem("rr.password_1-a"), None);
        assert!(secret_key_problem("..").is_some());
        assert!(secret_key_problem("../../etc").unwrap().contains("`/`"));
        assert!(secret_key_problem("a\nb").unwrap().contains("a line break"));
        assert!(secret_key_problem("").is_some());
    }

    #[test]
    fn ignored_interfaces_follow_calico() {
        assert_eq!(ignored_interface_problem("docker*"), None);
        assert_eq!(ignored_interface_problem("eth0.100"), None);
        assert!(ignored_interface_problem("*").is_some());
        assert!(ignored_interface_problem("eth0\"").is_some());
        assert!(ignored_interface_problem("a\nprotocol").unwrap().contains("line break"));
        assert!(ignored_interface_problem("abcdefghijklmnop").is_some());
    }

    #[test]
    fn filter_interfaces_follow_calico() {
        assert_eq!(filter_interface_problem("*"), None);
        assert_eq!(filter_interface_problem("*.calico"), None);
        assert_eq!(filter_interface_problem("eth0"), None);
        assert!(filter_interface_problem("").is_some());
        assert!(filter_interface_problem("eth0\"").unwrap().contains("`\"`"));
        assert!(filter_interface_problem("eth0:1").is_some());
        assert!(filter_interface_problem("a\nb").unwrap().contains("line break"));
        assert!(filter_interface_problem("abcdefghijklmnop").unwrap().contains("16 characters"));
    }

    #[test]
    fn interface_names_follow_the_kernel() {
        assert_eq!(interface_name_problem("eth0"), None);
        assert_eq!(interface_name_problem("veth@x+1"), None);
        assert!(interface_name_problem("..").is_some());
        assert!(interface_name_problem("eth 0").is_some());
        assert!(interface_name_problem("eth0:1").is_some());
        assert!(interface_name_problem("a\u{7f}").is_some());
        assert!(interface_name_problem("abcdefghijklmnop").is_some());
    }

    #[test]
    fn control_characters_include_unicode_line_breaks() {
        assert_eq!(first_control_character("one line"), None);
        assert_eq!(first_control_character("a\u{2028}b"), Some('\u{2028}'));
        assert_eq!(first_control_character("a\u{85}b"), Some('\u{85}'));
        assert_eq!(describe_character('\u{1b}'), "the control character U+001B");
    }
}
