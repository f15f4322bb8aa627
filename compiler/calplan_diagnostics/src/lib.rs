//! Spans, source files and diagnostics: the vocabulary every phase of calplan reports problems in.
//!
//! A [`Span`] is a byte range inside a file registered in a [`SourceMap`]; line and column are
//! computed only when a diagnostic is rendered.
//! Phases never print: they push [`Diagnostic`]s, and the CLI edge renders them through one of
//! the renderers in [`render`] (rustc-style through miette, JSON, SARIF 2.1.0, GitHub annotations).
//! This crate does no I/O.

mod diagnostic;
pub mod echo;
mod levels;
pub mod render;
mod rule;
mod source;
mod spanned;

pub use diagnostic::{Diagnostic, Diagnostics, Label, Severity};
pub use levels::{Allowed, Level, Origin, Setting, allowed_summary};
pub use rule::{Rule, overridable_by_group};
pub use source::{FileId, LineCol, SourceFile, SourceMap, Span};
pub use spanned::{Spanned, protocol as spanned_protocol};
