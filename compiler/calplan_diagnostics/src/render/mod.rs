//! Renderers: the same diagnostics as rustc-style text, JSON, SARIF 2.1.0 or GitHub workflow
//! commands. Each returns a `String`; writing it out is the caller's business.

mod github;
mod human;
mod json;
mod sarif;

pub use github::github;
pub use human::human;
pub use json::json;
pub use sarif::sarif;
