//! Plans the lab makes itself, in the one plan type the executor runs: the bring-up (every
//! compiled artifact and Calico resource, created in one stage on a lab whose BIRDs run an
//! empty configuration), and the "all at once" form of a saved plan — its changes collapsed
//! into one stage, pins dropped — which is the unsafe order `lab apply --all-at-once` runs to
//! show what the staging prevents. Pure: plans in, plans out.

use calplan_model::ownership::Handling;
use calplan_model::{Analysis, NodeAgent};
use calplan_plan::plan::{Action, Barrier, Change, Content, Fingerprint, Plan, Stage, Target};
use calplan_targets::Output;
use std::collections::BTreeMap;

/// The plan that loads an intent into a fresh lab: one stage creating every Calico resource
/// (into the record, or in calico-node mode into the lab's etcd) and every file calplan plans
/// for nodes and routers, as `agent` has them planned — on calico-node nodes confd's render
/// and the routes are informational changes, which calico-node makes and apply records — with
/// a barrier on the sessions between nodes (sessions with emulated peers are `verify`'s to
/// check).
/// `ipv6` false leaves IPv6 sessions out of the barrier (a calico-node lab without an IPv6
/// render runs no IPv6 sessions).
pub fn bring_up(analysis: &Analysis, output: &Output, intent: Fingerprint, agent: NodeAgent, ipv6: bool) -> Vec<Plan> {
    let mut changes = Vec::new();
    for resource in analysis.resources.iter() {
        changes.push(Change {
            action: Action::Create,
            kind: resource.kind().as_str().to_string(),
            name: resource.name().to_string(),
            target: Target::Calico,
            before: None,
            after: Some(Content::Resource { value: resource.to_json() }),
            reason: None,
            informational: false,
        });
    }
    for (_, artifact) in &output.artifacts {
        let Some(handling) = calplan_plan::planner::planned_artifact(&artifact.path, agent) else { continue };
        let mut parts = artifact.path.splitn(3, '/');
        let (kind, owner, file) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let target =
            if kind == "routers" { Target::Router { router: owner.to_string() } } else { Target::Node { node: owner.to_string() } };
        changes.push(Change {
            action: Action::Create,
            kind: file.to_string(),
            name: owner.to_string(),
            target,
            before: None,
            after: Some(Content::File { text: artifact.contents.clone() }),
            reason: None,
            informational: handling == Handling::Observed,
        });
    }
    let peerings = &analysis.peerings;
    let sessions: BTreeMap<String, Vec<String>> = (0..peerings.topology.nodes.len())
        .map(|index| {
            let names = peerings
                .for_node(index)
                .iter()
                .filter(|peering| peering.remote_node.is_some() && (ipv6 || peering.data.ip.is_ipv4()))
                .map(|peering| peering.protocol_name())
                .collect();
            (peerings.topology.nodes[index].name.clone(), names)
        })
        .filter(|(_, names): &(String, Vec<String>)| !names.is_empty())
        .collect();
    let route_reflectors = calplan_plan::planner::reflectors_among(peerings, &sessions);
    let barrier = (!sessions.is_empty()).then(|| Barrier::SessionsEstablished {
        description: "every node has its sessions with the other nodes Established".into(),
        sessions,
        route_reflectors,
        gone: BTreeMap::new(),
    });
    let plan = |title: &str, reason: &str, changes: Vec<Change>, barrier: Option<Barrier>| Plan {
        intent: intent.clone(),
        current: Vec::new(),
        nodes: None,
        node_agent: agent,
        router_platforms: calplan_plan::planner::router_platforms(analysis),
        stages: vec![Stage {
            number: 1,
            title: title.into(),
            reason: reason.into(),
            disruption: None,
            changes,
            manual: Vec::new(),
            barrier,
            expected_status: BTreeMap::new(),
        }],
        notes: vec!["made by `calplan lab up`".into()],
    };
    if agent == NodeAgent::Bird {
        let reason = "every compiled artifact and Calico resource, loaded into the lab's fresh nodes and routers";
        return vec![plan("Lab bring-up", reason, changes, barrier)];
    }
    // calico-node: the datastore and the routers first, then calico-node's part, which it
    // makes itself from the datastore (informational), with the sessions as the barrier.
    let (installed, rendered): (Vec<Change>, Vec<Change>) = changes.into_iter().partition(|change| !change.informational);
    vec![
        plan("Lab bring-up: the datastore", "the cluster's Calico resources into the lab's etcd, and the routers' files", installed, None),
        plan("Lab bring-up: calico-node", "confd renders every node's BIRD configuration from the datastore", rendered, barrier),
    ]
}

/// The plan's changes as one stage, each resource or file going straight from what the plan
/// found to what it leaves, without route pins: the mesh goes off in the same breath as the
/// reflectors arrive. The barrier is the plan's last session barrier, so the apply still ends
/// with the final sessions up.
pub fn all_at_once(plan: &Plan) -> Plan {
    // (target, kind, name) in the order the plan first touches them.
    let mut order: Vec<(Target, String, String)> = Vec::new();
    let mut first_before: BTreeMap<(Target, String, String), Option<Content>> = BTreeMap::new();
    let mut last: BTreeMap<(Target, String, String), Change> = BTreeMap::new();
    for change in plan.changes() {
        if change.kind == "route-pins" {
            continue;
        }
        let key = (change.target.clone(), change.kind.clone(), change.name.clone());
        if !first_before.contains_key(&key) {
            order.push(key.clone());
            first_before.insert(key.clone(), change.before.clone());
        }
        last.insert(key, change.clone());
    }
    let mut changes = Vec::new();
    for key in order {
        let mut change = last.remove(&key).expect("every key has a change");
        change.before = first_before.remove(&key).flatten();
        if change.before == change.after {
            continue;
        }
        change.action = match (&change.before, &change.after, change.action) {
            (_, _, Action::Replace) => Action::Replace,
            (None, Some(_), _) => Action::Create,
            (Some(_), None, _) => Action::Delete,
            _ => Action::Update,
        };
        changes.push(change);
    }
    let barrier = plan.stages.iter().rev().find_map(|stage| match &stage.barrier {
        Some(barrier @ Barrier::SessionsEstablished { .. }) => Some(barrier.clone()),
        _ => None,
    });
    let mut notes = plan.notes.clone();
    notes.push("collapsed into one stage without route pins by `calplan lab apply --all-at-once`: a deliberately unsafe order".into());
    Plan {
        intent: plan.intent.clone(),
        current: plan.current.clone(),
        nodes: plan.nodes.clone(),
        node_agent: plan.node_agent,
        router_platforms: plan.router_platforms.clone(),
        stages: vec![Stage {
            number: 1,
            title: "Everything at once".into(),
            reason: "the plan's changes in one stage, without pins (unsafe on purpose)".into(),
            disruption: Some("sessions are replaced with nothing in their place while the new ones come up".into()),
            changes,
            manual: plan.stages.iter().flat_map(|stage| stage.manual.clone()).collect(),
            barrier,
            expected_status: plan.stages.last().map(|stage| stage.expected_status.clone()).unwrap_or_default(),
        }],
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_change(kind: &str, before: Option<&str>, after: Option<&str>) -> Change {
        Change {
            action: Action::Update,
            kind: kind.into(),
            name: "n1".into(),
            target: Target::Node { node: "n1".into() },
            before: before.map(|text| Content::File { text: text.into() }),
            after: after.map(|text| Content::File { text: text.into() }),
            reason: None,
            informational: false,
        }
    }

    #[test]
    fn all_at_once_goes_from_first_to_last_and_drops_pins() {
        let stage = |number, changes| Stage {
            number,
            title: format!("stage {number}"),
            reason: String::new(),
            disruption: None,
            changes,
            manual: Vec::new(),
            barrier: None,
            expected_status: BTreeMap::new(),
        };
        let plan = Plan {
            intent: Fingerprint { name: "i".into(), sha256: String::new() },
            current: Vec::new(),
            nodes: None,
            node_agent: NodeAgent::Bird,
            router_platforms: BTreeMap::new(),
            stages: vec![
                stage(1, vec![file_change("route-pins", None, Some("p"))]),
                stage(2, vec![file_change("bird.cfg", Some("mesh"), Some("mesh+rr"))]),
                stage(3, vec![file_change("bird.cfg", Some("mesh+rr"), Some("rr"))]),
                stage(4, vec![file_change("route-pins", Some("p"), None)]),
            ],
            notes: Vec::new(),
        };
        let collapsed = all_at_once(&plan);
        assert_eq!(collapsed.stages.len(), 1);
        let changes = &collapsed.stages[0].changes;
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].before, Some(Content::File { text: "mesh".into() }));
        assert_eq!(changes[0].after, Some(Content::File { text: "rr".into() }));
        assert_eq!(collapsed.summary().change, 1);
    }
}
