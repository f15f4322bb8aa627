//! Placeholder: being written.

use crate::{Artifact, Context, Target, TemplateError};

pub struct Routers;

impl Target for Routers {
    fn name(&self) -> &'static str {
        "routers"
    }

    fn render(&self, _context: &Context) -> Result<Vec<Artifact>, TemplateError> {
        Ok(Vec::new())
    }
}
