//! `lab apply`: a saved plan carried out against the lab by apply's executor (netns
//! transport, the lab's inventory, the record backend), while pings every 20 ms between pod
//! pairs and from routers to pods run throughout. The executor's progress callbacks mark
//! where each stage begins, so every lost echo request is laid against the stage it was sent
//! in: a plan is hitless when no stage, nor the settling time after the last, lost one.
//!
//! It changes the lab only through the executor, and through Felix's part after each stage
//! (VXLAN routes follow the routes file the stage applied, as Felix follows the datastore).
//! In calico-node mode the executor writes the lab's etcd and the pins only; BIRD follows
//! through the lab's confd emulation, and Felix's part is the emulation's too. There the lab
//! also does what the notes' pool migration asks of a person at a pool-empty barrier: it
//! recreates, one after the other, each pod holding an address of the pool being emptied
//! (`kubectl delete pod`; its replacement gets an address from the lab's IPAM). The paths of
//! a pod being recreated are stopped while it is gone and probed again at its new address;
//! the time until they answer is the pod's downtime, reported apart, and every other path
//! must lose nothing.

use crate::pods::Recreated;
use crate::probe::{self, Probe, Series};
use crate::topology::Layout;
use crate::{felix, up, verify};
use calplan_apply::state::StateDir;
use calplan_apply::{Ended, Executor, Progress};
use calplan_model::NodeAgent;
use calplan_plan::plan::Barrier;
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
    /// The pods the lab recreated at a pool-empty barrier, with their downtime.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recreated: Vec<RecreatedPod>,
    pub hitless: bool,
}

/// A pod the lab recreated, and how long its paths went unanswered.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecreatedPod {
    #[serde(flatten)]
    pub pod: Recreated,
    /// From its deletion until every path of its replacement answered.
    pub downtime_ms: Option<f64>,
    /// Its paths, probed again at the new address.
    pub paths: Vec<String>,
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
        if !self.recreated.is_empty() {
            let _ = writeln!(
                out,
                "\nPods recreated at the pool-empty barrier (as `kubectl delete pod`), one after the other; their paths were not \
                 probed while they were gone, and the loss above is the other paths':"
            );
            for pod in &self.recreated {
                let downtime = pod.downtime_ms.map_or("never answered again".to_string(), |ms| format!("down {ms:.0} ms"));
                let _ = writeln!(
                    out,
                    "  {} on {}: {} → {} (block {}, pool `{}`), {downtime}",
                    pod.pod.pod, pod.pod.node, pod.pod.old_address, pod.pod.new_address, pod.pod.new_block, pod.pod.new_pool
                );
            }
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

/// A path's end: a router's namespace, or a pod (which may be recreated on the way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Router(usize),
    Pod(usize),
}

/// One probed path.
#[derive(Clone, Debug)]
struct Path {
    label: String,
    from: End,
    /// Always a pod.
    to: usize,
}

impl Path {
    fn involves(&self, pod: usize) -> bool {
        self.to == pod || self.from == End::Pod(pod)
    }

    fn start(&self, layout: &Layout, log: &std::path::Path) -> Result<Probe, String> {
        let namespace = match self.from {
            End::Router(index) => &layout.routers[index].namespace,
            End::Pod(index) => &layout.pods[index].namespace,
        };
        Probe::start(&self.label, namespace, layout.pods[self.to].address, log)
    }
}

/// A running probe; `restarted_for` names the recreation (an index into `Marks::recreated`)
/// a path was started again for: what it sent until its pod was back is the pod's downtime,
/// not loss.
struct Running {
    path: Path,
    probe: Probe,
    restarted_for: Option<usize>,
}

/// A pod the lab recreated: where it went, when it was deleted, when every one of its paths
/// had answered everything for a second (`None`: never), and those paths.
struct Recreation {
    pod: Recreated,
    deleted: f64,
    back: Option<f64>,
    paths: Vec<String>,
}

/// Progress that also marks stage boundaries on ping's clock, lets Felix follow each stage
/// (BIRD 2 mode), and recreates the pods of a pool being emptied (calico-node mode).
struct Marks<'a> {
    layout: Layout,
    starts: Vec<(String, f64)>,
    say: &'a mut dyn FnMut(&str),
    problems: Vec<String>,
    stage: Option<Stage>,
    running: Vec<Running>,
    /// Series of probes stopped early: (label, series, the recreation it was restarted for).
    finished: Vec<(String, Series, Option<usize>)>,
    recreated: Vec<Recreation>,
    probes_dir: std::path::PathBuf,
    logs: usize,
}

impl Marks<'_> {
    fn start(&mut self, path: Path, restarted_for: Option<usize>) -> Result<(), String> {
        let log = self.probes_dir.join(format!("probe{}.log", self.logs));
        self.logs += 1;
        let probe = path.start(&self.layout, &log)?;
        self.running.push(Running { path, probe, restarted_for });
        Ok(())
    }

    /// What `kubectl delete pod` does to every pod holding an address of `cidrs`, one pod after
    /// the other, each back (every path answering) before the next goes.
    fn recreate_pods(&mut self, cidrs: &[ipnet::IpNet]) {
        let holding: Vec<usize> =
            (0..self.layout.pods.len()).filter(|index| cidrs.iter().any(|cidr| cidr.contains(&self.layout.pods[*index].address))).collect();
        for index in holding {
            let pod = self.layout.pods[index].clone();
            (self.say)(&format!(
                "  recreating pod `{}/{}` on {} (holds {}): kubectl delete pod",
                crate::datastore::POD_NAMESPACE,
                pod.name,
                pod.node,
                pod.address
            ));
            let (affected, kept): (Vec<Running>, Vec<Running>) =
                std::mem::take(&mut self.running).into_iter().partition(|running| running.path.involves(index));
            self.running = kept;
            let paths: Vec<Path> = affected.iter().map(|running| running.path.clone()).collect();
            for running in affected {
                let label = running.probe.label.clone();
                self.finished.push((label, running.probe.stop(), running.restarted_for));
            }
            let deleted = probe::now();
            let recreated = match crate::pods::recreate(&mut self.layout, index) {
                Ok(recreated) => recreated,
                Err(error) => {
                    self.problems.push(format!("recreating `{}`: {error}", pod.name));
                    continue;
                }
            };
            let number = self.recreated.len();
            for path in &paths {
                if let Err(error) = self.start(path.clone(), Some(number)) {
                    self.problems.push(error);
                }
            }
            let labels: Vec<String> = paths.iter().map(|path| path.label.clone()).collect();
            // Back when every path has answered everything for a second: the routes to its
            // new block have reached every node.
            let restarted = probe::now();
            let stable = crate::daemons::wait_until(Duration::from_secs(60), "the recreated pod does not answer steadily", || {
                let now = probe::now();
                now - restarted >= 2.0
                    && self
                        .running
                        .iter()
                        .filter(|running| running.restarted_for == Some(number))
                        .all(|running| running.probe.series().healthy_until(now, 1.0))
            });
            let back = match stable {
                Ok(()) => {
                    // The end of the second `healthy_until` looked at (a younger request may
                    // still be answered).
                    let back = probe::now() - 1.0;
                    (self.say)(&format!("  `{}` is back at {} after {:.2}s", pod.name, recreated.new_address, back - deleted));
                    Some(back)
                }
                Err(error) => {
                    self.problems.push(format!("`{}` at {}: {error}", pod.name, recreated.new_address));
                    None
                }
            };
            self.recreated.push(Recreation { pod: recreated, deleted, back, paths: labels });
        }
    }
}

impl Progress for Marks<'_> {
    fn stage(&mut self, stage: &Stage, total: usize) {
        self.starts.push((format!("{} {}", stage.number, stage.title), probe::now()));
        self.stage = Some(stage.clone());
        (self.say)(&format!("stage {}/{total}: {}", stage.number, stage.title));
    }
    fn step(&mut self, text: &str) {
        (self.say)(&format!("  {text}"));
    }
    fn waiting(&mut self, text: &str) {
        (self.say)(&format!("  waiting: {text}"));
        if self.layout.node_agent != NodeAgent::CalicoNode {
            return;
        }
        if let Some(Stage { barrier: Some(Barrier::PoolEmpty { cidr, .. }), .. }) = &self.stage {
            let cidrs: Vec<ipnet::IpNet> = cidr.split(',').filter_map(|part| part.trim().parse().ok()).collect();
            self.recreate_pods(&cidrs);
        }
    }
    fn done(&mut self, text: &str) {
        (self.say)(&format!("  {text}"));
        if self.layout.node_agent == NodeAgent::Bird && text.starts_with("stage ") && text.ends_with(" done") {
            // Felix reprograms VXLAN from what the stage recorded.
            let state = StateDir::new(&self.layout.state_dir());
            let files = state.applied_files();
            for node in self.layout.nodes.iter().filter(|node| !node.vteps.is_empty()) {
                if let Some(routes) = files.get(&format!("nodes/{}/routes", node.name))
                    && let Err(error) = felix::sync_node(&self.layout, node, routes)
                {
                    self.problems.push(error);
                }
            }
        }
    }
}

/// Which paths to probe: pod pairs across nodes and router → pod, as `verify` checks them,
/// leaving out paths this kernel cannot carry (IPIP).
fn probe_targets(layout: &Layout) -> Vec<Path> {
    let state = StateDir::new(&layout.state_dir());
    let files = state.applied_files();
    let routes_of = |node: &str| files.get(&format!("nodes/{node}/routes")).cloned().unwrap_or_default();
    let mut targets = Vec::new();
    for (router_index, router) in layout.routers.iter().enumerate() {
        for (pod_index, pod) in layout.pods.iter().enumerate() {
            let family = router.link.addresses.first().is_some_and(|address| address.addr().is_ipv4()) == pod.address.is_ipv4();
            let routed =
                router.static_routes.iter().any(|route| {
                    route.first().and_then(|net| net.parse::<ipnet::IpNet>().ok()).is_some_and(|net| net.contains(&pod.address))
                }) || router.speaker.is_some();
            let tunnelled = layout.ipip_pools.contains(&pod.pool) && !layout.ipip_in_kernel;
            if family && routed && !tunnelled && layout.checks_family(pod.address.is_ipv4()) {
                targets.push(Path { label: format!("{} → {}", router.name, pod.name), from: End::Router(router_index), to: pod_index });
            }
        }
    }
    let (pairs, _) = verify::pod_pairs(&layout.pods);
    for (a, b) in pairs {
        let (from, to) = (&layout.pods[a], &layout.pods[b]);
        let (from_routes, to_routes) = (routes_of(&from.node), routes_of(&to.node));
        let routed =
            |routes: &str, block: &ipnet::IpNet| routes.lines().any(|line| line.split_whitespace().any(|word| word == block.to_string()));
        if layout.checks_family(from.address.is_ipv4())
            && routed(&from_routes, &to.block)
            && routed(&to_routes, &from.block)
            && !layout.path_needs_ipip(&from_routes, &to.block)
            && !layout.path_needs_ipip(&to_routes, &from.block)
        {
            targets.push(Path { label: format!("{} ↔ {}", from.name, to.name), from: End::Pod(a), to: b });
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
    if plan.node_agent != layout.node_agent {
        return Err(format!(
            "the plan is for nodes run by {}, and this lab's nodes are run by {}: plan from an intent whose `spec.nodeAgent` is `{}`, \
             or bring the lab up with `--node-agent {}`",
            plan.node_agent.as_str(),
            layout.node_agent.as_str(),
            layout.node_agent.as_str(),
            plan.node_agent.as_str()
        ));
    }
    let probes_dir = layout.dir.join("probes");
    let _ = std::fs::remove_dir_all(&probes_dir);
    std::fs::create_dir_all(&probes_dir).map_err(|error| format!("cannot create `{}`: {error}", probes_dir.display()))?;
    let targets = probe_targets(layout);
    if targets.is_empty() {
        return Err("the lab has no path to probe (no pods, or only paths this kernel cannot carry)".into());
    }
    let mut marks = Marks {
        layout: layout.clone(),
        starts: Vec::new(),
        say,
        problems: Vec::new(),
        stage: None,
        running: Vec::new(),
        finished: Vec::new(),
        recreated: Vec::new(),
        probes_dir,
        logs: 0,
    };
    for path in targets {
        marks.start(path, None)?;
    }
    // Every path must carry traffic before the plan starts, or loss would mean nothing.
    let ready = crate::daemons::wait_until(Duration::from_secs(10), "some probes never got an answer", || {
        marks.running.iter().all(|running| running.probe.answered())
    });
    if let Err(error) = ready {
        let silent: Vec<&str> =
            marks.running.iter().filter(|running| !running.probe.answered()).map(|running| running.path.label.as_str()).collect();
        return Err(format!("{error}: {} (run `calplan lab verify`)", silent.join(", ")));
    }
    let began = probe::now();
    // A clean second on every path before the first stage, so that any loss is the plan's.
    let clean = crate::daemons::wait_until(Duration::from_secs(10), "some probes lose packets before the plan", || {
        let now = probe::now();
        marks.running.iter().all(|running| running.probe.series().healthy_until(now, 1.0))
    });
    if let Err(error) = clean {
        let lossy: Vec<&str> = marks
            .running
            .iter()
            .filter(|running| !running.probe.series().healthy_until(probe::now(), 1.0))
            .map(|running| running.path.label.as_str())
            .collect();
        return Err(format!("{error}: {} (run `calplan lab verify`)", lossy.join(", ")));
    }
    let labels: Vec<String> = marks.running.iter().map(|running| running.path.label.clone()).collect();
    (marks.say)(&format!("probing {} paths every 20 ms", labels.len()));

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
    let executor_options = up::executor_options(layout, secrets, options.barrier_timeout, options.parallelism)?;
    let mut executor = Executor::new(plan, plan_digest, executor_options, state);
    let result = executor.run(&mut marks);
    let ended = probe::now();
    drop(lock);

    // Settle: at least three seconds measured after the last stage (BIRD scans the kernel
    // every two), and until every probe has answered everything for a second, within the limit.
    let _ = crate::daemons::wait_until(options.settle, "settling", || {
        let now = probe::now();
        now - ended >= 4.0 && marks.running.iter().all(|running| running.probe.series().healthy_until(now, 1.0))
    });
    let settled = probe::now() - 1.0;
    let Marks { starts, problems, running, mut finished, recreated, .. } = marks;
    finished.extend(running.into_iter().map(|running| (running.path.label.clone(), running.probe.stop(), running.restarted_for)));
    // A restarted path's requests until its pod was back are the pod's downtime: everything up
    // to the first answer after the last loss before the pod was back.
    let back_from = |series: &Series, back: f64| {
        let last_loss = series
            .requests
            .iter()
            .filter(|request| request.sent < back && !request.answered)
            .map(|request| request.sent)
            .fold(f64::NEG_INFINITY, f64::max);
        series.requests.iter().find(|request| request.answered && request.sent > last_loss).map(|request| request.sent)
    };
    let series: Vec<(String, Series)> = finished
        .iter()
        .map(|(label, series, restarted_for)| {
            let mut series = series.clone();
            if let Some(recreation) = restarted_for.map(|number| &recreated[number]) {
                let from = recreation.back.and_then(|back| back_from(&series, back)).unwrap_or(f64::INFINITY);
                series.requests.retain(|request| request.sent >= from);
            }
            (label.clone(), series)
        })
        .collect();
    let recreated: Vec<RecreatedPod> = recreated
        .iter()
        .enumerate()
        .map(|(number, recreation)| {
            let returns: Vec<Option<f64>> = finished
                .iter()
                .filter(|(_, _, restarted_for)| *restarted_for == Some(number))
                .map(|(_, series, _)| recreation.back.and_then(|back| back_from(series, back)))
                .collect();
            let downtime_ms = if returns.is_empty() || returns.iter().any(Option::is_none) {
                None
            } else {
                returns.iter().flatten().copied().reduce(f64::max).map(|at| (at - recreation.deleted) * 1000.0)
            };
            RecreatedPod { pod: recreation.pod.clone(), downtime_ms, paths: recreation.paths.clone() }
        })
        .collect();

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
    let hitless = lost == 0 && error.is_none() && recreated.iter().all(|pod| pod.downtime_ms.is_some());
    let report = ApplyReport { plan: plan_name.to_string(), probes: labels, hitless, intervals, error, pending, recreated };
    let mut json = serde_json::to_string_pretty(&report).expect("reports serialize");
    json.push('\n');
    calplan_apply::state::write_atomically(&layout.dir.join("apply-report.json"), json.as_bytes(), 0o644)?;
    Ok(report)
}
