//! Placeholder: being written.

use crate::{Artifact, Context, Target, TemplateError};

pub struct Iptables;

impl Target for Iptables {
    fn name(&self) -> &'static str {
        "iptables"
    }

    fn render(&self, _context: &Context) -> Result<Vec<Artifact>, TemplateError> {
        Ok(Vec::new())
    }
}
