//! Placeholder: being written.

use crate::{Artifact, Context, Target, TemplateError};

pub struct Bird;

impl Target for Bird {
    fn name(&self) -> &'static str {
        "bird"
    }

    fn render(&self, _context: &Context) -> Result<Vec<Artifact>, TemplateError> {
        Ok(Vec::new())
    }
}
