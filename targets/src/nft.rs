//! Placeholder: being written.

use crate::{Artifact, Context, Target, TemplateError};

pub struct Nft;

impl Target for Nft {
    fn name(&self) -> &'static str {
        "nft"
    }

    fn render(&self, _context: &Context) -> Result<Vec<Artifact>, TemplateError> {
        Ok(Vec::new())
    }
}
