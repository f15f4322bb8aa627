//! `nodes/<node>/rules.iptables`: the node's firewall rules (see [`crate::rules_model`]) in
//! `iptables-restore` format, for `iptables-restore --noflush`, in calplan's own `CALPLAN-*`
//! chains, which the file empties and fills again on every load.
//!
//! iptables-restore has no "insert unless present", so the jumps from the built-in chains are
//! the one thing a reload repeats: [`HOOKS`] names them, and the loader removes the repeats
//! (apply keeps the first, just inserted at the top, and deletes the others). IPv4 only, as
//! iptables-restore is; `rules.nft` carries IPv6. This module only renders; it never runs
//! iptables.

use crate::rules_model::{ClusterRules, Family, FamilyRules};
use crate::{Artifact, Context, Target, TemplateError, per_node};
use serde::Serialize;

/// The jumps the file inserts into built-in chains, as `(table, built-in chain, calplan
/// chain)`: after a reload each is there twice, and a loader deletes all but one (or deletes
/// them all with `iptables -t TABLE -D CHAIN -j TARGET` before reloading).
pub const HOOKS: &[(&str, &str, &str)] = &[("filter", "INPUT", "CALPLAN-INPUT"), ("nat", "POSTROUTING", "CALPLAN-POSTROUTING")];

pub struct Iptables;

impl Target for Iptables {
    fn name(&self) -> &'static str {
        "iptables"
    }

    fn render(&self, context: &Context) -> Result<Vec<Artifact>, TemplateError> {
        let cluster = ClusterRules::new(context.analysis);
        per_node(context, |view| {
            let rules = cluster.for_node(view);
            let config = IptablesConfig {
                ipv6_left_out: rules.families.iter().any(|family| family.family == Family::Ipv6),
                rules: rules.families.into_iter().find(|family| family.family == Family::Ipv4),
                node: rules.node,
                cluster: rules.cluster,
            };
            let text = context.templates.render("rules.iptables.j2", &config)?;
            Ok(vec![Artifact::new(format!("{}/rules.iptables", view.directory()), text, view.source())])
        })
    }
}

/// What `rules.iptables.j2` renders.
#[derive(Serialize)]
struct IptablesConfig {
    node: String,
    cluster: String,
    /// The IPv4 rules; `None` for a node without IPv4, whose chains are left empty.
    rules: Option<FamilyRules>,
    /// The node has IPv6 rules, which only `rules.nft` holds.
    ipv6_left_out: bool,
}
