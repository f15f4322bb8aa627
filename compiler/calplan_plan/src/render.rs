//! The plan as a reviewer reads it: grouped by stage, each change with its diff, the barrier
//! that closes the stage and the status it leaves; coloured on a terminal, plain otherwise.

use crate::plan::*;
use owo_colors::OwoColorize;
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

fn target_text(change: &Change) -> String {
    let target = match &change.target {
        Target::Calico => format!("{} {}", change.kind, change.name),
        Target::Node { node } => format!("node {node}: {}", change.kind),
        Target::Router { router } => format!("router {router}: {}", change.kind),
    };
    if change.informational { format!("{target} {INFORMATIONAL}") } else { target }
}

/// The marker of a change calplan shows but does not make.
const INFORMATIONAL: &str = "(informational: calico-node makes this change; apply only records it)";

/// The plan in words.
pub fn human(plan: &Plan, color: bool) -> String {
    let paint = Paint { color };
    let mut out = String::new();
    if plan.is_empty() {
        let _ = writeln!(out, "No changes. The cluster matches `{}`.", plan.intent.name);
        // What calico-node renders differently from the last record, although calplan has
        // nothing to do (another calicoVersion's templates, a record made elsewhere).
        for change in plan.changes().filter(|change| change.informational) {
            let _ = writeln!(out, "  {} {}", change.action.symbol(), target_text(change));
        }
        for note in &plan.notes {
            let _ = writeln!(out, "note: {note}");
        }
        return out;
    }
    let _ = writeln!(out, "calplan will change the cluster in {} stages, in this order.", plan.stages.len());
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
        for change in &stage.changes {
            let _ = writeln!(out, "\n  {} {}", paint.action(change.action, change.action.symbol()), paint.bold(&target_text(change)));
            if let Some(reason) = &change.reason {
                let _ = writeln!(out, "      {}", paint.dim(&format!("# {reason}")));
            }
            for line in change.diff.lines() {
                let _ = writeln!(out, "      {}", paint.diff_line(line));
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
            match barrier {
                Barrier::SessionsEstablished { sessions, .. } => {
                    for (node, protocols) in sessions {
                        let _ = writeln!(out, "    {node}: {}", protocols.join(", "));
                    }
                }
                Barrier::PoolEmpty { pool, cidr, .. } => {
                    let _ = writeln!(out, "    `{pool}` ({cidr}): 0 addresses in use");
                }
                Barrier::RoutesPresent { routes, .. } => {
                    for (host, lines) in routes {
                        let _ = writeln!(out, "    {host}: {} routes", lines.len());
                    }
                }
            }
        }
        if !stage.expected_status.is_empty() {
            let _ = writeln!(out, "\n  expected `calicoctl node status` after this stage:");
            for (node, rows) in &stage.expected_status {
                let rows: Vec<String> = rows.iter().map(|row| format!("{} {}", row.peer_address, row.peer_type)).collect();
                let rows = if rows.is_empty() { "no peers".to_string() } else { rows.join(", ") };
                let _ = writeln!(out, "    {node}: {rows}");
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
    let _ = writeln!(out, "{}", paint.bold(&plan.summary.line()));
    if plan.summary.informational > 0 {
        let _ = writeln!(
            out,
            "calico-node follows with {} informational changes (its render and routes), which apply records but does not make.",
            plan.summary.informational
        );
    }
    out
}
