//! The intent's surface syntax: YAML with a span on every node, the serde types it
//! deserializes into, and the JSON Schema generated from them.
//!
//! This crate knows YAML and the intent's field names; it knows nothing of what the values
//! mean. It does no I/O: callers hand it text registered in a `SourceMap`.

pub mod de;
pub mod intent;
pub mod json;
pub mod node_rules;
mod parse;
pub mod rules;
pub mod schema;
pub mod yaml;

pub use calplan_diagnostics::Spanned;
pub use parse::{ParsedIntent, TagPolicy, parse_intent, read_yaml, repair_tags, yaml_diagnostic};
