//! The plan: what `plan -o` saves, `show` prints and `apply` carries out.
//!
//! One type serves the planner, the renderers and the executor (as in Oxide's reconfigurator):
//! the executor makes no choice the plan does not record. What people read of a plan — each
//! change's diff, the groups, the summary — is not part of it: it is computed, every time, from
//! the `before` and `after` that apply compares and writes ([`Change::diff`], [`Plan::summary`]),
//! so what `show` prints and what `apply` confirms cannot differ from what apply does. The file
//! form (`file.rs`) is versioned, carries a digest of its content, and its schema is
//! `schemas/plan.schema.json`.

use calplan_model::NodeAgent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The intent the plan was made from.
    pub intent: Fingerprint,
    /// Every current-state source, fingerprinted, so `apply` can tell a stale plan.
    pub current: Vec<SourceFingerprint>,
    /// The node inventory (`--nodes FILE`) the plan was made with, fingerprinted likewise.
    pub nodes: Option<Fingerprint>,
    /// Who runs the nodes (`spec.nodeAgent`): which node files the plan loads, and how apply
    /// reads sessions for the barriers (calico-node's BIRD 1.x sockets, or BIRD 2's).
    pub node_agent: NodeAgent,
    /// Each router's platform (`linux`, `frr`, `ios`, `junos`) from the intent: which of its
    /// files apply loads (an inventory's `platform` wins).
    pub router_platforms: BTreeMap<String, String>,
    pub stages: Vec<Stage>,
    /// What the planner could not know or had to assume, in words.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fingerprint {
    pub name: String,
    pub sha256: String,
}

/// A current-state source as it was read: its digest, and a digest of each resource in it so
/// that a stale plan can say which resource changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceFingerprint {
    pub name: String,
    pub kind: String,
    pub sha256: String,
    /// `Kind/name` → digest of what calplan compares, for Calico resources.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, String>,
    /// Path → sha256 of each file of an earlier compile or apply directory, so that a stale
    /// plan can say which file changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
}

/// Terraform's counts, plus replacements on their own (they are the disruptive ones). The
/// counts are of what calplan does; informational changes (what calico-node does as a
/// consequence) are counted apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    pub replace: usize,
    /// Changes shown as information only (see [`Change::informational`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub informational: usize,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

impl Summary {
    /// The counts of a plan's changes.
    pub fn of<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Summary {
        let mut summary = Summary::default();
        for change in changes {
            if change.informational {
                summary.informational += 1;
                continue;
            }
            match change.action {
                Action::Create => summary.add += 1,
                Action::Update => summary.change += 1,
                Action::Delete => summary.destroy += 1,
                Action::Replace => summary.replace += 1,
            }
        }
        summary
    }

    pub fn is_empty(&self) -> bool {
        self.add + self.change + self.destroy + self.replace == 0
    }

    /// `Plan: 3 to add, 2 to change, 1 to destroy, 1 to replace.`
    pub fn line(&self) -> String {
        format!("Plan: {} to add, {} to change, {} to destroy, {} to replace.", self.add, self.change, self.destroy, self.replace)
    }
}

/// One step of the plan: its changes, then a barrier that must hold before the next stage.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    /// 1-based: the stages of a plan are numbered 1, 2, 3… in order.
    pub number: usize,
    pub title: String,
    /// Why this stage comes here.
    pub reason: String,
    /// What the stage disrupts, if anything: sessions reset, routes withdrawn, pods recreated.
    pub disruption: Option<String>,
    pub changes: Vec<Change>,
    /// Steps calplan cannot take itself, such as recreating pods.
    pub manual: Vec<String>,
    pub barrier: Option<Barrier>,
    /// `calicoctl node status` per node once the stage is done, when the stage changes BGP.
    pub expected_status: BTreeMap<String, Vec<StatusRow>>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusRow {
    pub peer_address: String,
    pub peer_type: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
    /// Delete, then create: for what cannot be changed in place.
    Replace,
}

impl Action {
    /// Terraform's symbols.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::Replace => "-/+",
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Replace => "replace",
        }
    }
}

/// Where a change lands.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Target {
    /// A Calico resource in the datastore.
    Calico,
    /// A file on a node.
    Node { node: String },
    /// A file on a router or host outside the cluster.
    Router { router: String },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub action: Action,
    /// `IPPool`, `BGPPeer`, `BGPConfiguration`, `BGPFilter`, `Node`, or the artifact kind (`bird.cfg`,
    /// `routes`, `rules.nft`, `routes.sh`, `frr.conf`, `route-pins`, …).
    pub kind: String,
    /// The resource's name, or the node or router the file is on.
    pub name: String,
    pub target: Target,
    /// The resource (JSON) or file as it stands, for compare-and-swap and rollback.
    pub before: Option<Content>,
    /// The resource (JSON) or file to write; absent for a delete.
    pub after: Option<Content>,
    /// Why the change is made this way, in words.
    pub reason: Option<String>,
    /// Information, not an action: what another agent makes of the plan's changes (on a
    /// calico-node node, confd's new render of BIRD's configuration and the routes BIRD and
    /// Felix program). Apply never writes it; it records it in the state once the stage is
    /// done, so that the next plan and `verify` compare against it.
    pub informational: bool,
}

impl Change {
    /// What the diff is headed with: `IPPool/name` for a resource, the artifact's path
    /// (`nodes/<node>/rules.nft`) for a file.
    pub fn path(&self) -> String {
        match &self.target {
            Target::Calico => format!("{}/{}", self.kind, self.name),
            Target::Node { node } => format!("nodes/{node}/{}", self.kind),
            Target::Router { router } => format!("routers/{router}/{}", self.kind),
        }
    }

    /// The unified diff a reviewer reads, secrets redacted, computed from `before` and `after`
    /// — the content apply compares and writes — and never stored: a resource as its
    /// reviewable view (`diff::display`), a file as its text.
    pub fn diff(&self) -> String {
        let (before, after) = match &self.target {
            Target::Calico => crate::diff::resource_texts(&self.kind, self.before.as_ref(), self.after.as_ref()),
            _ => (file_text(self.before.as_ref()), file_text(self.after.as_ref())),
        };
        crate::diff::redact(&crate::diff::unified(&self.path(), &before, &after))
    }
}

/// A file's text as a diff shows it; a resource where a file belongs shows as its JSON.
fn file_text(content: Option<&Content>) -> String {
    match content {
        None => String::new(),
        Some(Content::File { text }) => text.clone(),
        Some(Content::Resource { value }) => serde_json::to_string_pretty(value).unwrap_or_default() + "\n",
    }
}

/// A resource or a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Content {
    Resource {
        #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
        value: serde_json::Value,
    },
    File {
        text: String,
    },
}

/// What must hold before the next stage starts, checked against real state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Barrier {
    /// Every listed node has these BIRD protocols Established.
    SessionsEstablished {
        description: String,
        sessions: BTreeMap<String, Vec<String>>,
        /// The listed nodes that are route reflectors once the stage is done: observed first
        /// when only some nodes can be observed at a time (`apply --observe node-status`).
        #[serde(default, rename = "routeReflectors", skip_serializing_if = "Vec::is_empty")]
        route_reflectors: Vec<String>,
        /// The BIRD protocols the stage removes, per node: the barrier also waits until BIRD no
        /// longer lists them (on calico-node, until confd's new render is loaded), so that a
        /// stage never starts while the one before is still taking sessions down.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        gone: BTreeMap<String, Vec<String>>,
    },
    /// No address of the pool is allocated any more.
    PoolEmpty { description: String, pool: String, cidr: String },
    /// These routes are in the kernel of each listed node or router.
    RoutesPresent { description: String, routes: BTreeMap<String, Vec<String>> },
    /// On calico-node nodes: confd has rendered what the plan predicts for each node in
    /// `renders` (its `bird-calico.cfg` or `bird6-calico.cfg` in this plan, each named by
    /// [`crate::current::text_digest`]), BIRD has loaded each render since it was written, and
    /// each node in `routes` holds these routes. Blocks inside `unplacedPools` are left out of
    /// both: no live IPAM told the plan where they are, and Calico's IPAM places them as pods
    /// arrive (each node from a starting block its host name seeds), not where the plan's
    /// forecast put them.
    RenderLoaded {
        description: String,
        renders: BTreeMap<String, Vec<String>>,
        routes: BTreeMap<String, Vec<String>>,
        #[serde(default, rename = "unplacedPools", skip_serializing_if = "Vec::is_empty")]
        unplaced_pools: Vec<String>,
    },
}

impl Barrier {
    pub fn description(&self) -> &str {
        match self {
            Barrier::SessionsEstablished { description, .. }
            | Barrier::PoolEmpty { description, .. }
            | Barrier::RoutesPresent { description, .. }
            | Barrier::RenderLoaded { description, .. } => description,
        }
    }
}

impl Plan {
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.stages.iter().flat_map(|stage| &stage.changes)
    }

    /// Terraform's counts, from the changes.
    pub fn summary(&self) -> Summary {
        Summary::of(self.changes())
    }

    /// Whether the plan has nothing for calplan to do (informational changes alone are not
    /// work: they say what calico-node renders differently, which no apply changes).
    pub fn is_empty(&self) -> bool {
        self.stages.iter().all(|stage| stage.changes.iter().all(|change| change.informational) && stage.manual.is_empty())
    }

    /// The plan file: stable JSON with its digest, the diffs, groups and summary included for
    /// tools (`plan --format json` prints the same).
    pub fn to_json(&self) -> String {
        crate::file::write(self)
    }

    /// Reads a plan file, refusing one that is malformed, edited or of another format, with
    /// the line and column where it breaks.
    pub fn from_json(text: &str) -> Result<Plan, crate::file::PlanFileError> {
        crate::file::read(text)
    }
}

/// The plan's JSON Schema, as `schemas/plan.schema.json` holds it.
pub fn schema_text() -> String {
    crate::file::schema_text()
}

/// The line of a `route-pins` file that asks apply to pin, inside the pools it names, BIRD's
/// routes as the node holds them when the file is loaded, in place of the file's own lines
/// there: where Calico's IPAM placed a new pool's blocks is known only once pods are there.
pub fn placed_pins_line(pools: &[ipnet::IpNet]) -> String {
    let pools: Vec<String> = pools.iter().map(ToString::to_string).collect();
    format!("{PLACED_PINS} {}, BIRD's routes as the node holds them when this is loaded", pools.join(" "))
}

/// The pools a [`placed_pins_line`] names, if `line` is one.
pub fn placed_pins_pools(line: &str) -> Option<Vec<ipnet::IpNet>> {
    let (pools, _) = line.strip_prefix(PLACED_PINS)?.split_once(", BIRD's routes")?;
    pools.split_whitespace().map(|pool| pool.parse().ok()).collect()
}

const PLACED_PINS: &str = "# and, inside";
