//! The plan file: what `plan -o` writes, `plan --format json` prints, and `show` and `apply`
//! read.
//!
//! One JSON document, versioned, with everything apply executes (each change's `before` and
//! `after`) and, for tools, what people read of it: each change's `diff`, each stage's
//! `groups` and the `summary`. Those are computed from `before` and `after` when the file is
//! written, and again when it is read: a file whose diffs, groups or summary are not what its
//! content gives is refused, so a reviewer who read the file's diffs read what apply writes.
//!
//! `digest` is `sha256:` and the digest of the document's content (compact JSON, fields in
//! schema order, `digest` itself empty). It catches a file that was cut off, edited or
//! corrupted; it is not a signature (anyone can compute it), which is why nothing shown is
//! ever taken from the file as written.
//!
//! Reading says where a malformed file breaks: a byte-order mark, text that is not JSON or
//! ends early, an unknown field, stages out of order, a change whose content does not fit its
//! target or action — each with its line and column.

use crate::group::{self, Group};
use crate::plan::*;
use calplan_model::NodeAgent;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The plan file format's version. Bumped when the content or anything computed from it
/// (diffs, groups, summary) changes, since reading recomputes and compares them.
pub const FORMAT_VERSION: u32 = 3;

/// A calplan plan: stages of changes with the barriers between them.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Plan")]
struct PlanFile {
    /// The format's version; calplan reads only its own.
    format_version: u32,
    /// `sha256:` and the hex digest of the plan's content (this document as compact JSON, with
    /// `digest` empty). `show` and `apply` refuse a plan whose digest does not match.
    digest: String,
    /// The intent the plan was made from.
    intent: Fingerprint,
    /// Every current-state source, fingerprinted, so `apply` can tell a stale plan.
    current: Vec<SourceFingerprint>,
    /// The node inventory (`--nodes FILE`) the plan was made with: `apply` refuses the plan
    /// once it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nodes: Option<Fingerprint>,
    /// Who runs the nodes (the intent's `spec.nodeAgent`): on `calico-node` nodes the plan
    /// loads only route pins and apply reads sessions from calico-node's BIRD 1.x sockets; on
    /// `bird` nodes it loads BIRD 2's configuration and the rulesets.
    node_agent: NodeAgent,
    /// Each router's platform (`linux`, `frr`, `ios`, `junos`) from the intent: which of its
    /// files apply loads (an inventory's `platform` wins).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    router_platforms: BTreeMap<String, String>,
    /// The stages in order, numbered 1, 2, 3…
    #[serde(deserialize_with = "numbered_stages")]
    stages: Vec<StageFile>,
    /// Terraform's counts of the changes (computed from them).
    summary: Summary,
    /// What the planner could not know or had to assume, in words.
    notes: Vec<String>,
}

/// One step of the plan: its changes, then a barrier that must hold before the next stage.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(rename = "Stage")]
struct StageFile {
    /// 1-based, in order.
    number: usize,
    title: String,
    /// Why this stage comes here.
    reason: String,
    /// What the stage disrupts, if anything: sessions reset, routes withdrawn, pods recreated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    disruption: Option<String>,
    /// Every change, in the order apply makes them.
    #[serde(deserialize_with = "checked_changes")]
    changes: Vec<ChangeFile>,
    /// The changes grouped for reading (computed from them): each group lists the indexes of
    /// its changes; Calico resources are groups of one.
    groups: Vec<Group>,
    /// Steps calplan cannot take itself, such as recreating pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    manual: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    barrier: Option<Barrier>,
    /// `calicoctl node status` per node once the stage is done, when the stage changes BGP.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    expected_status: BTreeMap<String, Vec<StatusRow>>,
}

/// A change to a Calico resource, or to a file on a node or router.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(rename = "Change")]
struct ChangeFile {
    action: Action,
    /// `IPPool`, `BGPPeer`, `BGPConfiguration`, `BGPFilter`, `Node`, or the artifact kind
    /// (`bird.cfg`, `routes`, `rules.nft`, `routes.sh`, `frr.conf`, `route-pins`, …).
    kind: String,
    /// The resource's name, or the node or router the file is on.
    name: String,
    target: Target,
    /// The unified diff of `before` and `after`, secrets redacted (computed from them).
    diff: String,
    /// The resource (JSON) or file as it stands, for compare-and-swap and rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<Content>,
    /// The resource (JSON) or file to write; absent for a delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<Content>,
    /// Why the change is made this way, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Information, not an action: what calico-node makes of the plan's changes (confd's new
    /// render, the routes BIRD and Felix program). Apply never writes it; it records it once
    /// the stage is done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    informational: bool,
}

/// Why a plan file was refused, and where in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanFileError {
    /// 1-based; 0 when the problem is not at one place.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for PlanFileError {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        if self.line == 0 {
            write!(formatter, "{}", self.message)
        } else {
            write!(formatter, "line {}, column {}: {}", self.line, self.column, self.message)
        }
    }
}

impl std::error::Error for PlanFileError {}

fn nowhere(message: impl Into<String>) -> PlanFileError {
    PlanFileError { line: 0, column: 0, message: message.into() }
}

/// The document, with its digest.
pub fn write(plan: &Plan) -> String {
    let mut document = PlanFile {
        format_version: FORMAT_VERSION,
        digest: String::new(),
        intent: plan.intent.clone(),
        current: plan.current.clone(),
        nodes: plan.nodes.clone(),
        node_agent: plan.node_agent,
        router_platforms: plan.router_platforms.clone(),
        stages: plan.stages.iter().map(stage_file).collect(),
        summary: plan.summary(),
        notes: plan.notes.clone(),
    };
    document.digest = digest(&document);
    let mut text = serde_json::to_string_pretty(&document).expect("plans serialize");
    text.push('\n');
    text
}

fn stage_file(stage: &Stage) -> StageFile {
    let diffs: Vec<String> = stage.changes.iter().map(Change::diff).collect();
    let groups = group::group(&stage.changes, &diffs);
    StageFile {
        number: stage.number,
        title: stage.title.clone(),
        reason: stage.reason.clone(),
        disruption: stage.disruption.clone(),
        changes: stage
            .changes
            .iter()
            .zip(diffs)
            .map(|(change, diff)| ChangeFile {
                action: change.action,
                kind: change.kind.clone(),
                name: change.name.clone(),
                target: change.target.clone(),
                diff,
                before: change.before.clone(),
                after: change.after.clone(),
                reason: change.reason.clone(),
                informational: change.informational,
            })
            .collect(),
        groups,
        manual: stage.manual.clone(),
        barrier: stage.barrier.clone(),
        expected_status: stage.expected_status.clone(),
    }
}

/// The digest of a document's content, with its `digest` taken as empty.
fn digest(document: &PlanFile) -> String {
    use sha2::Digest;
    struct Hashing(sha2::Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(sha2::Sha256::new());
    let PlanFile { format_version, intent, current, nodes, node_agent, router_platforms, stages, summary, notes, .. } = document;
    // The same fields in the same order as the document, `digest` empty.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Content<'a> {
        format_version: &'a u32,
        digest: &'a str,
        intent: &'a Fingerprint,
        current: &'a Vec<SourceFingerprint>,
        #[serde(skip_serializing_if = "Option::is_none")]
        nodes: &'a Option<Fingerprint>,
        node_agent: &'a NodeAgent,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        router_platforms: &'a BTreeMap<String, String>,
        stages: &'a Vec<StageFile>,
        summary: &'a Summary,
        notes: &'a Vec<String>,
    }
    let content = Content { format_version, digest: "", intent, current, nodes, node_agent, router_platforms, stages, summary, notes };
    serde_json::to_writer(&mut hashing, &content).expect("plans serialize");
    format!("sha256:{}", calplan_targets::Artifact::hex_digest(&hashing.0.finalize()))
}

/// Reads a plan file, checking its form, its digest, and that everything computed from its
/// content is what the content gives.
pub fn read(text: &str) -> Result<Plan, PlanFileError> {
    if text.starts_with('\u{feff}') {
        return Err(PlanFileError {
            line: 1,
            column: 1,
            message: "the file starts with a byte-order mark (U+FEFF): calplan writes plans as UTF-8 without one; an editor added it"
                .into(),
        });
    }
    if !text.trim_start().starts_with('{') {
        let offset = text.len() - text.trim_start().len();
        let (line, column) = position_at(text, offset);
        return Err(PlanFileError {
            line,
            column,
            message: "not a calplan plan: a plan is a JSON object (`{\"formatVersion\": …}`)".into(),
        });
    }
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "formatVersion")]
        format_version: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_str(text).map_err(|error| located(&error))?;
    match probe.format_version.as_ref().map(serde_json::Value::as_u64) {
        None => return Err(PlanFileError { line: 1, column: 1, message: "not a calplan plan: it has no `formatVersion`".into() }),
        Some(Some(version)) if version == u64::from(FORMAT_VERSION) => {}
        Some(Some(version)) => {
            return Err(nowhere(format!("a plan of format {version}; this calplan reads format {FORMAT_VERSION}: plan again")));
        }
        Some(None) => return Err(nowhere("not a calplan plan: `formatVersion` is not a number")),
    }
    let mut document: PlanFile = serde_json::from_str(text).map_err(|error| located(&error))?;
    let written = std::mem::take(&mut document.digest);
    let computed = digest(&document);
    if written != computed {
        let (line, column) = position_of(text, "\"digest\"");
        return Err(PlanFileError {
            line,
            column,
            message: format!(
                "the plan was changed after calplan wrote it: its content's digest is `{computed}`, not the `{written}` written here; \
                 plan again (a plan is applied exactly as it was reviewed, or not at all)"
            ),
        });
    }
    let plan = Plan {
        intent: document.intent,
        current: document.current,
        nodes: document.nodes,
        node_agent: document.node_agent,
        router_platforms: document.router_platforms,
        stages: document.stages.into_iter().map(stage_of).collect::<Result<_, _>>()?,
        notes: document.notes,
    };
    if plan.summary() != document.summary {
        return Err(nowhere(format!(
            "the plan's `summary` says \"{}\" but its changes make \"{}\"",
            document.summary.line(),
            plan.summary().line()
        )));
    }
    Ok(plan)
}

/// A stage of a read document, its computed parts checked against its content.
fn stage_of(stage: StageFile) -> Result<Stage, PlanFileError> {
    let number = stage.number;
    let mut changes = Vec::with_capacity(stage.changes.len());
    let mut diffs = Vec::with_capacity(stage.changes.len());
    for (index, file) in stage.changes.into_iter().enumerate() {
        let change = Change {
            action: file.action,
            kind: file.kind,
            name: file.name,
            target: file.target,
            before: file.before,
            after: file.after,
            reason: file.reason,
            informational: file.informational,
        };
        let diff = change.diff();
        if diff != file.diff {
            return Err(nowhere(format!(
                "stage {number}, change {} (`{}`): its `diff` is not the diff of its `before` and `after`; \
                 the diff a reviewer reads must be what apply writes",
                index + 1,
                change.path()
            )));
        }
        changes.push(change);
        diffs.push(diff);
    }
    if group::group(&changes, &diffs) != stage.groups {
        return Err(nowhere(format!("stage {number}: its `groups` are not the groups of its changes")));
    }
    Ok(Stage {
        number,
        title: stage.title,
        reason: stage.reason,
        disruption: stage.disruption,
        changes,
        manual: stage.manual,
        barrier: stage.barrier,
        expected_status: stage.expected_status,
    })
}

/// A serde_json error with its line and column, in words that say what is wrong with a plan.
fn located(error: &serde_json::Error) -> PlanFileError {
    let full = error.to_string();
    let message = full.strip_suffix(&format!(" at line {} column {}", error.line(), error.column())).unwrap_or(&full).to_string();
    let message = match error.classify() {
        serde_json::error::Category::Eof => {
            format!("the file ends before the plan does ({message}): it was cut off; save the plan again")
        }
        serde_json::error::Category::Syntax => format!("not JSON here: {message}"),
        serde_json::error::Category::Io => message,
        serde_json::error::Category::Data => message,
    };
    PlanFileError { line: error.line().max(1), column: error.column().max(1), message }
}

/// Line and column (1-based) of the first occurrence of `needle`.
fn position_of(text: &str, needle: &str) -> (usize, usize) {
    text.find(needle).map_or((0, 0), |offset| position_at(text, offset))
}

fn position_at(text: &str, offset: usize) -> (usize, usize) {
    let line = text[..offset].matches('\n').count() + 1;
    let column = offset - text[..offset].rfind('\n').map_or(0, |newline| newline + 1) + 1;
    (line, column)
}

/// Stages numbered 1, 2, 3… in order, each once; the error stands right after the stage that
/// breaks the order.
fn numbered_stages<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<StageFile>, D::Error> {
    deserializer.deserialize_seq(Checked(
        |index, stage: &StageFile| {
            let expected = index + 1;
            match stage.number {
                number if number == expected => Ok(()),
                number if number >= 1 && number < expected => Err(format!("stage {number} appears twice (here stage {expected} belongs)")),
                number if number > expected => Err(format!("stage {expected} is missing: stage {number} follows stage {index}")),
                number => Err(format!("stage {number}: stages are numbered from 1")),
            }
        },
        std::marker::PhantomData,
    ))
}

/// Changes whose content fits their target and action; the error stands right after the
/// change that does not.
fn checked_changes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<ChangeFile>, D::Error> {
    deserializer.deserialize_seq(Checked(
        |index, change: &ChangeFile| {
            let at = || format!("change {} (`{}/{}`)", index + 1, change.kind, change.name);
            let fits = |content: &Option<Content>| {
                matches!(
                    (content, &change.target),
                    (None, _)
                        | (Some(Content::Resource { .. }), Target::Calico)
                        | (Some(Content::File { .. }), Target::Node { .. } | Target::Router { .. })
                )
            };
            if !fits(&change.before) || !fits(&change.after) {
                return Err(format!("{}: a Calico resource holds a resource, a node's or router's change a file", at()));
            }
            // The operator's Installation is any object: calplan changes only its pool list.
            if change.target == Target::Calico && change.kind != calplan_calico::installation::KIND {
                let Some(kind) = calplan_calico::resources::ResourceKind::from_kind(&change.kind) else {
                    return Err(format!("{}: `{}` is not a Calico resource kind calplan plans", at(), change.kind));
                };
                for (side, content) in [("before", &change.before), ("after", &change.after)] {
                    if let Some(Content::Resource { value }) = content
                        && let Err(error) = calplan_calico::resources::Resource::from_json(kind, value.clone())
                    {
                        return Err(format!("{}: `{side}` is not a Calico {}: {error}", at(), change.kind));
                    }
                }
            }
            let (before, after) = (change.before.is_some(), change.after.is_some());
            let consistent = match change.action {
                Action::Create => !before && after,
                // An update may not know what stands (the operator's Installation, unread).
                Action::Update => after,
                Action::Delete => before && !after,
                Action::Replace => after,
            };
            if !consistent {
                return Err(format!(
                    "{}: a `{}` has {} `before` and {} `after`",
                    at(),
                    change.action.verb(),
                    if before { "a" } else { "no" },
                    if after { "an" } else { "no" }
                ));
            }
            Ok(())
        },
        std::marker::PhantomData,
    ))
}

/// A sequence whose elements are checked as they are read, so that serde_json places the
/// error right after the offending element.
struct Checked<T, F>(F, std::marker::PhantomData<T>);

impl<'de, T, F> Visitor<'de> for Checked<T, F>
where
    T: Deserialize<'de>,
    F: Fn(usize, &T) -> Result<(), String>,
{
    type Value = Vec<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = sequence.next_element::<T>()? {
            (self.0)(items.len(), &item).map_err(de::Error::custom)?;
            items.push(item);
        }
        Ok(items)
    }
}

/// The plan file's JSON Schema, as `schemas/plan.schema.json` holds it.
pub fn schema_text() -> String {
    let mut schema = serde_json::to_value(schemars::schema_for!(PlanFile)).expect("schema serializes");
    schema["$id"] = serde_json::Value::from("https://calplan.dev/schemas/plan.schema.json");
    let mut text = serde_json::to_string_pretty(&schema).expect("schema serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(node: &str, action: Action, before: Option<&str>, after: Option<&str>) -> Change {
        Change {
            action,
            kind: "rules.nft".into(),
            name: node.into(),
            target: Target::Node { node: node.into() },
            before: before.map(|text| Content::File { text: text.into() }),
            after: after.map(|text| Content::File { text: text.into() }),
            reason: None,
            informational: false,
        }
    }

    fn stage(number: usize, changes: Vec<Change>) -> Stage {
        Stage {
            number,
            title: format!("stage {number}"),
            reason: "because".into(),
            disruption: None,
            changes,
            manual: Vec::new(),
            barrier: None,
            expected_status: BTreeMap::new(),
        }
    }

    fn plan() -> Plan {
        Plan {
            intent: Fingerprint { name: "intent.yaml".into(), sha256: "00".into() },
            current: Vec::new(),
            nodes: None,
            node_agent: NodeAgent::Bird,
            router_platforms: BTreeMap::new(),
            stages: vec![
                stage(
                    1,
                    vec![change("n1", Action::Update, Some("a\n"), Some("b\n")), change("n2", Action::Update, Some("a\n"), Some("b\n"))],
                ),
                stage(2, vec![change("n1", Action::Delete, Some("b\n"), None)]),
            ],
            notes: Vec::new(),
        }
    }

    /// Rewrites a document's digest to match its (edited) content, as someone forging a plan
    /// would.
    fn redigest(text: &str) -> String {
        let mut document: PlanFile = serde_json::from_str(text).unwrap();
        document.digest = String::new();
        document.digest = digest(&document);
        serde_json::to_string_pretty(&document).unwrap()
    }

    #[test]
    fn a_plan_reads_back_as_written() {
        let text = write(&plan());
        assert_eq!(read(&text).unwrap(), plan());
        assert!(text.contains("\"digest\": \"sha256:"), "{text}");
    }

    #[test]
    fn any_edit_breaks_the_digest() {
        let text = write(&plan());
        let edited = text.replacen("\"b\\n\"", "\"evil\\n\"", 1);
        let error = read(&edited).unwrap_err();
        assert!(error.message.starts_with("the plan was changed after calplan wrote it"), "{error}");
        assert_eq!((error.line, error.column), (3, 3));
    }

    #[test]
    fn a_diff_that_is_not_the_content_is_refused_even_with_a_matching_digest() {
        let text = write(&plan());
        let forged = redigest(&text.replacen("+b", "+harmless", 1));
        let error = read(&forged).unwrap_err();
        assert!(error.message.contains("stage 1, change 1 (`nodes/n1/rules.nft`): its `diff` is not"), "{error}");
        let forged = redigest(&text.replace("\"change\": 2", "\"change\": 1"));
        assert!(read(&forged).unwrap_err().message.contains("`summary`"));
    }

    #[test]
    fn duplicate_and_missing_stages_are_refused_where_they_are() {
        let text = write(&plan());
        let duplicate = text.replace("\"number\": 2", "\"number\": 1");
        let error = read(&duplicate).unwrap_err();
        assert!(error.message.starts_with("stage 1 appears twice"), "{error}");
        let line = duplicate.lines().position(|line| line.contains("\"number\": 1") && duplicate.matches("\"number\": 1").count() == 2);
        assert!(line.is_some());
        assert!(error.line > duplicate[..duplicate.rfind("\"number\": 1").unwrap()].matches('\n').count(), "{error}");
        let missing = text.replace("\"number\": 2", "\"number\": 3");
        assert!(read(&missing).unwrap_err().message.starts_with("stage 2 is missing: stage 3 follows stage 1"));
    }

    #[test]
    fn a_truncated_file_a_byte_order_mark_and_strangers_say_where() {
        let text = write(&plan());
        let cut = &text[..text.len() / 2];
        let error = read(cut).unwrap_err();
        assert!(error.message.starts_with("the file ends before the plan does"), "{error}");
        assert_eq!(error.line, cut.lines().count(), "{error}");
        let error = read(&format!("\u{feff}{text}")).unwrap_err();
        assert_eq!((error.line, error.column), (1, 1));
        assert!(error.message.contains("byte-order mark"));
        assert!(read("[1, 2]").unwrap_err().message.starts_with("not a calplan plan"));
        assert!(read("{\"generator\": \"calplan\"}").unwrap_err().message.contains("no `formatVersion`"));
        let error = read(&text.replacen("\"title\"", "\"tilte\"", 1)).unwrap_err();
        assert!(error.message.starts_with("unknown field `tilte`"), "{error}");
        assert!(error.line > 1);
    }

    #[test]
    fn content_that_does_not_fit_its_action_or_target_is_refused() {
        let text = write(&plan());
        let error = read(&text.replacen("\"action\": \"update\"", "\"action\": \"create\"", 1)).unwrap_err();
        assert!(error.message.starts_with("change 1 (`rules.nft/n1`): a `create` has a `before`"), "{error}");
        let error = read(&text.replacen("\"type\": \"file\"", "\"type\": \"resource\", \"value\": {}", 1)).unwrap_err();
        assert!(error.line > 0, "{error}");
    }
}
