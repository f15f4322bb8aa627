//! The plan as a reviewer reads it: by stage, the changes grouped (`group.rs`), each group
//! with its diff, the barrier that closes the stage and the status it leaves; coloured on a
//! terminal, plain otherwise. Everything shown is computed from the plan's content.

use crate::group::{Group, of_stage, thousands};
use crate::plan::*;
use owo_colors::OwoColorize;
use std::collections::BTreeSet;
use std::fmt::Write;

struct Paint {
    color: bool,
}

impl Paint {
    fn action(&self, action: Action, text: &str) -> String {
        if !self.color {
            return text.to_string();
        }
        match action {
            Action::Create => text.green().to_string(),
            Action::Delete => text.red().to_string(),
            Action::Update => text.yellow().to_string(),
            Action::Replace => text.magenta().to_string(),
        }
    }

    fn bold(&self, text: &str) -> String {
        if self.color { text.bold().to_string() } else { text.to_string() }
    }

    fn dim(&self, text: &str) -> String {
        if self.color { text.dimmed().to_string() } else { text.to_string() }
    }

    fn diff_line(&self, line: &str) -> String {
        if !self.color {
            return line.to_string();
        }
        if line.starts_with("+++") || line.starts_with("---") {
            line.bold().to_string()
        } else if line.starts_with('+') {
            line.green().to_string()
        } else if line.starts_with('-') {
            line.red().to_string()
        } else if line.starts_with("@@") {
            line.cyan().to_string()
        } else {
            line.to_string()
        }
    }
}

/// The marker of a change calplan shows but does not make.
pub const INFORMATIONAL: &str = "(informational: calico-node makes this change; apply only records it)";

/// How a group is headed: `IPPool zone-b`, `node n1: rules.nft`, `nodes n1…n9 (9 nodes): rules.nft`.
pub fn group_heading(group: &Group) -> String {
    match (group.target.as_str(), group.len()) {
        ("calico", _) => format!("{} {}", group.kind, group.members),
        (target, 1) => format!("{target} {}: {}", group.members, group.kind),
        (_, count) => format!("{} {} ({} {}): {}", group.noun(), group.members, thousands(count), group.noun(), group.kind),
    }
}

/// What each placeholder of a group stands for, one line each; hunk positions (`<line>`,
/// `<line 2>`, …) share one line.
pub fn placeholder_lines(group: &Group) -> Vec<String> {
    let noun = group.noun();
    let one = &noun[..noun.len() - 1];
    let mut lines = Vec::new();
    let (positions, values): (Vec<_>, Vec<_>) = group.placeholders.iter().partition(|placeholder| placeholder.name.starts_with("<line"));
    for placeholder in values {
        lines.push(if placeholder.distinct == group.len() {
            format!("{}: each {one}'s own, e.g. {}", placeholder.name, placeholder.example)
        } else if !placeholder.values.is_empty() {
            let values: Vec<String> = placeholder
                .values
                .iter()
                .map(|value| {
                    format!(
                        "{} on {} ({} {})",
                        value.value,
                        value.members,
                        thousands(value.count),
                        crate::group::noun(&group.target, value.count)
                    )
                })
                .collect();
            format!("{}: {}", placeholder.name, values.join("; "))
        } else {
            format!("{}: {} different values, e.g. {}", placeholder.name, thousands(placeholder.distinct), placeholder.example)
        });
    }
    if let Some(first) = positions.first() {
        let names: Vec<&str> = positions.iter().map(|placeholder| placeholder.name.as_str()).collect();
        lines.push(format!("{}: the hunks start on other lines from {one} to {one}, e.g. line {}", names.join(", "), first.example));
    }
    lines
}

/// A stage's per-host lines (barrier sessions, expected status), hosts with the same line
/// together.
pub fn host_lines<'a>(items: impl IntoIterator<Item = (&'a str, String)>) -> Vec<String> {
    crate::group::by_text(items)
        .into_iter()
        .map(
            |(hosts, count, text)| {
                if count == 1 { format!("{hosts}: {text}") } else { format!("{hosts} ({} nodes): {text}", thousands(count)) }
            },
        )
        .collect()
}

/// The barrier's per-host lines.
pub fn barrier_lines(barrier: &Barrier) -> Vec<String> {
    match barrier {
        Barrier::SessionsEstablished { sessions, gone, .. } => {
            let none = Vec::new();
            let nodes: BTreeSet<&String> = sessions.keys().chain(gone.keys()).collect();
            host_lines(nodes.into_iter().map(|node| {
                let up = sessions.get(node).unwrap_or(&none).join(", ");
                let text = match gone.get(node) {
                    Some(gone) if up.is_empty() => format!("without {}", gone.join(", ")),
                    Some(gone) => format!("{up}; without {}", gone.join(", ")),
                    None => up,
                };
                (node.as_str(), text)
            }))
        }
        Barrier::PoolEmpty { pool, cidr, .. } => vec![format!("`{pool}` ({cidr}): 0 addresses in use")],
        Barrier::RoutesPresent { routes, .. } => {
            host_lines(routes.iter().map(|(host, lines)| (host.as_str(), format!("{} routes", lines.len()))))
        }
        Barrier::RenderLoaded { renders, routes, unplaced_pools, .. } => {
            let mut lines = host_lines(routes.iter().map(|(host, lines)| {
                let render = match renders.get(host).map(Vec::len) {
                    Some(1) => "the render above loaded",
                    Some(_) => "the renders above loaded",
                    None => "",
                };
                let text = match (render, lines.len()) {
                    (render, 0) => render.to_string(),
                    ("", count) => format!("{count} routes"),
                    (render, count) => format!("{render}, {count} routes"),
                };
                (host.as_str(), text)
            }));
            if !unplaced_pools.is_empty() {
                lines.push(format!(
                    "blocks inside {} left out (Calico's IPAM places them; no live IPAM told the plan where)",
                    unplaced_pools.join(", ")
                ));
            }
            lines
        }
    }
}

/// The expected `calicoctl node status` lines.
pub fn status_lines(stage: &Stage) -> Vec<String> {
    host_lines(stage.expected_status.iter().map(|(node, rows)| {
        let rows: Vec<String> = rows.iter().map(|row| format!("{} {}", row.peer_address, row.peer_type)).collect();
        (node.as_str(), if rows.is_empty() { "no peers".to_string() } else { rows.join(", ") })
    }))
}

/// `1 stage`, `3 stages`.
pub fn stages_phrase(count: usize) -> String {
    format!("{count} {}", if count == 1 { "stage" } else { "stages" })
}

/// The plan in words: per stage, its changes grouped (the same change on many nodes once,
/// with where it applies), each with its diff computed from the content apply writes.
pub fn human(plan: &Plan, color: bool) -> String {
    let paint = Paint { color };
    let mut out = String::new();
    if plan.is_empty() {
        let _ = writeln!(out, "No changes. The cluster matches `{}`.", plan.intent.name);
        // What calico-node renders differently from the last record, although calplan has
        // nothing to do (another calicoVersion's templates, a record made elsewhere).
        for stage in &plan.stages {
            for group in of_stage(stage).into_iter().filter(|group| group.informational) {
                let _ = writeln!(out, "  {} {} {INFORMATIONAL}", group.action.symbol(), group_heading(&group));
            }
        }
        for note in &plan.notes {
            let _ = writeln!(out, "note: {note}");
        }
        return out;
    }
    let _ = writeln!(out, "calplan will change the cluster in {}, in this order.", stages_phrase(plan.stages.len()));
    let _ = writeln!(
        out,
        "Symbols: {} create, {} update, {} delete, {} replace (delete, then create).\n",
        paint.action(Action::Create, "+"),
        paint.action(Action::Update, "~"),
        paint.action(Action::Delete, "-"),
        paint.action(Action::Replace, "-/+")
    );
    for stage in &plan.stages {
        let _ = writeln!(out, "{}", paint.bold(&format!("Stage {}: {}", stage.number, stage.title)));
        let _ = writeln!(out, "  {}", stage.reason);
        if let Some(disruption) = &stage.disruption {
            let _ = writeln!(out, "  disruptive: {disruption}");
        }
        for group in of_stage(stage) {
            let heading = group_heading(&group);
            let heading = if group.informational { format!("{heading} {INFORMATIONAL}") } else { heading };
            let _ = writeln!(out, "\n  {} {}", paint.action(group.action, group.action.symbol()), paint.bold(&heading));
            let reasons: BTreeSet<&str> = group.changes.iter().filter_map(|index| stage.changes[*index].reason.as_deref()).collect();
            for reason in reasons {
                let _ = writeln!(out, "      {}", paint.dim(&format!("# {reason}")));
            }
            for line in group.diff.lines() {
                let _ = writeln!(out, "      {}", paint.diff_line(line));
            }
            for line in placeholder_lines(&group) {
                let _ = writeln!(out, "      {}", paint.dim(&format!("# {line}")));
            }
        }
        if !stage.manual.is_empty() {
            let _ = writeln!(out, "\n  manual steps (calplan waits for them at the barrier):");
            for step in &stage.manual {
                let _ = writeln!(out, "    - {step}");
            }
        }
        if let Some(barrier) = &stage.barrier {
            let _ = writeln!(out, "\n  barrier: {}", barrier.description());
            for line in barrier_lines(barrier) {
                let _ = writeln!(out, "    {line}");
            }
        }
        if !stage.expected_status.is_empty() {
            let _ = writeln!(out, "\n  expected `calicoctl node status` after this stage:");
            for line in status_lines(stage) {
                let _ = writeln!(out, "    {line}");
            }
        }
        out.push('\n');
    }
    for note in &plan.notes {
        let _ = writeln!(out, "note: {note}");
    }
    if !plan.notes.is_empty() {
        out.push('\n');
    }
    let summary = plan.summary();
    let _ = writeln!(out, "{}", paint.bold(&summary.line()));
    if summary.informational > 0 {
        let _ = writeln!(
            out,
            "calico-node follows with {} informational changes (its render and routes), which apply records but does not make.",
            summary.informational
        );
    }
    out
}
