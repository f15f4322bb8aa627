//! calplan_apply: carries out a saved plan, stage by stage, and stops safely at the first failure.
//!
//! The executor makes no choice of its own: it takes the plan's stages in order, writes each
//! change through the Calico backend or a host transport, waits on the stage's barrier against
//! real state, confirms or rolls back, and records the outcome in the state directory before
//! the next stage. Run again after an interruption, it skips what is done and redoes the rest:
//! every write compares what it finds with the plan first, so nothing is lost or doubled.

pub mod calico;
pub mod calicoctl_config;
pub mod etcd;
pub mod fanout;
pub mod hosts;
pub mod kubectl;
pub mod lock;
pub mod netns;
pub mod node_status;
pub mod observe;
pub mod secrets;
pub mod state;
pub mod transport;
pub mod verify;

use calico::{Applied, Backend};
use calplan_model::ownership::{self, NodeFile};
use calplan_plan::plan::{Barrier, Change, Content, Plan, Stage, Target};
use hosts::Loaded;
use state::{AppliedChange, Outcome, StageRecord, StateDir, StateRecord};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use transport::{Inventory, Transport};

/// The command-line names of an option's values, both ways: the engine names its choices, the
/// CLI offers them (calplan_apply does not depend on an argument parser).
pub trait Named: Sized + Copy + 'static {
    /// Every value, in the order `--help` lists them.
    const ALL: &'static [Self];
    fn name(self) -> &'static str;

    /// Every value's name.
    fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|value| value.name()).collect()
    }

    /// The value of a name.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|value| value.name() == name)
    }
}

/// What `--only` keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Only {
    Calico,
    Nodes,
    Routers,
}

impl Named for Only {
    const ALL: &'static [Only] = &[Only::Calico, Only::Nodes, Only::Routers];

    fn name(self) -> &'static str {
        match self {
            Only::Calico => "calico",
            Only::Nodes => "nodes",
            Only::Routers => "routers",
        }
    }
}

/// How session barriers read a node's sessions (`--observe`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Observe {
    /// From BIRD, through the transport ([`observe::sessions`]).
    #[default]
    Sessions,
    /// From `CalicoNodeStatus` resources, through the Kubernetes API, where `exec` is not
    /// allowed ([`node_status`]); also with `--only calico`.
    NodeStatus,
}

impl Named for Observe {
    const ALL: &'static [Observe] = &[Observe::Sessions, Observe::NodeStatus];

    fn name(self) -> &'static str {
        match self {
            Observe::Sessions => "sessions",
            Observe::NodeStatus => "node-status",
        }
    }
}

pub struct Options {
    pub backend: Option<Backend>,
    pub transport: Transport,
    pub inventory: Inventory,
    pub only: Option<Only>,
    /// `bird-secrets.conf` for nodes whose BIRD needs passwords.
    pub secrets: BTreeMap<String, String>,
    pub barrier_timeout: Duration,
    /// How session barriers read sessions.
    pub observe: Observe,
    /// How many hosts are worked on at once (`--parallelism`): loads, barrier reads,
    /// confirmations and rollbacks.
    pub parallelism: usize,
    /// Test hook: stop dead after this many steps, as a crash would.
    pub abort_after_step: Option<usize>,
}

/// Reports progress; the CLI draws bars on a terminal and plain lines otherwise.
pub trait Progress {
    fn stage(&mut self, stage: &Stage, total: usize);
    fn step(&mut self, text: &str);
    fn waiting(&mut self, text: &str);
    fn done(&mut self, text: &str);
}

pub struct Executor<'a> {
    plan: &'a Plan,
    plan_digest: String,
    options: Options,
    state: StateDir,
    steps: std::sync::atomic::AtomicUsize,
    /// The node and router files the plan's applied-directory source held.
    baseline: Option<BTreeMap<String, String>>,
    /// calico-node's renders as the plan predicts them ([`Executor::predicted_renders`]),
    /// hashed once rather than on every barrier poll.
    predicted: std::sync::OnceLock<BTreeMap<String, (&'a str, &'a str)>>,
}

/// How an apply ended.
pub enum Ended {
    Complete,
    /// `--only` left changes for a later apply.
    Partial(usize),
}

impl Ended {
    /// The apply's last line, for the operator.
    pub fn summary(&self, stages: usize, only: Option<Only>, state: &std::path::Path) -> String {
        match self {
            Ended::Complete => {
                format!("Apply complete: {}. The state is in `{}`.", calplan_plan::render::stages_phrase(stages), state.display())
            }
            Ended::Partial(pending) => format!(
                "Apply complete for `--only {}`: {pending} changes stay pending in `{}`; a later plan shows them.",
                only.map_or("", Named::name),
                state.display()
            ),
        }
    }
}

impl<'a> Executor<'a> {
    pub fn new(plan: &'a Plan, plan_digest: String, mut options: Options, state: StateDir) -> Executor<'a> {
        // Which file of a router is loaded follows its platform: the plan's, unless the
        // inventory says otherwise.
        for (router, platform) in &plan.router_platforms {
            options.inventory.hosts.entry(router.clone()).or_default().platform.get_or_insert_with(|| platform.clone());
        }
        Executor { plan, plan_digest, options, state, steps: Default::default(), baseline: None, predicted: Default::default() }
    }

    /// The files (by artifact path) the hosts held when the plan was made, from the applied
    /// directory it was planned against: the state directory starts its record of a new plan
    /// from them, so that it holds every file and not only those the plan changes.
    pub fn with_applied_baseline(mut self, files: BTreeMap<String, String>) -> Executor<'a> {
        self.baseline = Some(files);
        self
    }

    /// How long BIRD keeps a configuration unconfirmed: past the barrier's timeout, with room
    /// for the rest of the stage's steps, so that BIRD never goes back while calplan waits.
    fn bird_confirm_window(&self) -> Duration {
        (self.options.barrier_timeout + Duration::from_secs(300)).max(Duration::from_secs(u64::from(hosts::BIRD_CONFIRM_TIMEOUT)))
    }

    /// Before anything is changed: every host the remaining stages touch or wait on has a
    /// name calplan will use, and answers through the transport (for SSH, with its host key
    /// checked). One bad host stops the apply here, not halfway through a stage.
    fn preflight(&self, done: &BTreeSet<usize>, progress: &mut dyn Progress) -> Result<(), String> {
        let mut names: BTreeSet<&str> = BTreeSet::new();
        let agent = self.plan.node_agent;
        for stage in self.plan.stages.iter().filter(|stage| !done.contains(&stage.number)) {
            for change in stage.changes.iter().filter(|change| self.wants(&change.target) && !change.informational) {
                if let Target::Node { node } = &change.target
                    && let Some(file) = NodeFile::from_file_name(&change.kind)
                    && !ownership::calplan_loads(agent, file)
                {
                    return Err(format!(
                        "nothing was changed: the plan loads `{}` onto `{node}`, but its nodes are run by {}, which owns that file; \
                         plan again from an intent that says who runs the nodes (`spec.nodeAgent`)",
                        change.kind,
                        agent.as_str()
                    ));
                }
                if let Target::Node { node: name } | Target::Router { router: name } = &change.target {
                    names.insert(name);
                }
            }
            if self.options.only != Some(Only::Calico) {
                match &stage.barrier {
                    // Read through the API with `--observe node-status`, not on the hosts.
                    Some(Barrier::SessionsEstablished { sessions, gone, .. }) if self.options.observe == Observe::Sessions => {
                        names.extend(sessions.keys().chain(gone.keys()).map(String::as_str))
                    }
                    Some(Barrier::RoutesPresent { routes, .. }) => names.extend(routes.keys().map(String::as_str)),
                    Some(Barrier::RenderLoaded { renders, routes, .. }) => {
                        let predicted = self.predicted_renders();
                        if let Some((node, _)) =
                            renders.iter().find(|(_, digests)| digests.iter().any(|digest| !predicted.contains_key(digest.as_str())))
                        {
                            return Err(format!(
                                "nothing was changed: stage {} waits for a render of `{node}` that the plan does not hold",
                                stage.number
                            ));
                        }
                        names.extend(renders.keys().chain(routes.keys()).map(String::as_str))
                    }
                    _ => {}
                }
            }
        }
        if self.options.observe == Observe::NodeStatus && agent != calplan_model::NodeAgent::CalicoNode {
            return Err(format!(
                "nothing was changed: `--observe node-status` reads sessions that calico-node reports, but the plan's nodes are \
                 run by {}: observe them with `--observe sessions`",
                agent.as_str()
            ));
        }
        if let Some((router, platform)) =
            self.plan.router_platforms.iter().find(|(_, platform)| !matches!(platform.as_str(), "linux" | "frr" | "ios" | "junos"))
        {
            return Err(format!(
                "nothing was changed: the plan gives router `{router}` the platform `{platform}`, which calplan does not know"
            ));
        }
        if let Some(name) = names.iter().find(|name| !transport::is_safe_word(name) || name.starts_with('-')) {
            return Err(format!(
                "the plan names the host `{name}`, which holds characters calplan will not pass to a shell or use in a path"
            ));
        }
        if self.options.transport.kind == transport::TransportKind::Local {
            return self.check_this_machine(&names);
        }
        if names.is_empty() {
            return Ok(());
        }
        progress.step(&format!("checking that {} hosts answer", names.len()));
        let reachable: Vec<transport::Host> = names
            .iter()
            .map(|name| self.options.inventory.host(name))
            .filter(|host| !matches!(host.settings.platform.as_deref(), Some("ios" | "junos")))
            .collect();
        let unreachable: Vec<String> =
            fanout::fan_out(&reachable, self.options.parallelism, |host| self.options.transport.check(host, &["true"], None).err())
                .into_iter()
                .flatten()
                .collect();
        if unreachable.is_empty() {
            Ok(())
        } else {
            Err(format!("nothing was changed: {} hosts do not answer: {}", unreachable.len(), unreachable.join("; ")))
        }
    }

    /// `--transport local` runs every node-side command on this machine: it may act only on
    /// hosts the inventory says are this machine (`thisMachine: true`), never by default — a
    /// plan for a cluster applied from a laptop would otherwise load each node's files, and
    /// read each node's sessions, on the laptop.
    fn check_this_machine(&self, names: &BTreeSet<&str>) -> Result<(), String> {
        let elsewhere: Vec<String> = names
            .iter()
            .map(|name| self.options.inventory.host(name))
            .filter(|host| !matches!(host.settings.platform.as_deref(), Some("ios" | "junos")))
            .filter(|host| host.settings.this_machine != Some(true))
            .map(|host| format!("`{}`", host.name))
            .collect();
        if elsewhere.is_empty() {
            return Ok(());
        }
        let shown = if elsewhere.len() > 8 {
            format!("{} and {} more", elsewhere[..8].join(", "), elsewhere.len() - 8)
        } else {
            elsewhere.join(", ")
        };
        Err(format!(
            "nothing was changed: `--transport local` would run the commands of {shown} on this machine, and the inventory does \
             not say they are this machine. Name a transport: `--transport ssh` with an `--inventory` saying how to reach \
             the hosts, `--transport kubectl` to run in the nodes' calico-node pods, or `--transport netns` for a lab; or \
             mark a host `thisMachine: true` in the inventory if calplan runs on it"
        ))
    }

    fn wants(&self, target: &Target) -> bool {
        matches!(
            (self.options.only, target),
            (None, _)
                | (Some(Only::Calico), Target::Calico)
                | (Some(Only::Nodes), Target::Node { .. })
                | (Some(Only::Routers), Target::Router { .. })
        )
    }

    /// One more step done; the test hook may end the process here (from any worker: steps
    /// made in parallel count in the order they finish).
    fn stepped(&self) {
        let steps = self.steps.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if self.options.abort_after_step == Some(steps) {
            eprintln!("calplan: test hook: stopping after step {steps}");
            std::process::exit(99);
        }
    }

    pub fn run(&mut self, progress: &mut dyn Progress) -> Result<Ended, String> {
        if self.options.transport.kind != transport::TransportKind::Ssh {
            return self.run_stages(progress);
        }
        // Kept beside the lock: the state directory is calplan's own and not shared.
        transport::share_ssh_connections(&self.state.root.join("ssh"))?;
        let ended = self.run_stages(progress);
        transport::close_ssh_connections();
        ended
    }

    fn run_stages(&mut self, progress: &mut dyn Progress) -> Result<Ended, String> {
        let mut record = self.state.read()?;
        let new_plan = record.plan != self.plan_digest;
        if new_plan {
            record = StateRecord { plan: self.plan_digest.clone(), stages: Vec::new() };
        }
        let done: BTreeSet<usize> = record
            .stages
            .iter()
            .filter(|stage| stage.outcome == Outcome::Complete || (stage.outcome == Outcome::Partial && self.options.only.is_some()))
            .map(|stage| stage.number)
            .collect();
        self.preflight(&done, progress)?;
        if new_plan && let Some(baseline) = &self.baseline {
            self.state.reset_applied(baseline)?;
        }
        let mut pending = 0;
        for stage in &self.plan.stages {
            if done.contains(&stage.number) {
                progress.done(&format!("stage {} already applied", stage.number));
                continue;
            }
            progress.stage(stage, self.plan.stages.len());
            record.stages.retain(|previous| previous.number != stage.number);
            match self.run_stage(stage, progress) {
                Ok(stage_record) => {
                    pending += stage_record.pending.len();
                    record.stages.push(stage_record);
                    record.stages.sort_by_key(|stage| stage.number);
                    self.state.write(&record)?;
                }
                Err(failure) => {
                    let (stage_record, error) = *failure;
                    record.stages.push(stage_record);
                    record.stages.sort_by_key(|stage| stage.number);
                    self.state.write(&record)?;
                    return Err(error);
                }
            }
        }
        Ok(if pending > 0 { Ended::Partial(pending) } else { Ended::Complete })
    }

    /// Applies a stage, waits on its barrier, confirms; on failure rolls back what it did.
    fn run_stage(&mut self, stage: &Stage, progress: &mut dyn Progress) -> Result<StageRecord, Box<(StageRecord, String)>> {
        let mut record = StageRecord {
            number: stage.number,
            title: stage.title.clone(),
            outcome: Outcome::Complete,
            applied: Vec::new(),
            pending: Vec::new(),
            error: None,
        };
        let mut done: Vec<&Change> = Vec::new();
        let mut awaiting_confirm: Vec<String> = Vec::new();
        for step in &stage.manual {
            progress.step(&format!("manual: {step}"));
        }
        let calico: Vec<&Change> =
            stage.changes.iter().filter(|change| change.target == Target::Calico && self.wants(&change.target)).collect();
        if let (false, Some(backend)) = (calico.is_empty(), &self.options.backend) {
            match backend.preflight(&calico) {
                Ok(0) => {}
                Ok(checked) => progress.step(&format!("the API server accepted the stage's {checked} writes in a dry run")),
                Err(error) => {
                    return Err(self.failed(
                        record,
                        format!("stage {} ({}): refused before anything was written: {error}", stage.number, stage.title),
                    ));
                }
            }
        }
        // Hosts before the datastore when adding (routers learn a pool before pods can use it);
        // the datastore first when removing. Within a stage the plan already ordered them: the
        // datastore's changes are made one by one in that order, and each run of host changes
        // between them fans out over the hosts, each host's own changes in order.
        let changes: Vec<&Change> = stage.changes.iter().filter(|change| !change.informational).collect();
        let mut position = 0;
        while position < changes.len() {
            let change = changes[position];
            if !self.wants(&change.target) {
                record.pending.push(format!("{} {}", change.kind, change.name));
                position += 1;
                continue;
            }
            let batch: Vec<&Change> = if change.target == Target::Calico {
                vec![change]
            } else {
                changes[position..]
                    .iter()
                    .take_while(|change| change.target != Target::Calico)
                    .copied()
                    .filter(|change| {
                        let wanted = self.wants(&change.target);
                        if !wanted {
                            record.pending.push(format!("{} {}", change.kind, change.name));
                        }
                        wanted
                    })
                    .collect()
            };
            position += if change.target == Target::Calico {
                1
            } else {
                changes[position..].iter().take_while(|change| change.target != Target::Calico).count()
            };
            let outcomes = if change.target == Target::Calico {
                progress.step(&format!("{} {}", change.action.symbol(), describe(change)));
                let outcome = self.apply_change(change, false);
                if outcome.is_ok() {
                    self.stepped();
                }
                vec![Some(outcome)]
            } else {
                self.apply_on_hosts(&batch, progress)
            };
            let mut failure = None;
            for (change, outcome) in batch.iter().zip(outcomes) {
                match outcome {
                    Some(Ok(outcome)) => {
                        if let Outcome2::AwaitsConfirm(host) = &outcome {
                            awaiting_confirm.push(host.clone());
                        }
                        if let Outcome2::Manual(text) = &outcome {
                            record.pending.push(text.clone());
                        }
                        record.applied.push(applied_record(change));
                        done.push(change);
                    }
                    Some(Err(error)) if failure.is_none() => failure = Some(error),
                    _ => {}
                }
            }
            if let Some(error) = failure {
                let rollback = self.roll_back(&done, &awaiting_confirm, progress);
                return Err(self.failed(record, format!("stage {} ({}): {error}{rollback}", stage.number, stage.title)));
            }
        }
        if let Some(barrier) = &stage.barrier {
            if self.skips(barrier) {
                progress.step(&format!("not waiting (--only calico): {}", barrier.description()));
            }
            progress.waiting(barrier.description());
            let waited = Instant::now();
            if let Err(error) = self.wait(barrier, progress) {
                let rollback = self.roll_back(&done, &awaiting_confirm, progress);
                return Err(self.failed(record, format!("stage {} ({}): barrier not met: {error}{rollback}", stage.number, stage.title)));
            }
            // How long real state took to match: the evidence that the barrier waited.
            progress.done(&format!("barrier held after {:.1}s", waited.elapsed().as_secs_f64()));
            self.stepped();
        }
        let confirmed = fanout::fan_out(&awaiting_confirm, self.options.parallelism, |node| {
            hosts::confirm_bird(&self.options.transport, &self.options.inventory.host(node))
        });
        if let Some((node, Err(error))) = awaiting_confirm.iter().zip(confirmed).find(|(_, confirmed)| confirmed.is_err()) {
            return Err(self.failed(record, format!("stage {}: cannot confirm BIRD's configuration on `{node}`: {error}", stage.number)));
        }
        if !record.pending.is_empty() {
            record.outcome = Outcome::Partial;
        }
        // What calico-node makes of the stage follows the datastore: recorded when the stage
        // wrote the datastore (not with `--only nodes` or `--only routers`).
        let observed = stage.changes.iter().filter(|change| change.informational && self.wants(&Target::Calico));
        for change in done.iter().copied().chain(observed) {
            if let Target::Node { node } | Target::Router { router: node } = &change.target {
                let path = artifact_path(change, node);
                let contents = match &change.after {
                    Some(Content::File { text }) => Some(text.as_str()),
                    _ => None,
                };
                if let Err(error) = self.state.record_file(&path, contents) {
                    return Err(self.failed(record, error));
                }
            }
        }
        progress.done(&format!("stage {} done", stage.number));
        Ok(record)
    }

    fn failed(&self, mut record: StageRecord, error: String) -> Box<(StageRecord, String)> {
        record.outcome = Outcome::RolledBack;
        record.error = Some(error.clone());
        Box::new((record, error))
    }

    /// Undoes the stage's changes, newest first on each host, the hosts in parallel (the
    /// datastore's changes, newest first, once the hosts are done). Returns words for the
    /// error message.
    fn roll_back(&mut self, done: &[&Change], awaiting_confirm: &[String], progress: &mut dyn Progress) -> String {
        let undo = |change: &Change| -> Result<(), String> {
            match (&change.target, change.kind.as_str()) {
                (Target::Node { node }, "bird.cfg") if awaiting_confirm.contains(node) => {
                    // The file on disk goes back too, so a restart runs the old configuration.
                    let host = self.options.inventory.host(node);
                    let previous = match &change.before {
                        Some(Content::File { text }) => Some(text.as_str()),
                        _ => None,
                    };
                    hosts::restore_bird(&self.options.transport, &host, previous)
                }
                _ => self.apply_change(change, true).map(|_| ()),
            }
        };
        let by_host = group_by_host(done.iter().copied().filter(|change| change.target != Target::Calico));
        let undone: Vec<Vec<(&Change, Result<(), String>)>> = fanout::fan_out(&by_host, self.options.parallelism, |(_, changes)| {
            changes.iter().rev().map(|(_, change)| (*change, undo(change))).collect()
        });
        let mut problems = Vec::new();
        for (change, result) in undone.into_iter().flatten() {
            progress.step(&format!("rolled back {}", describe(change)));
            if let Err(error) = result {
                problems.push(error);
            }
        }
        for change in done.iter().rev().filter(|change| change.target == Target::Calico) {
            progress.step(&format!("rolling back {}", describe(change)));
            if let Err(error) = undo(change) {
                problems.push(error);
            }
        }
        if problems.is_empty() {
            "; the stage's changes were rolled back".to_string()
        } else {
            format!("; rolling back failed too: {}", problems.join("; "))
        }
    }

    /// Makes a run of host changes: each host's changes in plan order, the hosts at most
    /// `parallelism` at once. Once one change fails no host starts another. Progress is
    /// reported in plan order once all are done, with what the fan-out took. `None` for a
    /// change not started.
    fn apply_on_hosts(&self, batch: &[&Change], progress: &mut dyn Progress) -> Vec<HostOutcome> {
        let by_host = group_by_host(batch.iter().copied());
        let failed = std::sync::atomic::AtomicBool::new(false);
        let started = Instant::now();
        let results: Vec<(Duration, Vec<(usize, HostOutcome)>)> = fanout::fan_out(&by_host, self.options.parallelism, |(_, changes)| {
            let began = Instant::now();
            let mut outcomes = Vec::new();
            for (position, change) in changes {
                if failed.load(std::sync::atomic::Ordering::SeqCst) {
                    outcomes.push((*position, None));
                    continue;
                }
                let outcome = self.apply_change(change, false);
                match &outcome {
                    Ok(_) => self.stepped(),
                    Err(_) => failed.store(true, std::sync::atomic::Ordering::SeqCst),
                }
                outcomes.push((*position, Some(outcome)));
            }
            (began.elapsed(), outcomes)
        });
        let elapsed = started.elapsed();
        let slowest = by_host.iter().zip(&results).max_by_key(|(_, (took, _))| *took).map(|((host, _), (took, _))| (*host, *took));
        // Back into plan order (the batch's), whatever order the hosts finished in.
        let mut outcomes: Vec<HostOutcome> = batch.iter().map(|_| None).collect();
        for (position, outcome) in results.into_iter().flat_map(|(_, outcomes)| outcomes) {
            outcomes[position] = outcome;
        }
        let by_change: Vec<(&Change, HostOutcome)> = batch.iter().copied().zip(outcomes).collect();
        for (change, outcome) in &by_change {
            match outcome {
                Some(Ok(_)) => progress.step(&format!("{} {}", change.action.symbol(), describe(change))),
                Some(Err(error)) => progress.step(&format!("{} {}: failed: {error}", change.action.symbol(), describe(change))),
                None => progress.step(&format!("{} {}: not started", change.action.symbol(), describe(change))),
            }
        }
        if let Some((host, took)) = slowest.filter(|_| by_host.len() > 1) {
            progress.step(&format!(
                "{} changes on {} hosts in {:.1}s, {} at a time (slowest host: `{host}`, {:.1}s)",
                batch.len(),
                by_host.len(),
                elapsed.as_secs_f64(),
                self.options.parallelism.min(by_host.len()),
                took.as_secs_f64()
            ));
        }
        by_change.into_iter().map(|(_, outcome)| outcome).collect()
    }

    fn apply_change(&self, change: &Change, reverse: bool) -> Result<Outcome2, String> {
        match &change.target {
            Target::Calico => {
                let Some(backend) = &self.options.backend else {
                    return Err("no Calico backend: give `--calico etcd://HOST:PORT`, `calicoctl` or `kubectl`".into());
                };
                backend.apply(change, reverse).map(|applied| match applied {
                    Applied::Written | Applied::AlreadyDone => Outcome2::Done,
                })
            }
            Target::Node { node } | Target::Router { router: node } => {
                let host = self.options.inventory.host(node);
                let content = if reverse { &change.before } else { &change.after };
                let text = match content {
                    Some(Content::File { text }) => Some(text.as_str()),
                    Some(Content::Resource { .. }) => return Err("the plan holds a resource where a file belongs".into()),
                    None => None,
                };
                let secrets = self.options.secrets.get(node).map(String::as_str);
                match hosts::load_within(&self.options.transport, &host, &change.kind, text, secrets, self.bird_confirm_window())? {
                    Loaded::AwaitsConfirm if !reverse => Ok(Outcome2::AwaitsConfirm(node.clone())),
                    Loaded::Manual(text) => Ok(Outcome2::Manual(text)),
                    _ => Ok(Outcome2::Done),
                }
            }
        }
    }

    /// Polls real state until the barrier holds or the timeout passes.
    fn wait(&self, barrier: &Barrier, progress: &mut dyn Progress) -> Result<(), String> {
        if let (Barrier::SessionsEstablished { sessions, route_reflectors, .. }, Observe::NodeStatus) = (barrier, self.options.observe) {
            return self.wait_node_status(sessions, route_reflectors, progress);
        }
        let deadline = Instant::now() + self.options.barrier_timeout;
        loop {
            let last = match self.check_barrier(barrier)? {
                None => return Ok(()),
                Some(missing) => missing,
            };
            if Instant::now() >= deadline {
                return Err(format!("after {}s: {last}", self.options.barrier_timeout.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// calico-node's renders as the plan predicts them, with their kind (`bird-calico.cfg` or
    /// `bird6-calico.cfg`), by digest ([`Barrier::RenderLoaded`]).
    fn predicted_renders(&self) -> &BTreeMap<String, (&'a str, &'a str)> {
        let plan: &'a Plan = self.plan;
        self.predicted.get_or_init(|| {
            plan.changes()
                .filter(|change| matches!(change.kind.as_str(), "bird-calico.cfg" | "bird6-calico.cfg"))
                .filter_map(|change| match &change.after {
                    Some(Content::File { text }) => Some((calplan_plan::current::text_digest(text), (change.kind.as_str(), text.as_str()))),
                    _ => None,
                })
                .collect()
        })
    }

    /// With `--only calico` the nodes are not calplan's to reach: their barriers are left to
    /// the operator, and the apply says so — except sessions read through the API.
    fn skips(&self, barrier: &Barrier) -> bool {
        self.options.only == Some(Only::Calico)
            && match barrier {
                Barrier::SessionsEstablished { .. } => self.options.observe == Observe::Sessions,
                Barrier::RoutesPresent { .. } | Barrier::RenderLoaded { .. } => true,
                Barrier::PoolEmpty { .. } => false,
            }
    }

    /// A session barrier read from `CalicoNodeStatus` resources, a rotating window of nodes at
    /// a time ([`node_status::Rotation`]), until every node has been seen Established. (The
    /// sessions a stage removes are not waited for here: a status lists the peers calico-node
    /// reports, not the protocols BIRD still has configured.)
    fn wait_node_status(
        &self,
        sessions: &BTreeMap<String, Vec<String>>,
        reflectors: &[String],
        progress: &mut dyn Progress,
    ) -> Result<(), String> {
        let nodes: Vec<String> = sessions.keys().cloned().collect();
        let mut rotation = node_status::Rotation::new(&nodes, reflectors);
        progress.step(&format!("observing {}", rotation.describe()));
        let reader = node_status::NodeStatusReader::new(transport::kubectl_program());
        let deadline = Instant::now() + self.options.barrier_timeout;
        let mut missing: BTreeMap<String, String> = BTreeMap::new();
        loop {
            let sample = rotation.sample();
            // calico-node refreshes a status every two seconds; a round waits a little longer.
            let within = deadline.saturating_duration_since(Instant::now()).clamp(Duration::from_secs(1), Duration::from_secs(10));
            let observed = reader.read(&sample, within)?;
            for node in &sample {
                let seen = match observed.get(node) {
                    Some(Ok(observed)) => {
                        let down = observed.not_established(&sessions[node]);
                        (!down.is_empty()).then(|| format!("{} not Established", down.join(", ")))
                    }
                    Some(Err(reason)) => Some(reason.clone()),
                    None => Some("not observed".into()),
                };
                rotation.record(node, seen.is_none());
                match seen {
                    Some(reason) => missing.insert(node.clone(), reason),
                    None => missing.remove(node),
                };
            }
            if rotation.done() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let pending = rotation.pending();
                let shown: Vec<String> = pending
                    .iter()
                    .take(8)
                    .map(|node| format!("`{node}`: {}", missing.get(*node).map_or("not observed yet", String::as_str)))
                    .collect();
                return Err(format!(
                    "after {}s, {} nodes not seen Established: {}",
                    self.options.barrier_timeout.as_secs(),
                    pending.len(),
                    shown.join("; ")
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `None` when the barrier holds; otherwise what is still missing.
    fn check_barrier(&self, barrier: &Barrier) -> Result<Option<String>, String> {
        match barrier {
            barrier if self.skips(barrier) => Ok(None),
            Barrier::SessionsEstablished { sessions, gone, .. } => {
                // Every node at once (within the bound): a round takes as long as the slowest
                // node's read, not the sum of them.
                let none = Vec::new();
                let nodes: Vec<&String> = sessions.keys().chain(gone.keys().filter(|node| !sessions.contains_key(*node))).collect();
                let observed = fanout::fan_out(&nodes, self.options.parallelism, |node| {
                    observe::sessions(&self.options.transport, &self.options.inventory.host(node), self.plan.node_agent)
                });
                let mut missing = Vec::new();
                for (node, observed) in nodes.into_iter().zip(observed) {
                    let observed = observed?;
                    let unreadable =
                        if observed.unreadable.is_empty() { String::new() } else { format!(" ({})", observed.unreadable.join("; ")) };
                    let down = observed.not_established(sessions.get(node).unwrap_or(&none));
                    if !down.is_empty() {
                        missing.push(format!("`{node}`: {} not Established{unreadable}", down.join(", ")));
                    }
                    let still: Vec<&str> =
                        gone.get(node).into_iter().flatten().filter(|name| observed.rows.contains_key(*name)).map(String::as_str).collect();
                    if !still.is_empty() {
                        missing.push(format!("`{node}`: {} still configured{unreadable}", still.join(", ")));
                    }
                }
                Ok((!missing.is_empty()).then(|| missing.join("; ")))
            }
            Barrier::PoolEmpty { pool, cidr, .. } => {
                let Some(backend) = &self.options.backend else {
                    return Err(format!("the barrier on `{pool}` being empty needs a Calico backend"));
                };
                let cidrs: Vec<ipnet::IpNet> = cidr.split(',').filter_map(|part| part.trim().parse().ok()).collect();
                let used = backend.addresses_in_use(&cidrs)?;
                Ok((used > 0).then(|| format!("{used} addresses of {cidr} are still in use")))
            }
            Barrier::RenderLoaded { renders, routes, unplaced_pools, .. } => {
                let texts = self.predicted_renders();
                let unplaced: Vec<ipnet::IpNet> = unplaced_pools.iter().filter_map(|pool| pool.parse().ok()).collect();
                let nodes: Vec<(&String, &String)> =
                    renders.iter().flat_map(|(node, digests)| digests.iter().map(move |digest| (node, digest))).collect();
                let observed = fanout::fan_out(&nodes, self.options.parallelism, |(node, digest)| {
                    let Some((kind, text)) = texts.get(digest.as_str()) else {
                        return Err(format!("the plan's barrier names a render of `{node}` that the plan does not hold"));
                    };
                    let host = self.options.inventory.host(node);
                    let ipv6 = *kind == "bird6-calico.cfg";
                    observe::render_loaded(&self.options.transport, &host, ipv6, &format!("nodes/{node}/{kind}"), text, &unplaced)
                });
                let mut missing = Vec::new();
                for ((node, _), observed) in nodes.into_iter().zip(observed) {
                    if let Some(reason) = observed? {
                        missing.push(format!("`{node}`: {reason}"));
                    }
                }
                if !missing.is_empty() {
                    return Ok(Some(missing.join("; ")));
                }
                let description = barrier.description().to_string();
                self.check_barrier(&Barrier::RoutesPresent { description, routes: routes.clone() })
            }
            Barrier::RoutesPresent { routes, .. } => {
                let hosts: Vec<(&String, &Vec<String>)> = routes.iter().collect();
                let absent = fanout::fan_out(&hosts, self.options.parallelism, |(name, expected)| {
                    let host = self.options.inventory.host(name);
                    // An IOS or Junos router is configured by a person and not observed by
                    // calplan; FRR's zebra installs routes under its own protocol number.
                    let compare_protocol = match host.settings.platform.as_deref() {
                        Some("ios" | "junos") => return Ok(Vec::new()),
                        Some("frr") => false,
                        _ => true,
                    };
                    let kernel = observe::kernel_routes(&self.options.transport, &host)?;
                    Ok::<_, String>(hosts::routes_present_with(&kernel, expected, compare_protocol))
                });
                let mut missing = Vec::new();
                for ((name, _), absent) in hosts.iter().zip(absent) {
                    let absent = absent?;
                    if !absent.is_empty() {
                        missing.push(format!("`{name}` lacks {} routes, such as `{}`", absent.len(), absent[0]));
                    }
                }
                Ok((!missing.is_empty()).then(|| missing.join("; ")))
            }
        }
    }
}

/// What became of one change in a fan-out: `None` when it was not started (another failed).
type HostOutcome = Option<Result<Outcome2, String>>;

enum Outcome2 {
    Done,
    AwaitsConfirm(String),
    Manual(String),
}

/// The host changes by host, hosts in the order they first appear, each host's changes in
/// plan order, with each change's position among those given.
fn group_by_host<'c>(changes: impl Iterator<Item = &'c Change>) -> Vec<(&'c str, Vec<(usize, &'c Change)>)> {
    let mut groups: Vec<(&str, Vec<(usize, &Change)>)> = Vec::new();
    let mut index_of: BTreeMap<&str, usize> = BTreeMap::new();
    for (position, change) in changes.enumerate() {
        let host = match &change.target {
            Target::Node { node } => node.as_str(),
            Target::Router { router } => router.as_str(),
            Target::Calico => continue,
        };
        let group = *index_of.entry(host).or_insert_with(|| {
            groups.push((host, Vec::new()));
            groups.len() - 1
        });
        groups[group].1.push((position, change));
    }
    groups
}

fn describe(change: &Change) -> String {
    match &change.target {
        Target::Calico => format!("{} {}", change.kind, change.name),
        Target::Node { node } => format!("{} on node {node}", change.kind),
        Target::Router { router } => format!("{} on router {router}", change.kind),
    }
}

/// The node and router files a plan writes, by artifact path (`nodes/<node>/<file>`), with the
/// digest each has once written (`None`: removed).
pub fn planned_file_digests(plan: &Plan) -> BTreeMap<String, Option<String>> {
    let mut digests = BTreeMap::new();
    for change in plan.changes() {
        let (Target::Node { node: owner } | Target::Router { router: owner }) = &change.target else { continue };
        let after = match &change.after {
            Some(Content::File { text }) => Some(calplan_plan::current::text_digest(text)),
            _ => None,
        };
        digests.insert(artifact_path(change, owner), after);
    }
    digests
}

fn artifact_path(change: &Change, owner: &str) -> String {
    match &change.target {
        Target::Router { .. } => format!("routers/{owner}/{}", change.kind),
        _ => format!("nodes/{owner}/{}", change.kind),
    }
}

fn applied_record(change: &Change) -> AppliedChange {
    let written = match &change.after {
        Some(Content::File { text }) => calplan_plan::current::text_digest(text),
        Some(Content::Resource { value }) => calplan_plan::current::text_digest(&value.to_string()),
        None => String::new(),
    };
    AppliedChange {
        action: change.action.verb().to_string(),
        kind: change.kind.clone(),
        name: change.name.clone(),
        target: match &change.target {
            Target::Calico => "calico".to_string(),
            Target::Node { node } => format!("node/{node}"),
            Target::Router { router } => format!("router/{router}"),
        },
        sha256: written,
    }
}

/// The resources a plan touches, by `Kind/name`, with the digest each should have once the
/// change is made (`None`: deleted).
pub fn planned_digests(plan: &Plan) -> BTreeMap<String, (usize, Option<String>)> {
    let mut digests = BTreeMap::new();
    for stage in &plan.stages {
        for change in &stage.changes {
            if change.target != Target::Calico {
                continue;
            }
            if change.kind == calplan_calico::installation::KIND {
                let after = match &change.after {
                    Some(Content::Resource { value }) => Some(calplan_plan::current::installation_digest(value)),
                    _ => None,
                };
                digests.insert(calplan_plan::current::INSTALLATION_KEY.to_string(), (stage.number, after));
                continue;
            }
            let Some(kind) = calplan_calico::resources::ResourceKind::from_kind(&change.kind) else { continue };
            let after = match &change.after {
                Some(Content::Resource { value }) => {
                    calplan_calico::resources::Resource::from_json(kind, value.clone()).ok().map(|r| calplan_plan::diff::digest(&r))
                }
                _ => None,
            };
            digests.insert(format!("{}/{}", change.kind, change.name), (stage.number, after));
        }
    }
    digests
}
