//! The plan as GitHub-flavoured Markdown, for a pull-request comment: the summary line, a table
//! of the stages (what each changes, which are disruptive, their barriers), then each stage in
//! a collapsible `<details>` block with its grouped changes in ```` ```diff ```` fences.
//!
//! A comment holds 65,536 characters; the rendering stays under [`LIMIT`] bytes. When the whole
//! plan does not fit, the longest diffs are cut to as many lines as lets everything fit (each
//! cut saying how many lines it left out, and where the whole plan is), then, if that is not
//! enough, the smallest groups of each stage are counted rather than shown.
//!
//! Like the human form, everything here is computed from the plan's content.

use crate::group::{Group, of_stage, thousands};
use crate::plan::*;
use crate::render::{barrier_lines, group_heading, placeholder_lines, stages_phrase, status_lines};
use std::fmt::Write;

/// The most a rendering may hold, in bytes (GitHub's comment limit is 65,536 characters).
pub const LIMIT: usize = 60_000;

/// How much of the plan a rendering shows.
#[derive(Clone, Copy)]
struct Budget {
    /// Lines shown of each diff and of each per-host list.
    lines: usize,
    /// Groups shown in each stage, largest first.
    groups: usize,
}

/// The plan as Markdown under [`LIMIT`] bytes. `full_plan` says where the whole plan is, for
/// what is cut (`` `calplan show --format json plan.json` ``).
pub fn markdown(plan: &Plan, full_plan: &str) -> String {
    let stages: Vec<Vec<Group>> = plan.stages.iter().map(of_stage).collect();
    let most_lines = stages
        .iter()
        .flatten()
        .map(|group| group.diff.lines().count())
        .chain(plan.stages.iter().map(|stage| stage.expected_status.len()))
        .chain(plan.stages.iter().filter_map(|stage| stage.barrier.as_ref()).map(|barrier| barrier_lines(barrier).len()))
        .max()
        .unwrap_or(0);
    let most_groups = stages.iter().map(Vec::len).max().unwrap_or(0);
    let full = Budget { lines: most_lines, groups: most_groups };
    let text = render(plan, &stages, full, full_plan);
    if text.len() <= LIMIT {
        return text;
    }
    // The most lines per diff that fit with every group shown; failing that, the most groups
    // that fit with no diff lines at all.
    let fits = |budget: Budget| render(plan, &stages, budget, full_plan).len() <= LIMIT;
    let budget = if fits(Budget { lines: 0, groups: most_groups }) {
        Budget { lines: largest(0, most_lines, |lines| fits(Budget { lines, groups: most_groups })), groups: most_groups }
    } else {
        Budget { lines: 0, groups: largest(0, most_groups, |groups| fits(Budget { lines: 0, groups })) }
    };
    let text = render(plan, &stages, budget, full_plan);
    if text.len() <= LIMIT {
        return text;
    }
    summary_only(plan, &stages, full_plan)
}

/// The largest value in `low..=high` for which `fits` holds (`low` when none does); `fits` is
/// monotone.
fn largest(low: usize, high: usize, fits: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut high) = (low, high);
    while low < high {
        let middle = low + (high - low).div_ceil(2);
        if fits(middle) {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    low
}

fn render(plan: &Plan, stages: &[Vec<Group>], budget: Budget, full_plan: &str) -> String {
    let mut out = head(plan, stages);
    for (stage, groups) in plan.stages.iter().zip(stages) {
        stage_block(&mut out, stage, groups, budget, full_plan);
    }
    notes(&mut out, plan);
    out
}

fn summary_only(plan: &Plan, stages: &[Vec<Group>], full_plan: &str) -> String {
    let mut out = head(plan, stages);
    let _ = writeln!(out, "The stages' changes do not fit in one comment: see the whole plan with {full_plan}.\n");
    notes(&mut out, plan);
    out
}

fn head(plan: &Plan, stages: &[Vec<Group>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### calplan plan for {}\n", code(&plan.intent.name));
    if plan.is_empty() {
        let _ = writeln!(out, "**No changes.** The cluster matches {}.\n", code(&plan.intent.name));
        return out;
    }
    let summary = plan.summary();
    let _ = writeln!(out, "**{}** In {}, in this order:\n", summary.line(), stages_phrase(plan.stages.len()));
    if summary.informational > 0 {
        let _ = writeln!(
            out,
            "calico-node follows with {} informational changes (its render and routes), which apply records but does not make.\n",
            thousands(summary.informational)
        );
    }
    let _ = writeln!(out, "| Stage | Changes | Disruptive | Barrier |");
    let _ = writeln!(out, "|---|---|---|---|");
    for (stage, groups) in plan.stages.iter().zip(stages) {
        let mut changes: Vec<String> = groups.iter().take(TABLE_GROUPS).map(table_entry).collect();
        if groups.len() > TABLE_GROUPS {
            let rest: usize = groups[TABLE_GROUPS..].iter().map(Group::len).sum();
            changes.push(format!("… {} more", thousands(rest)));
        }
        if !stage.manual.is_empty() {
            changes.push(format!("{} manual {}", stage.manual.len(), if stage.manual.len() == 1 { "step" } else { "steps" }));
        }
        let _ = writeln!(
            out,
            "| {}. {} | {} | {} | {} |",
            stage.number,
            cell(&stage.title),
            if changes.is_empty() { "—".to_string() } else { changes.join("<br>") },
            stage.disruption.as_deref().map_or("—".to_string(), |text| format!("**yes**: {}", cell(text))),
            stage.barrier.as_ref().map_or("—".to_string(), |barrier| cell(barrier.description())),
        );
    }
    out.push('\n');
    out
}

/// Groups listed per stage in the summary table.
const TABLE_GROUPS: usize = 5;

fn table_entry(group: &Group) -> String {
    let what = match (group.target.as_str(), group.len()) {
        ("calico", _) => format!("{} {}", group.kind, group.members),
        (_, 1) => format!("{} on {}", group.kind, group.members),
        (_, count) => format!("{} on {} {}", group.kind, thousands(count), group.noun()),
    };
    let marker = if group.informational { " (informational)" } else { "" };
    format!("`{}` {}{marker}", group.action.symbol(), cell(&what))
}

fn stage_block(out: &mut String, stage: &Stage, groups: &[Group], budget: Budget, full_plan: &str) {
    let count = stage.changes.len();
    let _ = writeln!(
        out,
        "<details>\n<summary><b>Stage {}: {}</b> — {} {}{}</summary>\n",
        stage.number,
        html(&stage.title),
        thousands(count),
        if count == 1 { "change" } else { "changes" },
        if stage.disruption.is_some() { ", disruptive" } else { "" }
    );
    let _ = writeln!(out, "{}\n", text(&stage.reason));
    if let Some(disruption) = &stage.disruption {
        let _ = writeln!(out, "**Disruptive:** {}\n", text(disruption));
    }
    for group in groups.iter().take(budget.groups) {
        let _ = writeln!(out, "**`{}` {}**\n", group.action.symbol(), text(&group_heading(group)));
        if group.informational {
            let _ = writeln!(out, "_{}_\n", text(crate::render::INFORMATIONAL));
        }
        let reasons: std::collections::BTreeSet<&str> =
            group.changes.iter().filter_map(|index| stage.changes[*index].reason.as_deref()).collect();
        for reason in reasons {
            let _ = writeln!(out, "_{}_\n", text(reason));
        }
        let lines: Vec<&str> = group.diff.lines().collect();
        if budget.lines > 0 {
            fenced(out, "diff", &lines[..lines.len().min(budget.lines)]);
        }
        if lines.len() > budget.lines {
            let _ = writeln!(
                out,
                "_{} of {} diff lines shown: the whole diff is in the JSON plan ({full_plan})._\n",
                thousands(budget.lines),
                thousands(lines.len())
            );
        }
        for line in placeholder_lines(group) {
            let _ = writeln!(out, "- {}", text(&line));
        }
        if !group.placeholders.is_empty() {
            out.push('\n');
        }
    }
    if groups.len() > budget.groups {
        let rest = &groups[budget.groups..];
        let changes: usize = rest.iter().map(Group::len).sum();
        let _ = writeln!(
            out,
            "_… and {} more {} ({} {}), in the JSON plan ({full_plan})._\n",
            thousands(rest.len()),
            if rest.len() == 1 { "group" } else { "groups" },
            thousands(changes),
            if changes == 1 { "change" } else { "changes" }
        );
    }
    if !stage.manual.is_empty() {
        let _ = writeln!(out, "**Manual steps** (calplan waits for them at the barrier):\n");
        for step in &stage.manual {
            let _ = writeln!(out, "- {}", text(step));
        }
        out.push('\n');
    }
    if let Some(barrier) = &stage.barrier {
        let _ = writeln!(out, "**Barrier:** {}\n", text(barrier.description()));
        host_block(out, &barrier_lines(barrier), budget, full_plan);
    }
    if !stage.expected_status.is_empty() {
        let _ = writeln!(out, "**Expected `calicoctl node status` after this stage:**\n");
        host_block(out, &status_lines(stage), budget, full_plan);
    }
    let _ = writeln!(out, "</details>\n");
}

fn host_block(out: &mut String, lines: &[String], budget: Budget, full_plan: &str) {
    let shown: Vec<&str> = lines.iter().take(budget.lines).map(String::as_str).collect();
    if !shown.is_empty() {
        fenced(out, "text", &shown);
    }
    if lines.len() > shown.len() {
        let _ = writeln!(out, "_{} of {} lines shown: the rest is in the JSON plan ({full_plan})._\n", shown.len(), thousands(lines.len()));
    }
}

fn notes(out: &mut String, plan: &Plan) {
    for note in &plan.notes {
        let _ = writeln!(out, "> **Note:** {}\n", text(note));
    }
}

/// A fenced code block whose fence no line of the content can close.
fn fenced(out: &mut String, language: &str, lines: &[&str]) {
    let longest = lines.iter().map(|line| longest_run(line, '`')).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let _ = writeln!(out, "{fence}{language}");
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "{fence}\n");
}

fn longest_run(text: &str, wanted: char) -> usize {
    let (mut longest, mut run) = (0, 0);
    for character in text.chars() {
        run = if character == wanted { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// Text for a Markdown paragraph: what Markdown or HTML would read as markup is escaped, and
/// `` `code` `` spans are kept.
fn text(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for (index, part) in input.split('`').enumerate() {
        if index % 2 == 1 {
            out.push_str(&code(part));
            continue;
        }
        for character in part.chars() {
            match character {
                '\\' | '*' | '_' | '[' | ']' | '#' | '|' | '~' | '!' => {
                    out.push('\\');
                    out.push(character);
                }
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '&' => out.push_str("&amp;"),
                '\n' => out.push(' '),
                _ => out.push(character),
            }
        }
    }
    out
}

/// A code span holding `input`, whatever backticks it has.
fn code(input: &str) -> String {
    let input = input.replace('\n', " ");
    let fence = "`".repeat(longest_run(&input, '`') + 1);
    let pad = if input.starts_with('`') || input.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{input}{pad}{fence}")
}

/// Text for a table cell: as [`text`], and no `|` left to split the cell (GitHub reads `\|`
/// as a pipe inside code spans too).
fn cell(input: &str) -> String {
    let rendered = text(input);
    // `text` escaped the pipes outside code spans; inside them GitHub needs the same escape.
    let mut out = String::with_capacity(rendered.len());
    let mut previous = ' ';
    for character in rendered.chars() {
        if character == '|' && previous != '\\' {
            out.push('\\');
        }
        out.push(character);
        previous = character;
    }
    out
}

/// Text inside an HTML element (`<summary>`): escaped, `code` spans as `<code>`.
fn html(input: &str) -> String {
    let mut out = String::new();
    for (index, part) in input.split('`').enumerate() {
        let escaped = part.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        if index % 2 == 1 {
            let _ = write!(out, "<code>{escaped}</code>");
        } else {
            out.push_str(&escaped);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn plan(nodes: usize, lines: usize) -> Plan {
        let changes = (0..nodes)
            .map(|n| {
                // Each node's own content: no two changes are alike.
                let before: String = (0..lines).map(|line| format!("line {line} holds {n}\n")).collect();
                Change {
                    action: Action::Update,
                    kind: "routes".into(),
                    name: format!("n{n}"),
                    target: Target::Node { node: format!("n{n}") },
                    before: Some(Content::File { text: before }),
                    after: Some(Content::File { text: String::new() }),
                    reason: None,
                    informational: false,
                }
            })
            .collect();
        Plan {
            intent: Fingerprint { name: "intent.yaml".into(), sha256: String::new() },
            current: Vec::new(),
            nodes: None,
            node_agent: calplan_model::NodeAgent::Bird,
            router_platforms: BTreeMap::new(),
            stages: vec![Stage {
                number: 1,
                title: "Routes | `pipes`".into(),
                reason: "a <reason> with *stars*".into(),
                disruption: Some("sessions reset".into()),
                changes,
                manual: Vec::new(),
                barrier: None,
                expected_status: BTreeMap::new(),
            }],
            notes: vec!["a note".into()],
        }
    }

    #[test]
    fn a_small_plan_is_shown_whole() {
        let text = markdown(&plan(3, 4), "`calplan show --format json p`");
        assert!(
            text.contains(
                "| 1. Routes \\| `pipes` | `~` routes on n0<br>`~` routes on n1<br>`~` routes on n2 | **yes**: sessions reset | — |"
            ),
            "{text}"
        );
        assert!(text.contains("<summary><b>Stage 1: Routes | <code>pipes</code></b> — 3 changes, disruptive</summary>"), "{text}");
        assert!(text.contains("a &lt;reason&gt; with \\*stars\\*"), "{text}");
        assert!(text.contains("```diff\n--- a/nodes/n0/routes\n"), "{text}");
        assert!(!text.contains("shown"), "{text}");
    }

    #[test]
    fn a_large_plan_is_cut_to_fit_one_comment_saying_where_the_rest_is() {
        let text = markdown(&plan(300, 400), "`calplan show --format json p`");
        assert!(text.len() <= LIMIT, "{}", text.len());
        assert!(text.contains("diff lines shown: the whole diff is in the JSON plan (`calplan show --format json p`)"), "{text}");
        let huge = markdown(&plan(3000, 3), "`x`");
        assert!(huge.len() <= LIMIT, "{}", huge.len());
        assert!(huge.contains("more groups"), "{huge}");
    }

    #[test]
    fn fences_outlast_the_backticks_they_hold() {
        let mut out = String::new();
        fenced(&mut out, "diff", &["+a ``` b", "-c"]);
        assert!(out.starts_with("````diff\n") && out.ends_with("````\n\n"), "{out}");
        assert_eq!(code("a`b"), "``a`b``");
    }
}
