//! Placeholder: being written.

use crate::{Artifact, Context, Target, TemplateError};

pub struct Routes;

impl Target for Routes {
    fn name(&self) -> &'static str {
        "routes"
    }

    fn render(&self, _context: &Context) -> Result<Vec<Artifact>, TemplateError> {
        Ok(Vec::new())
    }
}
