//! Placeholder: being written.

use crate::{Artifact, Context, Target, TemplateError};

pub struct BirdCalico;

impl Target for BirdCalico {
    fn name(&self) -> &'static str {
        "bird-calico"
    }

    fn render(&self, _context: &Context) -> Result<Vec<Artifact>, TemplateError> {
        Ok(Vec::new())
    }
}
