//! BGPFilters as confd renders them (`confd/pkg/resource/template/template_funcs.go`,
//! `BGPFilterBIRDFuncs` and `BGPFilterFunctionName`): one BIRD function per filter, direction
//! and family, named `'bgp_<name>_<direction>FilterV<family>'`, the name truncated and hashed
//! when the symbol would pass BIRD's 64 characters.
//!
//! Every value here was checked when the intent was lowered (the CIDR parsed and is of the
//! list's family, the interface is Calico's pattern, the name a DNS subdomain), so what lands
//! in BIRD's text is digits, hex, `.`, `:`, `/`, `*`, `-` and `_` inside quotes.

use calplan_model::{BgpFilter, FilterAction, FilterRule, FilterSource, MatchOperator};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One line of the filter functions. A rule that matches an interface carries its pattern
/// apart, so that the template, not the value, writes the quotes around it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FilterLine {
    pub before: String,
    /// The interface pattern, which goes between quotes after `before`.
    pub pattern: Option<String>,
    pub after: String,
}

impl FilterLine {
    fn text(text: String) -> FilterLine {
        FilterLine { before: text, pattern: None, after: String::new() }
    }

    /// The line as BIRD reads it.
    #[cfg(test)]
    fn joined(&self) -> String {
        match &self.pattern {
            Some(pattern) => format!("{}\"{pattern}\"{}", self.before, self.after),
            None => format!("{}{}", self.before, self.after),
        }
    }
}

/// BIRD's longest symbol.
const MAX_SYMBOL: usize = 64;

/// The quoted function name confd gives a filter's rules for a direction and family.
pub fn function_name(filter: &str, export: bool, v6: bool) -> String {
    let direction = if export { "export" } else { "import" };
    let version = if v6 { "6" } else { "4" };
    let fixed = "bgp_".len() + "_".len() + direction.len() + "FilterV".len() + version.len();
    let name = truncate_and_hash(filter, MAX_SYMBOL - fixed);
    format!("'bgp_{name}_{direction}FilterV{version}'")
}

/// confd's `truncateAndHashName`: a name longer than `max` keeps its first `max - 17`
/// characters, then `_` and the first 16 hex digits (upper case) of its SHA-256.
fn truncate_and_hash(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02X}")).collect();
    format!("{}_{}", &name[..max - 17], &hex[..16])
}

/// The lines `bgpFilterBIRDFuncs` returns for one family: every filter with rules for it, in
/// name order, or `# No v<family> BGPFilters configured`.
pub fn function_lines(filters: &[&BgpFilter], v6: bool) -> Vec<FilterLine> {
    let version = if v6 { "6" } else { "4" };
    let mut lines = Vec::new();
    for filter in filters {
        let imports = filter.rules(false, v6);
        let exports = filter.rules(true, v6);
        if imports.is_empty() && exports.is_empty() {
            continue;
        }
        lines.push(FilterLine::text(format!("# v{version} BGPFilter {}", filter.name.value)));
        for (export, rules) in [(false, imports), (true, exports)] {
            if rules.is_empty() {
                continue;
            }
            lines.push(FilterLine::text(format!("function {}() {{", function_name(&filter.name.value, export, v6))));
            lines.extend(rules.iter().map(|rule| statement(rule, v6)));
            lines.push(FilterLine::text("}".to_string()));
        }
    }
    if lines.is_empty() {
        lines.push(FilterLine::text(format!("# No v{version} BGPFilters configured")));
    }
    lines
}

/// One rule: `if (<conditions joined by &&>) then { <action>; }`, or the bare action, indented
/// by two spaces. The interface condition is the last, so its pattern splits the line in two.
fn statement(rule: &FilterRule, v6: bool) -> FilterLine {
    let action = match rule.action {
        FilterAction::Accept => "accept;",
        FilterAction::Reject => "reject;",
    };
    let mut conditions = Vec::new();
    if let (Some(cidr), Some(operator)) = (&rule.cidr, rule.match_operator) {
        let operator = match operator {
            MatchOperator::Equal => "=",
            MatchOperator::NotEqual => "!=",
            MatchOperator::In => "~",
            MatchOperator::NotIn => "!~",
        };
        let prefix = match rule.prefix_length {
            Some((min, max)) => {
                let written = i32::from(cidr.net.prefix_len());
                let longest = if v6 { 128 } else { 32 };
                let min = min.map_or(written, |min| min.max(written));
                let max = max.map_or(longest, |max| max.min(longest));
                format!("[ {}{{{min},{max}}} ]", cidr.text)
            }
            None => cidr.text.clone(),
        };
        conditions.push(format!("(net {operator} {prefix})"));
    }
    if let Some(FilterSource::RemotePeers) = rule.source {
        conditions.push("((defined(source))&&(source ~ [ RTS_BGP ]))".to_string());
    }
    let pattern = rule.interface.as_ref().map(|interface| interface.value.clone());
    if pattern.is_some() {
        conditions.push("((defined(ifname))&&(ifname ~ ".to_string());
    }
    if conditions.is_empty() {
        return FilterLine::text(format!("  {action}"));
    }
    let before = format!("  if ({}", conditions.join("&&"));
    let after = if pattern.is_some() { format!("))) then {{ {action} }}") } else { format!(") then {{ {action} }}") };
    FilterLine { before, pattern, after }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calplan_diagnostics::Spanned;
    use calplan_model::CidrText;

    #[test]
    fn rules_read_as_confd_writes_them() {
        let at = calplan_diagnostics::Span::default();
        let rule = FilterRule {
            action: FilterAction::Reject,
            cidr: Some(Spanned::new(CidrText { net: "9000:1::/64".parse().unwrap(), text: "9000:1::0/64".into() }, at)),
            match_operator: Some(MatchOperator::In),
            prefix_length: None,
            source: Some(FilterSource::RemotePeers),
            interface: Some(Spanned::new("*.calico".to_string(), at)),
            span: at,
        };
        // Calico's own fixture (`bgpfilter/v6_only`).
        assert_eq!(
            statement(&rule, true).joined(),
            "  if ((net ~ 9000:1::0/64)&&((defined(source))&&(source ~ [ RTS_BGP ]))&&((defined(ifname))&&(ifname ~ \"*.calico\"))) then { reject; }"
        );
        let bare = FilterRule { cidr: None, match_operator: None, source: None, interface: None, ..rule.clone() };
        assert_eq!(statement(&bare, true).joined(), "  reject;");
        let lengths = FilterRule { prefix_length: Some((Some(24), None)), source: None, interface: None, ..rule };
        assert_eq!(statement(&lengths, true).joined(), "  if ((net ~ [ 9000:1::0/64{64,128} ])) then { reject; }");
    }

    #[test]
    fn names_fit_birds_symbols_as_confd_shortens_them() {
        assert_eq!(function_name("test-filter", false, false), "'bgp_test-filter_importFilterV4'");
        // 45 characters fit exactly; 46 are cut to 28 and a hash.
        let fits = "45characters.exactly.so.should.not.truncate-1";
        assert_eq!(fits.len(), 45);
        assert_eq!(function_name(fits, true, true), format!("'bgp_{fits}_exportFilterV6'"));
        // Calico's own fixture (`bgpfilter/filter_names`).
        assert_eq!(
            function_name("46characters.exactly.so.should.truncate-123456", false, false),
            "'bgp_46characters.exactly.so.shou_9615CBDC00BAC628_importFilterV4'"
        );
    }
}
