//! The minijinja templates in `targets/templates/`, built in, each overridable by file name.

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior};
use std::collections::BTreeMap;
use std::fmt;

/// The built-in templates, by file name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("bird.cfg.j2", include_str!("../templates/bird.cfg.j2")),
    ("bird-calico.cfg.j2", include_str!("../templates/bird-calico.cfg.j2")),
    ("frr.conf.j2", include_str!("../templates/frr.conf.j2")),
    ("ios.cfg.j2", include_str!("../templates/ios.cfg.j2")),
    ("junos.set.j2", include_str!("../templates/junos.set.j2")),
    ("routes.sh.j2", include_str!("../templates/routes.sh.j2")),
    ("rules.iptables.j2", include_str!("../templates/rules.iptables.j2")),
    ("rules.nft.j2", include_str!("../templates/rules.nft.j2")),
];

#[derive(Debug)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

impl From<minijinja::Error> for TemplateError {
    fn from(error: minijinja::Error) -> TemplateError {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        TemplateError(message)
    }
}

/// The templates whose values sit inside double-quoted strings, where a `"` or `\` would end
/// or bend the string.
const QUOTING_TEMPLATES: &[&str] = &["bird.cfg.j2", "bird-calico.cfg.j2", "junos.set.j2"];

/// Writes a value into a template, refusing what could break out of where it is put: a
/// control character or line break anywhere (every artifact is line-oriented, and a line break
/// in a comment starts a live line), and `"` or `\` in the templates that quote values. The
/// check passes only grammatical values on (see `calplan_model::grammar`); this is the second
/// line of defence, for values that reach a template some other way (current state, a
/// template override).
fn refuse_what_would_escape(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    // A macro's output (bird-calico.cfg.j2's `session`) is marked safe by the `calplan` escape
    // mode: every value in it went through this check when the macro wrote it, and its own line
    // breaks are the template's.
    if value.is_undefined() || value.is_none() || value.is_safe() {
        return write!(out, "{value}").map_err(minijinja::Error::from);
    }
    let text = value.to_string();
    let quoting = QUOTING_TEMPLATES.contains(&state.name());
    let bad = text.chars().find(|&c| calplan_model::grammar::is_control_character(c) || quoting && matches!(c, '"' | '\\'));
    if let Some(c) = bad {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!(
                "refusing to write {text:?}: it holds {}, which would change the configuration around it",
                calplan_model::grammar::describe_character(c)
            ),
        ));
    }
    write!(out, "{value}").map_err(minijinja::Error::from)
}

/// The template set a compile renders with.
#[derive(Clone)]
pub struct Templates {
    environment: Environment<'static>,
}

impl Templates {
    /// The built-in templates, with `overrides` (file name → text) replacing any of them.
    pub fn new(overrides: BTreeMap<String, String>) -> Result<Templates, TemplateError> {
        for name in overrides.keys() {
            if !BUILTIN.iter().any(|(builtin, _)| builtin == name) {
                let known: Vec<&str> = BUILTIN.iter().map(|(name, _)| *name).collect();
                return Err(TemplateError(format!(
                    "`{name}` overrides no template; the templates are {}",
                    known.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let mut environment = Environment::new();
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        environment.set_syntax(
            SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .map_err(TemplateError::from)?,
        );
        // No escaping but this formatter's; a custom mode so that a macro's output is marked
        // safe rather than checked again as one value.
        environment.set_auto_escape_callback(|_| minijinja::AutoEscape::Custom("calplan".into()));
        environment.set_formatter(refuse_what_would_escape);
        for (name, text) in BUILTIN {
            let text = overrides.get(*name).cloned().unwrap_or_else(|| text.to_string());
            environment
                .add_template_owned(name.to_string(), text)
                .map_err(|error| TemplateError(format!("template `{name}`: {}", TemplateError::from(error))))?;
        }
        Ok(Templates { environment })
    }

    pub fn builtin() -> Templates {
        Templates::new(BTreeMap::new()).expect("built-in templates compile")
    }

    /// Renders a template with a serializable context.
    pub fn render<T: serde::Serialize>(&self, name: &str, context: &T) -> Result<String, TemplateError> {
        let template = self.environment.get_template(name)?;
        template
            .render(minijinja::Value::from(minijinja::value::Serde(context)))
            .map_err(|error| TemplateError(format!("template `{name}`: {}", TemplateError::from(error))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, value: &str) -> Result<String, TemplateError> {
        let overrides = BTreeMap::from([(template.to_string(), "interface -\"{{ value }}\";\n".to_string())]);
        Templates::new(overrides).unwrap().render(template, &serde_json::json!({ "value": value }))
    }

    #[test]
    fn values_that_would_escape_their_place_are_refused() {
        assert_eq!(render("bird.cfg.j2", "eth*").unwrap(), "interface -\"eth*\";\n");
        let injected = render("bird.cfg.j2", "x\";\nprotocol static { route 0.0.0.0/0 blackhole; }\n#").unwrap_err();
        assert!(injected.0.contains("refusing to write"), "{injected}");
        assert!(render("bird.cfg.j2", "a\\b").is_err());
        assert!(render("frr.conf.j2", "x\nip route 0.0.0.0/0 blackhole").is_err());
        assert!(render("frr.conf.j2", "a\u{2028}b").is_err());
        // A macro's lines are the template's own; the values inside are checked as it writes them.
        let overrides = BTreeMap::from([(
            "bird-calico.cfg.j2".to_string(),
            "{% macro m(v) %}a\n-\"{{ v }}\";\n{% endmacro %}{{ m(value) }}".to_string(),
        )]);
        let templates = Templates::new(overrides).unwrap();
        assert_eq!(templates.render("bird-calico.cfg.j2", &serde_json::json!({ "value": "eth0" })).unwrap(), "a\n-\"eth0\";\n");
        assert!(templates.render("bird-calico.cfg.j2", &serde_json::json!({ "value": "x\";\n#" })).is_err());
        // Outside the quoting templates a quote is plain text.
        assert!(render("frr.conf.j2", "say \"hi\"").is_ok());
    }
}
