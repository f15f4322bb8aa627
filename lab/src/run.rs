//! `lab apply`: a saved plan carried out against the lab by apply's executor (netns
//! transport, the lab's inventory, the record backend), while pings every 20 ms between pod
//! pairs and from routers to pods run throughout. The executor's progress callbacks mark
//! where each stage begins, so every lost echo request is laid against the stage it was sent
//! in: a plan is hitless when no stage, nor the settling time after the last, lost one.
//!
//! It changes the lab only through the executor, and through Felix's part after each stage
//! (VXLAN routes follow the routes file the stage applied, as Felix follows the datastore).

use crate::probe::{self, Probe, Series};
use crate::topology::Layout;
use crate::{felix, up, verify};
use calplan_apply::state::StateDir;
use calplan_apply::{Ended, Executor, Progress};
use calplan_plan::plan::{Content, Plan, Stage, Target};
use serde::Serialize;
use std::fmt::Write;
use std::time::Duration;

/// At most this many probes run at once (pairs are sampled beyond it).
pub const MAX_PROBES: usize = 40;

pub struct ApplyOptions {
    pub barrier_timeout: Duration,
    /// How many hosts apply's executor works on at once.
    pub parallelism: usize,
    /// How long the probes may take to settle after the last stage, at most.
    pub settle: Duration,
}

/// Loss in one interval of the apply, over every probe.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Interval {
    pub label: String,
    pub seconds: f64,
    pub sent: usize,
    pub lost: usize,
    /// The probes that lost anything here.
    pub probes_with_loss: Vec<String>,
    /// The longest run of unanswered requests on one probe, in milliseconds.
    pub longest_gap_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    pub plan: String,
    pub probes: Vec<String>,
    pub intervals: Vec<Interval>,
    /// The executor's error, when the apply stopped.
    pub error: Option<String>,
    /// What the apply left to a person (IOS and Junos files), which the lab's stand-ins for
    /// those routers do not follow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
    pub hitless: bool,
}

impl ApplyReport {
    pub fn lost(&self) -> usize {
        self.intervals.iter().map(|interval| interval.lost).sum()
    }

    pub fn render(&self) -> String {
        let mut out = format!("Loss per stage of `{}` ({} probes, one echo request every 20 ms each):\n\n", self.plan, self.probes.len());
        let width = self.intervals.iter().map(|interval| interval.label.chars().count()).max().unwrap_or(10).max(10);
        let _ = writeln!(out, "  {:<width$}  {:>7}  {:>7}  {:>6}  {:>12}", "stage", "seconds", "sent", "lost", "longest gap");
        for interval in &self.intervals {
            let gap = if interval.lost == 0 { "-".to_string() } else { format!("{:.0} ms", interval.longest_gap_ms) };
            let _ = writeln!(
                out,
                "  {:<width$}  {:>7.1}  {:>7}  {:>6}  {:>12}",
                interval.label, interval.seconds, interval.sent, interval.lost, gap
            );
        }
        for interval in self.intervals.iter().filter(|interval| interval.lost > 0) {
            let _ = writeln!(out, "\n  {}: loss on {}", interval.label, interval.probes_with_loss.join(", "));
        }
        out.push('\n');
        if let Some(error) = &self.error {
            let _ = writeln!(out, "The apply stopped: {error}");
        }
        if let Some(pending) = &self.pending {
            let _ = writeln!(out, "Left for a person: {pending}.");
        }
        if self.hitless {
            out.push_str("Hitless: no echo request was lost in any stage.\n");
        } else {
            let _ = writeln!(out, "Not hitless: {} echo requests lost.", self.lost());
        }
        out
    }
}

/// Progress that also marks stage boundaries on ping's clock and lets Felix follow each stage.
struct Marks<'a> {
    layout: &'a Layout,
    starts: Vec<(String, f64)>,
    say: &'a mut dyn FnMut(&str),
    problems: Vec<String>,
}

impl Progress for Marks<'_> {
    fn stage(&mut self, stage: &Stage, total: usize) {
        self.starts.push((format!("{} {}", stage.number, stage.title), probe::now()));
        (self.say)(&format!("stage {}/{total}: {}", stage.number, stage.title));
    }
    fn step(&mut self, text: &str) {
        (self.say)(&format!("  {text}"));
    }
    fn waiting(&mut self, text: &str) {
        (self.say)(&format!("  waiting: {text}"));
    }
    fn done(&mut self, text: &str) {
        (self.say)(&format!("  {text}"));
        if text.starts_with("stage ") && text.ends_with(" done") {
            // Felix reprograms VXLAN from what the stage recorded.
            let state = StateDir::new(&self.layout.state_dir());
            let files = state.applied_files();
            for node in self.layout.nodes.iter().filter(|node| !node.vteps.is_empty()) {
                if let Some(routes) = files.get(&format!("nodes/{}/routes", node.name))
                    && let Err(error) = felix::sync_node(self.layout, node, routes)
                {
                    self.problems.push(error);
                }
            }
        }
    }
}

/// Which paths to probe: pod pairs across nodes and router → pod, as `verify` checks them,
/// leaving out paths this kernel cannot carry (IPIP).
fn probe_targets(layout: &Layout) -> Vec<(String, String, std::net::IpAddr)> {
    let state = StateDir::new(&layout.state_dir());
    let files = state.applied_files();
    let routes_of = |node: &str| files.get(&format!("nodes/{node}/routes")).cloned().unwrap_or_default();
    let mut targets = Vec::new();
    for router in &layout.routers {
        for pod in &layout.pods {
            let family = router.link.addresses.first().is_some_and(|address| address.addr().is_ipv4()) == pod.address.is_ipv4();
            let routed =
                router.static_routes.iter().any(|route| {
                    route.first().and_then(|net| net.parse::<ipnet::IpNet>().ok()).is_some_and(|net| net.contains(&pod.address))
                }) || router.speaker.is_some();
            let tunnelled = layout.ipip_pools.contains(&pod.pool) && !layout.ipip_in_kernel;
            if family && routed && !tunnelled {
                targets.push((format!("{} → {}", router.name, pod.name), router.namespace.clone(), pod.address));
            }
        }
    }
    let (pairs, _) = verify::pod_pairs(&layout.pods);
    for (a, b) in pairs {
        let (from, to) = (&layout.pods[a], &layout.pods[b]);
        let (from_routes, to_routes) = (routes_of(&from.node), routes_of(&to.node));
        let routed =
            |routes: &str, block: &ipnet::IpNet| routes.lines().any(|line| line.split_whitespace().any(|word| word == block.to_string()));
        if routed(&from_routes, &to.block)
            && routed(&to_routes, &from.block)
            && !layout.path_needs_ipip(&from_routes, &to.block)
            && !layout.path_needs_ipip(&to_routes, &from.block)
        {
            targets.push((format!("{} ↔ {}", from.name, to.name), from.namespace.clone(), to.address));
        }
    }
    if targets.len() > MAX_PROBES {
        // An even spread over the list: routers first, then pairs.
        let step = targets.len() as f64 / MAX_PROBES as f64;
        targets = (0..MAX_PROBES).map(|index| targets[(index as f64 * step) as usize].clone()).collect();
    }
    targets
}

pub fn apply(
    layout: &Layout,
    plan: &Plan,
    plan_name: &str,
    plan_digest: String,
    options: &ApplyOptions,
    say: &mut dyn FnMut(&str),
) -> Result<ApplyReport, String> {
    let probes_dir = layout.dir.join("probes");
    let _ = std::fs::remove_dir_all(&probes_dir);
    std::fs::create_dir_all(&probes_dir).map_err(|error| format!("cannot create `{}`: {error}", probes_dir.display()))?;
    let targets = probe_targets(layout);
    if targets.is_empty() {
        return Err("the lab has no path to probe (no pods, or only paths this kernel cannot carry)".into());
    }
    let mut probes = Vec::new();
    for (index, (label, namespace, target)) in targets.iter().enumerate() {
        probes.push(Probe::start(label, namespace, *target, &probes_dir.join(format!("probe{index}.log")))?);
    }
    // Every path must carry traffic before the plan starts, or loss would mean nothing.
    let ready =
        crate::daemons::wait_until(Duration::from_secs(10), "some probes never got an answer", || probes.iter().all(Probe::answered));
    if let Err(error) = ready {
        let silent: Vec<&str> = probes.iter().filter(|probe| !probe.answered()).map(|probe| probe.label.as_str()).collect();
        return Err(format!("{error}: {} (run `calplan lab verify`)", silent.join(", ")));
    }
    let began = probe::now();
    // A clean second on every path before the first stage, so that any loss is the plan's.
    let clean = crate::daemons::wait_until(Duration::from_secs(10), "some probes lose packets before the plan", || {
        let now = probe::now();
        probes.iter().all(|probe| probe.series().healthy_until(now, 1.0))
    });
    if let Err(error) = clean {
        let lossy: Vec<&str> =
            probes.iter().filter(|probe| !probe.series().healthy_until(probe::now(), 1.0)).map(|probe| probe.label.as_str()).collect();
        return Err(format!("{error}: {} (run `calplan lab verify`)", lossy.join(", ")));
    }
    say(&format!("probing {} paths every 20 ms", probes.len()));

    let secrets = up::secrets_for(plan.changes().filter_map(|change| match (&change.target, &change.after) {
        (Target::Node { node }, Some(Content::File { text })) if change.kind == "bird.cfg" => Some((node.as_str(), text.as_str())),
        (Target::Router { router }, Some(Content::File { text })) if change.kind == "frr.conf" => Some((router.as_str(), text.as_str())),
        _ => None,
    }));
    let state = StateDir::new(&layout.state_dir());
    let lock = calplan_apply::lock::Lock::acquire(
        &layout.state_dir(),
        &calplan_apply::lock::describe_holder(&format!("`{plan_name}` (calplan lab apply)")),
    )
    .map_err(|error| error.to_string())?;
    let executor_options = up::executor_options(layout, secrets, options.barrier_timeout, options.parallelism);
    let mut executor = Executor::new(plan, plan_digest, executor_options, state);
    let mut marks = Marks { layout, starts: Vec::new(), say, problems: Vec::new() };
    let result = executor.run(&mut marks);
    let ended = probe::now();
    drop(lock);
    let Marks { starts, problems, .. } = marks;

    // Settle: at least three seconds measured after the last stage (BIRD scans the kernel
    // every two), and until every probe has answered everything for a second, within the limit.
    let _ = crate::daemons::wait_until(options.settle, "settling", || {
        let now = probe::now();
        now - ended >= 4.0 && probes.iter().all(|probe| probe.series().healthy_until(now, 1.0))
    });
    let settled = probe::now() - 1.0;
    let labels: Vec<String> = probes.iter().map(|probe| probe.label.clone()).collect();
    let series: Vec<(String, Series)> = probes.into_iter().map(|probe| (probe.label.clone(), probe.stop())).collect();

    let mut bounds: Vec<(String, f64, f64)> = Vec::new();
    let first_start = starts.first().map_or(ended, |(_, start)| *start);
    bounds.push(("before the plan".to_string(), began, first_start));
    for (index, (label, start)) in starts.iter().enumerate() {
        let end = starts.get(index + 1).map_or(ended, |(_, next)| *next);
        bounds.push((label.clone(), *start, end));
    }
    bounds.push(("after the plan".to_string(), ended, settled.max(ended)));
    let intervals: Vec<Interval> = bounds
        .into_iter()
        .map(|(label, start, end)| {
            let mut interval =
                Interval { label, seconds: end - start, sent: 0, lost: 0, probes_with_loss: Vec::new(), longest_gap_ms: 0.0 };
            for (probe_label, series) in &series {
                let (sent, lost, longest) = series.loss_between(start, end);
                interval.sent += sent;
                interval.lost += lost;
                if lost > 0 {
                    interval.probes_with_loss.push(format!("{probe_label} ({lost})"));
                }
                interval.longest_gap_ms = interval.longest_gap_ms.max(longest as f64 * probe::INTERVAL * 1000.0);
            }
            interval
        })
        .collect();
    let (mut error, pending) = match result {
        Ok(Ended::Complete) => (None, None),
        Ok(Ended::Partial(pending)) => {
            (None, Some(format!("{pending} changes calplan cannot make (the lab keeps such routers as `lab up` left them)")))
        }
        Err(error) => (Some(error), None),
    };
    if !problems.is_empty() {
        error = Some(error.map_or_else(|| problems.join("; "), |error| format!("{error}; {}", problems.join("; "))));
    }
    let lost: usize = intervals.iter().map(|interval| interval.lost).sum();
    let report =
        ApplyReport { plan: plan_name.to_string(), probes: labels, hitless: lost == 0 && error.is_none(), intervals, error, pending };
    let mut json = serde_json::to_string_pretty(&report).expect("reports serialize");
    json.push('\n');
    calplan_apply::state::write_atomically(&layout.dir.join("apply-report.json"), json.as_bytes(), 0o644)?;
    Ok(report)
}
