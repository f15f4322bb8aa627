//! `nodes/<node>/rules.nft`: the node's firewall rules (see [`crate::rules_model`]) as an
//! nftables script for `nft -f`, in calplan's own `ip`/`ip6 calplan` tables and nowhere else.
//!
//! Reloading is safe because the script creates each table when it is missing, deletes it and
//! defines it again, and nft applies a file as one transaction: loading it twice leaves exactly
//! what loading it once does, and a rule dropped from the intent disappears. This module only
//! renders; it never runs nft.

use crate::rules_model::ClusterRules;
use crate::{Artifact, Context, Target, TemplateError, per_node};

pub struct Nft;

impl Target for Nft {
    fn name(&self) -> &'static str {
        "nft"
    }

    fn render(&self, context: &Context) -> Result<Vec<Artifact>, TemplateError> {
        let cluster = ClusterRules::new(context.analysis);
        per_node(context, |view| {
            let text = context.templates.render("rules.nft.j2", &cluster.for_node(view))?;
            Ok(vec![Artifact::new(format!("{}/rules.nft", view.directory()), text, view.source())])
        })
    }
}
