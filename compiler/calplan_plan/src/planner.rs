//! The planner: from the current resources to the desired ones in ordered stages, each with
//! a barrier that must hold before the next.
//!
//! The plan is a sequence of resource states, current first and desired last; everything else
//! follows by compiling each state: the node and router files a stage pushes, the sessions its
//! barrier waits for, the `calicoctl node status` it leaves. The order is make-before-break:
//!
//! 1. pin each node's cluster routes, when sessions are about to change (the pins are static
//!    kernel routes below BIRD's, so replacing a session never leaves a node without a route);
//! 2. routers and NAT rules learn new pools before any pod can hold an address from them;
//! 3. new pools (and temporary ones a migration needs), and settings that change no session;
//!    then each change that restarts calico-node on every node (an operator-owned pool's
//!    encapsulation, BGPConfiguration `bindMode`) alone, with a barrier on every session;
//! 4. new BGPPeers (the reflector design's peers select no node until nodes carry the label);
//! 5. the mesh turned on; 6. nodes: labels, route-reflector cluster IDs, AS numbers, addresses;
//! 7. a new cluster AS number; 8. the mesh turned off; 9. BGPPeers removed or changed;
//! 10. pools leaving: disabled, their workloads recreated, a barrier on their being empty,
//!     deleted — through a temporary pool when the replacement overlaps them (Calico refuses
//!     overlapping pools and in-place CIDR or block-size changes);
//! 11. routers and NAT rules forget pools no pod can hold any more; 12. the pins removed.
//!
//! With `installation: operator`, changes to the pools the Tigera operator's Installation lists
//! become one change of `Installation.spec.calicoNetwork.ipPools` per stage, never IPPool writes.
//!
//! Pure: the same inputs give the same plan.

use crate::current::CurrentState;
use crate::diff::{self, managed_label_keys};
use crate::file_text::{FileText, Kept, Origin, materialise};
use crate::plan::*;
use calplan_calico::peering::Peerings;
use calplan_calico::resources::*;
use calplan_model::ownership::{self, Handling, NodeFile};
use calplan_model::{Analysis, NodeAgent};
use calplan_targets::{Context, Templates};
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};

/// The planner's steps. Which comes before which is a graph ([`phase_graph`]), so the order
/// is stated once, with its reasons, and checked for cycles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Phase {
    Pin,
    RoutesToNewPools,
    PoolsAndSettings,
    Restarts,
    NewPeerings,
    MeshOn,
    Nodes,
    ClusterAs,
    MeshOff,
    OldPeerings,
    DrainPools,
    RemainingSettings,
    RetireRoutes,
    Unpin,
}

/// "Must happen before", with the reason, for every pair the order depends on.
fn phase_graph() -> petgraph::graphmap::DiGraphMap<Phase, &'static str> {
    use Phase::*;
    let edges: &[(Phase, Phase, &str)] = &[
        (Pin, RoutesToNewPools, "no session changes until every node's routes are pinned"),
        (RoutesToNewPools, PoolsAndSettings, "routers and NAT learn a pool before any pod can hold its addresses"),
        (PoolsAndSettings, Restarts, "changes that restart calico-node everywhere come alone, after the ones that move nothing"),
        (Restarts, NewPeerings, "calico-node has restarted everywhere and its sessions are back before the topology changes"),
        (NewPeerings, Nodes, "the peerings that replace a reflector's mesh sessions exist before it becomes a reflector"),
        (MeshOn, Nodes, "the mesh is up before reflectors rejoin it as plain nodes"),
        (NewPeerings, MeshOn, "new peerings and the mesh come up before anything goes"),
        (Nodes, ClusterAs, "nodes carry their own AS before the cluster's changes"),
        (ClusterAs, MeshOff, "the mesh goes only once every other session is settled"),
        (Nodes, MeshOff, "every node has the sessions that replace the mesh before the mesh goes"),
        (MeshOff, OldPeerings, "old peerings go after the topology that replaces them is up"),
        (MeshOn, OldPeerings, "the mesh is up before the reflector peerings it replaces go"),
        (OldPeerings, DrainPools, "pools are emptied once routing is settled"),
        (DrainPools, RemainingSettings, "what no earlier step reached changes at the end"),
        (RemainingSettings, RetireRoutes, "routers forget a pool only after no pod can hold its addresses"),
        (RetireRoutes, Unpin, "pins go last, once BIRD's routes are back everywhere"),
    ];
    let mut graph = petgraph::graphmap::DiGraphMap::new();
    for (before, after, reason) in edges {
        graph.add_edge(*before, *after, *reason);
    }
    graph
}

/// The phases in an order the graph allows; ties go to the order the enum lists them.
fn phase_order() -> Vec<Phase> {
    let graph = phase_graph();
    let mut order = Vec::new();
    let mut ready: std::collections::BTreeSet<Phase> =
        graph.nodes().filter(|phase| graph.neighbors_directed(*phase, petgraph::Direction::Incoming).next().is_none()).collect();
    let mut remaining: BTreeMap<Phase, usize> =
        graph.nodes().map(|phase| (phase, graph.neighbors_directed(phase, petgraph::Direction::Incoming).count())).collect();
    while let Some(phase) = ready.pop_first() {
        order.push(phase);
        for next in graph.neighbors_directed(phase, petgraph::Direction::Outgoing) {
            let count = remaining.get_mut(&next).expect("every phase is counted");
            *count -= 1;
            if *count == 0 {
                ready.insert(next);
            }
        }
    }
    assert_eq!(order.len(), graph.node_count(), "the phase graph has a cycle");
    order
}

/// What the planner works from.
pub struct Input<'a> {
    pub intent: Fingerprint,
    /// The intent, analysed with the current IPAM affinities when they are known.
    pub desired: &'a Analysis,
    pub current: &'a CurrentState,
    pub sources: Vec<SourceFingerprint>,
    pub templates: &'a Templates,
    /// What reading the current state noticed (a tag Calico misread, say), for the notes.
    pub observations: Vec<String>,
}

/// How a plan carries an artifact of a cluster whose nodes `agent` runs: router files are
/// loaded; node files as [`ownership::handling`] says (on calico-node nodes only route pins are
/// loaded, and confd's render and the routes are shown as information); `None` for what plans
/// leave out (Calico resources are planned as resources, not files).
pub fn planned_artifact(path: &str, agent: NodeAgent) -> Option<Handling> {
    if path.starts_with("routers/") {
        return Some(Handling::Loaded);
    }
    let file = path.strip_prefix("nodes/")?.split_once('/')?.1;
    ownership::handling(agent, NodeFile::from_file_name(file)?)
}

/// Where an artifact path lands.
fn artifact_target(path: &str) -> (Target, String) {
    let mut parts = path.splitn(3, '/');
    let (kind, owner, file) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(path));
    let target = if kind == "routers" { Target::Router { router: owner.to_string() } } else { Target::Node { node: owner.to_string() } };
    (target, file.to_string())
}

/// Everything the planner carries from stage to stage.
struct Planner<'a> {
    input: &'a Input<'a>,
    /// Who runs the nodes: which node files are planned, and how.
    agent: NodeAgent,
    /// The resources as the last stage left them.
    state: ResourceSet,
    /// The files as the last stage left them, when node files are planned.
    files: Option<Files>,
    /// What compiling a state's files needs, once node files are compiled.
    recompile: std::sync::OnceLock<std::sync::Arc<Recompile>>,
    /// What `files` is known to be the compile of: the resources, the pools still routed and
    /// whether routes are pinned. A stage that leaves all three as they are changes no file,
    /// so it needs no compile of the whole cluster (a one-line change passes through a dozen
    /// phases, each of which compiled every node's files before).
    files_compiled_from: Option<(ResourceSet, BTreeMap<String, IpPool>, bool)>,
    /// Pools routers and NAT rules cover although the datastore does not hold them (yet, or
    /// any more).
    routed_pools: BTreeMap<String, IpPool>,
    peerings: Peerings,
    stages: Vec<Stage>,
    notes: Vec<String>,
    pinned: bool,
    /// Digests of calico-node's renders (by path) when the routes were pinned: the renders
    /// that differ when they are unpinned are the ones the unpinning waits for.
    renders_at_pin: BTreeMap<String, String>,
    /// The first intermediate state whose files could not be compiled: the plan is refused,
    /// since the stage's file changes would otherwise be guessed.
    failure: Option<PlanError>,
    /// The live IPAM every state is compiled with, when it is known.
    observed_ipam: Option<calplan_model::ipam::ObservedIpam>,
    /// `installation: operator`: the Installation as the last stage left it, and the pools it
    /// owns (changed through it, never as IPPools).
    operator: Option<Operator>,
}

/// A state's node and router files, by path.
type Files = BTreeMap<String, FileText>;

/// What compiling a state's files needs besides its resources, owned, so that a state can be
/// rendered again for the texts of the files a later stage changes.
struct Recompile {
    base: calplan_model::Model,
    templates: Templates,
    agent: NodeAgent,
    /// What confd learns outside the datastore, as the current state has it (only those parts
    /// of it): confd's render (and so the render-loaded barrier) depends on it.
    outside_datastore: CurrentState,
}

impl Recompile {
    /// Compiles `routed` (a state and the pools still routed) with the state's IPAM, handing
    /// each planned file to `keep` as it is rendered; the planned files' digests, by path.
    fn render(
        &self,
        routed: &ResourceSet,
        ipam: Option<&calplan_model::ipam::ObservedIpam>,
        keep: &(dyn Fn(&calplan_targets::Artifact) + Sync),
    ) -> Result<BTreeMap<String, String>, String> {
        let (model, _) = calplan_model::from_resources::from_resources(routed, &self.base);
        let mut analysis = Analysis::new(model, ipam);
        self.outside_datastore.add_outside_datastore(&mut analysis);
        let agent = self.agent;
        let sink = |artifact: &calplan_targets::Artifact| {
            if planned_artifact(&artifact.path, agent).is_some() {
                keep(artifact);
            }
            Ok(())
        };
        let context = Context { analysis: &analysis, templates: &self.templates, node: None, sink: Some(&sink) };
        let output = calplan_targets::compile(&context, None).map_err(|error| error.to_string())?;
        Ok(output
            .artifacts
            .into_iter()
            .filter(|(_, artifact)| planned_artifact(&artifact.path, agent).is_some())
            .map(|(_, artifact)| {
                let digest = artifact.sha256();
                (artifact.path, digest)
            })
            .collect())
    }
}

struct Operator {
    installation: serde_json::Value,
    /// Whether the current state holds the Installation (else `installation` is a skeleton).
    known: bool,
    pools: BTreeSet<String>,
}

/// A stage before it is compared with the state it follows.
struct Step {
    title: String,
    reason: String,
    disruption: Option<String>,
    manual: Vec<String>,
    barrier: Option<Barrier>,
    /// Wait for sessions after this stage even if the files alone change nothing.
    session_barrier: bool,
    /// The stage restarts calico-node on every node: disruptive whatever else changes, and
    /// followed by a barrier on every session being back.
    restarts_calico_node: bool,
}

impl Step {
    fn new(title: &str, reason: &str) -> Step {
        Step {
            title: title.into(),
            reason: reason.into(),
            disruption: None,
            manual: Vec::new(),
            barrier: None,
            session_barrier: true,
            restarts_calico_node: false,
        }
    }

    fn disruption(mut self, text: impl Into<String>) -> Step {
        self.disruption = Some(text.into());
        self
    }
}

/// A plan that cannot be made: a state on the way could not be compiled (the current state
/// holds a value the templates refuse, say), so its file changes are unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// The stage whose state failed to compile.
    pub stage: String,
    pub message: String,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot plan the stage \"{}\": its node and router files do not compile: {}", self.stage, self.message)
    }
}

impl std::error::Error for PlanError {}

pub fn plan(input: &Input) -> Result<Plan, PlanError> {
    let current = input.current.resources.clone().unwrap_or_default();
    let agent = input.desired.model.node_agent;
    let files = input.current.applied.as_ref().map(|applied| {
        applied
            .iter()
            .filter(|(path, _)| planned_artifact(path, agent).is_some())
            .map(|(path, text)| (path.clone(), text.clone()))
            .collect()
    });
    let mut planner = Planner {
        input,
        agent,
        peerings: Peerings::compute(&current, input.desired.model.calico_version.value),
        state: current,
        files,
        recompile: std::sync::OnceLock::new(),
        files_compiled_from: None,
        routed_pools: BTreeMap::new(),
        stages: Vec::new(),
        notes: Vec::new(),
        pinned: false,
        renders_at_pin: BTreeMap::new(),
        failure: None,
        observed_ipam: input.current.observed_ipam(),
        operator: None,
    };
    planner.notes.extend(input.observations.iter().cloned());
    planner.operator = planner.operator_pools();
    planner.run();
    if let Some(failure) = planner.failure {
        return Err(failure);
    }
    Ok(Plan {
        intent: input.intent.clone(),
        current: input.sources.clone(),
        nodes: None,
        node_agent: agent,
        router_platforms: router_platforms(input.desired),
        stages: planner.stages,
        notes: planner.notes,
    })
}

impl Planner<'_> {
    fn desired(&self) -> ResourceSet {
        self.desired_of(|_| true)
    }

    /// The desired resources of the kinds `wanted` accepts, merged with the live ones: the
    /// stages that need no Nodes do not merge the 20,000 of a large cluster again.
    fn desired_of(&self, wanted: impl Fn(ResourceKind) -> bool) -> ResourceSet {
        let mut desired = ResourceSet::default();
        for resource in self.input.desired.resources.iter().filter(|resource| wanted(resource.kind())) {
            let key = (resource.kind(), resource.name().to_string());
            let live = self.state.resources.get(&key);
            let merged = diff::merged(live.map(|live| &**live), resource);
            // A resource the intent leaves as it is shares the live one's memory: at 20,000
            // nodes a copy of every Node per set is most of the plan's peak.
            let shared = live.filter(|live| ***live == merged).cloned().unwrap_or_else(|| std::sync::Arc::new(merged));
            desired.resources.insert(key, shared);
        }
        desired
    }

    fn run(&mut self) {
        let input = self.input;
        if input.current.resources.is_none() {
            self.notes.push(
                "no Calico resources among the current-state sources: every resource is planned as new; pass \
                 `calicoctl get ippools,bgppeers,bgpconfigurations,nodes -o yaml` or etcd://HOST:PORT to plan against the cluster"
                    .into(),
            );
        }
        if self.files.is_none() {
            self.notes.push(match self.agent {
                NodeAgent::CalicoNode => "no earlier compile or apply directory among the current-state sources: route pins, router \
                     files and calico-node's render are not planned (calico-node renders BIRD's configuration from the resources); \
                     pass the directory of the last apply to plan them"
                    .into(),
                NodeAgent::Bird => "no earlier compile or apply directory among the current-state sources: node and router files \
                     are not planned; pass the directory of the last apply to plan them"
                    .into(),
            });
        }
        let desired = self.desired();
        let current = self.state.clone();
        for node in current.nodes() {
            if desired.get(ResourceKind::Node, &node.metadata.name).is_none() {
                self.notes.push(format!(
                    "node `{}` is in the cluster but not in the intent: calplan leaves it alone (deleting a Calico Node releases its addresses)",
                    node.metadata.name
                ));
            }
        }

        let pools_current: BTreeMap<String, IpPool> = current.pools().map(|p| (p.metadata.name.clone(), p.clone())).collect();
        let pools_desired: BTreeMap<String, IpPool> = desired.pools().map(|p| (p.metadata.name.clone(), p.clone())).collect();
        let cidr_of = |pool: &IpPool| pool.spec.cidr.parse::<IpNet>().ok();
        let immutable_changed =
            |old: &IpPool, new: &IpPool| cidr_of(old) != cidr_of(new) || old.spec.effective_block_size() != new.spec.effective_block_size();
        // Pools leaving: removed, or replaced because Calico cannot change their CIDR or block size.
        let leaving: Vec<IpPool> = pools_current
            .values()
            .filter(|old| pools_desired.get(&old.metadata.name).is_none_or(|new| immutable_changed(old, new)))
            .cloned()
            .collect();
        let arriving: Vec<IpPool> = pools_desired
            .values()
            .filter(|new| pools_current.get(&new.metadata.name).is_none_or(|old| immutable_changed(old, new)))
            .cloned()
            .collect();
        let overlaps = |a: &IpPool, b: &IpPool| match (cidr_of(a), cidr_of(b)) {
            (Some(a), Some(b)) => a.contains(&b) || b.contains(&a),
            _ => false,
        };
        // An arriving pool that overlaps a leaving one (or replaces one of the same name) can
        // only be created once that one is gone, so its workloads wait in a temporary pool.
        let blocked: Vec<IpPool> = arriving
            .iter()
            .filter(|new| leaving.iter().any(|old| old.metadata.name == new.metadata.name || overlaps(old, new)))
            .cloned()
            .collect();
        let free: Vec<IpPool> =
            arriving.iter().filter(|new| !blocked.iter().any(|b| b.metadata.name == new.metadata.name)).cloned().collect();
        let temporaries: Vec<IpPool> = leaving
            .iter()
            .filter(|old| blocked.iter().any(|new| new.metadata.name == old.metadata.name || overlaps(old, new)))
            .filter_map(|old| self.temporary_pool(old, &current, &desired))
            .collect();

        let configuration_current = current.bgp_configuration().cloned();
        let configuration_desired = desired.bgp_configuration().cloned();
        let mesh_now = configuration_current.as_ref().is_none_or(|c| c.spec.effective_mesh());
        let mesh_wanted = configuration_desired.as_ref().is_none_or(|c| c.spec.effective_mesh());
        let as_now = configuration_current.as_ref().map_or(calplan_calico::AsNumber::CALICO_DEFAULT, |c| c.spec.effective_as_number());
        let as_wanted = configuration_desired.as_ref().map_or(as_now, |c| c.spec.effective_as_number());
        let listen_now = configuration_current.as_ref().and_then(|c| c.spec.listen_port);
        let listen_wanted = configuration_desired.as_ref().and_then(|c| c.spec.listen_port);
        let bind_now = configuration_current.as_ref().and_then(|c| c.spec.bind_mode.clone());
        let bind_wanted = configuration_desired.as_ref().and_then(|c| c.spec.bind_mode.clone());
        // Operator-owned pools whose encapsulation changes: the operator rolls calico-node on
        // every node for that (tigera/operator#2340), so it is a stage of its own; until then
        // they keep their current modes.
        let held_encapsulation: BTreeMap<String, IpPool> = match &self.operator {
            Some(operator) => pools_current
                .iter()
                .filter(|(name, old)| {
                    operator.pools.contains(*name)
                        && pools_desired.get(*name).is_some_and(|new| {
                            !immutable_changed(old, new)
                                && calplan_calico::installation::encapsulation(&old.spec)
                                    != calplan_calico::installation::encapsulation(&new.spec)
                        })
                })
                .map(|(name, old)| (name.clone(), old.clone()))
                .collect(),
            None => BTreeMap::new(),
        };

        let session_changes = mesh_now != mesh_wanted
            || as_now != as_wanted
            || listen_now != listen_wanted
            || bind_now != bind_wanted
            || self.resource_changes_of(&current, &desired, ResourceKind::BgpPeer)
            || self.resource_changes_of(&current, &desired, ResourceKind::Node);

        let peers_desired: BTreeMap<String, BgpPeer> = desired.peers().map(|p| (p.metadata.name.clone(), p.clone())).collect();
        let peers_current: BTreeMap<String, BgpPeer> = current.peers().map(|p| (p.metadata.name.clone(), p.clone())).collect();
        for phase in phase_order() {
            match phase {
                Phase::Pin => {
                    // 1. Pins: before any session changes, and on calico-node before confd's
                    // render changes, since BIRD 1.6 replaces every route it exports to the
                    // kernel by deleting and adding it again whenever a filter changes. The
                    // pins then hold the routes of the final state as well, for the blocks
                    // that arrive on the way.
                    if self.files.is_some() {
                        // (Resources that do not change render nothing new: no compile.)
                        let last = match self.agent {
                            NodeAgent::CalicoNode if desired != current => self.compile_files(&desired).ok(),
                            _ => None,
                        };
                        let renders_change = match (&self.files, &last) {
                            (Some(files), Some(last)) => renders_of(files) != renders_of(last),
                            _ => false,
                        };
                        if session_changes || renders_change {
                            self.pin_routes(last.as_ref());
                        }
                    }
                }
                Phase::RoutesToNewPools => {
                    // 2. Routes and NAT for arriving pools, before any pod can hold their addresses.
                    for pool in free.iter().chain(&temporaries).chain(&blocked) {
                        self.routed_pools.insert(pool.metadata.name.clone(), pool.clone());
                    }
                    if self.files.is_some() && !self.routed_pools.is_empty() {
                        let names: Vec<String> = self.routed_pools.keys().map(|n| format!("`{n}`")).collect();
                        let mut step = Step::new(
                            "Routes to new pools",
                            &format!("{} learn {} before any pod can hold an address from them", self.route_learners(), names.join(", ")),
                        );
                        step.session_barrier = false;
                        self.stage(step, |_| {});
                    }
                }
                Phase::PoolsAndSettings => {
                    // 3. New pools and changes that move no session.
                    {
                        let free = free.clone();
                        let temporaries = temporaries.clone();
                        let desired_pools = pools_desired.clone();
                        let leaving_names: BTreeSet<String> = leaving.iter().map(|p| p.metadata.name.clone()).collect();
                        let configuration = configuration_desired.clone();
                        // BGPFilters before the peers that name them: confd leaves a filter
                        // that does not exist out, so a peer would run unfiltered meanwhile.
                        let filters: Vec<Resource> = desired.iter().filter(|r| r.kind() == ResourceKind::BgpFilter).cloned().collect();
                        let held = held_encapsulation.clone();
                        let bind_changes = bind_now != bind_wanted;
                        let mut step = Step::new(
                            "Pools and settings",
                            "new pools are created once routers can reach them; pool and BGP settings that move no session change here",
                        );
                        step.session_barrier = false;
                        self.stage(step, move |state| {
                            for filter in &filters {
                                state.insert(filter.clone());
                            }
                            for pool in free.iter().chain(&temporaries) {
                                state.insert(Resource::IpPool(pool.clone()));
                            }
                            for (name, pool) in &desired_pools {
                                if leaving_names.contains(name) || state.get(ResourceKind::IpPool, name).is_none() {
                                    continue;
                                }
                                let mut pool = pool.clone();
                                if let Some(old) = held.get(name) {
                                    pool.spec.ipip_mode = old.spec.ipip_mode;
                                    pool.spec.vxlan_mode = old.spec.vxlan_mode;
                                }
                                state.insert(Resource::IpPool(pool));
                            }
                            if let Some(wanted) = &configuration {
                                let live = state.bgp_configuration().cloned();
                                let mut next = wanted.clone();
                                next.spec.node_to_node_mesh_enabled = Some(mesh_now);
                                // Fields that move sessions keep their live values until their own stage.
                                if as_now != as_wanted {
                                    next.spec.as_number = live.as_ref().and_then(|c| c.spec.as_number);
                                }
                                if listen_now != listen_wanted {
                                    next.spec.listen_port = live.as_ref().and_then(|c| c.spec.listen_port);
                                }
                                if bind_changes {
                                    next.spec.bind_mode = live.as_ref().and_then(|c| c.spec.bind_mode.clone());
                                }
                                state
                                    .insert(diff::merged(live.map(Resource::BgpConfiguration).as_ref(), &Resource::BgpConfiguration(next)));
                            }
                        });
                    }
                }
                Phase::Restarts => {
                    // Changes that restart calico-node on every node, each alone, each followed
                    // by every session being back.
                    if !held_encapsulation.is_empty() {
                        let names: Vec<String> = held_encapsulation.keys().map(|name| format!("`{name}`")).collect();
                        let wanted: Vec<IpPool> = held_encapsulation.keys().filter_map(|name| pools_desired.get(name).cloned()).collect();
                        let mut step = Step::new(
                            "Pool encapsulation",
                            &format!(
                                "{} {} encapsulation through the Installation, on {} own",
                                names.join(", "),
                                if names.len() == 1 { "changes" } else { "change" },
                                if names.len() == 1 { "its" } else { "their" }
                            ),
                        )
                        .disruption(
                            "calico-node restarts on every node: the Tigera operator rolls its DaemonSet to change encapsulation, \
                             and each node's BGP sessions reset while its calico-node restarts",
                        );
                        step.restarts_calico_node = true;
                        self.stage(step, move |state| {
                            for pool in &wanted {
                                let Some(Resource::IpPool(live)) = state.get(ResourceKind::IpPool, &pool.metadata.name).cloned() else {
                                    continue;
                                };
                                let mut next = live;
                                next.spec.ipip_mode = pool.spec.ipip_mode;
                                next.spec.vxlan_mode = pool.spec.vxlan_mode;
                                state.insert(Resource::IpPool(next));
                            }
                        });
                    }
                    if bind_now != bind_wanted {
                        let wanted = bind_wanted.clone();
                        let mut step = Step::new(
                            "BGP bind mode",
                            &format!("BIRD binds to {} from now on", wanted.as_deref().unwrap_or("every address (bindMode unset)")),
                        )
                        .disruption("calico-node restarts BIRD on every node to bind anew: every BGP session resets");
                        step.restarts_calico_node = true;
                        self.stage(step, move |state| set_configuration(state, |spec| spec.bind_mode = wanted));
                    }
                }
                Phase::NewPeerings => {
                    // 4. New BGPPeers.
                    {
                        let new: Vec<BgpPeer> =
                            peers_desired.values().filter(|p| !peers_current.contains_key(&p.metadata.name)).cloned().collect();
                        let names: Vec<String> = new.iter().map(|p| format!("`{}`", p.metadata.name)).collect();
                        self.stage(
                            Step::new(
                                "New BGP peerings",
                                &format!(
                                    "{} come up beside the sessions that carry routes today; nothing is removed yet",
                                    names.join(", ")
                                ),
                            ),
                            move |state| {
                                for peer in &new {
                                    state.insert(Resource::BgpPeer(peer.clone()));
                                }
                            },
                        );
                    }
                }
                Phase::MeshOn => {
                    // 5. Mesh on.
                    if !mesh_now && mesh_wanted {
                        self.stage(
                            Step::new("Node-to-node mesh on", "the mesh comes up before reflectors or peers it replaces are removed")
                                .disruption("every node opens a session to every other non-reflector node; existing sessions stay up"),
                            |state| set_configuration(state, |spec| spec.node_to_node_mesh_enabled = Some(true)),
                        );
                    }
                }
                Phase::Nodes => {
                    // 6. Nodes: new reflectors first, then the nodes that move to them, then
                    // reflectors that retire (see `node_groups`).
                    // A node whose merge leaves the live one as it is shares it (see `desired`):
                    // it belongs to no group and says nothing, so it is not looked at again.
                    let nodes: Vec<CalicoNode> = desired
                        .resources
                        .iter()
                        .filter(|(key, resource)| {
                            key.0 == ResourceKind::Node
                                && !current.resources.get(*key).is_some_and(|live| std::sync::Arc::ptr_eq(live, resource))
                        })
                        .filter_map(|(_, resource)| match &**resource {
                            Resource::Node(node) => Some(node.clone()),
                            _ => None,
                        })
                        .collect();
                    let mut disruption: BTreeMap<String, Vec<String>> = BTreeMap::new();
                    for node in &nodes {
                        let live = current.get(ResourceKind::Node, &node.metadata.name);
                        let live_bgp = live.and_then(|r| match r {
                            Resource::Node(n) => n.spec.bgp.clone(),
                            _ => None,
                        });
                        let wanted_bgp = node.spec.bgp.clone().unwrap_or_default();
                        let live_id = cluster_id_of(&live_bgp);
                        let wanted_id = wanted_bgp.route_reflector_cluster_id.clone();
                        let said = disruption.entry(node.metadata.name.clone()).or_default();
                        if live.is_some() && live_id != wanted_id {
                            said.push(match (&live_id, &wanted_id) {
                                (None, Some(id)) => format!(
                                    "`{}` becomes a route reflector (cluster {id}) and leaves the mesh: its sessions are replaced",
                                    node.metadata.name
                                ),
                                (Some(id), None) => format!(
                                    "`{}` stops reflecting for cluster {id}: its reflector sessions are replaced",
                                    node.metadata.name
                                ),
                                (Some(old), Some(new)) => format!(
                                    "`{}` moves from cluster {old} to {new}: every session of its clients resets",
                                    node.metadata.name
                                ),
                                (None, None) => String::new(),
                            });
                        }
                        let live_as = live_bgp.as_ref().and_then(|b| b.as_number);
                        if live.is_some() && live_as != wanted_bgp.as_number {
                            said.push(format!("`{}` changes AS number: all its sessions reset", node.metadata.name));
                        }
                    }
                    let groups = node_groups(&current, &nodes);
                    let split = groups.iter().filter(|(_, members)| !members.is_empty()).count() > 1;
                    for (group, members) in groups {
                        if members.is_empty() {
                            continue;
                        }
                        let (title, why) = match (split, group) {
                            (false, _) => (
                                "Nodes",
                                "node labels, route-reflector cluster IDs, AS numbers and addresses change once the peerings that replace their sessions exist",
                            ),
                            (true, NodeGroup::NewReflectors) => (
                                "Reflector nodes",
                                "nodes that become route reflectors (or change cluster) first, so that their sessions exist before any client moves to them",
                            ),
                            (true, NodeGroup::Others) => (
                                "Nodes",
                                "node labels, AS numbers and addresses change once the reflectors they move to have their sessions",
                            ),
                            (true, NodeGroup::RetiringReflectors) => {
                                ("Retiring reflectors", "reflectors that stop reflecting go last, once no client depends on them")
                            }
                        };
                        let mut step = Step::new(title, why);
                        let said: Vec<String> = members
                            .iter()
                            .flat_map(|node| disruption.get(&node.metadata.name).cloned().unwrap_or_default())
                            .filter(|text| !text.is_empty())
                            .collect();
                        if !said.is_empty() {
                            step = step.disruption(said.join("; "));
                        }
                        self.stage(step, move |state| {
                            for node in &members {
                                let live = state.get(ResourceKind::Node, &node.metadata.name).cloned();
                                state.insert(diff::merged(live.as_ref(), &Resource::Node(node.clone())));
                            }
                        });
                    }
                }
                Phase::ClusterAs => {
                    // 7. Cluster AS number.
                    if as_now != as_wanted {
                        self.stage(
                            Step::new("Cluster AS number", &format!("the cluster moves from AS {as_now} to AS {as_wanted}"))
                                .disruption("every BGP session resets, and external peers must expect the new AS"),
                            move |state| set_configuration(state, |spec| spec.as_number = Some(as_wanted)),
                        );
                    }
                    if listen_now != listen_wanted {
                        let mut step = Step::new("BGP listen port", "BIRD listens on the new port")
                            .disruption("calico-node restarts BIRD on every node to listen on the new port: every BGP session resets");
                        step.restarts_calico_node = true;
                        self.stage(step, move |state| set_configuration(state, |spec| spec.listen_port = listen_wanted));
                    }
                }
                Phase::MeshOff => {
                    // 8. Mesh off.
                    if mesh_now && !mesh_wanted {
                        self.stage(
                            Step::new("Node-to-node mesh off", "every node now has the sessions that replace the mesh, so the mesh can go")
                                .disruption("mesh sessions close; routes stay up through the sessions the previous stages established"),
                            |state| set_configuration(state, |spec| spec.node_to_node_mesh_enabled = Some(false)),
                        );
                    }
                }
                Phase::OldPeerings => {
                    // 9. BGPPeers removed or changed.
                    {
                        let desired_peers = peers_desired.clone();
                        let changed: Vec<String> = peers_current
                            .keys()
                            .filter(|name| {
                                desired_peers.get(*name).is_none_or(|wanted| {
                                    let keys = BTreeSet::new();
                                    diff::view(&Resource::BgpPeer(wanted.clone()), &keys)
                                        != diff::view(&Resource::BgpPeer(peers_current[*name].clone()), &keys)
                                })
                            })
                            .map(|name| format!("`{name}`"))
                            .collect();
                        self.stage(
                            Step::new("Old BGP peerings", &format!("{} change or go once nothing depends on them", changed.join(", ")))
                                .disruption("sessions of the changed or removed BGPPeers close or reset"),
                            move |state| {
                                let names: Vec<String> = state.peers().map(|p| p.metadata.name.clone()).collect();
                                for name in names {
                                    match desired_peers.get(&name) {
                                        Some(wanted) => {
                                            state.insert(Resource::BgpPeer(wanted.clone()));
                                        }
                                        None => {
                                            state.resources.remove(&(ResourceKind::BgpPeer, name));
                                        }
                                    }
                                }
                            },
                        );
                    }
                }
                Phase::DrainPools => {
                    // 10. Pools leaving, through temporary pools where needed.
                    if !leaving.is_empty() {
                        self.drain_pools(&leaving, &blocked, &temporaries);
                    }
                }
                Phase::RemainingSettings => {
                    // Anything the stages above did not reach (a BGPConfiguration field, say).
                    {
                        let desired = self.desired_of(|kind| kind != ResourceKind::Node);
                        let mut step = Step::new("Remaining settings", "settings no earlier stage changed");
                        step.session_barrier = false;
                        self.stage(step, move |state| {
                            for resource in desired.iter() {
                                if resource.kind() != ResourceKind::Node {
                                    state.insert(resource.clone());
                                }
                            }
                            // BGPFilters no peer names any more, and nodes' own BGPConfigurations
                            // the intent no longer has, go last.
                            state.resources.retain(|(kind, name), _| match kind {
                                ResourceKind::BgpFilter => desired.get(*kind, name).is_some(),
                                ResourceKind::BgpConfiguration => name == "default" || desired.get(*kind, name).is_some(),
                                _ => true,
                            });
                        });
                    }
                }
                Phase::RetireRoutes => {
                    // 11. Routers and NAT forget pools that are gone.
                    self.routed_pools.clear();
                    if self.files.is_some() {
                        let mut step = Step::new(
                            "Retire routes",
                            &format!("{} drop pools no pod can hold an address from any more", self.route_learners()),
                        );
                        step.session_barrier = false;
                        self.stage(step, |_| {});
                    }
                }
                Phase::Unpin => {
                    // 12. Unpin.
                    if self.pinned {
                        self.unpin_routes();
                    }
                }
            }
        }
    }

    /// Who learns and forgets pools through files calplan loads: routers, and on BIRD 2 hosts
    /// calplan's NAT rules (on calico-node nodes Felix follows the datastore by itself).
    fn route_learners(&self) -> &'static str {
        match self.agent {
            NodeAgent::CalicoNode => "routers",
            NodeAgent::Bird => "routers and NAT rules",
        }
    }

    /// With `installation: operator`, the pools the operator owns: those its Installation lists,
    /// and, while it lists any, the pools the plan adds (so the operator owns them too).
    fn operator_pools(&mut self) -> Option<Operator> {
        if self.input.desired.model.installation != calplan_model::Installation::Operator {
            return None;
        }
        let desired = self.desired_of(|kind| kind == ResourceKind::IpPool);
        let mut names: BTreeSet<String> = desired.pools().map(|pool| pool.metadata.name.clone()).collect();
        names.extend(self.state.pools().map(|pool| pool.metadata.name.clone()));
        let Some(installation) = self.input.current.installation.clone() else {
            self.notes.push(
                "`installation: operator`, but no Installation among the current-state sources: the pools are planned through the \
                 Installation, whose other pools calplan cannot see, and apply will refuse to write it blind; pass \
                 `kubectl get installation default -o yaml`"
                    .into(),
            );
            let pools: Vec<&IpPool> = self.state.pools().collect();
            return Some(Operator { installation: calplan_calico::installation::skeleton(&pools), known: false, pools: names });
        };
        let listed = calplan_calico::installation::owned_pools(&installation);
        if listed.is_empty() {
            self.notes.push("the Installation lists no IP pools, so the operator leaves them alone: pools are changed as IPPools".into());
            return None;
        }
        let current: BTreeSet<String> = self.state.pools().map(|pool| pool.metadata.name.clone()).collect();
        let pools: BTreeSet<String> = names.into_iter().filter(|name| listed.contains(name) || !current.contains(name)).collect();
        let unlisted: Vec<String> = current.iter().filter(|name| !pools.contains(*name)).map(|name| format!("`{name}`")).collect();
        if !unlisted.is_empty() {
            self.notes.push(format!(
                "the Installation does not list {}: the operator leaves {} alone, so calplan changes {} as IPPools",
                unlisted.join(", "),
                if unlisted.len() == 1 { "it" } else { "them" },
                if unlisted.len() == 1 { "it" } else { "them" }
            ));
        }
        Some(Operator { installation, known: true, pools })
    }

    /// Folds the stage's changes to operator-owned pools into one change of the Installation's
    /// pool list, where the operator takes them from.
    fn through_installation(&mut self, changes: &mut Vec<Change>, next: &ResourceSet) {
        let Some(operator) = &mut self.operator else { return };
        let owned = |change: &Change| change.kind == "IPPool" && change.target == Target::Calico && operator.pools.contains(&change.name);
        let Some(position) = changes.iter().position(owned) else { return };
        let names: Vec<String> = changes.iter().filter(|change| owned(change)).map(|change| format!("`{}`", change.name)).collect();
        changes.retain(|change| !owned(change));
        let pools: Vec<&IpPool> = next.pools().filter(|pool| operator.pools.contains(&pool.metadata.name)).collect();
        let before = operator.installation.clone();
        let after = calplan_calico::installation::with_pools(&before, &pools);
        if calplan_calico::installation::managed_part(&before) == calplan_calico::installation::managed_part(&after) {
            return;
        }
        changes.insert(
            position,
            Change {
                action: Action::Update,
                kind: calplan_calico::installation::KIND.to_string(),
                name: calplan_calico::installation::NAME.to_string(),
                target: Target::Calico,
                before: operator.known.then(|| Content::Resource { value: before.clone() }),
                after: Some(Content::Resource { value: after.clone() }),
                reason: Some(format!(
                    "the Tigera operator owns {} (its Installation lists {}): the change goes through \
                     `Installation.spec.calicoNetwork.ipPools`, never to the IPPool, which the operator would revert",
                    names.join(", "),
                    if names.len() == 1 { "it" } else { "them" }
                )),
                informational: false,
            },
        );
        operator.installation = after;
    }

    /// Whether any resource of `kind` differs between two sets.
    fn resource_changes_of(&self, from: &ResourceSet, to: &ResourceSet, kind: ResourceKind) -> bool {
        let keys: BTreeSet<&ResourceKey> = from.resources.keys().chain(to.resources.keys()).filter(|(k, _)| *k == kind).collect();
        keys.into_iter().any(|key| {
            match (from.resources.get(key).map(|resource| &**resource), to.resources.get(key).map(|resource| &**resource)) {
                (Some(a), Some(b)) if std::ptr::eq(a, b) || a == b => false,
                (Some(a), Some(b)) => {
                    let label_keys = managed_label_keys(match b {
                        Resource::Node(node) => Some(node),
                        _ => None,
                    });
                    diff::view(a, &label_keys) != diff::view(b, &label_keys)
                }
                (None, Some(_)) => true,
                (Some(_), None) => kind != ResourceKind::Node,
                (None, None) => false,
            }
        })
    }

    /// A temporary pool to hold `old`'s workloads while it is replaced: the same size and
    /// settings, in the first range that overlaps nothing the cluster uses.
    fn temporary_pool(&mut self, old: &IpPool, current: &ResourceSet, desired: &ResourceSet) -> Option<IpPool> {
        let old_cidr = old.spec.cidr.parse::<IpNet>().ok()?;
        let mut taken: Vec<IpNet> = current.pools().chain(desired.pools()).filter_map(|pool| pool.spec.cidr.parse().ok()).collect();
        let model = &self.input.desired.model;
        taken.extend(model.service_cluster_ips.iter().map(|cidr| cidr.value));
        taken.extend(model.nodes.iter().filter_map(|node| node.ipv4_address.as_ref().map(|a| IpNet::V4(a.trunc()))));
        taken.extend(model.routers.iter().map(|router| router.address.trunc()));
        let prefix = old_cidr.prefix_len().max(if old_cidr.addr().is_ipv4() { 16 } else { 64 });
        let candidates: &[&str] = if old_cidr.addr().is_ipv4() {
            &["100.64.0.0/10", "198.18.0.0/15", "172.16.0.0/12", "10.0.0.0/8"]
        } else {
            &["fd5a:ca11:0::/48"]
        };
        let cidr = candidates.iter().filter_map(|range| range.parse::<IpNet>().ok()).find_map(|range| {
            range
                .subnets(prefix)
                .ok()?
                .take(4096)
                .find(|candidate| !taken.iter().any(|used| used.contains(candidate) || candidate.contains(used)))
        });
        let Some(cidr) = cidr else {
            self.notes.push(format!("no free range for a temporary pool to replace `{}`: free one and plan again", old.metadata.name));
            return None;
        };
        let name = format!("{}-temporary", old.metadata.name);
        let mut spec = old.spec.clone();
        spec.cidr = cidr.to_string();
        spec.disabled = None;
        spec.node_selector = Some("all()".into());
        self.notes.push(format!(
            "`{}` cannot be changed in place: its workloads move to the temporary pool `{name}` ({cidr}) and back, as Calico documents",
            old.metadata.name
        ));
        Some(IpPool { api_version: API_VERSION.into(), kind: "IPPool".into(), metadata: ObjectMeta::named(name), spec })
    }

    /// Disables, empties and deletes the leaving pools; creates the pools they blocked; and
    /// empties and deletes the temporary pools.
    fn drain_pools(&mut self, leaving: &[IpPool], blocked: &[IpPool], temporaries: &[IpPool]) {
        let names: Vec<String> = leaving.iter().map(|pool| format!("`{}`", pool.metadata.name)).collect();
        let leaving_names: BTreeSet<String> = leaving.iter().map(|pool| pool.metadata.name.clone()).collect();
        for pool in leaving {
            self.check_capacity(pool, temporaries);
        }
        // Disable: no new addresses; existing workloads keep theirs until recreated.
        let mut step = Step::new(
            "Disable leaving pools",
            &format!("{} stop handing out addresses; their workloads are recreated elsewhere", names.join(", ")),
        )
        .disruption("each listed workload restarts once, with an address from another pool");
        step.session_barrier = false;
        step.manual = leaving.iter().flat_map(|pool| self.recreate_instructions(pool)).collect();
        step.barrier = leaving.first().map(|pool| Barrier::PoolEmpty {
            description: format!("no address of {} is allocated", names.join(", ")),
            pool: pool.metadata.name.clone(),
            cidr: leaving.iter().map(|p| p.spec.cidr.clone()).collect::<Vec<_>>().join(","),
        });
        let leaving_list = leaving.to_vec();
        self.stage(step, move |state| {
            for pool in &leaving_list {
                let mut disabled = match state.get(ResourceKind::IpPool, &pool.metadata.name) {
                    Some(Resource::IpPool(live)) => live.clone(),
                    _ => continue,
                };
                disabled.spec.disabled = Some(true);
                state.insert(Resource::IpPool(disabled));
            }
        });
        self.pin_placed_blocks();
        // Delete the empty pools, then create what they were blocking.
        let mut step = Step::new("Delete emptied pools", &format!("{} hold no address any more", names.join(", ")));
        step.session_barrier = false;
        let blocked_list = blocked.to_vec();
        let replaced: BTreeSet<String> =
            blocked.iter().map(|pool| pool.metadata.name.clone()).filter(|name| leaving_names.contains(name)).collect();
        self.stage_with_replacements(step, &replaced, move |state| {
            for name in &leaving_names {
                state.resources.remove(&(ResourceKind::IpPool, name.clone()));
            }
            for pool in &blocked_list {
                state.insert(Resource::IpPool(pool.clone()));
            }
        });
        if temporaries.is_empty() {
            return;
        }
        let names: Vec<String> = temporaries.iter().map(|pool| format!("`{}`", pool.metadata.name)).collect();
        let mut step = Step::new("Disable temporary pools", &format!("workloads leave {} for the new pools", names.join(", ")))
            .disruption("each workload in a temporary pool restarts once more");
        step.session_barrier = false;
        step.manual = temporaries
            .iter()
            .map(|pool| {
                format!(
                    "recreate every workload with an address in {} (`{}`), for example by deleting its pod",
                    pool.spec.cidr, pool.metadata.name
                )
            })
            .collect();
        step.barrier = Some(Barrier::PoolEmpty {
            description: format!("no address of {} is allocated", names.join(", ")),
            pool: temporaries[0].metadata.name.clone(),
            cidr: temporaries.iter().map(|p| p.spec.cidr.clone()).collect::<Vec<_>>().join(","),
        });
        let temporary_list = temporaries.to_vec();
        self.stage(step, move |state| {
            for pool in &temporary_list {
                let mut disabled = pool.clone();
                disabled.spec.disabled = Some(true);
                state.insert(Resource::IpPool(disabled));
            }
        });
        let mut step = Step::new("Delete temporary pools", &format!("{} hold no address any more", names.join(", ")));
        step.session_barrier = false;
        let temporary_names: Vec<String> = temporaries.iter().map(|pool| pool.metadata.name.clone()).collect();
        self.stage(step, move |state| {
            for name in &temporary_names {
                state.resources.remove(&(ResourceKind::IpPool, name.clone()));
            }
        });
    }

    /// The manual step that empties a pool: the workloads holding its addresses, by name,
    /// when the current state says which; otherwise what is unknown.
    fn recreate_instructions(&self, pool: &IpPool) -> Vec<String> {
        let Ok(cidr) = pool.spec.cidr.parse::<IpNet>() else { return Vec::new() };
        let Some(workloads) = &self.input.current.workloads else {
            let usage = self
                .input
                .current
                .block_usage
                .as_ref()
                .map(|usage| usage.iter().filter(|(block, _)| cidr.contains(*block)).map(|(_, used)| used).sum::<u64>());
            return vec![match usage {
                Some(used) => format!(
                    "recreate every workload with an address in {cidr} (`{}`): IPAM counts {used} addresses in use; which workloads hold them \
                     is unknown (pass `calicoctl get workloadendpoints -A -o wide` to list them)",
                    pool.metadata.name
                ),
                None => format!(
                    "recreate every workload with an address in {cidr} (`{}`); which workloads these are is unknown (pass \
                     `calicoctl get workloadendpoints -A -o wide` to list them)",
                    pool.metadata.name
                ),
            }];
        };
        let mut holding: Vec<String> = workloads
            .iter()
            .filter(|workload| workload.networks.iter().any(|network| cidr.contains(&network.addr())))
            .map(|workload| {
                let address: Vec<String> =
                    workload.networks.iter().filter(|n| cidr.contains(&n.addr())).map(|n| n.addr().to_string()).collect();
                match &workload.namespace {
                    Some(namespace) => format!(
                        "recreate pod `{namespace}/{}` on `{}` (holds {}): kubectl delete pod -n {namespace} {}",
                        workload.name,
                        workload.node,
                        address.join(", "),
                        workload.name
                    ),
                    None => format!("recreate workload `{}` on `{}` (holds {})", workload.name, workload.node, address.join(", ")),
                }
            })
            .collect();
        if holding.is_empty() {
            holding.push(format!("no workload holds an address in {cidr} (`{}`): nothing to recreate", pool.metadata.name));
        }
        holding
    }

    /// Notes when the pools taking over hold fewer addresses than the leaving pool uses.
    fn check_capacity(&mut self, leaving: &IpPool, temporaries: &[IpPool]) {
        let Ok(cidr) = leaving.spec.cidr.parse::<IpNet>() else { return };
        let in_use = match (&self.input.current.workloads, &self.input.current.block_usage) {
            (Some(workloads), _) => workloads.iter().flat_map(|w| &w.networks).filter(|n| cidr.contains(&n.addr())).count() as u64,
            (None, Some(usage)) => usage.iter().filter(|(block, _)| cidr.contains(*block)).map(|(_, used)| used).sum(),
            (None, None) => return,
        };
        let capacity = |pool: &IpPool| {
            pool.spec
                .cidr
                .parse::<IpNet>()
                .map_or(0u128, |cidr| 1u128.checked_shl(u32::from(cidr.max_prefix_len() - cidr.prefix_len())).unwrap_or(u128::MAX))
        };
        let model = &self.input.desired.model;
        let taking_over: u128 = model
            .pools
            .iter()
            .filter(|p| !*p.disabled && !leaving_name_is(p, leaving))
            .map(|p| 1u128.checked_shl(u32::from(p.cidr.max_prefix_len() - p.cidr.prefix_len())).unwrap_or(u128::MAX))
            .sum::<u128>()
            + temporaries.iter().map(capacity).sum::<u128>();
        if u128::from(in_use) > taking_over {
            self.notes.push(format!(
                "warning: `{}` has {in_use} addresses in use but the pools taking over hold {taking_over}: workloads will fail to get addresses",
                leaving.metadata.name
            ));
        }
    }

    /// Runs a step: applies `mutate` to the state, compares, and records the stage if anything
    /// changed.
    fn stage(&mut self, step: Step, mutate: impl FnOnce(&mut ResourceSet)) {
        self.stage_with_replacements(step, &BTreeSet::new(), mutate);
    }

    fn stage_with_replacements(&mut self, step: Step, replaced: &BTreeSet<String>, mutate: impl FnOnce(&mut ResourceSet)) {
        let mut next = self.state.clone();
        mutate(&mut next);
        let mut changes = resource_changes(&self.state, &next, replaced);
        self.through_installation(&mut changes, &next);
        let unchanged_files = self
            .files_compiled_from
            .as_ref()
            .is_some_and(|(state, routed, pinned)| *pinned == self.pinned && routed == &self.routed_pools && state == &next);
        let files = match self.files.as_ref().filter(|_| !unchanged_files).map(|_| self.compile_files(&next)).transpose() {
            Ok(files) => files,
            Err(message) => {
                self.failure.get_or_insert(PlanError { stage: step.title.clone(), message });
                None
            }
        };
        if let (Some(before), Some(after)) = (&self.files, &files) {
            changes.extend(file_changes(before, after, self.agent));
        }
        if files.is_some() && changes.is_empty() {
            // The files are the compile of this state: the next stage that leaves it need not
            // compile it again.
            self.files_compiled_from = Some((next.clone(), self.routed_pools.clone(), self.pinned));
        }
        if changes.is_empty() && step.manual.is_empty() {
            return;
        }
        // Sessions can only change with the BGP resources: skip the comparison otherwise.
        let touches_bgp = changes.iter().any(|change| matches!(change.kind.as_str(), "BGPPeer" | "BGPConfiguration" | "Node"));
        let (peerings, sessions_changed) = if touches_bgp {
            let peerings = Peerings::compute(&next, self.input.desired.model.calico_version.value);
            let changed = calplan_calico::status::rows(&self.peerings) != calplan_calico::status::rows(&peerings);
            (peerings, changed)
        } else {
            (self.peerings.clone(), false)
        };
        let status_after = if sessions_changed { calplan_calico::status::rows(&peerings) } else { Default::default() };
        let mut barrier = step.barrier;
        let mut expected_status = BTreeMap::new();
        if sessions_changed {
            expected_status = status_table(&status_after);
            if barrier.is_none() && step.session_barrier {
                barrier = Some(sessions_barrier(&self.peerings, &peerings));
            }
        }
        if barrier.is_none() && ((step.session_barrier && sessions_changed) || step.restarts_calico_node) {
            barrier = Some(sessions_barrier(&self.peerings, &peerings));
        }
        if barrier.is_none() {
            barrier = self.routes_barrier(&changes, files.as_ref());
        }
        self.stages.push(Stage {
            number: self.stages.len() + 1,
            title: step.title,
            reason: step.reason,
            disruption: step.disruption.filter(|_| sessions_changed || !step.manual.is_empty() || step.restarts_calico_node),
            changes,
            manual: step.manual,
            barrier,
            expected_status,
        });
        self.state = next;
        self.peerings = peerings;
        if files.is_some() {
            self.files_compiled_from = Some((self.state.clone(), self.routed_pools.clone(), self.pinned));
            self.files = files;
        }
    }

    /// Files of the state as the given resources (plus the pools still routed) compile them:
    /// the text of a file only where it differs from the files the last stage left, the others
    /// as their digests and this state to render them again.
    /// The live IPAM as it is in `state`: Calico's client releases a pool's block affinities as
    /// it deletes the pool (apply does the same), so in a state without one of the cluster's
    /// pools, its blocks are gone.
    fn ipam_of(&self, state: &ResourceSet) -> Option<calplan_model::ipam::ObservedIpam> {
        self.observed_ipam.as_ref().map(|observed| {
            let held: Vec<IpNet> = state.pools().filter_map(|pool| pool.spec.cidr.parse::<IpNet>().ok()).map(|cidr| cidr.trunc()).collect();
            observed.without_deleted_pools(&held)
        })
    }

    /// The pools of the current state whose blocks are a forecast, not observed: where Calico
    /// places them is its IPAM's choice, made as pods arrive.
    fn forecast_pools(&self) -> Vec<IpNet> {
        let (model, _) = calplan_model::from_resources::from_resources(&self.state, &self.input.desired.model);
        calplan_model::ipam::forecast_pools(&model, self.ipam_of(&self.state).as_ref())
    }

    fn compile_files(&self, state: &ResourceSet) -> Result<Files, String> {
        let mut routed = state.clone();
        for pool in self.routed_pools.values() {
            if routed.get(ResourceKind::IpPool, &pool.metadata.name).is_none() {
                routed.insert(Resource::IpPool(pool.clone()));
            }
        }
        let ipam = self.ipam_of(state);
        let recompile = self
            .recompile
            .get_or_init(|| {
                std::sync::Arc::new(Recompile {
                    base: self.input.desired.model.clone(),
                    templates: self.input.templates.clone(),
                    agent: self.agent,
                    outside_datastore: CurrentState {
                        kubernetes: self.input.current.kubernetes.clone(),
                        local_workloads: self.input.current.local_workloads.clone(),
                        ..CurrentState::default()
                    },
                })
            })
            .clone();
        let before = self.files.as_ref();
        let kept = Kept::default();
        let changed =
            |path: &str, digest: &str, text: &str| before.and_then(|files| files.get(path)).is_none_or(|old| !old.matches(digest, text));
        let digests = recompile.render(&routed, ipam.as_ref(), &|artifact: &calplan_targets::Artifact| {
            if changed(&artifact.path, &artifact.sha256(), &artifact.contents) {
                kept.keep(&artifact.path, &artifact.contents);
            }
        })?;
        let mut kept = kept.into_inner();
        let origin = Origin::new(Box::new(move |wanted| {
            let kept = Kept::default();
            recompile.render(&routed, ipam.as_ref(), &|artifact: &calplan_targets::Artifact| {
                if wanted(&artifact.path) {
                    kept.keep(&artifact.path, &artifact.contents);
                }
            })?;
            Ok(kept.into_inner())
        }));
        let mut files: Files = digests
            .into_iter()
            .map(|(path, digest)| (path.clone(), FileText::rendered(digest, kept.remove(&path), &origin, &path)))
            .collect();
        if self.pinned
            && let Some(current) = &self.files
        {
            for (path, text) in current {
                if path.ends_with("/route-pins") {
                    files.insert(path.clone(), text.clone());
                }
            }
        }
        Ok(files)
    }

    fn routes_barrier(&self, changes: &[Change], files: Option<&Files>) -> Option<Barrier> {
        let files = files?;
        let mut routes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for change in changes {
            if change.action == Action::Delete {
                continue;
            }
            if let (Target::Router { router }, "routes.sh") = (&change.target, change.kind.as_str()) {
                let path = format!("routers/{router}/routes.sh");
                let lines: Vec<String> = files
                    .get(&path)
                    .map(|text| {
                        text.lines()
                            .filter_map(|line| line.trim().strip_prefix("ip route replace "))
                            .map(|route| route.trim().to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                if !lines.is_empty() {
                    routes.insert(router.clone(), lines);
                }
            }
        }
        (!routes.is_empty()).then(|| Barrier::RoutesPresent { description: "the routers hold the routes above".into(), routes })
    }

    /// Pins each node's cluster routes as they are, and those of `last` (the final state's
    /// files) that reach destinations it has no route to yet — on calico-node, not routes to
    /// blocks the final state only forecasts (pools no live IPAM covers): Calico places those
    /// elsewhere, and a pool migration pins them where they are once they exist ("Pin placed
    /// blocks").
    fn pin_routes(&mut self, last: Option<&Files>) {
        let Some(files) = &self.files else { return };
        // On BIRD 2 nodes calplan's own configuration advertises the forecast's blocks.
        let forecast = match self.agent {
            NodeAgent::CalicoNode => calplan_model::ipam::forecast_pools(&self.input.desired.model, self.observed_ipam.as_ref()),
            NodeAgent::Bird => Vec::new(),
        };
        let mut next = files.clone();
        for (path, text) in files {
            if let Some(node) = path.strip_prefix("nodes/").and_then(|rest| rest.strip_suffix("/routes")) {
                let later = last.and_then(|last| last.get(path)).map_or("", FileText::text);
                let later: String = later
                    .lines()
                    .filter(|line| destination(line).is_none_or(|to| !is_block_of(to, &forecast)))
                    .flat_map(|line| [line, "\n"])
                    .collect();
                next.insert(format!("nodes/{node}/route-pins"), FileText::held(routes_union(text, &later)));
            }
        }
        let changes = file_changes(files, &next, self.agent);
        if changes.is_empty() {
            return;
        }
        self.stages.push(Stage {
            number: self.stages.len() + 1,
            title: "Pin routes".into(),
            reason: match self.agent {
                NodeAgent::Bird => {
                    "each node's cluster routes are copied as static kernel routes below BIRD's, so that sessions \
                                    can be replaced without a node ever losing a route"
                }
                NodeAgent::CalicoNode => {
                    "each node's cluster routes, and those the final state adds, are copied as static kernel \
                                          routes below BIRD's, so that sessions can be replaced and BIRD can reload confd's renders \
                                          (which deletes and re-adds every route it exports) without a node ever losing a route"
                }
            }
            .into(),
            disruption: None,
            changes,
            manual: Vec::new(),
            barrier: Some(Barrier::RoutesPresent {
                description: "every node holds its pinned routes".into(),
                routes: pinned_routes(&next),
            }),
            expected_status: BTreeMap::new(),
        });
        self.renders_at_pin = renders_of(&next);
        self.files = Some(next);
        self.files_compiled_from = None;
        self.pinned = true;
    }

    /// On calico-node, before a pool's deletion makes BIRD reload (and so delete and re-add
    /// every route it exports): pins for the blocks Calico's IPAM has placed in the pools the
    /// plan could only forecast, as each node's kernel holds BIRD's routes to them by then.
    fn pin_placed_blocks(&mut self) {
        if !self.pinned || self.agent != NodeAgent::CalicoNode {
            return;
        }
        let Some(files) = &self.files else { return };
        let unplaced = self.forecast_pools();
        if unplaced.is_empty() {
            return;
        }
        let directive = crate::plan::placed_pins_line(&unplaced);
        let mut next = files.clone();
        for (path, text) in files {
            if path.ends_with("/route-pins") && !text.lines().any(|line| crate::plan::placed_pins_pools(line).is_some()) {
                next.insert(path.clone(), FileText::held(format!("{}{directive}\n", &**text)));
            }
        }
        let changes = file_changes(files, &next, self.agent);
        if changes.is_empty() {
            return;
        }
        self.stages.push(Stage {
            number: self.stages.len() + 1,
            title: "Pin placed blocks".into(),
            reason: "where Calico's IPAM placed the new pools' blocks is known only now: each node pins BIRD's routes to \
                     them as its kernel holds them, before the old pools' deletion makes calico-node reload"
                .into(),
            disruption: None,
            changes,
            manual: Vec::new(),
            barrier: None,
            expected_status: BTreeMap::new(),
        });
        self.files = Some(next);
    }

    fn unpin_routes(&mut self) {
        let Some(files) = &self.files else { return };
        let next: Files = files.iter().filter(|(path, _)| !path.ends_with("/route-pins")).map(|(p, t)| (p.clone(), t.clone())).collect();
        let changes = file_changes(files, &next, self.agent);
        let routes: BTreeMap<String, Vec<String>> = next
            .iter()
            .filter_map(|(path, text)| {
                let node = path.strip_prefix("nodes/")?.strip_suffix("/routes")?;
                Some((node.to_string(), text.lines().map(str::to_string).collect()))
            })
            .collect();
        let barrier = match self.agent {
            NodeAgent::Bird => {
                let description = "BIRD has programmed every node's cluster routes, so the pins can go".to_string();
                Barrier::RoutesPresent { description, routes }
            }
            // confd re-renders after the datastore changed, and BIRD reloads what it renders:
            // the pins go once every changed render is loaded, not merely once BIRD's routes
            // are there (they are, until the reload replaces them).
            NodeAgent::CalicoNode => {
                // The forecast's blocks are no expectation.
                let unplaced = self.forecast_pools();
                let routes = routes
                    .into_iter()
                    .map(|(node, lines)| {
                        let placed =
                            lines.into_iter().filter(|line| destination(line).is_none_or(|to| !is_block_of(to, &unplaced))).collect();
                        (node, placed)
                    })
                    .collect();
                let mut renders: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (path, digest) in renders_of(&next).into_iter().filter(|(path, digest)| self.renders_at_pin.get(path) != Some(digest)) {
                    if let Some((node, _)) = path.strip_prefix("nodes/").and_then(|rest| rest.split_once('/')) {
                        renders.entry(node.to_string()).or_default().push(digest);
                    }
                }
                let description = "calico-node has loaded each changed render and BIRD has programmed every node's cluster \
                                   routes, so the pins can go"
                    .to_string();
                let unplaced_pools = unplaced.iter().map(ToString::to_string).collect();
                Barrier::RenderLoaded { description, renders, routes, unplaced_pools }
            }
        };
        // The pins go only once BIRD's own routes are back: the stage before waits for that,
        // or, when it already waits on something else, a stage of its own does.
        match self.stages.last_mut() {
            Some(previous) if previous.barrier.is_none() => previous.barrier = Some(barrier),
            _ => self.stages.push(Stage {
                number: self.stages.len() + 1,
                title: "BIRD's routes back".into(),
                reason: "every node's kernel must hold BIRD's routes again before the pins go".into(),
                disruption: None,
                changes: Vec::new(),
                manual: Vec::new(),
                barrier: Some(barrier),
                expected_status: BTreeMap::new(),
            }),
        }
        self.stages.push(Stage {
            number: self.stages.len() + 1,
            title: "Unpin routes".into(),
            reason: "the sessions of the final state are up and BIRD's routes are in place".into(),
            disruption: None,
            changes,
            manual: Vec::new(),
            barrier: None,
            expected_status: BTreeMap::new(),
        });
        self.files = Some(next);
        self.files_compiled_from = None;
        self.pinned = false;
    }
}

/// Each router's platform, as the plan records it for apply.
pub fn router_platforms(analysis: &Analysis) -> BTreeMap<String, String> {
    analysis.model.routers.iter().map(|router| (router.name.value.clone(), router.platform.value.as_str().to_string())).collect()
}

fn leaving_name_is(pool: &calplan_model::Pool, leaving: &IpPool) -> bool {
    pool.name.value == leaving.metadata.name && pool.cidr.to_string() == leaving.spec.cidr
}

/// Digests of calico-node's renders (`nodes/<node>/bird-calico.cfg`, `bird6-calico.cfg`), by
/// path.
fn renders_of(files: &Files) -> BTreeMap<String, String> {
    files
        .iter()
        .filter(|(path, _)| path.ends_with("/bird-calico.cfg") || path.ends_with("/bird6-calico.cfg"))
        .map(|(path, text)| (path.clone(), text.digest().to_string()))
        .collect()
}

/// `current`'s route lines, then `later`'s to destinations `current` has no route to.
fn routes_union(current: &str, later: &str) -> String {
    let held: BTreeSet<&str> = current.lines().filter_map(destination).collect();
    let mut out = current.to_string();
    for line in later.lines().filter(|line| destination(line).is_some_and(|to| !held.contains(to))) {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A route line's destination, as written.
fn destination(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    let first = words.next()?;
    if matches!(first, "blackhole" | "unreachable" | "prohibit" | "throw") { words.next() } else { Some(first) }
}

/// Whether a route's destination is a block of one of `pools`.
fn is_block_of(destination: &str, pools: &[IpNet]) -> bool {
    destination.parse::<IpNet>().is_ok_and(|destination| calplan_model::ipam::is_block_in(&destination, pools))
}

fn pinned_routes(files: &Files) -> BTreeMap<String, Vec<String>> {
    files
        .iter()
        .filter_map(|(path, text)| {
            let node = path.strip_prefix("nodes/")?.strip_suffix("/route-pins")?;
            Some((node.to_string(), text.lines().filter(|line| !line.trim().is_empty() && !line.starts_with('#')).map(as_pin).collect()))
        })
        .collect()
}

/// A route line as apply pins it: under the pins' route protocol (`kernel`, which BIRD never
/// learns) instead of BIRD's.
fn as_pin(line: &str) -> String {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    match words.iter().position(|word| *word == "proto") {
        Some(index) if index + 1 < words.len() => words[index + 1] = "kernel",
        _ => words.extend(["proto", "kernel"]),
    }
    words.join(" ")
}

fn set_configuration(state: &mut ResourceSet, change: impl FnOnce(&mut BgpConfigurationSpec)) {
    let mut configuration = state.bgp_configuration().cloned().unwrap_or_else(|| BgpConfiguration {
        api_version: API_VERSION.into(),
        kind: "BGPConfiguration".into(),
        metadata: ObjectMeta::named("default"),
        spec: BgpConfigurationSpec::default(),
    });
    change(&mut configuration.spec);
    state.insert(Resource::BgpConfiguration(configuration));
}

fn status_table(rows: &BTreeMap<String, Vec<calplan_calico::status::StatusRow>>) -> BTreeMap<String, Vec<StatusRow>> {
    rows.iter()
        .map(|(node, rows)| {
            (
                node.clone(),
                rows.iter()
                    .map(|row| StatusRow { peer_address: row.peer_address.clone(), peer_type: row.peer_type.as_str().to_string() })
                    .collect(),
            )
        })
        .collect()
}

/// Every session of `peerings` Established, and every session of `before` that `peerings` no
/// longer has gone.
fn sessions_barrier(before: &Peerings, peerings: &Peerings) -> Barrier {
    let protocols = |peerings: &Peerings| -> BTreeMap<String, Vec<String>> {
        (0..peerings.topology.nodes.len())
            .map(|index| {
                let names = peerings.for_node(index).iter().map(|peering| peering.protocol_name()).collect();
                (peerings.topology.nodes[index].name.clone(), names)
            })
            .filter(|(_, sessions): &(String, Vec<String>)| !sessions.is_empty())
            .collect()
    };
    let sessions = protocols(peerings);
    let gone: BTreeMap<String, Vec<String>> = protocols(before)
        .into_iter()
        .filter_map(|(node, earlier)| {
            let now: BTreeSet<&String> = sessions.get(&node).into_iter().flatten().collect();
            let gone: Vec<String> = earlier.into_iter().filter(|name| !now.contains(name)).collect();
            (!gone.is_empty()).then_some((node, gone))
        })
        .collect();
    let route_reflectors = reflectors_among(peerings, &sessions);
    Barrier::SessionsEstablished {
        description: if gone.is_empty() {
            "every node has the sessions listed in the expected status Established".into()
        } else {
            "every node has the sessions listed in the expected status Established, and none of those the stage removes".into()
        },
        sessions,
        route_reflectors,
        gone,
    }
}

/// The nodes of a session barrier that are route reflectors (observed first when only some
/// nodes can be observed at a time).
pub fn reflectors_among(peerings: &Peerings, sessions: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    peerings
        .topology
        .nodes
        .iter()
        .filter(|node| !node.rr_cluster_id.is_empty() && sessions.contains_key(&node.name))
        .map(|node| node.name.clone())
        .collect()
}

/// The resource changes from one state to the next.
fn resource_changes(before: &ResourceSet, after: &ResourceSet, replaced: &BTreeSet<String>) -> Vec<Change> {
    let keys: BTreeSet<&ResourceKey> = before.resources.keys().chain(after.resources.keys()).collect();
    let mut changes = Vec::new();
    for key in keys {
        let (old, new) = (before.resources.get(key), after.resources.get(key));
        // Most resources are untouched by a stage: the same shared resource, or equal whole,
        // before any view is built.
        if matches!((old, new), (Some(a), Some(b)) if std::sync::Arc::ptr_eq(a, b)) || old == new {
            continue;
        }
        let (old, new) = (old.map(|resource| &**resource), new.map(|resource| &**resource));
        let label_keys = managed_label_keys(match new.or(old) {
            Some(Resource::Node(node)) => Some(node),
            _ => None,
        });
        let old_view = old.map(|resource| diff::view(resource, &label_keys));
        let new_view = new.map(|resource| diff::view(resource, &label_keys));
        if old_view == new_view {
            continue;
        }
        let action = match (old, new) {
            (None, Some(_)) if key.0 == ResourceKind::IpPool && replaced.contains(&key.1) => Action::Replace,
            (None, Some(_)) => Action::Create,
            (Some(_), None) if key.0 == ResourceKind::IpPool && replaced.contains(&key.1) => continue,
            (Some(_), None) => Action::Delete,
            // The stage that deletes the emptied pool creates its successor of the same name:
            // Calico refuses that as an update (CIDR and block size are immutable).
            (Some(_), Some(_)) if key.0 == ResourceKind::IpPool && replaced.contains(&key.1) => Action::Replace,
            (Some(_), Some(_)) => Action::Update,
            (None, None) => continue,
        };
        // A replaced pool's `before` is the pool being deleted, for the delete's compare.
        let replaced_before = old.map(|resource| Content::Resource { value: resource.to_json() });
        changes.push(Change {
            action,
            kind: key.0.as_str().to_string(),
            name: key.1.clone(),
            target: Target::Calico,
            before: replaced_before,
            after: new.map(|resource| Content::Resource { value: resource.to_json() }),
            reason: (action == Action::Replace).then(|| {
                "Calico cannot change a pool's CIDR or block size in place; the old pool was emptied and deleted first".to_string()
            }),
            informational: false,
        });
    }
    changes
}

/// The file changes from one set of files to the next; those another agent makes (calico-node's
/// render and routes) are marked informational.
fn file_changes(before: &Files, after: &Files, agent: NodeAgent) -> Vec<Change> {
    let paths: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let changed: Vec<(&String, Option<&FileText>, Option<&FileText>)> =
        paths.into_iter().map(|path| (path, before.get(path), after.get(path))).filter(|(_, old, new)| old != new).collect();
    // The texts of the files that change, each state rendered again at most once for those
    // it did not keep.
    materialise(changed.iter().flat_map(|(_, old, new)| old.iter().chain(new.iter()).copied()));
    let mut changes = Vec::new();
    for (path, old, new) in changed {
        let action = match (old, new) {
            (None, Some(_)) => Action::Create,
            (Some(_), None) => Action::Delete,
            _ => Action::Update,
        };
        let (target, file) = artifact_target(path);
        let name = match &target {
            Target::Node { node } => node.clone(),
            Target::Router { router } => router.clone(),
            Target::Calico => String::new(),
        };
        changes.push(Change {
            action,
            kind: file,
            name,
            target,
            before: old.map(|text| Content::File { text: text.to_string() }),
            after: new.map(|text| Content::File { text: text.to_string() }),
            reason: None,
            informational: planned_artifact(path, agent) == Some(Handling::Observed),
        });
    }
    changes
}

#[cfg(test)]
mod phase_tests {
    use super::*;

    #[test]
    fn the_phase_graph_is_acyclic_and_orders_make_before_break() {
        let order = phase_order();
        assert!(!petgraph::algo::is_cyclic_directed(&phase_graph()));
        let position = |phase: Phase| order.iter().position(|p| *p == phase).unwrap();
        assert!(position(Phase::NewPeerings) < position(Phase::Nodes));
        assert!(position(Phase::Nodes) < position(Phase::MeshOff));
        assert!(position(Phase::MeshOn) < position(Phase::OldPeerings));
        assert!(position(Phase::RoutesToNewPools) < position(Phase::PoolsAndSettings));
        assert!(position(Phase::DrainPools) < position(Phase::RetireRoutes));
        assert_eq!(order.first(), Some(&Phase::Pin));
        assert_eq!(order.last(), Some(&Phase::Unpin));
    }
}

/// The order nodes change in within the nodes phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum NodeGroup {
    /// Nodes that become reflectors or change cluster: their sessions must exist before any
    /// client's labels move it to them.
    NewReflectors,
    Others,
    /// Reflectors that stop reflecting: only once no client depends on them.
    RetiringReflectors,
}

fn cluster_id_of(bgp: &Option<NodeBgpSpec>) -> Option<String> {
    bgp.as_ref().and_then(|b| b.route_reflector_cluster_id.clone()).filter(|id| !id.is_empty())
}

/// The desired nodes by [`NodeGroup`], in that order.
fn node_groups(current: &ResourceSet, nodes: &[CalicoNode]) -> Vec<(NodeGroup, Vec<CalicoNode>)> {
    let mut groups: BTreeMap<NodeGroup, Vec<CalicoNode>> =
        [NodeGroup::NewReflectors, NodeGroup::Others, NodeGroup::RetiringReflectors].into_iter().map(|group| (group, Vec::new())).collect();
    for node in nodes {
        let live_resource = current.get(ResourceKind::Node, &node.metadata.name);
        // A node the stage would leave as it is belongs to no group.
        if live_resource.is_some_and(|live| diff::merged(Some(live), &Resource::Node(node.clone())) == *live) {
            continue;
        }
        let live = live_resource.and_then(|resource| match resource {
            Resource::Node(live) => live.spec.bgp.clone(),
            _ => None,
        });
        let live_id = cluster_id_of(&live);
        let wanted_id = cluster_id_of(&node.spec.bgp);
        let group = match (&live_id, &wanted_id) {
            (_, Some(_)) if live_id != wanted_id => NodeGroup::NewReflectors,
            (Some(_), None) => NodeGroup::RetiringReflectors,
            _ => NodeGroup::Others,
        };
        groups.get_mut(&group).expect("every group").push(node.clone());
    }
    groups.into_iter().collect()
}
